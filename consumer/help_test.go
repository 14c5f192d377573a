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
		{Cmd: "run", Reads: []string{"kafka.brokers", "kafka.group_id", "kafka.max_poll_records", "kafka.sasl.mechanism", "bigquery.project", "bigquery.dataset", "on_bad_record", "http_addr", "log_level"},
			Not: []string{"source.host"}, Sections: []string{"kafka", "bigquery", "general"}},
		{Cmd: "reset", Reads: []string{"kafka.brokers", "kafka.group_id", "kafka.topic_prefix", "kafka.tls.enabled"},
			Not: []string{"bigquery.dataset", "http_addr", "on_bad_record", "parallel_tables", "kafka.max_poll_records", "kafka.schema_registry_url"}, Sections: []string{"kafka"}},
		{Cmd: "tail", Reads: []string{"kafka.brokers", "kafka.topic_prefix", "kafka.schema_registry_url", "kafka.schema_registry_auth.username", "kafka.max_record_bytes"},
			Not: []string{"kafka.group_id", "kafka.dead_letter_topic", "bigquery.dataset", "http_addr", "on_bad_record", "shutdown_timeout"}, Sections: []string{"kafka"}},
	} {
		t.Run(tc.Cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{tc.Cmd, "-h"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
				t.Fatalf("%s -h: %v", tc.Cmd, err)
			}
			testenv.CheckHelp(t, "consumer", tc, stderr.String())
		})
	}
}
