package main

// The consumer benchmark behind README's "Performance" section (`make
// bench`). Each case pre-fills Kafka with changes encoded as the producer
// encodes them (pkg/avro, Confluent framing, keys hashed to partitions as
// the producer does) — produced directly, not through MariaDB — then times,
// over the same records:
//
//   - the baseline: a franz-go group member that polls every record and
//     does nothing with it;
//   - `consumer run` itself, into the local BigQuery endpoint over loopback
//     gRPC, until the group has committed every partition to its end.
//
// Kafka (kfake) and BigQuery (bqfake) each run in a child process (this test
// binary, see init), so the CPU and memory measured here are the
// consumer's own; the endpoint's CPU is read from /proc and reported
// separately, as is kfake's.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// benchChildEnv set in the environment makes this test binary serve, for
// the benchmark, kfake ("kafka") or bqfake ("bigquery") until its stdin
// closes, instead of running tests. It prints its addresses first.
const benchChildEnv = "STRAIT_BENCH_CONSUMER_CHILD"

func init() {
	var addr string
	var stop func()
	switch os.Getenv(benchChildEnv) {
	case "":
		return
	case "kafka":
		c, err := testenv.StartKafka()
		if err != nil {
			fmt.Fprintln(os.Stderr, "start kfake:", err)
			os.Exit(1)
		}
		addr, stop = strings.Join(c.ListenAddrs(), ","), c.Close
	case "bigquery":
		s, err := bqfake.New(bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "start bqfake:", err)
			os.Exit(1)
		}
		addr, stop = s.RESTURL()+" "+s.GRPCAddr(), func() { s.Close() }
	}
	// STRAIT_BENCH_CHILD_PROFILE names a CPU profile of the child's life.
	var prof *os.File
	if name := os.Getenv("STRAIT_BENCH_CHILD_PROFILE"); name != "" {
		if f, err := os.Create(name); err == nil && pprof.StartCPUProfile(f) == nil {
			prof = f
		}
	}
	testenv.ServeChild(addr)
	stop()
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
	os.Exit(0)
}

// startBenchChild starts a kfake or bqfake child process (kind: kafka or
// bigquery).
func startBenchChild(b *testing.B, kind string) *testenv.Child {
	b.Helper()
	env := []string{benchChildEnv + "=" + kind}
	if prefix := os.Getenv("STRAIT_BENCH_CPUPROFILE"); prefix != "" {
		// The child profiles itself (README, "Performance").
		env = append(env, "STRAIT_BENCH_CHILD_PROFILE="+prefix+"."+strings.ReplaceAll(b.Name(), "/", "_")+"."+kind+".pprof")
	}
	c, err := testenv.StartChild(env...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Stop)
	return c
}

// benchChanges is the number of changes of each case:
// STRAIT_BENCH_CHANGES, else 100,000 with -short, else 1,000,000.
func benchChanges() int {
	if n, err := strconv.Atoi(os.Getenv("STRAIT_BENCH_CHANGES")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// benchTable is table i of the benchmark: ten columns, about 200 bytes a
// row (the producer benchmark's columns).
func benchTable(i int) *cdc.Table {
	return &cdc.Table{Database: "bench", Name: fmt.Sprintf("t%04d", i), PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64},
		{Name: "account_id", Type: cdc.TypeInt32},
		{Name: "amount", Type: cdc.TypeDecimal, Precision: 12, Scale: 2},
		{Name: "quantity", Type: cdc.TypeInt32},
		{Name: "status", Type: cdc.TypeString},
		{Name: "email", Type: cdc.TypeString},
		{Name: "note", Type: cdc.TypeString, Nullable: true},
		{Name: "created_at", Type: cdc.TypeDateTime},
		{Name: "updated_at", Type: cdc.TypeTimestamp},
		{Name: "score", Type: cdc.TypeFloat64},
	}}
}

// benchRow is version v of row id.
func benchRow(id int64, v int) []cdc.Value {
	n := id*7919 + int64(v)
	return []cdc.Value{
		cdc.Int(id), cdc.Int(n % 100000), cdc.Str(fmt.Sprintf("%d.%02d", n%1000000, n%100)), cdc.Int(n % 50),
		cdc.Str([]string{"new", "paid", "shipped", "returned"}[n%4]),
		cdc.Str(fmt.Sprintf("customer%d@example.com", id)),
		cdc.Str(fmt.Sprintf("%016x%016x %016x%016x gift wrap", uint64(n)*0x9e3779b97f4a7c15, n^0x5bd1e995, n*31, n*17)),
		cdc.Int(1704067200_000000 + id*1_000_001), cdc.Int(1700000000_000000 + n*1000), cdc.Float(float64(n) / 7),
	}
}

