package main

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// A snapshot longer than source.snapshot_progress_interval logs, every
// interval, the table, the rows done of the estimate, the rate and the
// time left.
func TestSnapshotProgressLogged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const rows = 60000
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS snapprog", "CREATE DATABASE snapprog"); err != nil {
		t.Fatal(err)
	}
	if err := env.db.Exec(ctx, "snapprog", "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO t SELECT seq, seq FROM seq_1_to_60000", // MariaDB's sequence engine
		"ANALYZE TABLE t"); err != nil { // information_schema's estimate, up to date
		t.Fatal(err)
	}
	// Chunks of 20 rows: 3,000 of them, many intervals long (about a
	// second here).
	const interval = 100 * time.Millisecond
	p := startProducer(t, withoutStart(producerArgs(t, ctx, uniquePrefix("snapprog"), "snapprog.*",
		"-source.snapshot_chunk_rows", "20", "-source.snapshot_progress_interval", interval.String())))
	waitFor(t, ctx, "the snapshot to end", func() bool {
		select {
		case <-p.done:
			t.Fatalf("the producer ended: %v", p.err)
		default:
		}
		return strings.Contains(p.logs.String(), `msg="snapshot of a table done" table=snapprog.t`)
	})

	var started, done time.Time
	var progress []string
	for _, line := range strings.Split(p.logs.String(), "\n") {
		switch {
		case strings.Contains(line, `msg="snapshot of a table started" table=snapprog.t`):
			started = logTime(t, line)
		case strings.Contains(line, `msg="snapshot of a table done" table=snapprog.t`):
			done = logTime(t, line)
		case strings.Contains(line, `msg="snapshot progress"`):
			progress = append(progress, line)
		}
	}
	took := done.Sub(started)
	t.Logf("%d progress lines in %s:\n%s", len(progress), took, strings.Join(progress, "\n"))
	// A line each interval, at the first chunk published after it: never
	// sooner, and later by a chunk's time at most (half the lines is a
	// margin for a loaded machine).
	least, most := max(1, int(took/interval)/2), int(took/interval)+1
	if len(progress) < least || len(progress) > most {
		t.Fatalf("%d progress lines in a snapshot of %s with an interval of %s, want %d to %d:\n%s",
			len(progress), took, interval, least, most, strings.Join(progress, "\n"))
	}
	last, lastAt := 0, started
	for _, line := range progress {
		if at := logTime(t, line); at.Sub(lastAt) < interval-5*time.Millisecond { // the log's times are to the millisecond
			t.Errorf("a progress line %s after the one before, want %s or more: %s", at.Sub(lastAt), interval, line)
		}
		lastAt = logTime(t, line)
		for _, want := range []string{"level=INFO", "table=snapprog.t", "rows_estimate=", "rows_per_second=", "eta="} {
			if !strings.Contains(line, want) {
				t.Errorf("progress line without %s: %s", want, line)
			}
		}
		// All rows may show before the end: 60,000 is 3,000 whole chunks,
		// and the table ends at the empty chunk read after the last, which
		// an interval can fall before.
		n := field(t, line, "rows")
		if n <= last || n > rows {
			t.Errorf("rows=%d after %d, want more, and at most the table's %d: %s", n, last, rows, line)
		}
		last = n
		if e := field(t, line, "rows_estimate"); e < rows/2 || e > 2*rows {
			t.Errorf("rows_estimate=%d, want about %d: %s", e, rows, line)
		}
		if r := field(t, line, "rows_per_second"); r <= 0 {
			t.Errorf("rows_per_second=%d, want more than 0: %s", r, line)
		}
		if _, err := time.ParseDuration(text(line, "eta")); err != nil && text(line, "eta") != "unknown" {
			t.Errorf("eta: %v: %s", err, line)
		}
	}
}

// logTime returns the time of a line of the text log.
func logTime(t *testing.T, line string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, text(line, "time"))
	if err != nil {
		t.Fatalf("time of %q: %v", line, err)
	}
	return at
}

// field returns the integer value of key in a line of the text log.
func field(t *testing.T, line, key string) int {
	t.Helper()
	n, err := strconv.Atoi(text(line, key))
	if err != nil {
		t.Fatalf("%s of %q: %v", key, line, err)
	}
	return n
}

// text returns the value of key in a line of the text log, unquoted.
func text(line, key string) string {
	m := regexp.MustCompile(`(?:^| )` + regexp.QuoteMeta(key) + `=("(?:[^"\\]|\\.)*"|\S*)`).FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	if s, err := strconv.Unquote(m[1]); err == nil {
		return s
	}
	return m[1]
}

// On a terminal, the snapshot's progress is a line under the log, drawn
// over itself, and gone once the table is done.
func TestSnapshotProgressOnATerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS snapterm", "CREATE DATABASE snapterm"); err != nil {
		t.Fatal(err)
	}
	if err := env.db.Exec(ctx, "snapterm", "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO t SELECT seq, seq FROM seq_1_to_5000", "ANALYZE TABLE t"); err != nil {
		t.Fatal(err)
	}
	pty, err := testenv.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	args := withoutStart(producerArgs(t, ctx, uniquePrefix("snapterm"), "snapterm.*", "-source.snapshot_chunk_rows", "20"))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, args, func(string) string { return "" }, io.Discard, pty.TTY) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("producer: %v", err)
		}
	}()
	const finished = `msg="snapshot of a table done" table=snapterm.t`
	waitFor(t, ctx, "the snapshot to end", func() bool { return strings.Contains(pty.String(), finished) })

	out := pty.String()
	line := regexp.MustCompile(`\r\x1b\[Ksnapshot snapterm\.t: \d+ of ~\d+ rows \(\d+%\), \d+ rows/s(, [0-9.a-z]+ left)?(\r\x1b\[K|$)`)
	if !line.MatchString(out) {
		t.Errorf("no progress line on the terminal:\n%q", out)
	}
	if after := out[strings.Index(out, finished):]; strings.Contains(after, "rows/s") {
		t.Errorf("the progress line is still drawn after the table is done:\n%q", after)
	}
	for _, l := range strings.Split(out, "\n") {
		if i := strings.LastIndex(l, "\r\x1b[K"); i >= 0 {
			l = l[i+len("\r\x1b[K"):] // what the terminal shows of it
		}
		if strings.Contains(l, "level=") && strings.Contains(l, "rows/s") {
			t.Errorf("a log line mixed with the progress line: %q", l)
		}
	}
}
