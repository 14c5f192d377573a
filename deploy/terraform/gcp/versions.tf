# The Google Cloud half: the BigQuery dataset, the consumer's service
# account and the optional BACKGROUND reservation. Needs Google credentials
# only; deploy/terraform/aws is applied on its own.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  project = var.gcp_project
}
