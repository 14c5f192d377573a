package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
	"github.com/strait-cdc/strait/pkg/verify"
)

// errDifferences makes `producer verify` exit non-zero after printing.
var errDifferences = errors.New("BigQuery differs from the source")

// runVerify is `producer verify`: each table compared with its BigQuery
// table (pkg/verify), a summary line per table on stdout, progress on
// stderr; non-zero exit on any difference.
func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("producer verify", flag.ContinueOnError)
	tables := fs.String("tables", "", "comma-separated database.table to compare (default: every table source.include/exclude captures)")
	chunk := fs.Int("chunk-rows", 50_000, "source rows per compared key range (each range is one BigQuery read session)")
	maxShown := fs.Int("max-shown", 100, "differences printed per table (all are counted)")
	progress := fs.Duration("progress", 5*time.Second, "interval of the progress lines on stderr")
	maxWait := fs.Duration("max-wait", 30*time.Minute, "longest re-checking of an upsert table's pending keys (different, but maybe not applied yet): they are re-checked for the table's max_staleness plus -margin, at most this long; 0 reports them at once")
	margin := fs.Duration("margin", time.Minute, "added to max_staleness when waiting for pending keys, for the consumer's lag")
	recheck := fs.Duration("recheck", 5*time.Second, "interval of the re-checks of pending keys")
	cfg := defaults()
	err := config.FromArgsWithFlags(cfg, "producer", "verify",
		"Compare source tables with their BigQuery tables: row counts and checksums by primary-key range, then the keys that differ. Keys of upsert tables that differ are pending while BigQuery may not have applied them (max_staleness) and re-checked until they match or the wait ends. Exit 1 on any difference.",
		"Uses source.* and bigquery.* (project, dataset, table_template, credentials_file; endpoint, write_endpoint, insecure for a local endpoint), and kafka.* when set, to name the changes the producer dead-lettered as too large. Secrets (STRAIT_SOURCE_PASSWORD) only from the environment or files.",
		fs, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Source.LoadSecrets(getenv), cfg.Source.Validate(), cfg.BigQuery.Validate()); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	ids, err := verify.ParseTables(*tables)
	if err != nil {
		return fmt.Errorf("%w: -tables: %w", service.ErrUsage, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	v, err := verify.New(ctx, &cfg.Source, &cfg.BigQuery, verify.Options{ChunkRows: *chunk, MaxShown: *maxShown, ProgressEvery: *progress,
		MaxWait: *maxWait, Margin: *margin, RecheckEvery: *recheck}, log, stdout, stderr)
	if err != nil {
		return err
	}
	defer v.Close()
	if ids, err = v.Tables(ctx, ids); err != nil {
		return err
	}
	tooLarge := kafka.TooLarge(ctx, &cfg.Kafka, getenv, log)
	differ := 0
	for _, id := range ids {
		res, err := v.Table(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.Summary())
		if n := tooLarge[id]; n > 0 {
			fmt.Fprintf(stdout, "%s: %d changes the producer dead-lettered as too large (%s._dead_letter): their keys differ downstream until a later change or a re-snapshot (producer snapshot -where) publishes them whole\n",
				id, n, cfg.Kafka.TopicPrefix)
		}
		if res.Differences > 0 {
			differ++
		}
	}
	if differ > 0 {
		return fmt.Errorf("%w: %d of %d tables", errDifferences, differ, len(ids))
	}
	fmt.Fprintf(stdout, "every table matches (%d)\n", len(ids))
	return nil
}
