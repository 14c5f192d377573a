// Package binlog reads row changes from a MySQL or MariaDB binlog as a
// replica and turns them into cdc.Events: where the producer's data comes
// from. It is the only importer of go-mysql.
//
//   - reader.go: the replication stream, transaction boundaries, positions.
//   - table.go: a table's schema, from the TABLE_MAP event's full row
//     metadata or else from information_schema (checked against the event
//     and against DDL ahead in the binlog).
//   - ddl.go: which tables a DDL statement touches; DDL ahead of the reader.
//   - decode.go: row images → canonical cdc.Values, decoded by the reader
//     itself (go-mysql hands them over undecoded): 19 allocations per
//     one-row transaction instead of 46, all of them go-mysql's per event.
//   - tablemap.go: a TABLE_MAP's optional metadata, decoded only when the
//     cached schema cannot serve.
//   - convert.go, charset.go: go-mysql values → canonical cdc.Values (the
//     tables decode.go leaves to go-mysql: MySQL's binary JSON).
//   - check.go: what `producer check` verifies on the source.
//   - conn.go, tunnel.go, tls.go: how every connection reaches the source:
//     directly or through the SSH bastion (source.ssh), with TLS as
//     source.tls says.
//
// Values are exact: decimals stay digit strings, unsigned BIGINTs keep their
// 64 bits, TIMESTAMPs are UTC microseconds and DATETIMEs wall-clock
// microseconds (no session time zone applies to either), text is decoded by
// the column's character set into valid UTF-8.
package binlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Tx is one source transaction: its row changes in commit order and the
// position to resume from once all of it is published.
type Tx struct {
	Events     []cdc.Event
	DDL        []cdc.SchemaChange
	GTID       string    // the transaction's GTID ("" without GTIDs)
	File       string    // binlog file of the end of the transaction
	EndPos     uint64    // position just after the transaction's commit
	CommitTime time.Time // source commit time
	Heartbeat  bool      // true for an idle heartbeat: no events, position only
	// Schemas are schema-history entries recorded while reading this
	// transaction (see history.go): published with it, so that a restart
	// from a checkpoint after it decodes with the schemas in force there.
	Schemas []cdc.TableSchema
	// Snapshot is set on a transaction of snapshot rows (op r): the
	// snapshot's progress once it is published.
	Snapshot *SnapshotState

	// A source transaction with more than source.chunk_rows row changes
	// comes in parts: each but the last has Partial set (File and EndPos
	// are then where the part ends). Begin is where the transaction starts
	// in the binlog, RowsBefore how many of its row changes earlier parts
	// held: together with GTID, where to resume inside it.
	Partial    bool
	Begin      Start
	RowsBefore int

	values []cdc.Value // slab the events' rows are cut from
	bytes  int         // of the events' values: a part ends at source.chunk_bytes
}

func (tx *Tx) reset() {
	clear(tx.Events) // drop references to old rows and tables
	tx.Events, tx.DDL, tx.Schemas = tx.Events[:0], tx.DDL[:0], tx.Schemas[:0]
	tx.GTID, tx.File, tx.EndPos, tx.CommitTime, tx.Heartbeat, tx.Snapshot = "", "", 0, time.Time{}, false, nil
	tx.Partial, tx.Begin, tx.RowsBefore, tx.bytes = false, Start{}, 0, 0
	// The previous transaction is published (Publish encodes before it
	// returns): its rows' slab is reused, so a small transaction allocates
	// nothing here.
	tx.values = tx.values[:0]
}

// row returns n values cut from the transaction's slab; one allocation serves
// many rows and, once grown, many transactions.
func (tx *Tx) row(n int) []cdc.Value {
	if cap(tx.values)-len(tx.values) < n {
		tx.values = make([]cdc.Value, 0, max(1024, 2*cap(tx.values), n))
	}
	l := len(tx.values)
	tx.values = tx.values[:l+n]
	return tx.values[l : l+n : l+n]
}

// Start says where to begin reading.
type Start struct {
	GTID string // a GTID set; wins over File/Pos when set
	File string
	Pos  uint64
	// SkipRows row changes of the first transaction read are already
	// published (a part of a large transaction): they are skipped. TxGTID,
	// when set, is that transaction's GTID, checked.
	SkipRows int
	TxGTID   string
	// Epoch is the first section of every change's sequence; it rises
	// when the producer continues on another server (failover), whose
	// binlog file names and positions start over.
	Epoch uint64
}

// String renders the start point for logs.
func (s Start) String() string {
	switch {
	case s.GTID != "" && s.File != "":
		return fmt.Sprintf("gtid %s (%s:%d)", s.GTID, s.File, s.Pos)
	case s.GTID != "":
		return "gtid " + s.GTID
	}
	return fmt.Sprintf("%s:%d", s.File, s.Pos)
}

