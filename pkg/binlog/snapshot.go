package binlog

// snapshot.go: backfilling the captured tables while the binlog streams,
// without locks and without writing to the source (it may be a read-only
// replica). The reader itself reads each chunk — rows in primary-key order
// after the last key published, snapshot_read.go — between two source
// transactions, so the stream is paused at a known position P while the
// chunk is read. Right after the read the server's position H (the high
// watermark) is taken. The reader then streams on from P, and every change
// of the table between P and H removes its key from the chunk: that row is
// published from the binlog, whose change is at least as new. Once the
// reader reaches H, the chunk's remaining rows are published (op r) as one
// transaction of their own. Their state is the state at H (no change
// touched them in between), and their sequence is H's position, so they
// order correctly against every change of the same row before and after.
// The progress — tables left, key of the last row published — travels in
// each snapshot transaction (Tx.Snapshot) and so into the checkpoint:
// a restart continues at the next chunk, with nothing repeated and nothing
// skipped.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// SnapshotState is where a snapshot stands: the tables still to read, the
// first being read now, and the key of its last row published.
type SnapshotState struct {
	Tables []string    // "database.table", in reading order; empty: no snapshot
	After  []cdc.Value // primary-key values of the last row published of Tables[0]; nil: none yet
	// Filters are SQL conditions limiting the rows of some tables (an
	// on-demand snapshot's WHERE), by table.
	Filters map[string]string
	// Requests is the offset of the next snapshot request to read from
	// the signal topic: requests before it are in Tables (or done).
	Requests int64
}

// SnapshotRequest asks a running producer to snapshot tables, optionally
// only the rows matching Filter (an SQL condition).
type SnapshotRequest struct {
	Tables []string
	Filter string
	Next   int64 // the signal topic's offset after this request
}

// snapshot is the reader's snapshot in progress.
type snapshot struct {
	state  SnapshotState
	conn   *client.Conn // the snapshot's own session (time zone, result charset)
	info   *tableInfo   // schema of state.Tables[0]; nil: read before the next chunk
	conv   *converter
	win    *window // the chunk read and not yet published
	rows   int     // rows published of state.Tables[0] in this run
	start  time.Time
	recent []recentKey // keys of state.Tables[0] the stream changed lately, oldest first
}

// recentKey is a key the stream changed, and when the reader read it.
type recentKey struct {
	key string
	at  time.Time
}

// recentWindow is how long a change the stream read is remembered. A server
// writes a transaction to the binlog before it commits it in InnoDB, so a
// chunk read right after the reader passed a change may not see it yet: the
// chunk's row would be older than the change published before it. Dropping
// from each chunk the keys changed in the last moments before its read
// closes that gap (the stream already published those rows whole).
const recentWindow = 2 * time.Second

// window is a chunk between its read and its publication.
type window struct {
	high    binlogPos
	rows    [][]cdc.Value       // in primary-key order
	changed map[string]struct{} // keys the stream changed: their rows are not published
	last    []cdc.Value         // key of the chunk's last row: where the next chunk starts
	done    bool                // the chunk ends the table
}

// Snapshot asks the reader to backfill the tables of st, continuing after
// st.After in the first. Call before Start.
func (r *Reader) Snapshot(st SnapshotState) {
	r.requests = st.Requests
	if len(st.Tables) > 0 {
		r.snap = &snapshot{state: st}
		r.metrics.snapshotTables.Set(float64(len(st.Tables)))
	}
}

