package main

// The producer benchmark behind README's "Performance" section (`make bench`).
// Each case loads its workload into the shared MariaDB once, then times, over
// the same binlog range of the same server:
//
//   - the baseline: a bare go-mysql BinlogSyncer loop that only parses;
//   - the producer's real path, `producer run`'s engine: binlog.Reader →
//     pipeline.Engine → kafka.Writer → kfake (with srfake as the registry),
//     Kafka transactions as configured by default, until the checkpoint of
//     the range's end is committed;
//   - the serial path: the same reader and writer, one transaction after
//     the other on one goroutine, without Kafka transactions.
//
// kfake and srfake run in a child process (this test binary, see init):
// kfake with BlackholeProduce, which speaks the real protocol and
// acknowledges every batch, so that neither their CPU, allocations and
// memory nor their storage are counted as the producer's.
//
// Both passes are timed from the workload's second round on: the first
// change of every table (one row per table in the spread workloads) is read
// untimed, since it pays the table's one-time setup (topic, schema
// registration); that setup is reported on its own, per table.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/pipeline"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// benchKafkaEnv set in the environment makes this test binary a kfake
// broker for the benchmark instead of running tests.
const benchKafkaEnv = "STRAIT_BENCH_KFAKE"

func init() {
	if os.Getenv(benchKafkaEnv) == "" {
		return
	}
	// The child: serve until the parent closes stdin, print the brokers and
	// the registry's URL first.
	c, err := testenv.StartKafka(kfake.BlackholeProduce())
	if err != nil {
		fmt.Fprintln(os.Stderr, "start kfake:", err)
		os.Exit(1)
	}
	reg := testenv.StartBenchRegistry()
	testenv.ServeChild(strings.Join(c.ListenAddrs(), ",") + " " + reg.URL())
	reg.Close()
	c.Close()
	os.Exit(0)
}

// benchKafka is the child process serving kfake and srfake.
type benchKafka struct {
	brokers  []string
	registry string // the registry's URL
	pid      int
	tune     func(*kafka.Config) // settings of the case, over the defaults; nil: none
}

// startBenchKafka starts the child process of kfake and srfake.
func startBenchKafka(b *testing.B) benchKafka {
	b.Helper()
	c, err := testenv.StartChild(benchKafkaEnv + "=1")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Stop)
	n := len(c.Addrs) - 1
	return benchKafka{brokers: c.Addrs[:n], registry: c.Addrs[n], pid: c.Pid}
}