// Reader streams transactions from the binlog. It is used by one goroutine.
type Reader struct {
	cfg      *Config
	log      *slog.Logger
	metrics  *Metrics
	flavor   string
	dialer   *dialer      // every connection to the source (conn.go)
	conn     *client.Conn // queries: schema, collations
	syncer   *replication.BinlogSyncer
	stream   *replication.BinlogStreamer
	charsets map[uint64]string
	tables   map[uint64]*tableState
	full     bool   // binlog_row_metadata=FULL: TABLE_MAPs name their columns
	serverID uint32 // the source's server_id

	history   map[string]*cdc.TableSchema // schema history as of the reader's position, by "db.table"
	pending   []cdc.TableSchema           // history entries for the transaction being read
	snapshots *Snapshotter                // the snapshot requests and the snapshot in progress (snapshot.go)
	refused   map[string]error            // captured tables left out: a column strait cannot read (Refused)
	columns   *columnPolicy               // source.columns, applied to what ReadTx hands out (columns.go)
	catchUp   catchUp                     // the backlog at the start (catchup.go)

	file      string     // current binlog file
	fileIndex uint64     // numeric suffix of file
	query     string     // SQL of the current statement, when the server logs it
	started   Start      // where Start began reading
	lastGTID  string     // GTID of the last transaction read to its end
	cur       curTx      // the source transaction being read
	payload   payloadPos // inside a TRANSACTION_PAYLOAD event: where its changes are numbered
	skip      int        // row changes still to skip (Start.SkipRows)
	epoch     uint64
	pos       uint64 // end of the last event read: where the next one starts
	ahead     lookahead
	text      textArena // DECIMAL digits and GTIDs (decode.go)
	checksum  int       // bytes of checksum at the end of each event
	// goMySQL leaves rows events and TABLE_MAP metadata to go-mysql's
	// decoding (tests compare it with decode.go's and tablemap.go's).
	goMySQL bool
}

type tableState struct {
	event    *replication.TableMapEvent // the TABLE_MAP this schema was built from
	meta     []byte                     // its optional metadata (tablemap.go)
	captured bool
	info     *tableInfo
	conv     *converter
	err      error // why the table cannot be decoded
}

// curTx is what the reader knows of the source transaction it is in.
type curTx struct {
	open  bool
	begin Start  // where it starts
	gtid  string // its GTID
	rows  int    // its row changes handed out in earlier parts
	skip  int    // its row changes published before the start (Start.SkipRows)
	// replay marks a finished transaction sent again after a reconnect:
	// read to its end and dropped (see resent).
	replay bool
}

// Open connects to the source and prepares to stream. Call Start next.
func Open(ctx context.Context, cfg *Config, log *slog.Logger, m *Metrics) (*Reader, error) {
	d, err := newDialer(cfg, log)
	if err != nil {
		return nil, err
	}
	keys, err := snapshotKeys(cfg.SnapshotKeys)
	if err != nil {
		d.Close()
		return nil, err
	}
	conn, err := d.dial(ctx, "")
	if err != nil {
		d.Close()
		return nil, err
	}
	r := &Reader{cfg: cfg, log: log, metrics: m, dialer: d, conn: conn, tables: map[uint64]*tableState{}, flavor: cfg.Flavor,
		history: map[string]*cdc.TableSchema{}, columns: newColumnPolicy(cfg)}
	if r.flavor == "" {
		res, err := conn.Execute("SELECT VERSION()")
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("read server version: %w", err)
		}
		v := text(res, 0, 0)
		r.flavor = mysql.MySQLFlavor
		if strings.Contains(strings.ToLower(v), "mariadb") {
			r.flavor = mysql.MariaDBFlavor
		}
	}
	if r.charsets, err = loadCharsets(conn); err != nil {
		r.Close()
		return nil, err
	}
	if r.serverID, err = r.ServerID(); err != nil {
		r.Close()
		return nil, err
	}
	// Servers without the variable (MySQL 5.7, MariaDB before 10.5) log
	// minimal metadata.
	if res, err := conn.Execute("SELECT @@binlog_row_metadata"); err == nil {
		r.full = strings.EqualFold(text(res, 0, 0), "FULL")
		res.Close()
	}
	if r.refused, _, err = unreadableTables(conn, cfg, r.full); err != nil {
		r.Close()
		return nil, fmt.Errorf("read the captured tables' columns: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(r.refused)) {
		r.log.Error("table left out: it has a column strait cannot read (producer check names it too)", "table", id,
			"err", r.refused[id], "fix", "source.exclude: "+id)
	}
	r.metrics.tablesRefused.Set(float64(len(r.refused)))
	r.snapshots = newSnapshotter(cfg, log, m, r, d, r.full, r.columns, keys)
	return r, nil
}

// Snapshot asks the reader to backfill the tables of st, continuing after
// st.After in the first (Snapshotter.Restore). Call before Start.
func (r *Reader) Snapshot(st SnapshotState) { r.snapshots.Restore(st) }

// RequestSnapshot queues a snapshot request (Snapshotter.Request): the
// reader takes it between two source transactions. It may be called from
// any goroutine; it blocks while earlier requests wait.
func (r *Reader) RequestSnapshot(ctx context.Context, req SnapshotRequest) error {
	return r.snapshots.Request(ctx, req)
}

// OnSnapshotProgress makes the reader call f with the snapshot's progress
// (Snapshotter.OnProgress). Call before Start.
func (r *Reader) OnSnapshotProgress(f func(SnapshotProgress)) { r.snapshots.OnProgress(f) }

