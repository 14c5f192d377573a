package cdc

import "strings"

// Type is the canonical type of a column, which fixes the Value field that
// holds it and its Avro and BigQuery types (README, "Type mapping").
type Type uint8

// The canonical column types.
const (
	TypeUnknown   Type = iota
	TypeInt32          // Value.Int; TINYINT..INT, unsigned TINYINT..MEDIUMINT, YEAR
	TypeInt64          // Value.Int; BIGINT, INT UNSIGNED
	TypeUint64         // Value.Int holds the 64 bits; BIGINT UNSIGNED, exact as decimal(20,0)
	TypeDecimal        // Value.Str digits; DECIMAL(Precision, Scale)
	TypeFloat32        // Value.Float; FLOAT
	TypeFloat64        // Value.Float; DOUBLE
	TypeBool           // Value.Int 0 or 1; BIT(1)
	TypeBits           // Value.Int; BIT(2..64), Length bits, big-endian bytes on the wire
	TypeString         // Value.Str UTF-8; CHAR, VARCHAR, TEXT, ENUM, SET
	TypeBytes          // Value.Str raw; BINARY, VARBINARY, BLOB
	TypeJSON           // Value.Str JSON text
	TypeDate           // Value.Int days since 1970-01-01
	TypeTime           // Value.Int signed microseconds (TIME may be negative or beyond 24h)
	TypeDateTime       // Value.Int microseconds since 1970-01-01 00:00 of the wall clock (no zone)
	TypeTimestamp      // Value.Int microseconds since the Unix epoch, UTC
	TypeGeometry       // Value.Str: 4-byte little-endian SRID followed by WKB, as MySQL stores it
)

var typeNames = [...]string{
	TypeUnknown: "unknown", TypeInt32: "int32", TypeInt64: "int64", TypeUint64: "uint64",
	TypeDecimal: "decimal", TypeFloat32: "float32", TypeFloat64: "float64", TypeBool: "bool",
	TypeBits: "bits", TypeString: "string", TypeBytes: "bytes", TypeJSON: "json",
	TypeDate: "date", TypeTime: "time", TypeDateTime: "datetime", TypeTimestamp: "timestamp",
	TypeGeometry: "geometry",
}

// String returns the type's lower-case name.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// Column describes one column of a table.
type Column struct {
	Name      string
	Type      Type
	Precision int      // DECIMAL precision
	Scale     int      // DECIMAL scale; fractional digits of TIME, DATETIME, TIMESTAMP
	Length    int      // BIT width in bits
	Nullable  bool     // false for NOT NULL columns
	SQLType   string   // the source's column type as written in DDL, e.g. "bigint(20) unsigned"
	Values    []string // ENUM and SET labels, in definition order
}

// Table is the schema of one captured table at one point in the stream.
type Table struct {
	Database   string
	Name       string
	Columns    []Column
	PrimaryKey []int // indexes into Columns; empty for tables without a primary key
}

// ID returns "database.table".
func (t *Table) ID() string { return t.Database + "." + t.Name }

// HasKey reports whether the table has a primary key.
func (t *Table) HasKey() bool { return len(t.PrimaryKey) > 0 }

// SameShape reports whether two schemas have the same Avro schema (values,
// names, nullability and the documented SQL type), i.e. whether a change
// between them needs no new schema version.
func (t *Table) SameShape(o *Table) bool {
	if t.Database != o.Database || t.Name != o.Name || len(t.Columns) != len(o.Columns) || len(t.PrimaryKey) != len(o.PrimaryKey) {
		return false
	}
	for i, c := range t.Columns {
		d := o.Columns[i]
		if c.Name != d.Name || c.Type != d.Type || c.Precision != d.Precision || c.Scale != d.Scale || c.SQLType != d.SQLType ||
			c.Length != d.Length || c.Nullable != d.Nullable || strings.Join(c.Values, "\x00") != strings.Join(d.Values, "\x00") {
			return false
		}
	}
	for i, k := range t.PrimaryKey {
		if o.PrimaryKey[i] != k {
			return false
		}
	}
	return true
}

// TableSchema is a table's columns as the source's information_schema
// describes them, valid from a binlog position until the next DDL touching
// the table: an entry of the producer's schema history. Without full row
// metadata a binlog event carries only column types, so rows older than a
// DDL can be decoded only with the schema recorded before it.
type TableSchema struct {
	Database string
	Table    string
	// Columns in ordinal order; nil means the schema is not known from
	// here on (the table was dropped, or changed again before it could be
	// read), and is looked up again when needed.
	Columns    []SchemaColumn
	PrimaryKey []string // the primary-key columns, in key order
	// Where the schema was recorded: the server and the binlog position
	// (the history holds only entries at or before the checkpoint).
	ServerID uint32
	File     string
	Pos      uint64
	// DefaultCharset is the table's default character set, which a text
	// column added without one takes; "" when not known. Read from
	// information_schema, not kept in the schema history.
	DefaultCharset string
}

// ID returns "database.table".
func (s *TableSchema) ID() string { return s.Database + "." + s.Table }

// Column returns the index of the column named name (compared as MySQL
// compares column names, without case), or -1.
func (s *TableSchema) Column(name string) int {
	for i := range s.Columns {
		if strings.EqualFold(s.Columns[i].Name, name) {
			return i
		}
	}
	return -1
}

// SchemaColumn is one column of a TableSchema, as in
// information_schema.COLUMNS.
type SchemaColumn struct {
	Name       string
	ColumnType string // COLUMN_TYPE, e.g. "bigint(20) unsigned", "enum('a','b')"
	DataType   string // DATA_TYPE, e.g. "bigint"
	Charset    string // CHARACTER_SET_NAME; "" for non-text columns
	Nullable   bool
}
