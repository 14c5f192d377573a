package binlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Snapshot reads: a table's rows read with SELECT, in primary-key chunks,
// decoded into exactly the cdc.Table and cdc.Values the binlog path produces
// for the same rows, so a snapshot row and a streamed row of the same table
// share one Avro schema (one registry id) and compare equal value by value.
//
// By construction rather than by a second mapping:
//   - snapshotInfo synthesizes, from information_schema alone, the binlog
//     type and metadata the server writes in a TABLE_MAP event for each
//     column, and builds the schema with column(), as the stream does.
//   - readChunk reads rows with the binary protocol (a prepared statement:
//     FLOAT and DOUBLE arrive as their exact bits, not as text) and turns
//     each cell into the value the stream's conversion makes of the same
//     column value (snapshotValue): ENUM and SET are selected as col+0, the
//     index and bitmap the binlog logs; temporal values are taken in their
//     binary-protocol form, unformatted (rawTemporals: go-mysql would
//     format them with fmt, a third of a chunk's decoding time); text and
//     decimal digits are cut from a per-chunk arena (textArena).
//
// The session (snapshotConn) must read TIMESTAMPs in UTC, return column
// bytes unconverted (character_set_results = NULL: text is decoded with the
// column's own character set, like the binlog's) and is read-only.

