package binlog

// snapshot.go: backfilling the captured tables while the binlog streams,
// without locks and without writing to the source (it may be a read-only
// replica). A table's chunks — rows in primary-key order, each after the
// last key of the one before, snapshot_read.go — are read one after the
// other on the snapshot's own session by a goroutine of their own (the
// chunk loop), up to two chunks ahead of the reader, while the reader
// streams. Each chunk's window opens when its read starts, at some stream
// position P, and right after the read the server's position H (the high
// watermark) is taken. Every change of the table the reader streams in the
// window — after P, up to the chunk's publication at or after H — removes
// its key from the chunk: that row is published from the binlog, whose
// change is at least as new. Once the reader reaches H, the chunk's
// remaining rows are published (op r) as one transaction of their own.
// Their state is the state at H (no change touched them in between), and
// their sequence is the reader's position, so they order correctly against
// every change of the same row before and after. The reader tells "after
// P" by time: it stamps each change of the table as it streams it, and a
// chunk drops every key stamped since its read started, and in the
// recentWindow before (see there). The progress — tables left, key of the
// last row published — travels in each snapshot transaction (Tx.Snapshot)
// and so into the checkpoint: a restart continues at the next chunk, with
// nothing repeated and nothing skipped; chunks read ahead and not yet
// published are read again.
//
// Reading ahead keeps the source and the decoding busy while the reader and
// the publisher are (README, "Performance": with the reader reading each
// chunk itself, three quarters of its time went to reading chunks while the
// second core idled).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
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
	// Origins is, by table of Tables, the request (its offset in the
	// signal topic) that added it; tables of the initial snapshot have
	// none.
	Origins map[string]int64
	// Failed are the last snapshots of a table that failed or were
	// cancelled, oldest first (at most maxFailed): they ended there, and
	// the stream went on.
	Failed []SnapshotFailure
}

// ErrSnapshotKey is a source.snapshot_keys entry the table does not
// support: the initial snapshot stops on it, a requested snapshot fails.
var ErrSnapshotKey = errors.New("source.snapshot_keys")

// SnapshotFailure is a table's snapshot that ended before its last row:
// the source refused its reads, or a request cancelled it.
type SnapshotFailure struct {
	Table   string
	Request int64 // offset of the request that asked for it; -1: the initial snapshot
	Reason  string
	At      time.Time
}

// maxFailed bounds SnapshotState.Failed: the checkpoint carries it.
const maxFailed = 32

// maxReason bounds a SnapshotFailure's Reason (a server's error may quote
// a whole statement).
const maxReason = 512

// SnapshotRequest asks a running producer to snapshot tables, optionally
// only the rows matching Filter (an SQL condition), or, with Cancel, to
// end the snapshot of the tables the request at offset Request added, or,
// with Keys, to publish those primary keys of Tables[0] again (repair.go),
// or, with Rows, to publish those historical rows of Tables[0]
// (backfill.go).
type SnapshotRequest struct {
	Tables  []string
	Filter  string
	Cancel  bool
	Request int64 // the request Cancel cancels
	Next    int64 // the signal topic's offset after this request
	// Keys are a repair's primary keys, as text (CheckRepairKeys).
	Keys [][]string
	// Columns and Rows are a backfill's rows, as text by column
	// (CheckBackfill); a nil value is NULL.
	Columns []string
	Rows    [][]*string
}

// Snapshotter is the snapshot coordinator the Reader owns: it keeps the
// snapshot requests and the snapshot in progress, reads its chunks on a
// session of its own, and interleaves them with the stream: as the
// stream's watcher it is told of each change the stream reads (Observe)
// and each DDL (DDL), and the Reader calls Publish between whole source
// transactions, where a chunk whose window has closed goes out as a
// transaction of its own. It is used by the goroutine calling ReadTx, but
// for Request and Close (see there).
type Snapshotter struct {
	cfg     *Config
	log     *slog.Logger
	metrics *Metrics
	source  snapshotSource
	dialer  *dialer       // the chunks' sessions (snapshotConn)
	full    bool          // binlog_row_metadata=FULL (snapshotInfo)
	columns *columnPolicy // source.columns: a filter may not read a column left out

	snap *snapshot // the snapshot in progress; nil: none
	// The snapshots' lifetime: the chunk loops end with it. end ends life;
	// Close may call it while ReadTx runs.
	life         context.Context
	end          context.CancelFunc
	requested    chan SnapshotRequest   // snapshot requests not taken yet
	held         []SnapshotRequest      // ... received while a chunk was read (takeChunk), taken first
	snapshotKeys map[string][]string    // source.snapshot_keys by "database.table"
	requests     int64                  // offset of the next snapshot request to take
	failed       []SnapshotFailure      // the last snapshot failures (SnapshotState.Failed)
	onProgress   func(SnapshotProgress) // see OnProgress; nil: none
	fix          *repair                // the repair request being carried out; later requests wait for it
	fill         *backfill              // the backfill request to publish; later requests wait for it
}

