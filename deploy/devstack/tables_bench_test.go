package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
)

// BenchmarkManyTables (issue 18) runs the whole pipeline — bin/producer and
// bin/consumer as processes, MariaDB, kfake, srfake and the local BigQuery
// endpoint — over 20,000 captured tables of a few rows each, next to the
// same run over 100 tables (the baseline, measured first in the same
// process). For each it reports:
//
//   - start-s: from starting the producer until it is ready (/readyz);
//   - snapshot-s: until the initial snapshot has published every table,
//     and snapshot-bq-s until BigQuery has acknowledged every row of it;
//   - rows/s: a write workload spread over every table (one row per
//     source transaction, round-robin) written while the producer is
//     stopped, then from the producer's restart until BigQuery
//     acknowledged the last row: how fast the pipeline catches up, not how
//     fast MariaDB commits; ratio is it against the 100-table run's;
//   - steady-rows/s: the same workload again, written while the producer
//     is paused (SIGSTOP), from its resumption: every table's topic and
//     schemas already known; steady-ratio against the 100-table run's;
//   - steady-producer-, steady-consumer- and steady-fakes-cpu-µs/row: the
//     CPU time of each binary and of the benchmark's own process (kfake,
//     the registry, the local BigQuery) over that pass, by row;
//   - checkpoint-bytes: the largest checkpoint record in
//     <prefix>._checkpoint (written at every commit);
//   - producer-MiB and consumer-MiB: peak RSS (VmHWM);
//   - bq-connections: the most BigQuery write connections open at once.
//
// Targets (issue 18): at 20,000 tables producer under 256 MiB, consumer
// under 512 MiB, steady-ratio at least 0.8, start under 60 s.
// STRAIT_BENCH_TABLES overrides the large size (e.g. 2000 for a quick
// look); STRAIT_BENCH_SPREAD_ROWS the rows of the write workload (default
// 40,000); STRAIT_BENCH_KEEP names a directory to keep the binaries' logs
// in, with each binary's heap profile once the snapshot is in BigQuery,
// halfway through the catch-up and after the steady pass, and its CPU
// profile of the steady pass's first STRAIT_BENCH_CPU_SECONDS (default 5;
// go tool pprof reads them);
// STRAIT_BENCH_PRODUCER_GOMEMLIMIT and STRAIT_BENCH_CONSUMER_GOMEMLIMIT
// set the binaries' GOMEMLIMIT (default none).
func BenchmarkManyTables(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	bin := buildBinaries(b, ctx)
	large := envInt(b, "STRAIT_BENCH_TABLES", 20_000)
	rows := envInt(b, "STRAIT_BENCH_SPREAD_ROWS", 40_000)
	var base *tablesResult
	for _, n := range []int{100, large} {
		b.Run(fmt.Sprintf("tables=%d", n), func(b *testing.B) {
			r := measureTables(b, ctx, bin, n, rows)
			if n == 100 {
				base = r
			}
			r.report(b, base)
		})
	}
}

// envInt is the whole number in the environment variable name, or def.
func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a whole number, at least 1", name, v)
	}
	return n
}

// tablesResult is what one run of measureTables measured.
type tablesResult struct {
	tables, rows               int
	setup, start, snap, snapBQ time.Duration
	catchUp, steady            time.Duration
	// steadyCPU is the CPU time of the producer, the consumer and the
	// benchmark's process (kfake, the registry, the local BigQuery) over
	// the steady pass: which of them bounds it.
	steadyCPU                [3]time.Duration
	checkpointBytes          int
	producerMiB, consumerMiB float64
	connections              int
}

func (r *tablesResult) rowsPerSec() float64 { return float64(r.rows) / r.catchUp.Seconds() }

func (r *tablesResult) steadyPerSec() float64 { return float64(r.rows) / r.steady.Seconds() }

