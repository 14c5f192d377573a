#!/bin/bash
# Creates the producer's database user (docker-compose.yml passes the name
# and password in STRAIT_DB_USER and STRAIT_DB_PASSWORD) with the privileges
# `producer check` asks for: REPLICATION SLAVE and REPLICATION CLIENT to
# read the binlog, SELECT on the captured tables.
set -euo pipefail
mysql --protocol=socket -uroot -p"$MYSQL_ROOT_PASSWORD" <<SQL
CREATE USER IF NOT EXISTS '${STRAIT_DB_USER}'@'%' IDENTIFIED BY '${STRAIT_DB_PASSWORD}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${STRAIT_DB_USER}'@'%';
GRANT SELECT ON shop.* TO '${STRAIT_DB_USER}'@'%';
SQL
