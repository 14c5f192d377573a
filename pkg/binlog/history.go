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

// SetSchemaHistory gives the reader the schemas an earlier run recorded, by
// "database.table", as of the position Start is given: the history read
// with the checkpoint resumed from. Call before Start.
func (r *Reader) SetSchemaHistory(h map[string]*cdc.TableSchema) {
	r.history = h
}

// ResetSchemaHistory voids entries an earlier run recorded for positions
// other than where this run starts (a configured start position): each is
// erased in the first transaction read. Call before Start.
func (r *Reader) ResetSchemaHistory(ids []string) {
	for _, id := range ids {
		db, table, _ := strings.Cut(id, ".")
		r.pending = append(r.pending, cdc.TableSchema{Database: db, Table: table})
	}
}

// record makes s the schema of its table from the reader's position on.
func (r *Reader) record(s *cdc.TableSchema) {
	s.ServerID = r.serverID
	r.history[s.ID()] = s
	r.pending = append(r.pending, *s)
}

// forget erases a table's history entry: its schema is looked up again
// when its rows come.
func (r *Reader) forget(id string) {
	if s, ok := r.history[id]; ok {
		delete(r.history, id)
		r.pending = append(r.pending, cdc.TableSchema{Database: s.Database, Table: s.Table, ServerID: r.serverID, File: r.file, Pos: r.pos})
	}
}

// fromHistory returns the decoding schema of e from the history, or nil
// when the history does not know the table or disagrees with the event
// (then the information_schema path runs, with its own checks).
func (r *Reader) fromHistory(e *replication.TableMapEvent) *tableInfo {
	s := r.history[string(e.Schema)+"."+string(e.Table)]
	if s == nil {
		return nil
	}
	info, err := fromSchema(s, e)
	if err != nil {
		r.log.Warn("schema history disagrees with the binlog; reading information_schema", "table", s.ID(), "at", binlogPos{r.file, r.pos}.String(), "err", err)
		r.forget(s.ID())
		return nil
	}
	return info
}

// schemaChanged brings the history past a DDL q (default database
// defaultDB) with scope, read at the reader's position: each captured table
// the statement names, and each known table it may have touched, gets the
// schema it has right after the statement — its recorded schema with the
// statement applied (alter.go), or else read from information_schema and
// pinned to this position by the look-ahead (no later DDL of the table up
// to the server's head) — or, when neither can tell, no entry.
func (r *Reader) schemaChanged(ctx context.Context, scope ddlScope, q, defaultDB string) {
	ids := map[string]bool{}
	if !r.full {
		for _, t := range scope.tables {
			if db, table, _ := strings.Cut(t, "."); r.captured(db, table) {
				ids[t] = true
			}
		}
	}
	for id, s := range r.history {
		if scope.touches(s.Database, s.Table) {
			ids[id] = true
		}
	}
	at := binlogPos{file: r.file, pos: r.pos}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		db, table, _ := strings.Cut(id, ".")
		if r.full {
			r.forget(id)
			continue
		}
		if before := r.history[id]; before != nil && len(before.Columns) > 0 {
			after, err := applyAlter(before, q, defaultDB, r.flavor == mysql.MariaDBFlavor)
			if err == nil {
				after.File, after.Pos = at.file, at.pos
				r.record(after)
				continue
			}
			r.log.Debug("DDL not applied to the recorded schema; reading information_schema", "table", id, "at", at.String(), "err", err)
		}
		s, err := r.pinSchema(ctx, db, table, at)
		var ahead *aheadDDL
		switch {
		case errors.As(err, &ahead) || (err == nil && len(s.Columns) == 0): // changed again later, or gone
			r.forget(id)
		case err != nil:
			r.log.Warn("schema after DDL not recorded; it is read when the table's rows come", "table", id, "at", at.String(), "err", err)
			r.forget(id)
		default:
			r.record(s)
		}
	}
}

// snapshotSchemas records, at the start position at, the schema of every
// captured table the history does not know: so that a table whose first
// rows come after a DDL (read after a restart) still decodes with the
// schema of its rows' time. Tables with a DDL between at and the server's
// head are left to the information_schema path.
func (r *Reader) snapshotSchemas(ctx context.Context, at binlogPos) error {
	if err := r.liveQueries(ctx); err != nil {
		return err
	}
	all, err := readSchemas(r.conn, `TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		AND (TABLE_SCHEMA, TABLE_NAME) IN (SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE')`)
	if err != nil {
		return err
	}
	head, err := r.Current(ctx)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(all)) {
		s := all[id]
		if _, known := r.history[id]; known || !r.captured(s.Database, s.Table) {
			continue
		}
		d, err := r.ahead.find(r.conn, s.Database, s.Table, at, binlogPos{file: head.File, pos: head.Pos})
		if err != nil {
			return fmt.Errorf("table %s: %w", id, err)
		}
		if d == nil {
			s.File, s.Pos = at.file, at.pos
			r.record(s)
		}
	}
	return nil
}
