package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/kafka"
)

// Metrics are the engine's own metrics; the reader's and the writer's are
// binlog.Metrics and kafka.Metrics.
type Metrics struct {
	restarts prometheus.Counter
}

// NewMetrics registers the engine's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{restarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "strait_producer_restarts_total",
		Help: "Runs restarted in-process from the last checkpoint after a transient Kafka error (a refused commit)."})}
	reg.MustRegister(m.restarts)
	return m
}

// Restart calls run until it ends for good: with nil, once ctx ends, or
// with an error that is not transient (kafka.Transient). A transient error
// (a commit refused while the transaction coordinator moves, the Schema
// Registry out of reach) starts run again, after a wait doubling from a
// second up to 30s; a run that lasted more than a minute starts the waits
// over. ctx ending during a wait returns nil.
func Restart(ctx context.Context, run func(context.Context) error, m *Metrics, log *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := run(ctx)
		if err == nil || ctx.Err() != nil || !kafka.Transient(err) {
			return err
		}
		if time.Since(began) > time.Minute {
			attempt = 1
		}
		// Nothing of the failed Kafka transaction is visible: everything
		// after the last checkpoint is read and published again.
		wait := min(time.Second<<(attempt-1), 30*time.Second)
		// One line when it starts; the retries of the same outage at debug
		// (strait_producer_restarts_total counts them, /readyz is false).
		level := slog.LevelWarn
		if attempt > 1 {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "waiting out a transient error (Kafka, Schema Registry): restarting from the last checkpoint", "err", err, "in", wait.String(), "attempt", attempt)
		m.restarts.Inc()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
