package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBackfillUsage: a backfill asks for one captured table and one source
// of rows, and a query that is one SELECT; each mistake is a usage error
// (exit 2) saying so, before anything is read or sent.
func TestBackfillUsage(t *testing.T) {
	base := []string{"backfill", "-source.host", "127.0.0.1", "-source.user", "u", "-source.include", "shop.*",
		"-kafka.brokers", "127.0.0.1:1", "-kafka.schema_registry_url", "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no table", []string{"-from", "f"}, "-tables: want one database.table"},
		{"two tables", []string{"-tables", "shop.a,shop.b", "-from", "f"}, "-tables: want one database.table"},
		{"not captured", []string{"-tables", "crm.a", "-from", "f"}, "-tables: want one database.table captured"},
		{"no rows", []string{"-tables", "shop.a"}, "one of -from and -query is required"},
		{"both", []string{"-tables", "shop.a", "-from", "f", "-query", "SELECT 1"}, "one of -from and -query is required"},
		{"a write", []string{"-tables", "shop.a", "-query", "DELETE FROM shop.a"}, "-query: want a SELECT"},
		{"two statements", []string{"-tables", "shop.a", "-query", "SELECT * FROM x; DROP TABLE shop.a"}, "-query: holds a ';'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append(base, tc.args...), func(string) string { return "" }, &stdout, &stderr)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("exit %d, %v; want 2 and %q", exitCode(err), err, tc.want)
			}
		})
	}
}