// snapshotInfo builds the decoding schema of a table without a TABLE_MAP
// event, from information_schema alone. With full it equals what
// fromTableMap builds from a TABLE_MAP with full row metadata (no SQLType);
// without, what fromSchema builds (SQLType = COLUMN_TYPE).
//
// Two colInfo details information_schema cannot tell, neither used when
// decoding: columns still in the pre-5.6 temporal format (tables not
// rebuilt since MySQL 5.5 / MariaDB 10.0) are taken to be in the current
// one (their cdc.Column is the same either way), and geometry columns get
// the "binary" character set, as MariaDB's full metadata gives them
// (MySQL's gives none).
func snapshotInfo(s *cdc.TableSchema, full bool) (*tableInfo, error) {
	if len(s.Columns) == 0 {
		return nil, fmt.Errorf("table %s.%s: no columns (the table does not exist)", s.Database, s.Table)
	}
	t := &cdc.Table{Database: s.Database, Name: s.Table}
	info := &tableInfo{table: t}
	index := map[string]int{}
	for i, sc := range s.Columns {
		tp, meta, err := binlogTypeOf(sc)
		if err != nil {
			return nil, fmt.Errorf("table %s.%s column %s: %w", s.Database, s.Table, sc.Name, err)
		}
		cs := schemaCharset(sc)
		if tp != mysql.MYSQL_TYPE_STRING && tp != mysql.MYSQL_TYPE_VARCHAR && tp != mysql.MYSQL_TYPE_BLOB && tp != mysql.MYSQL_TYPE_GEOMETRY {
			cs = "" // numbers, temporals, MySQL's JSON: no character set in a TABLE_MAP
		}
		var values []string
		if sc.DataType == "enum" || sc.DataType == "set" {
			values = parseEnumValues(sc.ColumnType)
		}
		c, ci, err := column(sc.Name, tp, meta, strings.Contains(sc.ColumnType, "unsigned"), cs, sc.Nullable, values)
		if err == nil {
			err = applyKind(&c, &ci, kindOf(sc))
		}
		if err != nil {
			return nil, fmt.Errorf("table %s.%s: %w", s.Database, s.Table, err)
		}
		if !full && c.SQLType == "" {
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
	info.key = t.PrimaryKey
	return info, nil
}

// binlogTypeOf returns the type and metadata a TABLE_MAP event carries for
// a column, as go-mysql decodes them, from its DATA_TYPE and COLUMN_TYPE.
// MariaDB 10.1+ and MySQL 5.6+ log temporal types in their "2" formats.
func binlogTypeOf(sc cdc.SchemaColumn) (byte, uint16, error) {
	args := typeArgs(sc.ColumnType)
	arg := func(i int) int {
		if i < len(args) {
			return args[i]
		}
		return 0
	}
	switch sc.DataType {
	case "tinyint":
		return mysql.MYSQL_TYPE_TINY, 0, nil
	case "smallint":
		return mysql.MYSQL_TYPE_SHORT, 0, nil
	case "mediumint":
		return mysql.MYSQL_TYPE_INT24, 0, nil
	case "int":
		return mysql.MYSQL_TYPE_LONG, 0, nil
	case "bigint":
		return mysql.MYSQL_TYPE_LONGLONG, 0, nil
	case "year":
		return mysql.MYSQL_TYPE_YEAR, 0, nil
	case "decimal":
		p, sc := arg(0), arg(1)
		if len(args) == 0 {
			p = 10 // DECIMAL without arguments is DECIMAL(10,0)
		}
		return mysql.MYSQL_TYPE_NEWDECIMAL, uint16(p)<<8 | uint16(sc), nil
	case "float":
		return mysql.MYSQL_TYPE_FLOAT, 4, nil
	case "double":
		return mysql.MYSQL_TYPE_DOUBLE, 8, nil
	case "bit":
		n := arg(0)
		if len(args) == 0 {
			n = 1
		}
		return mysql.MYSQL_TYPE_BIT, uint16(n/8)<<8 | uint16(n%8), nil
	case "date":
		return mysql.MYSQL_TYPE_DATE, 0, nil
	case "time":
		return mysql.MYSQL_TYPE_TIME2, uint16(arg(0)), nil
	case "datetime":
		return mysql.MYSQL_TYPE_DATETIME2, uint16(arg(0)), nil
	case "timestamp":
		return mysql.MYSQL_TYPE_TIMESTAMP2, uint16(arg(0)), nil
	case "char", "binary":
		n := arg(0)
		if len(args) == 0 {
			n = 1
		}
		return mysql.MYSQL_TYPE_STRING, stringMeta(mysql.MYSQL_TYPE_STRING, n*maxBytesPerChar(sc.Charset)), nil
	case "varchar", "varbinary":
		return mysql.MYSQL_TYPE_VARCHAR, uint16(arg(0) * maxBytesPerChar(sc.Charset)), nil
	case "enum":
		n := len(parseEnumValues(sc.ColumnType))
		return mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_ENUM)<<8 | uint16(1+n/256), nil
	case "set":
		n := (len(parseEnumValues(sc.ColumnType)) + 7) / 8
		if n > 4 {
			n = 8
		}
		return mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_SET)<<8 | uint16(n), nil
	case "tinytext", "tinyblob":
		return mysql.MYSQL_TYPE_BLOB, 1, nil
	case "text", "blob":
		return mysql.MYSQL_TYPE_BLOB, 2, nil
	case "mediumtext", "mediumblob":
		return mysql.MYSQL_TYPE_BLOB, 3, nil
	case "longtext", "longblob":
		return mysql.MYSQL_TYPE_BLOB, 4, nil
	case "json":
		if sc.Charset != "" {
			return mysql.MYSQL_TYPE_BLOB, 4, nil // MariaDB's: a LONGTEXT (kinds.go)
		}
		return mysql.MYSQL_TYPE_JSON, 4, nil // MySQL's
	case "uuid", "inet4", "inet6": // MariaDB's: logged as BINARY(16) or BINARY(4)
		return mysql.MYSQL_TYPE_STRING, stringMeta(mysql.MYSQL_TYPE_STRING, kindOf(sc).width()), nil
	}
	if isGeometry(sc.DataType) {
		return mysql.MYSQL_TYPE_GEOMETRY, 4, nil
	}
	return 0, 0, fmt.Errorf("type %s (%s) cannot be snapshotted: it has no known binlog form", sc.ColumnType, sc.DataType)
}

// stringMeta packs a MYSQL_TYPE_STRING's real type and byte length into
// its metadata as the server does (lengths above 255 borrow two bits of the
// type byte); realType unpacks it.
func stringMeta(real byte, length int) uint16 {
	return uint16(real^byte((length&0x300)>>4))<<8 | uint16(length&0xFF)
}

