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
	"github.com/strait-cdc/strait/pkg/pipeline"
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
	repair := fs.Bool("repair", false, "ask the running producer (through kafka.* and its signal topic) to publish again, with the snapshot's sequence rule, each key found missing, extra (as a delete) or different; then run verify again")
	cfg := defaults()
	err := config.FromArgsWithFlags(cfg, "producer", "verify",
		"Compare source tables with their BigQuery tables: row counts and checksums by primary-key range, then the keys that differ. Keys of upsert tables that differ are pending while BigQuery may not have applied them (max_staleness) and re-checked until they match or the wait ends. With -repair, the running producer is asked to publish the keys that differ again. Exit 1 on any difference.",
		"Uses source.* and bigquery.* (project, dataset, table_template, credentials_file; endpoint, write_endpoint, insecure for a local endpoint), and kafka.* when set, to name the changes the producer dead-lettered as too large and, with -repair, to write repair requests to the producer's signal topic. Secrets (STRAIT_SOURCE_PASSWORD) only from the environment or files.",
		fs, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Source.LoadSecrets(getenv), cfg.Source.Validate(), cfg.BigQuery.Validate()); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	if *repair {
		if err := errors.Join(cfg.Kafka.Security.LoadSecrets(getenv), cfg.Kafka.Validate()); err != nil {
			return fmt.Errorf("configuration (-repair writes to the producer's signal topic):\n%w", err)
		}
	}
	ids, err := verify.ParseTables(*tables)
	if err != nil {
		return fmt.Errorf("%w: -tables: %w", service.ErrUsage, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	v, err := verify.New(ctx, &cfg.Source, &cfg.BigQuery, verify.Options{ChunkRows: *chunk, MaxShown: *maxShown, ProgressEvery: *progress,
		MaxWait: *maxWait, Margin: *margin, RecheckEvery: *recheck, Repair: *repair}, log, stdout, stderr)
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
			if *repair {
				if err := requestRepair(ctx, cfg, id, res.Repair, stdout); err != nil {
					return fmt.Errorf("repair of %s: %w", id, err)
				}
			}
		}
	}
	if differ > 0 {
		return fmt.Errorf("%w: %d of %d tables", errDifferences, differ, len(ids))
	}
	fmt.Fprintf(stdout, "every table matches (%d)\n", len(ids))
	return nil
}

// requestRepair asks the running producer to publish the keys of rp again
// (pkg/binlog's repair.go), in as many signals as they take, and says how
// to follow them; a table whose differences no key names is not repaired,
// with why and what to do instead.
func requestRepair(ctx context.Context, cfg *Config, id string, rp verify.Repair, stdout io.Writer) error {
	if rp.Refused != "" {
		fmt.Fprintf(stdout, "%s: not repaired by key: %s; snapshot it again instead: producer snapshot -tables %s\n", id, rp.Refused, id)
		return nil
	}
	signals, err := pipeline.RepairSignals(id, rp.Keys, &cfg.Source)
	if err != nil {
		return err
	}
	var first, last int64
	for i, sig := range signals {
		offset, err := kafka.SendSignal(ctx, &cfg.Kafka, sig)
		if err != nil {
			return fmt.Errorf("%d of %d requests sent: %w", i, len(signals), err)
		}
		if i == 0 {
			first = offset
		}
		last = offset
	}
	fmt.Fprintf(stdout, "%s: repair of %d keys requested (%d missing, %d extra, %d different) in %d requests, %s offsets %d-%d; "+
		"the running producer publishes each once its stream has passed the keys' read: producer snapshot -list shows them, then run producer verify again\n",
		id, len(rp.Keys), rp.Kinds["missing"], rp.Kinds["extra"], rp.Kinds["different"], len(signals), kafka.SignalTopic(cfg.Kafka.TopicPrefix), first, last)
	return nil
}
