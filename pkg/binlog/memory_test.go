package binlog

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestReaderHeapPerTable reads one change of each of 2,000 tables and
// bounds the heap the reader keeps for each (its schema in the catalog,
// the TABLE_MAP it was built from, its metrics): memory flat in the number
// of tables is what lets one producer capture 20,000 of them (issue 18).
func TestReaderHeapPerTable(t *testing.T) {
	const tables, bound = 2000, 3072
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE heap_tables"); err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for i := range tables {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE t%05d (id BIGINT PRIMARY KEY, ref_%d INT NULL, amount DECIMAL(12,2) NOT NULL, "+
			"status VARCHAR(20) NOT NULL, note_%d TEXT NULL, created_at DATETIME(6) NOT NULL, updated_at TIMESTAMP(6) NOT NULL, score DOUBLE NOT NULL)", i, i, i))
	}
	if err := server.Exec(ctx, "heap_tables", stmts...); err != nil {
		t.Fatal(err)
	}
	r := openAtCurrent(t, ctx, sourceConfig(server, "heap_tables.*"))
	stmts = stmts[:0]
	for i := range tables {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t%05d VALUES (1, NULL, 12.50, 'paid', 'gift', '2024-01-01', '2024-01-01', 0.5)", i))
	}
	if err := server.Exec(ctx, "heap_tables", stmts...); err != nil {
		t.Fatal(err)
	}
	readEvents(t, ctx, r, 1) // what every table shares, out of the figure
	before := testenv.HeapInUse()
	readEvents(t, ctx, r, tables-1)
	per := (testenv.HeapInUse() - before) / (tables - 1)
	runtime.KeepAlive(r)
	t.Logf("%d bytes a table", per)
	if per > bound {
		t.Errorf("the reader keeps %d bytes a table after one change of each, want at most %d", per, bound)
	}
}
