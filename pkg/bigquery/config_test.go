package bigquery_test

import (
	"strings"
	"testing"

	"github.com/strait-cdc/strait/pkg/bigquery"
)

func TestConfigMode(t *testing.T) {
	tests := []struct {
		mode, suffix string
		want         string // in the error; "" = valid
	}{
		{bigquery.ModeUpsert, "_latest", ""},
		{bigquery.ModeAppend, "_current", ""},
		{"merge", "_latest", `bigquery.mode: "merge", want upsert or append`},
		{bigquery.ModeAppend, "", "bigquery.view_suffix"},
		{bigquery.ModeAppend, ".v", "bigquery.view_suffix"},
	}
	for _, tt := range tests {
		cfg := &bigquery.Config{}
		cfg.Defaults()
		cfg.Project, cfg.Dataset, cfg.Mode, cfg.ViewSuffix = "p", "d", tt.mode, tt.suffix
		err := cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("mode %q suffix %q: %v, want valid", tt.mode, tt.suffix, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("mode %q suffix %q: %v, want an error with %q", tt.mode, tt.suffix, err, tt.want)
		}
	}
	cfg := &bigquery.Config{}
	cfg.Defaults()
	if cfg.Mode != bigquery.ModeUpsert || cfg.ViewSuffix != "_latest" {
		t.Errorf("defaults: mode %q, view_suffix %q; want upsert, _latest", cfg.Mode, cfg.ViewSuffix)
	}
}
