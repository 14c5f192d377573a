package binlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// A column's binlog shape: the TABLE_MAP type and metadata, plus what the
// decoder needs beyond cdc.Column (charset, fixed binary width).
type colInfo struct {
	binType  byte   // real MySQL type after unpacking ENUM/SET/STRING
	charset  string // "" for non-character columns, "binary" for binary strings
	fixedLen int    // BINARY(n): the binlog drops trailing zero bytes; we pad them back
	// What decode.go reads a value's bytes with: the TABLE_MAP metadata,
	// the declared byte length of CHAR/VARCHAR/BINARY columns, and whether
	// an integer column is UNSIGNED.
	meta     uint16
	length   int
	unsigned bool
	kind     sqlKind // MariaDB's UUID, INET4, INET6, JSON (kinds.go)
}

// tableInfo is a cdc.Table plus the per-column decode information.
type tableInfo struct {
	table *cdc.Table
	cols  []colInfo
	// key is what a snapshot reads the table in order of and matches the
	// stream's changes by (snapshot.go): the primary key, or the unique
	// key source.snapshot_keys names; empty: the table is read whole.
	// Set on the snapshot's own schema only (snapshotInfo).
	key []int
}

// realType unpacks the type hidden in MYSQL_TYPE_STRING's metadata (ENUM,
// SET and CHAR share it on the wire) and returns the real type and, for
// strings, the declared byte length.
func realType(tp byte, meta uint16) (byte, int) {
	if tp != mysql.MYSQL_TYPE_STRING {
		return tp, int(meta)
	}
	if meta >= 256 {
		b0, b1 := byte(meta>>8), byte(meta&0xFF)
		if b0&0x30 != 0x30 {
			return b0 | 0x30, int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
		}
		return b0, int(b1)
	}
	return tp, int(meta)
}

// column maps one binlog column to its canonical type. sqlType is the DDL
// type when known (information_schema), used for documentation and for
// MariaDB's JSON, which travels as LONGTEXT.
func column(name string, tp byte, meta uint16, unsigned bool, charset string, nullable bool, values []string) (cdc.Column, colInfo, error) {
	rt, length := realType(tp, meta)
	c := cdc.Column{Name: name, Nullable: nullable, Values: values}
	if rt == mysql.MYSQL_TYPE_YEAR {
		unsigned = true // as full row metadata marks it; information_schema's COLUMN_TYPE does not say
	}
	ci := colInfo{binType: rt, charset: charset, meta: meta, length: length, unsigned: unsigned}
	switch rt {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_YEAR:
		c.Type = cdc.TypeInt32
	case mysql.MYSQL_TYPE_LONG:
		c.Type = cdc.TypeInt32
		if unsigned {
			c.Type = cdc.TypeInt64
		}
	case mysql.MYSQL_TYPE_LONGLONG:
		c.Type = cdc.TypeInt64
		if unsigned {
			c.Type = cdc.TypeUint64
		}
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		c.Type, c.Precision, c.Scale = cdc.TypeDecimal, int(meta>>8), int(meta&0xFF)
	case mysql.MYSQL_TYPE_FLOAT:
		c.Type = cdc.TypeFloat32
	case mysql.MYSQL_TYPE_DOUBLE:
		c.Type = cdc.TypeFloat64
	case mysql.MYSQL_TYPE_BIT:
		c.Length = int(meta>>8)*8 + int(meta&0xFF)
		c.Type = cdc.TypeBits
		if c.Length == 1 {
			c.Type = cdc.TypeBool
		}
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		c.Type = cdc.TypeDate
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		c.Type = cdc.TypeTime
		if rt == mysql.MYSQL_TYPE_TIME2 {
			c.Scale = int(meta)
		}
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		c.Type = cdc.TypeDateTime
		if rt == mysql.MYSQL_TYPE_DATETIME2 {
			c.Scale = int(meta)
		}
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		c.Type = cdc.TypeTimestamp
		if rt == mysql.MYSQL_TYPE_TIMESTAMP2 {
			c.Scale = int(meta)
		}
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		c.Type = cdc.TypeString
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING,
		mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB:
		switch {
		case charset == "binary":
			c.Type = cdc.TypeBytes
			if rt == mysql.MYSQL_TYPE_STRING {
				ci.fixedLen = length
			}
		case charset == "":
			return c, ci, fmt.Errorf("column %s: no character set known for a %s column", name, typeName(rt))
		default:
			if _, err := decoderFor(charset); err != nil {
				return c, ci, fmt.Errorf("column %s: %w", name, err)
			}
			c.Type = cdc.TypeString
		}
	case mysql.MYSQL_TYPE_JSON:
		c.Type = cdc.TypeJSON
	case mysql.MYSQL_TYPE_GEOMETRY:
		c.Type = cdc.TypeGeometry
	default:
		return c, ci, fmt.Errorf("column %s: binlog type %d (%s) has no mapping", name, rt, typeName(rt))
	}
	return c, ci, nil
}

