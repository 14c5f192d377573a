// Package kafka publishes change records to Kafka and registers their
// schemas in the Schema Registry: where Kafka is written. It is the only
// importer of franz-go.
//
//   - writer.go: the publisher: events → Avro records → one topic per table.
//   - topics.go: topic names and creation (partitions, replication, cleanup).
//   - registry.go: schema registration, subjects <topic>-key / <topic>-value.
//   - partition.go: Kafka-compatible key hashing; keyless tables on partition 0.
//   - group.go: the reading side: the consumer's group member and schema lookups.
//   - security.go: TLS, SASL and registry authentication of every client;
//     authorization failures named by the missing ACL.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// Writer publishes change events. Publish is called from one goroutine;
// delivery results arrive asynchronously and the first failure is reported
// by Err and by the next Publish or Flush.
type Writer struct {
	cfg       *Config
	log       *slog.Logger
	client    *kgo.Client
	admin     *kadm.Client
	registry  *Registry
	version   string
	metrics   *Metrics
	sec       []kgo.Opt // TLS and SASL, for the writer's other clients (checkpoint, signals)
	principal string    // User:<name> for authorization errors; "" unknown

	tables map[string]*tableWriter // by database.table
	topics map[string]bool         // topics known to exist

	// Publish's per-record memory, all used by Publish's goroutine only.
	byTable    map[*cdc.Table]*tableWriter // writerFor's answers by table version
	arena      []byte                      // chunk the records' keys and values are encoded into
	records    []kgo.Record                // chunk the kgo.Records are cut from
	onDelivery func(*kgo.Record, error)    // w.delivered, allocated once

	txn       txnState
	cpCodec   *goavro.Codec // schemas.Checkpoint
	histCodec *goavro.Codec // schemas.SchemaHistory

	failMu sync.Mutex
	fail   error
	failed chan struct{} // closed with the first delivery failure

	diverged divergence // keys whose last change was too large (largerow.go)
}

// tableWriter is the encoder of a table's current schema and its topic.
type tableWriter struct {
	topic    string
	enc      *avro.Encoder
	schemas  avro.Schemas
	pub      *tableMetrics
	rejected error // the registry refused the schema: changes are dead-lettered
}

// NewWriter connects to the brokers and the registry. version is the strait
// version written to each record's source block. opts are extra client
// options (security, tests).
func NewWriter(cfg *Config, version string, log *slog.Logger, m *Metrics, opts ...kgo.Opt) (*Writer, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.RecordPartitioner(partitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxRecordBytes)),
		kgo.ProducerLinger(5 * time.Millisecond),
		withLog(log),
	}
	txn := txnState{transactional: cfg.Transactions, id: "strait-" + cfg.TopicPrefix}
	if txn.transactional {
		base = append(base, kgo.TransactionalID(txn.id), kgo.TransactionTimeout(cfg.TransactionTimeout),
			// Kafka 3.9's transactions, which every 3.x and 4.x broker
			// speaks: with 4.0's (KIP-890, a new epoch at every commit)
			// a produce right after a commit was sometimes sent with the
			// old sequence (OUT_OF_ORDER_SEQUENCE_NUMBER in our tests).
			kgo.MaxVersions(kversion.V3_9_0()))
	}
	cpCodec, err := goavro.NewCodec(schemas.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("checkpoint schema: %w", err)
	}
	histCodec, err := goavro.NewCodec(schemas.SchemaHistory)
	if err != nil {
		return nil, fmt.Errorf("schema history schema: %w", err)
	}
	client, sec, regOpts, err := cfg.Security.newClient(log, base, opts...)
	if err != nil {
		return nil, err
	}
	cfg.Security.warnPlainHTTP(log, cfg.RegistryURL)
	reg, err := NewRegistry(cfg.RegistryURL, regOpts...)
	if err != nil {
		client.Close()
		return nil, err
	}
	return &Writer{cfg: cfg, log: log, client: client, admin: kadm.NewClient(client), registry: reg, sec: sec, principal: cfg.Security.Principal(),
		diverged: divergence{gauge: m.diverged},
		version:  version, metrics: m, tables: map[string]*tableWriter{}, topics: map[string]bool{}, failed: make(chan struct{}),
		txn: txn, cpCodec: cpCodec, histCodec: histCodec}, nil
}