// typeArgs returns the numbers in a COLUMN_TYPE's parentheses:
// "decimal(10,4) unsigned" → [10 4]; none for "enum(...)".
func typeArgs(colType string) []int {
	open := strings.IndexByte(colType, '(')
	end := strings.IndexByte(colType, ')')
	if open < 0 || end < open {
		return nil
	}
	var out []int
	for _, f := range strings.Split(colType[open+1:end], ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// schemaCharset is a column's character set as a TABLE_MAP's collation
// gives it: information_schema has none (NULL) for binary strings, which the
// binlog marks with the "binary" character set, and none for geometry,
// which MariaDB's full metadata also gives "binary".
func schemaCharset(sc cdc.SchemaColumn) string {
	if sc.Charset == "" && (isBinaryString(sc.DataType) || isGeometry(sc.DataType) || kindOf(sc).width() > 0) {
		return "binary"
	}
	return sc.Charset
}

func isBinaryString(dataType string) bool {
	switch dataType {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return true
	}
	return false
}

func isGeometry(dataType string) bool {
	switch dataType {
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
		"multipolygon", "geometrycollection", "geomcollection":
		return true
	}
	return false
}

// maxBytesPerChar is a character set's longest character in bytes (the
// server sizes CHAR and VARCHAR metadata with it); 1 for binary strings.
func maxBytesPerChar(charset string) int {
	switch charset {
	case "utf8mb4", "utf16", "utf16le", "utf32", "gb18030":
		return 4
	case "utf8mb3", "utf8", "ujis", "eucjpms":
		return 3
	case "ucs2", "sjis", "cp932", "gbk", "gb2312", "big5", "euckr":
		return 2
	}
	return 1
}

// snapshotConn opens a query connection for snapshot reads: TIMESTAMPs in
// UTC (time_zone = '+00:00'), column bytes unconverted
// (character_set_results = NULL: each column is decoded by its own
// character set, as in the binlog), an sql_mode with nothing that changes
// what SELECT returns (zero dates are read as stored, CHAR is not padded),
// and read-only transactions: a snapshot never writes and takes no locks
// beyond InnoDB's consistent reads.
func snapshotConn(ctx context.Context, d *dialer) (*client.Conn, error) {
	conn, err := d.dial(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		"SET SESSION time_zone = '+00:00', SESSION character_set_results = NULL, SESSION sql_mode = ''",
		"SET SESSION TRANSACTION READ ONLY",
	} {
		if _, err := conn.Execute(q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("snapshot session on %s (%s): %w", d.cfg.addr(), q, err)
		}
	}
	// Every snapshot query ends within source.snapshot_query_timeout:
	// MariaDB's max_statement_time (seconds), MySQL's max_execution_time
	// (milliseconds, SELECTs only).
	if t := d.cfg.SnapshotQueryTimeout; t > 0 {
		if _, err := conn.Execute(fmt.Sprintf("SET SESSION max_statement_time = %g", t.Seconds())); err != nil {
			if _, err := conn.Execute(fmt.Sprintf("SET SESSION max_execution_time = %d", t.Milliseconds())); err != nil {
				conn.Close()
				return nil, fmt.Errorf("snapshot session on %s: statement time limit: %w", d.cfg.addr(), err)
			}
		}
	}
	return conn, nil
}

// readChunk reads up to limit rows of a table in the order of its key
// (info.key: the primary key or a configured unique key), those
// whose key comes after the key values after (nil: from the first row) and
// that match filter (an SQL condition; "" for all rows), on a connection
// from snapshotConn. The rows are the binlog path's canonical values
// (info and conv as for a streamed row of the table; conv from
// newConverter(info)); a zero or partial date becomes NULL, as in the
// stream. limit < 1 reads every remaining row.
//
// A composite key k1, k2, ... continues with
// k1 >= a1 AND (k1 > a1 OR (k1 = a1 AND k2 > a2) OR ...), which the
// optimizer serves as a range of the key's index. Text keys compare in the
// column's collation (the value is sent as UTF-8 and converted by the
// server), as ORDER BY sorts them.
//
// A table without a key is read whole in one call, unordered
// (limit and after do not apply): there is no key to resume at. A key
// column that cannot be compared exactly (FLOAT, ENUM, SET, JSON,
// GEOMETRY) is an error; such a table is snapshotted whole or by another
// unique key, as the caller decides.
//
// A cancelled ctx interrupts the read; the connection is then unusable.
func readChunk(ctx context.Context, conn *client.Conn, info *tableInfo, conv *converter, after []cdc.Value, limit int, filter string) ([][]cdc.Value, error) {
	rows, _, err := readBounded(ctx, conn, info, conv, after, limit, filter, chunkBound{})
	return rows, err
}

// chunkBound bounds the memory of a chunk by the bytes of its values (a
// row count alone holds 4,096 rows of any width): past bytes, a keyed
// chunk keeps no more rows (truncated: the next one starts after its last
// row), and a table without a key, read whole, hands the rows read so far
// to piece and goes on. Zero bytes: no bound. A keyed chunk also ends
// at the key through when it is set (TableScan.Range).
type chunkBound struct {
	bytes   int
	piece   func([][]cdc.Value) error
	through []cdc.Value
}

// rowBytes is about what a row's values hold in memory.
func rowBytes(row []cdc.Value) int {
	n := 0
	for i := range row {
		n += len(row[i].Str) + int(unsafe.Sizeof(row[i]))
	}
	return n
}

// readBounded is readChunk within bound (see chunkBound); truncated
// reports a keyed chunk cut short by it.
func readBounded(ctx context.Context, conn *client.Conn, info *tableInfo, conv *converter, after []cdc.Value, limit int, filter string, bound chunkBound) (rows [][]cdc.Value, truncated bool, err error) {
	q, args, err := rangeQuery(info, after, bound.through, limit, filter)
	if err != nil {
		return nil, false, err
	}
	return readQuery(ctx, conn, info, conv, q, args, limit, "after key "+keyText(info, after), bound)
}

// readQuery runs the SELECT q of info's columns (selectList) with args
// and decodes its rows as readBounded does; where says which rows in its
// errors ("after key (5)"). limit > 0 sizes the rows for that many.
func readQuery(ctx context.Context, conn *client.Conn, info *tableInfo, conv *converter, q string, args []any, limit int, where string, bound chunkBound) (rows [][]cdc.Value, truncated bool, err error) {
	t := info.table
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	// go-mysql has no context: a past deadline fails its blocked read.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	stmt, err := conn.Prepare(q)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot %s: prepare %s: %w", t.ID(), q, chunkErr(ctx, err))
	}
	defer stmt.Close()
	if limit > 0 {
		rows = make([][]cdc.Value, 0, min(limit, 1<<16)) // sized for a whole chunk, not grown by copying
	}
	held := 0 // bytes of rows
	var slab []cdc.Value
	var arena textArena // the chunk's text: its rows' strings share a few blocks
	var convErr error   // kept while the rest of the result is drained, so the connection stays usable
	var res mysql.Result
	err = stmt.ExecuteSelectStreaming(&res, func(raw []mysql.FieldValue) error {
		if convErr != nil || truncated {
			return nil // the rest of the result is drained
		}
		if len(raw) != len(t.Columns) {
			convErr = fmt.Errorf("snapshot %s: row has %d columns, schema %d", t.ID(), len(raw), len(t.Columns))
			return nil
		}
		if len(slab) < len(raw) {
			slab = make([]cdc.Value, 256*len(raw)) // rows are carved from slabs: one allocation per 256 rows
		}
		row := slab[:len(raw):len(raw)]
		slab = slab[len(raw):]
		for i := range raw {
			v, err := snapshotValue(info, conv, i, &raw[i], &arena)
			if err != nil {
				convErr = fmt.Errorf("snapshot %s column %s (%s) %s: %w", t.ID(), t.Columns[i].Name, t.Columns[i].Type, where, err)
				return nil
			}
			row[i] = v
		}
		rows = append(rows, row)
		if held += rowBytes(row); bound.bytes > 0 && held >= bound.bytes {
			if bound.piece == nil {
				truncated = true
				return nil
			}
			if convErr = bound.piece(rows); convErr == nil {
				rows, held, slab, arena = nil, 0, nil, textArena{} // the piece keeps its memory; none is reused
			}
		}
		return nil
	}, rawTemporals(info), args...)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot %s %s: %w", t.ID(), where, chunkErr(ctx, err))
	}
	if convErr != nil {
		return nil, false, convErr
	}
	return rows, truncated, nil
}

func chunkErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// chunkQuery builds readChunk's statement and its arguments.
func chunkQuery(info *tableInfo, after []cdc.Value, limit int, filter string) (string, []any, error) {
	return rangeQuery(info, after, nil, limit, filter)
}

// rangeQuery is chunkQuery for the keys after after (nil: from the first)
// up to and including through (nil: to the last).
func rangeQuery(info *tableInfo, after, through []cdc.Value, limit int, filter string) (string, []any, error) {
	t := info.table
	var b strings.Builder
	b.WriteString(selectList(info))
	var conds []string
	if filter != "" {
		conds = append(conds, filter)
	}
	if len(info.key) == 0 {
		if after != nil || through != nil {
			return "", nil, fmt.Errorf("snapshot %s: a table without a primary or snapshot key is read whole, not after a key", t.ID())
		}
		if filter != "" {
			b.WriteString(" WHERE (" + filter + ")")
		}
		return b.String(), nil, nil
	}
	keys := make([]string, len(info.key))
	marks := make([]string, len(info.key))
	for j, k := range info.key {
		keys[j] = quoteName(t.Columns[k].Name)
		var err error
		if marks[j], err = keyMark(info, k); err != nil {
			return "", nil, err
		}
	}
	var args []any
	if after != nil {
		cond, a, err := keyAfter(info, keys, marks, after)
		if err != nil {
			return "", nil, err
		}
		// led by k1 >= ? for the optimizer when the key has several columns.
		if len(keys) > 1 {
			conds = append(conds, keys[0]+" >= "+marks[0])
			args = append(args, a[0])
		}
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if through != nil {
		cond, a, err := keyAfter(info, keys, marks, through)
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, "NOT ("+cond+")") // key <= through
		args = append(args, a...)
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE (" + strings.Join(conds, ") AND (") + ")")
	}
	b.WriteString(" ORDER BY " + strings.Join(keys, ", "))
	if limit > 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(limit))
	}
	return b.String(), args, nil
}

