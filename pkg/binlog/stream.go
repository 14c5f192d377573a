package binlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// stream is the replication stream: it connects as a replica, reads the
// binlog's events into transactions and keeps the position, the GTID and
// the transaction it is in. It asks the catalog for each table's schema and
// tells the watcher of what it reads; it knows nothing of snapshots: the
// Reader decides when one goes out (between, ReadTx).
type stream struct {
	cfg      *Config
	log      *slog.Logger
	metrics  *Metrics
	flavor   string
	dialer   *dialer // the syncer connects through it (conn.go)
	catalog  *catalog
	watcher  watcher
	serverID uint32 // the source's server_id
	syncer   *replication.BinlogSyncer
	events   *eventQueue // what the syncer read, for next
	catchUp  catchUp     // the backlog at the start (catchup.go)

	file      string     // current binlog file
	fileIndex uint64     // numeric suffix of file
	query     string     // SQL of the current statement, when the server logs it
	started   Start      // where start began reading
	lastGTID  string     // GTID of the last transaction read to its end
	cur       curTx      // the source transaction being read
	payload   payloadPos // inside a TRANSACTION_PAYLOAD event: where its changes are numbered
	skip      int        // row changes still to skip (Start.SkipRows)
	epoch     uint64
	pos       uint64    // end of the last event read: where the next one starts
	text      textArena // DECIMAL digits and GTIDs (decode.go)
	checksum  int       // bytes of checksum at the end of each event
}

// watcher is told of what the stream reads that a snapshot in progress
// must know (the Snapshotter): each row change, with the schema it was
// decoded with, and each DDL.
type watcher interface {
	Observe(info *tableInfo, before, after []cdc.Value)
	DDL(scope ddlScope)
}

// curTx is what the stream knows of the source transaction it is in.
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

// start opens the replication stream at from, a position or GTID set
// (Reader.Start); up is the backlog it starts behind.
func (s *stream) start(from Start, up catchUp) error {
	s.catchUp = up
	s.started, s.skip, s.epoch = from, from.SkipRows, from.Epoch
	if from.GTID == "" {
		s.file, s.fileIndex, s.pos = from.File, fileIndex(from.File), from.Pos
	}
	var dumpFlags uint16
	if s.cfg.IncludeQuery && s.flavor == mysql.MariaDBFlavor {
		// MariaDB sends its annotate events (the statement) to replicas
		// only when asked.
		dumpFlags |= replication.BINLOG_SEND_ANNOTATE_ROWS_EVENT
	}
	decodeRows, decodeMeta := decodeRowsLater, skipOptionalMeta // see decode.go, tablemap.go
	if s.catalog.goMySQL {
		decodeRows, decodeMeta = nil, nil
	}
	sc := s.syncerConfig(dumpFlags, decodeRows, decodeMeta)
	s.events = newEventQueue()
	sc.SynchronousEventHandler = s.events
	s.syncer = replication.NewBinlogSyncer(sc)
	var streamer *replication.BinlogStreamer
	var err error
	if from.GTID != "" {
		set, perr := mysql.ParseGTIDSet(s.flavor, from.GTID)
		if perr != nil {
			return fmt.Errorf("start gtid %q: %w", from.GTID, perr)
		}
		streamer, err = s.syncer.StartSyncGTID(set)
	} else {
		streamer, err = s.syncer.StartSync(mysql.Position{Name: from.File, Pos: uint32(from.Pos)})
	}
	if err != nil {
		return fmt.Errorf("start binlog stream at %s: %w", from, err)
	}
	// With a handler the streamer carries only the error the syncer stops
	// with (a lost connection it could not resume, its close).
	go func() {
		_, err := streamer.GetEvent(context.Background())
		s.events.fail(err)
	}()
	s.log.Info("binlog stream started", "at", from.String(), "flavor", s.flavor, "server_id", s.cfg.ServerID)
	return nil
}

// close stops the stream.
func (s *stream) close() {
	if s.syncer != nil {
		s.events.close() // first: the syncer's Close waits for its goroutine
		s.syncer.Close()
	}
}

// reset readies tx for the next read: the rest of a large transaction
// keeps its GTID.
func (s *stream) reset(tx *Tx) {
	tx.reset()
	if s.cur.open {
		tx.GTID = s.cur.gtid
	}
}

// step is what one event read did to the transaction being read.
type step int