func typeName(tp byte) string {
	names := map[byte]string{
		mysql.MYSQL_TYPE_VECTOR: "VECTOR", mysql.MYSQL_TYPE_NULL: "NULL", mysql.MYSQL_TYPE_BLOB: "BLOB/TEXT",
		mysql.MYSQL_TYPE_STRING: "CHAR/BINARY", mysql.MYSQL_TYPE_VARCHAR: "VARCHAR/VARBINARY",
	}
	if n, ok := names[tp]; ok {
		return n
	}
	return "type " + strconv.Itoa(int(tp))
}

// fromTableMap builds the schema from a TABLE_MAP event carrying full row
// metadata (binlog_row_metadata=FULL): names, signedness, charsets, ENUM/SET
// labels and the primary key all come with the event, so the schema is exact
// for that event whatever DDL ran since.
//
// kinds names the columns of a kind the event cannot tell (kinds.go); nil
// when none is known.
func fromTableMap(e *replication.TableMapEvent, charsets map[uint64]string, kinds map[string]sqlKind) (*tableInfo, error) {
	names := e.ColumnNameString()
	unsigned := e.UnsignedMap()
	collations := e.CollationMap()
	enumSetColl := e.EnumSetCollationMap()
	enums, sets := e.EnumStrValueMap(), e.SetStrValueMap()
	// Sized once: a catalog holds one per captured table.
	t := &cdc.Table{Database: string(e.Schema), Name: string(e.Table), Columns: make([]cdc.Column, 0, e.ColumnCount)}
	info := &tableInfo{table: t, cols: make([]colInfo, 0, e.ColumnCount)}
	for i := range int(e.ColumnCount) {
		_, nullable := e.Nullable(i)
		coll, ok := collations[i]
		if !ok {
			coll = enumSetColl[i]
		}
		cs := ""
		if e.IsCharacterColumn(i) || e.IsEnumOrSetColumn(i) {
			cs = charsets[coll]
			if cs == "" {
				return nil, fmt.Errorf("table %s.%s column %s: unknown collation id %d", t.Database, t.Name, names[i], coll)
			}
		}
		values := enums[i]
		if values == nil {
			values = sets[i]
		}
		c, ci, err := column(names[i], e.ColumnType[i], e.ColumnMeta[i], unsigned[i], cs, nullable, values)
		if err == nil {
			err = applyKind(&c, &ci, kinds[names[i]])
		}
		if err != nil {
			return nil, fmt.Errorf("table %s.%s: %w", t.Database, t.Name, err)
		}
		t.Columns = append(t.Columns, c)
		info.cols = append(info.cols, ci)
	}
	for _, k := range e.PrimaryKey {
		t.PrimaryKey = append(t.PrimaryKey, int(k))
	}
	return info, nil
}

