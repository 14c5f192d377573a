package binlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// A reader started behind the source logs once that it caught up: when it
// has read to where the server was at the start, not before, and not again.
func TestCaughtUpLoggedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS catchup", "CREATE DATABASE catchup", "CREATE TABLE catchup.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "catchup.*")
	cfg.ServerID = 171
	var logs testenv.Buffer
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	behind, err := r.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert := func(from, to int) {
		t.Helper()
		var stmts []string
		for i := from; i < to; i++ {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO catchup.t VALUES (%d)", i))
		}
		if err := server.Exec(ctx, "", stmts...); err != nil {
			t.Fatal(err)
		}
	}
	insert(0, 20) // the backlog
	if err := r.Start(ctx, behind); err != nil {
		t.Fatal(err)
	}
	const caughtUp = `msg="caught up with the source"`
	readEvents(t, ctx, r, 19)
	if strings.Contains(logs.String(), caughtUp) {
		t.Errorf("caught up with one transaction of the backlog left:\n%s", logs.String())
	}
	readEvents(t, ctx, r, 1)
	if !strings.Contains(logs.String(), caughtUp) {
		t.Errorf("not caught up after the backlog:\n%s", logs.String())
	}
	insert(20, 30)
	readEvents(t, ctx, r, 10)
	if n := strings.Count(logs.String(), caughtUp); n != 1 {
		t.Errorf("caught up %d times, want once:\n%s", n, logs.String())
	}
}
