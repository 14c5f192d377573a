package binlog

// Column kinds the binlog does not name. MariaDB's UUID, INET4 and INET6
// are logged as BINARY(16) and BINARY(4), and its JSON is a LONGTEXT with a
// json_valid CHECK constraint: neither the TABLE_MAP's types nor its full
// metadata tell them from plain binary strings and text. The table's
// definition does (information_schema's DATA_TYPE, CHECK_CONSTRAINTS), so
// the reader reads it for any table with a column of those binlog shapes
// (columnKinds), and the snapshot reads its columns in the binlog's form
// (CAST(col AS BINARY(n))), so that both paths turn the same bytes into
// the same text.

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// sqlKind is what a column is beyond its binlog type.
type sqlKind uint8

const (
	kindPlain sqlKind = iota
	kindJSON          // MariaDB's JSON: LONGTEXT CHECK (json_valid(col))
	kindUUID          // MariaDB 10.7+
	kindInet4         // MariaDB 10.10+
	kindInet6         // MariaDB 10.5+
)

// kindOf is the kind of a column information_schema describes. readSchemas
// gives MariaDB's JSON the DATA_TYPE "json" with its character set (MySQL's
// own JSON has none).
func kindOf(sc cdc.SchemaColumn) sqlKind {
	switch sc.DataType {
	case "uuid":
		return kindUUID
	case "inet4":
		return kindInet4
	case "inet6":
		return kindInet6
	case "json":
		if sc.Charset != "" {
			return kindJSON
		}
	}
	return kindPlain
}

// kindNames are the kinds' type names in SQL.
var kindNames = [...]string{kindPlain: "", kindJSON: "json", kindUUID: "uuid", kindInet4: "inet4", kindInet6: "inet6"}

// sqlName is the kind's type name in SQL, recorded as the column's SQLType.
func (k sqlKind) sqlName() string { return kindNames[k] }

// width is the byte length of a UUID, INET4 or INET6 value; 0 for others.
func (k sqlKind) width() int {
	switch k {
	case kindUUID, kindInet6:
		return 16
	case kindInet4:
		return 4
	}
	return 0
}

// applyKind gives column c of binlog shape ci its kind, checking that the
// binlog carries it the way the server logs that kind.
func applyKind(c *cdc.Column, ci *colInfo, k sqlKind) error {
	switch k {
	case kindPlain:
		return nil
	case kindJSON:
		if ci.binType != mysql.MYSQL_TYPE_BLOB || ci.charset == "binary" {
			return fmt.Errorf("column %s: the schema says JSON (LONGTEXT with json_valid) but the binlog carries type %d: the table changed since this event", c.Name, ci.binType)
		}
		c.Type = cdc.TypeJSON
	default:
		if ci.binType != mysql.MYSQL_TYPE_STRING || ci.charset != "binary" || ci.length != k.width() {
			return fmt.Errorf("column %s: the schema says %s but the binlog carries type %d of %d bytes: the table changed since this event", c.Name, strings.ToUpper(k.sqlName()), ci.binType, ci.length)
		}
		c.Type, ci.fixedLen = cdc.TypeString, 0 // the kind's decoder pads the value itself
	}
	ci.kind = k
	c.SQLType = k.sqlName()
	return nil
}

// mayHaveKind reports whether a column of this binlog shape may be of a
// kind only the table's definition tells (see columnKinds).
func mayHaveKind(ci *colInfo) bool {
	switch ci.binType {
	case mysql.MYSQL_TYPE_STRING:
		return ci.charset == "binary" && (ci.length == 16 || ci.length == 4)
	case mysql.MYSQL_TYPE_BLOB:
		return ci.charset != "binary" && ci.meta == 4
	}
	return false
}

// columnKinds reads the kinds of db.table's columns by name (plain ones
// left out).
func columnKinds(conn *client.Conn, db, table string) (map[string]sqlKind, error) {
	s, err := readSchema(conn, db, table)
	if err != nil {
		return nil, err
	}
	kinds := map[string]sqlKind{}
	for _, sc := range s.Columns {
		if k := kindOf(sc); k != kindPlain {
			kinds[sc.Name] = k
		}
	}
	return kinds, nil
}

