package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// At the default level the producer logs its state changes, not its
// traffic: 1,000 source transactions, each published in a Kafka
// transaction of its own (the worst case for the Kafka client's chatter),
// add no line to the log after the first 100.
func TestLogVolumeBoundedAtDefaultLevel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS logvol", "CREATE DATABASE logvol", "CREATE TABLE logvol.t (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("lv")
	p := startProducer(t, producerArgs(t, ctx, prefix, "logvol.*", "-kafka.transaction_max_records", "1"))
	ctx, ended := context.WithCancel(ctx)
	defer ended()
	go func() { // a producer that ends fails the waits at once, not at the deadline
		select {
		case <-p.done:
			ended()
		case <-ctx.Done():
		}
	}()
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
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	stopped := lines()
	// The start (HTTP, the source, Kafka, the topics, caught up) and the
	// stop take about ten lines; franz-go alone logged four per
	// transaction, go-mysql seven around a run.
	const bound = 30
	testenv.CheckLogVolume(t, p.logs.String(), first, all, stopped, bound)
}