const (
	stepOn      step = iota // more of the transaction is to come
	stepBetween             // between transactions, nothing read into tx yet (a rotation, the stream's first events)
	stepDone                // tx is whole, or a part of a large transaction
)

// next reads one event into tx and says where that leaves it. At stepDone
// tx's position, commit time and part are set.
func (s *stream) next(ctx context.Context, tx *Tx) (step, error) {
	ev, err := s.events.get(ctx)
	if err != nil {
		return stepOn, s.streamError(err)
	}
	if s.upToDate(ev) {
		s.metrics.observeCaughtUp(time.Now())
	}
	if lp := uint64(ev.Header.LogPos); lp > s.pos {
		s.pos = lp // artificial events (position 0, or the file's header when starting inside it) do not move it back
	}
	done, err := s.handle(ctx, tx, ev)
	switch {
	case err != nil:
		return stepOn, err
	case done && s.cur.replay: // sent again after a reconnect, read to its end (see resent)
		s.cur, s.skip = curTx{}, 0
		tx.reset()
		return stepOn, nil
	case !done && !(len(tx.Events) >= s.cfg.ChunkRows && s.cfg.ChunkRows > 0 || tx.bytes >= s.cfg.ChunkBytes && s.cfg.ChunkBytes > 0):
		if !s.cur.open && len(tx.Events) == 0 && len(tx.DDL) == 0 {
			return stepBetween, nil
		}
		return stepOn, nil
	}
	tx.File = s.file
	tx.EndPos = uint64(ev.Header.LogPos)
	if ev.Header.Timestamp != 0 {
		tx.CommitTime = time.Unix(int64(ev.Header.Timestamp), 0)
	}
	tx.Begin, tx.RowsBefore = s.cur.begin, s.cur.rows
	if done {
		s.cur = curTx{}
		s.lastGTID = tx.GTID
	} else {
		tx.Partial = true
		s.cur.gtid = tx.GTID
		s.cur.rows += len(tx.Events)
	}
	s.metrics.observePosition(s.fileIndex, tx.EndPos, tx.CommitTime, time.Now())
	s.catchUp.note(tx, binlogPos{file: s.file, pos: s.pos}, s.log)
	return stepDone, nil
}

// between reports where the stream is when it is between whole source
// transactions, the only points a snapshot chunk may go out at: not inside
// a transaction nor in rows still to skip, and at a known file.
func (s *stream) between() (streamAt, bool) {
	if s.cur.open || s.skip > 0 || s.file == "" {
		return streamAt{}, false
	}
	return streamAt{file: s.file, fileIndex: s.fileIndex, pos: s.pos, epoch: s.epoch, serverID: s.serverID}, true
}

// syncerConfig is how go-mysql's BinlogSyncer connects and decodes.
func (s *stream) syncerConfig(dumpFlags uint16, decodeRows func(*replication.RowsEvent, []byte) error,
	decodeMeta func([]byte) error) replication.BinlogSyncerConfig {
	sc := replication.BinlogSyncerConfig{
		DumpCommandFlag: dumpFlags,
		ServerID:        s.cfg.ServerID,
		Flavor:          s.flavor,
		Host:            s.cfg.Host,
		Port:            uint16(s.cfg.Port),
		User:            s.cfg.User,
		Password:        s.cfg.Password,
		ParseTime:       true,
		HeartbeatPeriod: s.cfg.HeartbeatPeriod,
		ReadTimeout:     s.cfg.ReadTimeout,
		Logger:          libraryLog(s.log),
		// A dropped connection resumes from the syncer's own position; the
		// producer's checkpoint covers restarts of the process.
		MaxReconnectAttempts: 10,
		// Events waiting for ReadTx are bounded by the stream's
		// eventQueue; only available's probe reads go-mysql's channel.
		EventCacheCount:                512,
		RowsEventDecodeFunc:            decodeRows,
		TableMapOptionalMetaDecodeFunc: decodeMeta,
		// The GTID set go-mysql would copy into every XID and QUERY event
		// is not read (Resume keeps its own).
		DiscardGTIDSet: true,
	}
	s.dialer.syncerConfig(&sc, s.metrics.observeHeard) // through the SSH tunnel, with TLS, as configured
	return sc
}

// upToDate reports whether ev proves the stream has read everything the
// source has: a heartbeat, which the server sends only after
// source.heartbeat_period with nothing to send, outside a transaction and
// at the position read to. A heartbeat ahead of it (MySQL sends some while
// it skips events a GTID set excludes) proves nothing.
func (s *stream) upToDate(ev *replication.BinlogEvent) bool {
	hb, ok := ev.Event.(*replication.HeartbeatEvent)
	return ok && !s.cur.open && hb.Filename == s.file && uint64(ev.Header.LogPos) <= s.pos
}

