package pipeline

// checkpoint.go: the producer's checkpoint — the source's state
// (binlog.State) and the producer's fields around it — and its record in
// <prefix>._checkpoint (schemas/checkpoint.avsc), which the Kafka state
// store keeps as bytes, like the schema history's (binlog.HistoryCodec).
// Both are read back as untrusted input: a record counts only if it holds
// values the producer can have written for its source.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/schemas"
)

// Checkpoint is the position the producer resumes from: the source's state
// and what the producer notes with it.
type Checkpoint struct {
	binlog.State
	Source     string         // the source name: the topic prefix
	SourceTime time.Time      // commit time of the last published source transaction
	Written    time.Time      // when the checkpoint was written
	SchemaIDs  map[string]int // registry ids in use, by subject: read from checkpoints before 0.2, no longer written
	Version    string         // the producer's release
	// Plan, when not 0, is the number of the snapshot plan
	// (<prefix>._snapshot_plan) the snapshot's tables, filters and
	// origins come from, and PlanDone how many tables at its head are
	// done: the record leaves those out, and stays the same size however
	// many tables the snapshot holds.
	Plan, PlanDone int64

	from *kafka.StateRecord // the record ReadCheckpoint read it from
}

// Refuse returns err, a check of cp only the caller can make (the tables
// the configuration captures), as the *kafka.StateError of the record cp
// was read from.
func (cp *Checkpoint) Refuse(err error) error {
	if cp.from == nil {
		return err
	}
	return cp.from.Refuse(fmt.Errorf("%w: %w", kafka.ErrInvalid, err))
}

// Codec writes and reads the producer's state records: checkpoints and
// schema-history entries.
type Codec struct {
	enc          *avro.NativeEncoder
	versions     []*avro.Type // schemas/checkpoint.avsc and its earlier layouts
	planEnc      *avro.NativeEncoder
	planVersions []*avro.Type // schemas/snapshot_plan.avsc
	history      *binlog.HistoryCodec
	plan         *snapshotPlan // the snapshot plan last written or read; nil: none
}

// NewCodec parses schemas/checkpoint.avsc, schemas/snapshot_plan.avsc and
// schemas/schema_history.avsc. A codec remembers the snapshot plan it last
// wrote or read: the engine writes with the codec the checkpoint was read
// with.
func NewCodec() (*Codec, error) {
	history, err := binlog.NewHistoryCodec()
	if err != nil {
		return nil, err
	}
	enc, err := avro.NewNativeEncoder(schemas.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("checkpoint schema: %w", err)
	}
	versions, err := avro.Versions(schemas.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("checkpoint schema: %w", err)
	}
	planEnc, err := avro.NewNativeEncoder(schemas.SnapshotPlan)
	if err != nil {
		return nil, fmt.Errorf("snapshot plan schema: %w", err)
	}
	planVersions, err := avro.Versions(schemas.SnapshotPlan)
	if err != nil {
		return nil, fmt.Errorf("snapshot plan schema: %w", err)
	}
	return &Codec{enc: enc, versions: versions, planEnc: planEnc, planVersions: planVersions, history: history}, nil
}

// Append appends the Avro body of cp to b.
func (c *Codec) Append(b []byte, cp *Checkpoint) ([]byte, error) {
	return c.enc.Append(b, checkpointNative(cp))
}

// checkpointNative is cp in goavro's form of schemas/checkpoint.avsc.
func checkpointNative(cp *Checkpoint) map[string]any {
	ids := make(map[string]any, len(cp.SchemaIDs))
	for s, id := range cp.SchemaIDs {
		ids[s] = id
	}
	native := map[string]any{"source": cp.Source, "schema_ids": ids, "source_ts_ms": cp.SourceTime.UnixMilli(),
		"written_ts_ms": cp.Written.UnixMilli(), "version": cp.Version}
	cp.State.AppendNative(native)
	native["snapshot_plan"], native["snapshot_done"] = cp.Plan, cp.PlanDone
	if cp.Plan != 0 {
		native["snapshot_tables"], native["snapshot_filters"], native["snapshot_origins"] = []any{}, map[string]any{}, map[string]any{}
	}
	return native
}

