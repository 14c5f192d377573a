package binlog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Metrics are the reader's Prometheus metrics.
type Metrics struct {
	rows            *prometheus.CounterVec
	unrepresentable *prometheus.CounterVec
	file            prometheus.Gauge
	pos             prometheus.Gauge
	lag             prometheus.Gauge
	snapshotRows    *prometheus.CounterVec
	snapshotTables  prometheus.Gauge
	snapshotChunk   prometheus.Histogram
	snapshotLeft    prometheus.Gauge
	snapshotStalls  *prometheus.CounterVec
	snapshotFails   *prometheus.CounterVec
	tablesRefused   prometheus.Gauge

	rowCounters map[rowsKey]prometheus.Counter
}

// NewMetrics registers the reader's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_rows_read_total", Help: "Row changes read from the binlog, by table and op.",
		}, []string{"table", "op"}),
		unrepresentable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_unrepresentable_values_total", Help: "Values with no calendar value (zero dates) emitted as NULL, by table and column.",
		}, []string{"table", "column"}),
		file: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_binlog_file_index", Help: "Numeric suffix of the binlog file being read.",
		}),
		pos: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_binlog_position_bytes", Help: "Position in the binlog file being read.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_source_lag_seconds", Help: "Seconds between the source commit of the last transaction read and now.",
		}),
		snapshotRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_snapshot_rows_total", Help: "Rows published by the snapshot (op r), by table.",
		}, []string{"table"}),
		snapshotTables: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_snapshot_tables_remaining", Help: "Tables the snapshot has still to finish (0 when none runs).",
		}),
		snapshotLeft: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_snapshot_table_rows_remaining",
			Help: "Estimate of the rows the snapshot has still to read of its current table: information_schema's row count less the rows published since the table's read started or resumed (0 when none runs).",
		}),
		snapshotStalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_snapshot_stalls_total",
			Help: "Times a snapshot published nothing for source.snapshot_stall_warning while rows remained, by table (each also logged as a warning).",
		}, []string{"table"}),
		snapshotFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_snapshot_failures_total",
			Help: "Snapshots of a table that ended as failed (the source refused its reads) or cancelled, by table; producer snapshot -list shows why.",
		}, []string{"table"}),
		tablesRefused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_tables_refused",
			Help: "Captured tables left out because a column has no mapping (each named in the log and by producer check).",
		}),
		snapshotChunk: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strait_producer_snapshot_chunk_seconds", Help: "Time to read one snapshot chunk from the source.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	reg.MustRegister(m.rows, m.unrepresentable, m.file, m.pos, m.lag, m.snapshotRows, m.snapshotTables, m.snapshotChunk, m.snapshotLeft, m.snapshotStalls, m.snapshotFails, m.tablesRefused)
	return m
}

// rowsKey names a strait_producer_rows_read_total series without building
// its label string.
type rowsKey struct {
	db, table string
	op        cdc.Op
}

// countRows is called for every rows event: the counters are looked up once
// per table and op, not per event (WithLabelValues hashes and allocates).
// Only the reader's goroutine calls it.
func (m *Metrics) countRows(t *cdc.Table, op cdc.Op, n int) {
	k := rowsKey{t.Database, t.Name, op}
	c := m.rowCounters[k]
	if c == nil {
		if m.rowCounters == nil {
			m.rowCounters = map[rowsKey]prometheus.Counter{}
		}
		c = m.rows.WithLabelValues(t.ID(), op.String())
		m.rowCounters[k] = c
	}
	c.Add(float64(n))
}

func (m *Metrics) countUnrepresentable(t *cdc.Table, column string) {
	m.unrepresentable.WithLabelValues(t.ID(), column).Inc()
}

func (m *Metrics) observePosition(file, pos uint64, commit time.Time) {
	m.file.Set(float64(file))
	m.pos.Set(float64(pos))
	if !commit.IsZero() {
		m.lag.Set(max(0, time.Since(commit).Seconds()))
	}
}

func (m *Metrics) countSnapshotRows(table string, n int) {
	m.snapshotRows.WithLabelValues(table).Add(float64(n))
}

func (m *Metrics) observeChunk(d time.Duration) { m.snapshotChunk.Observe(d.Seconds()) }

func (m *Metrics) countSnapshotStall(table string) { m.snapshotStalls.WithLabelValues(table).Inc() }

func (m *Metrics) countSnapshotFailure(table string) { m.snapshotFails.WithLabelValues(table).Inc() }
