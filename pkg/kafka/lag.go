package kafka

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
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