// Decode reads the Avro body of a checkpoint record with the bounded
// reader and checks every field holds a value the producer can have
// written for source.
func (c *Codec) Decode(body []byte, source string) (*Checkpoint, error) {
	v, err := avro.DecodeVersions(c.versions, body)
	if err != nil {
		return nil, err
	}
	f := &avro.Fields{Object: v}
	cp := &Checkpoint{Source: f.Str("source"), Version: f.Str("version"),
		SourceTime: time.UnixMilli(f.Long("source_ts_ms")), Written: time.UnixMilli(f.Long("written_ts_ms"))}
	if ids := f.Dict("schema_ids"); len(ids) > 0 {
		cp.SchemaIDs = make(map[string]int, len(ids))
		for s, id := range ids {
			n, _ := id.(int64)
			if n <= 0 || n > math.MaxInt32 {
				f.Fail("schema_ids[%q] = %d", s, n)
			}
			cp.SchemaIDs[s] = int(n)
		}
	}
	if cp.Source != source {
		f.Fail("source %q, want %q", cp.Source, source)
	}
	cp.Plan, cp.PlanDone = f.Long("snapshot_plan"), f.Long("snapshot_done")
	cp.State = binlog.ReadState(f)
	snap := &cp.Snapshot
	switch {
	case cp.Plan < 0 || cp.PlanDone < 0 || cp.Plan == 0 && cp.PlanDone != 0:
		f.Fail("snapshot_plan %d, snapshot_done %d", cp.Plan, cp.PlanDone)
	case cp.Plan != 0 && (len(snap.Tables) > 0 || len(snap.Filters) > 0 || len(snap.Origins) > 0):
		f.Fail("snapshot_plan %d next to snapshot_tables, _filters or _origins", cp.Plan)
	}
	if f.Err != nil {
		return nil, f.Err
	}
	return cp, nil
}

// Value is cp as the Kafka state store writes it: stamped with the source
// and the time it is written.
func (c *Codec) Value(cp *Checkpoint) kafka.StateValue { return stateValue{c, cp} }

// stateValue is Codec.Value.
type stateValue struct {
	c  *Codec
	cp *Checkpoint
}

// StateSchema is schemas/checkpoint.avsc.
func (v stateValue) StateSchema() string { return schemas.Checkpoint }

// StateTime is the commit time of the last source transaction published.
func (v stateValue) StateTime() time.Time { return v.cp.SourceTime }

// AppendState stamps the checkpoint, which /status then shows as written,
// and appends its body.
func (v stateValue) AppendState(b []byte, st kafka.Stamp) ([]byte, error) {
	v.cp.Source, v.cp.Written = st.Source, st.Written
	return v.c.Append(b, v.cp)
}

// CheckpointReader reads the last committed checkpoint record and snapshot
// plan record: *kafka.Writer.
type CheckpointReader interface {
	ReadCheckpoint(ctx context.Context) (*kafka.StateRecord, error)
	ReadSnapshotPlan(ctx context.Context) (*kafka.StateRecord, error)
}

