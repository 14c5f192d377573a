package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
)

// runReset is `consumer reset`: it moves the group's committed offsets of
// the selected table topics to the earliest offset, a time, or explicit
// offsets, printing every partition's old and new offset. The group must
// have no live member, except for -dry-run, which changes nothing and
// says whether the group is active. Re-applying old changes is harmless: BigQuery keeps
// the change with the highest _CHANGE_SEQUENCE_NUMBER per key.
func runReset(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consumer reset", flag.ContinueOnError)
	earliest := fs.Bool("to-earliest", false, "move to the first offset still in each partition (replay everything Kafka keeps)")
	at := fs.String("to-time", "", "move to the first record at or after a time: RFC 3339 (2024-05-01T12:00:00Z) or a duration before now (90m)")
	offsets := fs.String("to-offsets", "", "move to explicit offsets: topic:partition=offset,... (topic: full name or <database>.<table>)")
	topics := fs.String("topics", "", "table topics to reset (default all of kafka.topic_prefix): comma-separated <database>.<table> or topic names, or ^regexps over topic names")
	dryRun := fs.Bool("dry-run", false, "print the moves without committing them; allowed while the group runs")
	cfg, err := commandConfig("reset", "Move the consumer group's committed offsets of the table topics (replay); the group must be stopped, except for a -dry-run.",
		fs, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	var target kafka.ResetTarget
	n := 0
	if *earliest {
		target.Earliest = true
		n++
	}
	if *at != "" {
		ms, err := parseResetTime(*at, time.Now())
		if err != nil {
			return err
		}
		target.AfterMilli = &ms
		n++
	}
	if *offsets != "" {
		if target.Offsets, err = kafka.ParseOffsets(*offsets); err != nil {
			return fmt.Errorf("-to-offsets: %w", err)
		}
		n++
	}
	if n != 1 {
		return fmt.Errorf("%w: give exactly one of -to-earliest, -to-time, -to-offsets", service.ErrUsage)
	}
	if target.Offsets != nil && *topics != "" {
		return fmt.Errorf("%w: -to-offsets names its topics; leave out -topics", service.ErrUsage)
	}
	filter, err := kafka.NewTopicFilter(cfg.Kafka.TopicPrefix, *topics)
	if err != nil {
		return fmt.Errorf("-topics: %w", err)
	}

	sec, err := cfg.Kafka.Security.Opts()
	if err != nil {
		return err
	}
	admin, err := kafka.NewAdmin(cfg.Kafka.Brokers, quietLogger(stderr), sec...)
	if err != nil {
		return err
	}
	defer admin.Close()
	var selected []string
	if target.Offsets != nil {
		if target.Offsets, err = admin.Resolve(ctx, cfg.Kafka.TopicPrefix, target.Offsets); err != nil {
			return fmt.Errorf("-to-offsets: %w", err)
		}
	} else if selected, err = admin.Topics(ctx, filter); err != nil {
		return fmt.Errorf("-topics: %w", err)
	}
	moves, err := admin.Reset(ctx, cfg.Kafka.GroupID, selected, target, *dryRun)
	var active *kafka.GroupActiveError
	if *dryRun && errors.As(err, &active) {
		err = nil // a dry run changes nothing: it may look at a running group
	}
	if err != nil {
		return err
	}
	for _, m := range moves {
		old := "none"
		if m.Old >= 0 {
			old = fmt.Sprint(m.Old)
		}
		fmt.Fprintf(stdout, "%s/%d: %s → %d\n", m.Topic, m.Partition, old, m.New)
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run: group %s would move %d partition(s); nothing committed\n", cfg.Kafka.GroupID, len(moves))
		if active != nil {
			fmt.Fprintf(stdout, "group %s is active: %d live member(s) (state %s: %s); a real reset needs every `consumer run` of the group stopped first\n",
				active.Group, len(active.Members), active.State, strings.Join(active.Members, ", "))
		}
	} else {
		fmt.Fprintf(stdout, "group %s: moved %d partition(s); start `consumer run` to apply from there\n", cfg.Kafka.GroupID, len(moves))
	}
	return nil
}

// parseResetTime reads -to-time: an RFC 3339 time or a duration before
// now, as milliseconds since the epoch.
func parseResetTime(s string, now time.Time) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UnixMilli(), nil
	}
	return 0, fmt.Errorf("-to-time: %q is neither an RFC 3339 time (2024-05-01T12:00:00Z) nor a duration before now (90m)", s)
}

// commandConfig loads the configuration of a command that only reads
// Kafka (reset, tail) the way `consumer run` loads its own — defaults <
// YAML file < STRAIT_* environment < flags, into the same Config, so one
// file serves every command — plus the command's own flags (own), which
// are not configuration keys. Only the kafka.* keys and logging are
// checked: the command does not touch BigQuery.
func commandConfig(name, summary string, own *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) (*Config, error) {
	cfg := defaults()
	if err := config.FromArgsWithFlags(cfg, "consumer", name, summary, "Only the kafka.* keys are used.", own, args, getenv, stdout, stderr); err != nil {
		return nil, err
	}
	if err := cfg.Kafka.Security.LoadSecrets(getenv); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	errs := append([]error{cfg.Kafka.Validate()}, service.ValidateLogging(cfg.LogLevel, cfg.LogFormat)...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

// quietLogger logs the Kafka client's warnings and errors to w as text.
func quietLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