// prefill produces changes records spread round-robin over tables topics
// of partitions partitions each: per table, a quarter of the changes
// insert rows, the rest update them (before and after images). It returns
// the topics and the value bytes written.
func prefill(b *testing.B, ctx context.Context, brokers []string, registry, prefix string, tables, partitions, changes int) ([]string, int64) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	reg, err := kafka.NewRegistry(registry)
	if err != nil {
		b.Fatal(err)
	}
	encs := make([]*avro.Encoder, tables)
	topics := make([]string, tables)
	for i := range tables {
		t := benchTable(i)
		topics[i] = prefix + ".bench." + t.Name
		s, err := avro.Build(prefix, t)
		if err != nil {
			b.Fatal(err)
		}
		kid, err := reg.Register(ctx, topics[i]+"-key", s.Key)
		if err != nil {
			b.Fatal(err)
		}
		vid, err := reg.Register(ctx, topics[i]+"-value", s.Value)
		if err != nil {
			b.Fatal(err)
		}
		encs[i] = avro.NewEncoder(t, prefix, "bench", uint32(kid), uint32(vid))
	}
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, int32(partitions), 1, nil, topics...); err != nil {
		b.Fatal(err)
	}
	perTable := max(1, changes/tables)
	keys := max(1, perTable/4)
	var bytes int64
	errs := make(chan error, 1)
	for i := range changes {
		t, j := i%tables, i/tables
		id, v := int64(j%keys), j/keys
		ev := cdc.Event{Table: encs[t].Table(), Op: cdc.OpCreate, After: benchRow(id, v),
			Position:   cdc.Position{Epoch: 1, File: 1, Pos: uint64(i+1) * 100},
			Source:     cdc.Source{ServerID: 1, File: "binlog.000001", Pos: uint64(i+1) * 100},
			CommitTime: time.UnixMilli(1700000000000 + int64(i)),
		}
		if v > 0 {
			ev.Op, ev.Before = cdc.OpUpdate, benchRow(id, v-1)
		}
		key, err := encs[t].AppendKey(nil, &ev)
		if err != nil {
			b.Fatal(err)
		}
		val, err := encs[t].AppendValue(nil, &ev, ev.CommitTime)
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(val))
		cl.Produce(ctx, &kgo.Record{Topic: topics[t], Key: key, Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return topics, bytes
}

// benchResult is what one timed pass used.
type benchResult struct {
	wall, cpu, kafkaCPU, bqCPU time.Duration
	peakRSS                    float64 // MiB
}

// measure times pass and records the CPU of this process and of the
// children, and this process's peak RSS.
func measure(kafkaChild, bqChild *testenv.Child, pass func()) benchResult {
	runtime.GC()
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
	k0, q0, c0, t0 := kafkaChild.CPU(), bqChild.CPU(), processCPU(), time.Now()
	pass()
	return benchResult{wall: time.Since(t0), cpu: processCPU() - c0, kafkaCPU: kafkaChild.CPU() - k0, bqCPU: bqChild.CPU() - q0, peakRSS: peakRSS()}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns this process's VmHWM in MiB.
func peakRSS() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// baseline polls every record of topics as a franz-go group member
// (read_committed, cooperative-sticky, as the consumer) and does nothing
// with them.
func baseline(b *testing.B, ctx context.Context, brokers []string, prefix, group string, want int) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group),
		kgo.ConsumeRegex(), kgo.ConsumeTopics(kafka.TopicPattern(prefix)),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for n := 0; n < want; {
		fs := cl.PollRecords(ctx, 50000)
		if ctx.Err() != nil {
			b.Fatalf("baseline: %d of %d records at the deadline", n, want)
		}
		n += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		b.Fatal(err)
	}
}