// selectList is "SELECT <info's columns> FROM <table>": ENUM and SET as
// the binlog logs them, fixed-width kinds as their binlog bytes.
func selectList(info *tableInfo) string {
	t := info.table
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		switch ci := &info.cols[i]; {
		case ci.binType == mysql.MYSQL_TYPE_ENUM || ci.binType == mysql.MYSQL_TYPE_SET:
			b.WriteString(quoteName(c.Name) + "+0") // the index / bitmap, as the binlog logs it
		case ci.kind.width() > 0:
			fmt.Fprintf(&b, "CAST(%s AS BINARY(%d))", quoteName(c.Name), ci.kind.width()) // UUID, INET: their binlog bytes
		default:
			b.WriteString(quoteName(c.Name))
		}
	}
	b.WriteString(" FROM " + quoteName(t.Database) + "." + quoteName(t.Name))
	return b.String()
}

// keyAfter is the condition "key > vals" and its arguments:
// k1 > ? OR (k1 = ? AND k2 > ?) OR ...
func keyAfter(info *tableInfo, keys, marks []string, vals []cdc.Value) (string, []any, error) {
	t := info.table
	if len(vals) != len(info.key) {
		return "", nil, fmt.Errorf("snapshot %s: %d key values for a %d-column key", t.ID(), len(vals), len(info.key))
	}
	args := make([]any, len(vals))
	for j, k := range info.key {
		var err error
		if args[j], err = keyArg(&t.Columns[k], vals[j]); err != nil {
			return "", nil, fmt.Errorf("snapshot %s key column %s: %w", t.ID(), t.Columns[k].Name, err)
		}
	}
	var ors []string
	var out []any
	for j := range keys {
		var ands []string
		for i := range j {
			ands = append(ands, keys[i]+" = "+marks[i])
			out = append(out, args[i])
		}
		ands = append(ands, keys[j]+" > "+marks[j])
		out = append(out, args[j])
		ors = append(ors, strings.Join(ands, " AND "))
	}
	if len(ors) == 1 {
		return ors[0], out, nil
	}
	return "(" + strings.Join(ors, ") OR (") + ")", out, nil
}

