package binlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestApplyAlterMatchesServer runs ALTER TABLE statements of every kind on a
// real MariaDB, one after the other, and applies each to the schema read
// before it: the result equals what information_schema shows after it,
// column by column (types, widths, signedness, character sets, nullability,
// order, primary key). Statements it cannot apply exactly are refused with
// errCannotApply, never applied wrong.
func TestApplyAlterMatchesServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS alter_db", "CREATE DATABASE alter_db CHARACTER SET utf8mb4",
		"CREATE TABLE alter_db.t (a INT NOT NULL, b VARCHAR(10), PRIMARY KEY (a))"); err != nil {
		t.Fatal(err)
	}
	conn := newSnapshotConn(t, ctx, sourceConfig(server, "alter_db.*"))
	read := func() *cdc.TableSchema {
		s, err := readSchema(conn, "alter_db", "t")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		stmt  string
		apply bool // applyAlter must apply it; else refuse it
	}{
		{"ALTER TABLE t ADD COLUMN c INT NOT NULL DEFAULT 0", true},
		{"ALTER TABLE t ADD COLUMN d VARCHAR(20) AFTER a", true},
		{"ALTER TABLE alter_db.t ADD COLUMN e DECIMAL(12,3) UNSIGNED FIRST", true},
		{"ALTER TABLE t MODIFY b BIGINT UNSIGNED", true},
		{"ALTER TABLE t CHANGE c c2 TEXT CHARACTER SET latin1 AFTER e", true},
		{"ALTER TABLE t RENAME COLUMN d TO d2", true},
		{"ALTER TABLE t ADD COLUMN (f ENUM('x','y''z'), g SET('a','b') NOT NULL)", true},
		{"ALTER TABLE t ADD h DATETIME(6), ADD i TIMESTAMP(3) NULL, ADD j TIME, ADD j2 YEAR, ADD k BIT(5), ADD l FLOAT, ADD m DOUBLE, " +
			"ADD n CHAR(3), ADD o BINARY(4), ADD p VARBINARY(9), ADD q MEDIUMBLOB, ADD r LONGTEXT, ADD s JSON, ADD tt TINYINT(1), " +
			"ADD u SMALLINT, ADD v MEDIUMINT UNSIGNED, ADD w DECIMAL(5), ADD x FLOAT(7,2), ADD y TINYTEXT COLLATE latin1_german1_ci", true},
		{"ALTER TABLE t DROP COLUMN l, DROP COLUMN IF EXISTS nope", true},
		{"ALTER TABLE t ADD INDEX (b), ADD UNIQUE KEY (e), ALGORITHM=INPLACE", true},
		{"ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (a, e)", true},
		{"ALTER TABLE t DEFAULT CHARSET = latin1", true},
		{"ALTER TABLE t ADD COLUMN z VARCHAR(5)", true},
		{"ALTER TABLE t MODIFY z VARCHAR(7) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL", true},
		{"ALTER TABLE t ADD COLUMN IF NOT EXISTS z INT", true},
		{"ALTER TABLE t CHANGE d2 u VARCHAR(20), CHANGE u d2 SMALLINT", false}, // a swap: each names a column another renames
		{"ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4", false},
		{"ALTER TABLE t ADD COLUMN id UUID", false},
		{"ALTER TABLE t ADD COLUMN geo POINT", false},
		{"ALTER TABLE t RENAME TO t2", false},
	} {
		t.Run(c.stmt, func(t *testing.T) {
			before := read()
			got, err := applyAlter(before, c.stmt, "alter_db", true)
			if err := server.Exec(ctx, "alter_db", c.stmt); err != nil {
				t.Fatal(err)
			}
			if !c.apply {
				if !errors.Is(err, errCannotApply) {
					t.Errorf("applied (%v), want it refused", err)
				}
				if c.stmt == "ALTER TABLE t RENAME TO t2" {
					server.Exec(ctx, "alter_db", "ALTER TABLE t2 RENAME TO t")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, read(), cmpopts.IgnoreFields(cdc.TableSchema{}, "ServerID", "File", "Pos")); diff != "" {
				t.Errorf("applied (-applied +information_schema):\n%s", diff)
			}
		})
	}
}

