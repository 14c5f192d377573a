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
	"errors"
	"fmt"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

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
	// Include and Exclude are the source.include/exclude patterns in force:
	// tables a later configuration adds are snapshotted.
	Include, Exclude []string
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
func (w *Writer) CheckpointTopic() string { return w.cfg.TopicPrefix + "._checkpoint" }

// HeartbeatTopic returns <prefix>._heartbeat.
func (w *Writer) HeartbeatTopic() string { return w.cfg.TopicPrefix + "._heartbeat" }

// PublishHeartbeat writes cp, the current position and source time, to
// <prefix>._heartbeat: even when the captured tables are idle, readers see
// how far the producer has read and how old the source's newest change is.
func (w *Writer) PublishHeartbeat(ctx context.Context, cp *Checkpoint) error {
	if err := w.begin(); err != nil {
		return err
	}
	cp.Source, cp.Written, cp.SchemaIDs = w.cfg.TopicPrefix, time.Now(), w.registry.InUse()
	value, err := w.encodeCheckpoint(ctx, w.HeartbeatTopic(), cp)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	w.produce(ctx, &kgo.Record{Topic: w.HeartbeatTopic(), Key: []byte(w.cfg.TopicPrefix), Value: value})
	return nil
}

// encodeCheckpoint encodes cp for topic (the checkpoint or heartbeat topic,
// created compacted on first use), registering the schema under
// <topic>-value.
func (w *Writer) encodeCheckpoint(ctx context.Context, topic string, cp *Checkpoint) ([]byte, error) {
	if err := w.ensureTopic(ctx, topic, 1, "compact"); err != nil {
		return nil, err
	}
	id, err := w.registry.Register(ctx, topic+"-value", schemas.Checkpoint)
	if err != nil {
		return nil, err
	}
	tables := strs(cp.SnapshotTables)
	filters := make(map[string]any, len(cp.SnapshotFilters))
	for t, f := range cp.SnapshotFilters {
		filters[t] = f
	}
	ids := make(map[string]any, len(cp.SchemaIDs))
	for s, id := range cp.SchemaIDs {
		ids[s] = id
	}
	native := map[string]any{
		"source": cp.Source, "server_id": int64(cp.ServerID), "server_uuid": nil, "flavor": cp.Flavor,
		"gtid_set": optional(cp.GTIDSet), "file": cp.File, "pos": int64(cp.Pos), "epoch": int64(cp.Epoch),
		"rows_done": int64(cp.RowsDone), "tx_gtid": optional(cp.TxGTID), "schema_ids": ids,
		"source_ts_ms": cp.SourceTime.UnixMilli(), "written_ts_ms": cp.Written.UnixMilli(), "version": cp.Version,
		"snapshot_tables": tables, "snapshot_after": encodeKey(cp.SnapshotAfter),
		"snapshot_filters": filters, "snapshot_requests": cp.SnapshotRequests,
		"include": strs(cp.Include), "exclude": strs(cp.Exclude),
	}
	return w.cpCodec.BinaryFromNative(header(uint32(id)), native)
}

func header(id uint32) []byte {
	return []byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
}

func (w *Writer) decodeCheckpoint(b []byte) (*Checkpoint, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, errors.New("not a Confluent-framed record")
	}
	v, _, err := w.cpCodec.NativeFromBinary(b[5:])
	if err != nil {
		return nil, err
	}
	m := v.(map[string]any)
	str := func(k string) string {
		if u, ok := m[k].(map[string]any); ok {
			s, _ := u["string"].(string)
			return s
		}
		s, _ := m[k].(string)
		return s
	}
	cp := &Checkpoint{Source: str("source"), ServerID: uint32(m["server_id"].(int64)), Flavor: str("flavor"),
		GTIDSet: str("gtid_set"), File: str("file"), Pos: uint64(m["pos"].(int64)), Epoch: uint64(m["epoch"].(int64)),
		RowsDone: int(m["rows_done"].(int64)), TxGTID: str("tx_gtid"),
		SourceTime: time.UnixMilli(m["source_ts_ms"].(int64)), Written: time.UnixMilli(m["written_ts_ms"].(int64)),
		Version: str("version"), SchemaIDs: map[string]int{}}
	for s, id := range m["schema_ids"].(map[string]any) {
		cp.SchemaIDs[s] = int(id.(int32))
	}
	cp.SnapshotTables, cp.Include, cp.Exclude = fromStrs(m["snapshot_tables"]), fromStrs(m["include"]), fromStrs(m["exclude"])
	for t, f := range m["snapshot_filters"].(map[string]any) {
		if cp.SnapshotFilters == nil {
			cp.SnapshotFilters = map[string]string{}
		}
		cp.SnapshotFilters[t] = f.(string)
	}
	cp.SnapshotRequests = m["snapshot_requests"].(int64)
	if cp.SnapshotAfter, err = decodeKey(str("snapshot_after")); err != nil {
		return nil, err
	}
	return cp, nil
}

// ReadCheckpoint returns the last committed checkpoint of this source, or
// nil when there is none. On a transactional writer it first takes over the
// transactional id, which fences any other producer of the same source and
// aborts its open transaction, so that what it reads is final.
func (w *Writer) ReadCheckpoint(ctx context.Context) (*Checkpoint, error) {
	if w.txn.transactional {
		if _, _, err := w.client.ProducerID(ctx); err != nil {
			err = authorization(err, w.principal, access{txnID: w.txn.id, txnOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"})
			return nil, fmt.Errorf("take over transactional id %s: %w", w.txn.id, err)
		}
	}
	var last []byte
	err := w.readCommitted(ctx, w.CheckpointTopic(), func(r *kgo.Record) {
		if string(r.Key) == w.cfg.TopicPrefix && r.Value != nil {
			last = r.Value
		}
	})
	if err != nil {
		return nil, err
	}
	if last == nil {
		return nil, nil
	}
	cp, err := w.decodeCheckpoint(last)
	if err != nil {
		return nil, fmt.Errorf("checkpoint in %s: %w", w.CheckpointTopic(), err)
	}
	return cp, nil
}

// readCommitted calls fn with each committed record of partition 0 of topic,
// in order, up to its last stable offset (everything below it is committed
// or aborted); nothing when the topic does not exist.
func (w *Writer) readCommitted(ctx context.Context, topic string, fn func(*kgo.Record)) error {
	describe := access{topic: topic, topicOp: "DESCRIBE"}
	offsets, err := w.admin.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("read the offsets of %s: %w", topic, authorization(err, w.principal, describe))
	}
	if err := offsets.Error(); errors.Is(err, kerr.TopicAuthorizationFailed) {
		// Not "no topic": resuming from scratch would publish again.
		return fmt.Errorf("read the offsets of %s: %w", topic, authorization(err, w.principal, describe))
	}
	lo, ok := offsets.Lookup(topic, 0)
	if !ok || lo.Err != nil || lo.Offset <= 0 {
		return nil // no topic, or nothing committed yet
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(w.cfg.Brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // to know when the end is reached
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}})}, w.sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for reached := false; !reached; {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s up to offset %d: %w", topic, lo.Offset, err)
		}
		if err := fetches.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, authorization(err, w.principal, access{topic: topic, topicOp: "READ"}))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() { // control records are the transactions' markers
				fn(r)
			}
			reached = reached || r.Offset >= lo.Offset-1
		})
	}
	return nil
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func fromStrs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
