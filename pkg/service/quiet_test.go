package service

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLibraryLogBoundsRepeats: a library that logs the same warning in a
// loop (franz-go, retrying AddPartitionsToTxn without a pause while the
// transaction coordinator refuses connections: 77 GB of log in three
// minutes, seen in the chaos test) writes it once, then at most once per
// interval with how many were held back; other messages are not held back
// by it, and INFO lines stay at DEBUG.
func TestLibraryLogBoundsRepeats(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	log := libraryLog(slog.New(slog.NewTextHandler(&out, nil)), func() time.Time { return now })

	const loop = 100_000
	for i := range loop {
		log.Warn("unable to AddPartitionsToTxn due to retryable broker err", "broker", i%3)
	}
	log.Error("a different failure")
	log.Info("transaction begun") // DEBUG: not written at the default level
	if got := strings.Count(out.String(), "\n"); got != 2 {
		t.Fatalf("%d identical warnings and one error in one interval wrote %d lines, want 2:\n%.2000s", loop, got, out.String())
	}

	now = now.Add(repeatEvery)
	log.Warn("unable to AddPartitionsToTxn due to retryable broker err", "broker", 0)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "level=WARN") || !strings.Contains(last, "repeated=99999") {
		t.Errorf("the warning after the interval: %s, want it at WARN with repeated=99999 (the ones held back)", last)
	}

	// A logger derived with attributes shares the count.
	out.Reset()
	log.With("client", "producer").Warn("unable to AddPartitionsToTxn due to retryable broker err")
	if out.Len() != 0 {
		t.Errorf("a repeat through a derived logger within the interval was written: %s", out.String())
	}
}

// TestLibraryLogForgetsBeyondBound: the messages remembered are bounded
// (a library could log many distinct texts); past the bound a message is
// written again rather than the memory growing.
func TestLibraryLogForgetsBeyondBound(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	h := libraryLog(slog.New(slog.NewTextHandler(&out, nil)), func() time.Time { return now }).Handler().(*libraryHandler)
	log := slog.New(h)
	for i := range 10 * maxRemembered {
		log.Warn("distinct " + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if n := h.seen.size(); n > maxRemembered {
		t.Errorf("%d messages remembered, want at most %d", n, maxRemembered)
	}
	if got := strings.Count(out.String(), "\n"); got != 10*maxRemembered {
		t.Errorf("%d distinct messages wrote %d lines, want each once", 10*maxRemembered, got)
	}
	// The first one, forgotten since, is written again within the interval.
	out.Reset()
	log.Warn("distinct a0s")
	if out.Len() == 0 {
		t.Error("a message forgotten past the bound was held back")
	}
}
