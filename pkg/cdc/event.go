// Package cdc holds the one change-event type that every stage of strait
// shares: the binlog reader produces cdc.Events, the Avro codec encodes them,
// the Kafka writer publishes them. It depends on nothing but the standard
// library so that every other package can import it.
//
// A value crosses the pipeline in its canonical form (see Value): integers as
// int64, time as microseconds, decimals as their exact digits, text as valid
// UTF-8. Conversions from MySQL's wire form happen once, in pkg/binlog, and
// conversions to Avro once, in pkg/avro.
package cdc

import "time"

// Op is the kind of a change, spelled as in the Debezium envelope.
type Op byte

// The operations of the Debezium envelope.
const (
	OpCreate Op = 'c' // a row was inserted
	OpUpdate Op = 'u' // a row was updated
	OpDelete Op = 'd' // a row was deleted
	OpRead   Op = 'r' // a row was read by a snapshot
)

// String returns the one-letter code used in the envelope's op field.
func (o Op) String() string { return string(rune(o)) }

// Event is one row change.
type Event struct {
	// Table is the schema of the table at the time of the change.
	Table *Table
	// Op is what happened to the row.
	Op Op
	// Before is the row before the change (nil for inserts and reads).
	Before []Value
	// After is the row after the change (nil for deletes).
	After []Value
	// Position orders the change among all changes of the source.
	Position Position
	// Source names where in the source the change was read.
	Source Source
	// CommitTime is the source's timestamp of the change (second precision
	// in the binlog).
	CommitTime time.Time
}

// Source is where a change was read; it becomes the envelope's source block.
type Source struct {
	ServerID uint32 // server_id of the server that wrote the change
	GTID     string // GTID of the source transaction, empty without GTIDs
	File     string // binlog file name
	Pos      uint64 // position of the rows event in File
	Row      uint32 // index of the row within the rows event
	Snapshot bool   // true when read by a snapshot
	Query    string // the SQL statement when the server logs it (binlog_rows_query_log_events / annotate rows)
	// BeforeKeyOnly: the before image holds only the key columns, the
	// others NULL (the whole row did not fit the largest record).
	BeforeKeyOnly bool
}

// Value is a column value in canonical form. Which field holds the value
// depends on the column's Type; see the Type constants.
type Value struct {
	// Null is true for SQL NULL; the other fields are then zero.
	Null bool
	// Int holds integers (an unsigned BIGINT as its 64 bits), BIT values,
	// days since 1970-01-01 for DATE, and microseconds for TIME, DATETIME
	// and TIMESTAMP.
	Int int64
	// Float holds FLOAT and DOUBLE values.
	Float float64
	// Str holds text as valid UTF-8, binary data as raw bytes, DECIMAL
	// digits as MySQL prints them ("-12.50"), JSON text, ENUM and SET labels.
	Str string
}

// Int returns a non-null integer value.
func Int(v int64) Value { return Value{Int: v} }

// Float returns a non-null floating-point value.
func Float(v float64) Value { return Value{Float: v} }

// Str returns a non-null string value.
func Str(v string) Value { return Value{Str: v} }

// Null is the SQL NULL value.
var Null = Value{Null: true}

// SchemaChange is a DDL statement read from the source.
type SchemaChange struct {
	Database   string
	DDL        string
	Position   Position
	Source     Source
	CommitTime time.Time
}