// snapshotSource is what the Snapshotter asks of the source besides the
// stream's position (handed to Publish): the server's position now (the
// high watermark of a window with nothing to publish) and a table's row
// estimate, both on the Reader's query connection (queries).
type snapshotSource interface {
	current(ctx context.Context) (Start, error)
	estimate(db, table string) int64
}

// streamAt is where the stream is between two whole source transactions:
// the position a chunk is published at.
type streamAt struct {
	file      string
	fileIndex uint64
	pos       uint64
	epoch     uint64
	serverID  uint32 // the source's server_id
}

// newSnapshotter returns a Snapshotter with no snapshot in progress; keys
// is source.snapshot_keys, parsed.
func newSnapshotter(cfg *Config, log *slog.Logger, m *Metrics, src snapshotSource, d *dialer, full bool,
	columns *columnPolicy, keys map[string][]string) *Snapshotter {
	sn := &Snapshotter{cfg: cfg, log: log, metrics: m, source: src, dialer: d, full: full, columns: columns,
		requested: make(chan SnapshotRequest, 16), snapshotKeys: keys}
	sn.life, sn.end = context.WithCancel(context.Background())
	return sn
}

// snapshot is the snapshot in progress.
type snapshot struct {
	state SnapshotState
	// Its lifetime: the chunk loops end with it. A context kept here, as
	// Close ends the loops while ReadTx may run, and a CancelFunc
	// (Snapshotter.end) is the one handle safe to use from there.
	life     context.Context
	conn     *client.Conn // the snapshot's own session (time zone, result charset)
	info     *tableInfo   // schema of state.Tables[0]; nil: read before the next chunk
	conv     *converter
	win      *window     // the chunk read and not yet published
	loop     *chunkLoop  // the chunks being read after win's (or from state.After when win is nil); nil: none
	since    time.Time   // no chunk still to come from loop started its read before this
	rows     int         // rows published of state.Tables[0] in this run
	estimate int64       // information_schema's row count of state.Tables[0]
	start    time.Time   // when this run started reading state.Tables[0]
	resumed  bool        // ... after a key a previous run published
	before   int64       // rows previous runs published of state.Tables[0], estimated (from its first chunk's chunkResult.rowsAfter)
	reported time.Time   // when its progress was last logged (snapshot_progress.go)
	recent   []recentKey // keys of state.Tables[0] the stream changed lately, oldest first
	// match is info.key in column order: the columns keyOf compares a
	// change with a chunk's rows by. The stream's changes and the chunks
	// must agree on it, whatever order the key is read in (a configured
	// snapshot key is read in its index's order, not the configured one).
	match []int
	// quiet is when the snapshot last published (or was last reported
	// stalled): see stalled.
	quiet time.Time
	// notBefore: no chunk starts its read before this time, as the changes
	// streamed until recentWindow before it are forgotten (see maxRecent).
	notBefore time.Time
}

// recentKey is a key the stream changed, and when the reader read it.
type recentKey struct {
	key string
	at  time.Time
}

// maxRecent bounds the changes remembered for the chunks still to come.
// While the reader streams toward the waiting chunk's high watermark, the
// chunks read ahead need every change of the table since their read
// started, and the next chunk those of the recentWindow before its read: a
// reader far behind the source (a restart, a burst of writes) would
// remember one per write until it catches up. Past maxRecent the chunks
// read ahead are given up (read again later), what is remembered is
// forgotten, and no chunk starts its read until recentWindow has passed.
const maxRecent = 1 << 16

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
	highAt  time.Time           // when high was read (zero: not known)
	rows    [][]cdc.Value       // in primary-key order
	changed map[string]struct{} // keys the stream changed: their rows are not published
	last    []cdc.Value         // key of the chunk's last row: where the next chunk starts
	done    bool                // the chunk ends the table
	failed  bool                // ... as its snapshot failed (failTable)
}

// chunkLoop reads the chunks of a table one after the other on the
// snapshot's session, on a goroutine of its own, from a key on. The snapshot
// owns it: the snapshotter takes its results in order (nextWindow) and ends it
// (stopLoop) on a DDL of the table, on shutdown, or once it sent the
// table's last chunk or an error, when the goroutine has ended by itself.
type chunkLoop struct {
	// Finished chunks. One waits here while the next is read: the
	// reader's window, this one and the one being read are the three
	// chunks a snapshot holds at most.
	results chan chunkResult
	fresh   bool // its first chunk is read with a schema read for it
	cancel  context.CancelFunc
	exited  chan struct{}
	// Set before exited closes: the loop was stopped and closed the
	// session itself, as it may have been cut off mid-result.
	closed bool
}

// chunkResult is a chunk read by a chunkLoop.
type chunkResult struct {
	rows  [][]cdc.Value
	high  binlogPos // the server's position right after the rows were read
	start time.Time // when its read started
	took  time.Duration
	done  bool // the table's last chunk, or err: the loop has ended
	err   error
	// rowsAfter is, when counted (the first chunk of a resumed table),
	// the optimizer's estimate of the rows after the key the loop started
	// at (snapshot_progress.go).
	rowsAfter int64
	counted   bool
}

