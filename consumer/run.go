package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/apply"
	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/pipeline"
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
// stop polling → finish the in-flight appends → commit → stop the
// watermark → leave the group → close BigQuery → stop HTTP.
func runConsume(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("run", "Apply the change topics to BigQuery.", args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	proc, err := service.Start(cfg.HTTPAddr, cfg.LogLevel, cfg.LogFormat, cfg.Profiles, stderr)
	if err != nil {
		return err
	}
	defer proc.Close()
	log, reg := proc.Log, proc.Metrics

	var phase atomic.Pointer[state]
	phase.Store(&state{name: "starting", since: time.Now()})
	cfg.BigQuery.Group, cfg.BigQuery.Source = cfg.Kafka.GroupID, cfg.Kafka.TopicPrefix // whose watermark the as-of views read
	writer, err := bigquery.Open(ctx, &cfg.BigQuery, log, bigquery.NewMetrics(reg))
	if err != nil {
		return err
	}
	defer writer.Close()
	proc.SetCheck(writer.Ready)
	proc.SetStatus(func() any { return report(phase.Load(), writer.Unavailable()) })
	if err := writer.PrepareDataset(ctx); err != nil {
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
	writer.Schemas = group
	if err := group.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if cfg.BigQuery.WatermarkTable != "" {
		stop, err := startWatermarks(ctx, cfg, writer, log, reg)
		if err != nil {
			return err
		}
		defer stop() // before the writer closes
	}
	proc.Ready.Store(true)
	defer proc.Ready.Store(false)
	group.OnRegistry = proc.Ready.Store // not ready while the registry is down
	phase.Store(&state{name: "consuming", since: time.Now()})
	log.Info("consuming", "topics", kafka.TopicPattern(cfg.Kafka.TopicPrefix), "group", cfg.Kafka.GroupID,
		"dataset", cfg.BigQuery.Project+"."+cfg.BigQuery.Dataset)

	reg.MustRegister(writer.Collector(), group.LagCollector())
	cfg.Apply.TopicPrefix, cfg.Apply.WaitMaxBackoff = cfg.Kafka.TopicPrefix, cfg.BigQuery.RetryMaxBackoff
	if err := apply.New(&cfg.Apply, group, writer, log, reg).Run(ctx); err != nil {
		log.Error("consumer stopped", "err", err)
		return err
	}
	log.Info("stopped: every applied change is committed")
	return nil
}

// startWatermarks computes and records the group's applied-through
// watermark in the background; stop ends it.
func startWatermarks(ctx context.Context, cfg *Config, writer *bigquery.Writer, log *slog.Logger, reg prometheus.Registerer) (stop func(), err error) {
	codec, err := pipeline.NewCodec()
	if err != nil {
		return nil, err
	}
	cuts, err := kafka.NewCuts(&cfg.Kafka, log)
	if err != nil {
		return nil, err
	}
	wm := apply.NewWatermarks(log, cuts, codec, writer, cfg.Kafka.GroupID, cfg.Kafka.TopicPrefix, cfg.Apply.WatermarkInterval, reg)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		wm.Run(runCtx)
	}()
	return func() { cancel(); <-done; cuts.Close() }, nil
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
