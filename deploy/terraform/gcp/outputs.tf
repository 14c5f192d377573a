output "dataset_id" {
  description = "The consumer's bigquery.dataset."
  value       = google_bigquery_dataset.strait.dataset_id
}

output "consumer_service_account_email" {
  description = "The consumer's Google service account (Workload Identity annotation, or a key file for bigquery.credentials_file)."
  value       = google_service_account.consumer.email
}
