package binlog

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// SnapshotProgress is how far the snapshot of one table is: what the
// reader logs every source.snapshot_progress_interval and hands to the
// function of OnSnapshotProgress after each chunk.
type SnapshotProgress struct {
	Table string
	// Rows are the rows published by this run of the producer: after a
	// restart, those after the key it resumed at (Resumed).
	Rows int64
	// Before is, after a restart, an estimate of the rows previous runs
	// published: Estimate less the optimizer's estimate of the rows after
	// the key this run resumed at.
	Before int64
	// Estimate is information_schema.TABLES.TABLE_ROWS when this run
	// started the table: InnoDB's estimate, often off by tens of percent;
	// 0 when the server has none.
	Estimate   int64
	Elapsed    time.Duration // since this run started the table
	Resumed    bool          // this run continued a snapshot of the table a previous run began
	TablesLeft int           // after this one
	Done       bool          // the table's snapshot ended (done, failed or cancelled), or the whole snapshot did
}

// Rate is the rows published per second since this run started the table.
func (p SnapshotProgress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Rows) / p.Elapsed.Seconds()
}

// ETA is the time left at Rate for the rows of Estimate not published
// yet; ok is false when it is unknown (no rate yet, no estimate, or more
// rows published than estimated).
func (p SnapshotProgress) ETA() (eta time.Duration, ok bool) {
	rate, done := p.Rate(), p.Before+p.Rows
	if rate <= 0 || done >= p.Estimate {
		return 0, false
	}
	return time.Duration(float64(p.Estimate-done) / rate * float64(time.Second)), true
}

// percent is the rows published, before and in this run, of Estimate, at
// most 100 (the estimate is approximate).
func (p SnapshotProgress) percent() int64 {
	if p.Estimate <= 0 {
		return 0
	}
	return min(100, 100*(p.Before+p.Rows)/p.Estimate)
}

// etaText is ETA for people, or "unknown".
func (p SnapshotProgress) etaText() string {
	eta, ok := p.ETA()
	if !ok {
		return "unknown"
	}
	return roughly(eta)
}

// roughly is d rounded to the second, or to a tenth under ten seconds.
func roughly(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// logAttrs are the attributes of the progress line in the log.
func (p SnapshotProgress) logAttrs() []any {
	attrs := []any{"table", p.Table, "rows", p.Rows, "rows_estimate", p.Estimate, "percent", p.percent(),
		"rows_per_second", int64(p.Rate()), "eta", p.etaText(), "tables_left", p.TablesLeft}
	if p.Resumed {
		attrs = append(attrs, "resumed", true, "rows_before_estimate", p.Before)
	}
	return attrs
}

// String is the progress in one short line for a terminal, e.g.
// "snapshot shop.orders: 120000 of ~1000000 rows (12%), 40000 rows/s, 22s left, 3 more tables".
func (p SnapshotProgress) String() string {
	done := fmt.Sprint(p.Rows)
	if p.Before > 0 {
		done = fmt.Sprintf("~%d", p.Before+p.Rows)
	}
	s := fmt.Sprintf("snapshot %s: %s of ~%d rows (%d%%), %d rows/s", p.Table, done, p.Estimate, p.percent(), int64(p.Rate()))
	if eta, ok := p.ETA(); ok {
		s += ", " + roughly(eta) + " left"
	}
	if p.TablesLeft > 0 {
		s += fmt.Sprintf(", %d more tables", p.TablesLeft)
	}
	return s
}

// OnProgress makes the snapshotter call f with the snapshot's progress
// after each chunk it publishes, with Done set when that chunk ended the
// table, and with only Done set when the whole snapshot ended. f runs on
// the goroutine calling ReadTx and must return quickly. Call before the
// Reader's Start.
func (sn *Snapshotter) OnProgress(f func(SnapshotProgress)) { sn.onProgress = f }

// progress is the current table's progress (the snapshot has one).
func (s *snapshot) progress(now time.Time) SnapshotProgress {
	return SnapshotProgress{Table: s.state.Tables[0], Rows: int64(s.rows), Before: s.before, Estimate: s.estimate, Elapsed: now.Sub(s.start),
		Resumed: s.resumed, TablesLeft: len(s.state.Tables) - 1}
}

// left is the rows of the table not published yet, by the estimates: what
// strait_producer_snapshot_table_rows_remaining shows.
func (s *snapshot) left() int64 { return max(0, s.estimate-s.before-int64(s.rows)) }

// rowsAfter is the optimizer's estimate of the rows of info's table after
// the key after (EXPLAIN of the chunk query, without its limit), on the
// snapshot's session conn; ok is false when the server gave none. It runs
// in the chunk loop, as EXPLAIN waits for the table's metadata lock as a
// chunk's read does.
func rowsAfter(conn *client.Conn, info *tableInfo, after []cdc.Value) (n int64, ok bool) {
	q, args, err := chunkQuery(info, after, math.MaxInt32, "")
	if err != nil {
		return 0, false
	}
	res, err := conn.Execute("EXPLAIN "+q, args...)
	if err != nil {
		return 0, false
	}
	defer res.Close()
	col, ok := res.FieldNames["rows"]
	if !ok || res.RowNumber() == 0 {
		return 0, false
	}
	n, err = res.GetInt(0, col)
	return n, err == nil
}

// reportProgress runs after a chunk of the current table is published
// (done: the chunk ended the table): it hands the progress to the function
// of OnSnapshotProgress, and logs it when source.snapshot_progress_interval
// passed since the table started or since its last line.
func (sn *Snapshotter) reportProgress(now time.Time, done bool) {
	s := sn.snap
	p := s.progress(now)
	p.Done = done
	if sn.onProgress != nil {
		sn.onProgress(p)
	}
	if done || now.Sub(s.reported) < sn.cfg.SnapshotProgressInterval {
		return
	}
	s.reported = now
	// The line carries now, the time the interval is measured by, so that
	// the log shows lines an interval apart however late one is written.
	if h := sn.log.Handler(); h.Enabled(context.Background(), slog.LevelInfo) {
		r := slog.NewRecord(now, slog.LevelInfo, "snapshot progress", 0)
		r.Add(p.logAttrs()...)
		h.Handle(context.Background(), r)
	}
}