// Close releases the client; call Flush first to wait for in-flight records.
func (w *Writer) Close() { w.client.Close() }

// Err returns the first delivery failure, if any.
func (w *Writer) Err() error {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	return w.fail
}

// Failed is closed when a delivery fails; Err then says why.
func (w *Writer) Failed() <-chan struct{} { return w.failed }

func (w *Writer) setErr(err error) {
	w.failMu.Lock()
	if w.fail == nil {
		w.fail = err
		close(w.failed)
	}
	w.failMu.Unlock()
}

// Flush waits until every record published so far is acknowledged.
func (w *Writer) Flush(ctx context.Context) error {
	if err := w.client.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return w.Err()
}

// writerFor returns the writer of ev's table version, registering new
// schemas and creating the topic on first sight or after a schema change.
func (w *Writer) writerFor(ctx context.Context, t *cdc.Table) (*tableWriter, error) {
	tw := w.tables[t.ID()]
	if tw != nil && (tw.enc.Table() == t || tw.enc.Table().SameShape(t)) {
		return tw, nil
	}
	topic := w.TableTopic(t)
	cleanup := w.cfg.CleanupPolicy
	if !t.HasKey() {
		cleanup = "delete" // Kafka refuses records without a key on compacted topics
	}
	if err := w.ensureTopic(ctx, topic, int32(w.cfg.Partitions), cleanup); err != nil {
		return nil, err
	}
	s, err := avro.Build(w.cfg.TopicPrefix, t)
	if err != nil {
		return nil, err
	}
	var keyID int
	if s.Key != "" {
		keyID, err = w.registry.Register(ctx, topic+"-key", s.Key)
	}
	var valueID int
	if err == nil {
		valueID, err = w.registry.Register(ctx, topic+"-value", s.Value)
	}
	var rej *SchemaRejectedError
	if errors.As(err, &rej) {
		rej.Table = t.ID()
		if tw != nil {
			rej.Changes = columnChanges(tw.enc.Table(), t)
		}
		tw = w.rejectedWriter(t, topic, s, err)
		w.tables[t.ID()] = tw
		return tw, nil
	}
	if err != nil {
		w.metrics.errors.WithLabelValues("registry").Inc()
		return nil, err
	}
	if tw != nil {
		w.log.Info("table schema changed", "table", t.ID(), "topic", topic, "value_schema_id", valueID)
	}
	tw = &tableWriter{topic: topic, schemas: *s, enc: avro.NewEncoder(t, w.cfg.TopicPrefix, w.version, uint32(keyID), uint32(valueID)), pub: w.metrics.table(t.ID())}
	w.tables[t.ID()] = tw
	return tw, nil
}