// ReadCheckpoint returns the last committed checkpoint of source, or nil
// when there is none, with the snapshot tables of the plan it names; a
// record that does not read as one the producer can have written is
// refused with a *kafka.StateError naming it.
func (c *Codec) ReadCheckpoint(ctx context.Context, r CheckpointReader, source string) (*Checkpoint, error) {
	rec, err := r.ReadCheckpoint(ctx)
	if err != nil || rec == nil {
		return nil, err
	}
	cp, err := c.decodeRecord(rec, source)
	if err != nil || cp.Plan == 0 {
		return cp, err
	}
	// Only a checkpoint naming a plan reads one: a producer that never
	// snapshots many tables needs no access to the plan topic.
	plan, err := r.ReadSnapshotPlan(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.readPlan(cp, plan); err != nil {
		return nil, err
	}
	return cp, nil
}

// FromRecord decodes the checkpoint record rec of source (nil: none) and,
// when it names a snapshot plan, takes its tables from plan, the last
// snapshot plan record (nil: none); a record that does not read as one
// the producer can have written is refused with a *kafka.StateError
// naming it.
func (c *Codec) FromRecord(rec, plan *kafka.StateRecord, source string) (*Checkpoint, error) {
	if rec == nil {
		return nil, nil
	}
	cp, err := c.decodeRecord(rec, source)
	if err != nil {
		return nil, err
	}
	if err := c.readPlan(cp, plan); err != nil {
		return nil, err
	}
	return cp, nil
}

// decodeRecord decodes the checkpoint record rec of source, refusing it
// with a *kafka.StateError naming it.
func (c *Codec) decodeRecord(rec *kafka.StateRecord, source string) (*Checkpoint, error) {
	cp, err := c.Decode(rec.Body, source)
	if err != nil {
		return nil, rec.Refuse(err)
	}
	cp.from = rec
	return cp, nil
}

// Through decodes the checkpoint record rec of source (refusing it as
// FromRecord does) and returns the sequence below which every change it
// covers lies (binlog.State.Through) and the source commit time of the
// last source transaction published: what the consumer's watermark is
// made of. cut is false while a snapshot is in progress: rows of its
// tables that are not read yet are older than that sequence but not
// published, so no state of the source can be read below it.
func (c *Codec) Through(rec *kafka.StateRecord, source string) (through cdc.Position, commit time.Time, cut bool, err error) {
	if rec == nil {
		return cdc.Position{}, time.Time{}, false, errors.New("no checkpoint")
	}
	cp, err := c.decodeRecord(rec, source)
	if err != nil {
		return cdc.Position{}, time.Time{}, false, err
	}
	// A snapshot's tables are in the checkpoint, or in the plan it names.
	return cp.Through(), cp.SourceTime, len(cp.Snapshot.Tables) == 0 && cp.Plan == 0, nil
}

// historyEntries are the schema-history entries es as the Kafka state
// store writes them: an entry without columns erases its table's entry (a
// tombstone).
func (c *Codec) historyEntries(es []cdc.TableSchema) ([]kafka.StateEntry, error) {
	out := make([]kafka.StateEntry, len(es))
	for i := range es {
		e := &es[i]
		out[i].Key = e.ID()
		if e.Columns == nil {
			continue
		}
		var err error
		if out[i].Body, err = c.history.Append(nil, e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// HistoryReader reads the committed schema-history records:
// *kafka.Writer.
type HistoryReader interface {
	ReadSchemaHistory(ctx context.Context) ([]*kafka.StateRecord, error)
}

// ReadSchemaHistory returns the committed schema history, by
// database.table (call after ReadCheckpoint, which makes what is read
// final); a record that does not read as a schema the producer can have
// written under its key is refused with a *kafka.StateError naming it.
func (c *Codec) ReadSchemaHistory(ctx context.Context, r HistoryReader) (map[string]*cdc.TableSchema, error) {
	recs, err := r.ReadSchemaHistory(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*cdc.TableSchema, len(recs))
	for _, rec := range recs {
		s, err := c.history.Decode(rec.Key, rec.Body)
		if err != nil {
			return nil, rec.Refuse(err)
		}
		out[rec.Key] = s
	}
	return out, nil
}

// NeededBinlog names the binlog file the checkpoint last holds points
// into, for binlog.WatchRetention: nothing while it holds none.
func NeededBinlog(last *atomic.Pointer[Checkpoint]) binlog.Needed {
	return func() (uint32, string) {
		if cp := last.Load(); cp != nil {
			return cp.ServerID, cp.File
		}
		return 0, ""
	}
}