// Refused returns the captured tables the reader leaves out, by
// "database.table", with why: each has a column strait cannot read. Their
// topics get nothing until they are excluded or the column changes and the
// producer restarts.
func (r *Reader) Refused() map[string]error { return r.refused }

// ServerID returns the source server's server_id.
func (r *Reader) ServerID() (uint32, error) {
	res, err := r.conn.Execute("SELECT @@server_id")
	if err != nil {
		return 0, fmt.Errorf("read server_id: %w", err)
	}
	defer res.Close()
	id, _ := res.GetUint(0, 0)
	return uint32(id), nil
}

// Current returns the server's current binlog position: where a reader with
// no checkpoint starts.
func (r *Reader) Current(ctx context.Context) (Start, error) {
	if err := r.liveQueries(ctx); err != nil { // snapshots ask at every chunk window
		return Start{}, err
	}
	res, err := r.conn.Execute("SHOW MASTER STATUS")
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_PARSE_ERROR {
		res, err = r.conn.Execute("SHOW BINARY LOG STATUS") // MySQL 8.4 removed the old name
	}
	if err != nil {
		return Start{}, fmt.Errorf("read current binlog position (needs REPLICATION CLIENT / BINLOG MONITOR): %w", err)
	}
	defer res.Close()
	if res.RowNumber() == 0 {
		return Start{}, errors.New("SHOW MASTER STATUS is empty: the binlog is off (set log_bin)")
	}
	file := text(res, 0, 0)
	pos, _ := res.GetUint(0, 1)
	s := Start{File: file, Pos: pos}
	if r.flavor == mysql.MySQLFlavor && res.ColumnNumber() >= 5 {
		s.GTID = strings.ReplaceAll(text(res, 0, 4), "\n", "") // Executed_Gtid_Set at file:pos
	}
	return s, nil
}

// Start opens the replication stream at s; an empty s means the current
// position.
func (r *Reader) Start(ctx context.Context, s Start) error {
	atCurrent := s.GTID == "" && s.File == ""
	if atCurrent {
		cur, err := r.Current(ctx)
		if err != nil {
			return err
		}
		cur.Epoch = s.Epoch
		s = cur
	}
	r.catchUp = startCatchUp(ctx, r.Current, atCurrent, r.log)
	r.started, r.skip, r.epoch = s, s.SkipRows, s.Epoch
	if s.GTID == "" {
		r.file, r.fileIndex, r.pos = s.File, fileIndex(s.File), s.Pos
	}
	if !r.full && s.File != "" {
		// A binlog file:pos of this server: the schemas of the captured
		// tables can be pinned to it (history.go).
		if err := r.snapshotSchemas(ctx, binlogPos{file: s.File, pos: s.Pos}); err != nil {
			r.log.Warn("schemas not recorded at the start; each is read when its table's rows come", "at", s.String(), "err", err)
		}
	}
	var dumpFlags uint16
	if r.cfg.IncludeQuery && r.flavor == mysql.MariaDBFlavor {
		// MariaDB sends its annotate events (the statement) to replicas
		// only when asked.
		dumpFlags |= replication.BINLOG_SEND_ANNOTATE_ROWS_EVENT
	}
	decodeRows, decodeMeta := decodeRowsLater, skipOptionalMeta // see decode.go, tablemap.go
	if r.goMySQL {
		decodeRows, decodeMeta = nil, nil
	}
	r.syncer = replication.NewBinlogSyncer(r.syncerConfig(dumpFlags, decodeRows, decodeMeta))
	var err error
	if s.GTID != "" {
		set, perr := mysql.ParseGTIDSet(r.flavor, s.GTID)
		if perr != nil {
			return fmt.Errorf("start gtid %q: %w", s.GTID, perr)
		}
		r.stream, err = r.syncer.StartSyncGTID(set)
	} else {
		r.stream, err = r.syncer.StartSync(mysql.Position{Name: s.File, Pos: uint32(s.Pos)})
	}
	if err != nil {
		return fmt.Errorf("start binlog stream at %s: %w", s, err)
	}
	r.log.Info("binlog stream started", "at", s.String(), "flavor", r.flavor, "server_id", r.cfg.ServerID)
	return nil
}

// syncerConfig is how go-mysql's BinlogSyncer connects and decodes.
func (r *Reader) syncerConfig(dumpFlags uint16, decodeRows func(*replication.RowsEvent, []byte) error,
	decodeMeta func([]byte) error) replication.BinlogSyncerConfig {
	sc := replication.BinlogSyncerConfig{
		DumpCommandFlag: dumpFlags,
		ServerID:        r.cfg.ServerID,
		Flavor:          r.flavor,
		Host:            r.cfg.Host,
		Port:            uint16(r.cfg.Port),
		User:            r.cfg.User,
		Password:        r.cfg.Password,
		ParseTime:       true,
		HeartbeatPeriod: r.cfg.HeartbeatPeriod,
		ReadTimeout:     r.cfg.ReadTimeout,
		Logger:          libraryLog(r.log),
		// A dropped connection resumes from the syncer's own position; the
		// producer's checkpoint covers restarts of the process.
		MaxReconnectAttempts: 10,
		// Parsed events waiting for ReadTx. go-mysql's default, 10,240,
		// held ~100 MiB of parsed 40-row events when publishing was the
		// slower side; 512 keeps memory flat and the parser busy
		// (measured: producer/bench_test.go).
		EventCacheCount:                512,
		RowsEventDecodeFunc:            decodeRows,
		TableMapOptionalMetaDecodeFunc: decodeMeta,
		// The GTID set go-mysql would copy into every XID and QUERY event
		// is not read (Resume keeps its own).
		DiscardGTIDSet: true,
	}
	r.dialer.syncerConfig(&sc, r.metrics.observeHeard) // through the SSH tunnel, with TLS, as configured
	return sc
}

