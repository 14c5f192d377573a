// Package schemas holds the Avro schemas strait owns: the source block and
// the envelope of every change record, the schema-change record, the
// producer's checkpoint, its snapshot plan and its schema history. They
// are files so that readers of our topics can see the contract without
// reading Go.
package schemas

import _ "embed"

// Source is the Debezium-shaped source block (io.debezium.connector.mysql.Source).
//
//go:embed source.avsc
var Source string

// Envelope is the change envelope; "Value" stands for the per-table row record.
//
//go:embed envelope.avsc
var Envelope string

// SchemaChange is the record of the <prefix>._schema_changes topic.
//
//go:embed schema_change.avsc
var SchemaChange string

// Checkpoint is the record of the <prefix>._checkpoint topic: where the
// producer resumes.
//
//go:embed checkpoint.avsc
var Checkpoint string

// SchemaHistory is the record of the <prefix>._schema_history topic: a
// table's schema from a binlog position on, for sources without full row
// metadata.
//
//go:embed schema_history.avsc
var SchemaHistory string

// SnapshotPlan is the record of the <prefix>._snapshot_plan topic: the
// tables a snapshot has to read, which checkpoints name by number.
//
//go:embed snapshot_plan.avsc
var SnapshotPlan string