// Publish encodes and sends the events of one source transaction, in order.
// It returns once the records are handed to the client; delivery is
// asynchronous (see Flush).
func (w *Writer) Publish(ctx context.Context, events []cdc.Event) error {
	if err := w.Err(); err != nil {
		return err
	}
	if err := w.begin(); err != nil {
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
			if err := w.publishOne(ctx, &del, now); err != nil {
				return err
			}
			ev = &ins
		}
		if err := w.publishOne(ctx, ev, now); err != nil {
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
func (w *Writer) publishOne(ctx context.Context, ev *cdc.Event, now time.Time) error {
	tw, err := w.writerOf(ctx, ev.Table)
	if err != nil {
		return fmt.Errorf("publish %s at %s:%d: %w", ev.Table.ID(), ev.Source.File, ev.Source.Pos, err)
	}
	key, err := tw.enc.AppendKey(w.take(), ev)
	if key = w.keep(key); len(key) == 0 {
		key = nil // no primary key: no record key (partition 0, order kept)
	}
	if err != nil {
		return w.deadLetter(ctx, tw, ev, ReasonEncode, fmt.Errorf("encode key: %w", err), nil, nil)
	}
	value, err := tw.enc.AppendValue(w.take(), ev, now)
	value = w.keep(value)
	reason, cause := w.unfit(tw, key, value, err)
	if reason == ReasonTooLarge {
		if small := keyOnly(ev); small != nil {
			// The before image made it too large: publish the change
			// with the key alone before (largerow.go).
			v, err := tw.enc.AppendValue(w.take(), small, now)
			v = w.keep(v)
			if r, _ := w.unfit(tw, key, v, err); r == "" {
				ev, value, reason, cause = small, v, "", nil
				w.metrics.beforeReduced.WithLabelValues(ev.Table.ID()).Inc()
			}
		}
	}
	if reason != "" {
		if reason == ReasonTooLarge {
			w.diverged.mark(ev.Table.ID(), body(key))
		}
		return w.deadLetter(ctx, tw, ev, reason, cause, body(key), body(value))
	}
	w.diverged.published(ev.Table.ID(), body(key))
	w.produce(ctx, w.record(tw.topic, key, value))
	w.txn.records++
	w.txn.bytes += len(key) + len(value)
	tw.pub.records.Inc()
	tw.pub.bytes.Add(float64(len(key) + len(value)))
	if ev.Op == cdc.OpDelete && w.cfg.Tombstones && key != nil {
		w.produce(ctx, w.record(tw.topic, key, nil))
	}
	return nil
}

// writerOf is writerFor remembered by table version: the reader hands out
// one *cdc.Table per schema version, so the answer for a pointer never
// changes, and the common case costs one map lookup instead of building the
// table's name.
func (w *Writer) writerOf(ctx context.Context, t *cdc.Table) (*tableWriter, error) {
	if tw := w.byTable[t]; tw != nil {
		return tw, nil
	}
	tw, err := w.writerFor(ctx, t)
	if err != nil {
		return nil, err
	}
	if w.byTable == nil || len(w.byTable) >= 4096 { // old versions are dropped wholesale
		w.byTable = map[*cdc.Table]*tableWriter{}
	}
	w.byTable[t] = tw
	return tw, nil
}

// arenaSize is the size of the chunks record keys and values are encoded
// into: one allocation serves about a hundred records. A chunk is only
// appended to, never rewritten, and is freed by the GC once the client has
// delivered (and dropped) the last record pointing into it.
const arenaSize = 64 << 10

// take returns the free tail of the arena, to append one key or value to
// (then keep it).
func (w *Writer) take() []byte {
	if cap(w.arena)-len(w.arena) < arenaSize/16 {
		w.arena = make([]byte, 0, arenaSize)
	}
	return w.arena[len(w.arena):len(w.arena)]
}

// keep marks b, the tail returned by take with bytes appended, as used and
// returns it capped at its length. A b that outgrew the tail is its own
// allocation and leaves the arena as it was.
func (w *Writer) keep(b []byte) []byte {
	if n := len(w.arena); len(b) <= cap(w.arena)-n {
		w.arena = w.arena[:n+len(b)]
	}
	return b[:len(b):len(b)]
}

// record returns a kgo.Record cut from a chunk of 256.
func (w *Writer) record(topic string, key, value []byte) *kgo.Record {
	if len(w.records) == cap(w.records) {
		w.records = make([]kgo.Record, 0, 256)
	}
	w.records = append(w.records, kgo.Record{Topic: topic, Key: key, Value: value})
	return &w.records[len(w.records)-1]
}

func (w *Writer) produce(ctx context.Context, r *kgo.Record) {
	if w.onDelivery == nil {
		w.onDelivery = w.delivered
	}
	if !w.txn.produced[r.Topic] {
		if w.txn.produced == nil {
			w.txn.produced = map[string]bool{}
		}
		w.txn.produced[r.Topic] = true
		if w.txn.transactional {
			w.txn.firstIn = append(w.txn.firstIn, r.Topic)
		}
	}
	w.client.Produce(ctx, r, w.onDelivery)
}

func (w *Writer) delivered(r *kgo.Record, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		w.metrics.errors.WithLabelValues("produce").Inc()
		if isFenced(err) {
			err = fmt.Errorf("%w (%v)", ErrFenced, err)
		}
		err = authorization(err, w.principal, access{topic: r.Topic, topicOp: "WRITE", txnID: w.txn.id, txnOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"})
		w.setErr(fmt.Errorf("produce to %s: %w", r.Topic, err))
	}
}

// PublishDDL sends a schema change to <prefix>._schema_changes.
func (w *Writer) PublishDDL(ctx context.Context, d cdc.SchemaChange) error {
	if err := w.begin(); err != nil {
		return err
	}
	topic := w.cfg.TopicPrefix + "._schema_changes"
	// One partition keeps the DDL in order; history is kept by time.
	if err := w.ensureTopic(ctx, topic, 1, "delete"); err != nil {
		return err
	}
	id, err := w.registry.Register(ctx, topic+"-value", schemas.SchemaChange)
	if err != nil {
		return err
	}
	w.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(d.Database), Value: avro.AppendSchemaChange(nil, uint32(id), &d)})
	return nil
}

// Metrics are the publisher's Prometheus metrics.
type Metrics struct {
	records     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	errors      *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	// beforeReduced counts changes published with the before image
	// reduced to the key (largerow.go); diverged is the keys whose last
	// change was dead-lettered as too large.
	beforeReduced *prometheus.CounterVec
	diverged      *prometheus.GaugeVec
	commits       prometheus.Histogram
	txRecords     prometheus.Histogram
	checkpoint    prometheus.Gauge
}

type tableMetrics struct {
	records prometheus.Counter
	bytes   prometheus.Counter
}

// NewMetrics registers the publisher's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_records_published_total", Help: "Change records handed to Kafka, by table.",
		}, []string{"table"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_published_bytes_total", Help: "Key and value bytes of change records handed to Kafka, by table.",
		}, []string{"table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_errors_total", Help: "Errors by kind (produce, registry, topic).",
		}, []string{"kind"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_dead_letters_total", Help: "Changes sent to the dead-letter topic instead of their table topic, by table and reason.",
		}, []string{"table", "reason"}),
	}
	m.beforeReduced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strait_producer_before_images_reduced_total",
		Help: "Changes published with the before image reduced to the key columns (source.before_key_only): the whole row did not fit kafka.max_record_bytes, by table.",
	}, []string{"table"})
	m.diverged = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strait_producer_diverged_keys",
		Help: "Keys whose last change went to the dead-letter topic as too large, by table: downstream differs from the source until a later change of the key (e.g. producer snapshot -where) is published whole. Since the start.",
	}, []string{"table"})
	m.commits = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "strait_producer_commit_seconds", Help: "Time to commit a Kafka transaction (checkpoint, flush, end).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	m.txRecords = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "strait_producer_transaction_records", Help: "Change records per committed Kafka transaction.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	})
	m.checkpoint = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strait_producer_checkpoint_source_timestamp_seconds",
		Help: "Source commit time of the last committed checkpoint; time() minus this is the checkpoint age.",
	})
	reg.MustRegister(m.records, m.bytes, m.errors, m.deadLetters, m.beforeReduced, m.diverged, m.commits, m.txRecords, m.checkpoint)
	return m
}

func (m *Metrics) table(id string) *tableMetrics {
	return &tableMetrics{records: m.records.WithLabelValues(id), bytes: m.bytes.WithLabelValues(id)}
}
