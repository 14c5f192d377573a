package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/pipeline"
	"github.com/strait-cdc/strait/pkg/service"
)

// runSnapshot is `producer snapshot`: it asks the running producer of the
// configured source to snapshot tables, by a request in
// <prefix>._signals. The producer takes it between two source transactions
// and snapshots the tables alongside the stream; GET /status shows the
// progress.
func runSnapshot(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("producer snapshot", flag.ContinueOnError)
	tables := fs.String("tables", "", "tables to snapshot: comma-separated database.table, each captured by source.include/exclude (required)")
	where := fs.String("where", "", "SQL condition: snapshot only the rows matching it, e.g. \"created_at >= '2024-01-01'\"")
	list := fs.Bool("list", false, "list the requests and where each stands (pending, queued, reading, done, failed, cancelled), then exit")
	cancel := fs.Int64("cancel", -1, "end the snapshot asked for by the request with this ID (see -list); rows already published stay")
	cfg := defaults()
	err := config.FromArgsWithFlags(cfg, "producer", "snapshot",
		"Ask the running producer to snapshot tables (op r records) without stopping the stream; list or cancel requests.",
		"Uses kafka.* and source.include/exclude.", fs, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Kafka.Security.LoadSecrets(getenv), cfg.Kafka.Validate()); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	switch {
	case *list:
		return pipeline.PrintRequests(ctx, &cfg.Kafka, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), stdout)
	case *cancel >= 0:
		offset, err := kafka.SendSignal(ctx, &cfg.Kafka, kafka.Signal{Type: kafka.SignalCancel, Request: *cancel})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cancellation of request %d sent (%s offset %d); producer snapshot -list shows it once the producer took it\n",
			*cancel, kafka.SignalTopic(cfg.Kafka.TopicPrefix), offset)
		return nil
	}
	sig := kafka.Signal{Type: kafka.SignalSnapshot}
	if w := strings.TrimSpace(*where); w != "" {
		// Refused here, before anything is written; the producer checks
		// the request again (whoever writes the topic is not trusted).
		f, err := binlog.ParseFilter(w)
		if err != nil {
			return fmt.Errorf("%w: -where: %v", service.ErrUsage, err)
		}
		sig.Filter = f.SQL
	}
	for _, t := range strings.Split(*tables, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		db, name, ok := strings.Cut(t, ".")
		if !ok || !binlog.Captures(cfg.Source.Include, cfg.Source.Exclude, db, name) {
			return fmt.Errorf("%w: -tables: %s is not a database.table captured by source.include/exclude", service.ErrUsage, t)
		}
		sig.Tables = append(sig.Tables, t)
	}
	if len(sig.Tables) == 0 {
		return fmt.Errorf("%w: -tables is required", service.ErrUsage)
	}
	offset, err := kafka.SendSignal(ctx, &cfg.Kafka, sig)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "snapshot of %s requested (%s offset %d); the running producer takes it between two source transactions — progress: GET /status, strait_producer_snapshot_rows_total\n",
		strings.Join(sig.Tables, ", "), kafka.SignalTopic(cfg.Kafka.TopicPrefix), offset)
	return nil
}
