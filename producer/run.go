package main

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/pipeline"
	"github.com/strait-cdc/strait/pkg/service"
)

const usage = `Usage: producer <command> [flags]

Reads the binlog of a MySQL/MariaDB server as a replica and publishes every
row change as Avro (Debezium envelope) to one Kafka topic per table.

Commands:
  run      stream changes to Kafka until stopped (SIGTERM drains and exits 0)
  check    validate the source, Kafka and the Schema Registry, with fixes
  snapshot ask the running producer to snapshot tables (optionally filtered)
  verify   compare source tables with their BigQuery tables (exit 1 on a difference)
  backfill load historical rows from a file into a live table, below every live change
  version  print the version

Run 'producer <command> -h' for the command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Dispatch(ctx, "producer", versionLine(), usage, map[string]service.Command{"run": runStream, "check": runCheck, "snapshot": runSnapshot, "verify": runVerify, "backfill": runBackfill}, args, getenv, stdout, stderr)
}

// runStream is `producer run`: read a transaction → encode → produce, until
// the context ends. Shutdown, in reverse order of start-up: stop reading →
// flush in-flight records → close Kafka → close the binlog → stop HTTP. A
// transient Kafka error that ends a run (a commit refused while the
// transaction coordinator moves) restarts it from the last checkpoint
// (pipeline.Restart).
func runStream(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("run", "Stream row changes from the binlog to Kafka.", args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	proc, err := service.Start(cfg.HTTPAddr, cfg.LogLevel, cfg.LogFormat, cfg.Profiles, stderr)
	if err != nil {
		return err
	}
	defer proc.Close()
	m := runMetrics{binlog: binlog.NewMetrics(proc.Metrics), kafka: kafka.NewMetrics(proc.Metrics)}
	restarts := pipeline.NewMetrics(proc.Metrics)
	// The binlog-retention guardrail watches the file the last committed
	// checkpoint needs, across runs: also while one waits out an outage.
	var last atomic.Pointer[pipeline.Checkpoint]
	watch, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		binlog.WatchRetention(watch, &cfg.Source, m.binlog, pipeline.NeededBinlog(&last), proc.Log)
	}()
	defer func() { stopWatch(); <-watched }()
	return pipeline.Restart(ctx, func(ctx context.Context) error {
		err := streamRun(ctx, cfg, proc, m, &last)
		// A configured start position is for the first run only.
		cfg.Source.StartPosition, cfg.Source.StartGTID = "", ""
		return err
	}, restarts, proc.Log)
}

// runMetrics are the metrics of every run of `producer run`.
type runMetrics struct {
	binlog *binlog.Metrics
	kafka  *kafka.Metrics
}

// streamRun is one run of `producer run`, from connecting to the source
// and Kafka to the end of the stream.
// last is the last committed checkpoint, kept across runs.
func streamRun(ctx context.Context, cfg *Config, proc *service.Process, m runMetrics, last *atomic.Pointer[pipeline.Checkpoint]) error {
	log := proc.Log
	// A stop (SIGTERM) before the stream runs has published nothing: it is
	// a clean exit, whichever step of the start it cut short.
	starting := func(err error) error {
		if ctx.Err() != nil {
			log.Info("stopped while starting: nothing was published", "during", err)
			return nil
		}
		return err
	}
	start, err := binlog.StartFromConfig(&cfg.Source)
	if err != nil {
		return starting(err)
	}
	// The source half of `producer check`: a server that check fails is
	// refused here too, before anything is read.
	if err := binlog.Preflight(ctx, &cfg.Source); err != nil {
		return starting(err)
	}
	reader, err := binlog.Open(ctx, &cfg.Source, log, m.binlog)
	if err != nil {
		return starting(err)
	}
	defer reader.Close()
	// On a terminal, the snapshot's progress as a line under the log.
	reader.OnSnapshotProgress(func(p binlog.SnapshotProgress) {
		if p.Done {
			proc.Progress("")
			return
		}
		proc.Progress(p.String())
	})
	writer, err := kafka.NewWriter(&cfg.Kafka, version, log, m.kafka)
	if err != nil {
		return starting(err)
	}
	defer writer.Close()
	// The checkpoint is read after taking over the transactional id, so
	// that no other producer of this source can still move it.
	codec, err := pipeline.NewCodec()
	if err != nil {
		return starting(err)
	}
	cp, err := codec.ReadCheckpoint(ctx, writer, cfg.Kafka.TopicPrefix)
	if err == nil {
		err = pipeline.SnapshotCaptured(cp, &cfg.Source, log)
	}
	if err != nil {
		return starting(err)
	}
	log.Info("connected to Kafka", "brokers", strings.Join(cfg.Kafka.Brokers, ","), "topic_prefix", cfg.Kafka.TopicPrefix, "checkpoint", cp != nil)
	history, err := codec.ReadSchemaHistory(ctx, writer)
	if err != nil {
		return starting(err)
	}
	plan, err := pipeline.Decide(ctx, reader, pipeline.Facts{Checkpoint: cp, History: history, Configured: start},
		pipeline.Policy{Snapshot: cfg.Source.Snapshot, Transactional: cfg.Kafka.Transactions, LostClockMargin: cfg.Source.LostClockMargin}, log)
	if err != nil {
		return starting(err)
	}
	if plan.Case == pipeline.Resumed {
		reader.SetSchemaHistory(plan.History)
	} else {
		reader.ResetSchemaHistory(plan.Erase)
	}
	reader.Snapshot(plan.Snapshot)
	pipeline.CreateSnapshotTopics(ctx, &plan.Snapshot, reader, writer, log)
	if err := reader.Start(ctx, plan.Start); err != nil {
		return starting(err)
	}
	resume, err := reader.Resume(ctx)
	if err != nil {
		return starting(err)
	}
	signals, stopSignals := context.WithCancel(ctx)
	defer stopSignals()
	go pipeline.WatchSignals(signals, writer, reader, resume.Snapshot().Requests, &cfg.Source, log)
	proc.Ready.Store(true)
	defer proc.Ready.Store(false)

	last.Store(cp)
	proc.SetStatus(func() any {
		st := pipeline.StatusOf(last.Load(), cfg.StatusKeys)
		st.Diverged = writer.Diverged()
		return st
	})
	engine := pipeline.Engine{Source: reader, Log: writer, Resume: resume, Config: engineConfig(&cfg.Kafka, cfg.ShutdownTimeout),
		Committed: func(cp *pipeline.Checkpoint) { last.Store(cp) }, Codec: codec}
	if err := engine.Run(ctx); err != nil {
		log.Error("the stream stopped", "err", err)
		return err
	}
	log.Info("stopped: every record read was published")
	return nil
}

// engineConfig is the engine's part of the configuration: the Kafka
// transactions' bounds, the heartbeat and shutdown_timeout.
func engineConfig(k *kafka.Config, shutdown time.Duration) pipeline.Config {
	return pipeline.Config{MaxRecords: k.TransactionMaxRecords, MaxBytes: k.TransactionMaxBytes, Linger: k.TransactionLinger,
		Heartbeat: k.HeartbeatInterval, Shutdown: shutdown, Version: version}
}
