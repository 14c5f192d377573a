package bigquery

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestHealthWarnsAtBoundedRate: an endpoint's first failed attempt is
// warned about at once, the following ones at most every outageLogEvery,
// its first answer ends the outage with one line; another endpoint's
// outage is its own.
func TestHealthWarnsAtBoundedRate(t *testing.T) {
	var logs testenv.Buffer
	h := newHealth(slog.New(slog.NewTextHandler(&logs, nil)))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	refused := errors.New("connection refused")
	h.observeAt("rest", nil, t0)
	for i := range 120 { // an attempt a second for two minutes
		h.observeAt("rest", refused, t0.Add(time.Duration(i)*time.Second))
	}
	h.observeAt("grpc", refused, t0.Add(time.Minute))
	got := h.outages()
	if len(got) != 2 || got[0].Endpoint != "rest" || !got[0].Since.Equal(t0) || got[0].Err != "connection refused" || got[1].Endpoint != "grpc" {
		t.Errorf("outages: %+v, want rest since %s, then grpc", got, t0)
	}
	if !strings.Contains(got[0].Error(), "bigquery rest unavailable since 2026-01-01T00:00:00Z: connection refused") {
		t.Errorf("outage error: %q", got[0].Error())
	}
	h.observeAt("rest", nil, t0.Add(2*time.Minute))
	if got := h.outages(); len(got) != 1 || got[0].Endpoint != "grpc" {
		t.Errorf("outages after rest answered: %+v, want grpc alone", got)
	}
	out := logs.String()
	if n := strings.Count(out, `msg="bigquery unavailable`); n != 4+1 { // rest at 0s, 30s, 60s, 90s; grpc once
		t.Errorf("%d warnings, want 5:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="bigquery answers again" endpoint=rest after=2m0s`); n != 1 {
		t.Errorf("%d lines about rest answering again, want 1:\n%s", n, out)
	}
}
