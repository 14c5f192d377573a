// Package sink is the seam between the consumer engine (pkg/apply) and
// the system changes are written to: the Sink the engine applies each
// topic's changes to, the Change it gives, and the errors a sink returns,
// which tell the engine what to do with the topic — wait and read it
// again (WaitError), stop it and retry after a backoff (TableError), or
// dead-letter some changes and commit the rest (RejectedError).
//
// pkg/bigquery is the sink strait ships; another one (a database, another
// warehouse) implements Sink and returns these errors, and the engine,
// its ordering, commits and retries stay as they are.
package sink

import (
	"context"
	"fmt"
	"time"
)

// Sink writes the changes of table topics. Apply may be called
// concurrently for different topics; the engine calls it for one topic at
// a time, in the topic's order.
type Sink interface {
	// Apply writes changes, all from topic and in their order. It returns
	// nil once every change is durably written (then their offsets are
	// committed), a *WaitError, a *TableError or a *RejectedError as
	// those types say, or another error when it stopped without knowing
	// (the shutdown): nothing of the call is committed then.
	Apply(ctx context.Context, topic Topic, changes []Change) error
}

// Topic is a table topic, <prefix>.<database>.<table> (the wire
// contract; database and table as the producer puts them in topic
// names). It alone names the table its changes go to.
type Topic struct {
	Name     string // the whole name
	Prefix   string // kafka.topic_prefix
	Database string
	Table    string
}

// Change is one Kafka record of a table topic.
type Change struct {
	Partition int32
	Offset    int64
	// KeySchemaID is the registry's id of the Avro key schema: the
	// primary-key columns. 0 for a table without a primary key.
	KeySchemaID int
	// ValueSchemaID is the registry's id of the Avro value schema (the
	// Debezium envelope). Schemas has their texts.
	ValueSchemaID int
	// Value is the Avro body of the envelope, without the Confluent
	// header; nil for a tombstone.
	Value []byte
}

// Schemas has the texts of the schemas changes name. A sink parses each
// schema once, by id, and asks for its text then: holding the texts of
// every table's schemas would cost memory for as long as it runs.
type Schemas interface {
	// Schema returns the text of the registry's schema id.
	Schema(ctx context.Context, id int) (string, error)
}

// TableError is a table that stopped: a change the sink cannot take in
// place (a type or key change), a value schema it cannot read, a request
// refused as a whole. Other tables go on; the table's records are not
// committed, so they are applied again once the cause is fixed.
type TableError struct {
	Table string // the sink's table, or the topic when no table was found
	Err   error
}

// Error names the table and the cause.
func (e *TableError) Error() string { return fmt.Sprintf("table %s stopped: %v", e.Table, e.Err) }

// Unwrap returns the cause.
func (e *TableError) Unwrap() error { return e.Err }

// WaitError is a table the sink is not ready for yet (BigQuery: a new
// column the Write API does not see, a re-created table its default
// stream does not know). Nothing is wrong with the changes: apply them
// again later. Those written before the wait are harmlessly applied
// again.
type WaitError struct {
	Table  string
	Reason string // the sink's name for the cause, a metric label
	Err    error
}

// Error names the table and the cause.
func (e *WaitError) Error() string {
	return fmt.Sprintf("table %s waits (%s): %v", e.Table, e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *WaitError) Unwrap() error { return e.Err }

// Rejection is one change Apply left out.
type Rejection struct {
	Index  int    // in the changes given to Apply
	Reason string // the strait.reason header of its dead letter
	Err    error
}

// RejectedError reports changes that can never be written. Apply returns
// it after every other change of the call is written; the table goes on.
type RejectedError struct {
	Table      string
	Rejections []Rejection // by Index
}

// Error names the table and the first rejection.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("table %s: %d changes rejected, first: %v", e.Table, len(e.Rejections), e.Rejections[0].Err)
}

// Watermark is how far a consumer group has applied a source: every change
// whose sequence is below Through is acknowledged by the sink in every
// table, so the tables read below it show a state the source had.
type Watermark struct {
	Group, Source string
	Through       string    // a source sequence (cdc.Position's text)
	CommitTime    time.Time // source commit time of the last transaction below Through
}