// keyMark is the placeholder of key column k: a DECIMAL value is cast to
// the column's type, which a string compared with a DECIMAL would not be
// (the comparison would be in floating point). Types that cannot be
// compared exactly are refused.
func keyMark(info *tableInfo, k int) (string, error) {
	c := &info.table.Columns[k]
	switch bt := info.cols[k].binType; {
	case c.Type == cdc.TypeFloat32, c.Type == cdc.TypeJSON, c.Type == cdc.TypeGeometry,
		bt == mysql.MYSQL_TYPE_ENUM, bt == mysql.MYSQL_TYPE_SET:
		return "", fmt.Errorf("snapshot %s: primary-key column %s (%s) cannot be compared exactly to resume a chunk: snapshot the table by another unique key, or whole", info.table.ID(), c.Name, c.Type)
	case c.Type == cdc.TypeDecimal:
		return fmt.Sprintf("CAST(? AS DECIMAL(%d,%d))", c.Precision, c.Scale), nil
	}
	return "?", nil
}

// keyArg turns a canonical key value into a statement argument the server
// compares exactly with the column.
func keyArg(c *cdc.Column, v cdc.Value) (any, error) {
	if v.Null {
		return nil, errors.New("the key value is NULL (a zero or partial date, which has no canonical value): snapshot the table whole")
	}
	switch c.Type {
	case cdc.TypeInt32, cdc.TypeInt64:
		return v.Int, nil
	case cdc.TypeUint64, cdc.TypeBool, cdc.TypeBits:
		return uint64(v.Int), nil
	case cdc.TypeFloat64:
		return v.Float, nil
	case cdc.TypeDecimal, cdc.TypeString:
		return v.Str, nil
	case cdc.TypeBytes:
		return []byte(v.Str), nil
	case cdc.TypeDate:
		return time.Unix(v.Int*86400, 0).UTC().Format("2006-01-02"), nil
	case cdc.TypeDateTime, cdc.TypeTimestamp:
		return time.UnixMicro(v.Int).UTC().Format("2006-01-02 15:04:05.000000"), nil
	case cdc.TypeTime:
		return formatDuration(v.Int), nil
	}
	return nil, fmt.Errorf("type %s cannot resume a chunk", c.Type)
}

// formatDuration formats microseconds as TIME's "[-]H:MM:SS.ffffff".
func formatDuration(us int64) string {
	sign := ""
	if us < 0 {
		sign, us = "-", -us
	}
	s := us / 1_000_000
	return fmt.Sprintf("%s%d:%02d:%02d.%06d", sign, s/3600, s/60%60, s%60, us%1_000_000)
}

