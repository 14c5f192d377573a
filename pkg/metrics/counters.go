// Package metrics holds the Prometheus counters strait keeps a series of
// per table, made small for thousands of tables.
package metrics

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Counters is a counter metric with labels, for metrics with a series per
// table. A prometheus.CounterVec keeps about 350 bytes a series (its
// label pairs, hash and collector): 7 MB of heap at 10,000 tables for two
// series each. A series of Counters is its label values, in one string,
// and a count: about 100 bytes. Register it like any collector: it reports
// every series at each scrape, as a CounterVec does.
type Counters struct {
	desc   *prometheus.Desc
	names  []string // the labels
	byName []int    // the labels' indexes sorted by name: a series' label pairs are in this order
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
	byName := make([]int, len(labels))
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return &Counters{desc: prometheus.NewDesc(name, help, labels, nil), names: slices.Clone(labels), byName: byName, series: map[string]*Counter{}}
}

// With returns the series of the label values (one per label, in order),
// made on first use. It takes a lock and joins the values: callers on a
// hot path keep the series. A value that is not valid UTF-8 (a table name
// read from the source) is counted under its valid part, invalid bytes
// replaced by U+FFFD: a scrape would refuse the whole page for it. The
// wrong number of values panics, as a CounterVec's WithLabelValues does.
func (c *Counters) With(values ...string) *Counter {
	if len(values) != len(c.names) {
		panic(fmt.Sprintf("metrics: %d label values for %v", len(values), c.names))
	}
	for i, v := range values {
		if !utf8.ValidString(v) {
			values = slices.Clone(values)
			values[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
	}
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
		ch <- sample{c, s}
	}
}

// sample is a series being scraped (a prometheus.Metric). Its label pairs
// are made for the scrape and point at the series' own strings: a
// prometheus.MustNewConstMetric would copy and sort them for each series
// at each scrape (566 bytes a series against 300 for a CounterVec, whose
// pairs live as long as it does; BenchmarkGather).
type sample struct {
	c *Counters
	s *Counter
}

// Desc is the metric's description.
func (m sample) Desc() *prometheus.Desc { return m.c.desc }

// Write fills out with the series' labels and count.
func (m sample) Write(out *dto.Metric) error {
	pairs := make([]dto.LabelPair, len(m.c.byName))
	out.Label = make([]*dto.LabelPair, len(pairs))
	for i, j := range m.c.byName {
		pairs[i].Name, pairs[i].Value = &m.c.names[j], &m.s.labels[j]
		out.Label[i] = &pairs[i]
	}
	v := float64(m.s.n.Load())
	out.Counter = &dto.Counter{Value: &v}
	return nil
}
