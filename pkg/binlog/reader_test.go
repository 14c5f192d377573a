package binlog

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

var server *testenv.MariaDB

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	server, err = testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	cancel()
	if err != nil {
		slog.Error("start MariaDB", "err", err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

func sourceConfig(m *testenv.MariaDB, include ...string) *Config {
	cfg := &Config{Host: m.Host, Port: m.Port, User: m.User, Password: m.Password, Include: include, ServerID: 100}
	cfg.Defaults()
	return cfg
}

// openAtCurrent opens a reader positioned at the server's current position.
func openAtCurrent(t *testing.T, ctx context.Context, cfg *Config) *Reader {
	t.Helper()
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.Start(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// readEvents reads transactions until n events of captured tables arrived.
func readEvents(t *testing.T, ctx context.Context, r *Reader, n int) []cdc.Event {
	t.Helper()
	var out []cdc.Event
	for len(out) < n {
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, tx.Events...)
	}
	return out
}

func TestTypesDecodeExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE types_db"); err != nil {
		t.Fatal(err)
	}
	// One column per case, a row with the value and the NULL row. The
	// reader is started after the DDL so only the inserts are read.
	cases := testenv.TypeCases
	var defs, cols, lits []string
	for _, c := range cases {
		defs = append(defs, c.Name+" "+c.Def)
		cols = append(cols, c.Name)
		lits = append(lits, c.Lit)
	}
	if err := server.Exec(ctx, "types_db", "CREATE TABLE t (id INT PRIMARY KEY, "+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	r := openAtCurrent(t, ctx, sourceConfig(server, "types_db.*"))
	if err := server.Exec(ctx, "types_db",
		"SET SESSION time_zone = '+05:30'",
		"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
		"INSERT INTO t (id, "+strings.Join(cols, ", ")+") VALUES (1, "+strings.Join(lits, ", ")+")",
		"INSERT INTO t (id) VALUES (2)",
	); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, ctx, r, 2)
	tbl := evs[0].Table
	for i, c := range cases {
		col := tbl.Columns[i+1]
		t.Run(c.Name, func(t *testing.T) {
			if col.Name != c.Name || col.Type != c.Type {
				t.Fatalf("column %d = %s %s, want %s %s", i+1, col.Name, col.Type, c.Name, c.Type)
			}
			if diff := cmp.Diff(evs[0].After[i+1], c.Want); diff != "" {
				t.Errorf("value (-got +want):\n%s", diff)
			}
			if !evs[1].After[i+1].Null {
				t.Errorf("NULL row: got %+v", evs[1].After[i+1])
			}
		})
	}
}
