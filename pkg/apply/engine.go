// Package apply is the consumer's engine: it polls the table topics of a
// Kafka consumer group, applies each topic's changes to a sink.Sink, and
// commits a partition's offsets only once the sink has every change before
// them. Polls overlap (the next is read while earlier ones await the
// sink), a topic's batches are applied one after the other in poll order,
// and before a rebalance takes partitions away every poll in flight is
// finished and committed.
//
// The sink's errors decide what happens to a topic: a table the sink is
// not ready for waits and is read again after a backoff, a table that
// stopped is retried after a longer one, rejected changes go to the
// dead-letter topic and the rest is committed. Other topics go on
// meanwhile.
package apply

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/sink"
)

// Group is the Kafka side of the engine, as *kafka.Group provides it: the
// member of the consumer group that polls the table topics, commits their
// offsets and writes the dead-letter topic. Poll, AllowRebalance,
// OnRevoke and Release are called from the goroutine that runs the
// engine; the others from any. A rebalance waits from the return of Poll
// until AllowRebalance, then runs the OnRevoke hook before partitions
// leave.
type Group interface {
	// Poll waits for records and returns them by topic, or nil, nil when
	// wake is closed first.
	Poll(ctx context.Context, wake <-chan struct{}) ([]*kafka.TopicBatch, error)
	// AllowRebalance lets a rebalance waiting since Poll returned go on.
	AllowRebalance()
	// OnRevoke sets the hook that runs before partitions leave (nil: none).
	OnRevoke(f func(ctx context.Context))
	// Commit commits the offsets after every record of batches.
	Commit(ctx context.Context, batches []*kafka.TopicBatch) error
	// Pause stops reading topic until a restart.
	Pause(topic string)
	// Hold stops reading tb's topic and remembers where tb starts.
	Hold(tb *kafka.TopicBatch)
	// Release reads a held topic again from where its first held batch
	// started.
	Release(topic string)
	// DeadLetter writes bad records to the dead-letter topic and returns
	// once Kafka acknowledged them.
	DeadLetter(ctx context.Context, bad []kafka.BadRecord) error
	// DeadLetterTopic names the dead-letter topic, for logs.
	DeadLetterTopic() string
}

// The group strait runs with.
var _ Group = (*kafka.Group)(nil)

// Engine is the poll → apply → commit loop of one group member. Run it
// once.
type Engine struct {
	cfg     *Config
	log     *slog.Logger
	group   Group
	sink    sink.Sink
	metrics *metrics

	stopMu  sync.Mutex
	stopped map[string]bool // topics whose table stopped, until a restart or (waits) a retry that succeeds

	waits *waits // topics held until the sink is ready for their table, or a retry (wait.go)

	tables chan struct{}   // a slot per table written at once (parallel_tables)
	last   map[string]*job // the latest job of each topic; the loop's

	finishing sync.Mutex // held by finish: the loop's or OnRevoke's
	mu        sync.Mutex
	flights   []*flight // polls being applied, oldest first; mu guards it
}

// New returns an engine that reads from group and writes to s, with its
// metrics registered in reg.
func New(cfg *Config, group Group, s sink.Sink, log *slog.Logger, reg prometheus.Registerer) *Engine {
	m := newMetrics(reg)
	return &Engine{cfg: cfg, log: log, group: group, sink: s, metrics: m,
		stopped: map[string]bool{}, tables: make(chan struct{}, cfg.ParallelTables), last: map[string]*job{},
		waits: &waits{by: map[string]*waiting{}, group: group, m: m}}
}

// flight is one poll being applied: a job per topic.
type flight struct {
	batches []*kafka.TopicBatch
	jobs    []*job        // of batches[i]
	done    chan struct{} // closed once every job is done
}

