package kafka

// state.go reads back the producer's own state — <prefix>._checkpoint and
// <prefix>._schema_history — as untrusted input: whoever can write those
// topics could otherwise make the producer skip rows, snapshot tables
// outside its configuration, or die at every start. A state record counts
// only if it was committed in a transaction of this source's
// transactional id (the producer id of every record batch says who wrote
// it: read_committed alone also returns records written without a
// transaction), is read with the bounded Avro reader, and holds values the
// producer can have written. The store checks the first and the framing;
// the record's owner decodes and checks the rest (the checkpoint:
// pkg/pipeline and pkg/binlog; the schema history: pkg/binlog).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/avro"
)

// stateStore keeps the producer's state in its state topics: the
// checkpoint (and its copy, the heartbeat) and the schema history, written
// through the producer into its open transaction, and read back as
// untrusted input. Used from the publishing goroutine.
type stateStore struct {
	p        *producer
	cfg      *Config
	log      *slog.Logger
	registry *Registry
	// readBack counts the records read back (what a start costs).
	readBack int
}

// newStateStore returns the state store of the producer p.
func newStateStore(p *producer, cfg *Config, log *slog.Logger, reg *Registry) *stateStore {
	return &stateStore{p: p, cfg: cfg, log: log, registry: reg}
}

// StateError is a record of the producer's own state (<prefix>._checkpoint,
// <prefix>._schema_history) that the producer does not start from: not
// committed by this source's transactional producer (ErrUntrusted), not
// readable with its schema, or holding values that cannot be (ErrInvalid).
// The producer stops rather than resume anywhere else.
type StateError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

// Error names the record and the cause.
func (e *StateError) Error() string {
	return fmt.Sprintf("state record %s/%d offset %d refused: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *StateError) Unwrap() error { return e.Err }

// ErrUntrusted is a state record that was not committed in a transaction
// of this source's transactional id.
var ErrUntrusted = errors.New("not a committed record of this source's transactional producer")

// ErrInvalid is a state record holding a value the producer cannot have
// written: avro.ErrInvalid, which the records' owners check them with.
var ErrInvalid = avro.ErrInvalid

func refused(r *kgo.Record, err error) *StateError {
	return &StateError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
}

// trusted returns a *StateError unless r was committed in a transaction of
// this source's transactional id. Its producer id tells: the transaction
// coordinator gives a transactional id the same producer id at every
// start (a new epoch each time) until the id expires — after
// transactional.id.expiration.ms without a transaction (7 days by
// default) — and no other producer can write with it. Without
// transactions (kafka.transactions off) there is no producer id to check.
func (s *stateStore) trusted(ctx context.Context, r *kgo.Record) error {
	if !s.p.txn.transactional {
		return nil
	}
	id, _, err := s.p.client.ProducerID(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("producer id of transactional id %s: %w", s.p.txn.id, err)
	case !r.Attrs.IsTransactional():
		return refused(r, fmt.Errorf("%w: written outside any transaction", ErrUntrusted))
	case r.ProducerID != id:
		return refused(r, fmt.Errorf("%w: committed by producer id %d, while transactional id %s has producer id %d "+
			"(a new one only if it went unused for the brokers' transactional.id.expiration.ms, 7 days by default)",
			ErrUntrusted, r.ProducerID, s.p.txn.id, id))
	}
	return nil
}

// readCommitted calls fn with each committed record of partition 0 of topic,
// in order, up to its last stable offset (everything below it is committed
// or aborted); nothing when the topic does not exist. Records larger than
// kafka.max_record_bytes (which the producer never writes) and batches
// that decompress beyond it stop the read.
func (s *stateStore) readCommitted(ctx context.Context, topic string, fn func(*kgo.Record)) error {
	end, err := s.stableEnd(ctx, topic)
	if err != nil || end <= 0 {
		return err
	}
	return s.readRange(ctx, topic, 0, end, fn)
}

// readLast returns the last committed record under key in partition 0 of
// topic; nil when there is none. A start must not read a week of
// checkpoints (the compacted topics keep every record for
// kafka.min_compaction_lag) to find the last one: it reads back from the
// end, a window at a time, each eight times the one before.
func (s *stateStore) readLast(ctx context.Context, topic, key string) (*kgo.Record, error) {
	end, err := s.stableEnd(ctx, topic)
	if err != nil || end <= 0 {
		return nil, err
	}
	for window, to := int64(lastWindow), end; to > 0; window *= 8 {
		from := max(0, to-window)
		var last *kgo.Record
		err := s.readRange(ctx, topic, from, to, func(r *kgo.Record) {
			if string(r.Key) == key {
				last = r
			}
		})
		if err != nil || last != nil {
			return last, err
		}
		to = from
	}
	return nil, nil
}

// lastWindow is the first window readLast reads back from the end: the
// last few transactions' records (a checkpoint, its commit marker, the
// heartbeats between).
const lastWindow = 64

// stableEnd returns the last stable offset of partition 0 of topic (0: no
// topic, or nothing committed yet).
func (s *stateStore) stableEnd(ctx context.Context, topic string) (int64, error) {
	describe := access{topic: topic, topicOp: "DESCRIBE"}
	offsets, err := s.p.admin.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("read the offsets of %s: %w", topic, authorization(err, s.p.principal, describe))
	}
	if err := offsets.Error(); errors.Is(err, kerr.TopicAuthorizationFailed) {
		// Not "no topic": resuming from scratch would publish again.
		return 0, fmt.Errorf("read the offsets of %s: %w", topic, authorization(err, s.p.principal, describe))
	}
	lo, ok := offsets.Lookup(topic, 0)
	if !ok || lo.Err != nil || lo.Offset <= 0 {
		return 0, nil
	}
	return lo.Offset, nil
}

// readRange calls fn with each committed record of partition 0 of topic
// from offset from up to (not including) to, at most the last stable
// offset, in order (see readCommitted).
func (s *stateStore) readRange(ctx context.Context, topic string, from, to int64, fn func(*kgo.Record)) error {
	limits := readLimits(s.cfg.MaxRecordBytes, min(s.cfg.MaxRecordBytes, maxFetchBytes))
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...), withLog(s.log), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // to know when the end is reached
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}})}, limits...), s.p.sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var large *kgo.Record
	for reached := false; !reached && large == nil; {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s up to offset %d: %w", topic, to, err)
		}
		if err := fetches.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, authorization(err, s.p.principal, access{topic: topic, topicOp: "READ"}))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			switch {
			case reached || large != nil || r.Offset >= to:
			case len(r.Key)+len(r.Value) > s.cfg.MaxRecordBytes:
				large = r
			case !r.Attrs.IsControl(): // control records are the transactions' markers
				s.readBack++
				fn(r)
			}
			reached = reached || r.Offset >= to-1
		})
	}
	if large != nil {
		return refused(large, fmt.Errorf("%w: a record of %d bytes, over kafka.max_record_bytes=%d", ErrInvalid, len(large.Key)+len(large.Value), s.cfg.MaxRecordBytes))
	}
	return nil
}
