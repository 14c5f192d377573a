package binlog

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// A snapshot resumed after a restart counts the rows a previous run
// published (the optimizer's estimate of the rows after the key it resumes
// at tells them) in its progress: the percentage and the time left are of
// what is left, not of the whole table again.
func TestSnapshotProgressResumed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS snap_resumed", "CREATE DATABASE snap_resumed"); err != nil {
		t.Fatal(err)
	}
	if err := server.Exec(ctx, "snap_resumed", "CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO t SELECT seq, seq FROM seq_1_to_10000", "ANALYZE TABLE t"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "snap_resumed.*")
	cfg.ServerID, cfg.SnapshotChunkRows = 172, 500
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var progress []SnapshotProgress
	r.OnSnapshotProgress(func(p SnapshotProgress) { progress = append(progress, p) })
	r.Snapshot(SnapshotState{Tables: []string{"snap_resumed.t"}, After: []cdc.Value{cdc.Int(6000)}}) // a previous run published 6,000 rows
	if err := r.Start(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	if got := len(snapshotIDs(readSnapshot(t, ctx, r))); got != 4000 {
		t.Fatalf("%d rows snapshotted, want the 4,000 after the key", got)
	}
	if len(progress) < 2 {
		t.Fatalf("progress reported %d times, want after each of 8 chunks and at the end", len(progress))
	}
	first := progress[0]
	t.Logf("first chunk's progress: %+v", first)
	if !first.Resumed || first.Rows != 500 || first.Before < 5000 || first.Before > 7000 || first.Estimate < 5000 {
		t.Errorf("first chunk's progress %+v, want resumed, 500 rows, about 6,000 before of about 10,000", first)
	}
	if pct := first.percent(); pct < 55 || pct > 75 {
		t.Errorf("first chunk's progress at %d%%, want about 65%%: %+v", pct, first)
	}
}

// recordTimes is a slog handler keeping the time of each record.
type recordTimes []time.Time

func (*recordTimes) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordTimes) Handle(_ context.Context, rec slog.Record) error {
	*r = append(*r, rec.Time)
	return nil
}
func (r *recordTimes) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recordTimes) WithGroup(string) slog.Handler      { return r }

// A progress line carries the time its interval was measured at, not the
// time it was written: written late (a loaded machine preempting the
// publisher between the two), it still comes an interval after the line
// before, as the log shows it. TestSnapshotProgressLogged saw lines 92ms
// apart with an interval of 100ms.
func TestSnapshotProgressLineTime(t *testing.T) {
	var times recordTimes
	cfg := &Config{SnapshotProgressInterval: time.Second}
	sn := &Snapshotter{cfg: cfg, log: slog.New(&times)}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sn.snap = &snapshot{state: SnapshotState{Tables: []string{"db.t"}}, start: start, reported: start, estimate: 100}
	for _, at := range []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2100 * time.Millisecond} {
		sn.snap.rows += 10
		sn.reportProgress(start.Add(at), false)
	}
	want := []time.Time{start.Add(time.Second), start.Add(2100 * time.Millisecond)}
	if len(times) != len(want) || !times[0].Equal(want[0]) || !times[1].Equal(want[1]) {
		t.Fatalf("progress lines at %v, want at %v (the times they were decided at)", times, want)
	}
}