// Without full row metadata (binlog_row_metadata=MINIMAL, or MySQL 5.7) a
// TABLE_MAP event carries only column types, so names, signedness, charsets,
// ENUM labels and the primary key come from elsewhere: from the schema
// history when it knows the table (history.go), else from information_schema.
// That describes the table as it is now, while the rows being decoded may be
// older than a DDL that already ran (the reader lags, or restarts at an older
// position). Checking the TABLE_MAP's column count and types against it
// (fromSchema) catches added, dropped and retyped columns, but not a rename
// or a swap of same-typed columns, nor a change of signedness or character
// set: those would be silently mis-decoded.
//
// So the race is closed by position, exactly and without buffering:
//
//  1. A table's schema is (re)read only at a TABLE_MAP the cache and the
//     history cannot serve: first sight, or after a DDL touching the table
//     was read whose result could not be pinned down (see history.go).
//  2. Right after reading information_schema the reader reads the server's
//     binlog position P (SHOW MASTER STATUS). A DDL visible in
//     information_schema is already in the binlog before P: the server
//     writes the statement to the binlog while it still holds the table's
//     exclusive metadata lock, and reading the table's columns waits for it.
//  3. The reader scans the binlog from the rows event up to P (SHOW BINLOG
//     EVENTS, the reader's own query connection). No DDL touching the table
//     in that range means information_schema showed the table exactly as it
//     was at the rows event, and the schema is used (and recorded in the
//     history) until the reader itself reaches the next DDL touching the
//     table. A DDL in the range means the rows predate a change strait
//     cannot undo: the table's rows stop the producer with an error naming
//     the table, the row position and the DDL, before anything of that
//     transaction is published.
//
// Limits, honestly: the scan reads the binlog between the reader and the
// server's head once (the DDL found is kept until the reader passes it: see
// lookahead), which after a long outage is a long read; any DDL touching the
// table in the window stops the producer, even one that changes no column
// (ADD INDEX), because telling them apart would need a SQL parser; and a
// statement strait does not recognise counts as touching every table (see
// parseDDL). The schema history makes the window rare — it opens only for a
// table the history does not know at the resume point — and
// binlog_row_metadata=FULL closes it: every TABLE_MAP is then
// self-describing and none of this runs.
func (c *catalog) fromInformationSchema(ctx context.Context, e *replication.TableMapEvent, rows binlogPos) (*tableInfo, error) {
	db, name := string(e.Schema), string(e.Table)
	s, err := c.pinSchema(ctx, db, name, rows)
	var ahead *aheadDDL
	if errors.As(err, &ahead) {
		return nil, fmt.Errorf("table %s.%s: these rows were written before %q (ending at %s) changed the table, and without binlog_row_metadata=FULL their columns cannot be known (information_schema shows the table after the change, and the schema history does not know the table at this position): set binlog_row_metadata=FULL on the source for binlogs written from then on, or restart with source.start_position=%s and re-snapshot the table", db, name, ahead.stmt, ahead.at, ahead.at)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s.%s at %s: %w", db, name, rows, err)
	}
	info, err := fromSchema(s, e)
	if err != nil {
		return nil, err
	}
	c.history.record(s)
	return info, nil
}

// pinSchema reads the schema of db.table from information_schema and proves
// it is the schema in force at position at: no DDL touching the table lies
// between at and the server's head read after it. It returns an *aheadDDL
// error naming such a DDL, and a schema with no columns when the table does
// not exist.
func (c *catalog) pinSchema(ctx context.Context, db, table string, at binlogPos) (*cdc.TableSchema, error) {
	if err := c.q.live(ctx); err != nil {
		return nil, err
	}
	s, err := readSchema(c.q.conn, db, table)
	if err != nil {
		return nil, err
	}
	head, err := c.q.current(ctx)
	if err != nil {
		return nil, err
	}
	d, err := c.ahead.find(c.q.conn, db, table, at, binlogPos{file: head.File, pos: head.Pos})
	if err != nil {
		return nil, err
	}
	if d != nil {
		return nil, d
	}
	s.File, s.Pos = at.file, at.pos
	return s, nil
}

