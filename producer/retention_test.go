package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// headroomAlert returns the threshold of StraitBinlogHeadroomLow in
// deploy/prometheus/alerts.yml, which must have the form
// `strait_producer_binlog_retention_headroom_seconds < <n> [* <m>]`.
func headroomAlert(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`alert: StraitBinlogHeadroomLow\s+(?:#.*\s+)*expr: strait_producer_binlog_retention_headroom_seconds < ([0-9.]+)(?: \* ([0-9.]+))?\n`).FindSubmatch(b)
	if m == nil {
		t.Fatal("alerts.yml: no rule StraitBinlogHeadroomLow of the form strait_producer_binlog_retention_headroom_seconds < n [* m]")
	}
	limit, _ := strconv.ParseFloat(string(m[1]), 64)
	if len(m[2]) > 0 {
		f, _ := strconv.ParseFloat(string(m[2]), 64)
		limit *= f
	}
	return limit
}

// queryOne returns the first column of the first row of q on the shared
// server.
func queryOne(t *testing.T, ctx context.Context, q string) string {
	t.Helper()
	rows, err := env.db.Query(ctx, "", q)
	if err != nil || len(rows) == 0 || rows[0][0] == nil {
		t.Fatalf("%s: %v, %v", q, rows, err)
	}
	return *rows[0][0]
}

// With the server's default retention (never purged) the headroom is
// infinite and the alert quiet. Stopped, the source's retention shrunk to
// an hour and the binlog rotated, a second run shows the retention and a
// headroom under the alert's threshold while the binlog the checkpoint
// needs is still on the server: the alert fires before the purge.
func TestRetentionHeadroomAlertsBeforePurge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	limit := headroomAlert(t)
	db := env.db
	if err := db.Exec(ctx, "", "CREATE DATABASE headroom", "CREATE TABLE headroom.t (id INT PRIMARY KEY)", "INSERT INTO headroom.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("hr")
	args := withoutStart(producerArgs(t, ctx, prefix, "headroom.*", "-source.retention_interval", "1s"))
	p := startProducer(t, args)
	consume(t, ctx, 1, prefix+".headroom.t")
	addr := p.httpAddr(t, ctx)
	waitFor(t, ctx, "an infinite headroom (binlogs never expire)", func() bool {
		m := scrape(addr)
		return math.IsInf(m["strait_producer_binlog_retention_seconds"], 1) && math.IsInf(m["strait_producer_binlog_retention_headroom_seconds"], 1)
	})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}

	old := queryOne(t, ctx, "SELECT @@global.binlog_expire_logs_seconds")
	t.Cleanup(func() {
		if err := db.Exec(context.Background(), "", "SET GLOBAL binlog_expire_logs_seconds = "+old); err != nil {
			t.Error(err)
		}
	})
	needed := queryOne(t, ctx, "SHOW MASTER STATUS") // holds the checkpoint
	if err := db.Exec(ctx, "", "INSERT INTO headroom.t VALUES (2)", "SET GLOBAL binlog_expire_logs_seconds = 3600", "FLUSH BINARY LOGS"); err != nil {
		t.Fatal(err)
	}
	p = startProducer(t, args)
	addr = p.httpAddr(t, ctx)
	var headroom float64
	waitFor(t, ctx, "the retention of an hour and a headroom under it", func() bool {
		m := scrape(addr)
		headroom = m["strait_producer_binlog_retention_headroom_seconds"]
		return m["strait_producer_binlog_retention_seconds"] == 3600 && headroom <= 3600 && headroom > 0
	})
	if !(headroom < limit) {
		t.Errorf("headroom %v s: StraitBinlogHeadroomLow (under %v s) does not fire", headroom, limit)
	}
	logs, err := db.Query(ctx, "", "SHOW BINARY LOGS")
	if err != nil || !slices.ContainsFunc(logs, func(r []*string) bool { return *r[0] == needed }) {
		t.Errorf("the alert fired, but the binlog %s the checkpoint needed is gone already (%v)", needed, err)
	}
	consume(t, ctx, 2, prefix+".headroom.t")
}

