package kafka

// The checkpoint: where the producer resumes. It is one record in the
// compacted topic <prefix>._checkpoint (key: the source name), written in
// the same Kafka transaction as the change records it covers. A
// read_committed reader therefore sees a checkpoint only together with every
// record before it, and the producer, resuming from the last committed one,
// neither loses nor repeats a change.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// Checkpoint is the position the producer resumes from (schemas/checkpoint.avsc).
type Checkpoint struct {
	Source     string // the source name: the topic prefix
	ServerID   uint32
	Flavor     string
	GTIDSet    string // "" when GTIDs are off or not known
	File       string
	Pos        uint64
	Epoch      uint64
	RowsDone   int            // row changes of the transaction at File:Pos already published (a large one, in parts)
	TxGTID     string         // that transaction's GTID
	SourceTime time.Time      // commit time of the last published source transaction
	Written    time.Time      // when the checkpoint was written
	SchemaIDs  map[string]int // registry ids in use, by subject
	Version    string
	// The snapshot's progress: tables left (the first being read) and the
	// primary-key values of the last row published of the first.
	SnapshotTables   []string
	SnapshotAfter    []cdc.Value
	SnapshotFilters  map[string]string // SQL conditions of on-demand snapshots, by table
	SnapshotRequests int64             // offset of the next request in <prefix>._signals
	SnapshotOrigins  map[string]int64  // by table of SnapshotTables: the request that added it
	SnapshotFailed   []SnapshotFailure // the last snapshots of a table that failed or were cancelled
	// Include and Exclude are the source.include/exclude patterns in force:
	// tables a later configuration adds are snapshotted.
	Include, Exclude []string

	from *kgo.Record // the record ReadCheckpoint read it from
}

// SnapshotFailure is a table's snapshot that ended before its last row:
// the source refused its reads, or a request cancelled it.
type SnapshotFailure struct {
	Table   string
	Request int64 // offset in <prefix>._signals of the request; -1: the initial snapshot
	Reason  string
	At      time.Time
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
	return goavro.Union("string", string(b))
}

func decodeKey(s string) ([]cdc.Value, error) {
	if s == "" {
		return nil, nil
	}
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

func optional(s string) any {
	if s == "" {
		return nil
	}
	return goavro.Union("string", s)
}

// CheckpointTopic returns <prefix>._checkpoint.
func (s *stateStore) CheckpointTopic() string { return s.cfg.TopicPrefix + "._checkpoint" }

// HeartbeatTopic returns <prefix>._heartbeat.
func (s *stateStore) HeartbeatTopic() string { return s.cfg.TopicPrefix + "._heartbeat" }

// putCheckpoint writes cp into the open transaction: Writer.Commit's
// checkpoint, written at start.
func (s *stateStore) putCheckpoint(ctx context.Context, cp *Checkpoint, start time.Time) error {
	return s.put(ctx, s.CheckpointTopic(), cp, start)
}

// PublishHeartbeat writes cp, the current position and source time, to
// <prefix>._heartbeat: even when the captured tables are idle, readers see
// how far the producer has read and how old the source's newest change is.
func (s *stateStore) PublishHeartbeat(ctx context.Context, cp *Checkpoint) error {
	if err := s.p.begin(); err != nil {
		return err
	}
	if err := s.put(ctx, s.HeartbeatTopic(), cp, time.Now()); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// put writes cp, stamped with this source, written at and the schema ids
// in use, to topic (the checkpoint or heartbeat topic, created compacted
// on first use) in the open transaction, registering the schema under
// <topic>-value.
func (s *stateStore) put(ctx context.Context, topic string, cp *Checkpoint, at time.Time) error {
	cp.Source, cp.Written, cp.SchemaIDs = s.cfg.TopicPrefix, at, s.registry.InUse()
	if err := s.p.ensureTopic(ctx, topic, 1, "compact"); err != nil {
		return err
	}
	id, err := s.registry.Register(ctx, topic+"-value", schemas.Checkpoint)
	if err != nil {
		return err
	}
	value, err := s.cpCodec.BinaryFromNative(header(uint32(id)), checkpointNative(cp))
	if err != nil {
		return err
	}
	s.p.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(s.cfg.TopicPrefix), Value: value})
	return nil
}