// job applies one topic's batch of one poll. The jobs of a topic run one
// after the other, in poll order, so that its changes reach the sink in
// their order and a stop holds for every later batch.
type job struct {
	done   chan struct{} // closed when commit and halt are set
	commit bool          // every record is applied or dead-lettered: commit the batch
	halt   bool          // the topic's later batches must be neither applied nor committed
}

// Run polls, applies and commits until ctx ends, or until Poll fails.
// Polls overlap: the next poll is read and its appends start while those
// of up to max_polls_in_flight earlier polls await the sink; a poll is
// committed once all of it and every poll before it are done, and before
// a rebalance takes a partition away (OnRevoke) every poll in flight is
// finished and committed. Polled batches are always finished: their
// appends and the commits use a context that outlives ctx by the shutdown
// timeout.
func (e *Engine) Run(ctx context.Context) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(e.cfg.ShutdownTimeout, cancelWork) })
	defer stop()
	e.group.OnRevoke(func(context.Context) { e.beforeRevoke(work) })
	defer e.group.OnRevoke(nil)
	for {
		wake, stopWake := e.wake()
		batches, err := e.group.Poll(ctx, wake)
		stopWake()
		if ctx.Err() != nil || err != nil {
			// What was polled last is not applied, so not committed.
			e.finish(work, 0)
			e.group.AllowRebalance()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if batches != nil {
			e.start(work, batches)
		}
		e.release()
		e.group.AllowRebalance()
		e.finish(work, e.cfg.MaxPollsInFlight)
	}
}

// beforeRevoke finishes and commits every poll in flight: partitions are
// about to leave this member.
func (e *Engine) beforeRevoke(ctx context.Context) {
	e.mu.Lock()
	n := len(e.flights)
	e.mu.Unlock()
	if n > 0 {
		e.log.Info("partitions leaving: finishing the polls in flight first", "polls", n)
	}
	e.finish(ctx, 0)
}

// oldest returns the channel closed when the oldest poll in flight is done,
// nil when none is.
func (e *Engine) oldest() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.flights) == 0 {
		return nil
	}
	return e.flights[0].done
}

// wake returns a channel closed when the loop has something to do
// besides polling: the oldest poll in flight is done, or a held topic's
// wait is over. stop ends the goroutine that watches the wait.
func (e *Engine) wake() (wake <-chan struct{}, stop func()) {
	oldest := e.oldest()
	due, next := e.waits.due(time.Now())
	for _, topic := range due {
		// Over, but a batch of it is still being applied: wake when
		// the last one is done.
		if a := e.last[topic]; a != nil && !closed(a.done) {
			oldest, next = a.done, time.Now().Add(10*time.Millisecond)
			break
		}
		next = time.Now()
	}
	if next.IsZero() {
		return oldest, func() {}
	}
	ch, quit := make(chan struct{}), make(chan struct{})
	go func() {
		timer := time.NewTimer(time.Until(next))
		defer timer.Stop()
		select {
		case <-oldest:
		case <-timer.C:
		case <-quit:
			return
		}
		close(ch)
	}()
	return ch, func() { close(quit) }
}

// release reads again the held topics whose wait is over and none of
// whose batches is being applied. The loop's, between Poll and
// AllowRebalance.
func (e *Engine) release() {
	due, _ := e.waits.due(time.Now())
	for _, topic := range due {
		if a := e.last[topic]; a != nil && !closed(a.done) {
			continue
		}
		// Its next batch starts afresh, not halted by the held ones.
		delete(e.last, topic)
		e.waits.release(topic)
	}
}

