package kafka

// The checkpoint: where the producer resumes. It is one record in the
// compacted topic <prefix>._checkpoint (key: the source name), written in
// the same Kafka transaction as the change records it covers. A
// read_committed reader therefore sees a checkpoint only together with every
// record before it, and the producer, resuming from the last committed one,
// neither loses nor repeats a change. What the record holds is its owner's:
// the store registers its schema, stamps it (Stamp) and keeps the bytes.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// StateValue is the value of a state record as its owner encodes it.
type StateValue interface {
	// StateSchema is the Avro schema of the value, registered under
	// <topic>-value.
	StateSchema() string
	// AppendState appends the value's Avro body, stamped with st, to b.
	AppendState(b []byte, st Stamp) ([]byte, error)
	// StateTime is the source commit time the value stands for
	// (strait_producer_checkpoint_source_timestamp_seconds).
	StateTime() time.Time
}

// Stamp is what only the store knows of a state record it writes.
type Stamp struct {
	Source  string    // the source name: the topic prefix, also the record key
	Written time.Time // when it is written
}

// StateRecord is a state record read back: its key and Avro body, for its
// owner to decode (with the schema it writes, not looked up by SchemaID),
// and the record it came from, for Refuse.
type StateRecord struct {
	Key      string
	SchemaID int
	Body     []byte
	from     *kgo.Record
}

// Refuse returns err, a check of the record only its owner can make, as
// the *StateError naming the record: the producer must not start anywhere
// else.
func (r *StateRecord) Refuse(err error) error {
	if r == nil || r.from == nil {
		return err
	}
	return refused(r.from, err)
}

// CheckpointTopic returns <prefix>._checkpoint.
func (s *stateStore) CheckpointTopic() string { return s.cfg.TopicPrefix + "._checkpoint" }

// HeartbeatTopic returns <prefix>._heartbeat.
func (s *stateStore) HeartbeatTopic() string { return s.cfg.TopicPrefix + "._heartbeat" }

// putCheckpoint writes cp into the open transaction: Writer.Commit's
// checkpoint, written at start.
func (s *stateStore) putCheckpoint(ctx context.Context, cp StateValue, start time.Time) error {
	return s.put(ctx, s.CheckpointTopic(), cp, start)
}

// PublishHeartbeat writes cp, the current position and source time, to
// <prefix>._heartbeat: even when the captured tables are idle, readers see
// how far the producer has read and how old the source's newest change is.
func (s *stateStore) PublishHeartbeat(ctx context.Context, cp StateValue) error {
	if err := s.p.begin(); err != nil {
		return err
	}
	if err := s.put(ctx, s.HeartbeatTopic(), cp, time.Now()); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// put writes v, stamped with this source and written at, to topic (the checkpoint or heartbeat topic, created compacted
// on first use) in the open transaction, registering its schema under
// <topic>-value.
func (s *stateStore) put(ctx context.Context, topic string, v StateValue, at time.Time) error {
	st := Stamp{Source: s.cfg.TopicPrefix, Written: at}
	if err := s.p.ensureTopic(ctx, topic, 1, "compact"); err != nil {
		return err
	}
	id, err := s.registry.Register(ctx, topic+"-value", v.StateSchema())
	if err != nil {
		return err
	}
	value, err := v.AppendState(header(uint32(id)), st)
	if err != nil {
		return err
	}
	s.p.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(s.cfg.TopicPrefix), Value: value})
	return nil
}

// header is the Confluent wire format's frame of a body of schema id.
func header(id uint32) []byte {
	return []byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
}

// ReadCheckpoint returns the last committed checkpoint record of this
// source, or nil when there is none. On a transactional writer it first
// takes over the transactional id, which fences any other producer of the
// same source and aborts its open transaction, so that what it reads is
// final.
//
// The checkpoint is the last record under the source's key: it must have
// been committed in a transaction of this source's transactional id (with
// kafka.transactions off, only the topic's ACLs vouch for it) and be framed
// in the Confluent wire format; otherwise ReadCheckpoint returns a
// *StateError naming the record. Its owner reads the body as untrusted
// input and refuses it with StateRecord.Refuse.
func (s *stateStore) ReadCheckpoint(ctx context.Context) (*StateRecord, error) {
	if s.p.txn.transactional {
		if _, _, err := s.p.client.ProducerID(ctx); err != nil {
			err = authorization(err, s.p.principal, access{txnID: s.p.txn.id, txnOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"})
			return nil, fmt.Errorf("take over transactional id %s: %w", s.p.txn.id, err)
		}
	}
	last, err := s.lastCheckpoint(ctx)
	if err != nil || last == nil {
		return nil, err
	}
	if err := s.trusted(ctx, last); err != nil {
		return nil, err
	}
	return stateRecord(last)
}

// stateRecord is r's value unframed, or the *StateError of a value that is
// not a framed record (a tombstone included).
func stateRecord(r *kgo.Record) (*StateRecord, error) {
	body, err := stateBody(r.Value)
	if err != nil {
		return nil, refused(r, err)
	}
	id, _, _ := splitFrame(r.Value)
	return &StateRecord{Key: string(r.Key), SchemaID: id, Body: body, from: r}, nil
}

// stateBody is the Avro body of a state record's framed value b.
func stateBody(b []byte) ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: a tombstone", ErrInvalid)
	}
	_, body, err := splitFrame(b)
	return body, err
}

// lastCheckpoint returns the last committed record under the source's key
// in the checkpoint topic; nil when there is none.
func (s *stateStore) lastCheckpoint(ctx context.Context) (*kgo.Record, error) {
	return s.readLast(ctx, s.CheckpointTopic(), s.cfg.TopicPrefix)
}
