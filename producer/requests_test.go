package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/kafka"
)

// TestSnapshotRequestsSafeAndRepeatable: `producer snapshot` works any
// number of times per prefix (the second call failed with
// TOPIC_ALREADY_EXISTS), refuses a condition that is not a plain condition
// over the table before writing anything, and a request written straight
// to <prefix>._signals with an injection is refused by the producer, which
// goes on streaming: no row of a table outside the capture reaches any
// topic.
func TestSnapshotRequestsSafeAndRepeatable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS inj", "CREATE DATABASE inj", "SET SESSION max_recursive_iterations = 100",
		"CREATE TABLE inj.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO inj.t WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < 20) SELECT k, 'public' FROM s",
		"CREATE TABLE inj.secret (a INT PRIMARY KEY, b VARCHAR(20))", "INSERT INTO inj.secret VALUES (1, 'SECRET'), (2, 'SECRET')"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("inj")
	topic := prefix + ".inj.t"
	p := startProducer(t, producerArgs(t, ctx, prefix, "inj.t", "-source.heartbeat_period", "1s"))
	waitFor(t, ctx, "the stream", func() bool { return strings.Contains(p.logs.String(), "binlog stream started") })
	snapshot := func(extra ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"snapshot", "-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","),
			"-kafka.topic_prefix", prefix, "-kafka.schema_registry_url", env.registry.URL(), "-source.include", "inj.t", "-tables", "inj.t"}, extra...),
			func(string) string { return "" }, &out, io.Discard)
		return out.String(), err
	}
	reads := func() map[string]int {
		got := map[string]int{}
		for _, c := range readToEnd(t, ctx, topic) {
			if c.Value != nil && c.Value["op"] == "r" {
				got[fmt.Sprint(c.Key["id"])]++
			}
		}
		return got
	}
	for _, where := range []string{"1=0) UNION ALL SELECT a, b FROM inj.secret WHERE (1=1", "SLEEP(5) = 0", "id > 0; DROP TABLE inj.t"} {
		if out, err := snapshot("-where", where); err == nil || !strings.Contains(err.Error(), "snapshot filter refused") {
			t.Errorf("-where %q: %q, %v; want it refused", where, out, err)
		}
	}
	for i, c := range []struct {
		where string
		ids   []int
	}{{"id <= 5", []int{1, 5}}, {"id > 15", []int{16, 20}}, {"", []int{6, 15}}} {
		args := []string{}
		if c.where != "" {
			args = append(args, "-where", c.where)
		}
		if out, err := snapshot(args...); err != nil || !strings.Contains(out, "requested") {
			t.Fatalf("request %d: %q, %v", i+1, out, err)
		}
		waitFor(t, ctx, fmt.Sprintf("the rows of request %d", i+1), func() bool {
			got := reads()
			for id := c.ids[0]; id <= c.ids[1]; id++ {
				if got[fmt.Sprint(id)] == 0 {
					return false
				}
			}
			return true
		})
	}
	// Straight to the topic, past the command's check.
	cfg := &kafka.Config{}
	cfg.Defaults()
	cfg.Brokers, cfg.TopicPrefix = env.kafka.ListenAddrs(), prefix
	if _, err := kafka.SendSignal(ctx, cfg, kafka.Signal{Type: "snapshot", Tables: []string{"inj.t"},
		Filter: "1=0) UNION ALL SELECT a, b FROM inj.secret WHERE (1=1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the forged request refused", func() bool { return strings.Contains(p.logs.String(), "snapshot request refused") })
	if err := env.db.Exec(ctx, "inj", "INSERT INTO t VALUES (100, 'after')"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the stream going on", func() bool {
		for _, c := range readToEnd(t, ctx, topic) {
			if c.Value != nil && c.Value["op"] == "c" {
				return true
			}
		}
		return false
	})
	for _, c := range readToEnd(t, ctx, topic) {
		if strings.Contains(fmt.Sprint(c.Value), "SECRET") {
			t.Fatalf("a row of inj.secret reached %s: %v", topic, c.Value)
		}
	}
}

