package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
)

// TestMetricNamesExtracted checks metricNames on the forms the rules use.
func TestMetricNamesExtracted(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`time() - strait_producer_checkpoint_source_timestamp_seconds > 900`, []string{"strait_producer_checkpoint_source_timestamp_seconds"}},
		{`sum by (le) (rate(strait_consumer_append_seconds_bucket{job="strait_x"}[5m]))`, []string{"strait_consumer_append_seconds_bucket"}},
		{`absent(up{job='strait_producer'})`, nil},
	} {
		got := metricNames(tc.expr)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
	if errs := checkMetrics("test", "strait_producer_no_such_metric", map[string]bool{}); len(errs) != 1 {
		t.Errorf("an unknown metric gave %d errors, want 1", len(errs))
	}
}

// requiredAlerts are what issue 7 asks the rules to watch, each by the
// metric that shows it.
var requiredAlerts = map[string]string{
	"consumer lag in records":           "strait_consumer_lag_records",
	"consumer seconds behind source":    "strait_consumer_source_timestamp_seconds",
	"consumer BigQuery errors":          "strait_consumer_bigquery_errors_total",
	"consumer Kafka errors":             "strait_consumer_kafka_errors_total",
	"producer errors":                   "strait_producer_errors_total",
	"dead letters":                      "strait_producer_dead_letters_total",
	"producer checkpoint age":           "strait_producer_checkpoint_source_timestamp_seconds",
	"tables stopped":                    "strait_consumer_tables_stopped",
	"table waiting over 15m (issue 15)": "strait_consumer_table_waiting",
	"retries of stopped tables":         "strait_consumer_table_retries_total",
	"binlog retention (last_over_time)": "last_over_time(strait_producer_checkpoint_source_timestamp_seconds",
	"binlog headroom (issue 18)":        "strait_producer_binlog_retention_headroom_seconds",
	"consistent cut behind (issue 18)":  "strait_consumer_watermark_source_timestamp_seconds",
	"producer behind the source":        "strait_producer_source_lag_seconds",
	"replication connection silent":     "strait_producer_source_silence_seconds",
}

// TestIdleSourceRaisesNoAlert checks that the alerts on the source lag and
// silence fire only well above what an idle source shows: both stay under
// twice source.heartbeat_period there (producer TestIdleSourceLag), and
// neither alert may fire on a quiet database.
func TestIdleSourceRaisesNoAlert(t *testing.T) {
	var src binlog.Config
	src.Defaults()
	idle := (2 * src.HeartbeatPeriod).Seconds()
	rule := regexp.MustCompile(`^\s*(strait_producer_source_(?:lag|silence)_seconds)\s*>\s*([0-9.]+)\s*$`)
	seen := map[string]bool{}
	docs := readYAML(t, filepath.Join("prometheus", "alerts.yml"))
	for _, g := range getList(docs[0], "groups") {
		for _, r := range getList(g, "rules") {
			alert, expr := getString(r, "alert"), getString(r, "expr")
			if !strings.Contains(expr, "strait_producer_source_lag_seconds") && !strings.Contains(expr, "strait_producer_source_silence_seconds") {
				continue
			}
			m := rule.FindStringSubmatch(expr)
			if m == nil {
				t.Errorf("%s: %q, want the form <metric> > <seconds>", alert, expr)
				continue
			}
			seen[m[1]] = true
			if limit, _ := strconv.ParseFloat(m[2], 64); limit <= idle {
				t.Errorf("%s: fires above %ss, but an idle source may show up to %.0fs (twice source.heartbeat_period %s)", alert, m[2], idle, src.HeartbeatPeriod)
			}
		}
	}
	for _, metric := range []string{"strait_producer_source_lag_seconds", "strait_producer_source_silence_seconds"} {
		if !seen[metric] {
			t.Errorf("no alert on %s", metric)
		}
	}
}

