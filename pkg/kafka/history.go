package kafka

// history.go: the producer's schema history (see pkg/binlog/history.go) in
// the compacted topic <prefix>._schema_history, key = database.table. Its
// entries are written in the Kafka transaction of the source transaction
// that recorded them, so a read_committed reader sees exactly the entries
// up to the last committed checkpoint: the schemas in force where the
// producer resumes. What an entry holds is its owner's (binlog.HistoryCodec):
// the store registers its schema and keeps the bytes.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// StateEntry is a keyed state record to write: Body is the Avro body of
// the record's schema, nil for a tombstone that erases Key's entry.
type StateEntry struct {
	Key  string
	Body []byte
}

// SchemaHistoryTopic returns <prefix>._schema_history.
func (s *stateStore) SchemaHistoryTopic() string { return s.cfg.TopicPrefix + "._schema_history" }

// PublishSchemas writes schema-history entries, Avro bodies of schema,
// into the open transaction.
func (s *stateStore) PublishSchemas(ctx context.Context, schema string, entries []StateEntry) error {
	return s.publishEntries(ctx, s.SchemaHistoryTopic(), schema, entries)
}

// SnapshotPlanTopic returns <prefix>._snapshot_plan.
func (s *stateStore) SnapshotPlanTopic() string { return s.cfg.TopicPrefix + "._snapshot_plan" }

// PublishSnapshotPlan writes v, stamped with this source, as the source's
// snapshot plan (key: the source name) into the open transaction: the
// tables a snapshot has to read, which the checkpoints committed from then
// on name instead of listing them.
func (s *stateStore) PublishSnapshotPlan(ctx context.Context, v StateValue) error {
	if err := s.p.begin(); err != nil {
		return err
	}
	return s.put(ctx, s.SnapshotPlanTopic(), v, time.Now())
}

// ReadSnapshotPlan returns the last committed snapshot plan of the source,
// or nil when there is none; like the checkpoint, it must have been
// committed by this source's transactional id and be framed in the
// Confluent wire format, or a *StateError names it. Call after
// ReadCheckpoint, which makes what is read final.
func (s *stateStore) ReadSnapshotPlan(ctx context.Context) (*StateRecord, error) {
	last, err := s.readLast(ctx, s.SnapshotPlanTopic(), s.cfg.TopicPrefix)
	if err != nil || last == nil {
		return nil, err
	}
	if err := s.trusted(ctx, last); err != nil {
		return nil, err
	}
	return stateRecord(last)
}

// publishEntries writes entries, Avro bodies of schema, to the compacted
// topic (created on first use) in the open transaction, registering schema
// under <topic>-value.
func (s *stateStore) publishEntries(ctx context.Context, topic, schema string, entries []StateEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.p.begin(); err != nil {
		return err
	}
	if err := s.p.ensureTopic(ctx, topic, 1, "compact"); err != nil {
		return err
	}
	id, err := s.registry.Register(ctx, topic+"-value", schema)
	if err != nil {
		return err
	}
	for _, e := range entries {
		var value []byte
		if e.Body != nil {
			value = append(header(uint32(id)), e.Body...)
		}
		s.p.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(e.Key), Value: value})
	}
	return nil
}

// ReadSchemaHistory returns the committed schema-history records, the last
// of each key (as compaction keeps it), in the order their keys first
// appear; an erased key (a tombstone last) has none. Call after
// ReadCheckpoint, which makes what is read final. Like the checkpoint, each
// must have been committed by this source's transactional id and be framed
// in the Confluent wire format; otherwise a *StateError names it. Its
// owner reads the body as untrusted input, under its key, and refuses it
// with StateRecord.Refuse.
func (s *stateStore) ReadSchemaHistory(ctx context.Context) ([]*StateRecord, error) {
	last := map[string]*kgo.Record{}
	var order []string
	err := s.readCommitted(ctx, s.SchemaHistoryTopic(), func(r *kgo.Record) {
		if last[string(r.Key)] == nil {
			order = append(order, string(r.Key))
		}
		last[string(r.Key)] = r
	})
	if err != nil {
		return nil, err
	}
	var out []*StateRecord
	for _, key := range order {
		r := last[key]
		if err := s.trusted(ctx, r); err != nil {
			return nil, err
		}
		if r.Value == nil {
			continue // erased
		}
		rec, err := stateRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}
