package binlog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPartialRowImagesStop: a session with binlog_row_image MINIMAL (an
// UPDATE's before image holds only the key, its after image only the
// changed column; a DELETE's only the key) or NOBLOB (an UPDATE leaves out
// the unchanged BLOB) stops the reader at that event with an
// UnknowableError naming the table, the missing columns, the position and
// the setting, before the transaction is handed out; on a FULL session a
// table with a generated column still reads whole.
func TestPartialRowImagesStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS partial", "CREATE DATABASE partial",
		"CREATE TABLE partial.t (id INT PRIMARY KEY, balance INT, note BLOB, twice INT AS (balance * 2) VIRTUAL)",
		"INSERT INTO partial.t (id, balance, note) VALUES (5, 1, 'x'), (6, 2, 'y')"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		image, stmt, missing string
	}{
		{"FULL", "UPDATE t SET balance = balance + 1 WHERE id = 5", ""},
		{"MINIMAL", "UPDATE t SET balance = 42 WHERE id = 5", "the before image lacks column(s) balance, note, twice"},
		{"MINIMAL", "DELETE FROM t WHERE id = 6", "the before image lacks column(s) balance, note, twice"},
		{"NOBLOB", "UPDATE t SET balance = 7 WHERE id = 5", "image lacks column(s) note"},
	} {
		t.Run(c.image+" "+strings.Fields(c.stmt)[0], func(t *testing.T) {
			r := openAtCurrent(t, ctx, sourceConfig(server, "partial.*"))
			if err := server.Exec(ctx, "partial", "SET SESSION binlog_row_image = '"+c.image+"'", c.stmt); err != nil {
				t.Fatal(err)
			}
			var tx Tx
			err := r.ReadTx(ctx, &tx)
			for err == nil && len(tx.Events) == 0 {
				err = r.ReadTx(ctx, &tx)
			}
			if c.missing == "" {
				if err != nil || len(tx.Events) != 1 || len(tx.Events[0].After) != 4 {
					t.Fatalf("FULL image: %v, %+v", err, tx.Events)
				}
				return
			}
			var ue *UnknowableError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v (%d events), want an UnknowableError", err, len(tx.Events))
			}
			if ue.Table != "partial.t" || ue.Setting != "binlog_row_image" || ue.File == "" || ue.Pos == 0 || ue.GTID == "" {
				t.Errorf("error fields: %+v", ue)
			}
			if !strings.Contains(err.Error(), c.missing) || !strings.Contains(err.Error(), "binlog_row_image=FULL") {
				t.Errorf("error %q does not say %q and the fix", err, c.missing)
			}
		})
	}
}

// TestRowChangesAsStatementsStop: a session with binlog_format STATEMENT
// or MIXED writes a captured table's change as SQL text; the reader stops
// at it with an UnknowableError (table, position, setting), rather than
// lose the change and publish the statement as DDL. The same on a table
// the configuration does not capture goes by, and so does the change of a
// captured table written in ROW format after it.
func TestRowChangesAsStatementsStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS stmt", "CREATE DATABASE stmt",
		"CREATE TABLE stmt.users (id INT PRIMARY KEY, email VARCHAR(40), balance DECIMAL(10,2))",
		"CREATE TABLE stmt.other (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"STATEMENT", "MIXED"} {
		t.Run(format, func(t *testing.T) {
			r := openAtCurrent(t, ctx, sourceConfig(server, "stmt.users"))
			if err := server.Exec(ctx, "stmt", "SET SESSION binlog_format = '"+format+"'",
				"INSERT INTO other VALUES ("+map[string]string{"STATEMENT": "1", "MIXED": "2"}[format]+")",
				"SET SESSION binlog_format = 'ROW'",
				"INSERT INTO users VALUES (1"+map[string]string{"STATEMENT": "0", "MIXED": "1"}[format]+", 'row@x.test', 1)",
				"SET SESSION binlog_format = '"+format+"'",
				"INSERT INTO users(id, email, balance) VALUES (2"+map[string]string{"STATEMENT": "0", "MIXED": "1"}[format]+", 'lost@x.test', 9.99)",
			); err != nil {
				t.Fatal(err)
			}
			var got int
			var err error
			for err == nil {
				var tx Tx
				err = r.ReadTx(ctx, &tx)
				got += len(tx.Events)
				for _, d := range tx.DDL {
					t.Errorf("published as DDL: %s", d.DDL)
				}
			}
			var ue *UnknowableError
			if !errors.As(err, &ue) || ue.Table != "stmt.users" || ue.Setting != "binlog_format" || ue.Pos == 0 {
				t.Fatalf("got %v, want an UnknowableError of stmt.users on binlog_format", err)
			}
			if got != 1 {
				t.Errorf("%d row changes handed out before the stop, want the 1 written in ROW format", got)
			}
			if strings.Contains(err.Error(), "lost@x.test") {
				t.Errorf("the error repeats the statement's values: %v", err)
			}
		})
	}
}
