// Package kafka publishes change records to Kafka and registers their
// schemas in the Schema Registry: where Kafka is written. It is the only
// importer of franz-go.
//
//   - writer.go: the publisher: events → Avro records → one topic per table.
//   - topics.go: topic names and creation (partitions, replication, cleanup).
//   - registry.go: schema registration, subjects <topic>-key / <topic>-value.
//   - partition.go: Kafka-compatible key hashing; keyless tables on partition 0.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// Writer publishes change events. Publish is called from one goroutine;
// delivery results arrive asynchronously and the first failure is reported
// by Err and by the next Publish or Flush.
type Writer struct {
	cfg      *Config
	log      *slog.Logger
	client   *kgo.Client
	admin    *kadm.Client
	registry *Registry
	version  string
	metrics  *Metrics

	tables map[string]*tableWriter // by database.table
	topics map[string]bool         // topics known to exist

	failMu sync.Mutex
	fail   error
	failed chan struct{} // closed with the first delivery failure
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
		kgo.WithLogger(kslog.New(log)),
	}
	client, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	reg, err := NewRegistry(cfg.RegistryURL)
	if err != nil {
		client.Close()
		return nil, err
	}
	return &Writer{cfg: cfg, log: log, client: client, admin: kadm.NewClient(client), registry: reg,
		version: version, metrics: m, tables: map[string]*tableWriter{}, topics: map[string]bool{}, failed: make(chan struct{})}, nil
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
	if isRejection(err) {
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
	now := time.Now()
	for i := range events {
		ev := &events[i]
		tw, err := w.writerFor(ctx, ev.Table)
		if err != nil {
			return fmt.Errorf("publish %s at %s:%d: %w", ev.Table.ID(), ev.Source.File, ev.Source.Pos, err)
		}
		key, err := tw.enc.AppendKey(nil, ev)
		if err != nil {
			if err := w.deadLetter(ctx, tw, ev, ReasonEncode, fmt.Errorf("encode key: %w", err), nil, nil); err != nil {
				return err
			}
			continue
		}
		value, err := tw.enc.AppendValue(make([]byte, 0, 256), ev, now)
		if reason, cause := w.unfit(tw, key, value, err); reason != "" {
			if err := w.deadLetter(ctx, tw, ev, reason, cause, body(key), body(value)); err != nil {
				return err
			}
			continue
		}
		w.produce(ctx, &kgo.Record{Topic: tw.topic, Key: key, Value: value})
		tw.pub.records.Inc()
		tw.pub.bytes.Add(float64(len(key) + len(value)))
		if ev.Op == cdc.OpDelete && w.cfg.Tombstones && key != nil {
			w.produce(ctx, &kgo.Record{Topic: tw.topic, Key: key})
		}
	}
	return nil
}

func (w *Writer) produce(ctx context.Context, r *kgo.Record) {
	w.client.Produce(ctx, r, w.delivered)
}

func (w *Writer) delivered(r *kgo.Record, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		w.metrics.errors.WithLabelValues("produce").Inc()
		w.setErr(fmt.Errorf("produce to %s: %w", r.Topic, err))
	}
}

// PublishDDL sends a schema change to <prefix>._schema_changes.
func (w *Writer) PublishDDL(ctx context.Context, d cdc.SchemaChange) error {
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
	reg.MustRegister(m.records, m.bytes, m.errors, m.deadLetters)
	return m
}

func (m *Metrics) table(id string) *tableMetrics {
	return &tableMetrics{records: m.records.WithLabelValues(id), bytes: m.bytes.WithLabelValues(id)}
}