// report gives r as benchmark metrics, with the ratio against base (the
// 100-table run; nil when it did not run).
func (r *tablesResult) report(b *testing.B, base *tablesResult) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r.start.Seconds(), "start-s")
	b.ReportMetric(r.snap.Seconds(), "snapshot-s")
	b.ReportMetric(r.snapBQ.Seconds(), "snapshot-bq-s")
	b.ReportMetric(r.rowsPerSec(), "rows/s")
	b.ReportMetric(r.steadyPerSec(), "steady-rows/s")
	if base != nil {
		b.ReportMetric(r.rowsPerSec()/base.rowsPerSec(), "ratio")
		b.ReportMetric(r.steadyPerSec()/base.steadyPerSec(), "steady-ratio")
	}
	b.ReportMetric(float64(r.checkpointBytes), "checkpoint-bytes")
	b.ReportMetric(r.producerMiB, "producer-MiB")
	b.ReportMetric(r.consumerMiB, "consumer-MiB")
	b.ReportMetric(float64(r.connections), "bq-connections")
	for i, name := range []string{"producer", "consumer", "fakes"} {
		b.ReportMetric(float64(r.steadyCPU[i].Microseconds())/float64(r.rows), "steady-"+name+"-cpu-µs/row")
	}
	b.Logf("%d tables (created in %s): producer ready in %s, snapshot published in %s and in BigQuery in %s; "+
		"%d rows spread over every table caught up in %s (%.0f rows/s), with the producer warm in %s (%.0f rows/s); largest checkpoint %d bytes; "+
		"peak RSS producer %.0f MiB, consumer %.0f MiB; %d BigQuery connections at most",
		r.tables, r.setup.Round(time.Millisecond), r.start.Round(time.Millisecond), r.snap.Round(time.Millisecond), r.snapBQ.Round(time.Millisecond),
		r.rows, r.catchUp.Round(time.Millisecond), r.rowsPerSec(), r.steady.Round(time.Millisecond), r.steadyPerSec(), r.checkpointBytes, r.producerMiB, r.consumerMiB, r.connections)
}

// tablesRows is the rows each table holds before the snapshot.
const tablesRows = 3

