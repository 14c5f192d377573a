package binlog

// state.go: the source's saved state — where to resume reading, the
// snapshot's progress and the capture patterns in force — and its fields of
// the checkpoint record (schemas/checkpoint.avsc), which the producer
// stores as bytes and reads back as untrusted input: whoever can write the
// checkpoint topic could otherwise make the producer skip rows, snapshot
// tables outside its configuration, or die at every start.

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// State is the source's part of a checkpoint: the resume point, the
// snapshot's progress and the capture patterns in force.
type State struct {
	ServerID uint32 // the server the position belongs to
	Flavor   string // mysql or mariadb
	GTIDSet  string // "" when GTIDs are off or not known
	File     string
	Pos      uint64
	Epoch    uint64 // the sequence epoch in force
	RowsDone int    // row changes of the transaction at File:Pos already published (a large one, in parts)
	TxGTID   string // that transaction's GTID
	Snapshot SnapshotState
	// Include and Exclude are the source.include/exclude patterns in force:
	// tables a later configuration adds are snapshotted.
	Include, Exclude []string
}

// State returns the source's state at the resume point: where to continue
// after everything advanced past, the snapshot's progress and the capture
// patterns in force.
func (p *Resume) State() State {
	s := p.Start()
	return State{ServerID: p.ServerID, Flavor: p.Flavor, GTIDSet: s.GTID, File: s.File, Pos: s.Pos, Epoch: p.Epoch,
		RowsDone: s.SkipRows, TxGTID: s.TxGTID, Snapshot: p.snapshot, Include: p.Include, Exclude: p.Exclude}
}

// Start is where the state resumes reading, on the server it was written
// on.
func (s *State) Start() Start {
	return Start{GTID: s.GTIDSet, File: s.File, Pos: s.Pos, SkipRows: s.RowsDone, TxGTID: s.TxGTID, Epoch: s.Epoch}
}

// Through is the sequence below which every change of the source up to
// the resume point lies, as change records carry it (cdc.Position): the
// stream's changes of every transaction before the resume point (they end
// at or before it) and the snapshot rows published there, between
// transactions (at the resume point itself, numbered from 0). The changes
// of the transaction at the resume point end after it, so they lie above
// it, also the rows of a partly published one (RowsDone).
func (s *State) Through() cdc.Position {
	return cdc.Position{Epoch: s.Epoch, File: fileIndex(s.File), Pos: s.Pos, Row: math.MaxUint64}
}

// AppendNative adds the state's fields of schemas/checkpoint.avsc to
// native, in goavro's form.
func (s *State) AppendNative(native map[string]any) {
	snap := &s.Snapshot
	filters := make(map[string]any, len(snap.Filters))
	for t, f := range snap.Filters {
		filters[t] = f
	}
	origins := make(map[string]any, len(snap.Origins))
	for t, o := range snap.Origins {
		origins[t] = o
	}
	failed := make([]any, len(snap.Failed))
	for i, f := range snap.Failed {
		failed[i] = map[string]any{"table": f.Table, "request": f.Request, "reason": f.Reason, "at_ms": f.At.UnixMilli()}
	}
	native["server_id"], native["server_uuid"], native["flavor"] = int64(s.ServerID), nil, s.Flavor
	native["gtid_set"], native["file"], native["pos"], native["epoch"] = optional(s.GTIDSet), s.File, int64(s.Pos), int64(s.Epoch)
	native["rows_done"], native["tx_gtid"] = int64(s.RowsDone), optional(s.TxGTID)
	native["snapshot_tables"], native["snapshot_after"] = strs(snap.Tables), encodeKey(snap.After)
	native["snapshot_filters"], native["snapshot_requests"] = filters, snap.Requests
	native["include"], native["exclude"] = strs(s.Include), strs(s.Exclude)
	native["snapshot_origins"], native["snapshot_failed"] = origins, failed
}

// ReadState reads the state's fields of a decoded checkpoint record and
// checks each holds a value the producer can have written; the first that
// does not is f's error (avro.ErrInvalid).
func ReadState(f *avro.Fields) State {
	s := State{Flavor: f.Str("flavor"), GTIDSet: f.Str("gtid_set"), File: f.Str("file"), TxGTID: f.Str("tx_gtid")}
	snap := &s.Snapshot
	snap.Requests = f.Long("snapshot_requests")
	serverID, pos, epoch, rows := f.Long("server_id"), f.Long("pos"), f.Long("epoch"), f.Long("rows_done")
	s.ServerID, s.Pos, s.Epoch, s.RowsDone = uint32(serverID), uint64(pos), uint64(epoch), int(rows)
	snap.Tables, s.Include, s.Exclude = f.Strs("snapshot_tables"), f.Strs("include"), f.Strs("exclude")
	snap.Filters = ReadFilters(f, "snapshot_filters")
	snap.Origins = ReadOrigins(f, "snapshot_origins")
	snap.Failed = failures(f, "snapshot_failed")
	switch {
	case serverID < 0 || serverID > math.MaxUint32:
		f.Fail("server_id %d", serverID)
	case s.Flavor != "" && s.Flavor != "mysql" && s.Flavor != "mariadb":
		f.Fail("flavor %q", s.Flavor)
	case pos < 0 || epoch < 0 || rows < 0 || snap.Requests < 0:
		f.Fail("pos %d, epoch %d, rows_done %d, snapshot_requests %d: a negative", pos, epoch, rows, snap.Requests)
	}
	for _, p := range append(append([]string{}, s.Include...), s.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			f.Fail("pattern %q: %v", p, err)
		}
	}
	// Named by a snapshot plan, the tables are checked once read from it.
	planned := f.Long("snapshot_plan") != 0
	if !planned {
		if err := snap.Check(); err != nil {
			f.Fail("%v", err)
		}
	}
	if f.Err != nil {
		return s
	}
	// Checked as JSON, not as printable text: JSON may hold white space.
	if after, _ := f.Object.Get("snapshot_after").(string); after != "" {
		if len(snap.Tables) == 0 && !planned {
			f.Fail("snapshot_after without snapshot_tables")
			return s
		}
		var err error
		if snap.After, err = decodeKey(after); err != nil {
			f.Fail("%v", err)
		}
	}
	return s
}

