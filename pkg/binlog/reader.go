// Package binlog reads row changes from a MySQL or MariaDB binlog as a
// replica and turns them into cdc.Events: where the producer's data comes
// from. It is the only importer of go-mysql.
//
// The Reader coordinates three parts: the replication stream (events,
// positions, GTIDs, transaction boundaries, heartbeats), the catalog the
// stream asks for each table's schema (from the TABLE_MAP event's full row
// metadata, else from the schema history or information_schema, checked
// against DDL ahead in the binlog), and the Snapshotter, whose chunks the
// Reader alone interleaves with the stream's transactions. Row images are
// decoded by the package itself (go-mysql hands them over undecoded): 19
// allocations per one-row transaction instead of 46, all of them go-mysql's
// per event. `producer check`'s verification of the source lives here too,
// and every connection reaches the source directly or through the SSH
// bastion (source.ssh), with TLS as source.tls says.
//
// Values are exact: decimals stay digit strings, unsigned BIGINTs keep their
// 64 bits, TIMESTAMPs are UTC microseconds and DATETIMEs wall-clock
// microseconds (no session time zone applies to either), text is decoded by
// the column's character set into valid UTF-8.
package binlog

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

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
		tx.values = make([]cdc.Value, 0, max(256, 2*cap(tx.values), n))
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

// Reader reads the source's transactions: the coordinator of the
// replication stream (stream.go), the schema catalog the stream asks
// (catalog.go) and the snapshot (Snapshotter). Like gh-ost's migrator
// interleaving row copy and binlog apply, it alone decides when a snapshot
// chunk goes out: between two whole source transactions of the stream
// (ReadTx). It is used by one goroutine, but for RequestSnapshot and Close.
type Reader struct {
	cfg       *Config
	log       *slog.Logger
	q         *queries      // the query connection (conn.go)
	catalog   *catalog      // the tables, their schemas and the schema history (catalog.go, history.go)
	stream    *stream       // the binlog stream (stream.go)
	snapshots *Snapshotter  // the snapshot requests and the snapshot in progress (snapshot.go)
	columns   *columnPolicy // source.columns, applied to what ReadTx hands out (columns.go)
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
	fail := func(err error) (*Reader, error) {
		conn.Close()
		d.Close()
		return nil, err
	}
	q := &queries{conn: conn, dialer: d, log: log, flavor: cfg.Flavor}
	if q.flavor == "" {
		res, err := conn.Execute("SELECT VERSION()")
		if err != nil {
			return fail(fmt.Errorf("read server version: %w", err))
		}
		v := text(res, 0, 0)
		q.flavor = mysql.MySQLFlavor
		if strings.Contains(strings.ToLower(v), "mariadb") {
			q.flavor = mysql.MariaDBFlavor
		}
	}
	cat := &catalog{cfg: cfg, log: log, q: q, flavor: q.flavor, tables: map[uint64]*tableState{}, ids: map[string]uint64{},
		history: schemaHistory{byTable: map[string]*cdc.TableSchema{}}}
	if cat.charsets, err = loadCharsets(conn); err != nil {
		return fail(err)
	}
	serverID, err := q.serverID()
	if err != nil {
		return fail(err)
	}
	// Servers without the variable (MySQL 5.7, MariaDB before 10.5) log
	// minimal metadata.
	if res, err := conn.Execute("SELECT @@binlog_row_metadata"); err == nil {
		cat.full = strings.EqualFold(text(res, 0, 0), "FULL")
		res.Close()
	}
	if cat.refused, _, err = unreadableTables(conn, cfg, cat.full); err != nil {
		return fail(fmt.Errorf("read the captured tables' columns: %w", err))
	}
	for _, id := range slices.Sorted(maps.Keys(cat.refused)) {
		log.Error("table left out: it has a column strait cannot read (producer check names it too)", "table", id,
			"err", cat.refused[id], "fix", "source.exclude: "+id)
	}
	m.tablesRefused.Set(float64(len(cat.refused)))
	return assemble(cfg, log, m, q, cat, serverID, keys), nil
}

