package binlog

// history.go: the schema history. Without full row metadata a TABLE_MAP
// event names no columns, and information_schema shows a table as it is
// now, not as it was when older rows were written (see table.go). So the
// reader keeps, per captured table, the schema in force at its position —
// recorded when first pinned down and again after every DDL touching the
// table — and hands each new entry out with the transaction it belongs to
// (Tx.Schemas). The producer publishes the entries in the same Kafka
// transaction as the checkpoint that covers them (<prefix>._schema_history),
// and a restart gives them back (SetSchemaHistory): rows written before a
// DDL that ran while the producer was stopped, or before a crash, decode
// with the schema of their time. With binlog_row_metadata=FULL every event
// describes itself and the history stays empty.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// schemaHistory is the schema in force, per captured table, at the
// stream's position, and the entries recorded for the transaction being
// read. The catalog keeps it up to date; the Reader hands the entries out
// (drain).
type schemaHistory struct {
	byTable  map[string]*cdc.TableSchema // by "db.table"
	pending  []cdc.TableSchema           // entries for the transaction being read
	serverID uint32                      // the source's, stamped on each entry
}

// reset voids the entries of tables ids: each is erased in the first
// transaction read (Reader.ResetSchemaHistory).
func (h *schemaHistory) reset(ids []string) {
	for _, id := range ids {
		db, table, _ := strings.Cut(id, ".")
		h.pending = append(h.pending, cdc.TableSchema{Database: db, Table: table})
	}
}

// record makes s the schema of its table from the stream's position on.
func (h *schemaHistory) record(s *cdc.TableSchema) {
	s.ServerID = h.serverID
	h.byTable[s.ID()] = s
	h.pending = append(h.pending, *s)
}

// forget erases a table's entry at position at: its schema is looked up
// again when its rows come.
func (h *schemaHistory) forget(id string, at binlogPos) {
	if s, ok := h.byTable[id]; ok {
		delete(h.byTable, id)
		h.pending = append(h.pending, cdc.TableSchema{Database: s.Database, Table: s.Table, ServerID: h.serverID, File: at.file, Pos: at.pos})
	}
}

// drain moves the entries recorded so far into tx.
func (h *schemaHistory) drain(tx *Tx) {
	tx.Schemas = append(tx.Schemas, h.pending...)
	h.pending = h.pending[:0]
}

// fromHistory returns the decoding schema of e from the history, or nil
// when the history does not know the table or disagrees with the event
// (then the information_schema path runs, with its own checks).
func (c *catalog) fromHistory(e *replication.TableMapEvent, at binlogPos) *tableInfo {
	s := c.history.byTable[string(e.Schema)+"."+string(e.Table)]
	if s == nil {
		return nil
	}
	info, err := fromSchema(s, e)
	if err != nil {
		c.log.Warn("schema history disagrees with the binlog; reading information_schema", "table", s.ID(), "at", at.String(), "err", err)
		c.history.forget(s.ID(), at)
		return nil
	}
	return info
}

// schemaChanged brings the history past a DDL q (default database
// defaultDB) with scope, read at the stream's position at: each captured table
// the statement names, and each known table it may have touched, gets the
// schema it has right after the statement — its recorded schema with the
// statement applied (alter.go), or else read from information_schema and
// pinned to this position by the look-ahead (no later DDL of the table up
// to the server's head) — or, when neither can tell, no entry.
func (c *catalog) schemaChanged(ctx context.Context, scope ddlScope, q, defaultDB string, at binlogPos) {
	ids := map[string]bool{}
	if !c.full {
		for _, t := range scope.tables {
			if db, table, _ := strings.Cut(t, "."); c.captured(db, table) {
				ids[t] = true
			}
		}
	}
	for id, s := range c.history.byTable {
		if scope.touches(s.Database, s.Table) {
			ids[id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		db, table, _ := strings.Cut(id, ".")
		if c.full {
			c.history.forget(id, at)
			continue
		}
		if before := c.history.byTable[id]; before != nil && len(before.Columns) > 0 {
			after, err := applyAlter(before, q, defaultDB, c.flavor == mysql.MariaDBFlavor)
			if err == nil {
				after.File, after.Pos = at.file, at.pos
				c.history.record(after)
				continue
			}
			c.log.Debug("DDL not applied to the recorded schema; reading information_schema", "table", id, "at", at.String(), "err", err)
		}
		s, err := c.pinSchema(ctx, db, table, at)
		var ahead *aheadDDL
		switch {
		case errors.As(err, &ahead) || (err == nil && len(s.Columns) == 0): // changed again later, or gone
			c.history.forget(id, at)
		case err != nil:
			c.log.Warn("schema after DDL not recorded; it is read when the table's rows come", "table", id, "at", at.String(), "err", err)
			c.history.forget(id, at)
		default:
			c.history.record(s)
		}
	}
}

// snapshotSchemas records, at the start position at, the schema of every
// captured table the history does not know: so that a table whose first
// rows come after a DDL (read after a restart) still decodes with the
// schema of its rows' time. Tables with a DDL between at and the server's
// head are left to the information_schema path.
func (c *catalog) snapshotSchemas(ctx context.Context, at binlogPos) error {
	if err := c.q.live(ctx); err != nil {
		return err
	}
	all, err := readSchemas(c.q.conn, `TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		AND (TABLE_SCHEMA, TABLE_NAME) IN (SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE')`)
	if err != nil {
		return err
	}
	head, err := c.q.current(ctx)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(all)) {
		s := all[id]
		if _, known := c.history.byTable[id]; known || !c.captured(s.Database, s.Table) {
			continue
		}
		d, err := c.ahead.find(c.q.conn, s.Database, s.Table, at, binlogPos{file: head.File, pos: head.Pos})
		if err != nil {
			return fmt.Errorf("table %s: %w", id, err)
		}
		if d == nil {
			s.File, s.Pos = at.file, at.pos
			c.history.record(s)
		}
	}
	return nil
}
