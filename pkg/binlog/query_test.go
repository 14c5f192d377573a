package binlog

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCheckQueryRefusesAllButOneSelect: the operator's backfill query is
// one SELECT; anything else is refused before it reaches the server.
func TestCheckQueryRefusesAllButOneSelect(t *testing.T) {
	for _, q := range []string{"SELECT * FROM a", " with x AS (SELECT 1) SELECT * FROM x", "select\n*\nfrom a where b = 'it''s'"} {
		if err := CheckQuery(q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	for _, tc := range []struct{ q, want string }{
		{"DELETE FROM a", "want a SELECT"},
		{"SHOW TABLES", "want a SELECT"},
		{"/* x */ SELECT 1", "want a SELECT"},
		{"SELECTx FROM a", "want a SELECT"},
		{"SELECT 1; DROP TABLE a", "holds a ';'"},
		{"SELECT * FROM a INTO OUTFILE '/tmp/x'", "holds INTO"},
		{"SELECT 1 into @x", "holds INTO"},
		{"SELECT '" + strings.Repeat("x", 70000) + "'", "at most 65536"},
	} {
		if err := CheckQuery(tc.q); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want %q", tc.q, err, tc.want)
		}
	}
}

// TestScannerQueryReadsAsTheBackfillFile: the rows of a query come as the
// backfill file's text, which BackfillRow takes for the live table; the
// server refuses what is not one read.
func TestScannerQueryReadsAsTheBackfillFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS backfill_query", "CREATE DATABASE backfill_query",
		`CREATE TABLE backfill_query.live (id INT PRIMARY KEY, name VARCHAR(10) CHARACTER SET latin1, price DECIMAL(6,2), raw VARBINARY(4),
			flag BIT(1), at DATETIME(3), ts TIMESTAMP(3) NULL, kind ENUM('a','b'), doc JSON, day DATE, f FLOAT)`,
		"CREATE TABLE backfill_query.archive LIKE backfill_query.live",
		`INSERT INTO backfill_query.archive VALUES (1, 'Björn', -1.50, X'00ff', b'1', '2020-01-02 03:04:05.678', '2020-01-02 03:04:05.5', 'b', '{"a": 1}', '2020-01-02', 1.25),
			(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "backfill_query.*")
	s, err := NewScanner(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live, err := s.Schema(ctx, "backfill_query", "live")
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	err = s.Query(ctx, "SELECT * FROM backfill_query.archive ORDER BY id", func(columns []string, row []*string) error {
		if _, err := BackfillRow(live, columns, row); err != nil {
			return err
		}
		var texts []string
		for _, v := range row {
			if v == nil {
				texts = append(texts, "NULL")
			} else {
				texts = append(texts, *v)
			}
		}
		got = append(got, texts)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"1", "Björn", "-1.50", "0x00ff", "1", "2020-01-02 03:04:05.678", "2020-01-02 03:04:05.500", "b", `{"a": 1}`, "2020-01-02", "1.25"},
		{"2", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	for _, tc := range []struct{ q, want string }{
		{"SELECT * FROM backfill_query.archive WHERE id = ?", "has placeholders"},
		{"SELECT * FROM backfill_query.nothere", "doesn't exist"},
	} {
		err := s.Query(ctx, tc.q, func([]string, []*string) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.q, err, tc.want)
		}
	}
}