// RequestSnapshot queues a snapshot request; the reader takes it between
// two source transactions, and the request's offset goes into the
// checkpoint with the tables it added. It may be called from any
// goroutine; it blocks while earlier requests wait.
func (r *Reader) RequestSnapshot(ctx context.Context, req SnapshotRequest) error {
	select {
	case r.requested <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeRequests adds the waiting snapshot requests to the snapshot and
// reports whether there were any (their progress must be published).
func (r *Reader) takeRequests() bool {
	took := false
	for {
		select {
		case req := <-r.requested:
			if req.Next <= r.requests {
				continue // read again after a restart, already taken
			}
			took = true
			r.requests = req.Next
			if r.snap == nil {
				r.snap = &snapshot{}
			}
			st := &r.snap.state
			for _, t := range req.Tables {
				if slices.Contains(st.Tables, t) {
					r.log.Warn("snapshot request: table already being snapshotted; its filter is not changed", "table", t)
					continue
				}
				st.Tables = append(slices.Clip(st.Tables), t)
				if req.Filter != "" {
					st.Filters = maps.Clone(st.Filters)
					if st.Filters == nil {
						st.Filters = map[string]string{}
					}
					st.Filters[t] = req.Filter
				}
			}
			r.log.Info("snapshot requested", "tables", req.Tables, "filter", req.Filter, "queued", len(st.Tables))
			r.metrics.snapshotTables.Set(float64(len(st.Tables)))
		default:
			return took
		}
	}
}

// CapturedTables lists the tables the configuration captures, sorted.
func (r *Reader) CapturedTables(ctx context.Context) ([]string, error) {
	res, err := r.conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer res.Close()
	var out []string
	for i := range res.RowNumber() {
		if db, t := text(res, i, 0), text(res, i, 1); r.captured(db, t) {
			out = append(out, db+"."+t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// snapshotStep runs between source transactions: it reads the next chunk
// when none is waiting, and publishes the waiting one into tx once the
// stream has reached its high watermark (reporting true).
func (r *Reader) snapshotStep(ctx context.Context, tx *Tx) (bool, error) {
	if r.cur.open || r.skip > 0 || r.file == "" {
		return false, nil // only between whole source transactions
	}
	if r.takeRequests() {
		// The requests taken go out now, checkpointed like a chunk.
		st := r.snap.state
		st.Requests = r.requests
		tx.Snapshot, tx.File, tx.EndPos, tx.CommitTime = &st, r.file, r.pos, time.Now()
		return true, nil
	}
	s := r.snap
	if s == nil {
		return false, nil
	}
	if s.win == nil {
		if len(s.state.Tables) == 0 {
			r.endSnapshot()
			return false, nil
		}
		if err := r.readNextChunk(ctx); err != nil {
			return false, err
		}
		if s.win == nil { // the schema changed under the read: once more, with a fresh one
			if err := r.readNextChunk(ctx); err != nil {
				return false, err
			}
		}
	}
	if (binlogPos{file: r.file, pos: r.pos}).before(s.win.high) {
		return false, nil // stream on to the high watermark
	}
	r.publishChunk(tx)
	return true, nil
}

// readNextChunk reads the chunk after the last key published and opens its
// window.
func (r *Reader) readNextChunk(ctx context.Context) error {
	s := r.snap
	id := s.state.Tables[0]
	db, table := splitID(id)
	if s.conn == nil {
		conn, err := snapshotConn(ctx, r.cfg)
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		s.conn = conn
	}
	fresh := s.info == nil
	if fresh {
		ts, err := readSchema(s.conn, db, table)
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", id, err)
		}
		if len(ts.Columns) == 0 {
			r.log.Warn("snapshot: table no longer exists; skipped", "table", id)
			return r.emptyWindow(ctx)
		}
		if s.info, err = snapshotInfo(ts, r.full); err == nil {
			s.conv, err = newConverter(s.info)
		}
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", id, err)
		}
		if s.state.After == nil {
			s.start, s.rows = time.Now(), 0
			r.log.Info("snapshot of a table started", "table", id, "rows_estimate", r.estimate(db, table))
		}
	}
	began := time.Now()
	rows, err := readChunk(ctx, s.conn, s.info, s.conv, s.state.After, r.cfg.SnapshotChunkRows, s.state.Filters[id])
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_NO_SUCH_TABLE {
		r.log.Warn("snapshot: table dropped while being read; skipped", "table", id)
		return r.emptyWindow(ctx)
	}
	if err != nil && !fresh {
		// The table may have changed since its schema was read (a DDL
		// the reader has not reached yet): read it again, then the chunk.
		r.log.Debug("snapshot chunk failed with a schema read earlier; reading the schema again", "table", id, "err", err)
		s.info, s.conv = nil, nil
		return nil
	}
	if filter := s.state.Filters[id]; err != nil && filter != "" && errors.As(err, &me) {
		// A filter the server refuses (a typo, an unknown column) ends
		// that table's snapshot, not the producer.
		r.log.Error("snapshot: the filter of the request fails; table skipped", "table", id, "filter", filter, "err", err)
		return r.emptyWindow(ctx)
	}
	if err != nil {
		return fmt.Errorf("snapshot of %s after key %v: %w", id, s.state.After, err)
	}
	high, err := r.Current(ctx)
	if err != nil {
		return err
	}
	r.metrics.observeChunk(time.Since(began))
	w := &window{high: binlogPos{file: high.File, pos: high.Pos}, rows: rows, changed: map[string]struct{}{},
		done: !s.info.table.HasKey() || len(rows) < r.cfg.SnapshotChunkRows}
	for _, rk := range s.recent {
		w.changed[rk.key] = struct{}{}
	}
	if n := len(rows); n > 0 && s.info.table.HasKey() {
		w.last = keyValues(s.info.table, rows[n-1])
	}
	s.win = w
	return nil
}

// emptyWindow ends the current table with nothing more to publish.
func (r *Reader) emptyWindow(ctx context.Context) error {
	high, err := r.Current(ctx)
	if err != nil {
		return err
	}
	r.snap.win = &window{high: binlogPos{file: high.File, pos: high.Pos}, done: true}
	return nil
}

// publishChunk hands the waiting chunk's rows that the stream did not
// change out as one transaction at the reader's position, and moves the
// snapshot on.
func (r *Reader) publishChunk(tx *Tx) {
	s := r.snap
	w := s.win
	now := time.Now()
	for _, row := range w.rows {
		if len(w.changed) > 0 {
			if _, changed := w.changed[keyOf(s.info, row)]; changed {
				continue // changed in the window: the stream published it
			}
		}
		n := len(tx.Events)
		tx.Events = append(tx.Events, cdc.Event{
			Table: s.info.table, Op: cdc.OpRead, After: row,
			Position:   cdc.Position{Epoch: r.epoch, File: r.fileIndex, Pos: r.pos, Row: uint64(n)},
			Source:     cdc.Source{ServerID: r.serverID, File: r.file, Pos: r.pos, Row: uint32(n), Snapshot: true},
			CommitTime: now,
		})
	}
	id := s.state.Tables[0]
	s.rows += len(tx.Events)
	if len(tx.Events) > 0 {
		r.metrics.countSnapshotRows(id, len(tx.Events))
	}
	next := SnapshotState{Tables: s.state.Tables, After: w.last, Filters: s.state.Filters, Requests: r.requests}
	if w.done {
		r.log.Info("snapshot of a table done", "table", id, "rows", s.rows, "seconds", time.Since(s.start).Seconds())
		next = SnapshotState{Tables: s.state.Tables[1:], Filters: s.state.Filters, Requests: r.requests}
		if _, ok := next.Filters[id]; ok {
			next.Filters = maps.Clone(next.Filters)
			delete(next.Filters, id)
		}
		s.info, s.conv, s.recent = nil, nil, nil
	}
	s.state, s.win = next, nil
	tx.Snapshot = &next
	tx.File, tx.EndPos, tx.CommitTime = r.file, r.pos, now
	r.metrics.snapshotTables.Set(float64(len(next.Tables)))
}

// snapshotChange removes the rows of a change in the stream from the
// waiting chunk (the stream publishes them) and remembers their keys for
// the next chunk's read (see recentWindow).
func (r *Reader) snapshotChange(info *tableInfo, rows ...[]cdc.Value) {
	s := r.snap
	if s == nil || len(s.state.Tables) == 0 || !info.table.HasKey() || info.table.ID() != s.state.Tables[0] {
		return // a table without a key is read whole, unmatched (README, "Snapshots")
	}
	now := time.Now()
	drop := 0
	for drop < len(s.recent) && now.Sub(s.recent[drop].at) > recentWindow {
		drop++
	}
	s.recent = append(s.recent[:0], s.recent[drop:]...)
	for _, row := range rows {
		if row == nil {
			continue
		}
		k := keyOf(info, row)
		s.recent = append(s.recent, recentKey{key: k, at: now})
		if s.win != nil {
			s.win.changed[k] = struct{}{}
		}
	}
}

// snapshotDDL drops the waiting chunk of a table a DDL touches (it is read
// again, with the new schema) and forgets the table's schema.
func (r *Reader) snapshotDDL(scope ddlScope) {
	s := r.snap
	if s == nil || len(s.state.Tables) == 0 {
		return
	}
	if db, table := splitID(s.state.Tables[0]); scope.touches(db, table) {
		s.win, s.info, s.conv = nil, nil, nil
	}
}

func (r *Reader) endSnapshot() {
	if r.snap.conn != nil {
		r.snap.conn.Close()
	}
	r.snap = nil
	r.metrics.snapshotTables.Set(0)
	r.log.Info("snapshot done: every captured table is backfilled")
}

// estimate is information_schema's row estimate of a table (for progress).
func (r *Reader) estimate(db, table string) int64 {
	res, err := r.conn.Execute("SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, table)
	if err != nil {
		return 0
	}
	defer res.Close()
	n, _ := res.GetInt(0, 0)
	return n
}

// keyValues returns the primary-key values of row.
func keyValues(t *cdc.Table, row []cdc.Value) []cdc.Value {
	out := make([]cdc.Value, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		out[i] = row[k]
	}
	return out
}

func splitID(id string) (db, table string) {
	db, table, _ = strings.Cut(id, ".")
	return db, table
}
