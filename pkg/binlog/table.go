package binlog

import (
	"context"
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
}

// tableInfo is a cdc.Table plus the per-column decode information.
type tableInfo struct {
	table *cdc.Table
	cols  []colInfo
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
	ci := colInfo{binType: rt, charset: charset}
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
func fromTableMap(e *replication.TableMapEvent, charsets map[uint64]string) (*tableInfo, error) {
	names := e.ColumnNameString()
	unsigned := e.UnsignedMap()
	collations := e.CollationMap()
	enumSetColl := e.EnumSetCollationMap()
	enums, sets := e.EnumStrValueMap(), e.SetStrValueMap()
	t := &cdc.Table{Database: string(e.Schema), Name: string(e.Table)}
	info := &tableInfo{table: t}
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

// fromInformationSchema builds the schema of a table whose TABLE_MAP event
// lacks full metadata. information_schema describes the table as it is now,
// which may be later than the event being decoded (a DDL ran since). The
// race is caught, not ignored: the TABLE_MAP's column count and types are
// authoritative for the event, and a schema that disagrees with them is an
// error, never a silent mis-decode. (With binlog_row_metadata=FULL the race
// does not exist; issue 4 adds a schema history for restarts.)
func fromInformationSchema(ctx context.Context, conn *client.Conn, e *replication.TableMapEvent) (*tableInfo, error) {
	db, name := string(e.Schema), string(e.Table)
	r, err := conn.Execute(`SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COALESCE(CHARACTER_SET_NAME, ''), COLUMN_KEY, DATA_TYPE
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, name)
	if err != nil {
		return nil, fmt.Errorf("read schema of %s.%s: %w", db, name, err)
	}
	defer r.Close()
	if r.RowNumber() != int(e.ColumnCount) {
		return nil, fmt.Errorf("table %s.%s: the binlog event has %d columns but information_schema has %d: the table changed since this event; enable binlog_row_metadata=FULL (or restart from a position after the DDL)", db, name, e.ColumnCount, r.RowNumber())
	}
	keyRows, err := conn.Execute(`SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, db, name)
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s.%s: %w", db, name, err)
	}
	defer keyRows.Close()

	t := &cdc.Table{Database: db, Name: name}
	info := &tableInfo{table: t}
	index := map[string]int{}
	for i := range r.RowNumber() {
		colName, _ := r.GetString(i, 0)
		colType, _ := r.GetString(i, 1)
		isNull, _ := r.GetString(i, 2)
		cs, _ := r.GetString(i, 3)
		dataType, _ := r.GetString(i, 5)
		unsigned := strings.Contains(colType, "unsigned")
		var values []string
		if dataType == "enum" || dataType == "set" {
			values = parseEnumValues(colType)
		}
		c, ci, err := column(colName, e.ColumnType[i], e.ColumnMeta[i], unsigned, cs, isNull == "YES", values)
		if err != nil {
			return nil, fmt.Errorf("table %s.%s: %w", db, name, err)
		}
		if want := expectedBinlogType(dataType); want != 0 && want != ci.binType && !(want == mysql.MYSQL_TYPE_BLOB && ci.binType == mysql.MYSQL_TYPE_STRING) {
			return nil, fmt.Errorf("table %s.%s column %s: information_schema says %s but the binlog event carries type %d: the table changed since this event; enable binlog_row_metadata=FULL", db, name, colName, colType, ci.binType)
		}
		c.SQLType = colType
		index[colName] = i
		t.Columns = append(t.Columns, c)
		info.cols = append(info.cols, ci)
	}
	for i := range keyRows.RowNumber() {
		k, _ := keyRows.GetString(i, 0)
		t.PrimaryKey = append(t.PrimaryKey, index[k])
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
			cs, _ := r.GetString(i, 1)
			out[id] = cs
		}
		r.Close()
	}
	return out, nil
}
