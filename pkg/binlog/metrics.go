package binlog

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/metrics"
)

// Metrics are the reader's Prometheus metrics.
type Metrics struct {
	rows            *metrics.Counters // by table and op
	unrepresentable *prometheus.CounterVec
	file            prometheus.Gauge
	pos             prometheus.Gauge
	snapshotRows    *metrics.Counters // by table
	snapshotTables  prometheus.Gauge
	snapshotChunk   prometheus.Histogram
	snapshotLeft    prometheus.Gauge
	snapshotStalls  *prometheus.CounterVec
	snapshotFails   *prometheus.CounterVec
	tablesRefused   prometheus.Gauge

	rowCounters map[rowsKey]*metrics.Counter

	// What strait_producer_source_lag_seconds and _silence_seconds are
	// computed from at each scrape, in Unix nanoseconds (0: not yet). The
	// reader's goroutine writes the first three, go-mysql's the last; the
	// scrape reads them.
	commit   atomic.Int64 // source commit time of the last transaction read
	read     atomic.Int64 // when that transaction was read
	caughtUp atomic.Int64 // when the reader was last known to have read everything the source had
	heard    atomic.Int64 // when bytes last arrived on the replication connection

	// The last reading of WatchRetention (nil: none yet), which
	// strait_producer_binlog_retention_seconds and _headroom_seconds show.
	retention atomic.Pointer[retentionState]
}

// NewMetrics registers the reader's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rows: metrics.NewCounters("strait_producer_rows_read_total", "Row changes read from the binlog, by table and op.", "table", "op"),
		unrepresentable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_producer_unrepresentable_values_total", Help: "Values with no calendar value (zero dates) emitted as NULL, by table and column.",
		}, []string{"table", "column"}),
		file: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_binlog_file_index", Help: "Numeric suffix of the binlog file being read.",
		}),
		pos: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_producer_binlog_position_bytes", Help: "Position in the binlog file being read.",
		}),
		snapshotRows: metrics.NewCounters("strait_producer_snapshot_rows_total", "Rows published by the snapshot (op r), by table.", "table"),
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
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strait_producer_source_lag_seconds",
		Help: "How far behind the source the binlog reader is, in seconds: while it has read everything the source has " +
			"(proved by a server heartbeat, sent every source.heartbeat_period of quiet), the time since that proof; " +
			"otherwise now less the source commit time of the last transaction read. Near zero on an idle source.",
	}, func() float64 { return m.lag(time.Now()) })
	silence := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strait_producer_source_silence_seconds",
		Help: "Seconds since anything (an event or a heartbeat) arrived on the replication connection. An idle source still sends " +
			"a heartbeat every source.heartbeat_period: more means a dead connection, or a reader stalled behind publishing.",
	}, func() float64 { return m.silence(time.Now()) })
	retention := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strait_producer_binlog_retention_seconds",
		Help: "How long the source keeps a closed binlog file before it may purge it: RDS's 'binlog retention hours' where present " +
			"(NULL: 0, purged as soon as possible), else binlog_expire_logs_seconds or expire_logs_days (0: +Inf, never). " +
			"Read every source.retention_interval; NaN before the first reading.",
	}, func() float64 { return m.retentionSeconds() })
	headroom := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strait_producer_binlog_retention_headroom_seconds",
		Help: "Seconds until the source may purge the binlog file the last checkpoint points into: the retention less the file's age " +
			"(since it was closed; the whole retention while the server still writes it, negative once overdue, -Inf once purged). " +
			"Under zero a producer stopped now may not resume without a new snapshot. NaN while not known.",
	}, func() float64 { return m.headroom(time.Now()) })
	reg.MustRegister(lag, silence, retention, headroom, m.rows, m.unrepresentable, m.file, m.pos, m.snapshotRows, m.snapshotTables, m.snapshotChunk, m.snapshotLeft, m.snapshotStalls, m.snapshotFails, m.tablesRefused)
	return m
}

// rowsKey names a strait_producer_rows_read_total series without building
// its label string.
type rowsKey struct {
	db, table string
	op        cdc.Op
}