// consume runs `consumer run` on the topics of prefix until the group has
// committed every partition to its end, and returns its /metrics text
// scraped just before it stops.
func consume(b *testing.B, ctx context.Context, kafkaChild, bqChild *testenv.Child, registry, prefix, group, dataset string, topics []string, extra ...string) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	args := []string{"run",
		"-kafka.brokers", strings.Join(kafkaChild.Addrs, ","), "-kafka.group_id", group,
		"-kafka.topic_prefix", prefix, "-kafka.schema_registry_url", registry,
		"-bigquery.project", project, "-bigquery.dataset", dataset,
		"-bigquery.endpoint", bqChild.Addrs[0], "-bigquery.write_endpoint", bqChild.Addrs[1], "-bigquery.insecure=true",
		"-http_addr", httpAddr, "-log_level", "warn", "-log_format", "text",
	}
	args = append(args, extra...)
	runCtx, cancel := context.WithCancel(ctx)
	var logs testenv.Buffer
	done := make(chan error, 1)
	go func() { done <- run(runCtx, args, func(string) string { return "" }, io.Discard, &logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("consumer: %v\n%s", err, logs.String())
		}
	}()

	adm := newBenchAdmin(b, kafkaChild.Addrs)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		b.Fatal(err)
	}
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		behind := err != nil
		ends.Each(func(o kadm.ListedOffset) {
			if c, _ := committed.Lookup(o.Topic, o.Partition); c.At != o.Offset {
				behind = true
			}
		})
		if !behind {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("consumer stopped: %v\n%s", err, logs.String())
		case <-ctx.Done():
			b.Fatalf("consumer not done at the deadline\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// What the consumer holds once it has applied every change, still
	// running (STRAIT_BENCH_HEAPPROFILE).
	if err := testenv.WriteHeapProfile(b.Name()); err != nil {
		b.Fatal(err)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return string(text)
}

func newBenchAdmin(b *testing.B, brokers []string) *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// metric sums the samples of name (any labels) in a /metrics text.
func metric(text, name string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

// BenchmarkConsumer: consumer rows/s against the baseline, with 8 tables
// of 6 partitions and with 1,000 tables of 1 partition, the latter on the
// shared write connections (bigquery.write_connections, default 8 per
// kind) and on one connection per table (0, as before issue 15); the
// connections metric is what the consumer holds at the end. With 10,000
// tables of 4 changes each, what the consumer holds per table (issue 18)
// is most of its peak RSS.
func BenchmarkConsumer(b *testing.B) {
	for _, c := range []struct {
		name               string
		tables, partitions int
		conns              string // bigquery.write_connections; "" the default
		changes            int    // 0: benchChanges()
	}{
		{"tables=8", 8, 6, "", 0},
		{"tables=1000", 1000, 1, "", 0},
		{"tables=1000/connections=per-table", 1000, 1, "0", 0},
		{"tables=10000", 10_000, 1, "", 40_000},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			kafkaChild, bqChild := startBenchChild(b, "kafka"), startBenchChild(b, "bigquery")
			changes := benchChanges()
			if c.changes > 0 {
				changes = c.changes
			}
			prefix := "bench"
			// The benchmark's registry: srfake's own registration takes
			// time quadratic in the schemas (testenv.StartBenchRegistry).
			registry := testenv.StartBenchRegistry()
			defer registry.Close()
			topics, valueBytes := prefill(b, ctx, kafkaChild.Addrs, registry.URL(), prefix, c.tables, c.partitions, changes)
			b.ResetTimer()
			for i := range b.N {
				base := measure(kafkaChild, bqChild, func() {
					baseline(b, ctx, kafkaChild.Addrs, prefix, fmt.Sprintf("base-%d", i), changes)
				})
				var text string
				var extra []string
				if c.conns != "" {
					extra = []string{"-bigquery.write_connections", c.conns}
				}
				// STRAIT_BENCH_CPUPROFILE: the consumer pass only
				// (-cpuprofile would also profile the pre-filling).
				stopProfile, err := testenv.StartCPUProfile(b.Name())
				if err != nil {
					b.Fatal(err)
				}
				cons := measure(kafkaChild, bqChild, func() {
					text = consume(b, ctx, kafkaChild, bqChild, registry.URL(), prefix, fmt.Sprintf("bench-%d", i), fmt.Sprintf("bench_%d", i), topics, extra...)
				})
				stopProfile()
				if applied := metric(text, "strait_consumer_rows_applied_total"); int(applied) != changes {
					b.Fatalf("rows applied: %v, want %d", applied, changes)
				}
				requests := metric(text, "strait_consumer_append_request_bytes_count")
				small := metric(text, `strait_consumer_append_request_bytes_bucket{le="1.048576e+06"}`)
				n := float64(changes)
				b.ReportMetric(n/cons.wall.Seconds(), "rows/s")
				b.ReportMetric(n/base.wall.Seconds(), "baseline-rows/s")
				b.ReportMetric(base.wall.Seconds()/cons.wall.Seconds(), "ratio")
				b.ReportMetric(float64(cons.cpu.Microseconds())/n, "CPU-µs/row")
				b.ReportMetric(float64(base.cpu.Microseconds())/n, "baseline-CPU-µs/row")
				b.ReportMetric(float64(cons.bqCPU.Microseconds())/n, "endpoint-CPU-µs/row")
				b.ReportMetric(float64(cons.kafkaCPU.Microseconds())/n, "kfake-CPU-µs/row")
				b.ReportMetric(metric(text, "strait_consumer_append_request_bytes_sum")/requests, "B/AppendRows")
				b.ReportMetric(requests, "AppendRows")
				b.ReportMetric(100*small/requests, "%AppendRows<1MiB")
				b.ReportMetric(cons.peakRSS, "peak-RSS-MiB")
				b.ReportMetric(base.peakRSS, "baseline-peak-RSS-MiB")
				b.ReportMetric(float64(valueBytes)/n, "value-B/change")
				b.ReportMetric(metric(text, "strait_consumer_bigquery_connections"), "connections")
			}
		})
	}
}
