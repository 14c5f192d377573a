package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// At the default level the consumer logs its state changes, not its
// traffic: 1,000 source transactions (each a Kafka transaction, as the
// producer writes them at worst) add no line to the log after the first
// 100.
func TestLogVolumeBoundedAtDefaultLevel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const prefix = "logvolume"
	pub := newPublisher(t, prefix)
	c := startConsumer(t, consumerArgs(prefix, "g", "logvolume"))
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			pub.publish(ctx, ins(users, user(int64(i), fmt.Sprintf("u%d@x", i), "1.00")...))
		}
		waitCommitted(t, ctx, "g", prefix+".shop.users") // every one applied
	}
	lines := func() int { return strings.Count(c.logs.String(), "\n") }

	publish(0, 100)
	first := lines()
	publish(100, 1000)
	all := lines()
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	stopped := lines()
	// The start (HTTP, consuming, the group's assignment, the dataset and
	// the table) and the stop take about eight lines; franz-go alone logged
	// 15 at INFO to join the group.
	const bound = 12
	testenv.CheckLogVolume(t, c.logs.String(), first, all, stopped, bound)
}

// A consumer started behind the topics logs once that it caught up: every
// partition it reads applied and committed to its end.
func TestCaughtUpLoggedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prefix = "caughtup"
	pub := newPublisher(t, prefix)
	for i := range 50 { // the backlog
		pub.publish(ctx, ins(users, user(int64(i), "u@x", "1.00")...))
	}
	c := startConsumer(t, consumerArgs(prefix, "g", "caughtup"))
	const caughtUp = `msg="caught up with the topics"`
	waitCommitted(t, ctx, "g", prefix+".shop.users")
	waitLogged(t, ctx, c, caughtUp)
	for i := 50; i < 60; i++ {
		pub.publish(ctx, ins(users, user(int64(i), "u@x", "1.00")...))
	}
	waitCommitted(t, ctx, "g", prefix+".shop.users")
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(c.logs.String(), caughtUp); n != 1 {
		t.Errorf("caught up logged %d times, want once:\n%s", n, c.logs.String())
	}
}
