# The RDS parameter group of the original setup, for the MySQL read replica
# the producer reads (README, "Source requirements"). docker-compose.yml
# starts MySQL with the same settings; deploy/deploy_test.go keeps the two
# in step. Not parameters on RDS: the binlog is on when backups are
# (backup_retention_period > 0 on the instance), binlog retention is
#   CALL mysql.rds_set_configuration('binlog retention hours', 168);
# and read_only is on by default for a read replica.

resource "aws_db_parameter_group" "source" {
  name        = var.parameter_group_name
  family      = var.parameter_group_family
  description = "strait source: row-based binlog with full images and metadata, GTIDs, long timeouts"

  parameter {
    name  = "binlog_format"
    value = "ROW"
  }

  parameter {
    name  = "binlog_row_image"
    value = "FULL"
  }

  parameter {
    name  = "binlog_row_metadata"
    value = "FULL"
  }

  # GTID settings are static: they apply at the next reboot.
  parameter {
    name         = "gtid-mode"
    value        = "ON"
    apply_method = "pending-reboot"
  }

  parameter {
    name         = "enforce_gtid_consistency"
    value        = "ON"
    apply_method = "pending-reboot"
  }

  parameter {
    name  = "net_read_timeout"
    value = "3600"
  }

  parameter {
    name  = "net_write_timeout"
    value = "3600"
  }

  parameter {
    name  = "wait_timeout"
    value = "86400"
  }
}
