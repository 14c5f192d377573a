package metrics

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestCountersExposition: counted the same way, concurrently, Counters and
// a prometheus.CounterVec give the same /metrics page.
func TestCountersExposition(t *testing.T) {
	const name, help = "strait_test_rows_total", "Rows, by table and op."
	compact, vec := NewCounters(name, help, "table", "op"), prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"table", "op"})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				table, op := fmt.Sprintf("shop.t%02d", (g*7+i)%50), string("cud"[i%3])
				compact.With(table, op).Add(uint64(i % 5))
				vec.WithLabelValues(table, op).Add(float64(i % 5))
			}
		})
	}
	wg.Wait()
	page := func(c prometheus.Collector) string {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, f := range families {
			if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	got, want := page(compact), page(vec)
	if got != want {
		t.Errorf("Counters:\n%s\nCounterVec:\n%s", got, want)
	}
	if n := testutil.CollectAndCount(compact); n != 150 {
		t.Errorf("%d series, want 150", n)
	}
}

// TestCountersInvalidLabels: a label value that is not valid UTF-8 (a
// table name from the source) is counted under its valid part, and the
// page still gathers; the wrong number of values panics at once, not at
// the next scrape.
func TestCountersInvalidLabels(t *testing.T) {
	c := NewCounters("strait_test_records_total", "Records, by table.", "table")
	c.With("shop.bad\xff\xfename").Add(2)
	c.With("shop.good").Inc()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `# HELP strait_test_records_total Records, by table.
# TYPE strait_test_records_total counter
strait_test_records_total{table="shop.bad` + "\uFFFD" + `name"} 2
strait_test_records_total{table="shop.good"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("two values for one label: no panic")
		}
	}()
	c.With("shop.a", "c")
}

// TestCountersHeapPerSeries bounds what a series of a table costs (issue
// 18: 20,000 tables with a few series each), against a CounterVec's.
func TestCountersHeapPerSeries(t *testing.T) {
	const series = 10_000
	tables := make([]string, series)
	for i := range tables {
		tables[i] = fmt.Sprintf("shop.t%05d", i)
	}
	per := func(count func(table string)) int64 {
		before := testenv.HeapInUse()
		for _, table := range tables {
			count(table)
		}
		return (testenv.HeapInUse() - before) / series
	}
	compact := NewCounters("strait_test_records_total", "Records, by table.", "table")
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_test_records_total", Help: "Records, by table."}, []string{"table"})
	c := per(func(table string) { compact.With(table).Inc() })
	v := per(func(table string) { vec.WithLabelValues(table).Inc() })
	runtime.KeepAlive(compact)
	runtime.KeepAlive(vec)
	t.Logf("a series: %d bytes, %d as a CounterVec's", c, v)
	if c > 128 {
		t.Errorf("a series holds %d bytes, over 128 (a CounterVec's: %d)", c, v)
	}
}

// BenchmarkGather is a scrape of 10,000 series, of Counters and of a
// CounterVec: what a /metrics page allocates a series (B/op ÷ 10,000).
func BenchmarkGather(b *testing.B) {
	const series = 10_000
	compact := NewCounters("strait_test_records_total", "Records, by table.", "table")
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_test_records_total", Help: "Records, by table."}, []string{"table"})
	for i := range series {
		table := fmt.Sprintf("shop.t%05d", i)
		compact.With(table).Inc()
		vec.WithLabelValues(table).Inc()
	}
	for _, c := range []struct {
		name string
		c    prometheus.Collector
	}{{"Counters", compact}, {"CounterVec", vec}} {
		b.Run(c.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(c.c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
