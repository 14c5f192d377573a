# RDS parameter groups for the database the producer reads, usually a read
# replica (README, "Source requirements"): one group per engine family in
# var.families. docker-compose.yml starts MySQL 8.0 with the mysql8.0
# settings; deploy/terraform_test.go keeps the two in step.
#
# Not parameters on RDS: the binlog is on when backups are
# (backup_retention_period > 0 on the instance); binlog retention is the
# stored procedure of the output binlog_retention_sql, on MySQL and MariaDB
# alike; read_only is on by default for a read replica.

locals {
  # What the producer reads on every engine: row events with every column
  # before and after, and the column names, keys and charsets in the
  # TABLE_MAP event (binlog_row_metadata: MySQL 8.0+, MariaDB 10.5+).
  # Long timeouts keep a slow snapshot chunk or an idle stream connected.
  binlog = {
    binlog_format       = "ROW"
    binlog_row_image    = "FULL"
    binlog_row_metadata = "FULL"
    net_read_timeout    = "3600"
    net_write_timeout   = "3600"
    wait_timeout        = "86400"
  }

  # MySQL writes GTIDs only when told to; MariaDB always does (its GTIDs
  # need no parameter).
  mysql_gtid = {
    "gtid-mode"              = "ON"
    enforce_gtid_consistency = "ON"
  }

  # Static parameters: they apply at the next reboot.
  static = ["gtid-mode", "enforce_gtid_consistency"]

  # The parameters of each family, as RDS names the families.
  parameters = {
    "mysql8.0"     = merge(local.binlog, local.mysql_gtid)
    "mysql8.4"     = merge(local.binlog, local.mysql_gtid)
    "mariadb10.5"  = local.binlog
    "mariadb10.6"  = local.binlog
    "mariadb10.11" = local.binlog
    "mariadb11.4"  = local.binlog
    "mariadb11.8"  = local.binlog
  }
}

resource "aws_db_parameter_group" "source" {
  for_each = toset(var.families)

  # Custom group names take no period: strait-source-mysql8-0.
  name        = "${var.parameter_group_name}-${replace(each.key, ".", "-")}"
  family      = each.key
  description = "strait source: row-based binlog with full images and metadata, GTIDs, long timeouts"

  dynamic "parameter" {
    for_each = local.parameters[each.key]
    content {
      name         = parameter.key
      value        = parameter.value
      apply_method = contains(local.static, parameter.key) ? "pending-reboot" : "immediate"
    }
  }
}