// The checkpoint's binlog purged while the producer was stopped, with
// source.snapshot=when_needed: the tables written meanwhile (a, c) are
// snapshotted again and the one that was not (b) is not; the stream goes
// on from the server's oldest binlog, and every table's topic ends equal
// to the table, nothing lost.
func TestLostBinlogResnapshotsOnlyChangedTables(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := env.db
	// InnoDB forgets a table's change time when the table leaves its
	// cache (then b would be snapshotted again, rightly): room for every
	// table the package's tests create.
	cache := queryOne(t, ctx, "SELECT @@global.table_definition_cache")
	t.Cleanup(func() {
		if err := db.Exec(context.Background(), "", "SET GLOBAL table_definition_cache = "+cache); err != nil {
			t.Error(err)
		}
	})
	if err := db.Exec(ctx, "", "SET GLOBAL table_definition_cache = 10000", "CREATE DATABASE lostrange",
		"CREATE TABLE lostrange.a (id INT PRIMARY KEY, v VARCHAR(20))", "CREATE TABLE lostrange.b (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE lostrange.c (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO lostrange.a VALUES (1, 'a1'), (2, 'a2')", "INSERT INTO lostrange.b VALUES (1, 'b1'), (2, 'b2')",
		"INSERT INTO lostrange.c VALUES (1, 'c1'), (2, 'c2')"); err != nil {
		t.Fatal(err)
	}
	written, _ := strconv.ParseInt(queryOne(t, ctx, "SELECT UNIX_TIMESTAMP()"), 10, 64)
	prefix := uniquePrefix("lr")
	topics := []string{prefix + ".lostrange.a", prefix + ".lostrange.b", prefix + ".lostrange.c"}
	args := withoutStart(producerArgs(t, ctx, prefix, "lostrange.*", "-source.snapshot", "when_needed", "-source.lost_clock_margin", "1s"))
	p := startProducer(t, args)
	consume(t, ctx, 6, topics...)
	// The checkpoint's last transaction commits 2 s after b's last change
	// at least, so that b is older than it less the margin (times count
	// whole seconds).
	waitFor(t, ctx, "the server's clock 2 s past the tables' writes", func() bool {
		now, _ := strconv.ParseInt(queryOne(t, ctx, "SELECT UNIX_TIMESTAMP()"), 10, 64)
		return now >= written+2
	})
	if err := db.Exec(ctx, "lostrange", "UPDATE a SET v = 'a1+' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	consume(t, ctx, 7, topics...)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	// Changes in a binlog then purged: to a and c, none to b.
	if err := db.Exec(ctx, "lostrange", "UPDATE a SET v = 'a1++' WHERE id = 1", "DELETE FROM a WHERE id = 2",
		"INSERT INTO a VALUES (3, 'a3')", "INSERT INTO c VALUES (3, 'c3')"); err != nil {
		t.Fatal(err)
	}
	purgeBinlogs(t, ctx)
	p = startProducer(t, args)
	waitFor(t, ctx, "the producer streams again", func() bool {
		return strings.Contains(p.logs.String(), "binlog stream started")
	})
	if err := db.Exec(ctx, "lostrange", "INSERT INTO b VALUES (3, 'b3')"); err != nil {
		t.Fatal(err)
	}
	logs := p.logs.String()
	for _, want := range []string{`msg="snapshot again: changed since the checkpoint (UPDATE_TIME)" tables="[lostrange.a lostrange.c]"`,
		`msg="not snapshotted again: unchanged since before the checkpoint`, `tables=[lostrange.b]`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %s:\n%s", want, logs)
		}
	}

	// Each topic's latest row per key equals its table (a's lost delete of
	// row 2 aside: no record of it exists — README, "Snapshots").
	want := map[string]map[string]string{
		topics[0]: {"1": "a1++", "2": "a2", "3": "a3"},
		topics[1]: {"1": "b1", "2": "b2", "3": "b3"},
		topics[2]: {"1": "c1", "2": "c2", "3": "c3"},
	}
	got := map[string]map[string]string{}
	after := map[string][]string{} // changes in epoch 1, "op id"
	waitFor(t, ctx, "every topic's latest row per key equals its table", func() bool {
		for _, topic := range topics {
			state := map[string]string{}
			after[topic] = nil
			for _, c := range readToEnd(t, ctx, topic) {
				if c.Value == nil {
					continue
				}
				id := fmt.Sprint(c.Key["id"])
				if a := row(c.Value, "after"); a != nil {
					state[id] = fmt.Sprint(unwrap(a["v"]))
				} else {
					delete(state, id)
				}
				seq := fmt.Sprint(unwrap(unwrap(c.Value["source"]).(map[string]any)["sequence"]))
				if strings.HasPrefix(seq, "0000000000000001/") {
					after[topic] = append(after[topic], fmt.Sprintf("%v %v", c.Value["op"], c.Key["id"]))
				}
			}
			got[topic] = state
		}
		return cmp.Equal(got, want)
	})
	for _, topic := range topics {
		slices.Sort(after[topic])
	}
	wantAfter := map[string][]string{
		topics[0]: {"r 1", "r 3"},        // snapshotted again (row 2 is gone from the table)
		topics[1]: {"c 3"},               // not snapshotted again: only the change after the restart
		topics[2]: {"r 1", "r 2", "r 3"}, // snapshotted again
	}
	if diff := cmp.Diff(after, wantAfter); diff != "" {
		t.Errorf("changes after the restart, in the new epoch (-got +want):\n%s", diff)
	}
}
