package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
