package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// At the default level the producer logs its state changes, not its
// traffic: 1,000 source transactions, each published in a Kafka
// transaction of its own (the worst case for the Kafka client's chatter),
// add no line to the log after the first 100.
func TestLogVolumeBoundedAtDefaultLevel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE logvol", "CREATE TABLE logvol.t (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("lv")
	p := startProducer(t, producerArgs(t, ctx, prefix, "logvol.*", "-kafka.transaction_max_records", "1"))
	insert := func(from, to int) {
		t.Helper()
		stmts := make([]string, 0, to-from)
		for i := from; i < to; i++ {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, %d)", i, i)) // one source transaction each
		}
		if err := env.db.Exec(ctx, "logvol", stmts...); err != nil {
			t.Fatal(err)
		}
		consume(t, ctx, to, prefix+".logvol.t") // every one published and committed
	}
	lines := func() int { return strings.Count(p.logs.String(), "\n") }

	insert(0, 100)
	first := lines()
	insert(100, 1000)
	all := lines()
	// The start (config, HTTP, connections, snapshot plan, the topic)
	// takes about a dozen lines.
	const bound = 30
	t.Logf("%d log lines after 1,000 transactions, %d after the first 100; by message:\n%s", all, first, byMessage(p.logs.String()))
	if all > bound || all-first > 2 {
		t.Errorf("%d log lines after 1,000 transactions (%d after the first 100), want at most %d and no growth with the traffic; lines by message:\n%s",
			all, first, bound, byMessage(p.logs.String()))
	}
}

// byMessage counts a text log's lines by their msg, most frequent first.
func byMessage(log string) string {
	counts := map[string]int{}
	msg := regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*"|\S+)`)
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		m := msg.FindStringSubmatch(line)
		if m == nil {
			m = []string{"", line}
		}
		counts[m[1]]++
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%6d %s\n", counts[k], k)
	}
	return b.String()
}