// TestAlertRules checks deploy/prometheus/alerts.yml: Prometheus's rule
// file shape, labels and annotations, and metric names the binaries
// export.
func TestAlertRules(t *testing.T) {
	allowed := exportedMetrics(t)
	docs := readYAML(t, filepath.Join("prometheus", "alerts.yml"))
	names := map[string]bool{}
	var exprs []string
	for _, g := range getList(docs[0], "groups") {
		group := getString(g, "name")
		if group == "" {
			t.Error("a group without a name")
		}
		for _, r := range getList(g, "rules") {
			rule, _ := r.(map[string]any)
			alert, expr := getString(rule, "alert"), getString(rule, "expr")
			for k := range rule {
				switch k {
				case "alert", "expr", "for", "keep_firing_for", "labels", "annotations":
				default:
					t.Errorf("%s/%s: unknown field %s", group, alert, k)
				}
			}
			if alert == "" || strings.TrimSpace(expr) == "" {
				t.Errorf("%s: a rule without alert or expr: %v", group, rule)
				continue
			}
			if names[alert] {
				t.Errorf("alert %s defined twice", alert)
			}
			names[alert] = true
			if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "[") != strings.Count(expr, "]") {
				t.Errorf("%s: unbalanced brackets in %q", alert, expr)
			}
			if f := getString(rule, "for"); f != "" {
				if _, err := time.ParseDuration(f); err != nil {
					t.Errorf("%s: for %q: %v", alert, f, err)
				}
			}
			switch sev := getString(rule, "labels", "severity"); sev {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity %q, want critical, warning or info", alert, sev)
			}
			if getString(rule, "annotations", "summary") == "" || getString(rule, "annotations", "description") == "" {
				t.Errorf("%s: want annotations summary and description", alert)
			}
			for _, err := range checkMetrics("alert "+alert, expr, allowed) {
				t.Error(err)
			}
			exprs = append(exprs, expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for what, metric := range requiredAlerts {
		if !strings.Contains(all, metric) {
			t.Errorf("no alert on %s (%s)", what, metric)
		}
	}
}

// panelTargets returns the queries of a Grafana panel list, rows' nested
// panels included, keyed by panel title.
func panelTargets(t *testing.T, panels []any, ids map[float64]bool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range panels {
		title := getString(p, "title")
		id, _ := get(p, "id").(float64)
		if ids[id] {
			t.Errorf("panel %q: id %v used twice", title, id)
		}
		ids[id] = true
		if getMap(p, "gridPos") == nil {
			t.Errorf("panel %q has no gridPos", title)
		}
		for k, v := range panelTargets(t, getList(p, "panels"), ids) {
			out[k] = append(out[k], v...)
		}
		if getString(p, "type") == "row" {
			continue
		}
		targets := getList(p, "targets")
		if len(targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		for _, tg := range targets {
			out[title] = append(out[title], getString(tg, "expr"))
		}
		if uid := getString(p, "datasource", "uid"); uid != "${datasource}" {
			t.Errorf("panel %q: datasource uid %q, want the dashboard's ${datasource} variable", title, uid)
		}
	}
	return out
}

// TestDashboard checks deploy/grafana/strait.json: Grafana's dashboard
// shape, a datasource variable the panels use, and metric names the
// binaries export in every query.
func TestDashboard(t *testing.T) {
	allowed := exportedMetrics(t)
	data, err := os.ReadFile(filepath.Join("grafana", "strait.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if getString(d, "uid") == "" || getString(d, "title") == "" {
		t.Error("dashboard without uid or title")
	}
	hasVar := false
	for _, v := range getList(d, "templating", "list") {
		hasVar = hasVar || (getString(v, "name") == "datasource" && getString(v, "type") == "datasource" && getString(v, "query") == "prometheus")
	}
	if !hasVar {
		t.Error("no templating variable datasource (type datasource, query prometheus)")
	}
	queries := panelTargets(t, getList(d, "panels"), map[float64]bool{})
	var all []string
	for title, exprs := range queries {
		for _, e := range exprs {
			if strings.TrimSpace(e) == "" {
				t.Errorf("panel %q: an empty query", title)
			}
			for _, err := range checkMetrics("panel "+title, e, allowed) {
				t.Error(err)
			}
			all = append(all, e)
		}
	}
	joined := strings.Join(all, "\n")
	for what, metric := range requiredAlerts {
		if !strings.Contains(joined, metric) {
			t.Errorf("no panel shows %s (%s)", what, metric)
		}
	}
}
