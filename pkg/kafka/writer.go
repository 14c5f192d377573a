// Package kafka is where Kafka is written and read. The producer's side
// publishes change records in Kafka transactions, each closed by a
// checkpoint record, and registers their schemas in the Schema Registry;
// it keeps its own state (checkpoint, schema history) in compacted topics
// it reads back as untrusted input, and takes requests from a signal
// topic. The consumer's side is a group member that polls the table
// topics and commits offsets only when told to, and a group-less tail.
// It is the only importer of franz-go.
package kafka

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/metrics"
)

// Writer is the producer's side of Kafka, one part per job: the
// transactional transport (producer, txn.go), change records to table
// topics (publisher, publish.go), the producer's state in its state
// topics (stateStore, checkpoint.go, history.go, state.go), and requests
// to it (signals, signal.go). Publish and the rest of the writing are
// called from one goroutine; delivery results arrive asynchronously and
// the first failure is reported by Err and by the next Publish or Flush.
type Writer struct {
	producer *producer
	pub      *publisher
	state    *stateStore
	signals  *signals
}

// NewWriter connects to the brokers and the registry. version is the strait
// version written to each record's source block. opts are extra client
// options (security, tests).
func NewWriter(cfg *Config, version string, log *slog.Logger, m *Metrics, opts ...kgo.Opt) (*Writer, error) {
	p, regOpts, err := newProducer(cfg, log, m, opts...)
	if err != nil {
		return nil, err
	}
	cfg.Security.warnPlainHTTP(log, cfg.RegistryURL)
	reg, err := NewRegistry(cfg.RegistryURL, regOpts...)
	if err != nil {
		p.close()
		return nil, err
	}
	return &Writer{
		producer: p,
		pub: &publisher{p: p, cfg: cfg, log: log, registry: reg, version: version, metrics: m,
			tables: map[string]*tableWriter{}, diverged: divergence{gauge: m.diverged}},
		state:   newStateStore(p, cfg, log, reg),
		signals: &signals{cfg: cfg, log: log, sec: p.sec, principal: p.principal},
	}, nil
}

// Close releases the client; call Flush first to wait for in-flight records.
func (w *Writer) Close() { w.producer.close() }

// Err returns the first delivery failure, if any.
func (w *Writer) Err() error { return w.producer.Err() }

// Failed is closed when a delivery fails; Err then says why.
func (w *Writer) Failed() <-chan struct{} { return w.producer.Failed() }

// Flush waits until every record published so far is acknowledged.
func (w *Writer) Flush(ctx context.Context) error { return w.producer.Flush(ctx) }

// Pending returns the change records and their bytes published since the
// last Commit.
func (w *Writer) Pending() (records, bytes int) { return w.producer.txn.records, w.producer.txn.bytes }

// Publish encodes and sends the events of one source transaction, in order.
// It returns once the records are handed to the client; delivery is
// asynchronous (see Flush).
func (w *Writer) Publish(ctx context.Context, events []cdc.Event) error {
	return w.pub.Publish(ctx, events)
}

// PublishDDL sends a schema change to <prefix>._schema_changes.
func (w *Writer) PublishDDL(ctx context.Context, d cdc.SchemaChange) error {
	return w.pub.PublishDDL(ctx, d)
}

// Diverged returns, by table, how many keys' last change went to the
// dead-letter topic as too large since the producer started (see the top of
// largerow.go). Safe from any goroutine.
func (w *Writer) Diverged() map[string]int { return w.pub.diverged.counts() }

// PublishSchemas writes schema-history entries, Avro bodies of schema,
// into the open transaction; an entry without a body erases its key's
// entry (a tombstone).
func (w *Writer) PublishSchemas(ctx context.Context, schema string, entries []StateEntry) error {
	return w.state.PublishSchemas(ctx, schema, entries)
}

// CreateTableTopics creates, in batches, the topics of tables
// (database.table, each with a primary key) that do not exist yet, ahead
// of their first change; it returns how many it created.
func (w *Writer) CreateTableTopics(ctx context.Context, tables []string) (int, error) {
	return w.pub.CreateTableTopics(ctx, tables)
}

// PublishSnapshotPlan writes v, stamped with the source, as its snapshot
// plan into the open transaction.
func (w *Writer) PublishSnapshotPlan(ctx context.Context, v StateValue) error {
	return w.state.PublishSnapshotPlan(ctx, v)
}

// PublishHeartbeat writes cp, the current position and source time, to
// <prefix>._heartbeat: even when the captured tables are idle, readers see
// how far the producer has read and how old the source's newest change is.
func (w *Writer) PublishHeartbeat(ctx context.Context, cp StateValue) error {
	return w.state.PublishHeartbeat(ctx, cp)
}

// ReadCheckpoint returns the last committed checkpoint record of this
// source, or nil when there is none (stateStore.ReadCheckpoint says how it
// is trusted), for its owner to decode.
func (w *Writer) ReadCheckpoint(ctx context.Context) (*StateRecord, error) {
	return w.state.ReadCheckpoint(ctx)
}

// ReadSchemaHistory returns the committed schema-history records, the
// last of each key, for their owner to decode. Call after ReadCheckpoint,
// which makes what is read final.
func (w *Writer) ReadSchemaHistory(ctx context.Context) ([]*StateRecord, error) {
	return w.state.ReadSchemaHistory(ctx)
}

// ReadSnapshotPlan returns the last committed snapshot plan record, nil
// when there is none, for its owner to decode. Call after ReadCheckpoint.
func (w *Writer) ReadSnapshotPlan(ctx context.Context) (*StateRecord, error) {
	return w.state.ReadSnapshotPlan(ctx)
}

// WatchSignals calls fn with each signal of the topic from offset from on,
// and the offset after it, until ctx ends (signals.Watch).
func (w *Writer) WatchSignals(ctx context.Context, from int64, fn func(s Signal, next int64) error) error {
	return w.signals.Watch(ctx, from, fn)
}

// Metrics are the publisher's Prometheus metrics.
type Metrics struct {
	records     *metrics.Counters // by table
	bytes       *metrics.Counters
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
	records *metrics.Counter
	bytes   *metrics.Counter
}

// NewMetrics registers the publisher's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: metrics.NewCounters("strait_producer_records_published_total", "Change records handed to Kafka, by table.", "table"),
		bytes:   metrics.NewCounters("strait_producer_published_bytes_total", "Key and value bytes of change records handed to Kafka, by table.", "table"),
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
	return &tableMetrics{records: m.records.With(id), bytes: m.bytes.With(id)}
}