// Close stops the stream and closes the connections.
func (r *Reader) Close() {
	if r.syncer != nil {
		r.syncer.Close()
	}
	r.snapshots.Close()
	r.conn.Close()
	r.dialer.Close()
}

// ReadTx reads the next whole transaction into tx (reusing its memory). A
// transaction without captured changes still returns, so the caller's
// position advances; a heartbeat returns with tx.Heartbeat set. Its events'
// tables and rows are as source.columns publishes them.
func (r *Reader) ReadTx(ctx context.Context, tx *Tx) (err error) {
	defer func() {
		if err == nil {
			err = r.columns.applyTx(tx)
		}
	}()
	tx.reset()
	if r.cur.open { // the rest of a large transaction
		tx.GTID = r.cur.gtid
	}
	if published, err := r.snapshotStep(ctx, tx); err != nil || published {
		r.drainSchemas(tx)
		return err
	}
	for {
		ev, err := r.stream.GetEvent(ctx)
		if err != nil {
			return r.streamError(err)
		}
		if r.upToDate(ev) {
			r.metrics.observeCaughtUp(time.Now())
		}
		if lp := uint64(ev.Header.LogPos); lp > r.pos {
			r.pos = lp // artificial events (position 0, or the file's header when starting inside it) do not move it back
		}
		done, err := r.handle(ctx, tx, ev)
		if err != nil {
			return err
		}
		if !done && r.snapshots.active() && !r.cur.open && len(tx.Events) == 0 && len(tx.DDL) == 0 {
			// Between transactions (a rotation, the stream's first
			// events): the snapshot need not wait for the next one.
			if published, err := r.snapshotStep(ctx, tx); err != nil || published {
				r.drainSchemas(tx)
				return err
			}
		}
		if done && r.cur.replay { // sent again after a reconnect, read to its end (see resent)
			r.cur, r.skip = curTx{}, 0
			tx.reset()
			continue
		}
		if done || len(tx.Events) >= r.cfg.ChunkRows && r.cfg.ChunkRows > 0 || tx.bytes >= r.cfg.ChunkBytes && r.cfg.ChunkBytes > 0 {
			r.drainSchemas(tx)
			tx.File = r.file
			tx.EndPos = uint64(ev.Header.LogPos)
			if ev.Header.Timestamp != 0 {
				tx.CommitTime = time.Unix(int64(ev.Header.Timestamp), 0)
			}
			tx.Begin, tx.RowsBefore = r.cur.begin, r.cur.rows
			if done {
				r.cur = curTx{}
				r.lastGTID = tx.GTID
			} else {
				tx.Partial = true
				r.cur.gtid = tx.GTID
				r.cur.rows += len(tx.Events)
			}
			r.metrics.observePosition(r.fileIndex, tx.EndPos, tx.CommitTime, time.Now())
			r.catchUp.note(tx, binlogPos{file: r.file, pos: r.pos}, r.log)
			return nil
		}
	}
}

// snapshotStep lets the snapshotter publish into tx what is due, only
// between whole source transactions (Snapshotter.Publish).
func (r *Reader) snapshotStep(ctx context.Context, tx *Tx) (bool, error) {
	if r.cur.open || r.skip > 0 || r.file == "" {
		return false, nil // only between whole source transactions
	}
	return r.snapshots.Publish(ctx, tx, streamAt{file: r.file, fileIndex: r.fileIndex, pos: r.pos, epoch: r.epoch, serverID: r.serverID})
}

// upToDate reports whether ev proves the reader has read everything the
// source has: a heartbeat, which the server sends only after
// source.heartbeat_period with nothing to send, outside a transaction and
// at the position read to. A heartbeat ahead of it (MySQL sends some while
// it skips events a GTID set excludes) proves nothing.
func (r *Reader) upToDate(ev *replication.BinlogEvent) bool {
	hb, ok := ev.Event.(*replication.HeartbeatEvent)
	return ok && !r.cur.open && hb.Filename == r.file && uint64(ev.Header.LogPos) <= r.pos
}

