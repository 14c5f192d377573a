package binlog

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The server gives a table a new TABLE_MAP id whenever it opens the table
// anew: after FLUSH TABLES, or once more tables are written than its table
// definition cache holds (400 by default in MariaDB, so any spread over
// more tables churns). The reader keeps one schema per table, not one per
// id it ever saw (which grew with every row written, and decoded every
// TABLE_MAP again), and still reads the rows exactly.
func TestTableIDChurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS churn", "CREATE DATABASE churn"); err != nil {
		t.Fatal(err)
	}
	if err := server.Exec(ctx, "churn", "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10))", "CREATE TABLE b (id INT PRIMARY KEY, v VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "churn.*")
	cfg.ServerID = 174
	r := openAtCurrent(t, ctx, cfg)
	const rounds = 50
	for i := range rounds {
		if err := server.Exec(ctx, "churn", fmt.Sprintf("INSERT INTO a VALUES (%d, 'a%d')", i, i), fmt.Sprintf("INSERT INTO b VALUES (%d, 'b%d')", i, i), "FLUSH TABLES"); err != nil {
			t.Fatal(err)
		}
	}
	evs := readEvents(t, ctx, r, 2*rounds)
	for i, ev := range evs {
		table, n := "a", i/2
		if i%2 == 1 {
			table = "b"
		}
		if ev.Table.Name != table || ev.After[0].Int != int64(n) || string(ev.After[1].Str) != fmt.Sprintf("%s%d", table, n) {
			t.Fatalf("event %d: %s %v, want %s (%d, %s%d)", i, ev.Table.Name, ev.After, table, n, table, n)
		}
	}
	if n := len(r.catalog.tables); n > 2 {
		t.Errorf("the catalog holds %d table ids after %d rounds of new ids for 2 tables, want 2", n, rounds)
	}
	if r.catalog.decoded > 2 {
		t.Errorf("%d TABLE_MAP events decoded into a schema for 2 tables that did not change, want 2", r.catalog.decoded)
	}
}
