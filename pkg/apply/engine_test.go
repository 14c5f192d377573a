package apply_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/apply"
	"github.com/strait-cdc/strait/pkg/sink"
)

// Topics of the tests: tables a and b of database shop.
const (
	topicA = prefix + ".shop.a"
	topicB = prefix + ".shop.b"
)

// engine is an Engine running on the fakes, in a synctest bubble.
type engine struct {
	t      *testing.T
	k      *fakeKafka
	s      *fakeSink
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startEngine runs an engine with the defaults changed by edit, polls of
// perPoll records a topic, and a sink that answers with write.
func startEngine(t *testing.T, perPoll int, edit func(*apply.Config), write func(ctx context.Context, topic string, changes []sink.Change) error) *engine {
	cfg := &apply.Config{TopicPrefix: prefix, WaitMaxBackoff: 2 * time.Second}
	cfg.Defaults()
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := newFakeSink(t, write)
	e := &engine{t: t, k: newFakeKafka(t, s, perPoll), s: s, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	eng := apply.New(cfg, e.k, s, log, e.reg)
	go func() { e.done <- eng.Run(ctx) }()
	return e
}

// stop stops the engine as SIGTERM does and waits for Run.
func (e *engine) stop() {
	e.t.Helper()
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("Run: %v", err)
	}
}

// metric returns the value of the gauge or counter name with labels, 0
// when there is none.
func (e *engine) metric(name string, labels ...string) float64 {
	e.t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// checkInOrder fails unless topic's calls cover offsets 0 to n-1 once
// each, in order, each starting after the one before finished.
func checkInOrder(t *testing.T, calls []call, topic string, n int64) {
	t.Helper()
	next := int64(0)
	for i, c := range calls {
		if c.first != next {
			t.Errorf("%s: call %d applies offsets %d-%d, want from %d", topic, i, c.first, c.last, next)
		}
		if i > 0 && c.start.Before(calls[i-1].finish) {
			t.Errorf("%s: call %d started before call %d finished", topic, i, i-1)
		}
		next = c.last + 1
	}
	if next != n {
		t.Errorf("%s: applied up to offset %d, want %d", topic, next, n)
	}
}

// A topic's batches reach the sink one after the other in poll order,
// even when a later poll's batch would be quicker to apply than an earlier
// one; other topics go on meanwhile.
func TestBatchesOfATopicApplyInPollOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startEngine(t, 2, func(c *apply.Config) { c.MaxPollsInFlight = 4 }, func(_ context.Context, topic string, changes []sink.Change) error {
			// The first batch of a is slow; later ones quicker, the
			// later the quicker.
			d := time.Duration(10-changes[0].Offset) * 10 * time.Millisecond
			if topic == topicA && changes[0].Offset == 0 {
				d = 3 * time.Second
			}
			time.Sleep(d)
			return nil
		})
		e.k.produce(topicA, 10)
		e.k.produce(topicB, 10)
		time.Sleep(time.Minute)
		e.stop()
		for _, topic := range []string{topicA, topicB} {
			checkInOrder(t, e.s.callsOf(topic), topic, 10)
			if got := e.k.committedOf(topic); got != 10 {
				t.Errorf("%s committed up to %d, want 10", topic, got)
			}
		}
	})
}

// A poll is committed only once the sink acknowledged all of it (the fake
// group also fails any commit of an offset not acknowledged).
func TestCommitWaitsForTheSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startEngine(t, 10, nil, func(_ context.Context, topic string, changes []sink.Change) error {
			if topic == topicA {
				time.Sleep(5 * time.Second)
			}
			return nil
		})
		e.k.produce(topicA, 2)
		e.k.produce(topicB, 2)
		time.Sleep(2 * time.Second)
		if a, b := e.k.committedOf(topicA), e.k.committedOf(topicB); a != 0 || b != 0 {
			t.Errorf("while a is applied: committed a %d, b %d; want 0 for both (one poll)", a, b)
		}
		time.Sleep(4 * time.Second)
		if a, b := e.k.committedOf(topicA), e.k.committedOf(topicB); a != 2 || b != 2 {
			t.Errorf("once a is applied: committed a %d, b %d; want 2 for both", a, b)
		}
		if got := e.metric("strait_consumer_polls_in_flight"); got != 0 {
			t.Errorf("polls in flight %v, want 0", got)
		}
		e.stop()
	})
}

