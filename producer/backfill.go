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
	from := fs.String("from", "", "file of the rows: one JSON object per line, by column name (README, \"Operations: backfill\"); or -query")
	query := fs.String("query", "", "a SELECT on the source whose columns are named as the table's, e.g. \"SELECT * FROM shop.accounts_archive\": one statement, run read-only with source.*'s user; or -from")
	cfg := defaults()
	err := config.FromArgsWithFlags(cfg, "producer", "backfill",
		"Load historical rows from a file, or from a query on the source (an archive table), into a live table through the running producer: published as snapshot rows with a sequence below every live change, they fill gaps and never overwrite a newer row (nor one deleted less than two days ago).",
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
	if (*from == "") == (*query == "") {
		return fmt.Errorf("%w: one of -from and -query is required", service.ErrUsage)
	}
	if *query != "" {
		if err := binlog.CheckQuery(*query); err != nil {
			return fmt.Errorf("%w: -query: %v", service.ErrUsage, err)
		}
	}
	scanner, err := binlog.NewScanner(&cfg.Source, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer scanner.Close()
	t, err := scanner.Schema(ctx, db, name)
	if err != nil {
		return err
	}
	if !t.HasKey() {
		return fmt.Errorf("%s has no primary key: a backfilled row would be one more row, not a gap filled", id)
	}
	read := func(emit func(kafka.Signal) error) (int, error) {
		if *query != "" {
			return pipeline.BackfillQuery(ctx, scanner, *query, t, &cfg.Source, emit)
		}
		f, err := os.Open(*from)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		n, err := pipeline.BackfillSignals(f, t, &cfg.Source, emit)
		if err != nil {
			err = fmt.Errorf("%s: %w", *from, err)
		}
		return n, err
	}
	// Read twice: every row is checked before the first request is sent,
	// so that a bad row does not leave a partial load.
	rows, err := read(func(kafka.Signal) error { return nil })
	if err != nil {
		return err
	}
	var first, last int64 = -1, -1
	requests := 0
	_, err = read(func(sig kafka.Signal) error {
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