// ReadFilters reads a map of snapshot filters by table (nil when empty).
func ReadFilters(f *avro.Fields, name string) map[string]string {
	filters := f.Dict(name)
	if len(filters) == 0 {
		return nil
	}
	out := make(map[string]string, len(filters))
	for t, filter := range filters {
		out[t], _ = filter.(string)
	}
	return out
}

// ReadOrigins reads a map of snapshot origins (signal offsets) by table
// (nil when empty); a negative offset is f's error.
func ReadOrigins(f *avro.Fields, name string) map[string]int64 {
	origins := f.Dict(name)
	if len(origins) == 0 {
		return nil
	}
	out := make(map[string]int64, len(origins))
	for t, o := range origins {
		n, _ := o.(int64)
		if n < 0 {
			f.Fail("%s[%q] = %d: a negative offset", name, t, n)
		}
		out[t] = n
	}
	return out
}

// Check returns an error (avro.ErrInvalid) unless snap's tables are ones
// the producer can have written: each a database.table, none twice, the
// filters and origins only of them, the last key read only with a table
// to read. It takes time linear in the number of tables (a checkpoint
// read back may name 20,000).
func (snap *SnapshotState) Check() error {
	seen := make(map[string]bool, len(snap.Tables))
	for i, t := range snap.Tables {
		if !isTableID(t) || seen[t] {
			return fmt.Errorf("%w: snapshot_tables[%d] %q: not a database.table, or twice", avro.ErrInvalid, i, t)
		}
		seen[t] = true
	}
	for t := range snap.Filters {
		if !seen[t] {
			return fmt.Errorf("%w: snapshot_filters[%q]: not a table of snapshot_tables", avro.ErrInvalid, t)
		}
	}
	for t := range snap.Origins {
		if !seen[t] {
			return fmt.Errorf("%w: snapshot_origins[%q]: not a table of snapshot_tables", avro.ErrInvalid, t)
		}
	}
	if snap.After != nil && len(snap.Tables) == 0 {
		return fmt.Errorf("%w: snapshot_after without snapshot_tables", avro.ErrInvalid)
	}
	return nil
}

// maxFailures is the most snapshot failures a checkpoint holds (the
// producer keeps maxFailed).
const maxFailures = 2 * maxFailed

// failures reads the snapshot_failed array.
func failures(f *avro.Fields, name string) []SnapshotFailure {
	vs, _ := f.Object.Get(name).([]any)
	if len(vs) > maxFailures {
		f.Fail("%s: %d entries", name, len(vs))
		return nil
	}
	var out []SnapshotFailure
	for i, v := range vs {
		o, _ := v.(avro.Object)
		e := avro.Fields{Object: o}
		sf := SnapshotFailure{Table: e.Str("table"), Request: e.Long("request"), Reason: e.Str("reason"), At: time.UnixMilli(e.Long("at_ms"))}
		if e.Err != nil || !isTableID(sf.Table) || sf.Request < -1 || len(sf.Reason) > 4096 {
			f.Fail("%s[%d]: table %q, request %d, a reason of %d bytes", name, i, sf.Table, sf.Request, len(sf.Reason))
		}
		out = append(out, sf)
	}
	return out
}

// isTableID reports whether s is database.table: two names, neither empty
// (MySQL names cannot hold a dot).
func isTableID(s string) bool {
	db, table, ok := strings.Cut(s, ".")
	return ok && db != "" && table != "" && !strings.Contains(table, ".")
}

// keyValue is a cdc.Value in JSON; Str as base64, since keys may be binary.
type keyValue struct {
	Null  bool    `json:"null,omitempty"`
	Int   int64   `json:"int,omitempty"`
	Float float64 `json:"float,omitempty"`
	Str   []byte  `json:"str,omitempty"`
}