// snapshotValue converts cell i of a binary-protocol row into the value
// the binlog path decodes for the same column value (TestSnapshotTypesMatchBinlog
// compares them type by type). Text, binary strings and decimal digits are
// cut from arena (the cell's bytes are reused for the next row); temporal
// values arrive in their binary form (rawTemporals). Nothing here allocates
// per value but text in a character set other than UTF-8 and a string
// longer than the arena takes. The rarer types (JSON, geometry) are given
// the Go form go-mysql's binlog decoder yields for them and converted by
// converter.value.
func snapshotValue(info *tableInfo, conv *converter, i int, fv *mysql.FieldValue, arena *textArena) (cdc.Value, error) {
	col := &info.table.Columns[i]
	bt := info.cols[i].binType
	if fv.Type == mysql.FieldValueTypeNull {
		return cdc.Null, nil
	}
	b := fv.AsString()
	integer := fv.Type == mysql.FieldValueTypeSigned || fv.Type == mysql.FieldValueTypeUnsigned
	text := fv.Type == mysql.FieldValueTypeString
	switch {
	case (bt == mysql.MYSQL_TYPE_ENUM || bt == mysql.MYSQL_TYPE_SET) && integer: // col+0
		if bt == mysql.MYSQL_TYPE_ENUM {
			return enumLabel(col, fv.AsInt64())
		}
		return setLabels(col, fv.AsInt64())
	case isInteger(col.Type) && integer:
		return cdc.Int(fv.AsInt64()), nil // an unsigned BIGINT keeps its 64 bits; TypeUint64 reads them back unsigned
	case isInteger(col.Type) && text: // BIT: big-endian bytes
		if len(b) > 8 {
			return cdc.Value{}, fmt.Errorf("BIT value of %d bytes", len(b))
		}
		return cdc.Int(int64(bigEndian(b, len(b)))), nil
	case (col.Type == cdc.TypeFloat32 || col.Type == cdc.TypeFloat64) && fv.Type == mysql.FieldValueTypeFloat:
		return cdc.Float(fv.AsFloat64()), nil
	case col.Type == cdc.TypeDecimal && text:
		return cdc.Str(arena.string(b)), nil
	case (col.Type == cdc.TypeString || col.Type == cdc.TypeJSON) && text && conv.decoders[i] != nil:
		s, err := conv.decoders[i](arena.string(b))
		return cdc.Str(s), err
	case col.Type == cdc.TypeBytes && text:
		s := arena.string(b)
		if n := info.cols[i].fixedLen; len(s) < n {
			s += strings.Repeat("\x00", n-len(s)) // as converter.value: BINARY(n) keeps its zero bytes
		}
		return cdc.Str(s), nil
	case isTemporal(col.Type) && text:
		us, err := temporalBinary(col.Type, b)
		if errors.Is(err, errUnrepresentable) {
			return cdc.Null, nil
		}
		return cdc.Int(us), err
	}
	var v any
	switch fv.Type {
	case mysql.FieldValueTypeSigned:
		v = fv.AsInt64()
	case mysql.FieldValueTypeUnsigned:
		v = fv.AsUint64()
	case mysql.FieldValueTypeFloat:
		v = fv.AsFloat64()
	case mysql.FieldValueTypeString:
		v = b // converter.value copies it (asString)
	}
	val, err := conv.value(info, i, v)
	if errors.Is(err, errUnrepresentable) {
		return cdc.Null, nil
	}
	return val, err
}

// rawTemporals returns readChunk's result-set callback: it has go-mysql
// hand over the temporal columns' binary-protocol values as they arrive
// instead of formatting them as text with fmt. A binary DATE, DATETIME,
// TIMESTAMP or TIME value is a length byte and that many bytes, the layout
// of a length-encoded string: typed as one, the value's bytes come as the
// cell's string, for temporalBinary.
func rawTemporals(info *tableInfo) func(*mysql.Result) error {
	return func(res *mysql.Result) error {
		if len(res.Fields) != len(info.table.Columns) {
			return nil // readChunk reports the mismatch
		}
		for i, f := range res.Fields {
			if !isTemporal(info.table.Columns[i].Type) {
				continue
			}
			switch f.Type {
			case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIME:
				f.Type = mysql.MYSQL_TYPE_VAR_STRING
			default:
				return fmt.Errorf("snapshot %s column %s (%s): the server sends type %d", info.table.ID(), info.table.Columns[i].Name, info.table.Columns[i].Type, f.Type)
			}
		}
		return nil
	}
}