// TestFailedRequestEndsAndCancel: a snapshot request the source cannot
// serve (a table whose configured snapshot key is not unique; before, any
// such error exited the producer, and as the request was checkpointed, at
// every restart) ends as failed, with the reason, in the checkpoint and in
// `producer snapshot -list`; the stream goes on, and a restart does not
// take the request again. `-cancel ID` ends a snapshot being read: none of
// its rows are published.
func TestFailedRequestEndsAndCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS req", "CREATE DATABASE req", "CREATE TABLE req.ok (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("req")
	args := producerArgs(t, ctx, prefix, "req.*", "-source.snapshot_keys", "req.dup:k", "-source.heartbeat_period", "1s")
	p := startProducer(t, args)
	waitFor(t, ctx, "the stream", func() bool { return strings.Contains(p.logs.String(), "binlog stream started") })
	if err := env.db.Exec(ctx, "req", "CREATE TABLE dup (k INT NOT NULL, v INT)", "INSERT INTO dup VALUES (1, 1), (1, 2)",
		"CREATE TABLE big (id INT PRIMARY KEY)", "INSERT INTO big VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	snapshot := func(extra ...string) string {
		t.Helper()
		var out bytes.Buffer
		err := run(ctx, append([]string{"snapshot", "-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","),
			"-kafka.topic_prefix", prefix, "-kafka.schema_registry_url", env.registry.URL(), "-source.include", "req.*"}, extra...),
			func(string) string { return "" }, &out, io.Discard)
		if err != nil {
			t.Fatalf("producer snapshot %v: %v", extra, err)
		}
		return out.String()
	}
	request := func(table string) string {
		t.Helper()
		m := regexp.MustCompile(`offset (\d+)\)`).FindStringSubmatch(snapshot("-tables", table))
		if m == nil {
			t.Fatalf("producer snapshot -tables %s: no offset in its output", table)
		}
		return m[1]
	}
	// state is the STATE column of the -list line of request id's table.
	state := func(id, table string) string {
		for _, line := range strings.Split(snapshot("-list"), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[0] == id && f[2] == table {
				return strings.Join(f[3:], " ")
			}
		}
		return ""
	}
	streamed := func(id int) {
		t.Helper()
		if err := env.db.Exec(ctx, "req", fmt.Sprintf("INSERT INTO ok VALUES (%d)", id)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, fmt.Sprintf("row %d of req.ok streamed", id), func() bool {
			for _, c := range readToEnd(t, ctx, prefix+".req.ok") {
				if c.Key != nil && fmt.Sprint(c.Key["id"]) == fmt.Sprint(id) {
					return true
				}
			}
			return false
		})
	}

	dup := request("req.dup")
	waitFor(t, ctx, "the request to end as failed", func() bool { return strings.HasPrefix(state(dup, "req.dup"), "failed") })
	if s := state(dup, "req.dup"); !strings.Contains(s, "not a unique index of req.dup") {
		t.Errorf("-list shows the failed request as %q, want the reason", s)
	}
	streamed(1)

	lock, err := env.db.Conn(ctx, "req")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.Execute("LOCK TABLES big WRITE"); err != nil {
		t.Fatal(err)
	}
	big := request("req.big")
	waitFor(t, ctx, "the snapshot of req.big to be read", func() bool { return state(big, "req.big") == "reading" })
	out := snapshot("-cancel", big)
	if !strings.Contains(out, "cancellation of request "+big) {
		t.Errorf("-cancel says %q", out)
	}
	waitFor(t, ctx, "the snapshot of req.big to be cancelled", func() bool { return strings.HasPrefix(state(big, "req.big"), "cancelled") })
	if _, err := lock.Execute("UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	streamed(2)
	m := getText(t, p.httpAddr(t, ctx)+"/metrics")
	for _, want := range []string{`strait_producer_snapshot_failures_total{table="req.dup"} 1`, `strait_producer_snapshot_failures_total{table="req.big"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	for _, c := range readToEnd(t, ctx, prefix+".req.big") {
		if c.Value != nil && c.Value["op"] == "r" {
			t.Errorf("a row of the cancelled snapshot was published: %v", c.Key)
		}
	}

	// A restart neither takes the failed request again nor forgets it.
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	p = startProducer(t, withoutStart(args))
	streamed(3)
	if strings.Contains(p.logs.String(), "snapshot of a table") {
		t.Errorf("the restarted producer snapshots again:\n%s", p.logs.String())
	}
	if s := state(dup, "req.dup"); !strings.HasPrefix(s, "failed") {
		t.Errorf("after a restart -list shows the failed request as %q", s)
	}
	if m := getText(t, p.httpAddr(t, ctx)+"/metrics"); strings.Contains(m, "strait_producer_snapshot_failures_total{") {
		t.Errorf("the restarted producer counts snapshot failures again:\n%s", m)
	}
}
