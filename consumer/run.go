package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
)

const usage = `Usage: consumer <command> [flags]

Reads the change topics the producer writes (<prefix>.<database>.<table>) as
a member of a Kafka consumer group and applies every change to BigQuery as a
CDC upsert or delete, one table per source table.

Commands:
  run      consume until stopped (SIGTERM finishes in-flight appends, commits, exits 0)
  reset    move the group's committed offsets (earliest, a time, explicit offsets) to replay; the group must be stopped (-dry-run: not)
  tail     print the changes of the table topics as JSON lines (no group, nothing committed)
  version  print the version

Run 'consumer <command> -h' for the command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Dispatch(ctx, "consumer", versionLine(), usage, map[string]service.Command{"run": runConsume, "reset": runReset, "tail": runTail}, args, getenv, stdout, stderr)
}

// runConsume is `consumer run`. Shutdown, in reverse order of start-up:
// stop polling → finish the in-flight appends → commit → leave the group →
// close BigQuery → stop HTTP.
func runConsume(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("run", "Apply the change topics to BigQuery.", args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	proc, err := service.Start(cfg.HTTPAddr, cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	defer proc.Close()
	log, reg := proc.Log, proc.Metrics

	var phase atomic.Pointer[state]
	phase.Store(&state{name: "starting", since: time.Now()})
	writer, err := bigquery.Open(ctx, &cfg.BigQuery, log, bigquery.NewMetrics(reg))
	if err != nil {
		return err
	}
	defer writer.Close()
	proc.SetCheck(func() error { return outagesError(writer.Unavailable()) })
	proc.SetStatus(func() any { return report(phase.Load(), writer.Unavailable()) })
	if err := prepareDataset(ctx, writer, log, cfg.BigQuery.RetryMaxBackoff); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped before BigQuery answered")
			return nil
		}
		return err
	}
	// Streams of idle tables give back their share of a connection; this
	// goroutine ends before the writer closes.
	idle, stopIdle := context.WithCancel(ctx)
	idleDone := make(chan struct{})
	go func() {
		defer close(idleDone)
		writer.CloseIdleEvery(idle, max(10*time.Millisecond, min(time.Minute, cfg.BigQuery.StreamIdleTimeout/2)))
	}()
	defer func() { stopIdle(); <-idleDone }()
	group, err := kafka.NewGroup(&cfg.Kafka, log)
	if err != nil {
		return err
	}
	defer group.Close()
	if err := group.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	proc.Ready.Store(true)
	defer proc.Ready.Store(false)
	group.OnRegistry = proc.Ready.Store // not ready while the registry is down
	phase.Store(&state{name: "consuming", since: time.Now()})
	log.Info("consuming", "topics", kafka.TopicPattern(cfg.Kafka.TopicPrefix), "group", cfg.Kafka.GroupID,
		"dataset", cfg.BigQuery.Project+"."+cfg.BigQuery.Dataset)

	reg.MustRegister(writer.Collector())
	m := newMetrics(reg, group)
	c := &consumer{cfg: cfg, log: log, group: group, writer: writer, metrics: m,
		stopped: map[string]bool{}, tables: make(chan struct{}, cfg.ParallelTables), last: map[string]*apply{},
		waits: &waits{by: map[string]*waiting{}, group: group, m: m}}
	if err := c.loop(ctx); err != nil {
		log.Error("consumer stopped", "err", err)
		return err
	}
	log.Info("stopped: every applied change is committed")
	return nil
}

// prepareDataset creates the dataset if missing, trying again with
// backoff, up to maxWait, while BigQuery does not answer (the writer warns
// about that); any other failure (credentials, a permission) is returned.
func prepareDataset(ctx context.Context, w *bigquery.Writer, log *slog.Logger, maxWait time.Duration) error {
	wait := min(time.Second, maxWait)
	for {
		err := w.EnsureDataset(ctx)
		if err == nil || ctx.Err() != nil || len(w.Unavailable()) == 0 {
			return err
		}
		log.Debug("bigquery dataset not ready: trying again", "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

// state is the consumer's phase, for /status: starting (until BigQuery's
// dataset and Kafka answer) or consuming.
type state struct {
	name  string
	since time.Time
}

// statusReport is what /status answers.
type statusReport struct {
	State    string    `json:"state"`
	Since    time.Time `json:"since"`
	BigQuery struct {
		Available   bool              `json:"available"`
		Unavailable []bigquery.Outage `json:"unavailable,omitempty"`
	} `json:"bigquery"`
}

func report(s *state, outages []bigquery.Outage) statusReport {
	r := statusReport{State: s.name, Since: s.since}
	r.BigQuery.Available, r.BigQuery.Unavailable = len(outages) == 0, outages
	return r
}

// outagesError is why the consumer is not ready while BigQuery does not
// answer, nil while it does.
func outagesError(outages []bigquery.Outage) error {
	errs := make([]error, len(outages))
	for i, o := range outages {
		errs[i] = o
	}
	return errors.Join(errs...)
}

// consumer is the poll → decode → apply → commit loop.
type consumer struct {
	cfg     *Config
	log     *slog.Logger
	group   *kafka.Group
	writer  *bigquery.Writer
	metrics *metrics

	stopMu  sync.Mutex
	stopped map[string]bool // topics whose table stopped, until a restart or (waits) a retry that succeeds

	waits *waits // topics held until BigQuery is ready for their table, or a retry (wait.go)

	tables chan struct{}     // a slot per table written at once (parallel_tables)
	last   map[string]*apply // the latest apply of each topic; the loop's

	finishing sync.Mutex // held by finish: the loop's or OnRevoke's
	mu        sync.Mutex
	flights   []*flight // polls being applied, oldest first; mu guards it
}

// flight is one poll being applied: an apply per topic.
type flight struct {
	batches []*kafka.TopicBatch
	applies []*apply      // of batches[i]
	done    chan struct{} // closed once every apply is done
}

// apply writes one topic's batch of one poll. The applies of a topic run
// one after the other, in poll order, so that its changes reach BigQuery
// in their order and a stop holds for every later batch.
type apply struct {
	done   chan struct{} // closed when commit and halt are set
	commit bool          // every record is applied or dead-lettered: commit the batch
	halt   bool          // the topic's later batches must be neither applied nor committed
}

// loop runs until ctx ends. Polls overlap: the next poll is read and its
// appends start while those of up to max_polls_in_flight earlier polls
// await BigQuery's acknowledgements; a poll is committed once all of it
// and every poll before it are done, and before a rebalance takes a
// partition away (OnRevoke) every poll in flight is finished and
// committed. Polled batches are always finished: their appends and the
// commits use a context that outlives ctx by the shutdown timeout.
func (c *consumer) loop(ctx context.Context) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(c.cfg.ShutdownTimeout, cancelWork) })
	defer stop()
	c.group.OnRevoke(func(context.Context) { c.beforeRevoke(work) })
	defer c.group.OnRevoke(nil)
	for {
		wake, stopWake := c.wake()
		batches, err := c.group.Poll(ctx, wake)
		stopWake()
		if ctx.Err() != nil || err != nil {
			// What was polled last is not applied, so not committed.
			c.finish(work, 0)
			c.group.AllowRebalance()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if batches != nil {
			c.start(work, batches)
		}
		c.release()
		c.group.AllowRebalance()
		c.finish(work, c.cfg.MaxPollsInFlight)
	}
}

// beforeRevoke finishes and commits every poll in flight: partitions are
// about to leave this member.
func (c *consumer) beforeRevoke(ctx context.Context) {
	c.mu.Lock()
	n := len(c.flights)
	c.mu.Unlock()
	if n > 0 {
		c.log.Info("partitions leaving: finishing the polls in flight first", "polls", n)
	}
	c.finish(ctx, 0)
}

// oldest returns the channel closed when the oldest poll in flight is done,
// nil when none is.
func (c *consumer) oldest() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.flights) == 0 {
		return nil
	}
	return c.flights[0].done
}

// wake returns a channel closed when the loop has something to do
// besides polling: the oldest poll in flight is done, or a held topic's
// wait is over. stop ends the goroutine that watches the wait.
func (c *consumer) wake() (wake <-chan struct{}, stop func()) {
	oldest := c.oldest()
	due, next := c.waits.due(time.Now())
	for _, topic := range due {
		// Over, but a batch of it is still being applied: wake when
		// the last one is done.
		if a := c.last[topic]; a != nil && !closed(a.done) {
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
func (c *consumer) release() {
	due, _ := c.waits.due(time.Now())
	for _, topic := range due {
		if a := c.last[topic]; a != nil && !closed(a.done) {
			continue
		}
		// Its next batch starts afresh, not halted by the held ones.
		delete(c.last, topic)
		c.waits.release(topic)
	}
}

// start applies batches: one apply per topic, each after the topic's
// previous one, at most parallel_tables at once.
func (c *consumer) start(ctx context.Context, batches []*kafka.TopicBatch) {
	f := &flight{batches: batches, done: make(chan struct{})}
	for _, tb := range batches {
		a := &apply{done: make(chan struct{})}
		prev := c.last[tb.Topic]
		c.last[tb.Topic] = a
		f.applies = append(f.applies, a)
		go func() {
			defer close(a.done)
			if prev != nil {
				<-prev.done
				if prev.halt {
					// Not applied: read again if the topic is held.
					c.waits.holdAlso(tb)
					a.halt = true
					return
				}
			}
			c.tables <- struct{}{}
			defer func() { <-c.tables }()
			a.commit, a.halt = c.apply(ctx, tb)
		}()
	}
	go func() {
		for _, a := range f.applies {
			<-a.done
		}
		close(f.done)
	}()
	c.mu.Lock()
	c.flights = append(c.flights, f)
	c.metrics.inFlight.Set(float64(len(c.flights)))
	c.mu.Unlock()
}

// finish commits the polls at the head of the flights that are done and,
// waiting for them, the oldest ones until fewer than keep are in flight
// (keep 0: all of them).
func (c *consumer) finish(ctx context.Context, keep int) {
	c.finishing.Lock()
	defer c.finishing.Unlock()
	var done []*kafka.TopicBatch
	for {
		c.mu.Lock()
		n := len(c.flights)
		var f *flight
		if n > 0 {
			f = c.flights[0]
		}
		c.mu.Unlock()
		if n == 0 || n < keep && !closed(f.done) {
			break
		}
		<-f.done
		c.mu.Lock()
		c.flights = c.flights[1:]
		c.metrics.inFlight.Set(float64(len(c.flights)))
		c.mu.Unlock()
		for i, a := range f.applies {
			if a.commit {
				done = append(done, f.batches[i])
			}
		}
	}
	if err := c.group.Commit(ctx, done); err != nil {
		// Uncommitted changes are read again (here or by another
		// member) and applied again, which is harmless.
		c.metrics.errors.WithLabelValues("commit").Inc()
		c.log.Warn("commit failed", "err", err)
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
// record BigQuery acknowledged or, with on_bad_record dead_letter, Kafka
// acknowledged in the dead-letter topic) and whether the topic must halt.
func (c *consumer) apply(ctx context.Context, tb *kafka.TopicBatch) (commit, halt bool) {
	deadLetter := c.cfg.OnBadRecord == onBadDeadLetter
	var stopErr error // a bad record stops the table once the records before it are done
	if !deadLetter && len(tb.Undecodable) > 0 {
		// The records before the bad one are applied and committed.
		bad := tb.Undecodable[0]
		c.badRecord(bad, onBadStop)
		tb.CutAt(bad)
		stopErr = bad.Err
	}
	topic := bigquery.Topic{Name: tb.Topic, Prefix: c.cfg.Kafka.TopicPrefix}
	var ok bool
	if topic.Database, topic.Table, ok = kafka.TableTopic(topic.Prefix, topic.Name); !ok {
		// The topic names no table: nothing of it is applied or committed.
		c.stop(tb.Topic, fmt.Errorf("topic %s is not %s.<database>.<table>: it names no table", tb.Topic, topic.Prefix))
		return false, true
	}
	err := c.writer.Apply(ctx, topic, changes(tb))
	var (
		letters []kafka.BadRecord
		we      *bigquery.WaitError
		te      *bigquery.TableError
		re      *bigquery.RejectedError
	)
	switch {
	case errors.As(err, &we):
		backoff := c.waits.hold(tb, we.Table, we.Reason, waitBackoff, c.cfg.BigQuery.RetryMaxBackoff)
		c.log.Info("table waits for BigQuery; its changes are read again from Kafka after the backoff",
			"table", we.Table, "topic", tb.Topic, "reason", we.Reason, "backoff", backoff, "err", we.Err)
		return false, true
	case errors.As(err, &te):
		backoff := c.waits.hold(tb, te.Table, reasonStopped, c.cfg.StoppedRetryBackoff, c.cfg.StoppedRetryMaxBackoff)
		c.log.Error("table stopped; its topic is paused and tried again after the backoff", "table", te.Table, "topic", tb.Topic, "backoff", backoff, "err", err)
		c.markStopped(tb.Topic, true)
		return false, true
	case errors.As(err, &re) && !deadLetter:
		// Nothing of the topic is committed: its changes are read
		// again after the restart, the bad one first.
		c.badRecord(tb.Reject(re.Rejections[0].Index, re.Rejections[0].Reason, re.Rejections[0].Err), onBadStop)
		c.stop(tb.Topic, re)
		return false, true
	case errors.As(err, &re):
		for _, r := range re.Rejections {
			letters = append(letters, tb.Reject(r.Index, r.Reason, r.Err))
		}
	case err != nil: // shutdown timeout: not acknowledged, not committed
		c.log.Warn("changes not applied", "topic", tb.Topic, "err", err)
		return false, true
	}
	if deadLetter {
		letters = append(letters, tb.Undecodable...)
	}
	if !c.deadLetter(ctx, tb.Topic, letters) {
		return false, true
	}
	if w := c.waits.resumed(tb.Topic); w != nil {
		c.log.Info("table goes on", "table", w.table, "topic", tb.Topic, "after", w.reason)
		c.markStopped(tb.Topic, false)
	}
	if stopErr != nil {
		c.stop(tb.Topic, stopErr)
		return true, true
	}
	return true, false
}

// deadLetter sends a topic's letters to the dead-letter topic and reports
// whether Kafka acknowledged them all.
func (c *consumer) deadLetter(ctx context.Context, topic string, letters []kafka.BadRecord) bool {
	if len(letters) == 0 {
		return true
	}
	// In source order per partition, as a reader of the topic expects.
	slices.SortFunc(letters, func(a, b kafka.BadRecord) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	if err := c.group.DeadLetter(ctx, letters); err != nil {
		// Not committed; unless this is the shutdown, the topic stops, as
		// a bad record does with on_bad_record stop.
		if ctx.Err() == nil {
			c.stop(topic, err)
		}
		return false
	}
	for _, b := range letters {
		c.badRecord(b, onBadDeadLetter)
	}
	return true
}

// badRecord logs and counts a record that can never be applied, as
// action (on_bad_record) handles it.
func (c *consumer) badRecord(b kafka.BadRecord, action string) {
	c.metrics.badRecords.WithLabelValues(b.Topic, b.Reason, action).Inc()
	if action == onBadDeadLetter {
		c.log.Warn("record sent to the dead-letter topic", "topic", b.Topic, "partition", b.Partition, "offset", b.Offset,
			"reason", b.Reason, "dead_letter_topic", c.group.DeadLetterTopic(), "err", b.Err)
		return
	}
	c.log.Error("bad record stops its table (on_bad_record: stop)", "topic", b.Topic, "partition", b.Partition, "offset", b.Offset,
		"reason", b.Reason, "err", b.Err)
}

// stop pauses a topic whose table cannot go on until a restart (a bad
// record with on_bad_record stop, a topic that names no table); the other
// tables go on.
func (c *consumer) stop(topic string, err error) {
	c.log.Error("table stopped; its topic is paused until a restart", "topic", topic, "err", err)
	c.markStopped(topic, true)
	c.group.Pause(topic)
}

// markStopped counts topic as stopped or not.
func (c *consumer) markStopped(topic string, stopped bool) {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if stopped {
		c.stopped[topic] = true
	} else {
		delete(c.stopped, topic)
	}
	c.metrics.stopped.Set(float64(len(c.stopped)))
}

// changes converts a topic's records for the writer.
func changes(tb *kafka.TopicBatch) []bigquery.Change {
	out := make([]bigquery.Change, len(tb.Records))
	for i, r := range tb.Records {
		out[i] = bigquery.Change{
			Partition: r.Partition, Offset: r.Offset,
			KeySchema: r.Key.Schema, ValueSchemaID: r.Value.SchemaID, ValueSchema: r.Value.Schema, Value: r.Value.Body,
		}
	}
	return out
}

// metrics are the consumer loop's own metrics; pkg/bigquery counts rows
// and appends.
type metrics struct {
	errors     *prometheus.CounterVec
	stopped    prometheus.Gauge
	badRecords *prometheus.CounterVec
	inFlight   prometheus.Gauge
	waiting    *prometheus.GaugeVec   // wait.go
	retries    *prometheus.CounterVec // wait.go
}

func newMetrics(reg prometheus.Registerer, group *kafka.Group) *metrics {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_consumer_kafka_errors_total", Help: "Kafka-side errors by kind: commit (retried by redelivery).",
		}, []string{"kind"}),
		stopped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_consumer_tables_stopped", Help: "Topics paused because their table stopped (see the log): until a restart for a bad record, until a retry succeeds for a BigQuery error.",
		}),
		badRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_consumer_bad_records_total",
			Help: "Records that can never be applied, by topic (one per table), reason (the strait.reason header) and action (dead_letter: sent to the dead-letter topic; stop: the table stopped).",
		}, []string{"topic", "reason", "action"}),
	}
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strait_consumer_polls_in_flight", Help: "Polls being applied, awaiting BigQuery's acknowledgements (at most max_polls_in_flight).",
	})
	reg.MustRegister(m.errors, m.stopped, m.badRecords, m.inFlight, lagCollector{group})
	waitMetrics(reg, m)
	return m
}

// lagCollector reports the group's lag at each scrape.
type lagCollector struct{ group *kafka.Group }

var lagDesc = prometheus.NewDesc("strait_consumer_lag_records",
	"Offsets between the committed offset and the end of the partition (last stable offset), for the partitions this member reads.",
	[]string{"topic", "partition"}, nil)

// Describe sends the metric's description.
func (l lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

// Collect sends the lag of every partition read.
func (l lagCollector) Collect(ch chan<- prometheus.Metric) {
	for tp, n := range l.group.Lag() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(n), tp.Topic, strconv.Itoa(int(tp.Partition)))
	}
}
