package kafka

// lag.go: how far behind the group member is, by partition, for the
// strait_consumer_lag_records metric and the "caught up" line.

import (
	"log/slog"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lagDesc is the group's lag by partition (Group.Lag).
var lagDesc = prometheus.NewDesc("strait_consumer_lag_records",
	"Offsets between the committed offset and the end of the partition (last stable offset), for the partitions this member reads.",
	[]string{"topic", "partition"}, nil)

// LagCollector reports the group's lag at each scrape; register it with
// the consumer's registry.
func (g *Group) LagCollector() prometheus.Collector { return lagCollector{g} }

// lagCollector reports the group's lag at each scrape.
type lagCollector struct{ group *Group }

// Describe sends the metric's description.
func (l lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

// Collect sends the lag of every partition read.
func (l lagCollector) Collect(ch chan<- prometheus.Metric) {
	for tp, n := range l.group.Lag() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(n), tp.Topic, strconv.Itoa(int(tp.Partition)))
	}
}

// lagTracker is the group's account of how far behind each partition it
// reads is: the ends of the fetches against the committed offsets. Safe
// from any goroutine.
type lagTracker struct {
	log      *slog.Logger
	groupID  string
	mu       sync.Mutex
	lag      map[TopicPartition]*partitionLag
	caughtUp bool // logged since the last assignment: every partition read committed to its end
}

// partitionLag is what Lag computes a partition's lag from.
type partitionLag struct {
	end       int64 // last stable offset of the latest fetch: the end a read_committed reader can reach
	committed int64 // next offset to read, as committed (or first polled); -1 unknown
}

// lags returns, for every partition this member reads and has fetched from,
// how many offsets lie between its committed offset and the end a
// read_committed reader can reach (the last stable offset of the latest
// fetch). It counts transaction markers too, so it is an upper bound of the
// changes still to apply.
func (t *lagTracker) lags() map[TopicPartition]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[TopicPartition]int64, len(t.lag))
	for tp, l := range t.lag {
		if l.committed >= 0 {
			out[tp] = max(0, l.end-l.committed)
		}
	}
	return out
}

// noteEnds records each fetched partition's end and, for a partition seen
// for the first time, the offset reading starts at.
func (t *lagTracker) noteEnds(fetches kgo.Fetches) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			return
		}
		tp := TopicPartition{p.Topic, p.Partition}
		l := t.lag[tp]
		if l == nil {
			l = &partitionLag{committed: -1}
			t.lag[tp] = l
		}
		end := p.LastStableOffset
		if end < 0 { // brokers before KIP-98 report none
			end = p.HighWatermark
		}
		l.end = max(l.end, end)
		if l.committed < 0 && len(p.Records) > 0 {
			l.committed = p.Records[0].Offset
		}
	})
}

// noteCommitted records committed offsets: the offset after each
// partition's last record in recs. The first time after an assignment
// that every partition read is committed to its end, it logs so.
func (t *lagTracker) noteCommitted(recs []*kgo.Record) {
	t.mu.Lock()
	for _, r := range recs {
		if l := t.lag[TopicPartition{r.Topic, r.Partition}]; l != nil && r.Offset+1 > l.committed {
			l.committed = r.Offset + 1
		}
	}
	caughtUp := !t.caughtUp && drained(t.lag)
	t.caughtUp = t.caughtUp || caughtUp
	partitions := len(t.lag)
	t.mu.Unlock()
	if caughtUp {
		t.log.Info("caught up with the topics", "group", t.groupID, "partitions", partitions)
	}
}

// drained reports whether every partition of lag that was read is
// committed to its end (the last stable offset of its latest fetch).
func drained(lag map[TopicPartition]*partitionLag) bool {
	for _, l := range lag {
		if l.committed >= 0 && l.committed < l.end {
			return false
		}
	}
	return len(lag) > 0
}

// assigned notes new partitions: they may be behind.
func (t *lagTracker) assigned() {
	t.mu.Lock()
	t.caughtUp = false
	t.mu.Unlock()
}

// forget drops the lag of partitions this member no longer reads.
func (t *lagTracker) forget(lost map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			delete(t.lag, TopicPartition{topic, p})
		}
	}
}