// Restore asks the snapshotter to backfill the tables of st, continuing
// after st.After in the first, and takes st's requests and failures as
// its own. Call before the Reader's Start.
func (sn *Snapshotter) Restore(st SnapshotState) {
	sn.requests, sn.failed = st.Requests, st.Failed
	if len(st.Tables) > 0 {
		sn.snap = newSnapshot(sn.life, st)
		sn.metrics.snapshotTables.Set(float64(len(st.Tables)))
	}
}

// newSnapshot returns a snapshot in progress at st; its chunk loops live
// until life ends (Snapshotter.Close).
func newSnapshot(life context.Context, st SnapshotState) *snapshot {
	return &snapshot{state: st, life: life, quiet: time.Now()}
}

// Request queues a snapshot request; the snapshotter takes it between
// two source transactions (Publish), and the request's offset goes into the
// checkpoint with the tables it added. It may be called from any
// goroutine; it blocks while earlier requests wait.
func (sn *Snapshotter) Request(ctx context.Context, req SnapshotRequest) error {
	select {
	case sn.requested <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeRequests adds the waiting snapshot requests to the snapshot and
// reports whether there were any (their progress must be published).
func (sn *Snapshotter) takeRequests() bool {
	took := false
	for sn.fix == nil && sn.fill == nil {
		var req SnapshotRequest
		if len(sn.held) > 0 {
			req, sn.held = sn.held[0], sn.held[1:]
		} else {
			select {
			case req = <-sn.requested:
			default:
				return took
			}
		}
		if req.Next <= sn.requests {
			continue // read again after a restart, already taken
		}
		if len(req.Keys) > 0 && len(req.Tables) == 1 {
			// Its offset is taken when it is published (repairStep).
			sn.fix = newRepair(req)
			sn.log.Info("repair requested", "table", req.Tables[0], "keys", len(req.Keys), "request", req.Next-1)
			continue
		}
		if len(req.Rows) > 0 && len(req.Tables) == 1 {
			sn.fill = &backfill{req: req} // its offset is taken when it is published (backfillStep)
			continue
		}
		took = true
		if len(req.Keys) > 0 || len(req.Rows) > 0 {
			sn.requests = req.Next
			sn.log.Error("repair or backfill request refused: it names one table", "tables", len(req.Tables), "offset", req.Next-1)
			continue
		}
		sn.requests = req.Next
		offset := req.Next - 1
		if req.Cancel {
			sn.cancelRequest(req.Request)
			continue
		}
		if req.Filter != "" {
			f, err := ParseFilter(req.Filter)
			if err != nil {
				sn.log.Error("snapshot request refused", "tables", req.Tables, "offset", offset, "err", err)
				for _, t := range req.Tables {
					sn.failed = withFailure(sn.failed, t, offset, err)
					sn.metrics.countSnapshotFailure(t)
				}
				continue
			}
			req.Filter = f.SQL
		}
		if sn.snap == nil {
			sn.snap = newSnapshot(sn.life, SnapshotState{})
		}
		// Copied, not changed in place: checkpoints hold the state before.
		// One copy per request, and a set of the tables queued: a request
		// may name 20,000 tables.
		st := &sn.snap.state
		queued := make(map[string]bool, len(st.Tables)+len(req.Tables))
		for _, t := range st.Tables {
			queued[t] = true
		}
		st.Tables = slices.Clip(st.Tables)
		st.Origins = maps.Clone(st.Origins)
		if st.Origins == nil {
			st.Origins = map[string]int64{}
		}
		if req.Filter != "" {
			st.Filters = maps.Clone(st.Filters)
			if st.Filters == nil {
				st.Filters = map[string]string{}
			}
		}
		for _, t := range req.Tables {
			if queued[t] {
				sn.log.Warn("snapshot request: table already being snapshotted; its filter is not changed", "table", t)
				continue
			}
			queued[t] = true
			st.Tables = append(st.Tables, t)
			st.Origins[t] = offset
			if req.Filter != "" {
				st.Filters[t] = req.Filter
			}
		}
		sn.log.Info("snapshot requested", "tables", req.Tables, "filter", req.Filter, "queued", len(st.Tables))
		sn.metrics.snapshotTables.Set(float64(len(st.Tables)))
	}
	return took
}

// Publish runs between whole source transactions, the stream at at: it
// opens the next chunk's window when none is waiting, and publishes the
// waiting one into tx once the stream has reached its high watermark
// (reporting true).
func (sn *Snapshotter) Publish(ctx context.Context, tx *Tx, at streamAt) (bool, error) {
	if sn.fix != nil {
		if published, err := sn.repairStep(ctx, tx, at); err != nil || published {
			return published, err
		}
	}
	if sn.fill != nil {
		if published, err := sn.backfillStep(ctx, tx, at); err != nil || published {
			return published, err
		}
	}
	if sn.takeRequests() {
		// The requests taken (or refused) go out now, checkpointed like
		// a chunk.
		st := sn.State()
		tx.Snapshot, tx.File, tx.EndPos, tx.CommitTime = &st, at.file, at.pos, time.Now()
		return true, nil
	}
	if sn.fill != nil {
		if published, err := sn.backfillStep(ctx, tx, at); err != nil || published {
			return published, err
		}
	}
	s := sn.snap
	if s == nil {
		return false, nil
	}
	if s.win == nil {
		if len(s.state.Tables) == 0 {
			sn.endSnapshot()
			return false, nil
		}
		if s.loop == nil && !time.Now().After(s.notBefore) {
			return false, nil // see maxRecent
		}
		if err := sn.nextWindow(ctx); err != nil {
			return false, err
		}
		if s.win == nil { // a cancellation came while the chunk was read: take it
			return sn.Publish(ctx, tx, at)
		}
	}
	if (binlogPos{file: at.file, pos: at.pos}).before(s.win.high) {
		if s.stalled(sn.cfg.SnapshotStallWarning) {
			sn.reportStall(fmt.Sprintf("the stream to reach the chunk's high watermark %s (it is at %s:%d)", s.win.high, at.file, at.pos))
		}
		return false, nil // stream on to the high watermark
	}
	sn.metrics.observeCaughtUp(s.win.highAt) // the stream had read all the server had then: the source lag
	sn.publishChunk(tx, at)
	return true, nil
}

// nextWindow opens the window of the chunk after the last key published,
// from the chunk loop, which it starts when none runs.
func (sn *Snapshotter) nextWindow(ctx context.Context) error {
	s := sn.snap
	for s.win == nil {
		if s.loop == nil {
			if err := sn.startLoop(ctx); err != nil || s.win != nil {
				return err // or the table is gone: an empty window ends it
			}
		}
		res, err := sn.takeChunk(ctx)
		if errors.Is(err, errCancelled) {
			return nil
		}
		if err != nil {
			return err
		}
		fresh := s.loop.fresh
		s.loop.fresh = false
		if res.done { // the loop is ending by itself
			s.stopLoop()
		}
		if res.err != nil {
			s.closeConn() // an error may leave the session mid-result; errors are rare, a new session is cheap
		}
		id := s.state.Tables[0]
		var me *mysql.MyError
		switch {
		case errors.As(res.err, &me) && me.Code == mysql.ER_NO_SUCH_TABLE:
			sn.log.Warn("snapshot: table dropped while being read; skipped", "table", id)
			return sn.emptyWindow(ctx)
		case res.err != nil && !fresh && ctx.Err() == nil:
			// The table may have changed since its schema was read (a DDL
			// the reader has not reached yet): read it again, then the chunk.
			sn.log.Debug("snapshot chunk failed with a schema read earlier; reading the schema again", "table", id, "err", res.err)
			s.info, s.conv = nil, nil
			continue
		case res.err != nil && (ctx.Err() != nil || connectionLost(res.err)):
			return fmt.Errorf("snapshot of %s: %w", id, res.err) // a new session may read it: the run restarts
		case res.err != nil:
			// The source refuses this table's reads (a filter it rejects,
			// a configured key that is not unique, a statement time
			// limit, a value strait cannot read): its snapshot ends as
			// failed, recorded in the checkpoint; the stream goes on. A
			// restart would fail the same way, again and again.
			return sn.failTable(ctx, res.err)
		}
		sn.metrics.observeChunk(res.took)
		if res.counted { // the rows before the key: the estimate less those after it
			s.before = max(0, s.estimate-res.rowsAfter)
		}
		s.since = res.start // the loop's next reads start later
		w := &window{high: res.high, highAt: res.start.Add(res.took), rows: res.rows, changed: map[string]struct{}{}, done: res.done}
		opened := res.start.Add(-recentWindow)
		for _, rk := range s.recent {
			if !rk.at.Before(opened) {
				w.changed[rk.key] = struct{}{}
			}
		}
		if n := len(res.rows); n > 0 && len(s.info.key) > 0 {
			w.last = keyValues(s.info.key, res.rows[n-1])
		}
		s.win = w
	}
	return nil
}

// takeChunk waits for the chunk loop's next result, reporting a wait longer
// than source.snapshot_stall_warning.
func (sn *Snapshotter) takeChunk(ctx context.Context) (chunkResult, error) {
	l := sn.snap.loop
	for {
		warn := time.NewTimer(time.Until(sn.snap.quiet.Add(sn.cfg.SnapshotStallWarning)))
		select {
		case res := <-l.results:
			warn.Stop()
			return res, nil
		case <-l.exited: // stopped by Close, or ended with its result sent
			warn.Stop()
			select {
			case res := <-l.results:
				return res, nil
			default:
				return chunkResult{}, errors.New("snapshot: the reader is closed")
			}
		case <-ctx.Done():
			warn.Stop()
			return chunkResult{}, ctx.Err()
		case <-warn.C:
			sn.reportStall("the chunk's read on the source")
		case req := <-sn.requested:
			// Taken in order by takeRequests. A cancellation is taken
			// now: it is how an operator ends a read that does not.
			warn.Stop()
			sn.held = append(sn.held, req)
			if req.Cancel {
				return chunkResult{}, errCancelled
			}
		}
	}
}

// errCancelled: takeChunk stopped waiting for a cancellation.
var errCancelled = errors.New("snapshot: a cancellation came")

// stalled reports whether the snapshot has published nothing for warning
// (source.snapshot_stall_warning).
func (s *snapshot) stalled(warning time.Duration) bool {
	return time.Since(s.quiet) >= warning
}

// reportStall warns that the snapshot, with rows remaining, has published
// nothing for source.snapshot_stall_warning, naming what it waits for, the
// table, the key of the last row published and the query of the next
// chunk, and counts it; the next report comes a period later.
func (sn *Snapshotter) reportStall(waiting string) {
	s := sn.snap
	s.quiet = time.Now()
	id := s.state.Tables[0]
	after, query := "(start)", "(not built yet: the table's schema is being read)"
	if s.info != nil {
		after = keyText(s.info, s.state.After)
		if q, _, err := chunkQuery(s.info, s.state.After, sn.cfg.SnapshotChunkRows, s.state.Filters[id]); err == nil {
			query = q
		}
	}
	sn.metrics.countSnapshotStall(id)
	sn.log.Warn("snapshot: nothing published for a while, rows remain", "table", id, "for", sn.cfg.SnapshotStallWarning,
		"waiting_for", waiting, "after_key", after, "query", query)
}

// startLoop starts the chunk loop of the current table after the last key
// published, reading the table's schema first when it is not known. A table
// that no longer exists gets an empty window instead.
func (sn *Snapshotter) startLoop(ctx context.Context) error {
	s := sn.snap
	id := s.state.Tables[0]
	db, table := splitID(id)
	if s.conn == nil {
		conn, err := snapshotConn(ctx, sn.dialer)
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
			sn.log.Warn("snapshot: table no longer exists; skipped", "table", id)
			return sn.emptyWindow(ctx)
		}
		if s.info, err = snapshotInfo(ts, sn.full); err == nil {
			s.conv, err = newConverter(s.info)
		}
		if err == nil && len(s.info.key) == 0 {
			if s.info.key, err = snapshotKey(sn.snapshotKeys, s.info.table); err == nil && s.info.key != nil {
				err = uniqueKey(s.conn, s.info)
			}
		}
		if err != nil {
			s.info, s.conv = nil, nil
			if connectionLost(err) {
				return fmt.Errorf("snapshot of %s: %w", id, err)
			}
			return sn.failTable(ctx, err)
		}
		s.match = matchKey(s.info.key)
		if s.state.After == nil || s.start.IsZero() {
			s.estimate, s.before, s.resumed = sn.source.estimate(db, table), 0, s.state.After != nil
			s.start, s.rows = time.Now(), 0
			s.reported = s.start
			sn.metrics.snapshotLeft.Set(float64(s.left()))
			sn.log.Info("snapshot of a table started", "table", id, "rows_estimate", s.estimate, "resuming_after_key", s.state.After != nil)
		}
	}
	// The loop outlives this call: it ends with the table, or when it is
	// stopped (stopLoop, Close), not with the ctx of the transaction being
	// read. It owns the session while it runs.
	loopCtx, cancel := context.WithCancel(s.life)
	l := &chunkLoop{results: make(chan chunkResult, 1), fresh: fresh, cancel: cancel, exited: make(chan struct{})}
	conn, info, conv, limit, after, filter := s.conn, s.info, s.conv, sn.cfg.SnapshotChunkRows, s.state.After, s.state.Filters[id]
	if filter != "" {
		// Checked again as it comes back from the checkpoint: only the
		// parser's rendering reaches the server (filter.go).
		f, err := ParseFilter(filter)
		if err == nil {
			err = f.checkColumns(columnNames(info.table))
		}
		if err == nil {
			err = sn.columns.checkFilter(f, info.table)
		}
		if err != nil {
			return sn.failTable(ctx, err)
		}
		filter = f.SQL
	}
	bound := chunkBound{bytes: sn.cfg.SnapshotChunkBytes}
	s.since = time.Now()
	countAfter := s.resumed && s.rows == 0 // for the progress: see snapshot.before
	go func() {
		defer close(l.exited)
		defer func() {
			if loopCtx.Err() != nil { // stopped
				conn.Close()
				l.closed = true
			}
			cancel()
		}()
		send := func(res chunkResult) bool {
			select {
			case l.results <- res:
				return true
			case <-loopCtx.Done():
				return false
			}
		}
		if len(info.key) == 0 {
			// No key to resume at: one query, its rows handed over in
			// pieces of source.snapshot_chunk_bytes as they come, each
			// published at once (unmatched, like the whole table was).
			bound.piece = func(rows [][]cdc.Value) error {
				if !send(chunkResult{rows: rows, start: time.Now()}) {
					return loopCtx.Err()
				}
				return nil
			}
		}
		rows := limit // of the next chunk: fewer after one cut short by bytes, back up to limit
		for {
			start := time.Now()
			read, truncated, err := readBounded(loopCtx, conn, info, conv, after, rows, filter, bound)
			var high binlogPos
			if err == nil {
				high, err = binlogPosition(conn)
			}
			res := chunkResult{rows: read, high: high, start: start, took: time.Since(start), err: err,
				done: err != nil || len(info.key) == 0 || !truncated && len(read) < rows}
			if countAfter && err == nil {
				res.rowsAfter, res.counted = rowsAfter(conn, info, after)
				countAfter = false
			}
			if !send(res) || res.done {
				return
			}
			after = keyValues(info.key, read[len(read)-1])
			if truncated {
				rows = max(1, len(read))
			} else {
				rows = min(limit, 2*rows)
			}
		}
	}()
	s.loop = l
	return nil
}

// snapshotKey returns the key columns keys (source.snapshot_keys) names for
// table t (one without a primary key), in the configured order; nil when
// none.
func snapshotKey(keys map[string][]string, t *cdc.Table) ([]int, error) {
	names := keys[t.ID()]
	if names == nil {
		return nil, nil
	}
	key := make([]int, len(names))
	for j, name := range names {
		i := slices.IndexFunc(t.Columns, func(c cdc.Column) bool { return strings.EqualFold(c.Name, name) })
		if i < 0 {
			return nil, fmt.Errorf("%w: table %s has no column %s", ErrSnapshotKey, t.ID(), name)
		}
		key[j] = i
	}
	return key, nil
}

// uniqueKey checks that info.key, a configured snapshot key, is a unique
// index of NOT NULL columns, and puts its columns in the index's order (so
// that a chunk's range is the index's). Chunks by columns that are not
// unique would skip the rows sharing a key at their ends; NULLs compare to
// nothing, so their rows would never be read.
func uniqueKey(conn *client.Conn, info *tableInfo) error {
	t := info.table
	for _, k := range info.key {
		if t.Columns[k].Nullable {
			return fmt.Errorf("%w: column %s of %s may be NULL; a snapshot key must be a unique index of NOT NULL columns", ErrSnapshotKey, t.Columns[k].Name, t.ID())
		}
	}
	res, err := conn.Execute(`SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, t.Database, t.Name)
	if err != nil {
		return fmt.Errorf("unique indexes of %s: %w", t.ID(), err)
	}
	defer res.Close()
	indexes := map[string][]string{}
	var order []string
	for i := range res.RowNumber() {
		name := text(res, i, 0)
		if indexes[name] == nil {
			order = append(order, name)
		}
		indexes[name] = append(indexes[name], text(res, i, 1))
	}
	want := make([]string, len(info.key))
	for j, k := range info.key {
		want[j] = t.Columns[k].Name
	}
	for _, name := range order {
		cols := indexes[name]
		if len(cols) != len(want) || !isPermutation(cols, want) {
			continue
		}
		for j, c := range cols {
			info.key[j] = slices.IndexFunc(t.Columns, func(col cdc.Column) bool { return col.Name == c })
		}
		return nil
	}
	return fmt.Errorf("%w: (%s) is not a unique index of %s (unique indexes: %v); chunks by it could skip rows: "+
		"create a unique index, or leave the table out of source.snapshot_keys to read it whole", ErrSnapshotKey, strings.Join(want, ", "), t.ID(), indexes)
}

// isPermutation reports whether a and b hold the same strings (each once).
func isPermutation(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return len(a) == len(b)
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

// failTable ends the snapshot of the current table, which the source
// refuses to read, as failed: recorded (SnapshotState.Failed), logged and
// counted. The stream goes on, and so does the snapshot of the next table.
func (sn *Snapshotter) failTable(ctx context.Context, err error) error {
	s := sn.snap
	id := s.state.Tables[0]
	request, ok := s.state.Origins[id]
	if !ok {
		request = -1
	}
	if request < 0 && errors.Is(err, ErrSnapshotKey) {
		// The initial snapshot stops on a configuration its operator
		// must fix; a request for the table fails (it would every time).
		return fmt.Errorf("snapshot of %s: %w", id, err)
	}
	s.stopLoop()
	s.info, s.conv, s.match, s.recent = nil, nil, nil, nil
	sn.failed = withFailure(sn.failed, id, request, err)
	sn.metrics.countSnapshotFailure(id)
	sn.log.Error("snapshot of a table failed: it ends here, the stream goes on; producer snapshot -list shows it, request it again once the cause is fixed",
		"table", id, "request", request, "rows_published", s.rows, "err", err)
	if err := sn.emptyWindow(ctx); err != nil {
		return err
	}
	s.win.failed = true
	return nil
}

// withFailure returns failed with the failure of table's snapshot (asked
// for by the request at offset request, -1: none) added last, as the
// checkpoint keeps it: one printable line, at most maxFailed failures.
func withFailure(failed []SnapshotFailure, table string, request int64, err error) []SnapshotFailure {
	reason := strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' ' // a reason is one line (the checkpoint takes printable text)
		}
		return c
	}, err.Error())
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason], "") + "…"
	}
	f := SnapshotFailure{Table: table, Request: request, Reason: reason, At: time.Now()}
	return append(slices.Clone(failed[max(0, len(failed)-maxFailed+1):]), f)
}

// cancelRequest ends the snapshot of the tables the request at offset
// request added, the one being read included, each recorded as cancelled.
func (sn *Snapshotter) cancelRequest(request int64) {
	s := sn.snap
	var cancelled []string
	if s != nil {
		for i := len(s.state.Tables) - 1; i >= 0; i-- {
			t := s.state.Tables[i]
			if origin, ok := s.state.Origins[t]; !ok || origin != request {
				continue
			}
			if i == 0 {
				if sn.onProgress != nil {
					sn.onProgress(SnapshotProgress{Table: t, Done: true})
				}
				s.stopLoop()
				s.win, s.info, s.conv, s.match, s.recent, s.start = nil, nil, nil, nil, nil, time.Time{}
				s.state.After = nil
			}
			s.state.Tables = slices.Delete(slices.Clone(s.state.Tables), i, i+1)
			s.state.Filters, s.state.Origins = without(s.state.Filters, t), without(s.state.Origins, t)
			sn.failed = withFailure(sn.failed, t, request, fmt.Errorf("cancelled by the request at offset %d", sn.requests-1))
			sn.metrics.countSnapshotFailure(t)
			cancelled = append(cancelled, t)
		}
		sn.metrics.snapshotTables.Set(float64(len(s.state.Tables)))
	}
	if len(cancelled) == 0 {
		sn.log.Warn("snapshot cancel: the request has no table waiting or being read (done, failed or never taken)", "request", request)
		return
	}
	sn.log.Info("snapshot cancelled", "request", request, "tables", cancelled)
}

// without returns m without key k, copied when it held it (snapshot states
// handed out share their maps).
func without[V any](m map[string]V, k string) map[string]V {
	if _, ok := m[k]; !ok {
		return m
	}
	m = maps.Clone(m)
	delete(m, k)
	return m
}

// connectionLost reports whether err ended the snapshot session rather
// than its query: a new session may well read the chunk.
func connectionLost(err error) bool {
	var me *mysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case mysql.ER_LOCK_DEADLOCK, mysql.ER_LOCK_WAIT_TIMEOUT, mysql.ER_SERVER_SHUTDOWN, mysql.ER_CON_COUNT_ERROR,
			mysql.ER_QUERY_INTERRUPTED, 2006, 2013: // the client's "server has gone away", "lost connection"
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, mysql.ErrBadConn) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &ne)
}

// emptyWindow ends the current table with nothing more to publish.
func (sn *Snapshotter) emptyWindow(ctx context.Context) error {
	high, err := sn.source.current(ctx)
	if err != nil {
		return err
	}
	sn.snap.win = &window{high: binlogPos{file: high.File, pos: high.Pos}, changed: map[string]struct{}{}, done: true}
	return nil
}

// publishChunk hands the waiting chunk's rows that the stream did not
// change out as one transaction at the stream's position at, and moves the
// snapshot on.
func (sn *Snapshotter) publishChunk(tx *Tx, at streamAt) {
	s := sn.snap
	w := s.win
	now := time.Now()
	for _, row := range w.rows {
		if len(w.changed) > 0 {
			if _, changed := w.changed[keyOf(s.info.table, s.match, row)]; changed {
				continue // changed in the window: the stream published it
			}
		}
		n := len(tx.Events)
		tx.Events = append(tx.Events, cdc.Event{
			Table: s.info.table, Op: cdc.OpRead, After: row,
			Position:   cdc.Position{Epoch: at.epoch, File: at.fileIndex, Pos: at.pos, Row: uint64(n)},
			Source:     cdc.Source{ServerID: at.serverID, File: at.file, Pos: at.pos, Row: uint32(n), Snapshot: true},
			CommitTime: now,
		})
	}
	id := s.state.Tables[0]
	s.rows += len(tx.Events)
	if len(tx.Events) > 0 {
		sn.metrics.countSnapshotRows(id, len(tx.Events))
	}
	sn.metrics.snapshotLeft.Set(float64(s.left()))
	s.quiet = now
	sn.reportProgress(now, w.done)
	next := s.state
	next.After, next.Requests, next.Failed = w.last, sn.requests, sn.failed
	if w.done {
		if !w.failed {
			sn.log.Info("snapshot of a table done", "table", id, "rows", s.rows, "seconds", time.Since(s.start).Seconds())
		}
		next.Tables, next.After = next.Tables[1:], nil
		next.Filters, next.Origins = without(next.Filters, id), without(next.Origins, id)
		s.info, s.conv, s.match, s.recent, s.start = nil, nil, nil, nil, time.Time{}
		sn.metrics.snapshotLeft.Set(0)
	}
	s.state, s.win = next, nil
	tx.Snapshot = &next
	tx.File, tx.EndPos, tx.CommitTime = at.file, at.pos, now
	sn.metrics.snapshotTables.Set(float64(len(next.Tables)))
}

// Observe removes the rows of a change in the stream from the waiting
// chunk (the stream publishes them) and remembers their keys for the next
// chunk's read (see recentWindow). info is the schema the change was
// decoded with; before or after is nil when the change has none.
func (sn *Snapshotter) Observe(info *tableInfo, before, after []cdc.Value) {
	sn.observeRepair(info, before, after)
	s := sn.snap
	if s == nil || len(s.state.Tables) == 0 {
		return
	}
	if db, table := splitID(s.state.Tables[0]); info.table.Database != db || info.table.Name != table {
		return
	}
	key := s.match // the snapshot's schema: the stream's until the next DDL of the table
	if s.info == nil {
		key = info.table.PrimaryKey
		if len(key) == 0 {
			key, _ = snapshotKey(sn.snapshotKeys, info.table) // an error stops the snapshot when it reads the table's schema
		}
		key = matchKey(key)
	}
	if len(key) == 0 {
		return // a table without a key is read whole, unmatched (README, "Snapshots")
	}
	now := time.Now()
	s.forget(now)
	for _, row := range [2][]cdc.Value{before, after} {
		if row == nil {
			continue
		}
		k := keyOf(info.table, key, row)
		s.recent = append(s.recent, recentKey{key: k, at: now})
		if s.win != nil {
			s.win.changed[k] = struct{}{}
		}
	}
}

// forget drops the changes no chunk still to come needs: those before the
// earliest start of its read, less recentWindow. Past maxRecent, the
// chunks read ahead are given up for it.
//
// It runs for every change of the table being snapshotted, so it costs
// only what it drops: copying the rest to the front of the list here made
// every change cost the whole list, and a restart far behind the source
// held tens of thousands, slowing the reader below the write rate so that
// it never reached the waiting chunk's high watermark (the stall of issue
// 20; TestSnapshotResumedFarBehindCatchesUp).
func (s *snapshot) forget(now time.Time) {
	forget := now
	if s.loop != nil {
		forget = s.since
	}
	drop := 0
	for drop < len(s.recent) && forget.Sub(s.recent[drop].at) > recentWindow {
		drop++
	}
	s.recent = s.recent[drop:] // append reallocates once the front is used up, copying only what is kept
	if len(s.recent) >= maxRecent {
		s.stopLoop()
		s.recent = s.recent[:0]
		s.notBefore = now.Add(recentWindow)
	}
}

// matchKey returns key's columns in ascending order (see snapshot.match).
func matchKey(key []int) []int {
	return slices.Sorted(slices.Values(key))
}

// DDL drops the waiting chunk of a table a DDL in the stream touches (it is
// read again, with the new schema) and forgets the table's schema.
func (sn *Snapshotter) DDL(scope ddlScope) {
	if f := sn.fix; f != nil {
		if db, table := splitID(f.table); scope.touches(db, table) {
			f.restart() // read again, with the new schema
		}
	}
	if f := sn.fill; f != nil {
		if db, table := splitID(f.req.Tables[0]); scope.touches(db, table) {
			f.read = false // checked again, against the new schema
		}
	}
	s := sn.snap
	if s == nil || len(s.state.Tables) == 0 {
		return
	}
	if db, table := splitID(s.state.Tables[0]); scope.touches(db, table) {
		// Its chunks read ahead are dropped too: they would follow rows
		// read again now.
		s.win, s.info, s.conv, s.match = nil, nil, nil, nil
		s.stopLoop()
	}
}

func (sn *Snapshotter) endSnapshot() {
	sn.snap.stop()
	sn.snap = nil
	sn.metrics.snapshotTables.Set(0)
	sn.log.Info("snapshot done: every captured table is backfilled")
	if sn.onProgress != nil {
		sn.onProgress(SnapshotProgress{Done: true})
	}
}

// stop ends the chunk loop, if any, and closes the snapshot's session. A
// nil snapshot has nothing to stop.
func (s *snapshot) stop() {
	if s == nil {
		return
	}
	s.stopLoop()
	s.closeConn()
}

// stopLoop ends the chunk loop, if any, and waits for its goroutine. A loop
// stopped before it ended by itself closes the session.
func (s *snapshot) stopLoop() {
	if s.loop == nil {
		return
	}
	s.loop.cancel()
	<-s.loop.exited
	if s.loop.closed {
		s.conn = nil
	}
	s.loop = nil
}

// Close stops the snapshot's chunk loops for the Reader's Close, which may
// run while ReadTx does: it touches nothing but the snapshot's lifetime.
// A stopped loop closes its session. A nil Snapshotter has nothing to stop.
func (sn *Snapshotter) Close() {
	if sn != nil {
		sn.end()
	}
}

// State is the snapshot's progress, with the requests taken and the last
// failures: what a resume point starts from (Reader.Resume).
func (sn *Snapshotter) State() SnapshotState {
	var st SnapshotState
	if sn.snap != nil {
		st = sn.snap.state
	}
	st.Requests, st.Failed = sn.requests, sn.failed
	return st
}

// active reports whether a snapshot is in progress: only then do the
// stream's changes concern it (Observe) and may a chunk be due before a
// transaction's first event (Publish).
func (sn *Snapshotter) active() bool { return sn.snap != nil || sn.fix != nil || sn.fill != nil }

func (s *snapshot) closeConn() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// keyValues returns row's values of the key columns.
func keyValues(key []int, row []cdc.Value) []cdc.Value {
	out := make([]cdc.Value, len(key))
	for i, k := range key {
		out[i] = row[k]
	}
	return out
}

func splitID(id string) (db, table string) {
	db, table, _ = strings.Cut(id, ".")
	return db, table
}