func measureTables(b *testing.B, ctx context.Context, bin string, tables, rows int) *tablesResult {
	o := &options{dir: b.TempDir(), bin: bin, brokers: 1, dataset: "strait_demo", manyTables: true}
	st, err := startStack(ctx, o, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	defer func() {
		for _, name := range []string{"producer", "consumer"} {
			log, _ := os.ReadFile(filepath.Join(o.dir, name+".log"))
			if b.Failed() {
				b.Logf("%s log:\n%s", name, tailLines(string(log), 40))
			}
			if keep := os.Getenv("STRAIT_BENCH_KEEP"); keep != "" {
				os.WriteFile(filepath.Join(keep, fmt.Sprintf("%s-%d.log", name, tables)), log, 0o644)
			}
		}
	}()
	r := &tablesResult{tables: tables, rows: rows}

	// The tables, two connections each creating and filling half.
	t0 := time.Now()
	if err := st.db.Exec(ctx, "", "CREATE DATABASE shop"); err != nil {
		b.Fatal(err)
	}
	if err := inHalves(tables, func(from, to int) error {
		var stmts []string
		for i := from; i < to; i++ {
			stmts = append(stmts, fmt.Sprintf("CREATE TABLE t%05d (id BIGINT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40) NOT NULL)", i),
				fmt.Sprintf("INSERT INTO t%05d VALUES (1, 0, 'one'), (2, 0, 'two'), (3, 0, 'three')", i))
		}
		return st.db.Exec(ctx, "shop", stmts...)
	}); err != nil {
		b.Fatal(err)
	}
	r.setup = time.Since(t0)

	// BigQuery's acknowledgements, counted.
	var acked atomic.Int64
	st.bq.OnAppend(func(a bqfake.Applied) { acked.Add(int64(len(a.Rows))) })
	if err := st.writeConfigs(); err != nil {
		b.Fatal(err)
	}
	paddr, caddr := freeAddr(), freeAddr()
	st.metrics["producer"], st.metrics["consumer"] = "http://"+paddr+"/metrics", "http://"+caddr+"/metrics"
	keep := os.Getenv("STRAIT_BENCH_KEEP")
	var profiles []string // the binaries' flags: -pprof when profiles are kept
	if keep != "" {
		profiles = []string{"-pprof"}
	}
	consumer, err := st.spawn("consumer", append([]string{"-http_addr", caddr}, profiles...)...)
	if err != nil {
		b.Fatal(err)
	}
	if err := waitReady(ctx, caddr, filepath.Join(o.dir, "consumer.log"), consumer.exited); err != nil {
		b.Fatalf("consumer: %v", err)
	}

	// Start and snapshot.
	started := time.Now()
	producer, err := st.spawn("producer", append([]string{"-http_addr", paddr}, profiles...)...)
	if err != nil {
		b.Fatal(err)
	}
	if err := waitReady(ctx, paddr, filepath.Join(o.dir, "producer.log"), producer.exited); err != nil {
		b.Fatalf("producer: %v", err)
	}
	r.start = time.Since(started)
	snapshotRows := float64(tables * tablesRows)
	// The producer's metrics are read once its log says the snapshot is
	// done: a /metrics page has three series a table, and reading it
	// every 100 ms while 20,000 tables are snapshotted kept the producer
	// busy with it (about 0.2 s a read).
	done := logSays(filepath.Join(o.dir, "producer.log"), "snapshot done: every captured table is backfilled")
	if err := waitFor(ctx, 30*time.Minute, producer.exited, func() bool {
		return done() && sum(st.metrics["producer"], "strait_producer_snapshot_rows_total") >= snapshotRows &&
			sum(st.metrics["producer"], "strait_producer_snapshot_tables_remaining") == 0
	}); err != nil {
		b.Fatalf("snapshot of %d tables: %v", tables, err)
	}
	r.snap = time.Since(started)
	if err := waitFor(ctx, 30*time.Minute, consumer.exited, func() bool { return acked.Load() >= int64(snapshotRows) }); err != nil {
		b.Fatalf("snapshot rows in BigQuery: %d of %.0f: %v", acked.Load(), snapshotRows, err)
	}
	r.snapBQ = time.Since(started)
	keepProfiles(b, keep, tables, "snapshot", map[string]string{"producer": paddr, "consumer": caddr}, "heap")
	producerMiB := peakMiB(producer)

	// The spread workload, written while the producer is stopped.
	producer.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-producer.exited:
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	}
	before := acked.Load()
	if err := spread(ctx, st, tables, rows); err != nil {
		b.Fatal(err)
	}
	restarted := time.Now()
	if producer, err = st.spawn("producer", append([]string{"-http_addr", paddr}, profiles...)...); err != nil {
		b.Fatal(err)
	}
	halfway := false
	if err := waitFor(ctx, 30*time.Minute, producer.exited, func() bool {
		if n := acked.Load() - before; !halfway && n >= int64(rows/2) {
			halfway = true
			keepProfiles(b, keep, tables, "catchup", map[string]string{"producer": paddr, "consumer": caddr}, "heap")
		}
		return acked.Load() >= before+int64(rows)
	}); err != nil {
		b.Fatalf("spread rows in BigQuery: %d of %d: %v", acked.Load()-before, rows, err)
	}
	r.catchUp = time.Since(restarted)

	// The same workload again, written while the producer is paused
	// (SIGSTOP, between two transactions: it is idle): it resumes with
	// every table's topic and schemas known, where the catch-up above
	// includes each table's first change after a start.
	before = acked.Load()
	if err := producer.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.Fatal(err)
	}
	err = spread(ctx, st, tables, rows)
	producer.cmd.Process.Signal(syscall.SIGCONT)
	if err != nil {
		b.Fatal(err)
	}
	resumed := time.Now()
	cpuProfiles := keepProfilesAsync(b, keep, tables, "steady", map[string]string{"producer": paddr, "consumer": caddr},
		fmt.Sprintf("profile?seconds=%d", envInt(b, "STRAIT_BENCH_CPU_SECONDS", 5)))
	cpu0 := [3]time.Duration{cpuTime(producer.cmd.Process.Pid), cpuTime(consumer.cmd.Process.Pid), cpuTime(os.Getpid())}
	if err := waitFor(ctx, 30*time.Minute, producer.exited, func() bool { return acked.Load() >= before+int64(rows) }); err != nil {
		b.Fatalf("spread rows after the pause in BigQuery: %d of %d: %v", acked.Load()-before, rows, err)
	}
	r.steady = time.Since(resumed)
	cpuProfiles()
	keepProfiles(b, keep, tables, "steady", map[string]string{"producer": paddr, "consumer": caddr}, "heap")
	for i, pid := range []int{producer.cmd.Process.Pid, consumer.cmd.Process.Pid, os.Getpid()} {
		r.steadyCPU[i] = cpuTime(pid) - cpu0[i]
	}
	r.producerMiB = max(producerMiB, peakMiB(producer))
	r.consumerMiB = peakMiB(consumer)
	r.connections = st.bq.PeakConnections()
	if r.checkpointBytes, err = largestRecord(ctx, st.kafka.ListenAddrs(), "demo._checkpoint"); err != nil {
		b.Fatal(err)
	}
	return r
}

