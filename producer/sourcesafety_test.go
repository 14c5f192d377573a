package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
)

// TestCheckAndRunAgree sets the source the ways real servers are set —
// binlog_format STATEMENT and MIXED (MariaDB's default), binlog_row_image
// MINIMAL and NOBLOB, a source.include that captures nothing — and runs
// `producer check` and `producer run` against each: check fails exactly
// the setting, and run refuses to start with that setting's detail and fix
// (binlog.Preflight is check's verdict). On the server as strait needs it
// both pass.
func TestCheckAndRunAgree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS agree", "CREATE DATABASE agree",
		"CREATE TABLE agree.t (id INT PRIMARY KEY, u UUID, a INET6)"); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		env.db.Exec(context.Background(), "", "SET GLOBAL binlog_format = 'ROW'", "SET GLOBAL binlog_row_image = 'FULL'")
	}
	t.Cleanup(restore)
	for _, c := range []struct {
		name, global, include string
		fails                 string // the check that fails, "" for none
		says                  string
	}{
		{"as strait needs it", "", "agree.*", "", ""},
		{"STATEMENT", "SET GLOBAL binlog_format = 'STATEMENT'", "agree.*", "binlog_format", "binlog_format=STATEMENT"},
		{"MIXED", "SET GLOBAL binlog_format = 'MIXED'", "agree.*", "binlog_format", "binlog_format=MIXED"},
		{"MINIMAL", "SET GLOBAL binlog_row_image = 'MINIMAL'", "agree.*", "binlog_row_image", "binlog_row_image=MINIMAL"},
		{"NOBLOB", "SET GLOBAL binlog_row_image = 'NOBLOB'", "agree.*", "binlog_row_image", "binlog_row_image=NOBLOB"},
		{"nothing captured", "", "nosuchdb.*", "captured tables", "database nosuchdb named in source.include does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			restore()
			if c.global != "" {
				if err := env.db.Exec(ctx, "", c.global); err != nil {
					t.Fatal(err)
				}
			}
			prefix := uniquePrefix("agree")
			var out bytes.Buffer
			checkErr := run(ctx, []string{"check", "-source.host", env.db.Host, "-source.port", fmt.Sprint(env.db.Port),
				"-source.user", env.db.User, "-source.include", c.include, "-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","),
				"-kafka.topic_prefix", prefix, "-kafka.schema_registry_url", env.registry.URL()}, func(string) string { return "" }, &out, io.Discard)
			var failed []string
			for _, line := range strings.Split(out.String(), "\n") {
				if name, ok := strings.CutPrefix(line, "FAIL "); ok {
					failed = append(failed, name[:strings.Index(name, ":")])
				}
			}
			p := startProducer(t, producerArgs(t, ctx, prefix, c.include))
			if c.fails == "" {
				if checkErr != nil || len(failed) > 0 {
					t.Fatalf("check: %v, failed %v:\n%s", checkErr, failed, out.String())
				}
				waitFor(t, ctx, "the stream started", func() bool { return strings.Contains(p.logs.String(), "binlog stream started") })
				if err := p.stop(); err != nil {
					t.Fatalf("run: %v", err)
				}
				return
			}
			if checkErr == nil || len(failed) != 1 || failed[0] != c.fails || !strings.Contains(out.String(), c.says) {
				t.Errorf("check: %v, failed %v, want only %s saying %q:\n%s", checkErr, failed, c.fails, c.says, out.String())
			}
			runErr := p.wait(t, ctx)
			var pe *binlog.PreflightError
			if !errors.As(runErr, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Name != c.fails || !strings.Contains(runErr.Error(), c.says) ||
				!strings.Contains(runErr.Error(), "fix:") {
				t.Errorf("run ended with %v, want the refusal of %s saying %q and its fix", runErr, c.fails, c.says)
			}
			if strings.Contains(p.logs.String(), "binlog stream started") {
				t.Error("run read the binlog of a server check fails")
			}
		})
	}
}

// TestSameServerIDNamed: a second producer of another pipeline started with
// the first one's server_id makes the source cut the first off; the first
// stops with an error naming the collision and the fix, and `producer
// check` with that server_id fails while the second runs. Two pipelines
// with different topic prefixes get different default server_ids.
func TestSameServerIDNamed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS sameid", "CREATE DATABASE sameid", "CREATE TABLE sameid.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if a, b := binlog.DefaultServerID("pipeline_a"), binlog.DefaultServerID("pipeline_b"); a == b || a < 1<<30 {
		t.Errorf("default server_ids %d and %d: want two different ids from 2^30 up", a, b)
	}
	first := startProducer(t, producerArgs(t, ctx, uniquePrefix("sameid_a"), "sameid.*", "-source.server_id", "4242"))
	waitFor(t, ctx, "the first stream", func() bool { return strings.Contains(first.logs.String(), "binlog stream started") })
	second := startProducer(t, producerArgs(t, ctx, uniquePrefix("sameid_b"), "sameid.*", "-source.server_id", "4242"))
	err := first.wait(t, ctx)
	if err == nil || !strings.Contains(err.Error(), "server_id 4242") || !strings.Contains(err.Error(), "give each producer its own source.server_id") {
		t.Errorf("the first producer ended with %v, want the collision named with its fix", err)
	}
	var out bytes.Buffer
	run(ctx, []string{"check", "-source.host", env.db.Host, "-source.port", fmt.Sprint(env.db.Port), "-source.user", env.db.User,
		"-source.include", "sameid.*", "-source.server_id", "4242", "-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","),
		"-kafka.schema_registry_url", env.registry.URL()}, func(string) string { return "" }, &out, io.Discard)
	if !strings.Contains(out.String(), "FAIL server_id in use: a replica from") {
		t.Errorf("check while the second producer runs:\n%s", out.String())
	}
	if err := second.stop(); err != nil {
		t.Error(err)
	}
}

// TestStatementSessionStopsRun: a session writing a captured table with
// binlog_format=STATEMENT stops `producer run` with the table, the position
// and the fix; what the stream published before stays, and neither the
// statement nor its values reach any topic.
func TestStatementSessionStopsRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS stmtrun", "CREATE DATABASE stmtrun",
		"CREATE TABLE stmtrun.users (id INT PRIMARY KEY, email VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("stmtrun")
	p := startProducer(t, producerArgs(t, ctx, prefix, "stmtrun.*"))
	waitFor(t, ctx, "the stream", func() bool { return strings.Contains(p.logs.String(), "binlog stream started") })
	if err := env.db.Exec(ctx, "stmtrun", "INSERT INTO users VALUES (1, 'kept@x.test')",
		"SET SESSION binlog_format = 'STATEMENT'", "INSERT INTO users VALUES (2, 'lost@x.test')"); err != nil {
		t.Fatal(err)
	}
	err := p.wait(t, ctx)
	var ue *binlog.UnknowableError
	if !errors.As(err, &ue) || ue.Table != "stmtrun.users" || !strings.Contains(err.Error(), "binlog_format=ROW") {
		t.Fatalf("run ended with %v, want an UnknowableError of stmtrun.users with the fix", err)
	}
	got := readToEnd(t, ctx, prefix+".stmtrun.users")
	if len(got) != 1 || fmt.Sprint(unwrap(row(got[0].Value, "after")["email"])) != "kept@x.test" {
		t.Errorf("topic holds %v, want the one row written in ROW format", got)
	}
	for _, c := range readToEnd(t, ctx, prefix+"._schema_changes") {
		if strings.Contains(fmt.Sprint(c.Value), "lost@x.test") {
			t.Errorf("the statement was published as a schema change: %v", c.Value)
		}
	}
}