func encodeKey(vs []cdc.Value) any {
	if vs == nil {
		return nil
	}
	kv := make([]keyValue, len(vs))
	for i, v := range vs {
		kv[i] = keyValue{Null: v.Null, Int: v.Int, Float: v.Float, Str: []byte(v.Str)}
	}
	b, _ := json.Marshal(kv) // cannot fail: no floats beyond JSON in keys
	return map[string]any{"string": string(b)}
}

func decodeKey(s string) ([]cdc.Value, error) {
	var kv []keyValue
	if err := json.Unmarshal([]byte(s), &kv); err != nil {
		return nil, fmt.Errorf("snapshot_after %q: %w", s, err)
	}
	out := make([]cdc.Value, len(kv))
	for i, k := range kv {
		out[i] = cdc.Value{Null: k.Null, Int: k.Int, Float: k.Float, Str: string(k.Str)}
	}
	return out, nil
}

// optional is s as a ["null", "string"] union: null when empty.
func optional(s string) any {
	if s == "" {
		return nil
	}
	return map[string]any{"string": s}
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// HistoryCodec writes and reads the records of the schema history
// (<prefix>._schema_history, schemas/schema_history.avsc; see history.go),
// one per table, keyed database.table. Like the checkpoint, a record is
// read back as untrusted input.
type HistoryCodec struct {
	enc      *avro.NativeEncoder
	versions []*avro.Type
}

// NewHistoryCodec parses schemas/schema_history.avsc.
func NewHistoryCodec() (*HistoryCodec, error) {
	enc, err := avro.NewNativeEncoder(schemas.SchemaHistory)
	if err != nil {
		return nil, fmt.Errorf("schema history schema: %w", err)
	}
	versions, err := avro.Versions(schemas.SchemaHistory)
	if err != nil {
		return nil, fmt.Errorf("schema history schema: %w", err)
	}
	return &HistoryCodec{enc: enc, versions: versions}, nil
}

// Append appends the Avro body of the entry s to b.
func (c *HistoryCodec) Append(b []byte, s *cdc.TableSchema) ([]byte, error) {
	b, err := c.enc.Append(b, historyNative(s))
	if err != nil {
		return nil, fmt.Errorf("schema history of %s: %w", s.ID(), err)
	}
	return b, nil
}

func historyNative(s *cdc.TableSchema) map[string]any {
	cols := make([]any, len(s.Columns))
	for i, c := range s.Columns {
		cols[i] = map[string]any{"name": c.Name, "column_type": c.ColumnType, "data_type": c.DataType, "charset": c.Charset, "nullable": c.Nullable}
	}
	key := make([]any, len(s.PrimaryKey))
	for i, k := range s.PrimaryKey {
		key[i] = k
	}
	return map[string]any{"database": s.Database, "table": s.Table, "columns": cols, "primary_key": key,
		"server_id": int64(s.ServerID), "file": s.File, "pos": int64(s.Pos)}
}

// maxColumns is the most columns a MySQL table has.
const maxColumns = 4096

// Decode reads the Avro body of a schema-history record with the bounded
// reader and checks it is a schema the producer can have written under
// key.
func (c *HistoryCodec) Decode(key string, body []byte) (*cdc.TableSchema, error) {
	v, err := avro.DecodeVersions(c.versions, body)
	if err != nil {
		return nil, err
	}
	f := avro.Fields{Object: v}
	serverID, pos := f.Long("server_id"), f.Long("pos")
	s := &cdc.TableSchema{Database: f.Str("database"), Table: f.Str("table"), Columns: []cdc.SchemaColumn{},
		ServerID: uint32(serverID), File: f.Str("file"), Pos: uint64(pos), PrimaryKey: f.Strs("primary_key")}
	cols, _ := v.Get("columns").([]any)
	for _, col := range cols {
		cf := avro.Fields{Object: col.(avro.Object)}
		nullable, _ := cf.Object.Get("nullable").(bool)
		s.Columns = append(s.Columns, cdc.SchemaColumn{Name: cf.Str("name"), ColumnType: cf.Str("column_type"),
			DataType: cf.Str("data_type"), Charset: cf.Str("charset"), Nullable: nullable})
		if cf.Err != nil {
			return nil, cf.Err
		}
	}
	names := make(map[string]bool, len(s.Columns))
	for _, col := range s.Columns {
		if col.Name == "" || names[col.Name] {
			f.Fail("column %q: empty, or twice", col.Name)
		}
		names[col.Name] = true
	}
	for i, k := range s.PrimaryKey {
		if !names[k] || slices.Contains(s.PrimaryKey[:i], k) {
			f.Fail("primary key column %q: not a column, or twice", k)
		}
	}
	switch {
	case s.ID() != key || !isTableID(key):
		f.Fail("table %s under the key %q", s.ID(), key)
	case len(s.Columns) == 0 || len(s.Columns) > maxColumns:
		f.Fail("%d columns", len(s.Columns))
	case serverID < 0 || serverID > math.MaxUint32 || pos < 0:
		f.Fail("server_id %d, pos %d", serverID, pos)
	}
	if f.Err != nil {
		return nil, f.Err
	}
	return s, nil
}
