// Package metrics holds the Prometheus counters strait keeps a series of
// per table, made small for thousands of tables.
package metrics

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Counters is a counter metric with labels, for metrics with a series per
// table. A prometheus.CounterVec keeps about 350 bytes a series (its
// label pairs, hash and collector): 7 MB of heap at 10,000 tables for two
// series each. A series of Counters is its label values, in one string,
// and a count: about 100 bytes. Register it like any collector: it reports
// every series at each scrape, as a CounterVec does.
type Counters struct {
	desc   *prometheus.Desc
	mu     sync.RWMutex
	series map[string]*Counter // by label values, joined by labelSep
}

// Counter is one series of a Counters; safe for concurrent use.
type Counter struct {
	labels []string // slices of its key in Counters.series
	n      atomic.Uint64
}

// labelSep joins a series' label values into its key: it cannot occur in
// valid UTF-8, which Prometheus requires label values to be.
const labelSep = "\xff"

// NewCounters returns the counter metric name, described by help, with
// the labels named.
func NewCounters(name, help string, labels ...string) *Counters {
	return &Counters{desc: prometheus.NewDesc(name, help, labels, nil), series: map[string]*Counter{}}
}

// With returns the series of the label values (one per label, in order),
// made on first use. It takes a lock and joins the values: callers on a
// hot path keep the series.
func (c *Counters) With(values ...string) *Counter {
	key := strings.Join(values, labelSep)
	c.mu.RLock()
	s := c.series[key]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s = c.series[key]; s == nil {
		s = &Counter{labels: strings.Split(key, labelSep)}
		c.series[key] = s
	}
	return s
}

// Add adds n to the series.
func (s *Counter) Add(n uint64) { s.n.Add(n) }

// Inc adds one to the series.
func (s *Counter) Inc() { s.n.Add(1) }

// Describe sends the metric's description (prometheus.Collector).
func (c *Counters) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect sends every series (prometheus.Collector). The series are
// listed under the lock and sent after it, so a scrape never holds up a
// table's first count.
func (c *Counters) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	all := make([]*Counter, 0, len(c.series))
	for _, s := range c.series {
		all = append(all, s)
	}
	c.mu.RUnlock()
	for _, s := range all {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(s.n.Load()), s.labels...)
	}
}