// TestBackToBackDDLWithoutFullMetadata: on a server without full row
// metadata, a reader behind the source meets rows between back-to-back DDLs
// of one table — UPDATE; ADD COLUMN; UPDATE; MODIFY; UPDATE; RENAME COLUMN;
// UPDATE — while a writer keeps updating it. Each DDL is applied to the
// schema in force before it, so every row decodes with the schema of its
// moment: replayed, the changes equal SELECT. (Information_schema alone
// shows only the last schema, and the reader stopped here before.)
func TestBackToBackDDLWithoutFullMetadata(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	minimal, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{RowMetadata: "MINIMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer minimal.Stop()
	if err := minimal.Exec(ctx, "", "CREATE DATABASE bb", "SET SESSION max_recursive_iterations = 100",
		"CREATE TABLE bb.users (id INT PRIMARY KEY, balance INT NOT NULL, b INT)",
		"INSERT INTO bb.users WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < 50) SELECT k, k, NULL FROM s"); err != nil {
		t.Fatal(err)
	}
	r := openAtCurrent(t, ctx, sourceConfig(minimal, "bb.*"))
	stop, wrote := make(chan struct{}), make(chan error, 1)
	go func() {
		c, err := minimal.Conn(ctx, "bb")
		if err != nil {
			wrote <- err
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
			if _, err := c.Execute(fmt.Sprintf("UPDATE users SET balance = balance + 1 WHERE id = %d", 1+i%50)); err != nil {
				wrote <- err
				return
			}
		}
	}()
	if err := minimal.Exec(ctx, "bb", "UPDATE users SET b = 1 WHERE id = 1",
		"ALTER TABLE users ADD COLUMN c VARCHAR(10) NOT NULL DEFAULT 'x' AFTER balance", "UPDATE users SET c = 'y' WHERE id = 2",
		"ALTER TABLE users MODIFY b BIGINT", "UPDATE users SET b = 5000000000 WHERE id = 3",
		"ALTER TABLE users RENAME COLUMN b TO b2", "UPDATE users SET b2 = 7 WHERE id = 4",
	); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := minimal.Exec(ctx, "bb", "UPDATE users SET balance = balance + 1000"); err != nil {
		t.Fatal(err)
	}
	head, err := r.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each change as "column=value ..." in its schema's column order, and
	// the last state of each row.
	text := func(e cdc.Event) string {
		var parts []string
		for i, c := range e.Table.Columns {
			v := e.After[i]
			switch {
			case v.Null:
				parts = append(parts, c.Name+"=NULL")
			case c.Type == cdc.TypeString:
				parts = append(parts, c.Name+"="+v.Str)
			default:
				parts = append(parts, fmt.Sprintf("%s=%d", c.Name, v.Int))
			}
		}
		return strings.Join(parts, " ")
	}
	var changes []string
	state := map[string]string{}
	for r.stream.pos < head.Pos || r.stream.file != head.File {
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatal(err)
		}
		for _, e := range tx.Events {
			changes = append(changes, text(e))
			state[fmt.Sprint(e.After[0].Int)] = text(e)
		}
	}
	for _, want := range []string{"id=1 balance=1 b=1", "id=2 balance=2 c=y b=NULL", "id=3 balance=3 c=x b=5000000000", "id=4 balance=4 c=x b2=7"} {
		id, _, _ := strings.Cut(want, " ")
		found := false
		for _, c := range changes {
			if strings.HasPrefix(c, id+" ") && strings.HasSuffix(c, want[strings.LastIndex(want, " ")+1:]) &&
				strings.Count(c, "=") == strings.Count(want, "=") && (strings.Contains(c, " c=") == strings.Contains(want, " c=")) {
				found = true
			}
		}
		if !found {
			t.Errorf("no change like %q (balance aside) among the changes of %s:\n%s", want, id, grepChanges(changes, id+" "))
		}
	}
	rows, err := minimal.Query(ctx, "bb", "SELECT id, balance, c, COALESCE(b2, 'NULL') FROM users")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, row := range rows {
		want[*row[0]] = fmt.Sprintf("id=%s balance=%s c=%s b2=%s", *row[0], *row[1], *row[2], *row[3])
	}
	if diff := cmp.Diff(state, want); diff != "" {
		t.Errorf("replayed against SELECT (-replayed +select):\n%s", diff)
	}
}

func grepChanges(changes []string, prefix string) string {
	var out []string
	for _, c := range changes {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return strings.Join(out, "\n")
}