// At shutdown the polls in flight are finished and committed; what the
// sink has not acknowledged by the shutdown timeout is not committed.
func TestShutdownFinishesThePollsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name      string
		apply     time.Duration // how long the sink takes
		committed int64
		returns   time.Duration // when Run returns after the cancel
	}{
		{"within the timeout", 2 * time.Second, 2, 2 * time.Second},
		{"beyond the timeout", time.Hour, 0, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := startEngine(t, 10, nil, func(ctx context.Context, _ string, _ []sink.Change) error {
					select {
					case <-time.After(tc.apply):
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
				e.k.produce(topicA, 2)
				time.Sleep(100 * time.Millisecond)
				start := time.Now()
				e.stop()
				if d := time.Since(start); d < tc.returns-100*time.Millisecond || d > tc.returns {
					t.Errorf("Run returned %s after the cancel, want %s", d, tc.returns)
				}
				if got := e.k.committedOf(topicA); got != tc.committed {
					t.Errorf("a committed up to %d, want %d", got, tc.committed)
				}
			})
		})
	}
}

// Before partitions leave (OnRevoke), every poll in flight is applied and
// committed.
func TestRevokeFinishesAndCommitsThePollsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := startEngine(t, 1, func(c *apply.Config) { c.MaxPollsInFlight = 8 }, func(context.Context, string, []sink.Change) error {
			time.Sleep(2 * time.Second)
			return nil
		})
		e.k.produce(topicA, 3)
		time.Sleep(100 * time.Millisecond)
		got := <-e.k.revoke()
		if got.polled[topicA] != 3 || got.committed[topicA] != 3 {
			t.Errorf("after the revoke hook: polled %d, committed %d; want 3 and 3", got.polled[topicA], got.committed[topicA])
		}
		if d := time.Since(start); d < 6*time.Second {
			t.Errorf("the revoke hook returned after %s, before the three 2s applies of a were done", d)
		}
		e.stop()
	})
}

// A table the sink is not ready for holds its topic: its changes are read
// again after a backoff that doubles up to the maximum, while the other
// topics flow; once the sink is ready every change lands in order.
func TestWaitErrorHoldsTheTopicWhileOthersFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := startEngine(t, 10, nil, func(_ context.Context, topic string, changes []sink.Change) error {
			if topic == topicA && time.Since(start) < 3*time.Second {
				return &sink.WaitError{Table: "shop_a", Reason: "schema_not_visible", Err: errors.New("new column not seen yet")}
			}
			return nil
		})
		e.k.produce(topicA, 5)
		for i := range 10 {
			e.k.produce(topicB, 1)
			time.Sleep(200 * time.Millisecond)
			if got := e.k.committedOf(topicB); got != int64(i+1) {
				t.Errorf("at %s b is committed up to %d, want %d: b waits for a", time.Since(start), got, i+1)
			}
		}
		if got := e.metric("strait_consumer_table_waiting", "table", "shop_a"); got != 1 {
			t.Errorf("shop_a waiting %v, want 1", got)
		}
		time.Sleep(10 * time.Second)
		e.stop()

		calls := e.s.callsOf(topicA)
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} // the maximum is 2s
		if len(calls) != len(want)+1 {
			t.Fatalf("a applied %d times, want %d: %+v", len(calls), len(want)+1, calls)
		}
		for i, c := range calls {
			if c.first != 0 || c.last != 4 {
				t.Errorf("call %d of a: offsets %d-%d, want 0-4: the held changes again", i, c.first, c.last)
			}
			if i == 0 {
				continue
			}
			if gap := c.start.Sub(calls[i-1].start); gap < want[i-1] || gap > want[i-1]+100*time.Millisecond {
				t.Errorf("retry %d of a after %s, want %s", i, gap, want[i-1])
			}
		}
		if got := e.k.committedOf(topicA); got != 5 {
			t.Errorf("a committed up to %d, want 5", got)
		}
		if got := e.metric("strait_consumer_table_retries_total", "table", "shop_a", "reason", "schema_not_visible"); got != 3 {
			t.Errorf("retries of shop_a %v, want 3", got)
		}
		if got := e.metric("strait_consumer_table_waiting", "table", "shop_a"); got != 0 {
			t.Errorf("shop_a waiting %v after it went on, want 0", got)
		}
	})
}

// The batches of a topic polled after one that must wait are not applied
// before it: they wait with it, and the topic is read again from the
// first held change.
func TestLaterBatchesOfAWaitingTopicWaitWithIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		waited := false
		e := startEngine(t, 2, func(c *apply.Config) { c.MaxPollsInFlight = 4 }, func(_ context.Context, topic string, changes []sink.Change) error {
			if !waited {
				waited = true
				time.Sleep(100 * time.Millisecond) // the next polls of a are read meanwhile
				return &sink.WaitError{Table: "shop_a", Reason: "table_not_found", Err: errors.New("re-created")}
			}
			return nil
		})
		e.k.produce(topicA, 6)
		time.Sleep(10 * time.Second)
		e.stop()
		calls := e.s.callsOf(topicA)
		if len(calls) < 2 || calls[0].first != 0 || calls[0].err == nil {
			t.Fatalf("calls of a %+v, want the first, of offset 0, to wait", calls)
		}
		checkInOrder(t, calls[1:], topicA, 6)
		if got := e.k.committedOf(topicA); got != 6 {
			t.Errorf("a committed up to %d, want 6", got)
		}
	})
}