// checkpointNative is cp in goavro's form of schemas/checkpoint.avsc.
func checkpointNative(cp *Checkpoint) map[string]any {
	filters := make(map[string]any, len(cp.SnapshotFilters))
	for t, f := range cp.SnapshotFilters {
		filters[t] = f
	}
	origins := make(map[string]any, len(cp.SnapshotOrigins))
	for t, o := range cp.SnapshotOrigins {
		origins[t] = o
	}
	failed := make([]any, len(cp.SnapshotFailed))
	for i, f := range cp.SnapshotFailed {
		failed[i] = map[string]any{"table": f.Table, "request": f.Request, "reason": f.Reason, "at_ms": f.At.UnixMilli()}
	}
	ids := make(map[string]any, len(cp.SchemaIDs))
	for s, id := range cp.SchemaIDs {
		ids[s] = id
	}
	return map[string]any{
		"source": cp.Source, "server_id": int64(cp.ServerID), "server_uuid": nil, "flavor": cp.Flavor,
		"gtid_set": optional(cp.GTIDSet), "file": cp.File, "pos": int64(cp.Pos), "epoch": int64(cp.Epoch),
		"rows_done": int64(cp.RowsDone), "tx_gtid": optional(cp.TxGTID), "schema_ids": ids,
		"source_ts_ms": cp.SourceTime.UnixMilli(), "written_ts_ms": cp.Written.UnixMilli(), "version": cp.Version,
		"snapshot_tables": strs(cp.SnapshotTables), "snapshot_after": encodeKey(cp.SnapshotAfter),
		"snapshot_filters": filters, "snapshot_requests": cp.SnapshotRequests,
		"include": strs(cp.Include), "exclude": strs(cp.Exclude),
		"snapshot_origins": origins, "snapshot_failed": failed,
	}
}

func header(id uint32) []byte {
	return []byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
}

