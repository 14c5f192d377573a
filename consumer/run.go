package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

	c := &consumer{cfg: cfg, log: log, group: group, writer: writer, metrics: newMetrics(reg), stopped: map[string]bool{}}
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
// returns those BigQuery acknowledged completely.
func (c *consumer) apply(ctx context.Context, batches []*kafka.TopicBatch) []*kafka.TopicBatch {
	errs := make([]error, len(batches))
	var g errgroup.Group
	g.SetLimit(c.cfg.ParallelTables)
	for i, tb := range batches {
		if c.stopped[tb.Topic] {
			continue // fetched before the pause took effect
		}
		g.Go(func() error {
			errs[i] = c.writer.Apply(ctx, changes(tb))
			return nil
		})
	}
	g.Wait()
	var done []*kafka.TopicBatch
	for i, tb := range batches {
		if c.stopped[tb.Topic] {
			continue
		}
		var te *bigquery.TableError
		switch err := errs[i]; {
		case errors.As(err, &te):
			c.stop(tb.Topic, err)
			continue
		case err != nil: // shutdown timeout: not acknowledged, not committed
			c.log.Warn("changes not applied", "topic", tb.Topic, "err", err)
			continue
		}
		done = append(done, tb)
		if tb.Err != nil { // the records before the bad one are applied
			c.metrics.errors.WithLabelValues("decode").Inc()
			c.stop(tb.Topic, tb.Err)
		}
	}
	return done
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
	errors  *prometheus.CounterVec
	stopped prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_consumer_kafka_errors_total", Help: "Kafka-side errors by kind: commit (retried by redelivery), decode (a record that cannot be read).",
		}, []string{"kind"}),
		stopped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_consumer_tables_stopped", Help: "Topics paused because their table stopped (see the log).",
		}),
	}
	reg.MustRegister(m.errors, m.stopped)
	return m
}
