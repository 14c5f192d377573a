package binlog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// catalog is what the stream knows of the source's tables: which are
// captured, the schema each TABLE_MAP event's table id decodes with, and
// the schema history (history.go). The stream asks it at every TABLE_MAP
// (tableMap) and tells it of every DDL (dropTables, schemaChanged); it
// reads what the events do not say on the query connection, with the
// stream's position handed in, so that a schema is pinned to where its
// rows are.
type catalog struct {
	cfg      *Config
	log      *slog.Logger
	q        *queries
	flavor   string
	charsets map[uint64]string
	full     bool                   // binlog_row_metadata=FULL: TABLE_MAPs name their columns
	refused  map[string]error       // captured tables left out: a column strait cannot read (Reader.Refused)
	tables   map[uint64]*tableState // by TABLE_MAP table id
	ids      map[string]uint64      // the current table id of each table, by database + "\x00" + table
	decoded  int                    // TABLE_MAP events decoded into a schema (tests)
	history  schemaHistory
	ahead    lookahead
	// goMySQL leaves rows events and TABLE_MAP metadata to go-mysql's
	// decoding (tests compare it with decode.go's and tablemap.go's).
	goMySQL bool
	// kept, when not nil, keeps the TABLE_MAP events schemas were built
	// from, by table id (tests compare them; the catalog needs only their
	// fixed part).
	kept map[uint64]*replication.TableMapEvent
}

// tableState is the schema a table id decodes with, and the TABLE_MAP it
// was built from.
type tableState struct {
	fixed    tableMapFixed // the TABLE_MAP this schema was built from
	meta     []byte        // and its optional metadata (tablemap.go)
	captured bool
	info     *tableInfo
	conv     *converter
	err      error // why the table cannot be decoded
}