// available reports whether the server still has the binlog to stream from
// from (not purged, and a position or GTID set this server knows). The server
// decides: a replication stream is opened at from and closed again as soon as
// the server answers with its first event or refuses with "could not find"
// (error 1236) (Reader.Available).
func (s *stream) available(ctx context.Context, from Start) (bool, error) {
	probe := replication.NewBinlogSyncer(s.syncerConfig(0, nil, nil))
	defer probe.Close()
	var events *replication.BinlogStreamer
	var err error
	if from.GTID != "" {
		set, perr := mysql.ParseGTIDSet(s.flavor, from.GTID)
		if perr != nil {
			return false, fmt.Errorf("gtid %q: %w", from.GTID, perr)
		}
		events, err = probe.StartSyncGTID(set)
	} else {
		events, err = probe.StartSync(mysql.Position{Name: from.File, Pos: uint32(from.Pos)})
	}
	if err != nil {
		return false, fmt.Errorf("open a binlog stream at %s: %w", from, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	for {
		ev, err := events.GetEvent(ctx)
		var me *mysql.MyError
		switch {
		case errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
			s.log.Warn("the binlog to stream from is gone", "at", from.String(), "server", me.Message)
			return false, nil
		case err != nil:
			return false, fmt.Errorf("probe the binlog at %s: %w", from, err)
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
// took; other errors pass through. (Kept out of next: the *MyError target
// escapes, one allocation a call.)
func (s *stream) streamError(err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) && (me.Code == errSlaveSameID || strings.Contains(me.Message, "same server_uuid/server_id")) {
		return fmt.Errorf("another replica connected to the source with this producer's server_id %d, and the source cut this one off: %w; "+
			"fix: give each producer its own source.server_id (the default is derived from kafka.topic_prefix; producer check lists the replicas)", s.cfg.ServerID, err)
	}
	if errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
		return fmt.Errorf("the source no longer has the binlog to continue from %s (purged past the checkpoint, or another server): %w; "+
			"fix: keep binlogs longer (check `producer check`), re-snapshot the captured tables and start at the current position (source.start_position)", s.started, err)
	}
	return err
}

// handle processes one event and reports whether it ends a transaction.
func (s *stream) handle(ctx context.Context, tx *Tx, ev *replication.BinlogEvent) (bool, error) {
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file, s.fileIndex, s.pos = string(e.NextLogName), fileIndex(string(e.NextLogName)), e.Position
	case *replication.MariadbGTIDEvent:
		gtid := mariadbGTID(&e.GTID, &s.text)
		if s.resent(tx, ev.Header, gtid) {
			return false, nil
		}
		tx.GTID = gtid
		return false, s.beginTx(tx, ev.Header)
	case *replication.GTIDEvent:
		var gtid string
		// gtid_mode=OFF logs an ANONYMOUS_GTID event, with a zero SID and
		// GNO, before every transaction: no GTID (taken for one, every
		// later transaction looked sent again, see resent).
		if set, err := e.GTIDNext(); err == nil && (e.GNO != 0 || slices.ContainsFunc(e.SID, func(b byte) bool { return b != 0 })) {
			gtid = set.String()
		}
		if s.resent(tx, ev.Header, gtid) {
			return false, nil
		}
		tx.GTID = gtid
		return false, s.beginTx(tx, ev.Header)
	case *replication.MariadbAnnotateRowsEvent:
		s.setQuery(e.Query)
	case *replication.RowsQueryEvent:
		s.setQuery(e.Query)
	case *replication.QueryEvent:
		return s.queryEvent(ctx, tx, ev.Header, e)
	case *replication.FormatDescriptionEvent:
		s.checksum = 0
		if e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32 {
			s.checksum = replication.BinlogChecksumLength
		}
	case *replication.TableMapEvent:
		return false, s.catalog.tableMap(ctx, e, ev.RawData, s.checksum, binlogPos{file: s.file, pos: s.pos})
	case *replication.RowsEvent:
		return false, s.rows(tx, ev.Header, e)
	case *replication.XIDEvent:
		s.query = ""
		return true, nil
	case *replication.TransactionPayloadEvent:
		// MySQL 8's binlog_transaction_compression: the whole transaction
		// arrives in one event, already decompressed and parsed by go-mysql.
		// Its events carry no checksum.
		// go-mysql gives its events (but the last) the payload's start
		// position: their changes are numbered on from one another at
		// the payload's end (rows), so that each has a sequence of its own.
		checksum := s.checksum
		s.checksum = 0
		s.payload = payloadPos{active: true, pos: uint64(ev.Header.LogPos)}
		defer func() { s.checksum, s.payload = checksum, payloadPos{} }()
		for _, inner := range e.Events {
			done, err := s.handle(ctx, tx, inner)
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
func (s *stream) setQuery(q []byte) {
	if s.cfg.IncludeQuery {
		s.query = string(q)
	}
}

func (s *stream) queryEvent(ctx context.Context, tx *Tx, h *replication.EventHeader, e *replication.QueryEvent) (bool, error) {
	q := string(e.Query)
	switch strings.ToUpper(strings.TrimSpace(q)) {
	case "BEGIN":
		if !s.cur.open { // no GTID event before it
			s.beginTx(tx, h)
		}
		return false, nil
	case "COMMIT": // transactions on non-transactional engines (MyISAM, Aria)
		return true, nil
	}
	if s.cur.replay { // handed out before a reconnect (see resent)
		return true, nil
	}
	if dml, tables := parseDML(q, string(e.Schema)); dml {
		// It stops the stream when it may have written a captured table.
		if table, captured := s.catalog.writesCaptured(tables, string(e.Schema)); captured {
			return false, &UnknowableError{Table: table, File: s.file, Pos: h.LogPos, GTID: tx.GTID, Setting: "binlog_format",
				Reason: "a row change logged as a statement (the writing session had binlog_format STATEMENT or MIXED), so the rows it changed are not in the binlog"}
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
	s.catalog.dropTables(scope)
	s.catalog.schemaChanged(ctx, scope, q, string(e.Schema), binlogPos{file: s.file, pos: s.pos})
	s.watcher.DDL(scope)
	if !s.catalog.ddlCaptured(scope, string(e.Schema)) {
		return true, nil
	}
	tx.DDL = append(tx.DDL, cdc.SchemaChange{
		Database:   string(e.Schema),
		DDL:        redactDDL(q),
		Position:   cdc.Position{Epoch: s.epoch, File: s.fileIndex, Pos: uint64(h.LogPos)},
		Source:     cdc.Source{ServerID: h.ServerID, GTID: tx.GTID, File: s.file, Pos: uint64(h.LogPos)},
		CommitTime: time.Unix(int64(h.Timestamp), 0),
	})
	return true, nil
}

// resent reports whether the stream sends a transaction again: after a
// lost connection (a dropped SSH tunnel, a network failure) go-mysql
// reconnects a stream read by GTID at the start of the transaction it was
// in, or of the last one it finished. Inside a transaction, its row changes
// read into tx so far are dropped, and those handed out in earlier parts or
// published before the start are skipped again; a finished transaction is
// read to its end and dropped. Each change is handed out once.
func (s *stream) resent(tx *Tx, h *replication.EventHeader, gtid string) bool {
	switch {
	case gtid == "":
		return false
	case s.cur.open && gtid == tx.GTID:
		s.log.Info("the binlog stream reconnected inside a transaction: reading it again from its start", "gtid", gtid,
			"rows_handed_out", s.cur.rows, "rows_read_again", len(tx.Events))
		clear(tx.Events)
		tx.Events = tx.Events[:0]
		s.skip = s.cur.skip + s.cur.rows
		return true
	case !s.cur.open && gtid == s.lastGTID:
		s.log.Info("the binlog stream reconnected and sends the last transaction again: skipped", "gtid", gtid)
		s.cur = curTx{open: true, begin: Start{File: s.file, Pos: uint64(h.LogPos) - uint64(h.EventSize)}, replay: true}
		s.skip = math.MaxInt
		tx.GTID = gtid // not a heartbeat
		return true
	}
	return false
}

// beginTx notes where the transaction starting with the event of h begins,
// and checks a resume inside a transaction lands in the right one.
func (s *stream) beginTx(tx *Tx, h *replication.EventHeader) error {
	s.cur = curTx{open: true, begin: Start{File: s.file, Pos: uint64(h.LogPos) - uint64(h.EventSize)}, skip: s.skip}
	if s.skip > 0 && s.started.TxGTID != "" && tx.GTID != "" && tx.GTID != s.started.TxGTID {
		return fmt.Errorf("resuming inside transaction %s (%d row changes already published), but the binlog continues with %s at %s:%d: the source changed under the checkpoint; re-snapshot",
			s.started.TxGTID, s.skip, tx.GTID, s.file, h.LogPos)
	}
	return nil
}

// rows turns a rows event into events appended to tx.
func (s *stream) rows(tx *Tx, h *replication.EventHeader, e *replication.RowsEvent) error {
	st := s.catalog.tables[e.TableID]
	if st == nil || !st.captured {
		return nil
	}
	if st.err != nil {
		return fmt.Errorf("table %s.%s at %s:%d: %w", st.fixed.schema, st.fixed.table, s.file, h.LogPos, st.err)
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
			return &UnknowableError{Table: info.table.ID(), File: s.file, Pos: h.LogPos, GTID: tx.GTID, Setting: "binlog_row_value_options",
				Reason: "a partial JSON update (binlog_row_value_options=PARTIAL_JSON) carries a diff of the JSON columns, not their new values"}
		}
		fallthrough
	default:
		return fmt.Errorf("table %s at %s:%d: unknown rows event type %v", info.table.ID(), s.file, h.LogPos, h.EventType)
	}
	first := "after"
	if op != cdc.OpCreate {
		first = "before"
	}
	if err := s.wholeImage(info, tx, h, e.ColumnBitmap1, first); err != nil {
		return err
	}
	if op == cdc.OpUpdate {
		if err := s.wholeImage(info, tx, h, e.ColumnBitmap2, "after"); err != nil {
			return err
		}
	}
	commit := time.Unix(int64(h.Timestamp), 0)
	images, deferred := deferredImages(e) // see decode.go
	if deferred {
		if int(e.ColumnCount) != len(info.table.Columns) {
			return fmt.Errorf("table %s at %s:%d: rows event has %d columns, schema %d", info.table.ID(), s.file, h.LogPos, e.ColumnCount, len(info.table.Columns))
		}
		if compressedRows(h.EventType) {
			var err error
			if images, err = mysql.DecompressMariadbData(images); err != nil {
				return fmt.Errorf("table %s at %s:%d: decompress rows: %w", info.table.ID(), s.file, h.LogPos, err)
			}
		}
	}
	pos, base := uint64(h.LogPos), 0 // where the changes are numbered (payloadPos)
	if s.payload.active {
		pos, base = s.payload.pos, s.payload.rows
	}
	row := 0
	for ; deferred && len(images) > 0 || !deferred && (row+1)*step <= len(e.Rows); row++ {
		// Each row change is decoded, also one already published and
		// skipped: a deferred event's images are read in sequence.
		var img, img2 []cdc.Value
		var err error
		if deferred {
			img, images, err = s.rawImage(tx, st, e.ColumnBitmap1, images, h)
			if err == nil && op == cdc.OpUpdate {
				img2, images, err = s.rawImage(tx, st, e.ColumnBitmap2, images, h)
			}
		} else {
			img, err = s.image(tx, st, e.Rows[row*step], h)
			if err == nil && op == cdc.OpUpdate {
				img2, err = s.image(tx, st, e.Rows[row*step+1], h)
			}
		}
		if err != nil {
			return err
		}
		if s.skip > 0 { // published before the restart
			s.skip--
			continue
		}
		ev := cdc.Event{
			Table:      info.table,
			Op:         op,
			Position:   cdc.Position{Epoch: s.epoch, File: s.fileIndex, Pos: pos, Row: uint64(base + row)},
			Source:     cdc.Source{ServerID: h.ServerID, GTID: tx.GTID, File: s.file, Pos: pos, Row: uint32(base + row), Query: s.query},
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
		s.watcher.Observe(info, ev.Before, ev.After)
	}
	s.payload.rows += row
	s.metrics.countRows(info.table, op, row)
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
func (s *stream) image(tx *Tx, st *tableState, raw []any, h *replication.EventHeader) ([]cdc.Value, error) {
	info := st.info
	if len(raw) != len(info.table.Columns) {
		return nil, fmt.Errorf("table %s at %s:%d: row has %d columns, schema %d", info.table.ID(), s.file, h.LogPos, len(raw), len(info.table.Columns))
	}
	row := tx.row(len(raw))
	for i, v := range raw {
		val, err := st.conv.value(info, i, v)
		if row[i], err = s.checkValue(info, i, val, err, h); err != nil {
			return nil, err
		}
	}
	return row, nil
}