// keepProfiles saves, when keep names a directory, the profile (a path
// under /debug/pprof/) of each binary at its address as
// <binary>-<tables>-<stage>-<profile>.pprof.
func keepProfiles(b *testing.B, keep string, tables int, stage string, addrs map[string]string, profile string) {
	keepProfilesAsync(b, keep, tables, stage, addrs, profile)()
}

// keepProfilesAsync is keepProfiles taking the profiles meanwhile: the
// returned function waits for them.
func keepProfilesAsync(b *testing.B, keep string, tables int, stage string, addrs map[string]string, profile string) (wait func()) {
	var wg sync.WaitGroup
	if keep == "" {
		return wg.Wait
	}
	for name, addr := range addrs {
		wg.Go(func() {
			resp, err := http.Get("http://" + addr + "/debug/pprof/" + profile)
			if err != nil {
				b.Logf("%s profile %s: %v", name, profile, err)
				return
			}
			defer resp.Body.Close()
			kind, _, _ := strings.Cut(profile, "?")
			f, err := os.Create(filepath.Join(keep, fmt.Sprintf("%s-%d-%s-%s.pprof", name, tables, stage, kind)))
			if err != nil {
				b.Error(err)
				return
			}
			defer f.Close()
			if _, err := io.Copy(f, resp.Body); err != nil {
				b.Logf("%s profile %s: %v", name, profile, err)
			}
		})
	}
	return wg.Wait
}

// spread writes rows one-row transactions round-robin over the tables, two
// connections each writing half.
func spread(ctx context.Context, st *stack, tables, rows int) error {
	return inHalves(rows, func(from, to int) error {
		var stmts []string
		for i := from; i < to; i++ {
			stmts = append(stmts, fmt.Sprintf("UPDATE t%05d SET n = n + 1 WHERE id = %d", i%tables, 1+i/tables%tablesRows))
		}
		return st.db.Exec(ctx, "shop", stmts...)
	})
}

// inHalves runs fn over [0, n) in two halves at once.
func inHalves(n int, fn func(from, to int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range [][2]int{{0, n / 2}, {n / 2, n}} {
		wg.Go(func() { errs[i] = fn(r[0], r[1]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logSays returns whether the log at path has said what yet; each call
// reads only what was appended since the one before.
func logSays(path, what string) func() bool {
	var (
		read  int64
		tail  []byte // the end of what was read, a line cut in two included
		found bool
	)
	return func() bool {
		if found {
			return true
		}
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		b, _ := io.ReadAll(io.NewSectionReader(f, read, math.MaxInt64-read))
		read += int64(len(b))
		tail = append(tail, b...)
		found = bytes.Contains(tail, []byte(what))
		tail = tail[max(0, len(tail)-len(what)):]
		return found
	}
}

// waitFor polls cond until it holds, the wait or ctx ends, or exited (a
// process that stopped) is closed.
func waitFor(ctx context.Context, wait time.Duration, exited <-chan struct{}, cond func() bool) error {
	deadline := time.Now().Add(wait)
	for !cond() {
		select {
		case <-exited:
			return fmt.Errorf("the process stopped")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling a condition with a deadline
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s", wait)
		}
	}
	return nil
}

// cpuTime is the CPU time (user and system) a running process has used,
// from /proc/<pid>/stat (in clock ticks, 100 a second on Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state is the 3rd field of the whole line, utime the 14th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// peakMiB is the peak resident memory (VmHWM) of a running process.
func peakMiB(p *process) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// largestRecord is the size of the largest record value in partition 0 of
// topic.
func largestRecord(ctx context.Context, brokers []string, topic string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	end, _ := ends.Lookup(topic, 0)
	largest := 0
	for seen := int64(-1); seen < end.Offset-1; {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			return 0, err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			largest, seen = max(largest, len(r.Value)), max(seen, r.Offset)
		})
	}
	return largest, nil
}