// tableMap resolves the schema of the table an upcoming rows event refers to,
// read at position at. The cached schema is reused only when the event is
// identical to the one it was built from, so a schema change can never be
// missed. raw is the whole event, checksum the bytes of checksum ending it.
func (c *catalog) tableMap(ctx context.Context, e *replication.TableMapEvent, raw []byte, checksum int, at binlogPos) error {
	meta, err := optionalMeta(e, raw, checksum)
	if err != nil {
		return err
	}
	if st, ok := c.tables[e.TableID]; ok && bytes.Equal(st.meta, meta) && st.fixed.same(e) {
		return nil
	}
	// The server gives a table a new id whenever it opens it anew (FLUSH
	// TABLES; more tables written than its table definition cache holds,
	// 400 by default in MariaDB): the table's schema moves to the new id
	// when the TABLE_MAP is the same, and the old id is forgotten either
	// way, so that the catalog holds one entry per table, however many
	// ids the server hands out.
	name := string(e.Schema) + "\x00" + string(e.Table)
	if old, ok := c.ids[name]; ok && old != e.TableID {
		prev := c.tables[old]
		delete(c.tables, old)
		if prev != nil && bytes.Equal(prev.meta, meta) && prev.fixed.same(e) {
			c.tables[e.TableID], c.ids[name] = prev, e.TableID
			return nil
		}
	}
	c.ids[name] = e.TableID
	if !c.goMySQL {
		if e, err = withOptionalMeta(e, meta); err != nil {
			return err
		}
	}
	c.decoded++
	if c.kept != nil {
		c.kept[e.TableID] = e
	}
	db, name := string(e.Schema), string(e.Table)
	st := &tableState{fixed: fixedPart(e), meta: meta, captured: c.captured(db, name)}
	c.tables[e.TableID] = st
	if !st.captured {
		return nil
	}
	var info *tableInfo
	switch {
	case e.ColumnName != nil:
		info, err = fromTableMap(e, c.charsets, nil)
		if err == nil && c.flavor == mysql.MariaDBFlavor && slices.ContainsFunc(info.cols, func(ci colInfo) bool { return mayHaveKind(&ci) }) {
			var kinds map[string]sqlKind
			if kinds, err = columnKinds(c.q.conn, db, name); err == nil {
				info, err = fromTableMap(e, c.charsets, kinds)
			}
		}
	default:
		if info = c.fromHistory(e, at); info == nil {
			info, err = c.fromInformationSchema(ctx, e, at)
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

// tableMapFixed is the fixed part of a TABLE_MAP event: what is compared
// with the next TABLE_MAP of the table besides the optional metadata (kept
// as bytes next to it). The parsed event is not kept: with thousands of
// tables its column names and the rest of its metadata were a third of
// the catalog's memory.
type tableMapFixed struct {
	schema, table          string
	columnTypes, nullables string // the event's column types and NULL bitmap
	columnMeta             []uint16
}

func fixedPart(e *replication.TableMapEvent) tableMapFixed {
	return tableMapFixed{schema: string(e.Schema), table: string(e.Table), columnTypes: string(e.ColumnType),
		nullables: string(e.NullBitmap), columnMeta: slices.Clone(e.ColumnMeta)}
}

// same reports whether e's fixed part is f.
func (f *tableMapFixed) same(e *replication.TableMapEvent) bool {
	return e.ColumnCount == uint64(len(f.columnTypes)) && string(e.Schema) == f.schema && string(e.Table) == f.table &&
		string(e.ColumnType) == f.columnTypes && string(e.NullBitmap) == f.nullables && slices.Equal(e.ColumnMeta, f.columnMeta)
}

// dropTables forgets the schemas of the table ids a DDL with scope touches:
// the next TABLE_MAP of each rebuilds it.
func (c *catalog) dropTables(scope ddlScope) {
	for id, st := range c.tables {
		if scope.touches(st.fixed.schema, st.fixed.table) {
			delete(c.tables, id)
			delete(c.ids, st.fixed.schema+"\x00"+st.fixed.table)
		}
	}
}

// ddlCaptured reports whether a DDL is published: when it names a captured
// table, or changes a database that may hold captured tables, or is not
// recognised and runs in such a database. DDL of excluded tables stays out
// of Kafka (their column names included).
func (c *catalog) ddlCaptured(s ddlScope, defaultDB string) bool {
	for _, t := range s.tables {
		db, name, _ := strings.Cut(t, ".")
		if c.captured(db, name) {
			return true
		}
	}
	db := s.db
	if s.all {
		db = defaultDB
	}
	return db != "" && c.databaseCaptured(db)
}

// databaseCaptured reports whether some table of db may be captured.
func (c *catalog) databaseCaptured(db string) bool {
	if systemSchemas[db] {
		return false
	}
	if len(c.cfg.Include) == 0 {
		return true
	}
	for _, p := range c.cfg.Include {
		dbPattern, _, _ := strings.Cut(p, ".")
		if ok, _ := path.Match(dbPattern, db); ok {
			return true
		}
	}
	return false
}

// systemSchemas are never captured.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// captured reports whether db.table is captured: the configuration
// captures it and it is not refused.
func (c *catalog) captured(db, table string) bool {
	if len(c.refused) > 0 && c.refused[db+"."+table] != nil {
		return false
	}
	return Captures(c.cfg.Include, c.cfg.Exclude, db, table)
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

// keyedTables returns which of tables (database.table) have a primary key
// on the server, in one query (Reader.KeyedTables).
func (c *catalog) keyedTables(tables []string) (map[string]bool, error) {
	res, err := c.q.conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLE_CONSTRAINTS
		WHERE CONSTRAINT_TYPE = 'PRIMARY KEY' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')`)
	if err != nil {
		return nil, fmt.Errorf("list primary keys: %w", err)
	}
	defer res.Close()
	want := make(map[string]bool, len(tables))
	for _, t := range tables {
		want[t] = true
	}
	out := make(map[string]bool, len(tables))
	for i := range res.RowNumber() {
		if id := text(res, i, 0) + "." + text(res, i, 1); want[id] {
			out[id] = true
		}
	}
	return out, nil
}

// capturedTables lists the captured tables on the server, sorted
// (Reader.CapturedTables).
func (c *catalog) capturedTables() ([]string, error) {
	res, err := c.q.conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer res.Close()
	var out []string
	for i := range res.RowNumber() {
		if db, t := text(res, i, 0), text(res, i, 1); c.captured(db, t) {
			out = append(out, db+"."+t)
		}
	}
	slices.Sort(out)
	return out, nil
}
