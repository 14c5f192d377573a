package binlog

import "testing"

// Statements that set an account's password reach the producer through
// the binlog; none is taken for DDL, so none is published to the schema
// changes topic (deploy/devstack/secrets_test.go runs them against the
// binaries and searches their output).
func TestParseDDLAccountStatementsAreNotDDL(t *testing.T) {
	for _, stmt := range []string{
		"CREATE USER 'u'@'%' IDENTIFIED BY 'pw'",
		"CREATE OR REPLACE USER u IDENTIFIED VIA mysql_native_password USING PASSWORD('pw')",
		"ALTER USER 'u'@'%' IDENTIFIED BY 'pw'",
		"ALTER USER IF EXISTS u IDENTIFIED BY 'pw'",
		"SET PASSWORD FOR 'u'@'%' = PASSWORD('pw')",
		"GRANT SELECT ON shop.* TO 'u'@'%' IDENTIFIED BY 'pw'",
		"RENAME USER u TO v",
		"CREATE ROLE r WITH ADMIN u",
		"CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h', USER 'u', PASSWORD 'pw')",
		"ALTER SERVER s OPTIONS (PASSWORD 'pw')",
	} {
		if got := parseDDL(stmt, "shop"); !got.none {
			t.Errorf("parseDDL(%q) = %+v, want none (not DDL, never published)", stmt, got)
		}
	}
}
