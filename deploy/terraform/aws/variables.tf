variable "aws_region" {
  description = "AWS region of the RDS source."
  type        = string
  default     = "us-east-1"
}

variable "parameter_group_name" {
  description = "Name prefix of the RDS parameter groups; each group is <prefix>-<family>, e.g. strait-source-mysql8-0."
  type        = string
  default     = "strait-source"
}

variable "families" {
  description = "RDS parameter group families to make a group for, one per source engine version: mysql8.0, mysql8.4, mariadb10.5, mariadb10.6, mariadb10.11, mariadb11.4, mariadb11.8."
  type        = list(string)
  default     = ["mysql8.0"]

  validation {
    condition = length(setsubtract(var.families, [
      "mysql8.0", "mysql8.4", "mariadb10.5", "mariadb10.6", "mariadb10.11", "mariadb11.4", "mariadb11.8",
    ])) == 0
    error_message = "families: mysql8.0, mysql8.4, or mariadb10.5 and later (binlog_row_metadata needs MySQL 8.0 or MariaDB 10.5)."
  }
}

variable "binlog_retention_hours" {
  description = "Hours RDS keeps binlogs: how long the producer may be stopped and still resume. Not a parameter: set with the output binlog_retention_sql. RDS refuses 0 and caps it (168 hours on RDS for MySQL)."
  type        = number
  default     = 168

  validation {
    condition     = var.binlog_retention_hours >= 1
    error_message = "binlog_retention_hours must be at least 1: RDS refuses 0."
  }
}
