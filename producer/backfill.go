package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/pipeline"
	"github.com/strait-cdc/strait/pkg/service"
)

// runBackfill is `producer backfill`: the rows of a file, checked against
// the table's current schema, sent to the running producer as backfill
// requests (pkg/pipeline's backfill.go), which publishes them with a
// sequence below every live change.
func runBackfill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("producer backfill", flag.ContinueOnError)
	tables := fs.String("tables", "", "the table to load: database.table, captured by source.include/exclude, with a primary key (required)")
	from := fs.String("from", "", "file of the rows: one JSON object per line, by column name (README, \"Operations: backfill\") (required)")
	cfg := defaults()
	err := config.FromArgsWithFlags(cfg, "producer", "backfill",
		"Load historical rows from a file into a live table through the running producer: published as snapshot rows with a sequence below every live change, they fill gaps and never overwrite a newer row (nor one deleted less than two days ago).",
		"Uses source.* (to read the table's schema) and kafka.* (the producer's signal topic). Secrets (STRAIT_SOURCE_PASSWORD) only from the environment or files.",
		fs, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Source.LoadSecrets(getenv), cfg.Source.Validate(), cfg.Kafka.Security.LoadSecrets(getenv), cfg.Kafka.Validate()); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	id := strings.TrimSpace(*tables)
	db, name, ok := strings.Cut(id, ".")
	if !ok || strings.Contains(id, ",") || !binlog.Captures(cfg.Source.Include, cfg.Source.Exclude, db, name) {
		return fmt.Errorf("%w: -tables: want one database.table captured by source.include/exclude, got %q", service.ErrUsage, id)
	}
	if *from == "" {
		return fmt.Errorf("%w: -from is required", service.ErrUsage)
	}
	t, err := tableSchema(ctx, cfg, db, name, stderr)
	if err != nil {
		return err
	}
	// Read twice: every line is checked before the first request is
	// sent, so that a bad line does not leave a partial load.
	rows, err := backfillFile(*from, t, &cfg.Source, func(kafka.Signal) error { return nil })
	if err != nil {
		return fmt.Errorf("%s: %w", *from, err)
	}
	var first, last int64 = -1, -1
	requests := 0
	_, err = backfillFile(*from, t, &cfg.Source, func(sig kafka.Signal) error {
		offset, err := kafka.SendSignal(ctx, &cfg.Kafka, sig)
		if err != nil {
			return fmt.Errorf("%d requests sent: %w", requests, err)
		}
		if first < 0 {
			first = offset
		}
		last = offset
		requests++
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backfill of %d rows of %s requested in %d requests, %s offsets %d-%d; the running producer publishes each in a transaction of its own: producer snapshot -list shows them\n",
		rows, id, requests, kafka.SignalTopic(cfg.Kafka.TopicPrefix), first, last)
	return nil
}

// backfillFile reads the file path as pipeline.BackfillSignals does.
func backfillFile(path string, t *cdc.Table, src *binlog.Config, emit func(kafka.Signal) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return pipeline.BackfillSignals(f, t, src, emit)
}

// tableSchema reads the current schema of db.name from the source.
func tableSchema(ctx context.Context, cfg *Config, db, name string, stderr io.Writer) (*cdc.Table, error) {
	scanner, err := binlog.NewScanner(&cfg.Source, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, err
	}
	defer scanner.Close()
	scan, err := scanner.Open(ctx, db, name)
	if err != nil {
		return nil, fmt.Errorf("schema of %s.%s: %w", db, name, err)
	}
	defer scan.Close()
	t := scan.Table()
	if !t.HasKey() {
		return nil, fmt.Errorf("%s.%s has no primary key: a backfilled row would be one more row, not a gap filled", db, name)
	}
	return t, nil
}
