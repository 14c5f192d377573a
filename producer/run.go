package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
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
  version  print the version

Run 'producer <command> -h' for the command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return service.Dispatch(ctx, "producer", versionLine(), usage, map[string]service.Command{"run": runStream, "check": runCheck, "snapshot": runSnapshot, "verify": runVerify}, args, getenv, stdout, stderr)
}

// runStream is `producer run`: read a transaction → encode → produce, until
// the context ends. Shutdown, in reverse order of start-up: stop reading →
// flush in-flight records → close Kafka → close the binlog → stop HTTP. A
// transient Kafka error that ends a run (a commit refused while the
// transaction coordinator moves) restarts it from the last checkpoint.
func runStream(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("run", "Stream row changes from the binlog to Kafka.", args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	proc, err := service.Start(cfg.HTTPAddr, cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	defer proc.Close()
	m := runMetrics{binlog: binlog.NewMetrics(proc.Metrics), kafka: kafka.NewMetrics(proc.Metrics),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "strait_producer_restarts_total",
			Help: "Runs restarted in-process from the last checkpoint after a transient Kafka error (a refused commit)."})}
	proc.Metrics.MustRegister(m.restarts)
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := streamRun(ctx, cfg, proc, m)
		if err == nil || ctx.Err() != nil || !kafka.Transient(err) {
			return err
		}
		if time.Since(began) > time.Minute {
			attempt = 1
		}
		// Nothing of the failed Kafka transaction is visible: everything
		// after the last checkpoint is read and published again. A
		// configured start position was for the first run only.
		wait := min(time.Second<<(attempt-1), 30*time.Second)
		// One line when it starts; the retries of the same outage at debug
		// (strait_producer_restarts_total counts them, /readyz is false).
		level := slog.LevelWarn
		if attempt > 1 {
			level = slog.LevelDebug
		}
		proc.Log.Log(ctx, level, "waiting out a transient error (Kafka, Schema Registry): restarting from the last checkpoint", "err", err, "in", wait.String(), "attempt", attempt)
		m.restarts.Inc()
		cfg.Source.StartPosition, cfg.Source.StartGTID = "", ""
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// runMetrics are the metrics of every run of `producer run`.
type runMetrics struct {
	binlog   *binlog.Metrics
	kafka    *kafka.Metrics
	restarts prometheus.Counter
}

// streamRun is one run of `producer run`, from connecting to the source
// and Kafka to the end of the stream.
func streamRun(ctx context.Context, cfg *Config, proc *service.Process, m runMetrics) error {
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
	cp, err := writer.ReadCheckpoint(ctx)
	if err == nil {
		err = snapshotCaptured(cp, &cfg.Source, log)
	}
	if err != nil {
		return starting(err)
	}
	log.Info("connected to Kafka", "brokers", strings.Join(cfg.Kafka.Brokers, ","), "topic_prefix", cfg.Kafka.TopicPrefix, "checkpoint", cp != nil)
	configured := start != (binlog.Start{})
	lost := false // the checkpoint's binlog is gone: start over with a snapshot (when_needed)
	switch {
	case configured && cp != nil:
		log.Warn("starting where configured, not at the checkpoint", "start", start.String(), "checkpoint", cp.File+":"+strconv.FormatUint(cp.Pos, 10), "checkpoint_gtid", cp.GTIDSet)
	case cp != nil:
		start = binlog.Start{GTID: cp.GTIDSet, File: cp.File, Pos: cp.Pos, SkipRows: cp.RowsDone, TxGTID: cp.TxGTID, Epoch: cp.Epoch}
		start, err = onServer(reader, start, cp.ServerID, log)
		if cfg.Source.Snapshot == binlog.SnapshotWhenNeeded {
			lost, err = binlogLost(ctx, reader, start, err)
		}
		if err != nil {
			return starting(err)
		}
		if lost {
			// The changes between the checkpoint and now are gone; the
			// snapshot brings every row that exists up to date (rows
			// deleted meanwhile stay downstream: README, "Snapshots").
			log.Warn("the binlog to resume from is gone: streaming from the current position and snapshotting every captured table again",
				"checkpoint", start.String(), "epoch", cp.Epoch+1)
			start = binlog.Start{Epoch: cp.Epoch + 1}
			break
		}
		log.Info("resuming from the checkpoint", "at", start.String(), "file", cp.File, "pos", cp.Pos,
			"rows_done", cp.RowsDone, "epoch", start.Epoch, "written", cp.Written)
	}
	if err := schemaHistory(ctx, reader, writer, cp, !configured && !lost, cfg.Kafka.Transactions); err != nil {
		return starting(err)
	}
	if err := planSnapshot(ctx, reader, cp, configured, lost, cfg.Source.Snapshot, log); err != nil {
		return starting(err)
	}
	if err := reader.Start(ctx, start); err != nil {
		return starting(err)
	}
	resume, err := reader.Resume(ctx)
	if err != nil {
		return starting(err)
	}
	signals, stopSignals := context.WithCancel(ctx)
	defer stopSignals()
	go watchSignals(signals, writer, reader, resume.Snapshot().Requests, &cfg.Source, log)
	proc.Ready.Store(true)
	defer proc.Ready.Store(false)

	var last atomic.Pointer[kafka.Checkpoint]
	last.Store(cp)
	proc.SetStatus(func() any {
		st := statusOf(last.Load(), cfg.StatusKeys)
		st.Diverged = writer.Diverged()
		return st
	})
	engine := pipeline.Engine{Source: reader, Log: writer, Resume: resume, Config: engineConfig(&cfg.Kafka, cfg.ShutdownTimeout),
		Committed: func(cp *kafka.Checkpoint) { last.Store(cp) }}
	if err := engine.Run(ctx); err != nil {
		log.Error("the stream stopped", "err", err)
		return err
	}
	log.Info("stopped: every record read was published")
	return nil
}

// snapshotCaptured keeps of the checkpoint cp's snapshot only the tables
// the configuration captures. A table the checkpoint's own patterns
// captured was excluded since: its snapshot is dropped, with a warning.
// Any other table cannot be in a checkpoint the producer wrote: an error
// naming the record.
func snapshotCaptured(cp *kafka.Checkpoint, src *binlog.Config, log *slog.Logger) error {
	if cp == nil {
		return nil
	}
	var keep []string
	for i, t := range cp.SnapshotTables {
		db, name, _ := strings.Cut(t, ".")
		switch {
		case binlog.Captures(src.Include, src.Exclude, db, name):
			keep = append(keep, t)
			continue
		case !binlog.Captures(cp.Include, cp.Exclude, db, name):
			return cp.Refuse(fmt.Errorf("snapshot table %s: captured neither by source.include/exclude nor by the checkpoint's own patterns", t))
		}
		log.Warn("snapshot: the configuration no longer captures the table; its snapshot is dropped", "table", t)
		if i == 0 {
			cp.SnapshotAfter = nil
		}
		delete(cp.SnapshotFilters, t)
		delete(cp.SnapshotOrigins, t)
	}
	cp.SnapshotTables = keep
	return nil
}

// onServer adapts a checkpoint's start, written while reading the server
// cpServer, to the server the reader is connected to. The same server: as
// it is. Another one (a failover to another replica of the same primary):
// only the GTID set carries over — file names and positions are that
// server's own — and the sequence epoch rises, so that every change's
// sequence stays above those published before.
func onServer(reader *binlog.Reader, start binlog.Start, cpServer uint32, log *slog.Logger) (binlog.Start, error) {
	id, err := reader.ServerID()
	if err != nil || id == cpServer {
		return start, err
	}
	if start.GTID == "" {
		return start, fmt.Errorf("the checkpoint is of server_id %d, this server is %d, and without a GTID set the position cannot carry over: %w; "+
			"enable GTIDs, or re-snapshot (source.snapshot: when_needed does it by itself) and start at the current position (source.start_position)", cpServer, id, errElsewhere)
	}
	log.Warn("continuing on another server by GTID set: the sequence epoch rises", "checkpoint_server_id", cpServer,
		"server_id", id, "gtid", start.GTID, "epoch", start.Epoch+1)
	return binlog.Start{GTID: start.GTID, SkipRows: start.SkipRows, TxGTID: start.TxGTID, Epoch: start.Epoch + 1}, nil
}

// errElsewhere: the checkpoint's position is another server's.
var errElsewhere = errors.New("the checkpoint's binlog position is another server's")

// binlogLost reports whether the binlog to resume from (start, which
// onServer returned with err) is gone: another server's position, or one
// the server no longer has (purged).
func binlogLost(ctx context.Context, reader *binlog.Reader, start binlog.Start, err error) (bool, error) {
	if errors.Is(err, errElsewhere) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	ok, err := reader.Available(ctx, start)
	return !ok, err
}

// schemaHistory gives the reader the schema history (pkg/binlog/history.go)
// when it resumes from the checkpoint cp; a run starting anywhere else
// erases the recorded entries, which describe other positions. Without
// transactions, entries may lie past the checkpoint (written before a crash
// that lost the checkpoint after them): those of the checkpoint's server
// are dropped by position, and the table's schema is read again.
func schemaHistory(ctx context.Context, reader *binlog.Reader, writer *kafka.Writer, cp *kafka.Checkpoint, resuming, transactional bool) error {
	h, err := writer.ReadSchemaHistory(ctx)
	if err != nil {
		return err
	}
	if cp == nil || !resuming {
		reader.ResetSchemaHistory(slices.Sorted(maps.Keys(h)))
		return nil
	}
	if !transactional {
		for id, s := range h {
			if s.ServerID != cp.ServerID || binlog.After(s.File, s.Pos, cp.File, cp.Pos) {
				delete(h, id)
			}
		}
	}
	reader.SetSchemaHistory(h)
	return nil
}

// planSnapshot tells the reader which tables to backfill: the rest of the
// snapshot the checkpoint cp was taking, or — on a first start (no
// checkpoint, no configured start position) with source.snapshot=initial —
// every captured table.
//
// With a checkpoint, tables the configuration captures now but did not when
// the checkpoint was written (source.include grew) are added, unless
// source.snapshot is never. When the checkpoint's binlog is lost, every
// captured table is snapshotted again.
func planSnapshot(ctx context.Context, reader *binlog.Reader, cp *kafka.Checkpoint, configured, lost bool, mode string, log *slog.Logger) error {
	var st binlog.SnapshotState
	switch {
	case lost:
		tables, err := reader.CapturedTables(ctx)
		if err != nil {
			return err
		}
		st = binlog.SnapshotState{Tables: tables, Requests: cp.SnapshotRequests, Failed: failuresIn(cp.SnapshotFailed)}
	case cp != nil:
		st = binlog.SnapshotState{Tables: cp.SnapshotTables, After: cp.SnapshotAfter, Filters: cp.SnapshotFilters, Requests: cp.SnapshotRequests,
			Origins: cp.SnapshotOrigins, Failed: failuresIn(cp.SnapshotFailed)}
		if mode == binlog.SnapshotNever {
			break
		}
		tables, err := reader.CapturedTables(ctx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			db, name, _ := strings.Cut(t, ".")
			if !binlog.Captures(cp.Include, cp.Exclude, db, name) && !slices.Contains(st.Tables, t) {
				log.Info("snapshot: a table the configuration captures from now on", "table", t)
				st.Tables = append(st.Tables, t)
			}
		}
	case !configured && mode != binlog.SnapshotNever:
		tables, err := reader.CapturedTables(ctx)
		if err != nil {
			return err
		}
		st.Tables = tables
	}
	if len(st.Tables) > 0 {
		log.Info("snapshot: backfilling tables alongside the stream", "tables", len(st.Tables), "first", st.Tables[0], "resuming_after_key", st.After != nil)
	}
	reader.Snapshot(st)
	return nil
}

// watchSignals hands the snapshot requests of <prefix>._signals, from the
// checkpoint's offset on, to the reader until ctx ends. Tables the
// configuration does not capture are left out, with an error in the log.
func watchSignals(ctx context.Context, writer *kafka.Writer, reader *binlog.Reader, from int64, src *binlog.Config, log *slog.Logger) {
	err := writer.WatchSignals(ctx, from, func(sig kafka.Signal, next int64) error {
		req := binlog.SnapshotRequest{Filter: sig.Filter, Next: next}
		switch sig.Type {
		case kafka.SignalCancel:
			req.Cancel, req.Request = true, sig.Request
			return reader.RequestSnapshot(ctx, req)
		case kafka.SignalSnapshot:
		default:
			log.Error("signal of an unknown type; skipped", "type", sig.Type, "offset", next-1)
		}
		for _, t := range sig.Tables {
			db, name, ok := strings.Cut(t, ".")
			if sig.Type != kafka.SignalSnapshot || !ok || !binlog.Captures(src.Include, src.Exclude, db, name) {
				log.Error("snapshot request: not a captured table (database.table within source.include/exclude); left out", "table", t)
				continue
			}
			req.Tables = append(req.Tables, t)
		}
		return reader.RequestSnapshot(ctx, req)
	})
	if err != nil && ctx.Err() == nil {
		log.Error("snapshot requests are not read any more", "err", err)
	}
}

// engineConfig is the engine's part of the configuration: the Kafka
// transactions' bounds, the heartbeat and shutdown_timeout.
func engineConfig(k *kafka.Config, shutdown time.Duration) pipeline.Config {
	return pipeline.Config{MaxRecords: k.TransactionMaxRecords, MaxBytes: k.TransactionMaxBytes, Linger: k.TransactionLinger,
		Heartbeat: k.HeartbeatInterval, Shutdown: shutdown, Version: version}
}

// status is what GET /status shows: the last committed checkpoint — where
// a restart would resume — and the snapshot's progress.
type status struct {
	Checkpoint *checkpointStatus `json:"checkpoint"` // null before the first commit
	Snapshot   *snapshotStatus   `json:"snapshot"`   // null when no snapshot runs
	// Diverged counts, by table, the keys whose last change went to the
	// dead-letter topic as too large since the start: downstream differs
	// there until a later change of the key is published whole.
	Diverged map[string]int `json:"diverged,omitempty"`
}

type checkpointStatus struct {
	GTIDSet    string    `json:"gtid_set,omitempty"`
	File       string    `json:"file"`
	Pos        uint64    `json:"pos"`
	RowsDone   int       `json:"rows_done,omitempty"`
	Epoch      uint64    `json:"epoch"`
	ServerID   uint32    `json:"server_id"`
	SourceTime time.Time `json:"source_time"`
	Written    time.Time `json:"written"`
}

type snapshotStatus struct {
	Table     string   `json:"table"`               // being read
	AfterKey  []string `json:"after_key,omitempty"` // key of the last row published
	Remaining []string `json:"remaining"`           // after it
}

// statusOf is GET /status for the checkpoint cp; keys says whether the
// key of the last row snapshotted is shown (status_keys: off by default,
// as /status answers anyone who reaches the port).
func statusOf(cp *kafka.Checkpoint, keys bool) status {
	if cp == nil {
		return status{}
	}
	st := status{Checkpoint: &checkpointStatus{GTIDSet: cp.GTIDSet, File: cp.File, Pos: cp.Pos, RowsDone: cp.RowsDone,
		Epoch: cp.Epoch, ServerID: cp.ServerID, SourceTime: cp.SourceTime, Written: cp.Written}}
	if len(cp.SnapshotTables) > 0 {
		st.Snapshot = &snapshotStatus{Table: cp.SnapshotTables[0], Remaining: cp.SnapshotTables[1:]}
		for _, v := range cp.SnapshotAfter {
			if keys {
				st.Snapshot.AfterKey = append(st.Snapshot.AfterKey, keyText(v))
			}
		}
	}
	return st
}

// failuresIn carries snapshot failures from the checkpoint to the reader's
// state.
func failuresIn(fs []kafka.SnapshotFailure) []binlog.SnapshotFailure {
	out := make([]binlog.SnapshotFailure, len(fs))
	for i, f := range fs {
		out[i] = binlog.SnapshotFailure(f)
	}
	return out
}

// keyText renders a key value for people: text as is, numbers in decimal,
// binary that is not UTF-8 in hex.
func keyText(v cdc.Value) string {
	switch {
	case v.Null:
		return "NULL"
	case v.Str != "" && utf8.ValidString(v.Str):
		return v.Str
	case v.Str != "":
		return "0x" + hex.EncodeToString([]byte(v.Str))
	case v.Float != 0:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	}
	return strconv.FormatInt(v.Int, 10)
}
