package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The demo's pipeline (bin/producer and bin/consumer as processes), then
// rows changed, removed and added in MariaDB behind its back (binlog off
// for the session): bin/producer verify names each key and fails.
func TestVerifyFindsChangesBehindThePipeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildBinaries(t, ctx)
	var out bytes.Buffer
	o := &options{dir: t.TempDir(), bin: bin, dataset: "strait_demo"}
	st, err := startStack(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if err := loadSchema(ctx, st.db); err != nil {
		t.Fatal(err)
	}
	if err := st.startBinaries(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.workload(ctx, time.Second, 50); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.verify(ctx, 2*time.Minute); err != nil || !ok {
		t.Fatalf("verify after the workload: %v, %v\n%s", ok, err, out.String())
	}
	if err := st.db.Exec(ctx, "shop", "SET SESSION sql_log_bin = 0",
		"UPDATE customers SET email = 'changed@example.com' WHERE id = 7",
		"DELETE FROM orders WHERE id = 8",
		"INSERT INTO order_items VALUES (9, 3, 'SKU-X', 1, 1.00)",
	); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	ok, err := st.verify(ctx, 0)
	if err != nil || ok {
		t.Fatalf("verify after the changes: %v, %v, want a difference\n%s", ok, err, out.String())
	}
	for _, want := range []string{
		"shop.customers: different (id=7): email: source changed@example.com, BigQuery ",
		"shop.orders: extra (id=8)",
		"shop.order_items: missing (order_id=9, line=3)",
		"shop.customers: DIFFERS", "shop.orders: DIFFERS", "shop.order_items: DIFFERS",
		"(read through the Storage Read API, max_staleness 10s)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify output lacks %q:\n%s", want, out.String())
		}
	}
}