// temporalBinary converts a binary-protocol temporal value (rawTemporals)
// into days (DATE) or microseconds, the values converter.value makes of
// the same column value: a DATE, DATETIME or TIMESTAMP is year (2 bytes,
// little-endian), month, day[, hour, minute, second[, microseconds (4
// bytes)]], none for a zero date; a TIME is sign, days (4 bytes), hour,
// minute, second[, microseconds], none for zero. A zero or partial date is
// errUnrepresentable.
func temporalBinary(t cdc.Type, b []byte) (int64, error) {
	if t == cdc.TypeTime {
		if len(b) == 0 {
			return 0, nil
		}
		if len(b) != 8 && len(b) != 12 {
			return 0, fmt.Errorf("TIME value of %d bytes", len(b))
		}
		days := int64(littleEndian(b[1:], 4))
		us := (((days*24+int64(b[5]))*60+int64(b[6]))*60 + int64(b[7])) * 1_000_000
		if len(b) == 12 {
			us += int64(littleEndian(b[8:], 4))
		}
		if b[0] == 1 {
			us = -us
		}
		return us, nil
	}
	if len(b) != 0 && len(b) != 4 && len(b) != 7 && len(b) != 11 {
		return 0, fmt.Errorf("date value of %d bytes", len(b))
	}
	if len(b) == 0 || b[0] == 0 && b[1] == 0 || b[2] == 0 || b[3] == 0 {
		return 0, errUnrepresentable
	}
	days := daysFromCivil(int64(littleEndian(b, 2)), int64(b[2]), int64(b[3]))
	if t == cdc.TypeDate {
		return days, nil
	}
	us := days * 86_400_000_000
	if len(b) >= 7 {
		us += ((int64(b[4])*60+int64(b[5]))*60 + int64(b[6])) * 1_000_000
	}
	if len(b) == 11 {
		us += int64(littleEndian(b[7:], 4))
	}
	return us, nil
}

func isTemporal(t cdc.Type) bool {
	switch t {
	case cdc.TypeDate, cdc.TypeTime, cdc.TypeDateTime, cdc.TypeTimestamp:
		return true
	}
	return false
}

// keyOf returns a compact identity of a row's values of the key columns
// (the primary key, or a snapshot key) of table t: equal
// byte for byte exactly when the values are. Text keys compare by their
// bytes, not by collation: a binlog event carries the row's key exactly as
// stored, so matching an event against a chunk row by keyOf is exact when
// both the before and after images of the event are matched.
func keyOf(t *cdc.Table, key []int, row []cdc.Value) string {
	b := make([]byte, 0, 16*len(key))
	for _, k := range key {
		v := row[k]
		switch {
		case v.Null:
			b = append(b, 0)
		case t.Columns[k].Type == cdc.TypeFloat32 || t.Columns[k].Type == cdc.TypeFloat64:
			b = binary.BigEndian.AppendUint64(append(b, 1), math.Float64bits(v.Float))
		case usesStr(t.Columns[k].Type):
			b = binary.AppendUvarint(append(b, 1), uint64(len(v.Str)))
			b = append(b, v.Str...)
		default:
			b = binary.BigEndian.AppendUint64(append(b, 1), uint64(v.Int))
		}
	}
	return string(b)
}

func isInteger(t cdc.Type) bool {
	switch t {
	case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeUint64, cdc.TypeBool, cdc.TypeBits:
		return true
	}
	return false
}

func usesStr(t cdc.Type) bool {
	switch t {
	case cdc.TypeDecimal, cdc.TypeString, cdc.TypeBytes, cdc.TypeJSON, cdc.TypeGeometry:
		return true
	}
	return false
}

// keyText renders key values for error messages.
func keyText(info *tableInfo, key []cdc.Value) string {
	if key == nil {
		return "(start)"
	}
	parts := make([]string, len(key))
	for j, v := range key {
		switch {
		case v.Null:
			parts[j] = "NULL"
		case j < len(info.key) && usesStr(info.table.Columns[info.key[j]].Type):
			parts[j] = strconv.Quote(truncate(v.Str))
		case v.Float != 0:
			parts[j] = strconv.FormatFloat(v.Float, 'g', -1, 64)
		default:
			parts[j] = strconv.FormatInt(v.Int, 10)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func quoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
