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

// TestRedactDDL: a FEDERATED table's connection password never reaches
// _schema_changes.
func TestRedactDDL(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='mysql://fed:s3cret@remote:3306/db/t'": "CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='mysql://fed:***@remote:3306/db/t'",
		`ALTER TABLE t CONNECTION = "mysql://u:p@h/db/t"`:                                           `ALTER TABLE t CONNECTION = "mysql://u:***@h/db/t"`,
		"CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='myserver/t'":                          "CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='myserver/t'",
		"ALTER TABLE t ADD c INT": "ALTER TABLE t ADD c INT",
	} {
		if got := redactDDL(in); got != want {
			t.Errorf("redactDDL(%q) = %q, want %q", in, got, want)
		}
	}
}