// countRows is called for every rows event: the counters are looked up once
// per table and op, not per event (With joins the labels).
// Only the reader's goroutine calls it.
func (m *Metrics) countRows(t *cdc.Table, op cdc.Op, n int) {
	k := rowsKey{t.Database, t.Name, op}
	c := m.rowCounters[k]
	if c == nil {
		if m.rowCounters == nil {
			m.rowCounters = map[rowsKey]*metrics.Counter{}
		}
		c = m.rows.With(t.ID(), op.String())
		m.rowCounters[k] = c
	}
	c.Add(uint64(n))
}

func (m *Metrics) countUnrepresentable(t *cdc.Table, column string) {
	m.unrepresentable.WithLabelValues(t.ID(), column).Inc()
}

// observePosition records the end of a transaction (or heartbeat) read at
// now; commit is its source commit time, zero for a heartbeat.
func (m *Metrics) observePosition(file, pos uint64, commit, now time.Time) {
	m.file.Set(float64(file))
	m.pos.Set(float64(pos))
	if !commit.IsZero() {
		m.commit.Store(commit.UnixNano())
		m.read.Store(now.UnixNano())
	}
}

// observeCaughtUp records that at t the reader had read everything the
// source had written: a heartbeat came at the position read to, or the
// stream had reached a snapshot chunk's high watermark, read at t. An
// older proof than the last one known changes nothing.
func (m *Metrics) observeCaughtUp(t time.Time) {
	if ns := t.UnixNano(); !t.IsZero() && ns > m.caughtUp.Load() { // one writer: the reader's goroutine
		m.caughtUp.Store(ns)
	}
}

// observeHeard records that bytes arrived on the replication connection at
// now.
func (m *Metrics) observeHeard(now time.Time) { m.heard.Store(now.UnixNano()) }

// lag is strait_producer_source_lag_seconds at now. Caught up at the last
// proof and nothing read since, the reader is at most the time since that
// proof behind; otherwise as far behind as the last transaction it read.
// Before either, 0. Commit times are the source's clock: a source ahead of
// this host would make the lag negative, so it is 0 then.
func (m *Metrics) lag(now time.Time) float64 {
	caught, read, commit := m.caughtUp.Load(), m.read.Load(), m.commit.Load()
	switch {
	case caught != 0 && caught >= read:
		return secondsSince(now, caught)
	case commit != 0:
		return secondsSince(now, commit)
	}
	return 0
}

// silence is strait_producer_source_silence_seconds at now; 0 before the
// first connection.
func (m *Metrics) silence(now time.Time) float64 {
	if heard := m.heard.Load(); heard != 0 {
		return secondsSince(now, heard)
	}
	return 0
}

// secondsSince returns the seconds from the Unix nanoseconds t to now, at
// least 0.
func secondsSince(now time.Time, t int64) float64 {
	return max(0, float64(now.UnixNano()-t)/float64(time.Second))
}

func (m *Metrics) countSnapshotRows(table string, n int) {
	m.snapshotRows.With(table).Add(uint64(n))
}

func (m *Metrics) observeChunk(d time.Duration) { m.snapshotChunk.Observe(d.Seconds()) }

func (m *Metrics) countSnapshotStall(table string) { m.snapshotStalls.WithLabelValues(table).Inc() }

func (m *Metrics) countSnapshotFailure(table string) { m.snapshotFails.WithLabelValues(table).Inc() }

// observeRetention records a reading of WatchRetention.
func (m *Metrics) observeRetention(st *retentionState) { m.retention.Store(st) }

// retentionSeconds is strait_producer_binlog_retention_seconds.
func (m *Metrics) retentionSeconds() float64 {
	if st := m.retention.Load(); st != nil {
		return st.seconds
	}
	return math.NaN()
}

// headroom is strait_producer_binlog_retention_headroom_seconds at now.
func (m *Metrics) headroom(now time.Time) float64 {
	if st := m.retention.Load(); st != nil {
		return st.headroom(now)
	}
	return math.NaN()
}
