package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// maxHelpLines bounds every subcommand's -h text: one line per key it
// reads, a header per section, and the usage lines around them.
const maxHelpLines = 100

// Each subcommand's -h lists the keys it reads, grouped by section, and
// not the keys it ignores, in at most maxHelpLines lines.
func TestSubcommandHelpListsOnlyTheKeysItReads(t *testing.T) {
	for _, tc := range []struct {
		cmd         string
		reads, not  []string
		sectionsHas []string
	}{
		{"run", []string{"source.host", "source.ssh.host", "source.snapshot", "kafka.brokers", "kafka.transaction_linger", "kafka.sasl.mechanism", "http_addr", "status_keys", "log_level"},
			[]string{"bigquery.project", "bigquery.dataset"}, []string{"source", "kafka", "general"}},
		{"check", []string{"source.host", "source.tls.mode", "kafka.brokers", "kafka.topic_prefix", "kafka.schema_registry_url", "kafka.sasl.mechanism"},
			[]string{"bigquery.dataset", "kafka.transaction_linger", "kafka.partitions", "source.heartbeat_period", "source.chunk_rows", "http_addr", "status_keys", "shutdown_timeout"}, []string{"source", "kafka"}},
		{"snapshot", []string{"kafka.brokers", "kafka.topic_prefix", "kafka.tls.enabled", "source.include", "source.exclude"},
			[]string{"source.host", "source.ssh.host", "bigquery.dataset", "kafka.partitions", "kafka.schema_registry_tls", "http_addr", "log_level"}, []string{"source", "kafka"}},
		{"verify", []string{"source.host", "source.include", "bigquery.project", "bigquery.dataset", "bigquery.endpoint", "kafka.brokers", "kafka.topic_prefix"},
			[]string{"http_addr", "status_keys", "kafka.transaction_linger", "kafka.partitions", "source.start_gtid", "source.heartbeat_period", "bigquery.write_connections", "bigquery.max_staleness"}, []string{"source", "bigquery", "kafka"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{tc.cmd, "-h"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
				t.Fatalf("%s -h: %v", tc.cmd, err)
			}
			help := stderr.String()
			for _, k := range tc.reads {
				if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(k) + `\s`).MatchString(help) {
					t.Errorf("producer %s -h does not list -%s:\n%s", tc.cmd, k, help)
				}
			}
			for _, k := range tc.not {
				if strings.Contains(help, k) {
					t.Errorf("producer %s -h lists %s, which it does not read:\n%s", tc.cmd, k, help)
				}
			}
			for _, s := range tc.sectionsHas {
				if !regexp.MustCompile(`(?m)^` + s + `\b`).MatchString(help) {
					t.Errorf("producer %s -h has no section %s:\n%s", tc.cmd, s, help)
				}
			}
			if n := strings.Count(help, "\n"); n > maxHelpLines {
				t.Errorf("producer %s -h is %d lines, want at most %d:\n%s", tc.cmd, n, maxHelpLines, help)
			}
		})
	}
}