// assemble builds a Reader around its query connection q and catalog cat:
// the stream, and the snapshotter watching it.
func assemble(cfg *Config, log *slog.Logger, m *Metrics, q *queries, cat *catalog, serverID uint32, keys map[string][]string) *Reader {
	cat.history.serverID = serverID
	var d *dialer
	if q != nil {
		d = q.dialer
	}
	columns := newColumnPolicy(cfg)
	sn := newSnapshotter(cfg, log, m, q, d, cat.full, columns, keys)
	st := &stream{cfg: cfg, log: log, metrics: m, flavor: cat.flavor, dialer: d, catalog: cat, watcher: sn, serverID: serverID}
	return &Reader{cfg: cfg, log: log, q: q, catalog: cat, stream: st, snapshots: sn, columns: columns}
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
func (r *Reader) Refused() map[string]error { return r.catalog.refused }

// ServerID returns the source server's server_id.
func (r *Reader) ServerID() (uint32, error) { return r.q.serverID() }

// Current returns the server's current binlog position: where a reader with
// no checkpoint starts.
func (r *Reader) Current(ctx context.Context) (Start, error) { return r.q.current(ctx) }

// SetSchemaHistory gives the reader the schemas an earlier run recorded, by
// "database.table", as of the position Start is given: the history read
// with the checkpoint resumed from (history.go). Call before Start.
func (r *Reader) SetSchemaHistory(h map[string]*cdc.TableSchema) { r.catalog.history.byTable = h }

// ResetSchemaHistory voids entries an earlier run recorded for positions
// other than where this run starts (a configured start position): each is
// erased in the first transaction read. Call before Start.
func (r *Reader) ResetSchemaHistory(ids []string) { r.catalog.history.reset(ids) }

// CapturedTables lists the tables the configuration captures, sorted.
func (r *Reader) CapturedTables(ctx context.Context) ([]string, error) {
	return r.catalog.capturedTables()
}

// KeyedTables returns which of tables (database.table) have a primary key
// now, in one query: whose topics can be created compacted ahead of their
// first change (kafka.Writer.CreateTableTopics).
func (r *Reader) KeyedTables(ctx context.Context, tables []string) (map[string]bool, error) {
	return r.catalog.keyedTables(tables)
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
	up := startCatchUp(ctx, r.Current, atCurrent, r.log)
	if !r.catalog.full && s.File != "" {
		// A binlog file:pos of this server: the schemas of the captured
		// tables can be pinned to it (history.go).
		if err := r.catalog.snapshotSchemas(ctx, binlogPos{file: s.File, pos: s.Pos}); err != nil {
			r.log.Warn("schemas not recorded at the start; each is read when its table's rows come", "at", s.String(), "err", err)
		}
	}
	return r.stream.start(s, up)
}

// Available reports whether the server still has the binlog to stream from
// s (not purged, and a position or GTID set this server knows). The server
// decides: a replication stream is opened at s and closed again as soon as
// the server answers with its first event or refuses with "could not find"
// (error 1236). Call before Start.
func (r *Reader) Available(ctx context.Context, s Start) (bool, error) {
	return r.stream.available(ctx, s)
}

// Close stops the stream and closes the connections.
func (r *Reader) Close() {
	r.stream.close()
	r.snapshots.Close()
	r.q.conn.Close()
	r.q.dialer.Close()
}

// ReadTx reads the next whole transaction into tx (reusing its memory). A
// transaction without captured changes still returns, so the caller's
// position advances; a heartbeat returns with tx.Heartbeat set. Its events'
// tables and rows are as source.columns publishes them.
//
// A snapshot chunk due goes out in place of the stream's next transaction,
// as a transaction of its own: at the start, and where the stream is
// between transactions with nothing read yet.
func (r *Reader) ReadTx(ctx context.Context, tx *Tx) (err error) {
	defer func() {
		if err == nil {
			err = r.columns.applyTx(tx)
		}
	}()
	r.stream.reset(tx)
	if published, err := r.snapshotStep(ctx, tx); err != nil || published {
		r.catalog.history.drain(tx)
		return err
	}
	for {
		step, err := r.stream.next(ctx, tx)
		switch {
		case err != nil:
			return err
		case step == stepDone:
			r.catalog.history.drain(tx)
			return nil
		case step == stepBetween && r.snapshots.active():
			if published, err := r.snapshotStep(ctx, tx); err != nil || published {
				r.catalog.history.drain(tx)
				return err
			}
		}
	}
}

// snapshotStep lets the snapshotter publish into tx what is due, only
// between whole source transactions (Snapshotter.Publish).
func (r *Reader) snapshotStep(ctx context.Context, tx *Tx) (bool, error) {
	at, ok := r.stream.between()
	if !ok {
		return false, nil
	}
	return r.snapshots.Publish(ctx, tx, at)
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
