package apply

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine's own metrics; the sink counts rows and appends,
// the group its lag.
type metrics struct {
	errors     *prometheus.CounterVec
	stopped    prometheus.Gauge
	badRecords *prometheus.CounterVec
	inFlight   prometheus.Gauge
	waiting    *prometheus.GaugeVec   // wait.go
	retries    *prometheus.CounterVec // wait.go
}

// newMetrics registers the engine's metrics with reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_consumer_kafka_errors_total", Help: "Kafka-side errors by kind: commit (retried by redelivery).",
		}, []string{"kind"}),
		stopped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_consumer_tables_stopped", Help: "Topics paused because their table stopped (see the log): until a restart for a bad record, until a retry succeeds for a BigQuery error.",
		}),
		badRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_consumer_bad_records_total",
			Help: "Records that can never be applied, by topic (one per table), reason (the strait.reason header) and action (dead_letter: sent to the dead-letter topic; stop: the table stopped).",
		}, []string{"topic", "reason", "action"}),
	}
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strait_consumer_polls_in_flight", Help: "Polls being applied, awaiting BigQuery's acknowledgements (at most max_polls_in_flight).",
	})
	reg.MustRegister(m.errors, m.stopped, m.badRecords, m.inFlight)
	waitMetrics(reg, m)
	return m
}
