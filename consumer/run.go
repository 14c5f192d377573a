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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `Usage: consumer <command> [flags]

Reads the change topics the producer writes (<prefix>.<database>.<table>) as
a member of a Kafka consumer group and applies every change to BigQuery as a
CDC upsert or delete, one table per source table.

Commands:
  run      consume until stopped (SIGTERM finishes in-flight appends, commits, exits 0)
  reset    move the group's committed offsets (earliest, a time, explicit offsets) to replay; the group must be stopped
  tail     print the changes of the table topics as JSON lines (no group, nothing committed)
  version  print the version

Run 'consumer <command> -h' for the command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Dispatch(ctx, "consumer", version, usage, map[string]service.Command{"run": runConsume, "reset": runReset, "tail": runTail}, args, getenv, stdout, stderr)
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

	writer, err := bigquery.NewWriter(ctx, &cfg.BigQuery, log, bigquery.NewMetrics(reg))
	if err != nil {
		return err
	}
	defer writer.Close()
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
	log.Info("consuming", "topics", kafka.TopicPattern(cfg.Kafka.TopicPrefix), "group", cfg.Kafka.GroupID,
		"dataset", cfg.BigQuery.Project+"."+cfg.BigQuery.Dataset)

	c := &consumer{cfg: cfg, log: log, group: group, writer: writer, metrics: newMetrics(reg, group), stopped: map[string]bool{}}
	if err := c.loop(ctx); err != nil {
		log.Error("consumer stopped", "err", err)
		return err
	}
	log.Info("stopped: every applied change is committed")
	return nil
}

// consumer is the poll → decode → apply → commit loop.
type consumer struct {
	cfg     *Config
	log     *slog.Logger
	group   *kafka.Group
	writer  *bigquery.Writer
	metrics *metrics
	stopped map[string]bool // topics whose table stopped
}

// loop runs until ctx ends. A polled batch is always finished: its appends
// and the commit use a context that outlives ctx by the shutdown timeout.
func (c *consumer) loop(ctx context.Context) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(c.cfg.ShutdownTimeout, cancelWork) })
	defer stop()
	for {
		batches, err := c.group.Poll(ctx)
		if ctx.Err() != nil || err != nil {
			// Nothing polled is applied, so nothing is committed; a
			// member must allow the rebalance of its leaving.
			c.group.AllowRebalance()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		done := c.apply(work, batches)
		if err := c.group.Commit(work, done); err != nil {
			// Uncommitted changes are read again (here or by another
			// member) and applied again, which is harmless.
			c.metrics.errors.WithLabelValues("commit").Inc()
			c.log.Warn("commit failed", "err", err)
		}
		c.group.AllowRebalance()
	}
}

// apply writes the batches, one table at a time per goroutine, and
// returns those whose every record BigQuery acknowledged or, with
// on_bad_record dead_letter, Kafka acknowledged in the dead-letter topic.
func (c *consumer) apply(ctx context.Context, batches []*kafka.TopicBatch) []*kafka.TopicBatch {
	deadLetter := c.cfg.OnBadRecord == onBadDeadLetter
	errs := make([]error, len(batches))
	stops := make([]error, len(batches)) // a bad record stops the table once its batch is done
	var g errgroup.Group
	g.SetLimit(c.cfg.ParallelTables)
	for i, tb := range batches {
		if c.stopped[tb.Topic] {
			continue // fetched before the pause took effect
		}
		if !deadLetter && len(tb.Undecodable) > 0 {
			// The records before the bad one are applied and committed.
			bad := tb.Undecodable[0]
			c.badRecord(bad, onBadStop)
			tb.CutAt(bad)
			stops[i] = bad.Err
		}
		g.Go(func() error {
			errs[i] = c.writer.Apply(ctx, changes(tb))
			return nil
		})
	}
	g.Wait()
	var (
		done    []*kafka.TopicBatch
		letters []kafka.BadRecord
	)
	for i, tb := range batches {
		if c.stopped[tb.Topic] {
			continue
		}
		var te *bigquery.TableError
		var re *bigquery.RejectedError
		switch err := errs[i]; {
		case errors.As(err, &te):
			c.stop(tb.Topic, err)
			continue
		case errors.As(err, &re) && !deadLetter:
			// Nothing of the topic is committed: its changes are read
			// again after the restart, the bad one first.
			c.badRecord(tb.Reject(re.Rejections[0].Index, re.Rejections[0].Reason, re.Rejections[0].Err), onBadStop)
			c.stop(tb.Topic, re)
			continue
		case errors.As(err, &re):
			for _, r := range re.Rejections {
				letters = append(letters, tb.Reject(r.Index, r.Reason, r.Err))
			}
		case err != nil: // shutdown timeout: not acknowledged, not committed
			c.log.Warn("changes not applied", "topic", tb.Topic, "err", err)
			continue
		}
		if deadLetter {
			letters = append(letters, tb.Undecodable...)
		}
		done = append(done, tb)
		if stops[i] != nil {
			c.stop(tb.Topic, stops[i])
		}
	}
	return c.deadLetter(ctx, letters, done)
}

// deadLetter sends letters to the dead-letter topic and returns done, less
// the batches of the topics whose dead letters Kafka did not acknowledge.
func (c *consumer) deadLetter(ctx context.Context, letters []kafka.BadRecord, done []*kafka.TopicBatch) []*kafka.TopicBatch {
	if len(letters) == 0 {
		return done
	}
	// In source order per partition, as a reader of the topic expects.
	slices.SortFunc(letters, func(a, b kafka.BadRecord) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	if err := c.group.DeadLetter(ctx, letters); err != nil {
		// Not committed; unless this is the shutdown, the topics stop, as
		// a bad record does with on_bad_record stop.
		failed := map[string]bool{}
		for _, b := range letters {
			failed[b.Topic] = true
		}
		for topic := range failed {
			if ctx.Err() == nil {
				c.stop(topic, err)
			}
		}
		return slices.DeleteFunc(done, func(tb *kafka.TopicBatch) bool { return failed[tb.Topic] })
	}
	for _, b := range letters {
		c.badRecord(b, onBadDeadLetter)
	}
	return done
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

// stop pauses a topic whose table cannot go on; the other tables go on.
func (c *consumer) stop(topic string, err error) {
	c.log.Error("table stopped; its topic is paused until a restart", "topic", topic, "err", err)
	c.stopped[topic] = true
	c.metrics.stopped.Set(float64(len(c.stopped)))
	c.group.Pause(topic)
}

// changes converts a topic's records for the writer.
func changes(tb *kafka.TopicBatch) []bigquery.Change {
	out := make([]bigquery.Change, len(tb.Records))
	for i, r := range tb.Records {
		out[i] = bigquery.Change{
			Topic: tb.Topic, Partition: r.Partition, Offset: r.Offset,
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
}

func newMetrics(reg prometheus.Registerer, group *kafka.Group) *metrics {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_consumer_kafka_errors_total", Help: "Kafka-side errors by kind: commit (retried by redelivery).",
		}, []string{"kind"}),
		stopped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_consumer_tables_stopped", Help: "Topics paused because their table stopped (see the log).",
		}),
		badRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_consumer_bad_records_total",
			Help: "Records that can never be applied, by topic (one per table), reason (the strait.reason header) and action (dead_letter: sent to the dead-letter topic; stop: the table stopped).",
		}, []string{"topic", "reason", "action"}),
	}
	reg.MustRegister(m.errors, m.stopped, m.badRecords, lagCollector{group})
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