// Available reports whether the server still has the binlog to stream from
// s (not purged, and a position or GTID set this server knows). The server
// decides: a replication stream is opened at s and closed again as soon as
// the server answers with its first event or refuses with "could not find"
// (error 1236). Call before Start.
func (r *Reader) Available(ctx context.Context, s Start) (bool, error) {
	probe := replication.NewBinlogSyncer(r.syncerConfig(0, nil, nil))
	defer probe.Close()
	var stream *replication.BinlogStreamer
	var err error
	if s.GTID != "" {
		set, perr := mysql.ParseGTIDSet(r.flavor, s.GTID)
		if perr != nil {
			return false, fmt.Errorf("gtid %q: %w", s.GTID, perr)
		}
		stream, err = probe.StartSyncGTID(set)
	} else {
		stream, err = probe.StartSync(mysql.Position{Name: s.File, Pos: uint32(s.Pos)})
	}
	if err != nil {
		return false, fmt.Errorf("open a binlog stream at %s: %w", s, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReadTimeout)
	defer cancel()
	for {
		ev, err := stream.GetEvent(ctx)
		var me *mysql.MyError
		switch {
		case errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
			r.log.Warn("the binlog to stream from is gone", "at", s.String(), "server", me.Message)
			return false, nil
		case err != nil:
			return false, fmt.Errorf("probe the binlog at %s: %w", s, err)
		}
		if _, ok := ev.Event.(*replication.FormatDescriptionEvent); ok {
			return true, nil // the server is sending the binlog
		}
	}
}

// errSlaveSameID is MariaDB's ER_SLAVE_SAME_ID: another replica registered
// with the same server_id (MySQL reports it as error 1236 with a message
// saying so).
const errSlaveSameID = 4052

// streamError explains a purged binlog and a server_id another replica
// took; other errors pass through. (Kept out
// of ReadTx's loop: the *MyError target escapes, one allocation a call.)
func (r *Reader) streamError(err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) && (me.Code == errSlaveSameID || strings.Contains(me.Message, "same server_uuid/server_id")) {
		return fmt.Errorf("another replica connected to the source with this producer's server_id %d, and the source cut this one off: %w; "+
			"fix: give each producer its own source.server_id (the default is derived from kafka.topic_prefix; producer check lists the replicas)", r.cfg.ServerID, err)
	}
	if errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
		return fmt.Errorf("the source no longer has the binlog to continue from %s (purged past the checkpoint, or another server): %w; "+
			"fix: keep binlogs longer (check `producer check`), re-snapshot the captured tables and start at the current position (source.start_position)", r.started, err)
	}
	return err
}

// handle processes one event and reports whether it ends a transaction.
func (r *Reader) handle(ctx context.Context, tx *Tx, ev *replication.BinlogEvent) (bool, error) {
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		r.file, r.fileIndex, r.pos = string(e.NextLogName), fileIndex(string(e.NextLogName)), e.Position
	case *replication.MariadbGTIDEvent:
		gtid := mariadbGTID(&e.GTID, &r.text)
		if r.resent(tx, ev.Header, gtid) {
			return false, nil
		}
		tx.GTID = gtid
		return false, r.beginTx(tx, ev.Header)
	case *replication.GTIDEvent:
		var gtid string
		// gtid_mode=OFF logs an ANONYMOUS_GTID event, with a zero SID and
		// GNO, before every transaction: no GTID (taken for one, every
		// later transaction looked sent again, see resent).
		if set, err := e.GTIDNext(); err == nil && (e.GNO != 0 || slices.ContainsFunc(e.SID, func(b byte) bool { return b != 0 })) {
			gtid = set.String()
		}
		if r.resent(tx, ev.Header, gtid) {
			return false, nil
		}
		tx.GTID = gtid
		return false, r.beginTx(tx, ev.Header)
	case *replication.MariadbAnnotateRowsEvent:
		r.setQuery(e.Query)
	case *replication.RowsQueryEvent:
		r.setQuery(e.Query)
	case *replication.QueryEvent:
		return r.queryEvent(ctx, tx, ev.Header, e)
	case *replication.FormatDescriptionEvent:
		r.checksum = 0
		if e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32 {
			r.checksum = replication.BinlogChecksumLength
		}
	case *replication.TableMapEvent:
		return false, r.tableMap(ctx, e, ev.RawData)
	case *replication.RowsEvent:
		return false, r.rows(tx, ev.Header, e)
	case *replication.XIDEvent:
		r.query = ""
		return true, nil
	case *replication.TransactionPayloadEvent:
		// MySQL 8's binlog_transaction_compression: the whole transaction
		// arrives in one event, already decompressed and parsed by go-mysql.
		// Its events carry no checksum.
		// go-mysql gives its events (but the last) the payload's start
		// position: their changes are numbered on from one another at
		// the payload's end (rows), so that each has a sequence of its own.
		checksum := r.checksum
		r.checksum = 0
		r.payload = payloadPos{active: true, pos: uint64(ev.Header.LogPos)}
		defer func() { r.checksum, r.payload = checksum, payloadPos{} }()
		for _, inner := range e.Events {
			done, err := r.handle(ctx, tx, inner)
			if err != nil || done {
				return done, err
			}
		}
	default:
		if ev.Header.EventType == replication.HEARTBEAT_EVENT || ev.Header.EventType == replication.HEARTBEAT_LOG_EVENT_V2 {
			if len(tx.Events) == 0 && tx.GTID == "" {
				tx.Heartbeat = true
				return true, nil
			}
		}
	}
	return false, nil
}

// setQuery remembers the statement of the rows events that follow, for
// source.query, when the configuration asks for it.
func (r *Reader) setQuery(q []byte) {
	if r.cfg.IncludeQuery {
		r.query = string(q)
	}
}

