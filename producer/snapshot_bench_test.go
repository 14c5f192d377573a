package main

import (
	"context"
	"flag"
	"fmt"
	"runtime/debug"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/pipeline"
)

// BenchmarkSnapshot compares the snapshot of a table (benchRows rows of the
// ten benchmark columns) into kfake with a bare SELECT scan of the same
// table in the same run: the target is half the scan's rows/s.
func BenchmarkSnapshot(b *testing.B) {
	k := startBenchKafka(b)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rows := benchRows()
	loadSource(b, ctx, rows)
	if err := env.db.Exec(ctx, "bench", "CREATE TABLE IF NOT EXISTS snap LIKE src", "INSERT IGNORE INTO snap SELECT * FROM src"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		base := measure(b, k.pid, func(half func()) (int, int) { return scanPass(b, ctx, rows, half), 1 })
		serverIDs += 2
		prefix := fmt.Sprintf("snapbench%d", serverIDs)
		snap := measure(b, k.pid, func(half func()) (int, int) {
			return snapshotPass(b, ctx, k, serverIDs, prefix, "bench.snap", rows, half), 1
		})
		if base.rows != rows || snap.rows != rows {
			b.Fatalf("rows: scan %d, snapshot %d; table has %d", base.rows, snap.rows, rows)
		}
		b.ReportMetric(base.rowsPerSec(), "scan-rows/s")
		b.ReportMetric(base.cpu.Seconds()*1e6/float64(base.rows), "scan-cpu-µs/row")
		b.ReportMetric(snap.rowsPerSec(), "rows/s")
		b.ReportMetric(snap.rowsPerSec()/base.rowsPerSec(), "ratio")
		b.ReportMetric(snap.cpu.Seconds()*1e6/float64(snap.rows), "cpu-µs/row")
		b.ReportMetric(float64(snap.mallocs)/float64(snap.rows), "allocs/row")
		b.ReportMetric(snap.server.Seconds()*1e6/float64(snap.rows), "server-cpu-µs/row")
		b.ReportMetric(base.server.Seconds()*1e6/float64(base.rows), "scan-server-cpu-µs/row")
		b.ReportMetric(snap.peakRSS, "peak-RSS-MiB")
		b.ReportMetric(chunkSeconds/snap.wall.Seconds(), "chunk-read-share")
	}
}