// readSchema reads a table's columns and primary key from information_schema
// (no columns: the table does not exist).
func readSchema(conn *client.Conn, db, table string) (*cdc.TableSchema, error) {
	m, err := readSchemas(conn, "TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, table)
	if err != nil {
		return nil, fmt.Errorf("read schema of %s.%s: %w", db, table, err)
	}
	if s := m[db+"."+table]; s != nil {
		return s, nil
	}
	return &cdc.TableSchema{Database: db, Table: table}, nil
}

// readSchemas reads the columns and primary keys of the tables selected by
// a condition on TABLE_SCHEMA and TABLE_NAME, by "database.table".
func readSchemas(conn *client.Conn, where string, args ...any) (map[string]*cdc.TableSchema, error) {
	r, err := conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COALESCE(CHARACTER_SET_NAME, ''), DATA_TYPE
		FROM information_schema.COLUMNS WHERE `+where+` ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := map[string]*cdc.TableSchema{}
	get := func(db, table string) *cdc.TableSchema {
		s := out[db+"."+table]
		if s == nil {
			s = &cdc.TableSchema{Database: db, Table: table}
			out[db+"."+table] = s
		}
		return s
	}
	var json map[string]bool
	for i := range r.RowNumber() {
		s := get(text(r, i, 0), text(r, i, 1))
		sc := cdc.SchemaColumn{Name: text(r, i, 2), ColumnType: text(r, i, 3),
			Nullable: text(r, i, 4) == "YES", Charset: text(r, i, 5), DataType: text(r, i, 6)}
		if sc.DataType == "longtext" && sc.Charset != "" {
			if json == nil {
				json = jsonColumns(conn)
			}
			if json[s.Database+"."+s.Table+"."+sc.Name] {
				sc.DataType = "json" // MariaDB's JSON; with a character set, unlike MySQL's (kindOf)
			}
		}
		s.Columns = append(s.Columns, sc)
	}
	tables, err := conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_COLLATION, '') FROM information_schema.TABLES WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	defer tables.Close()
	for i := range tables.RowNumber() {
		if s := out[text(tables, i, 0)+"."+text(tables, i, 1)]; s != nil {
			s.DefaultCharset = charsetOfCollation(text(tables, i, 2))
		}
	}
	keys, err := conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE INDEX_NAME = 'PRIMARY' AND `+where+` ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX`, args...)
	if err != nil {
		return nil, fmt.Errorf("primary keys: %w", err)
	}
	defer keys.Close()
	for i := range keys.RowNumber() {
		if s := out[text(keys, i, 0)+"."+text(keys, i, 1)]; s != nil {
			s.PrimaryKey = append(s.PrimaryKey, text(keys, i, 2))
		}
	}
	return out, nil
}

// fromSchema builds the decoding schema of a TABLE_MAP event without full
// metadata from s, checked against the event: its column count and types
// are authoritative, and a schema that disagrees with them is an error
// naming the column, never a silent mis-decode.
func fromSchema(s *cdc.TableSchema, e *replication.TableMapEvent) (*tableInfo, error) {
	db, name := string(e.Schema), string(e.Table)
	if len(s.Columns) != int(e.ColumnCount) {
		return nil, fmt.Errorf("table %s.%s: the binlog event has %d columns but the schema (from information_schema) has %d: the table changed since this event; enable binlog_row_metadata=FULL (or restart from a position after the DDL)", db, name, e.ColumnCount, len(s.Columns))
	}
	t := &cdc.Table{Database: db, Name: name}
	info := &tableInfo{table: t}
	index := map[string]int{}
	for i, sc := range s.Columns {
		unsigned := strings.Contains(sc.ColumnType, "unsigned")
		var values []string
		if sc.DataType == "enum" || sc.DataType == "set" {
			values = parseEnumValues(sc.ColumnType)
		}
		c, ci, err := column(sc.Name, e.ColumnType[i], e.ColumnMeta[i], unsigned, schemaCharset(sc), sc.Nullable, values)
		if err == nil {
			err = applyKind(&c, &ci, kindOf(sc))
		}
		if err != nil {
			return nil, fmt.Errorf("table %s.%s: %w", db, name, err)
		}
		if want := expectedBinlogType(sc.DataType); want != 0 && want != ci.binType && !(want == mysql.MYSQL_TYPE_BLOB && ci.binType == mysql.MYSQL_TYPE_STRING) {
			return nil, fmt.Errorf("table %s.%s column %s: the schema (from information_schema) says %s but the binlog event carries type %d: the table changed since this event; enable binlog_row_metadata=FULL", db, name, sc.Name, sc.ColumnType, ci.binType)
		}
		if c.SQLType == "" {
			c.SQLType = sc.ColumnType
		}
		index[sc.Name] = i
		t.Columns = append(t.Columns, c)
		info.cols = append(info.cols, ci)
	}
	var err error
	if t.PrimaryKey, err = keyIndexes(s, index); err != nil {
		return nil, err
	}
	return info, nil
}

// expectedBinlogType is the binlog type a column of this DATA_TYPE is logged
// with (0 when several are possible).
func expectedBinlogType(dataType string) byte {
	switch dataType {
	case "tinyint":
		return mysql.MYSQL_TYPE_TINY
	case "smallint":
		return mysql.MYSQL_TYPE_SHORT
	case "mediumint":
		return mysql.MYSQL_TYPE_INT24
	case "int":
		return mysql.MYSQL_TYPE_LONG
	case "bigint":
		return mysql.MYSQL_TYPE_LONGLONG
	case "decimal":
		return mysql.MYSQL_TYPE_NEWDECIMAL
	case "float":
		return mysql.MYSQL_TYPE_FLOAT
	case "double":
		return mysql.MYSQL_TYPE_DOUBLE
	case "varchar", "varbinary":
		return mysql.MYSQL_TYPE_VARCHAR
	case "enum":
		return mysql.MYSQL_TYPE_ENUM
	case "set":
		return mysql.MYSQL_TYPE_SET
	}
	return 0
}

// parseEnumValues parses the labels of "enum('a','b”c')" or "set(...)".
func parseEnumValues(colType string) []string {
	open := strings.IndexByte(colType, '(')
	if open < 0 {
		return nil
	}
	s := colType[open+1:]
	var out []string
	for len(s) > 0 && s[0] == '\'' {
		var b strings.Builder
		i := 1
		for i < len(s) {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i += 2
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		out = append(out, b.String())
		s = s[min(i+1, len(s)):]
		s = strings.TrimLeft(s, ",")
	}
	return out
}

// loadCharsets reads the server's collation id → character set table, so a
// collation id in a TABLE_MAP event resolves exactly as on that server
// (MariaDB 10.10+ lists its UCA 14 collations only in the applicability view).
func loadCharsets(conn *client.Conn) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, q := range []string{
		"SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL",
		"SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY WHERE ID IS NOT NULL",
	} {
		r, err := conn.Execute(q)
		if err != nil {
			if len(out) > 0 {
				continue // the view has no ID column before MariaDB 10.10 (and none on MySQL)
			}
			return nil, fmt.Errorf("read collations: %w", err)
		}
		for i := range r.RowNumber() {
			id, _ := r.GetUint(i, 0)
			cs := text(r, i, 1)
			out[id] = cs
		}
		r.Close()
	}
	return out, nil
}

// keyIndexes returns the column indexes of s's primary key, given each
// column's index by name.
func keyIndexes(s *cdc.TableSchema, index map[string]int) ([]int, error) {
	var out []int
	for _, k := range s.PrimaryKey {
		i, ok := index[k]
		if !ok {
			return nil, fmt.Errorf("table %s: primary-key column %s is not among the columns", s.ID(), k)
		}
		out = append(out, i)
	}
	return out, nil
}
