package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// BenchmarkEndToEndLatency measures how long a source row takes from its
// commit in MariaDB to BigQuery's acknowledgement of the append holding it,
// through bin/producer and bin/consumer running as processes (make demo's
// stack: MariaDB, kfake, srfake, the local BigQuery endpoint), at a steady
// rate of rows per second: p50, p99 and max over every row written in the
// measured window, after a warm-up.
//
// The writer is open loop: every latencyTick it commits, in a transaction
// of its own, the rows due by then (a multi-row INSERT of new ids, or every
// fourth batch an UPDATE of a range of earlier ones), and notes the time
// COMMIT returned. Every row carries its batch number, which the local
// endpoint reports back (bqfake's OnAppend) with the time it applied the
// append: latency = that time − the batch's commit time, on one clock.
//
// The baseline, measured in the same run at the same rate and batching, is
// a bare Kafka round trip through the same kfake broker: franz-go produces
// each batch and a plain consumer polls it, from the produce call to the
// record polled. Targets (issue 7): p99 ≤ 250 ms at 10,000 rows/s and
// ≤ 1 s at 50,000 rows/s.
//
// Next to the percentiles it reports the part of the latency until the
// consumer built the row's append (the row's _strait_ingested_at), the
// CPU each process spent per row, the load average, and the producer's
// Kafka commits and the consumer's appends over the window: on a shared
// machine they tell a slow pipeline from a starved one.
//
// STRAIT_BENCH_LATENCY_SECONDS sets the measured window (default 20 s,
// -short 5 s); the warm-up is a quarter of it, at least 3 s. The binaries
// run with their defaults plus STRAIT_BENCH_PRODUCER_FLAGS and
// STRAIT_BENCH_CONSUMER_FLAGS.
func BenchmarkEndToEndLatency(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin := buildBinaries(b, ctx)
	window := 20 * time.Second
	if testing.Short() {
		window = 5 * time.Second
	}
	if v := os.Getenv("STRAIT_BENCH_LATENCY_SECONDS"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s < 1 {
			b.Fatalf("STRAIT_BENCH_LATENCY_SECONDS=%q: want a whole number of seconds, at least 1", v)
		}
		window = time.Duration(s) * time.Second
	}
	for _, rate := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			measureLatency(b, ctx, bin, rate, window).report(b)
		})
	}
}

// The benchmark's measurement, sized for make test (seconds at 1,000
// rows/s): every row written in the window comes back from BigQuery once,
// matched to its source transaction, and was built by the consumer before
// BigQuery acknowledged it. It asserts no timing: the targets are the
// benchmark's.
func TestLatencyMeasurementMatchesEveryRow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := measureLatency(t, ctx, buildBinaries(t, ctx), 1000, 2*time.Second)
	if r.rows == 0 || r.batches == 0 {
		t.Fatalf("nothing written in the window: %d rows, %d batches", r.rows, r.batches)
	}
	if r.acked != r.rows {
		t.Errorf("%d acknowledgements of the window's %d rows, want one each", r.acked, r.rows)
	}
	if r.earlyAcks != 0 {
		t.Errorf("%d rows built by the consumer after BigQuery acknowledged them", r.earlyAcks)
	}
	t.Logf("%d rows in %d batches, p50 %.1f ms, p99 %.1f ms (not asserted)", r.rows, r.batches, r.total.p50, r.total.p99)
}

// latencyTick is how often the writer commits a batch: 50 rows at 10,000
// rows/s, 250 at 50,000.
const latencyTick = 5 * time.Millisecond

// benchFlags are extra flags for bin/producer or bin/consumer from
// STRAIT_BENCH_PRODUCER_FLAGS or STRAIT_BENCH_CONSUMER_FLAGS
// (space-separated), for trying settings: the benchmark itself runs the
// binaries with their defaults (README "Performance" says which settings
// trade CPU for latency).
func benchFlags(binary string) []string {
	return strings.Fields(os.Getenv("STRAIT_BENCH_" + strings.ToUpper(binary) + "_FLAGS"))
}

