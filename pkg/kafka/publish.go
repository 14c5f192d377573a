package kafka

// publish.go: change events → Avro records → one topic per table, their
// schemas registered; what cannot go to its table topic goes to the
// dead-letter topic (deadletter.go, largerow.go).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// publisher turns change events into records of their table topics,
// written through the producer into its open transaction. Used from the
// publishing goroutine only, but for Diverged.
type publisher struct {
	p        *producer
	cfg      *Config
	log      *slog.Logger
	registry *Registry
	version  string // strait's, in each record's source block
	metrics  *Metrics

	tables map[string]*tableWriter // by database.table

	// Per-record memory.
	byTable map[*cdc.Table]*tableWriter // writerFor's answers by table version
	arena   []byte                      // chunk the records' keys and values are encoded into
	records []kgo.Record                // chunk the kgo.Records are cut from

	diverged divergence // keys whose last change was too large (largerow.go)
}

// tableWriter is the encoder of a table's current schema and its topic.
// It does not keep the schemas' text (kilobytes a table: 58 MiB with
// 10,000 tables), which only dead letters need (deadletter.go).
type tableWriter struct {
	topic    string
	enc      *avro.Encoder
	counts   *tableMetrics // its records and bytes published
	rejected error         // the registry refused the schema: changes are dead-lettered
}

// writerFor returns the writer of ev's table version, registering new
// schemas and creating the topic on first sight or after a schema change.
func (pub *publisher) writerFor(ctx context.Context, t *cdc.Table) (*tableWriter, error) {
	tw := pub.tables[t.ID()]
	if tw != nil && (tw.enc.Table() == t || tw.enc.Table().SameShape(t)) {
		return tw, nil
	}
	topic := pub.TableTopic(t)
	cleanup := pub.cfg.CleanupPolicy
	if !t.HasKey() {
		cleanup = "delete" // Kafka refuses records without a key on compacted topics
	}
	if err := pub.p.ensureTopic(ctx, topic, int32(pub.cfg.Partitions), cleanup); err != nil {
		return nil, err
	}
	s, err := avro.Build(pub.cfg.TopicPrefix, t)
	if err != nil {
		return nil, err
	}
	// The key's and the value's schemas at once: a table's first change
	// waits for one round trip to the registry, not two (after a restart,
	// every table's first change does).
	var keyID, valueID int
	var keyErr error
	var key sync.WaitGroup
	if s.Key != "" {
		key.Go(func() { keyID, keyErr = pub.registry.Register(ctx, topic+"-key", s.Key) })
	}
	valueID, err = pub.registry.Register(ctx, topic+"-value", s.Value)
	key.Wait()
	if keyErr != nil {
		err = keyErr
	}
	var rej *SchemaRejectedError
	if errors.As(err, &rej) {
		rej.Table = t.ID()
		if tw != nil {
			rej.Changes = columnChanges(tw.enc.Table(), t)
		}
		tw = pub.rejectedWriter(t, topic, err)
		pub.tables[t.ID()] = tw
		return tw, nil
	}
	if err != nil {
		pub.metrics.errors.WithLabelValues("registry").Inc()
		return nil, err
	}
	if tw != nil {
		pub.log.Info("table schema changed", "table", t.ID(), "topic", topic, "value_schema_id", valueID)
	}
	tw = &tableWriter{topic: topic, enc: avro.NewEncoder(t, pub.cfg.TopicPrefix, pub.version, uint32(keyID), uint32(valueID)), counts: pub.metrics.table(t.ID())}
	pub.tables[t.ID()] = tw
	return tw, nil
}

// Publish encodes and sends the events of one source transaction, in order.
// It returns once the records are handed to the client; delivery is
// asynchronous (see Flush).
func (pub *publisher) Publish(ctx context.Context, events []cdc.Event) error {
	if err := pub.p.Err(); err != nil {
		return err
	}
	if err := pub.p.begin(); err != nil {
		return err
	}
	now := time.Now()
	for i := range events {
		ev := &events[i]
		if ev.Op == cdc.OpUpdate && keyChanged(ev) {
			// As Debezium does: a delete of the old key (with its
			// tombstone) and an insert of the new, so that compaction
			// of the old key's records ends in its tombstone.
			del := cdc.Event{Table: ev.Table, Op: cdc.OpDelete, Before: ev.Before, Position: ev.Position, Source: ev.Source, CommitTime: ev.CommitTime}
			ins := cdc.Event{Table: ev.Table, Op: cdc.OpCreate, After: ev.After, Position: ev.Position, Source: ev.Source, CommitTime: ev.CommitTime}
			if err := pub.publishOne(ctx, &del, now); err != nil {
				return err
			}
			ev = &ins
		}
		if err := pub.publishOne(ctx, ev, now); err != nil {
			return err
		}
	}
	return nil
}

// keyChanged reports whether an update changes its row's primary key.
func keyChanged(ev *cdc.Event) bool {
	if ev.Before == nil || ev.After == nil {
		return false
	}
	for _, k := range ev.Table.PrimaryKey {
		if ev.Before[k] != ev.After[k] {
			return true
		}
	}
	return false
}

