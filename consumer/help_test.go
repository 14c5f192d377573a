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
		{"run", []string{"kafka.brokers", "kafka.group_id", "kafka.max_poll_records", "kafka.sasl.mechanism", "bigquery.project", "bigquery.dataset", "on_bad_record", "http_addr", "log_level"},
			[]string{"source.host"}, []string{"kafka", "bigquery", "general"}},
		{"reset", []string{"kafka.brokers", "kafka.group_id", "kafka.topic_prefix", "kafka.tls.enabled"},
			[]string{"bigquery.dataset", "http_addr", "on_bad_record", "parallel_tables", "kafka.max_poll_records", "kafka.schema_registry_url"}, []string{"kafka"}},
		{"tail", []string{"kafka.brokers", "kafka.topic_prefix", "kafka.schema_registry_url", "kafka.schema_registry_auth.username", "kafka.max_record_bytes"},
			[]string{"kafka.group_id", "kafka.dead_letter_topic", "bigquery.dataset", "http_addr", "on_bad_record", "shutdown_timeout"}, []string{"kafka"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{tc.cmd, "-h"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
				t.Fatalf("%s -h: %v", tc.cmd, err)
			}
			help := stderr.String()
			for _, k := range tc.reads {
				if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(k) + `\s`).MatchString(help) {
					t.Errorf("consumer %s -h does not list -%s:\n%s", tc.cmd, k, help)
				}
			}
			for _, k := range tc.not {
				if strings.Contains(help, k) {
					t.Errorf("consumer %s -h lists %s, which it does not read:\n%s", tc.cmd, k, help)
				}
			}
			for _, s := range tc.sectionsHas {
				if !regexp.MustCompile(`(?m)^` + s + `\b`).MatchString(help) {
					t.Errorf("consumer %s -h has no section %s:\n%s", tc.cmd, s, help)
				}
			}
			if n := strings.Count(help, "\n"); n > maxHelpLines {
				t.Errorf("consumer %s -h is %d lines, want at most %d:\n%s", tc.cmd, n, maxHelpLines, help)
			}
		})
	}
}
