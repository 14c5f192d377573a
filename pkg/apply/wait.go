package apply

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/kafka"
)

// Waiting tables. A table the sink is not ready for yet (BigQuery: a new
// column the Write API does not see, a re-created table: sink.WaitError)
// or that a sink error stopped (sink.TableError) is held: its topic is
// paused, the group remembers where its unapplied records start, and after
// a backoff the topic is read again from there. Nothing is held in memory
// but offsets; Kafka holds the records. Other tables go on meanwhile.
//
// Who does what: an apply that fails holds its batch (hold), and every
// later batch of the topic already polled is halted and held too
// (holdAlso); the loop releases a topic whose backoff is over once none of
// its batches is being applied (release, between Poll and AllowRebalance
// as Group.Release requires); the first apply that succeeds after
// it ends the wait (resumed).

// reasonStopped is the retries reason of a table a sink error stopped.
const reasonStopped = "stopped"

// waitBackoff is the first wait of a table waiting for the sink; it
// doubles up to Config.WaitMaxBackoff.
const waitBackoff = 500 * time.Millisecond

// waiting is one held topic.
type waiting struct {
	table    string        // the sink's table, for metrics and logs
	reason   string        // a sink.WaitError reason or reasonStopped
	backoff  time.Duration // the wait that is running
	until    time.Time     // when the topic may be read again
	released bool          // the loop released it; it waits no more unless it fails again
}

// waits is the set of held topics; all methods are safe for concurrent
// use.
type waits struct {
	mu    sync.Mutex
	by    map[string]*waiting // by topic
	group Group
	m     *metrics
}

// hold holds tb's topic after a failure of its table: reason is a
// sink.WaitError reason or reasonStopped. The wait starts at first and
// doubles, up to most, while the table keeps failing. It returns the
// wait.
func (w *waits) hold(tb *kafka.TopicBatch, table, reason string, first, most time.Duration) time.Duration {
	w.group.Hold(tb)
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.by[tb.Topic]
	switch {
	case h == nil:
		h = &waiting{backoff: first}
		w.by[tb.Topic] = h
	case h.reason != reason:
		h.backoff = first
	default:
		h.backoff = min(2*h.backoff, most)
	}
	h.table, h.reason, h.released = table, reason, false
	h.until = time.Now().Add(h.backoff)
	w.m.waiting.WithLabelValues(table).Set(1)
	w.m.retries.WithLabelValues(table, reason).Inc()
	return h.backoff
}

// holdAlso holds a batch of a topic that is being held, which was polled
// before the topic was paused; it reports whether the topic is held.
func (w *waits) holdAlso(tb *kafka.TopicBatch) bool {
	w.mu.Lock()
	h := w.by[tb.Topic]
	w.mu.Unlock()
	if h == nil || h.released {
		return false
	}
	w.group.Hold(tb)
	return true
}

// resumed ends the wait of topic after one of its batches was applied;
// it returns the wait that ended, nil when there was none.
func (w *waits) resumed(topic string) *waiting {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.by[topic]
	if h == nil {
		return nil
	}
	delete(w.by, topic)
	w.m.waiting.WithLabelValues(h.table).Set(0)
	return h
}

// due returns the held topics whose backoff is over and the earliest end
// of the others' (zero when there is none).
func (w *waits) due(now time.Time) (topics []string, next time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for topic, h := range w.by {
		switch {
		case h.released:
		case !now.Before(h.until):
			topics = append(topics, topic)
		case next.IsZero() || h.until.Before(next):
			next = h.until
		}
	}
	return topics, next
}

// release marks topic released: the group reads it again.
func (w *waits) release(topic string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.by[topic]; h != nil {
		h.released = true
	}
	w.group.Release(topic)
}

// waitMetrics registers the waits' metrics in m.
func waitMetrics(reg prometheus.Registerer, m *metrics) {
	m.waiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strait_consumer_table_waiting",
		Help: "1 while a table waits: for BigQuery to see a new column or a re-created table, or, stopped by a BigQuery error, for its next retry. Its topic is paused meanwhile.",
	}, []string{"table"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strait_consumer_table_retries_total",
		Help: "Times a table's changes were scheduled to be read again from Kafka, by BigQuery table and reason (schema_not_visible, table_not_found, stopped).",
	}, []string{"table", "reason"})
	reg.MustRegister(m.waiting, m.retries)
}