// start applies batches: one job per topic, each after the topic's
// previous one, at most parallel_tables at once.
func (e *Engine) start(ctx context.Context, batches []*kafka.TopicBatch) {
	f := &flight{batches: batches, done: make(chan struct{})}
	for _, tb := range batches {
		a := &job{done: make(chan struct{})}
		prev := e.last[tb.Topic]
		e.last[tb.Topic] = a
		f.jobs = append(f.jobs, a)
		go func() {
			defer close(a.done)
			if prev != nil {
				<-prev.done
				if prev.halt {
					// Not applied: read again if the topic is held.
					e.waits.holdAlso(tb)
					a.halt = true
					return
				}
			}
			e.tables <- struct{}{}
			defer func() { <-e.tables }()
			a.commit, a.halt = e.apply(ctx, tb)
		}()
	}
	go func() {
		for _, a := range f.jobs {
			<-a.done
		}
		close(f.done)
	}()
	e.mu.Lock()
	e.flights = append(e.flights, f)
	e.metrics.inFlight.Set(float64(len(e.flights)))
	e.mu.Unlock()
}

// finish commits the polls at the head of the flights that are done and,
// waiting for them, the oldest ones until fewer than keep are in flight
// (keep 0: all of them).
func (e *Engine) finish(ctx context.Context, keep int) {
	e.finishing.Lock()
	defer e.finishing.Unlock()
	var done []*kafka.TopicBatch
	for {
		e.mu.Lock()
		n := len(e.flights)
		var f *flight
		if n > 0 {
			f = e.flights[0]
		}
		e.mu.Unlock()
		if n == 0 || n < keep && !closed(f.done) {
			break
		}
		<-f.done
		e.mu.Lock()
		e.flights = e.flights[1:]
		e.metrics.inFlight.Set(float64(len(e.flights)))
		e.mu.Unlock()
		for i, a := range f.jobs {
			if a.commit {
				done = append(done, f.batches[i])
			}
		}
	}
	if err := e.group.Commit(ctx, done); err != nil {
		// Uncommitted changes are read again (here or by another
		// member) and applied again, which is harmless.
		e.metrics.errors.WithLabelValues("commit").Inc()
		e.log.Warn("commit failed", "err", err)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// apply writes one topic's batch and returns whether to commit it (every
// record the sink acknowledged or, with on_bad_record dead_letter, Kafka
// acknowledged in the dead-letter topic) and whether the topic must halt.
func (e *Engine) apply(ctx context.Context, tb *kafka.TopicBatch) (commit, halt bool) {
	deadLetter := e.cfg.OnBadRecord == onBadDeadLetter
	var stopErr error // a bad record stops the table once the records before it are done
	if !deadLetter && len(tb.Undecodable) > 0 {
		// The records before the bad one are applied and committed.
		bad := tb.Undecodable[0]
		e.badRecord(bad, onBadStop)
		tb.CutAt(bad)
		stopErr = bad.Err
	}
	topic := sink.Topic{Name: tb.Topic, Prefix: e.cfg.TopicPrefix}
	var ok bool
	if topic.Database, topic.Table, ok = kafka.TableTopic(topic.Prefix, topic.Name); !ok {
		// The topic names no table: nothing of it is applied or committed.
		e.stop(tb.Topic, fmt.Errorf("topic %s is not %s.<database>.<table>: it names no table", tb.Topic, topic.Prefix))
		return false, true
	}
	err := e.sink.Apply(ctx, topic, changes(tb))
	var (
		letters []kafka.BadRecord
		we      *sink.WaitError
		te      *sink.TableError
		re      *sink.RejectedError
	)
	switch {
	case errors.As(err, &we):
		backoff := e.waits.hold(tb, we.Table, we.Reason, waitBackoff, e.cfg.WaitMaxBackoff)
		e.log.Info("table waits for BigQuery; its changes are read again from Kafka after the backoff",
			"table", we.Table, "topic", tb.Topic, "reason", we.Reason, "backoff", backoff, "err", we.Err)
		return false, true
	case errors.As(err, &te):
		backoff := e.waits.hold(tb, te.Table, reasonStopped, e.cfg.StoppedRetryBackoff, e.cfg.StoppedRetryMaxBackoff)
		e.log.Error("table stopped; its topic is paused and tried again after the backoff", "table", te.Table, "topic", tb.Topic, "backoff", backoff, "err", err)
		e.markStopped(tb.Topic, true)
		return false, true
	case errors.As(err, &re) && !deadLetter:
		// Nothing of the topic is committed: its changes are read
		// again after the restart, the bad one first.
		e.badRecord(tb.Reject(re.Rejections[0].Index, re.Rejections[0].Reason, re.Rejections[0].Err), onBadStop)
		e.stop(tb.Topic, re)
		return false, true
	case errors.As(err, &re):
		for _, r := range re.Rejections {
			letters = append(letters, tb.Reject(r.Index, r.Reason, r.Err))
		}
	case err != nil: // shutdown timeout: not acknowledged, not committed
		e.log.Warn("changes not applied", "topic", tb.Topic, "err", err)
		return false, true
	}
	if deadLetter {
		letters = append(letters, tb.Undecodable...)
	}
	if !e.deadLetter(ctx, tb.Topic, letters) {
		return false, true
	}
	if w := e.waits.resumed(tb.Topic); w != nil {
		e.log.Info("table goes on", "table", w.table, "topic", tb.Topic, "after", w.reason)
		e.markStopped(tb.Topic, false)
	}
	if stopErr != nil {
		e.stop(tb.Topic, stopErr)
		return true, true
	}
	return true, false
}

// deadLetter sends a topic's letters to the dead-letter topic and reports
// whether Kafka acknowledged them all.
func (e *Engine) deadLetter(ctx context.Context, topic string, letters []kafka.BadRecord) bool {
	if len(letters) == 0 {
		return true
	}
	// In source order per partition, as a reader of the topic expects.
	slices.SortFunc(letters, func(a, b kafka.BadRecord) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	if err := e.group.DeadLetter(ctx, letters); err != nil {
		// Not committed; unless this is the shutdown, the topic stops, as
		// a bad record does with on_bad_record stop.
		if ctx.Err() == nil {
			e.stop(topic, err)
		}
		return false
	}
	for _, b := range letters {
		e.badRecord(b, onBadDeadLetter)
	}
	return true
}

// badRecord logs and counts a record that can never be applied, as
// action (on_bad_record) handles it.
func (e *Engine) badRecord(b kafka.BadRecord, action string) {
	e.metrics.badRecords.WithLabelValues(b.Topic, b.Reason, action).Inc()
	if action == onBadDeadLetter {
		e.log.Warn("record sent to the dead-letter topic", "topic", b.Topic, "partition", b.Partition, "offset", b.Offset,
			"reason", b.Reason, "dead_letter_topic", e.group.DeadLetterTopic(), "err", b.Err)
		return
	}
	e.log.Error("bad record stops its table (on_bad_record: stop)", "topic", b.Topic, "partition", b.Partition, "offset", b.Offset,
		"reason", b.Reason, "err", b.Err)
}

// stop pauses a topic whose table cannot go on until a restart (a bad
// record with on_bad_record stop, a topic that names no table); the other
// tables go on.
func (e *Engine) stop(topic string, err error) {
	e.log.Error("table stopped; its topic is paused until a restart", "topic", topic, "err", err)
	e.markStopped(topic, true)
	e.group.Pause(topic)
}

// markStopped counts topic as stopped or not.
func (e *Engine) markStopped(topic string, stopped bool) {
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	if stopped {
		e.stopped[topic] = true
	} else {
		delete(e.stopped, topic)
	}
	e.metrics.stopped.Set(float64(len(e.stopped)))
}

// changes converts a topic's records for the writer.
func changes(tb *kafka.TopicBatch) []sink.Change {
	out := make([]sink.Change, len(tb.Records))
	for i, r := range tb.Records {
		out[i] = sink.Change{
			Partition: r.Partition, Offset: r.Offset,
			KeySchemaID: r.Key.SchemaID, ValueSchemaID: r.Value.SchemaID, Value: r.Value.Body,
		}
	}
	return out
}