// jsonColumns returns the columns of the server that a CHECK
// (json_valid(col)) makes JSON, as "db.table.column" (MariaDB's JSON type
// is LONGTEXT with that check). A server without
// information_schema.CHECK_CONSTRAINTS (MySQL before 8.0.16) has none.
func jsonColumns(conn *client.Conn) map[string]bool {
	r, err := conn.Execute(`SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CHECK_CLAUSE LIKE 'json\_valid(%'`)
	if err != nil {
		return nil
	}
	defer r.Close()
	out := map[string]bool{}
	for i := range r.RowNumber() {
		clause := text(r, i, 2)
		inner, ok := strings.CutPrefix(clause, "json_valid(")
		if !ok || !strings.HasSuffix(inner, ")") {
			continue
		}
		name, quoted, rest := cutGrantIdent(strings.TrimSuffix(inner, ")"))
		if !quoted || rest != "" {
			continue // not json_valid(`col`) alone: a condition over something else
		}
		out[text(r, i, 0)+"."+text(r, i, 1)+"."+name] = true
	}
	return out
}

// kindDecoder turns the bytes of a UUID, INET4 or INET6 value into the text
// the server prints for it. The bytes are the value's binary form, as the
// binlog carries it (less its trailing zero bytes, which a BINARY drops
// there) and as CAST(col AS BINARY(n)) returns it.
func kindDecoder(k sqlKind) textDecoder {
	return func(raw string) (string, error) {
		w := k.width()
		if len(raw) > w {
			return "", fmt.Errorf("%s value of %d bytes", strings.ToUpper(k.sqlName()), len(raw))
		}
		var b [16]byte
		copy(b[:], raw)
		switch k {
		case kindUUID:
			return uuidText(b), nil
		case kindInet4:
			return inet4Text(b[:4]), nil
		}
		return inet6Text(b), nil
	}
}

// uuidText is RFC 4122's form, lower case: MariaDB keeps a UUID in this
// byte order everywhere but in its own record (which the binlog does not
// carry).
func uuidText(b [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

func inet4Text(b []byte) string {
	return strconv.Itoa(int(b[0])) + "." + strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[2])) + "." + strconv.Itoa(int(b[3]))
}

// inet6Text prints an IPv6 address as MariaDB does, which is not quite
// RFC 5952 (nor Go's netip): the longest run of zero words, the first of
// equals, becomes "::" even when it is one word long; IPv4-compatible
// (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) addresses end in dotted
// decimal; words are lower-case hex without leading zeros.
func inet6Text(b [16]byte) string {
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	gap, gapLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > gapLen {
			gap, gapLen = i, j-i
		}
		i = j
	}
	var s strings.Builder
	for i := 0; i < 8; i++ {
		switch {
		case i == gap:
			if i == 0 {
				s.WriteByte(':')
			}
			s.WriteByte(':')
			i += gapLen - 1
		case i == 6 && gap == 0 && (gapLen == 6 || gapLen == 5 && w[5] == 0xffff):
			s.WriteString(inet4Text(b[12:]))
			return s.String()
		default:
			s.WriteString(strconv.FormatUint(uint64(w[i]), 16))
			if i < 7 {
				s.WriteByte(':')
			}
		}
	}
	return s.String()
}

// unreadableTables reads the schema of every table cfg captures and
// returns, by "db.table", why those strait cannot read are refused: the
// decoding schema a snapshot builds (snapshotInfo) fails for them, naming
// the column. It also returns how many tables it read. `producer check`
// reports them; the reader leaves them out.
func unreadableTables(conn *client.Conn, cfg *Config, full bool) (map[string]error, int, error) {
	all, err := readSchemas(conn, `TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		AND (TABLE_SCHEMA, TABLE_NAME) IN (SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE')`)
	if err != nil {
		return nil, 0, err
	}
	bad, n := map[string]error{}, 0
	for id, s := range all {
		if !Captures(cfg.Include, cfg.Exclude, s.Database, s.Table) {
			continue
		}
		n++
		if _, err := snapshotInfo(s, full); err != nil {
			bad[id] = err
		}
	}
	return bad, n, nil
}