// benchRows is the number of rows of the single-table workloads:
// STRAIT_BENCH_ROWS, else 100,000 with -short, else 1,000,000.
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("STRAIT_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// workload is a loaded binlog range [start, end) and what it holds.
type workload struct {
	include string // source.include pattern of its tables
	tables  int    // how many tables the rows are spread over
	start   binlog.Start
	end     mysql.Position
	rows    int
	txs     int
}

// benchColumns are the ten columns of every benchmark table, about 200
// bytes a row in the binlog.
const benchColumns = `(
	id BIGINT NOT NULL PRIMARY KEY,
	account_id INT NOT NULL,
	amount DECIMAL(12,2) NOT NULL,
	quantity INT NOT NULL,
	status VARCHAR(16) NOT NULL,
	email VARCHAR(64) NOT NULL,
	note VARCHAR(255) NULL,
	created_at DATETIME(6) NOT NULL,
	updated_at TIMESTAMP(6) NOT NULL DEFAULT '2000-01-01 00:00:00',
	score DOUBLE NOT NULL
) ENGINE=InnoDB`

// benchValues is the SELECT list of row i (an SQL expression in i).
const benchValues = `i, i % 100000, (i % 10000000) / 100, i % 50,
	ELT(1 + i % 4, 'new', 'paid', 'shipped', 'returned'),
	CONCAT('customer', i, '@example.com'),
	CONCAT(MD5(i), ' ', MD5(i + 1), ' gift wrap'),
	TIMESTAMP('2024-01-01') + INTERVAL i SECOND + INTERVAL i % 1000000 MICROSECOND,
	FROM_UNIXTIME(1700000000 + i, '%Y-%m-%d %H:%i:%s.%f'),
	i / 7`

// serverIDs numbers the benchmark's replica connections.
var serverIDs uint32 = 7000

var workloads struct {
	sync.Mutex
	done map[string]*workload
}

// loadWorkload fills the named workload once per process and returns it.
// The rows are copied from bench.src (not captured, filled first) so that
// the statements in the binlog are short, like an application's INSERTs.
func loadWorkload(b *testing.B, name string) *workload {
	b.Helper()
	workloads.Lock()
	defer workloads.Unlock()
	if w := workloads.done[name]; w != nil {
		return w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rows := benchRows()
	loadSource(b, ctx, rows)
	w := &workload{include: "bench." + name, tables: 1, rows: rows, txs: rows}
	var proc string // a procedure filling [first, last)
	switch name {
	case "single":
		// One row per transaction: autocommit commits each INSERT of the
		// procedure on its own.
		proc = `WHILE i < last DO
				INSERT INTO single SELECT * FROM src WHERE id = i;
				SET i = i + 1;
			END WHILE;`
	case "batch":
		// 40 rows per statement, one statement per transaction.
		w.txs = (rows + 39) / 40
		proc = `WHILE i < last DO
				INSERT INTO batch SELECT * FROM src WHERE id >= i AND id < LEAST(i + 40, last);
				SET i = i + 40;
			END WHILE;`
	case "t", "u":
		// 1,000 tables t0… or 10,000 tables u0…, one row per transaction,
		// rows spread round-robin.
		w.tables = 1000
		if name == "u" {
			w.tables = 10_000
		}
		w.include, w.rows, w.txs = "bench."+name+"[0-9]*", rows/5, rows/5
	case "large":
		// Every row in one source transaction: memory must stay bounded
		// (source.chunk_rows), whatever its size.
		w.txs = 1
		proc = `INSERT INTO large SELECT * FROM src WHERE id >= first AND id < last;`
	default:
		b.Fatalf("unknown workload %q", name)
	}
	var stmts []string
	if w.tables > 1 {
		for t := range w.tables {
			stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s%d %s", name, t, benchColumns))
		}
	} else {
		stmts = []string{"CREATE PROCEDURE fill_" + name + "(first BIGINT, last BIGINT) BEGIN DECLARE i BIGINT DEFAULT first; " + proc + " END",
			"CREATE TABLE " + name + " " + benchColumns}
	}
	if err := env.db.Exec(ctx, "bench", stmts...); err != nil {
		b.Fatal(err)
	}
	start := masterStatus(b, ctx)
	w.start = binlog.Start{File: start.Name, Pos: uint64(start.Pos)}
	t0 := time.Now()
	// Two connections, each filling half (a multiple of 40 rows).
	half := w.rows / 80 * 40
	var wg sync.WaitGroup
	errs := make([]error, 2)
	calls := [][]string{{fmt.Sprintf("CALL fill_%s(0, %d)", name, half)}, {fmt.Sprintf("CALL fill_%s(%d, %d)", name, half, w.rows)}}
	switch {
	case name == "large":
		calls = [][]string{{fmt.Sprintf("CALL fill_large(0, %d)", w.rows)}}
	case w.tables > 1:
		// Statements from here rather than a procedure: one choosing among
		// 10,000 tables would be a CASE of 10,000 branches.
		calls = [][]string{nil, nil}
		for i := range w.rows {
			q := fmt.Sprintf("INSERT INTO %s%d SELECT * FROM src WHERE id = %d", name, i%w.tables, i)
			calls[min(i/half, 1)] = append(calls[min(i/half, 1)], q)
		}
	}
	for i, q := range calls {
		wg.Go(func() { errs[i] = env.db.Exec(ctx, "bench", q...) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	w.end = masterStatus(b, ctx)
	b.Logf("workload %s: %d rows in %d transactions loaded in %s, binlog %s:%d → %s:%d",
		name, w.rows, w.txs, time.Since(t0).Round(time.Millisecond), w.start.File, w.start.Pos, w.end.Name, w.end.Pos)
	if workloads.done == nil {
		workloads.done = map[string]*workload{}
	}
	workloads.done[name] = w
	return w
}

// loadSource fills bench.src with rows 0..rows-1 (once: INSERT IGNORE).
func loadSource(b *testing.B, ctx context.Context, rows int) {
	b.Helper()
	forty := make([]string, 40)
	for n := range forty {
		forty[n] = fmt.Sprintf("(%d)", n)
	}
	if err := env.db.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS bench", "CREATE TABLE IF NOT EXISTS bench.src "+benchColumns,
		"CREATE TABLE IF NOT EXISTS bench.forty (n INT PRIMARY KEY)",
		"INSERT IGNORE INTO bench.forty VALUES "+strings.Join(forty, ","),
		// 40⁴ = 2,560,000 candidate rows, in one statement.
		"INSERT IGNORE INTO bench.src SELECT "+benchValues+` FROM (SELECT a.n + 40 * b.n + 1600 * c.n + 64000 * d.n AS i
			FROM bench.forty a, bench.forty b, bench.forty c, bench.forty d) r WHERE i < `+strconv.Itoa(rows),
	); err != nil {
		b.Fatal(err)
	}
}

func masterStatus(b *testing.B, ctx context.Context) mysql.Position {
	b.Helper()
	rows, err := env.db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		b.Fatal(err)
	}
	pos, _ := strconv.ParseUint(*rows[0][1], 10, 32)
	return mysql.Position{Name: *rows[0][0], Pos: uint32(pos)}
}

// reached reports whether file:pos is at or after end.
func reached(file string, pos uint64, end mysql.Position) bool {
	return file > end.Name || (file == end.Name && pos >= uint64(end.Pos))
}

// measurement is what one timed pass used.
type measurement struct {
	rows, txs   int // timed
	all, allTxs int // with the untimed first round
	wall        time.Duration
	cpu         time.Duration
	mallocs     uint64
	peakRSS     float64       // MiB
	halfRSS     float64       // MiB, peak when half the rows were read
	server      time.Duration // CPU of the MariaDB server
	kafka       time.Duration // CPU of the kfake and srfake process
	setup       time.Duration // the untimed first round: every table's first change
}

func (m measurement) rowsPerSec() float64 { return float64(m.rows) / m.wall.Seconds() }

// measure runs pass and records its wall time, CPU, allocations and peak
// RSS; pass calls half once it has read half of the rows.
func measure(b *testing.B, kafkaPid int, pass func(half func()) (rows, txs int)) measurement {
	return measureFrom(b, kafkaPid, func(start func(rows, txs int), half func()) (int, int) { return pass(half) })
}

// measureFrom is measure of a pass that calls start, with the rows and
// transactions read so far, once it has read its untimed first round: what
// it used until then is measured apart, as its setup.
func measureFrom(b *testing.B, kafkaPid int, pass func(start func(rows, txs int), half func()) (rows, txs int)) measurement {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	var m measurement
	serverPid := mariadbPid(b)
	var server, kafka, cpu time.Duration
	var mallocs uint64
	var t0 time.Time
	begin := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		server, kafka = processCPU(serverPid), processCPU(kafkaPid)
		mallocs, cpu, t0 = ms.Mallocs, cpuTime(), time.Now()
	}
	begin()
	first := t0
	var warmRows, warmTxs int
	start := func(rows, txs int) {
		m.setup, warmRows, warmTxs = time.Since(first), rows, txs
		begin()
	}
	rows, txs := pass(start, func() { m.halfRSS = peakRSS() })
	m.all, m.allTxs = rows, txs
	m.rows, m.txs = rows-warmRows, txs-warmTxs
	m.wall, m.cpu = time.Since(t0), cpuTime()-cpu
	m.server, m.kafka = processCPU(serverPid)-server, processCPU(kafkaPid)-kafka
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.mallocs = ms.Mallocs - mallocs
	m.peakRSS = peakRSS()
	return m
}

// counter counts a pass's rows and transactions as they are read, and tells
// measureFrom when the first round ends and half the rows are read.
type counter struct {
	w         *workload
	start     func(rows, txs int)
	half      func()
	rows, txs int
	round     firstRound
	ids       map[*cdc.Table]uint64
}

// read counts tx, just read.
func (c *counter) read(tx *binlog.Tx) {
	if c.rows < c.w.rows/2 && c.rows+len(tx.Events) >= c.w.rows/2 {
		c.half()
	}
	c.rows += len(tx.Events)
	if len(tx.Events) > 0 && !tx.Partial {
		c.txs++
	}
	if c.round.tables == 0 {
		c.round.tables, c.ids = c.w.tables, map[*cdc.Table]uint64{}
	}
	for i := range tx.Events {
		if c.round.done {
			break
		}
		t := tx.Events[i].Table
		if _, ok := c.ids[t]; !ok {
			c.ids[t] = uint64(len(c.ids))
		}
		if c.round.saw(c.ids[t]) {
			c.start(c.rows, c.txs)
		}
	}
}

// countingSource is the reader as the engine's Source, counting.
type countingSource struct {
	*binlog.Reader
	*counter
}

func (s countingSource) ReadTx(ctx context.Context, tx *binlog.Tx) error {
	err := s.Reader.ReadTx(ctx, tx)
	if err == nil {
		s.read(tx)
	}
	return err
}

// firstRound tells, row by row, when every one of a workload's tables has
// had a row: the end of the untimed first round.
type firstRound struct {
	tables int
	seen   map[uint64]bool
	done   bool
}

// saw notes a row of table id (any number naming the table) and reports
// whether that completes the round, once.
func (f *firstRound) saw(id uint64) bool {
	if f.done {
		return false
	}
	if f.seen == nil {
		f.seen = map[uint64]bool{}
	}
	f.seen[id] = true
	f.done = len(f.seen) == f.tables
	return f.done
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU returns the user and system CPU time of another process.
func processCPU(pid int) time.Duration { return testenv.ProcessCPU(strconv.Itoa(pid)) }

func mariadbPid(b *testing.B) int {
	s, err := os.ReadFile(filepath.Join(env.db.Dir, "mariadbd.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(s)))
	return pid
}

// resetPeakRSS resets the kernel's peak-RSS mark (VmHWM) of this process.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM in MiB.
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

// baselinePass reads w's binlog range with a bare BinlogSyncer that only
// parses (go-mysql's default decoding), counting rows.
func baselinePass(b *testing.B, ctx context.Context, w *workload, serverID uint32, start func(rows, txs int), half func()) (rows, txs int) {
	b.Helper()
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: serverID, Flavor: mysql.MariaDBFlavor, Host: env.db.Host, Port: uint16(env.db.Port),
		User: env.db.User, Password: env.db.Password, Logger: slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	stream, err := syncer.StartSync(mysql.Position{Name: w.start.File, Pos: uint32(w.start.Pos)})
	if err != nil {
		b.Fatal(err)
	}
	file := w.start.File
	round := firstRound{tables: w.tables}
	for {
		ev, err := stream.GetEvent(ctx)
		if err != nil {
			b.Fatal(err)
		}
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
			continue
		case *replication.RowsEvent:
			if rows < w.rows/2 && rows+len(e.Rows) >= w.rows/2 {
				half()
			}
			rows += len(e.Rows)
			if round.saw(e.TableID) {
				start(rows, txs)
			}
		case *replication.XIDEvent:
			txs++
		}
		if ev.Header.LogPos != 0 && reached(file, uint64(ev.Header.LogPos), w.end) {
			break
		}
	}
	return rows, txs
}

// benchPipeline opens a reader of tables include, and a writer to brokers
// under prefix, closed when the benchmark ends; reg holds their metrics.
func benchPipeline(b *testing.B, ctx context.Context, include string, k benchKafka, serverID uint32, prefix string, transactional bool) (*binlog.Reader, *kafka.Writer, *kafka.Config, *prometheus.Registry) {
	b.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	src := binlog.Config{Host: env.db.Host, Port: env.db.Port, User: env.db.User, Password: env.db.Password,
		ServerID: serverID, Include: []string{include}}
	src.Defaults()
	reader, err := binlog.Open(ctx, &src, log, binlog.NewMetrics(reg))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(reader.Close)
	kcfg := &kafka.Config{}
	kcfg.Defaults()
	kcfg.Brokers, kcfg.RegistryURL, kcfg.TopicPrefix = k.brokers, k.registry, prefix
	kcfg.Transactions = transactional
	if k.tune != nil {
		k.tune(kcfg)
	}
	writer, err := kafka.NewWriter(kcfg, version, log, kafka.NewMetrics(reg))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(writer.Close)
	return reader, writer, kcfg, reg
}

// producerPass streams w's binlog range through `producer run`'s engine
// (pipeline.Engine: the reader and the publisher on their goroutines,
// Kafka transactions committed with a checkpoint as configured by
// default) until the checkpoint of the range's end is committed.
// committing is set to the time Kafka commits were under way in the
// timed part (the engine publishes on meanwhile).
func producerPass(b *testing.B, ctx context.Context, w *workload, k benchKafka, serverID uint32, prefix string, start func(rows, txs int), half func(), committing *time.Duration) (rows, txs int) {
	b.Helper()
	reader, writer, kcfg, reg := benchPipeline(b, ctx, w.include, k, serverID, prefix, true)
	var before float64
	timed := start
	start = func(rows, txs int) {
		before = commitSeconds(b, reg)
		timed(rows, txs)
	}
	defer func() { *committing = time.Duration((commitSeconds(b, reg) - before) * float64(time.Second)) }()
	if _, err := writer.ReadCheckpoint(ctx); err != nil { // takes over the transactional id
		b.Fatal(err)
	}
	if err := reader.Start(ctx, w.start); err != nil {
		b.Fatal(err)
	}
	resume, err := reader.Resume(ctx)
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{w: w, start: start, half: half}
	done, stop := context.WithCancel(ctx)
	defer stop()
	engine := pipeline.Engine{Source: countingSource{reader, c}, Log: writer, Resume: resume, Config: engineConfig(kcfg, time.Minute),
		Committed: func(cp *pipeline.Checkpoint) {
			if reached(cp.File, cp.Pos, w.end) {
				stop()
				// What the producer holds once every table has been written
				// (STRAIT_BENCH_HEAPPROFILE): its reader and writer are still
				// open.
				if err := testenv.WriteHeapProfile(b.Name()); err != nil {
					b.Fatal(err)
				}
			}
		}}
	if err := engine.Run(done); err != nil {
		b.Fatal(err)
	}
	return c.rows, c.txs
}

// commitSeconds is the time spent in commits so far
// (strait_producer_commit_seconds).
func commitSeconds(b *testing.B, reg *prometheus.Registry) float64 {
	b.Helper()
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "strait_producer_commit_seconds" {
			return f.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	return 0
}

// serialPass reads w's binlog range and publishes each transaction in turn
// on one goroutine, without Kafka transactions, until every record is
// acknowledged: the reader's and the writer's own costs, without the
// engine's overlap of the two.
func serialPass(b *testing.B, ctx context.Context, w *workload, k benchKafka, serverID uint32, prefix string, start func(rows, txs int), half func()) (rows, txs int) {
	b.Helper()
	reader, writer, _, _ := benchPipeline(b, ctx, w.include, k, serverID, prefix, false)
	if err := reader.Start(ctx, w.start); err != nil {
		b.Fatal(err)
	}
	c := &counter{w: w, start: start, half: half}
	var tx binlog.Tx
	for {
		if err := reader.ReadTx(ctx, &tx); err != nil {
			b.Fatal(err)
		}
		c.read(&tx)
		if err := writer.Publish(ctx, tx.Events); err != nil {
			b.Fatal(err)
		}
		if reached(tx.File, tx.EndPos, w.end) {
			break
		}
	}
	if err := writer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return c.rows, c.txs
}

// BenchmarkProducer compares the producer with the bare parse baseline on
// one row per transaction, 40 rows per statement, one row per transaction
// spread over 1,000 and 10,000 tables (with the default settings and with
// those README's "Many tables" gives for thousands of tables), and one huge
// transaction.
func BenchmarkProducer(b *testing.B) {
	k := startBenchKafka(b)
	manyTables := func(c *kafka.Config) { c.ProducerLinger, c.Partitions = c.TransactionLinger, 1 }
	for _, c := range []struct {
		name, workload string
		tune           func(*kafka.Config)
	}{
		{"rows_per_tx=1", "single", nil},
		{"rows_per_stmt=40", "batch", nil},
		{"tables=1000", "t", nil},
		{"tables=1000/many_tables_settings", "t", manyTables},
		{"tables=10000", "u", nil},
		{"tables=10000/many_tables_settings", "u", manyTables},
		{"one_tx", "large", nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			k := k
			k.tune = c.tune
			w := loadWorkload(b, c.workload)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			b.ResetTimer()
			for range b.N {
				serverIDs += 3
				id := serverIDs
				prefix := fmt.Sprintf("bench%d", id)
				base := measureFrom(b, k.pid, func(start func(int, int), half func()) (int, int) {
					return baselinePass(b, ctx, w, id, start, half)
				})
				// The profile (STRAIT_BENCH_CPUPROFILE) covers the producer's
				// timed part only.
				stop := func() {}
				var committing time.Duration
				prod := measureFrom(b, k.pid, func(start func(int, int), half func()) (int, int) {
					timed := func(rows, txs int) {
						start(rows, txs)
						var err error
						if stop, err = testenv.StartCPUProfile(b.Name()); err != nil {
							b.Fatal(err)
						}
					}
					return producerPass(b, ctx, w, k, id+1, prefix, timed, half, &committing)
				})
				stop()
				serial := measureFrom(b, k.pid, func(start func(int, int), half func()) (int, int) {
					return serialPass(b, ctx, w, k, id+2, prefix+"serial", start, half)
				})
				b.ReportMetric(serial.rowsPerSec()/base.rowsPerSec(), "serial-ratio")
				b.ReportMetric(serial.cpu.Seconds()*1e6/float64(serial.rows), "serial-cpu-µs/row")
				if base.all != w.rows || prod.all != w.rows || prod.allTxs != w.txs {
					b.Fatalf("rows: baseline %d, producer %d in %d transactions; loaded %d in %d", base.all, prod.all, prod.allTxs, w.rows, w.txs)
				}
				b.ReportMetric(base.rowsPerSec(), "baseline-rows/s")
				b.ReportMetric(base.cpu.Seconds()*1e6/float64(base.rows), "baseline-cpu-µs/row")
				b.ReportMetric(float64(base.mallocs)/float64(base.rows), "baseline-allocs/row")
				b.ReportMetric(prod.rowsPerSec(), "rows/s")
				b.ReportMetric(prod.rowsPerSec()/base.rowsPerSec(), "ratio")
				b.ReportMetric(100*committing.Seconds()/prod.wall.Seconds(), "%committing")
				b.ReportMetric(prod.cpu.Seconds()*1e6/float64(prod.rows), "cpu-µs/row")
				b.ReportMetric(float64(prod.mallocs)/float64(prod.rows), "allocs/row")
				b.ReportMetric(base.server.Seconds()*1e6/float64(base.rows), "baseline-server-cpu-µs/row")
				b.ReportMetric(prod.server.Seconds()*1e6/float64(prod.rows), "server-cpu-µs/row")
				b.ReportMetric(prod.kafka.Seconds()*1e6/float64(prod.rows), "kfake-cpu-µs/row")
				b.ReportMetric(prod.halfRSS, "half-RSS-MiB")
				b.ReportMetric(prod.peakRSS, "peak-RSS-MiB")
				b.ReportMetric(float64(prod.setup.Microseconds())/1e3/float64(w.tables), "setup-ms/table")
			}
		})
	}
}
