package binlog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestParseFilter: a snapshot condition is one boolean expression over the
// table's columns, literals and allowed functions, rendered by the parser;
// the injections found in the review — a UNION reading another table, a
// comment cutting off the LIMIT, SLEEP, subqueries, variables, several
// statements — are refused with ErrFilter.
func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		in, sql string // sql "": refused
		columns []string
	}{
		{"created_at >= '2024-01-01'", "(`created_at`>='2024-01-01')", []string{"created_at"}},
		{"id <= 100 AND (status IN ('a', 'b') OR note IS NULL)", "(`id`<=100 AND (`status` IN ('a','b') OR `note` IS NULL))", []string{"id", "note", "status"}},
		{"DATE(at) > DATE_SUB(CURDATE(), INTERVAL 7 DAY) AND LOWER(email) LIKE '%@x.test'", "", nil}, // rendered below
		{"id BETWEEN 1 AND 10 -- trailing comment", "", nil},
		{"1=0) UNION ALL SELECT a, b FROM otherdb.secret WHERE (1=1", "", nil},
		{"1=0 UNION SELECT 1", "", nil},
		{"id > 0 -- ", "", nil},
		// A comment that only drops the wrapper's parenthesis leaves one
		// condition: harmless, as only the rendering is sent.
		{"id > 0) -- ", "(`id`>0)", []string{"id"}},
		{"SLEEP(5) = 0", "", nil},
		{"id IN (SELECT id FROM other.t)", "", nil},
		{"EXISTS (SELECT 1)", "", nil},
		{"id = @x", "", nil},
		{"id > 0; DROP TABLE t", "", nil},
		{"other.t.id > 0", "", nil},
		{"BENCHMARK(1000000, MD5('a')) = 0", "", nil},
		{"LOAD_FILE('/etc/passwd') IS NULL", "", nil},
		{"id > 0 /*! UNION SELECT 1 */", "", nil},
		{"", "", nil},
	} {
		f, err := ParseFilter(c.in)
		switch {
		case c.in == "DATE(at) > DATE_SUB(CURDATE(), INTERVAL 7 DAY) AND LOWER(email) LIKE '%@x.test'":
			if err != nil || len(f.Columns) != 2 {
				t.Errorf("%q: %v %+v, want it allowed over at and email", c.in, err, f)
			}
		case c.in == "id BETWEEN 1 AND 10 -- trailing comment":
			if err == nil {
				t.Errorf("%q: allowed as %q, want refused (the comment hides the closing parenthesis)", c.in, f.SQL)
			}
		case c.sql == "":
			if !errors.Is(err, ErrFilter) {
				t.Errorf("%q: got %+v, %v; want ErrFilter", c.in, f, err)
			}
		case err != nil || f.SQL != c.sql || len(f.Columns) != len(c.columns):
			t.Errorf("%q: got %+v, %v; want %q over %v", c.in, f, err, c.sql, c.columns)
		}
	}
}

// TestSnapshotQueryTimeout: every query of the snapshot's session ends
// within source.snapshot_query_timeout (MariaDB's max_statement_time).
func TestSnapshotQueryTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := sourceConfig(server)
	cfg.SnapshotQueryTimeout = 500 * time.Millisecond
	conn := newSnapshotConn(t, ctx, cfg)
	_, err := conn.Execute("SELECT SLEEP(30)")
	var me *mysql.MyError
	if !errors.As(err, &me) || !strings.Contains(me.Message, "max_statement_time") {
		t.Errorf("SELECT SLEEP(30) on the snapshot session: %v, want it interrupted by max_statement_time", err)
	}
}