// A table the sink stopped is retried after stopped_retry_backoff, then
// after twice that up to stopped_retry_max_backoff, and goes on once the
// sink takes its changes; meanwhile it counts as stopped.
func TestStoppedTableIsRetriedAfterItsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		failures := 2
		e := startEngine(t, 10, func(c *apply.Config) {
			c.StoppedRetryBackoff, c.StoppedRetryMaxBackoff = time.Minute, 90*time.Second
		}, func(_ context.Context, topic string, changes []sink.Change) error {
			if topic == topicA && failures > 0 {
				failures--
				return &sink.TableError{Table: "shop_a", Err: errors.New("permission denied")}
			}
			return nil
		})
		e.k.produce(topicA, 3)
		e.k.produce(topicB, 1)
		time.Sleep(10 * time.Second)
		if got := e.metric("strait_consumer_tables_stopped"); got != 1 {
			t.Errorf("tables stopped %v, want 1", got)
		}
		if a, b := e.k.committedOf(topicA), e.k.committedOf(topicB); a != 0 || b != 1 {
			t.Errorf("committed a %d, b %d; want 0 and 1", a, b)
		}
		time.Sleep(5 * time.Minute)
		e.stop()

		calls := e.s.callsOf(topicA)
		want := []time.Duration{time.Minute, 90 * time.Second}
		if len(calls) != 3 {
			t.Fatalf("a applied %d times, want 3: %+v", len(calls), calls)
		}
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].start.Sub(calls[i-1].start); gap < want[i-1] || gap > want[i-1]+time.Second {
				t.Errorf("retry %d of a after %s, want %s", i, gap, want[i-1])
			}
		}
		if got := e.k.committedOf(topicA); got != 3 {
			t.Errorf("a committed up to %d, want 3", got)
		}
		if got := e.metric("strait_consumer_tables_stopped"); got != 0 {
			t.Errorf("tables stopped %v after the retry succeeded, want 0", got)
		}
		if got := e.metric("strait_consumer_table_retries_total", "table", "shop_a", "reason", "stopped"); got != 2 {
			t.Errorf("retries of shop_a %v, want 2", got)
		}
	})
}

// rejectSecond is a sink that rejects the change at index 1 of topic a's
// batches and acknowledges the others.
func rejectSecond(_ context.Context, topic string, changes []sink.Change) error {
	if topic == topicA && len(changes) > 1 {
		return &sink.RejectedError{Table: "shop_a", Rejections: []sink.Rejection{{Index: 1, Reason: "row_rejected", Err: errors.New("value out of range")}}}
	}
	return nil
}

// A change the sink rejects goes to the dead-letter topic and the rest of
// its batch is committed (on_bad_record: dead_letter).
func TestRejectedChangeGoesToTheDeadLetterTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startEngine(t, 10, nil, rejectSecond)
		e.k.produce(topicA, 3)
		time.Sleep(time.Second)
		e.stop()
		if len(e.k.dead) != 1 || e.k.dead[0].Topic != topicA || e.k.dead[0].Offset != 1 || e.k.dead[0].Reason != "row_rejected" {
			t.Errorf("dead letters %+v, want offset 1 of %s for row_rejected", e.k.dead, topicA)
		}
		if got := e.k.committedOf(topicA); got != 3 {
			t.Errorf("a committed up to %d, want 3", got)
		}
		if got := e.metric("strait_consumer_bad_records_total", "topic", topicA, "reason", "row_rejected", "action", "dead_letter"); got != 1 {
			t.Errorf("bad records %v, want 1", got)
		}
		if e.k.isPaused(topicA) {
			t.Error("a is paused, want it read on")
		}
	})
}

// With on_bad_record stop, a rejected change stops its table: nothing of
// the batch is committed and its topic is paused; other topics go on.
func TestRejectedChangeStopsTheTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startEngine(t, 10, func(c *apply.Config) { c.OnBadRecord = "stop" }, rejectSecond)
		e.k.produce(topicA, 3)
		e.k.produce(topicB, 2)
		time.Sleep(time.Second)
		e.stop()
		if len(e.k.dead) != 0 {
			t.Errorf("dead letters %+v, want none", e.k.dead)
		}
		if a, b := e.k.committedOf(topicA), e.k.committedOf(topicB); a != 0 || b != 2 {
			t.Errorf("committed a %d, b %d; want 0 and 2", a, b)
		}
		if !e.k.isPaused(topicA) {
			t.Error("a is read on, want it paused")
		}
		if got := e.metric("strait_consumer_tables_stopped"); got != 1 {
			t.Errorf("tables stopped %v, want 1", got)
		}
	})
}