// scanPass reads the table with one streaming SELECT, touching every
// value: the fastest a client can read it.
func scanPass(b *testing.B, ctx context.Context, total int, half func()) int {
	b.Helper()
	conn, err := client.ConnectWithContext(ctx, env.db.Addr(), env.db.User, env.db.Password, "bench", 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var res mysql.Result
	n, bytes := 0, 0
	err = conn.ExecuteSelectStreaming("SELECT * FROM snap", &res, func(row []mysql.FieldValue) error {
		for i := range row {
			bytes += len(row[i].AsString())
		}
		if n++; n == total/2 {
			half()
		}
		return nil
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// snapshotPass snapshots the table through the producer's own loop
// (pipeline.Engine: reader and publisher on their goroutines, transactional
// commits) until a committed checkpoint says the snapshot is done.
func snapshotPass(b *testing.B, ctx context.Context, k benchKafka, serverID uint32, prefix, table string, total int, half func()) int {
	b.Helper()
	reader, writer, kcfg, reg := benchPipeline(b, ctx, table, k, serverID, prefix, true)
	if _, err := writer.ReadCheckpoint(ctx); err != nil { // takes over the transactional id
		b.Fatal(err)
	}
	reader.Snapshot(binlog.SnapshotState{Tables: []string{table}})
	if err := reader.Start(ctx, binlog.Start{}); err != nil {
		b.Fatal(err)
	}
	resume, err := reader.Resume(ctx)
	if err != nil {
		b.Fatal(err)
	}
	done, stop := context.WithCancel(ctx)
	defer stop()
	var halved bool
	engine := pipeline.Engine{Source: reader, Log: writer, Resume: resume, Config: engineConfig(kcfg, time.Minute), Committed: func(cp *pipeline.Checkpoint) {
		if !halved && len(cp.Snapshot.After) > 0 && cp.Snapshot.After[0].Int >= int64(total/2) {
			halved = true
			half()
		}
		if len(cp.Snapshot.Tables) == 0 {
			stop()
		}
	}}
	if err := engine.Run(done); err != nil {
		b.Fatal(err)
	}
	chunkSeconds = counted(b, reg, "strait_producer_snapshot_chunk_seconds")
	return int(counted(b, reg, "strait_producer_snapshot_rows_total"))
}

// chunkSeconds is the time the last snapshotPass spent reading chunks.
var chunkSeconds float64

// counted sums the series of a counter (or the sums of a histogram) in reg.
func counted(b *testing.B, reg *prometheus.Registry, name string) float64 {
	b.Helper()
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue() + m.GetHistogram().GetSampleSum()
			}
		}
	}
	return n
}

// keylessMiB is the size of BenchmarkSnapshotKeylessMemory's table.
var keylessMiB = flag.Int("keyless_mib", 1024, "MiB of rows in BenchmarkSnapshotKeylessMemory's table without a key")

// BenchmarkSnapshotKeylessMemory snapshots a table without a key of
// -keyless_mib MiB (1 GiB: rows of 100 KB) under a Go memory limit of 256
// MiB, as the producer runs in a container: before source.snapshot_chunk_bytes
// such a table was read whole into one chunk. Reports the producer's peak
// RSS and its rows/s against a bare streaming SELECT of the same table in
// the same run.
func BenchmarkSnapshotKeylessMemory(b *testing.B) {
	k := startBenchKafka(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rows := *keylessMiB * 10 // of 100 KiB... 102,400 bytes each
	if err := env.db.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS bench", "DROP TABLE IF EXISTS bench.nokey",
		"CREATE TABLE bench.nokey (n INT, body MEDIUMBLOB)", fmt.Sprintf("SET SESSION max_recursive_iterations = %d", rows+1)); err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < rows; lo += 1000 { // a transaction of about 100 MiB at a time
		if err := env.db.Exec(ctx, "bench", fmt.Sprintf("INSERT INTO nokey WITH RECURSIVE s(k) AS (SELECT %d UNION ALL SELECT k + 1 FROM s WHERE k < %d) SELECT k, REPEAT(CHAR(65 + k %% 26), 102400) FROM s",
			lo, min(rows, lo+1000)-1)); err != nil {
			b.Fatal(err)
		}
	}
	limit := debug.SetMemoryLimit(256 << 20)
	defer debug.SetMemoryLimit(limit)
	b.ResetTimer()
	for range b.N {
		base := measure(b, k.pid, func(func()) (int, int) { return scanTable(b, ctx, "nokey"), 1 })
		serverIDs += 2
		snap := measure(b, k.pid, func(half func()) (int, int) {
			return snapshotPass(b, ctx, k, serverIDs, fmt.Sprintf("keyless%d", serverIDs), "bench.nokey", rows, half), 1
		})
		if base.rows != rows || snap.rows != rows {
			b.Fatalf("rows: scan %d, snapshot %d; table has %d", base.rows, snap.rows, rows)
		}
		b.ReportMetric(float64(rows)*102400/(1<<20), "table-MiB")
		b.ReportMetric(snap.peakRSS, "peak-RSS-MiB")
		b.ReportMetric(base.peakRSS, "scan-peak-RSS-MiB")
		b.ReportMetric(snap.rowsPerSec(), "rows/s")
		b.ReportMetric(snap.rowsPerSec()/base.rowsPerSec(), "ratio")
	}
}

// scanTable reads bench.<table> with one streaming SELECT and counts its
// rows, keeping none.
func scanTable(b *testing.B, ctx context.Context, table string) int {
	b.Helper()
	conn, err := client.ConnectWithContext(ctx, env.db.Addr(), env.db.User, env.db.Password, "bench", 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	n := 0
	var res mysql.Result
	if err := conn.ExecuteSelectStreaming("SELECT * FROM "+table, &res, func([]mysql.FieldValue) error { n++; return nil }, nil); err != nil {
		b.Fatal(err)
	}
	return n
}