// publishOne encodes and sends one change (and the tombstone after a
// delete); a change that cannot be encoded or sent as a record goes to the
// dead-letter topic.
func (pub *publisher) publishOne(ctx context.Context, ev *cdc.Event, now time.Time) error {
	tw, err := pub.writerOf(ctx, ev.Table)
	if err != nil {
		return fmt.Errorf("publish %s at %s:%d: %w", ev.Table.ID(), ev.Source.File, ev.Source.Pos, err)
	}
	key, err := tw.enc.AppendKey(pub.take(), ev)
	if key = pub.keep(key); len(key) == 0 {
		key = nil // no primary key: no record key (partition 0, order kept)
	}
	if err != nil {
		return pub.deadLetter(ctx, tw, ev, ReasonEncode, fmt.Errorf("encode key: %w", err), nil, nil)
	}
	value, err := tw.enc.AppendValue(pub.take(), ev, now)
	value = pub.keep(value)
	reason, cause := pub.unfit(tw, key, value, err)
	if reason == ReasonTooLarge {
		if small := keyOnly(ev); small != nil {
			// The before image made it too large: publish the change
			// with the key alone before (largerow.go).
			v, err := tw.enc.AppendValue(pub.take(), small, now)
			v = pub.keep(v)
			if r, _ := pub.unfit(tw, key, v, err); r == "" {
				ev, value, reason, cause = small, v, "", nil
				pub.metrics.beforeReduced.WithLabelValues(ev.Table.ID()).Inc()
			}
		}
	}
	if reason != "" {
		if reason == ReasonTooLarge {
			pub.diverged.mark(ev.Table.ID(), body(key))
		}
		return pub.deadLetter(ctx, tw, ev, reason, cause, body(key), body(value))
	}
	pub.diverged.published(ev.Table, body(key))
	pub.p.produce(ctx, pub.record(tw.topic, key, value))
	pub.p.counted(len(key) + len(value))
	tw.counts.records.Inc()
	tw.counts.bytes.Add(uint64(len(key) + len(value)))
	if ev.Op == cdc.OpDelete && pub.cfg.Tombstones && key != nil {
		pub.p.produce(ctx, pub.record(tw.topic, key, nil))
	}
	return nil
}

// writerOf is writerFor remembered by table version: the reader hands out
// one *cdc.Table per schema version, so the answer for a pointer never
// changes, and the common case costs one map lookup instead of building the
// table's name.
func (pub *publisher) writerOf(ctx context.Context, t *cdc.Table) (*tableWriter, error) {
	if tw := pub.byTable[t]; tw != nil {
		return tw, nil
	}
	tw, err := pub.writerFor(ctx, t)
	if err != nil {
		return nil, err
	}
	// Old versions are dropped wholesale, once they could outnumber the
	// tables: a bound in the number of tables, not a fixed one, which
	// 10,000 tables would overflow and miss for every change.
	if pub.byTable == nil || len(pub.byTable) >= 4096+2*len(pub.tables) {
		pub.byTable = map[*cdc.Table]*tableWriter{}
	}
	pub.byTable[t] = tw
	return tw, nil
}

// arenaSize is the size of the chunks record keys and values are encoded
// into: one allocation serves about a hundred records. A chunk is only
// appended to, never rewritten, and is freed by the GC once the client has
// delivered (and dropped) the last record pointing into it.
const arenaSize = 64 << 10

// take returns the free tail of the arena, to append one key or value to
// (then keep it).
func (pub *publisher) take() []byte {
	if cap(pub.arena)-len(pub.arena) < arenaSize/16 {
		pub.arena = make([]byte, 0, arenaSize)
	}
	return pub.arena[len(pub.arena):len(pub.arena)]
}

// keep marks b, the tail returned by take with bytes appended, as used and
// returns it capped at its length. A b that outgrew the tail is its own
// allocation and leaves the arena as it was.
func (pub *publisher) keep(b []byte) []byte {
	if n := len(pub.arena); len(b) <= cap(pub.arena)-n {
		pub.arena = pub.arena[:n+len(b)]
	}
	return b[:len(b):len(b)]
}

// record returns a kgo.Record cut from a chunk of 256.
func (pub *publisher) record(topic string, key, value []byte) *kgo.Record {
	if len(pub.records) == cap(pub.records) {
		pub.records = make([]kgo.Record, 0, 256)
	}
	pub.records = append(pub.records, kgo.Record{Topic: topic, Key: key, Value: value})
	return &pub.records[len(pub.records)-1]
}

// PublishDDL sends a schema change to <prefix>._schema_changes.
func (pub *publisher) PublishDDL(ctx context.Context, d cdc.SchemaChange) error {
	if err := pub.p.begin(); err != nil {
		return err
	}
	topic := pub.cfg.TopicPrefix + "._schema_changes"
	// One partition keeps the DDL in order; history is kept by time.
	if err := pub.p.ensureTopic(ctx, topic, 1, "delete"); err != nil {
		return err
	}
	id, err := pub.registry.Register(ctx, topic+"-value", schemas.SchemaChange)
	if err != nil {
		return err
	}
	pub.p.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(d.Database), Value: avro.AppendSchemaChange(nil, uint32(id), &d)})
	return nil
}
