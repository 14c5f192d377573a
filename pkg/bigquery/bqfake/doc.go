// Package bqfake is a local BigQuery endpoint for tests, as kfake is for
// Kafka: the REST API subset strait uses (datasets, tables) over HTTP and
// the Storage Write API (_default stream) and the Storage Read API (Avro
// read sessions, read.go) over gRPC, both on loopback and both spoken to by
// Google's unchanged clients:
//
//	srv, _ := bqfake.New()
//	bq, _ := bigquery.NewClient(ctx, "p", srv.ClientOptions()...)
//	mw, _ := managedwriter.NewClient(ctx, "p", srv.GRPCClientOptions()...)
//
// Rows reads a table back after changes are applied; FailAppends,
// DropNextResponse and CloseStreamAfter inject failures; PutRow and
// DeleteRow change a table behind the writer's back, as DML would. It enforces
// BigQuery's documented rules, so that a write BigQuery rejects fails here:
//   - "Stream table updates with change data capture": _CHANGE_TYPE (UPSERT
//     or DELETE) and _CHANGE_SEQUENCE_NUMBER (1-4 "/"-separated sections of
//     up to 16 hex digits, compared by value) need a primary key of at most
//     16 columns and a table of at most 2,000 top-level columns; an older
//     change never overwrites a newer one.
//   - "Storage Write API quotas": an AppendRows request is at most 10 MiB.
//   - "Supported protocol buffer and Arrow data types", "Data types": every
//     proto field names a column with a compatible kind, REQUIRED columns
//     are present, values are in range for their type.
//   - BigQuery's delays and windows (delays.go), at their real lengths
//     unless an option shortens them, on a Clock a test can move: a new
//     column reaches the Write API after a delay ("Storage Write API best
//     practices", "Handle schema updates"; refused until then with
//     SCHEMA_MISMATCH_EXTRA_FIELDS), a re-created table's default stream
//     answers NOT_FOUND for a while, a deleted row is remembered for two
//     days ("Stream table updates with change data capture"), and a
//     project has a quota of concurrent AppendRows connections ("Quotas
//     and limits"; RESOURCE_EXHAUSTED beyond it). The Storage Read API
//     reads a CDC table as of its last background apply, within
//     max_staleness, and refuses one without max_staleness
//     (WithoutBackgroundApply turns this off).
//   - "Modifying table schemas": updates only add NULLABLE or REPEATED
//     columns or relax REQUIRED to NULLABLE.
//   - "Introduction to clustered tables", "Specifying a schema", "Quotas and
//     limits": clustering columns, column names (reserved prefixes in any
//     case, at every level), 10,000 columns.
//   - "INFORMATION_SCHEMA.TABLE_CONSTRAINTS view", "Window function calls":
//     primary-key columns only of the key types (no FLOAT64, BYTES, TIME,
//     JSON, GEOGRAPHY, STRUCT or arrays); a view's window does not
//     partition by a FLOAT64, GEOGRAPHY or JSON column (names.go).
//   - "Create logical views", "Manage logical views" and the tables
//     resource reference (view.query, view.useLegacySql): tables.insert of
//     a view takes its query and no schema; useLegacySql defaults to true
//     when left out; the query must be in the view's dialect and the tables
//     it names must exist in the view's location (404 otherwise), checked
//     again when tables.patch or tables.update changes the query; a table
//     does not turn into a view or back; a view is not written to.
//     bqfake runs no SQL but one shape of view: it tells the dialect from
//     how tables are quoted (`project.dataset.table` is GoogleSQL,
//     [project:dataset.table] legacy SQL), checks the backtick-quoted
//     three-part names, and stores the definition for tests to read
//     (Table). ViewRows runs the views strait defines on changelogs (the
//     latest row per key, optionally below a value read from another
//     table, "ROW_NUMBER", "Scalar subqueries") and refuses any other
//     query.
//     A patch replaces the view object as a whole (how BigQuery merges
//     nested fields is not modelled), so here a change of the query keeps
//     GoogleSQL only when it sends useLegacySql=false too, as the Go
//     client's Update does when UseLegacySQL is set: the safe reading.
package bqfake