// decodeCheckpoint reads a framed checkpoint record with the bounded
// reader (t: schemas/checkpoint.avsc, parsed) and checks every field
// holds a value the producer can have written for source.
func decodeCheckpoint(t []*avro.Type, source string, b []byte) (*Checkpoint, error) {
	v, err := decodeState(t, b)
	if err != nil {
		return nil, err
	}
	f := fields{o: v}
	cp := &Checkpoint{Source: f.str("source"), Flavor: f.str("flavor"), GTIDSet: f.str("gtid_set"), File: f.str("file"),
		TxGTID: f.str("tx_gtid"), Version: f.str("version"), SnapshotRequests: f.long("snapshot_requests"),
		SourceTime: time.UnixMilli(f.long("source_ts_ms")), Written: time.UnixMilli(f.long("written_ts_ms"))}
	serverID, pos, epoch, rows := f.long("server_id"), f.long("pos"), f.long("epoch"), f.long("rows_done")
	cp.ServerID, cp.Pos, cp.Epoch, cp.RowsDone = uint32(serverID), uint64(pos), uint64(epoch), int(rows)
	cp.SnapshotTables, cp.Include, cp.Exclude = f.strs("snapshot_tables"), f.strs("include"), f.strs("exclude")
	if ids := f.dict("schema_ids"); len(ids) > 0 {
		cp.SchemaIDs = make(map[string]int, len(ids))
		for s, id := range ids {
			n, _ := id.(int64)
			if n <= 0 || n > math.MaxInt32 {
				f.fail("schema_ids[%q] = %d", s, n)
			}
			cp.SchemaIDs[s] = int(n)
		}
	}
	if filters := f.dict("snapshot_filters"); len(filters) > 0 {
		cp.SnapshotFilters = make(map[string]string, len(filters))
		for t, filter := range filters {
			cp.SnapshotFilters[t], _ = filter.(string)
		}
	}
	if origins := f.dict("snapshot_origins"); len(origins) > 0 {
		cp.SnapshotOrigins = make(map[string]int64, len(origins))
		for t, o := range origins {
			n, _ := o.(int64)
			if n < 0 || !slices.Contains(cp.SnapshotTables, t) {
				f.fail("snapshot_origins[%q] = %d: not a table of snapshot_tables, or a negative offset", t, n)
			}
			cp.SnapshotOrigins[t] = n
		}
	}
	cp.SnapshotFailed = f.failures("snapshot_failed")
	switch {
	case cp.Source != source:
		f.fail("source %q, want %q", cp.Source, source)
	case serverID < 0 || serverID > math.MaxUint32:
		f.fail("server_id %d", serverID)
	case cp.Flavor != "" && cp.Flavor != "mysql" && cp.Flavor != "mariadb":
		f.fail("flavor %q", cp.Flavor)
	case pos < 0 || epoch < 0 || rows < 0 || cp.SnapshotRequests < 0:
		f.fail("pos %d, epoch %d, rows_done %d, snapshot_requests %d: a negative", pos, epoch, rows, cp.SnapshotRequests)
	}
	for _, p := range append(append([]string{}, cp.Include...), cp.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			f.fail("pattern %q: %v", p, err)
		}
	}
	for i, t := range cp.SnapshotTables {
		if !isTableID(t) || slices.Contains(cp.SnapshotTables[:i], t) {
			f.fail("snapshot_tables[%d] %q: not a database.table, or twice", i, t)
		}
	}
	for t := range cp.SnapshotFilters {
		if !slices.Contains(cp.SnapshotTables, t) {
			f.fail("snapshot_filters[%q]: not a table of snapshot_tables", t)
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	if after := f.str("snapshot_after"); after != "" {
		if len(cp.SnapshotTables) == 0 {
			return nil, fmt.Errorf("%w: snapshot_after without snapshot_tables", ErrInvalid)
		}
		if cp.SnapshotAfter, err = decodeKey(after); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return cp, nil
}

// maxFailures is the most snapshot failures a checkpoint holds (the
// producer keeps 32).
const maxFailures = 64

// failures reads the snapshot_failed array.
func (f *fields) failures(name string) []SnapshotFailure {
	vs, _ := f.o.Get(name).([]any)
	if len(vs) > maxFailures {
		f.fail("%s: %d entries", name, len(vs))
		return nil
	}
	var out []SnapshotFailure
	for i, v := range vs {
		o, _ := v.(avro.Object)
		e := fields{o: o}
		sf := SnapshotFailure{Table: e.str("table"), Request: e.long("request"), Reason: e.str("reason"), At: time.UnixMilli(e.long("at_ms"))}
		if e.err != nil || !isTableID(sf.Table) || sf.Request < -1 || len(sf.Reason) > 4096 {
			f.fail("%s[%d]: table %q, request %d, a reason of %d bytes", name, i, sf.Table, sf.Request, len(sf.Reason))
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

// ReadCheckpoint returns the last committed checkpoint of this source, or
// nil when there is none. On a transactional writer it first takes over the
// transactional id, which fences any other producer of the same source and
// aborts its open transaction, so that what it reads is final.
//
// The checkpoint is the last record under the source's key: it must have
// been committed in a transaction of this source's transactional id (with
// kafka.transactions off, only the topic's ACLs vouch for it), read with
// the bounded reader, and hold values the producer can have written.
// Otherwise ReadCheckpoint returns a *StateError naming the record: the
// producer must not start anywhere else.
func (s *stateStore) ReadCheckpoint(ctx context.Context) (*Checkpoint, error) {
	if s.p.txn.transactional {
		if _, _, err := s.p.client.ProducerID(ctx); err != nil {
			err = authorization(err, s.p.principal, access{txnID: s.p.txn.id, txnOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"})
			return nil, fmt.Errorf("take over transactional id %s: %w", s.p.txn.id, err)
		}
	}
	t, err := stateTypes(schemas.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("checkpoint schema: %w", err)
	}
	last, err := s.lastCheckpoint(ctx)
	if err != nil || last == nil {
		return nil, err
	}
	if err := s.trusted(ctx, last); err != nil {
		return nil, err
	}
	cp, err := decodeCheckpoint(t, s.cfg.TopicPrefix, last.Value)
	if err != nil {
		return nil, refused(last, err)
	}
	cp.from = last
	return cp, nil
}

// lastCheckpoint returns the last committed record under the source's key
// in the checkpoint topic; nil when there is none.
func (s *stateStore) lastCheckpoint(ctx context.Context) (*kgo.Record, error) {
	var last *kgo.Record
	err := s.readCommitted(ctx, s.CheckpointTopic(), func(r *kgo.Record) {
		if string(r.Key) == s.cfg.TopicPrefix {
			last = r
		}
	})
	return last, err
}

// Refuse returns err, a check of cp only the caller can make (the tables
// the configuration captures), as the *StateError of the record cp was
// read from.
func (cp *Checkpoint) Refuse(err error) error {
	if cp.from == nil {
		return err
	}
	return refused(cp.from, fmt.Errorf("%w: %w", ErrInvalid, err))
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