func (r *Reader) queryEvent(ctx context.Context, tx *Tx, h *replication.EventHeader, e *replication.QueryEvent) (bool, error) {
	q := string(e.Query)
	switch strings.ToUpper(strings.TrimSpace(q)) {
	case "BEGIN":
		if !r.cur.open { // no GTID event before it
			r.beginTx(tx, h)
		}
		return false, nil
	case "COMMIT": // transactions on non-transactional engines (MyISAM, Aria)
		return true, nil
	}
	if r.cur.replay { // handed out before a reconnect (see resent)
		return true, nil
	}
	if dml, tables := parseDML(q, string(e.Schema)); dml {
		if err := r.statementDML(tx, h, tables, string(e.Schema)); err != nil {
			return false, err
		}
		return false, nil // a table strait does not capture: nothing of it is published
	}
	// Any other statement in a row-based binlog is DDL or a statement that
	// changes no rows (GRANT, CREATE VIEW...). The schemas of the tables a
	// DDL touches are forgotten; the next TABLE_MAP of each rebuilds it.
	scope := parseDDL(q, string(e.Schema))
	if scope.none {
		return true, nil
	}
	for id, st := range r.tables {
		if scope.touches(string(st.event.Schema), string(st.event.Table)) {
			delete(r.tables, id)
		}
	}
	r.schemaChanged(ctx, scope, q, string(e.Schema))
	r.snapshots.DDL(scope)
	if !r.ddlCaptured(scope, string(e.Schema)) {
		return true, nil
	}
	tx.DDL = append(tx.DDL, cdc.SchemaChange{
		Database:   string(e.Schema),
		DDL:        redactDDL(q),
		Position:   cdc.Position{Epoch: r.epoch, File: r.fileIndex, Pos: uint64(h.LogPos)},
		Source:     cdc.Source{ServerID: h.ServerID, GTID: tx.GTID, File: r.file, Pos: uint64(h.LogPos)},
		CommitTime: time.Unix(int64(h.Timestamp), 0),
	})
	return true, nil
}

// ddlCaptured reports whether a DDL is published: when it names a captured
// table, or changes a database that may hold captured tables, or is not
// recognised and runs in such a database. DDL of excluded tables stays out
// of Kafka (their column names included).
func (r *Reader) ddlCaptured(s ddlScope, defaultDB string) bool {
	for _, t := range s.tables {
		db, name, _ := strings.Cut(t, ".")
		if r.captured(db, name) {
			return true
		}
	}
	db := s.db
	if s.all {
		db = defaultDB
	}
	return db != "" && r.databaseCaptured(db)
}

// databaseCaptured reports whether some table of db may be captured.
func (r *Reader) databaseCaptured(db string) bool {
	if systemSchemas[db] {
		return false
	}
	if len(r.cfg.Include) == 0 {
		return true
	}
	for _, p := range r.cfg.Include {
		dbPattern, _, _ := strings.Cut(p, ".")
		if ok, _ := path.Match(dbPattern, db); ok {
			return true
		}
	}
	return false
}

// tableMap resolves the schema of the table an upcoming rows event refers to.
// The cached schema is reused only when the event is identical to the one it
// was built from, so a schema change can never be missed. raw is the whole
// event.
func (r *Reader) tableMap(ctx context.Context, e *replication.TableMapEvent, raw []byte) error {
	meta, err := optionalMeta(e, raw, r.checksum)
	if err != nil {
		return err
	}
	if st, ok := r.tables[e.TableID]; ok && bytes.Equal(st.meta, meta) && sameTableMap(st.event, e) {
		return nil
	}
	if !r.goMySQL {
		if e, err = withOptionalMeta(e, meta); err != nil {
			return err
		}
	}
	db, name := string(e.Schema), string(e.Table)
	st := &tableState{event: e, meta: meta, captured: r.captured(db, name)}
	r.tables[e.TableID] = st
	if !st.captured {
		return nil
	}
	var info *tableInfo
	switch {
	case e.ColumnName != nil:
		info, err = fromTableMap(e, r.charsets, nil)
		if err == nil && r.flavor == mysql.MariaDBFlavor && slices.ContainsFunc(info.cols, func(ci colInfo) bool { return mayHaveKind(&ci) }) {
			var kinds map[string]sqlKind
			if kinds, err = columnKinds(r.conn, db, name); err == nil {
				info, err = fromTableMap(e, r.charsets, kinds)
			}
		}
	default:
		if info = r.fromHistory(e); info == nil {
			info, err = r.fromInformationSchema(ctx, e)
		}
	}
	if err == nil {
		st.conv, err = newConverter(info)
	}
	if err != nil {
		st.err = fmt.Errorf("%w (exclude the table with source.exclude to stream without it)", err)
		return nil // reported when a row of the table arrives
	}
	st.info = info
	return nil
}

