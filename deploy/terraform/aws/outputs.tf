output "parameter_group_names" {
  description = "RDS parameter group of each family, to attach to the source read replica (for MySQL, gtid-mode must match the primary's: attach it there too)."
  value       = { for family, g in aws_db_parameter_group.source : family => g.name }
}

output "binlog_retention_sql" {
  description = "Run on the RDS source (MySQL or MariaDB): keeps binlogs long enough for the producer to resume after an outage."
  value       = "CALL mysql.rds_set_configuration('binlog retention hours', ${var.binlog_retention_hours});"
}
