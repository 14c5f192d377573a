variable "gcp_project" {
  description = "Google Cloud project of the BigQuery dataset (the consumer's bigquery.project)."
  type        = string
}

variable "dataset_id" {
  description = "BigQuery dataset that receives the tables (the consumer's bigquery.dataset)."
  type        = string
  default     = "strait"
}

variable "dataset_location" {
  description = "Location of the dataset (the consumer's bigquery.location)."
  type        = string
  default     = "US"
}

variable "consumer_account_id" {
  description = "Account id of the consumer's Google service account."
  type        = string
  default     = "strait-consumer"
}

variable "workload_identity" {
  description = "GKE Workload Identity member allowed to act as the consumer's service account, e.g. \"serviceAccount:my-project.svc.id.goog[strait/strait-consumer]\" (deploy/k8s, or the Helm chart's consumer service account); empty for none."
  type        = string
  default     = ""
}

variable "background_slots" {
  description = "Baseline slots of a BigQuery reservation assigned to the project's BACKGROUND jobs (the CDC background applies of upsert tables); 0, the default, creates none and leaves applies billed on demand (README, \"CDC apply cost and max_staleness\")."
  type        = number
  default     = 0
}

variable "background_reservation_name" {
  description = "Name of the BACKGROUND reservation, when background_slots > 0."
  type        = string
  default     = "strait-background"
}

variable "background_edition" {
  description = "BigQuery edition of the BACKGROUND reservation (STANDARD, ENTERPRISE or ENTERPRISE_PLUS), when background_slots > 0."
  type        = string
  default     = "ENTERPRISE"
}
