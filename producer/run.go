package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `Usage: producer <command> [flags]

Reads the binlog of a MySQL/MariaDB server as a replica and publishes every
row change as Avro (Debezium envelope) to one Kafka topic per table.

Commands:
  run      stream changes to Kafka until stopped (SIGTERM drains and exits 0)
  check    validate the source, Kafka and the Schema Registry, with fixes
  version  print the version

Run 'producer <command> -h' for the command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	var err error
	switch args[0] {
	case "run":
		err = runStream(ctx, args[1:], getenv, stdout, stderr)
	case "check":
		err = runCheck(ctx, args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "strait producer", version)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "producer: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errPrinted) {
		return nil
	}
	return err
}

var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runStream is `producer run`: read a transaction → encode → produce, until
// the context ends. Shutdown, in reverse order of start-up: stop reading →
// flush in-flight records → close Kafka → close the binlog → stop HTTP.
func runStream(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("run", "Stream row changes from the binlog to Kafka.", args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var ready atomic.Bool
	srv, err := serveHTTP(cfg.HTTPAddr, reg, &ready, log)
	if err != nil {
		return err
	}
	defer srv.Close()

	start, err := binlog.StartFromConfig(&cfg.Source)
	if err != nil {
		return err
	}
	reader, err := binlog.Open(ctx, &cfg.Source, log, binlog.NewMetrics(reg))
	if err != nil {
		return err
	}
	defer reader.Close()
	writer, err := kafka.NewWriter(&cfg.Kafka, version, log, kafka.NewMetrics(reg))
	if err != nil {
		return err
	}
	defer writer.Close()
	// The checkpoint is read after taking over the transactional id, so
	// that no other producer of this source can still move it.
	cp, err := writer.ReadCheckpoint(ctx)
	if err != nil {
		return err
	}
	switch {
	case start != (binlog.Start{}) && cp != nil:
		log.Warn("starting where configured, not at the checkpoint", "start", start.String(), "checkpoint", cp.File+":"+strconv.FormatUint(cp.Pos, 10), "checkpoint_gtid", cp.GTIDSet)
	case cp != nil:
		start = binlog.Start{GTID: cp.GTIDSet, File: cp.File, Pos: cp.Pos}
		log.Info("resuming from the checkpoint", "at", start.String(), "file", cp.File, "pos", cp.Pos, "written", cp.Written)
	}
	if err := reader.Start(ctx, start); err != nil {
		return err
	}
	resume, err := reader.Resume(ctx)
	if err != nil {
		return err
	}
	ready.Store(true)
	defer ready.Store(false)

	if err := stream(ctx, reader, writer, resume, &cfg.Kafka); err != nil {
		log.Error("producer stopped", "err", err)
		return err
	}
	log.Info("stopped: every record read was published")
	return nil
}

// serveHTTP serves /metrics, /healthz (the process is alive) and /readyz
// (the stream is running) until the returned server is closed.
func serveHTTP(addr string, reg *prometheus.Registry, ready *atomic.Bool, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http_addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving metrics and health", "addr", l.Addr().String())
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	return srv, nil
}
