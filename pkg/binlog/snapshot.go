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
}

// snapshot is the reader's snapshot in progress.
type snapshot struct {
	state  SnapshotState
	conn   *client.Conn // the snapshot's own session (time zone, result charset)
	info   *tableInfo   // schema of state.Tables[0]; nil: read before the next chunk
	conv   *converter
	win    *window    // the chunk read and not yet published
	read   *chunkRead // the chunk being read (after win's, or the next to publish when win is nil)
	rows   int        // rows published of state.Tables[0] in this run
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

// chunkRead is a chunk being read on the snapshot's connection by a
// goroutine of its own (the snapshot owns it: the reader's next window
// waits for it, stop ends it), while the reader streams on. Only the
// reader touches it; the goroutine reads its immutable fields and sends
// its result on done.
type chunkRead struct {
	after   []cdc.Value         // the chunk's rows come after these key values
	info    *tableInfo          // the schema it is read with
	fresh   bool                // info was read for this chunk (not earlier)
	changed map[string]struct{} // keys the stream changed since the read started, and lately before
	stale   bool                // a DDL touched the table during the read: its rows are dropped
	cancel  context.CancelFunc
	done    chan chunkResult // the read's one result; buffered, so the goroutine never waits
}

// chunkResult is how a chunk read ended.
type chunkResult struct {
	rows [][]cdc.Value
	high binlogPos // the server's position right after the rows were read
	took time.Duration
	err  error
}

// Snapshot asks the reader to backfill the tables of st, continuing after
// st.After in the first. Call before Start.
func (r *Reader) Snapshot(st SnapshotState) {
	if len(st.Tables) > 0 {
		r.snap = &snapshot{state: st}
		r.metrics.snapshotTables.Set(float64(len(st.Tables)))
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

// snapshotStep runs between source transactions: it opens the next
// chunk's window when none is waiting, and publishes the waiting one into
// tx once the stream has reached its high watermark (reporting true).
func (r *Reader) snapshotStep(ctx context.Context, tx *Tx) (bool, error) {
	s := r.snap
	if s == nil || r.cur.open || r.skip > 0 || r.file == "" {
		return false, nil // only between whole source transactions
	}
	if s.win == nil {
		if len(s.state.Tables) == 0 {
			r.endSnapshot()
			return false, nil
		}
		if err := r.nextWindow(ctx); err != nil {
			return false, err
		}
	}
	if (binlogPos{file: r.file, pos: r.pos}).before(s.win.high) {
		return false, nil // stream on to the high watermark
	}
	r.publishChunk(tx)
	return true, nil
}

// nextWindow opens the window of the chunk after the last key published:
// the chunk read ahead, once its read is over, or else one read now. Then
// it starts reading the chunk after it, while the stream goes on to this
// one's high watermark.
func (r *Reader) nextWindow(ctx context.Context) error {
	s := r.snap
	for s.win == nil {
		if s.read == nil {
			if err := r.startRead(ctx, s.state.After); err != nil || s.win != nil {
				return err // or the table is gone: an empty window ends it
			}
		}
		rd := s.read
		var res chunkResult
		select {
		case res = <-rd.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.read = nil
		if res.err != nil {
			s.closeConn() // an error may leave the session mid-result; errors are rare, a new session is cheap
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		id := rd.info.table.ID()
		var me *mysql.MyError
		switch {
		case rd.stale:
			continue // a DDL touched the table during the read: again, with the new schema
		case errors.As(res.err, &me) && me.Code == mysql.ER_NO_SUCH_TABLE:
			r.log.Warn("snapshot: table dropped while being read; skipped", "table", id)
			return r.emptyWindow(ctx)
		case res.err != nil && !rd.fresh:
			// The table may have changed since its schema was read (a DDL
			// the reader has not reached yet): read it again, then the chunk.
			r.log.Debug("snapshot chunk failed with a schema read earlier; reading the schema again", "table", id, "err", res.err)
			s.info, s.conv = nil, nil
			continue
		case res.err != nil:
			return fmt.Errorf("snapshot of %s: %w", id, res.err)
		}
		r.metrics.observeChunk(res.took)
		w := &window{high: res.high, rows: res.rows, changed: rd.changed,
			done: !rd.info.table.HasKey() || len(res.rows) < r.cfg.SnapshotChunkRows}
		if n := len(res.rows); n > 0 && rd.info.table.HasKey() {
			w.last = keyValues(rd.info.table, res.rows[n-1])
		}
		s.win = w
	}
	if !s.win.done && s.read == nil {
		return r.startRead(ctx, s.win.last) // read ahead
	}
	return nil
}

// startRead starts reading the chunk of the current table after the key
// values after on the snapshot's connection, on a goroutine of its own
// (s.read), reading the table's schema first when it is not known. The
// read's window opens now: every change of the table the stream passes from
// here on, and those of the last moments before (recentWindow), keep their
// rows out of the chunk. Its high watermark is taken once its rows are
// read. A table that no longer exists gets an empty window instead.
func (r *Reader) startRead(ctx context.Context, after []cdc.Value) error {
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
		if s.state.After == nil && after == nil {
			s.start, s.rows = time.Now(), 0
			r.log.Info("snapshot of a table started", "table", id, "rows_estimate", r.estimate(db, table))
		}
	}
	rd := &chunkRead{after: after, info: s.info, fresh: fresh, changed: make(map[string]struct{}, len(s.recent)),
		done: make(chan chunkResult, 1)}
	for _, rk := range s.recent {
		rd.changed[rk.key] = struct{}{}
	}
	// The read outlives this call: it ends with its chunk, or when the
	// snapshot stops it, not with the ctx of the transaction being read.
	readCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rd.cancel = cancel
	conn, conv, limit := s.conn, s.conv, r.cfg.SnapshotChunkRows
	go func() {
		defer cancel()
		began := time.Now()
		rows, err := readChunk(readCtx, conn, rd.info, conv, after, limit, "")
		var high binlogPos
		if err == nil {
			high, err = binlogPosition(conn)
		}
		rd.done <- chunkResult{rows: rows, high: high, took: time.Since(began), err: err}
	}()
	s.read = rd
	return nil
}

// binlogPosition returns the server's current binlog position: a high
// watermark.
func binlogPosition(conn *client.Conn) (binlogPos, error) {
	res, err := conn.Execute("SHOW MASTER STATUS")
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_PARSE_ERROR {
		res, err = conn.Execute("SHOW BINARY LOG STATUS") // MySQL 8.4 removed the old name
	}
	if err != nil {
		return binlogPos{}, fmt.Errorf("read the high watermark (needs REPLICATION CLIENT / BINLOG MONITOR): %w", err)
	}
	defer res.Close()
	if res.RowNumber() == 0 {
		return binlogPos{}, errors.New("SHOW MASTER STATUS is empty: the binlog is off (set log_bin)")
	}
	pos, _ := res.GetUint(0, 1)
	return binlogPos{file: text(res, 0, 0), pos: pos}, nil
}

// emptyWindow ends the current table with nothing more to publish.
func (r *Reader) emptyWindow(ctx context.Context) error {
	high, err := r.Current(ctx)
	if err != nil {
		return err
	}
	r.snap.win = &window{high: binlogPos{file: high.File, pos: high.Pos}, changed: map[string]struct{}{}, done: true}
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
	next := SnapshotState{Tables: s.state.Tables, After: w.last}
	if w.done {
		r.log.Info("snapshot of a table done", "table", id, "rows", s.rows, "seconds", time.Since(s.start).Seconds())
		next = SnapshotState{Tables: s.state.Tables[1:]}
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
		if s.read != nil {
			s.read.changed[k] = struct{}{}
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
		if s.read != nil {
			s.read.stale = true
		}
	}
}

func (r *Reader) endSnapshot() {
	r.snap.stop()
	r.snap = nil
	r.log.Info("snapshot done: every captured table is backfilled")
}

// stop ends the read in flight, if any, waits for its goroutine and closes
// the snapshot's connection. A nil snapshot has nothing to stop.
func (s *snapshot) stop() {
	if s == nil {
		return
	}
	if s.read != nil {
		s.read.cancel()
		<-s.read.done
		s.read = nil
	}
	s.closeConn()
}

func (s *snapshot) closeConn() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
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