// sameTableMap compares the fixed part of two TABLE_MAP events (their
// optional metadata is compared as bytes).
func sameTableMap(a, b *replication.TableMapEvent) bool {
	if a.ColumnCount != b.ColumnCount || !bytes.Equal(a.Schema, b.Schema) || !bytes.Equal(a.Table, b.Table) ||
		!bytes.Equal(a.ColumnType, b.ColumnType) || !bytes.Equal(a.NullBitmap, b.NullBitmap) || len(a.ColumnMeta) != len(b.ColumnMeta) {
		return false
	}
	for i := range a.ColumnMeta {
		if a.ColumnMeta[i] != b.ColumnMeta[i] {
			return false
		}
	}
	return true
}

// systemSchemas are never captured.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

func (r *Reader) captured(db, table string) bool {
	if len(r.refused) > 0 && r.refused[db+"."+table] != nil {
		return false
	}
	return Captures(r.cfg.Include, r.cfg.Exclude, db, table)
}

// Captures reports whether patterns include and exclude (source.include,
// source.exclude) capture table db.table.
func Captures(include, exclude []string, db, table string) bool {
	if systemSchemas[db] {
		return false
	}
	id := db + "." + table
	for _, p := range exclude {
		if ok, _ := path.Match(p, id); ok {
			return false
		}
	}
	if len(include) == 0 {
		return true
	}
	for _, p := range include {
		if ok, _ := path.Match(p, id); ok {
			return true
		}
	}
	return false
}

// resent reports whether the stream sends a transaction again: after a
// lost connection (a dropped SSH tunnel, a network failure) go-mysql
// reconnects a stream read by GTID at the start of the transaction it was
// in, or of the last one it finished. Inside a transaction, its row changes
// read into tx so far are dropped, and those handed out in earlier parts or
// published before the start are skipped again; a finished transaction is
// read to its end and dropped. Each change is handed out once.
func (r *Reader) resent(tx *Tx, h *replication.EventHeader, gtid string) bool {
	switch {
	case gtid == "":
		return false
	case r.cur.open && gtid == tx.GTID:
		r.log.Info("the binlog stream reconnected inside a transaction: reading it again from its start", "gtid", gtid,
			"rows_handed_out", r.cur.rows, "rows_read_again", len(tx.Events))
		clear(tx.Events)
		tx.Events = tx.Events[:0]
		r.skip = r.cur.skip + r.cur.rows
		return true
	case !r.cur.open && gtid == r.lastGTID:
		r.log.Info("the binlog stream reconnected and sends the last transaction again: skipped", "gtid", gtid)
		r.cur = curTx{open: true, begin: Start{File: r.file, Pos: uint64(h.LogPos) - uint64(h.EventSize)}, replay: true}
		r.skip = math.MaxInt
		tx.GTID = gtid // not a heartbeat
		return true
	}
	return false
}

// beginTx notes where the transaction starting with the event of h begins,
// and checks a resume inside a transaction lands in the right one.
func (r *Reader) beginTx(tx *Tx, h *replication.EventHeader) error {
	r.cur = curTx{open: true, begin: Start{File: r.file, Pos: uint64(h.LogPos) - uint64(h.EventSize)}, skip: r.skip}
	if r.skip > 0 && r.started.TxGTID != "" && tx.GTID != "" && tx.GTID != r.started.TxGTID {
		return fmt.Errorf("resuming inside transaction %s (%d row changes already published), but the binlog continues with %s at %s:%d: the source changed under the checkpoint; re-snapshot",
			r.started.TxGTID, r.skip, tx.GTID, r.file, h.LogPos)
	}
	return nil
}