func measureLatency(tb testing.TB, ctx context.Context, bin string, rate int, window time.Duration) *latencyResult {
	o := &options{dir: tb.TempDir(), bin: bin, brokers: 1, dataset: "strait_demo"}
	st, err := startStack(ctx, o, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.close()
	defer func() {
		if tb.Failed() {
			for _, name := range []string{"producer", "consumer"} {
				log, _ := os.ReadFile(filepath.Join(o.dir, name+".log"))
				tb.Logf("%s log:\n%s", name, tailLines(string(log), 40))
			}
		}
	}()
	if err := st.db.Exec(ctx, "", "CREATE DATABASE shop",
		"CREATE TABLE shop.latency (id BIGINT PRIMARY KEY, batch INT NOT NULL, n INT NOT NULL, note VARCHAR(40) NOT NULL)"); err != nil {
		tb.Fatal(err)
	}
	acks := &ackLog{table: "shop_latency"}
	st.bq.OnAppend(acks.observe)
	if err := st.writeConfigs(); err != nil {
		tb.Fatal(err)
	}
	for _, name := range []string{"producer", "consumer"} {
		addr := freeAddr()
		if _, err := st.spawn(name, append([]string{"-http_addr", addr}, benchFlags(name)...)...); err != nil {
			tb.Fatal(err)
		}
		st.metrics[name] = "http://" + addr + "/metrics"
		if err := waitReady(ctx, addr, filepath.Join(o.dir, name+".log"), nil); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
	}

	warmup := max(3*time.Second, window/4)
	base, err := kafkaRoundTrip(ctx, st.kafka.ListenAddrs(), rate, warmup/2, window/2)
	if err != nil {
		tb.Fatalf("baseline: %v", err)
	}

	// CPU of every process of the pipeline over the writing, per row: what
	// the rate asks of the two cores, steadier than latencies are.
	pids := map[string]string{"producer": strconv.Itoa(st.procs[0].cmd.Process.Pid), "consumer": strconv.Itoa(st.procs[1].cmd.Process.Pid), "bench": "self"}
	if pid, err := os.ReadFile(filepath.Join(st.db.Dir, "mariadbd.pid")); err == nil {
		pids["mariadbd"] = strings.TrimSpace(string(pid))
	}
	cpu0 := map[string]time.Duration{}
	for name, pid := range pids {
		cpu0[name] = testenv.ProcessCPU(pid)
	}
	loadBefore := loadAverage()
	// The producer's Kafka transactions and the consumer's appends: how
	// many, and how long each took on average.
	type histogram struct{ url, name string }
	hists := []histogram{{st.metrics["producer"], "strait_producer_commit_seconds"}, {st.metrics["consumer"], "strait_consumer_append_seconds"}}
	hist0 := map[string][2]float64{}
	for _, h := range hists {
		hist0[h.name] = [2]float64{sum(h.url, h.name+"_count"), sum(h.url, h.name+"_sum")}
	}

	w := &latencyWriter{rate: rate}
	c, err := st.db.Conn(ctx, "shop")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	first, last, err := w.run(ctx, func(s string) error { _, err := c.Execute(s); return err }, warmup, window)
	if err != nil {
		tb.Fatal(err)
	}
	if first >= last {
		tb.Fatalf("no batch was committed in the %s window", window)
	}
	want := 0
	for _, bt := range w.batches[first:last] {
		want += bt.rows
	}
	// Wait for every measured row to be acknowledged: the tail of the
	// window counts as much as the rest.
	deadline := time.Now().Add(2 * time.Minute)
	for acks.count(first, last) < want {
		if time.Now().After(deadline) || ctx.Err() != nil {
			tb.Fatalf("%d of %d measured rows acknowledged after 2 minutes", acks.count(first, last), want)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	// Every row written is acknowledged: the CPU and calls since the
	// writing began are what the rows cost, backlog included.
	var cpu []string
	var cpuTotal time.Duration
	written := 0
	for _, bt := range w.batches {
		written += bt.rows
	}
	for _, name := range []string{"mariadbd", "producer", "consumer", "bench"} {
		if pid, ok := pids[name]; ok {
			d := testenv.ProcessCPU(pid) - cpu0[name]
			cpuTotal += d
			cpu = append(cpu, fmt.Sprintf("%s %.1f", name, float64(d.Microseconds())/float64(written)))
		}
	}
	var calls []string
	for _, h := range hists {
		n, secs := sum(h.url, h.name+"_count")-hist0[h.name][0], sum(h.url, h.name+"_sum")-hist0[h.name][1]
		calls = append(calls, fmt.Sprintf("%s: %.0f, mean %.1f ms", h.name, n, 1000*secs/max(n, 1)))
	}
	lat, toConsumer := acks.latencies(w.batches, first, last)
	var slowest time.Duration // the writer's slowest commit, for reading a stall
	for _, bt := range w.batches[first:last] {
		slowest = max(slowest, bt.commit.Sub(bt.start))
	}
	achieved := float64(want) / w.batches[last-1].commit.Sub(w.batches[first].start).Seconds()
	return &latencyResult{
		rate: rate, achieved: achieved, rows: want, batches: last - first, window: window, warmup: warmup,
		total: summarize(lat), toConsumer: summarize(toConsumer), base: summarize(base), slowest: slowest,
		cpuPerRow: float64(cpuTotal.Microseconds()) / float64(written), cpu: strings.Join(cpu, ", "), calls: strings.Join(calls, "; "),
		load: loadBefore + " before, " + loadAverage() + " after", earlyAcks: acks.early(first, last), acked: len(lat),
	}
}

// latencyResult is what measureLatency measured; milliseconds unless
// said.
type latencyResult struct {
	rate                    int
	achieved                float64 // rows/s
	rows, batches           int     // in the window
	window, warmup          time.Duration
	total, toConsumer, base percentiles
	slowest                 time.Duration // the writer's slowest commit
	cpuPerRow               float64       // µs, all processes
	cpu, calls, load        string        // per process, producer commits and consumer appends, load average
	earlyAcks               int           // rows built by the consumer after BigQuery acknowledged them: none, or the clocks are off
	acked                   int           // acknowledgements of the window's rows: rows, when each row is applied once
}

// report gives r as benchmark metrics and a log line.
func (r *latencyResult) report(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r.total.p50, "p50-ms")
	b.ReportMetric(r.total.p99, "p99-ms")
	b.ReportMetric(r.total.max, "max-ms")
	b.ReportMetric(r.achieved, "rows/s")
	b.ReportMetric(r.base.p50, "base-p50-ms")
	b.ReportMetric(r.base.p99, "base-p99-ms")
	b.ReportMetric(r.total.p99/r.base.p99, "p99/base")
	b.ReportMetric(r.toConsumer.p50, "consumer-p50-ms")
	b.ReportMetric(r.toConsumer.p99, "consumer-p99-ms")
	b.ReportMetric(r.cpuPerRow, "cpu-us/row")
	b.Logf("rate %d rows/s (achieved %.0f, %d rows in %s after %s warm-up, %d batches): commit→BigQuery ack p50 %.1f ms, p99 %.1f ms, max %.1f ms; "+
		"baseline Kafka round trip p50 %.1f ms, p99 %.1f ms, max %.1f ms; p99 ratio %.1f; "+
		"commit→consumer building the append p50 %.1f ms, p99 %.1f ms; slowest source commit %s; "+
		"CPU µs per row %.1f (%s; bench = kfake, srfake, bqfake and the writer); load average %s; %s",
		r.rate, r.achieved, r.rows, r.window, r.warmup, r.batches, r.total.p50, r.total.p99, r.total.max, r.base.p50, r.base.p99, r.base.max, r.total.p99/r.base.p99,
		r.toConsumer.p50, r.toConsumer.p99, r.slowest.Round(time.Millisecond), r.cpuPerRow, r.cpu, r.load, r.calls)
}

// batch is one source transaction of the latency writer.
type batch struct {
	start  time.Time // when it was due
	commit time.Time // when COMMIT returned
	rows   int
}

// latencyWriter commits the rows due at rate every latencyTick; when it is
// behind (a slow commit) it catches up in transactions of at most 50 ms
// worth of rows, so that the pipeline sees transactions of a steady size.
type latencyWriter struct {
	rate    int
	batches []batch
}

// run writes for warmup+window and returns the range of batches begun in
// the window. exec runs one statement on the writer's session.
func (w *latencyWriter) run(ctx context.Context, exec func(string) error, warmup, window time.Duration) (first, last int, err error) {
	tick := time.NewTicker(latencyTick)
	defer tick.Stop()
	start := time.Now()
	written, nextID, nextUpdate := 0, int64(1), int64(1)
	first = -1
	for {
		// Open loop: what is due by now, however late the last batch was
		// (a full batch more right away when behind, else the rest at the
		// next tick).
		for caughtUp := false; !caughtUp; {
			since := time.Since(start)
			if since >= warmup+window {
				return first, len(w.batches), nil
			}
			if first < 0 && since >= warmup {
				first = len(w.batches)
			}
			n := int(float64(w.rate)*since.Seconds()) - written
			if n <= 0 {
				break
			}
			caughtUp = n <= w.rate/20
			n = min(n, w.rate/20)
			bn := len(w.batches)
			var stmt string
			if bn%4 == 3 && nextUpdate+int64(n) < nextID {
				stmt = fmt.Sprintf("UPDATE latency SET batch = %d, n = n + 1 WHERE id BETWEEN %d AND %d", bn, nextUpdate, nextUpdate+int64(n)-1)
				nextUpdate += int64(n)
			} else {
				var sb strings.Builder
				sb.WriteString("INSERT INTO latency (id, batch, n, note) VALUES ")
				for i := range n {
					if i > 0 {
						sb.WriteByte(',')
					}
					fmt.Fprintf(&sb, "(%d,%d,0,'row %d of a steady stream')", nextID, bn, nextID)
					nextID++
				}
				stmt = sb.String()
			}
			due := time.Now()
			for _, s := range []string{"BEGIN", stmt, "COMMIT"} {
				if err := exec(s); err != nil {
					return 0, 0, fmt.Errorf("batch %d: %s: %w", bn, s[:min(len(s), 60)], err)
				}
			}
			w.batches = append(w.batches, batch{start: due, commit: time.Now(), rows: n})
			written += n
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// ackLog records, for every row BigQuery acknowledged, its batch and when.
type ackLog struct {
	table    string
	mu       sync.Mutex
	acks     []ack
	perBatch []int // rows acknowledged, by batch
}

type ack struct {
	batch    int32
	at       time.Time
	ingested time.Time // the row's _strait_ingested_at: when the consumer built it
}

// observe is the endpoint's OnAppend function.
func (l *ackLog) observe(a bqfake.Applied) {
	if a.Table != l.table {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range a.Rows {
		if bn, ok := r["batch"].(int64); ok {
			ing, _ := r["_strait_ingested_at"].(time.Time)
			l.acks = append(l.acks, ack{batch: int32(bn), at: a.At, ingested: ing})
			for int(bn) >= len(l.perBatch) {
				l.perBatch = append(l.perBatch, 0)
			}
			l.perBatch[bn]++
		}
	}
}

// count is the number of rows acknowledged of batches [first, last).
func (l *ackLog) count(first, last int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.perBatch[min(first, len(l.perBatch)):min(last, len(l.perBatch))] {
		n += c
	}
	return n
}

// latencies are the commit-to-acknowledgement times of the rows of
// batches [first, last), in milliseconds, and the commit-to-consumer
// part of them (until the consumer built the row's append).
func (l *ackLog) latencies(batches []batch, first, last int) (total, toConsumer []float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, a := range l.acks {
		if int(a.batch) >= first && int(a.batch) < last {
			commit := batches[a.batch].commit
			total = append(total, ms(a.at.Sub(commit)))
			toConsumer = append(toConsumer, ms(a.ingested.Sub(commit)))
		}
	}
	return total, toConsumer
}

// early counts the rows of batches [first, last) whose
// _strait_ingested_at is after BigQuery's acknowledgement.
func (l *ackLog) early(first, last int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.acks {
		if int(a.batch) >= first && int(a.batch) < last && a.ingested.After(a.at) {
			n++
		}
	}
	return n
}

// percentiles in milliseconds.
type percentiles struct{ p50, p99, max float64 }

func summarize(ms []float64) percentiles {
	if len(ms) == 0 {
		return percentiles{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	at := func(q float64) float64 { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	return percentiles{p50: at(0.5), p99: at(0.99), max: s[len(s)-1]}
}

// kafkaRoundTrip is the baseline: franz-go produces batches of rate/s
// records (one per row, of about the size of a change) every latencyTick
// to a topic of the same broker, and a plain consumer polls them; it
// returns each record's time from its produce call to its poll, in
// milliseconds, for the records produced in the window after warmup.
func kafkaRoundTrip(ctx context.Context, brokers []string, rate int, warmup, window time.Duration) ([]float64, error) {
	const topic = "latency_baseline" // outside the consumer's demo.* topics
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 3, -1, nil, topic); err != nil {
		return nil, fmt.Errorf("create %s: %w", topic, err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cons.Close()

	var (
		mu     sync.Mutex
		sent   []time.Time // by batch
		polled []ack
	)
	pollCtx, stopPolling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for pollCtx.Err() == nil {
			fs := cons.PollFetches(pollCtx)
			now := time.Now()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				bn, _ := strconv.Atoi(string(r.Key[:strings.IndexByte(string(r.Key), '/')]))
				polled = append(polled, ack{batch: int32(bn), at: now})
			})
			mu.Unlock()
		}
	})
	defer func() { stopPolling(); wg.Wait() }()

	value := []byte(strings.Repeat("v", 120))
	tick := time.NewTicker(latencyTick)
	defer tick.Stop()
	start := time.Now()
	written, first, want := 0, -1, 0
	for time.Since(start) < warmup+window {
		since := time.Since(start)
		if first < 0 && since >= warmup {
			first = len(sent)
		}
		if n := int(float64(rate)*since.Seconds()) - written; n > 0 {
			mu.Lock()
			bn := len(sent)
			sent = append(sent, time.Now())
			mu.Unlock()
			for i := range n {
				prod.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "%d/%d", bn, i), Value: value}, nil)
			}
			written += n
			if first >= 0 {
				want += n
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	if err := prod.Flush(ctx); err != nil {
		return nil, err
	}
	last := len(sent)
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		var out []float64
		for _, p := range polled {
			if int(p.batch) >= first && int(p.batch) < last {
				out = append(out, float64(p.at.Sub(sent[p.batch]))/float64(time.Millisecond))
			}
		}
		mu.Unlock()
		if len(out) >= want {
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d records polled after a minute", len(out), want)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// loadAverage is the one-minute load average, as /proc/loadavg says.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
