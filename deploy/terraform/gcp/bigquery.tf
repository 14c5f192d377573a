# The dataset the consumer writes, and the consumer's service account with
# the least it needs: roles/bigquery.dataEditor on this dataset only (create
# and update tables and views, Storage Write API appends). No project-wide
# role: the dataset exists, so the consumer never creates one, and it runs
# no query jobs.

resource "google_bigquery_dataset" "strait" {
  dataset_id  = var.dataset_id
  location    = var.dataset_location
  description = "Row changes applied by strait's consumer."
}

resource "google_service_account" "consumer" {
  account_id   = var.consumer_account_id
  display_name = "strait consumer"
  description  = "Writes row changes to BigQuery dataset ${var.dataset_id}."
}

resource "google_bigquery_dataset_iam_member" "consumer_data_editor" {
  dataset_id = google_bigquery_dataset.strait.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.consumer.email}"
}

# Lets the consumer's Kubernetes service account act as the Google one
# (GKE Workload Identity); a binding on the service account, not the project.
resource "google_service_account_iam_member" "consumer_workload_identity" {
  count              = var.workload_identity == "" ? 0 : 1
  service_account_id = google_service_account.consumer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = var.workload_identity
}