// rows turns a rows event into events appended to tx.
func (r *Reader) rows(tx *Tx, h *replication.EventHeader, e *replication.RowsEvent) error {
	st := r.tables[e.TableID]
	if st == nil || !st.captured {
		return nil
	}
	if st.err != nil {
		return fmt.Errorf("table %s.%s at %s:%d: %w", st.event.Schema, st.event.Table, r.file, h.LogPos, st.err)
	}
	info := st.info
	var op cdc.Op
	step := 1
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		op = cdc.OpCreate
	case replication.EnumRowsEventTypeUpdate:
		op, step = cdc.OpUpdate, 2
	case replication.EnumRowsEventTypeDelete:
		op = cdc.OpDelete
	case replication.EnumRowsEventTypeUnknown:
		if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
			return &UnknowableError{Table: info.table.ID(), File: r.file, Pos: h.LogPos, GTID: tx.GTID, Setting: "binlog_row_value_options",
				Reason: "a partial JSON update (binlog_row_value_options=PARTIAL_JSON) carries a diff of the JSON columns, not their new values"}
		}
		fallthrough
	default:
		return fmt.Errorf("table %s at %s:%d: unknown rows event type %v", info.table.ID(), r.file, h.LogPos, h.EventType)
	}
	first := "after"
	if op != cdc.OpCreate {
		first = "before"
	}
	if err := r.wholeImage(info, tx, h, e.ColumnBitmap1, first); err != nil {
		return err
	}
	if op == cdc.OpUpdate {
		if err := r.wholeImage(info, tx, h, e.ColumnBitmap2, "after"); err != nil {
			return err
		}
	}
	commit := time.Unix(int64(h.Timestamp), 0)
	images, deferred := deferredImages(e) // see decode.go
	if deferred {
		if int(e.ColumnCount) != len(info.table.Columns) {
			return fmt.Errorf("table %s at %s:%d: rows event has %d columns, schema %d", info.table.ID(), r.file, h.LogPos, e.ColumnCount, len(info.table.Columns))
		}
		if compressedRows(h.EventType) {
			var err error
			if images, err = mysql.DecompressMariadbData(images); err != nil {
				return fmt.Errorf("table %s at %s:%d: decompress rows: %w", info.table.ID(), r.file, h.LogPos, err)
			}
		}
	}
	pos, base := uint64(h.LogPos), 0 // where the changes are numbered (payloadPos)
	if r.payload.active {
		pos, base = r.payload.pos, r.payload.rows
	}
	row := 0
	for ; deferred && len(images) > 0 || !deferred && (row+1)*step <= len(e.Rows); row++ {
		// Each row change is decoded, also one already published and
		// skipped: a deferred event's images are read in sequence.
		var img, img2 []cdc.Value
		var err error
		if deferred {
			img, images, err = r.rawImage(tx, st, e.ColumnBitmap1, images, h)
			if err == nil && op == cdc.OpUpdate {
				img2, images, err = r.rawImage(tx, st, e.ColumnBitmap2, images, h)
			}
		} else {
			img, err = r.image(tx, st, e.Rows[row*step], h)
			if err == nil && op == cdc.OpUpdate {
				img2, err = r.image(tx, st, e.Rows[row*step+1], h)
			}
		}
		if err != nil {
			return err
		}
		if r.skip > 0 { // published before the restart
			r.skip--
			continue
		}
		ev := cdc.Event{
			Table:      info.table,
			Op:         op,
			Position:   cdc.Position{Epoch: r.epoch, File: r.fileIndex, Pos: pos, Row: uint64(base + row)},
			Source:     cdc.Source{ServerID: h.ServerID, GTID: tx.GTID, File: r.file, Pos: pos, Row: uint32(base + row), Query: r.query},
			CommitTime: commit,
		}
		switch op {
		case cdc.OpCreate:
			ev.After = img
		case cdc.OpDelete:
			ev.Before = img
		case cdc.OpUpdate:
			ev.Before, ev.After = img, img2
		}
		tx.Events = append(tx.Events, ev)
		tx.bytes += rowBytes(img) + rowBytes(img2)
		if r.snapshots.active() {
			r.snapshots.Observe(info, ev.Before, ev.After)
		}
	}
	r.payload.rows += row
	r.metrics.countRows(info.table, op, row)
	return nil
}

// payloadPos numbers the changes of a TRANSACTION_PAYLOAD event (MySQL 8's
// binlog_transaction_compression): all at the payload's end position, one
// row number after another across its rows events.
type payloadPos struct {
	active bool
	pos    uint64
	rows   int
}

// image converts a row image go-mysql decoded.
func (r *Reader) image(tx *Tx, st *tableState, raw []any, h *replication.EventHeader) ([]cdc.Value, error) {
	info := st.info
	if len(raw) != len(info.table.Columns) {
		return nil, fmt.Errorf("table %s at %s:%d: row has %d columns, schema %d", info.table.ID(), r.file, h.LogPos, len(raw), len(info.table.Columns))
	}
	row := tx.row(len(raw))
	for i, v := range raw {
		val, err := st.conv.value(info, i, v)
		if row[i], err = r.checkValue(info, i, val, err, h); err != nil {
			return nil, err
		}
	}
	return row, nil
}

// mariadbGTID formats domain-server-sequence as go-mysql's String does,
// without fmt and cut from the arena: it runs once per transaction.
func mariadbGTID(g *mysql.MariadbGTID, arena *textArena) string {
	if *g == (mysql.MariadbGTID{}) {
		return ""
	}
	var buf [64]byte
	b := buf[:0]
	b = strconv.AppendUint(b, uint64(g.DomainID), 10)
	b = strconv.AppendUint(append(b, '-'), uint64(g.ServerID), 10)
	b = strconv.AppendUint(append(b, '-'), g.SequenceNumber, 10)
	return arena.string(b)
}

// fileIndex returns the numeric suffix of a binlog file name
// ("mysql-bin.000042" → 42); 0 when it has none.
func fileIndex(name string) uint64 {
	dot := strings.LastIndexByte(name, '.')
	n, err := strconv.ParseUint(name[dot+1:], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// parseFilePos parses "file:pos".
func parseFilePos(s string) (Start, error) {
	file, pos, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(pos, 10, 64)
	if !ok || file == "" || err != nil {
		return Start{}, fmt.Errorf("%q: want file:pos, e.g. mysql-bin.000042:4", s)
	}
	return Start{File: file, Pos: n}, nil
}

// StartFromConfig returns the start point configured by source.start_gtid or
// source.start_position (zero when neither is set).
func StartFromConfig(cfg *Config) (Start, error) {
	if cfg.StartGTID != "" {
		return Start{GTID: cfg.StartGTID}, nil
	}
	if cfg.StartPosition != "" {
		return parseFilePos(cfg.StartPosition)
	}
	return Start{}, nil
}

// drainSchemas moves the schema-history entries recorded so far into tx.
func (r *Reader) drainSchemas(tx *Tx) {
	tx.Schemas = append(tx.Schemas, r.pending...)
	r.pending = r.pending[:0]
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
