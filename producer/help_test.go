package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// Each subcommand's -h lists the keys it reads, grouped by section, and
// not the keys it ignores, in at most testenv.MaxHelpLines lines.
func TestSubcommandHelpListsOnlyTheKeysItReads(t *testing.T) {
	for _, tc := range []testenv.HelpCase{
		{Cmd: "run", Reads: []string{"source.host", "source.ssh.host", "source.snapshot", "kafka.brokers", "kafka.transaction_linger", "kafka.sasl.mechanism", "http_addr", "status_keys", "log_level"},
			Not: []string{"bigquery.project", "bigquery.dataset"}, Sections: []string{"source", "kafka", "general"}},
		{Cmd: "check", Reads: []string{"source.host", "source.tls.mode", "kafka.brokers", "kafka.topic_prefix", "kafka.schema_registry_url", "kafka.sasl.mechanism"},
			Not: []string{"bigquery.dataset", "kafka.transaction_linger", "kafka.partitions", "source.heartbeat_period", "source.chunk_rows", "http_addr", "status_keys", "shutdown_timeout"}, Sections: []string{"source", "kafka"}},
		{Cmd: "snapshot", Reads: []string{"kafka.brokers", "kafka.topic_prefix", "kafka.tls.enabled", "source.include", "source.exclude"},
			Not: []string{"source.host", "source.ssh.host", "bigquery.dataset", "kafka.partitions", "kafka.schema_registry_tls", "http_addr", "log_level"}, Sections: []string{"source", "kafka"}},
		{Cmd: "verify", Reads: []string{"source.host", "source.include", "bigquery.project", "bigquery.dataset", "bigquery.endpoint", "kafka.brokers", "kafka.topic_prefix"},
			Not: []string{"http_addr", "status_keys", "kafka.transaction_linger", "kafka.partitions", "source.start_gtid", "source.heartbeat_period", "bigquery.write_connections", "bigquery.max_staleness"}, Sections: []string{"source", "bigquery", "kafka"}},
		{Cmd: "backfill", Reads: []string{"source.host", "source.include", "kafka.brokers", "kafka.topic_prefix"},
			Not: []string{"http_addr", "bigquery.dataset", "kafka.transaction_linger", "kafka.partitions"}, Sections: []string{"source", "kafka"}},
	} {
		t.Run(tc.Cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{tc.Cmd, "-h"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
				t.Fatalf("%s -h: %v", tc.Cmd, err)
			}
			testenv.CheckHelp(t, "producer", tc, stderr.String())
		})
	}
}
