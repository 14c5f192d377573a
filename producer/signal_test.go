package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM stops reading, publishes every change already read and exits 0;
// /metrics shows what was read and published per table and op.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE term", "CREATE TABLE term.t (id INT PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := producerArgs(t, ctx, "d1", "term.*", "-http_addr", addr)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "STRAIT_TEST_RUN_MAIN=1")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("producer log:\n%s", logs.String())
		}
	}()

	metrics := func() string { return metricsText(addr) }
	waitFor(t, ctx, "/readyz", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	const n = 500
	stmts := []string{"BEGIN"}
	for i := range n {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, REPEAT('x', 2000))", i))
	}
	stmts = append(stmts, "COMMIT", "DELETE FROM t WHERE id < 10")
	if err := env.db.Exec(ctx, "term", stmts...); err != nil {
		t.Fatal(err)
	}
	// Once everything is handed to Kafka (not necessarily acknowledged nor
	// committed), stop.
	var m string
	waitFor(t, ctx, "rows published", func() bool {
		m = metrics()
		return strings.Contains(m, `strait_producer_records_published_total{table="term.t"} 510`)
	})
	for _, want := range []string{
		`strait_producer_rows_read_total{op="c",table="term.t"} 500`,
		"strait_producer_binlog_position_bytes ",
		"strait_producer_binlog_file_index ",
		"strait_producer_source_lag_seconds ",
		`strait_producer_published_bytes_total{table="term.t"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("producer exited with %v after SIGTERM, want status 0", err)
		}
	case <-ctx.Done():
		t.Fatal("producer did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), "every record read was published") {
		t.Errorf("log lacks the drain confirmation")
	}
	// 500 inserts, 10 deletes, 10 tombstones.
	if got := consume(t, ctx, n+20, "d1.term.t"); len(got) != n+20 {
		t.Errorf("%d records, want %d", len(got), n+20)
	}
}

// waitFor polls cond until it holds or fails the test at ctx's deadline.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// The source password comes from STRAIT_SOURCE_PASSWORD or
// source.password_file, not both; an empty file is refused, not taken for
// an empty password.
func TestSourcePasswordFromOneSource(t *testing.T) {
	dir := t.TempDir()
	full, empty := filepath.Join(dir, "pw"), filepath.Join(dir, "empty")
	if err := os.WriteFile(full, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-source.host", "db", "-source.user", "u", "-kafka.brokers", "k:9092", "-kafka.schema_registry_url", "http://r"}
	env := func(pw string) func(string) string {
		return func(k string) string {
			if k == "STRAIT_SOURCE_PASSWORD" {
				return pw
			}
			return ""
		}
	}
	cfg, err := loadConfig("run", "", append(base, "-source.password_file", full), env(""), io.Discard, io.Discard)
	if err != nil || cfg.Source.Password != "s3cret" {
		t.Errorf("password from the file: %v", err)
	}
	for _, c := range []struct {
		file, env, want string
	}{{full, "other", "both set"}, {empty, "", "is empty"}} {
		_, err := loadConfig("run", "", append(base, "-source.password_file", c.file), env(c.env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("file %s, variable %q: %v, want an error saying %q", c.file, c.env, err, c.want)
		}
	}
}
