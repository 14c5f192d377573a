output "dataset_id" {
  description = "The consumer's bigquery.dataset."
  value       = google_bigquery_dataset.strait.dataset_id
}

output "consumer_service_account_email" {
  description = "The consumer's Google service account (Workload Identity annotation, or a key file for bigquery.credentials_file)."
  value       = google_service_account.consumer.email
}

output "parameter_group_name" {
  description = "RDS parameter group to attach to the source read replica (gtid-mode must match its primary: attach it there too)."
  value       = aws_db_parameter_group.source.name
}

output "binlog_retention_sql" {
  description = "Run on the RDS source: keeps binlogs long enough for the producer to resume after an outage."
  value       = "CALL mysql.rds_set_configuration('binlog retention hours', ${var.binlog_retention_hours});"
}
