package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// errChecksFailed makes `producer check` exit non-zero after printing.
var errChecksFailed = errors.New("checks failed")

// runCheck is `producer check`: one line per check with PASS/WARN/FAIL and
// the fix; non-zero exit on any FAIL.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("check", "Validate the source (binlog settings, privileges, retention, timeouts), Kafka and the Schema Registry; print the fix for each problem.", args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	var results []cdc.CheckResult
	results = append(results, binlog.Check(ctx, &cfg.Source)...)
	kopts, err := cfg.Kafka.Security.Opts()
	if err != nil {
		return err
	}
	ropts, err := cfg.Kafka.Security.RegistryOpts()
	if err != nil {
		return err
	}
	results = append(results, kafka.CheckKafka(ctx, cfg.Kafka.Brokers, kopts...)...)
	results = append(results, kafka.CheckStateACLs(ctx, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix, cfg.Kafka.Security.Principal(), kopts...))
	results = append(results, kafka.CheckRegistry(ctx, cfg.Kafka.RegistryURL, ropts...)...)
	failed := 0
	for _, r := range results {
		line := fmt.Sprintf("%s %s: %s", r.Status, r.Name, r.Detail)
		if r.Fix != "" && r.Status != cdc.Pass {
			line += " — fix: " + r.Fix
		}
		fmt.Fprintln(stdout, line)
		if r.Status == cdc.Fail {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errChecksFailed, failed, len(results))
	}
	return nil
}
