# The AWS half: the RDS parameter groups of the source. Needs AWS
# credentials only; deploy/terraform/gcp is applied on its own.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.aws_region
}
