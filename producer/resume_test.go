package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/service"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// readToEnd returns every committed record of topic, reading each
// partition up to its last stable offset (a read_committed reader's end).
func readToEnd(t *testing.T, ctx context.Context, topic string) []change {
	t.Helper()
	adm := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs()))
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codecs := map[int]codec{}
	var out []change
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: partitions %v not read to their end before the deadline", topic, want)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				c := change{Topic: r.Topic, Partition: r.Partition, Value: decodeFramed(t, ctx, codecs, r.Value)}
				if len(r.Key) > 0 && r.Key[0] == 0 { // an Avro key (internal topics have plain ones)
					c.Key = decodeFramed(t, ctx, codecs, r.Key)
				}
				out = append(out, c)
			}
			if end, ok := want[r.Partition]; ok && r.Offset >= end-1 {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// insertRange inserts rows lo..hi-1, one transaction each.
func insertRange(t *testing.T, ctx context.Context, lo, hi int) {
	t.Helper()
	var stmts []string
	for i := lo; i < hi; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, 'row %d')", i, i))
	}
	if err := env.db.Exec(ctx, "resume", stmts...); err != nil {
		t.Fatal(err)
	}
}

// withoutStart returns args without -source.start_position, so that the
// producer starts from its checkpoint.
func withoutStart(args []string) []string {
	at := indexOf(args, "-source.start_position")
	return append(args[:at:at], args[at+2:]...)
}

// waitEachOnce waits until topic holds n committed changes, then checks
// their keys' ids are exactly lo..lo+n-1, each once.
func waitEachOnce(t *testing.T, ctx context.Context, topic string, lo, n int) {
	t.Helper()
	var got []string
	waitFor(t, ctx, fmt.Sprintf("%d changes in %s", n, topic), func() bool {
		got = got[:0]
		for _, c := range readToEnd(t, ctx, topic) {
			got = append(got, fmt.Sprint(c.Key["id"]))
		}
		return len(got) >= n
	})
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint(lo + i)
	}
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("%s: changes, each once (-got +want):\n%s", topic, diff)
	}
}

// Stopped cleanly, killed with SIGKILL mid-stream, restarted each time
// without a start position: the producer resumes from its checkpoint, and a
// read_committed reader sees every change exactly once.
func TestResumesFromCheckpointExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE resume", "CREATE TABLE resume.t (id INT PRIMARY KEY, v VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	first := producerArgs(t, ctx, "r1", "resume.*")
	// Later runs have no start position: they must find the checkpoint.
	again := withoutStart(first)

	// 1. A clean stop after rows 0..99.
	p := startProducer(t, first)
	insertRange(t, ctx, 0, 100)
	consume(t, ctx, 100, "r1.resume.t")
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}

	// 2. Rows 100..199 while nothing runs; then a producer killed with
	// SIGKILL while rows 200..1199 stream in.
	insertRange(t, ctx, 100, 200)
	base := committedOffsets(t, ctx)
	cmd := exec.Command(os.Args[0], again...)
	cmd.Env = append(os.Environ(), "STRAIT_TEST_RUN_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		insertRange(t, ctx, 200, 1200)
		close(done)
	}()
	// Kill it once it has committed part of the stream.
	waitFor(t, ctx, "commits of the producer to kill", func() bool { return committedOffsets(t, ctx) > base+100 })
	cmd.Process.Kill()
	cmd.Wait()
	<-done

	// 3. A third producer picks up after the last commit of the killed one.
	p = startProducer(t, again)
	insertRange(t, ctx, 1200, 1300)
	waitEachOnce(t, ctx, "r1.resume.t", 0, 1300)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

// committedOffsets sums the last stable offsets of r1.resume.t's
// partitions: it grows with every commit.
func committedOffsets(t *testing.T, ctx context.Context) int64 {
	adm := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs()))
	ends, err := adm.ListCommittedOffsets(ctx, "r1.resume.t")
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// A second producer of the same source fences the first: the first stops
// with ErrFenced, and a read_committed reader sees each change once.
func TestSecondProducerFencesFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE fence", "CREATE TABLE fence.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	args := producerArgs(t, ctx, "f1", "fence.*")
	insert := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if err := env.db.Exec(ctx, "fence", fmt.Sprintf("INSERT INTO t VALUES (%d)", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := startProducer(t, args)
	insert(0, 50)
	consume(t, ctx, 50, "f1.fence.t")
	// Another server_id: the source would cut the first off too (same
	// server_id, TestSameServerIDNamed); this is about Kafka's fencing.
	second := startProducer(t, append(withoutStart(args), "-source.server_id", "4343"))
	// The second has taken over once its own first commit is visible.
	insert(50, 100)
	err := first.wait(t, ctx)
	if !errors.Is(err, kafka.ErrFenced) || service.ExitCode(err) == 0 {
		t.Errorf("first producer ended with %v, want kafka.ErrFenced and a non-zero exit", err)
	}
	waitEachOnce(t, ctx, "f1.fence.t", 0, 100)
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
}

// While the captured tables are idle, heartbeats still carry the position
// the producer has read to and the source time, and the checkpoint follows.
func TestHeartbeatsCarryPositionWhenIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE hb", "CREATE TABLE hb.idle (id INT PRIMARY KEY)",
		"CREATE DATABASE hb_other", "CREATE TABLE hb_other.busy (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	startProducer(t, producerArgs(t, ctx, "h1", "hb.*", "-kafka.heartbeat_interval", "50ms"))
	if err := env.db.Exec(ctx, "hb_other", "INSERT INTO busy VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	st, err := env.db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	file, pos := *st[0][0], atoi(*st[0][1])
	// A heartbeat at or past the position of the last (uncaptured) write.
	codecs := map[int]codec{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.ConsumeTopics("h1._heartbeat"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var last map[string]any
	for last == nil || last["file"] != file || int(last["pos"].(int64)) < pos {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no heartbeat at %s:%d before the deadline; last %v", file, pos, last)
		}
		fetches.EachRecord(func(r *kgo.Record) { last = decodeFramed(t, ctx, codecs, r.Value) })
	}
	if last["source"] != "h1" || unwrap(last["gtid_set"]) == nil || last["source_ts_ms"].(int64) == 0 {
		t.Errorf("heartbeat = %v, want source h1, a GTID set and the source time", last)
	}
	// The heartbeat is committed with a checkpoint at the same position.
	var cp map[string]any
	for _, c := range readToEnd(t, ctx, "h1._checkpoint") {
		cp = c.Value
	}
	if cp == nil || cp["file"] != file || int(cp["pos"].(int64)) < pos {
		t.Errorf("checkpoint = %v, want one at or past %s:%d", cp, file, pos)
	}
}

// A source transaction larger than source.chunk_rows is published in parts
// over several Kafka transactions; when the producer stops after some of
// them committed, the next one resumes inside the source transaction at
// the first row not yet committed.
func TestLargeTransactionResumesInside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const rows = 5000
	if err := env.db.Exec(ctx, "", "CREATE DATABASE big", "CREATE TABLE big.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE big.seq (n INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	// The broker refuses to commit the producer's 6th Kafka transaction:
	// the producer stops with 5 committed, in the middle of the source one.
	var commits atomic.Int32
	env.kafka.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		env.kafka.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		if r.TransactionalID != "strait-k1" || !r.Commit || commits.Add(1) <= 5 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.InvalidTxnState.Code
		return resp, nil, true
	})
	args := producerArgs(t, ctx, "k1", "big.t", "-source.chunk_rows", "100", "-kafka.transaction_max_records", "300")
	p := startProducer(t, args)
	if err := env.db.Exec(ctx, "big",
		"INSERT INTO seq SELECT seq FROM seq_1_to_5000",      // MariaDB's sequence engine
		"INSERT INTO t SELECT n, CONCAT('row ', n) FROM seq", // one source transaction
	); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, ctx); err == nil || !strings.Contains(err.Error(), "INVALID_TXN_STATE") {
		t.Fatalf("producer ended with %v, want the refused commit", err)
	}
	commits.Store(-1 << 30) // commits are accepted from now on

	var cp map[string]any
	for _, c := range readToEnd(t, ctx, "k1._checkpoint") {
		cp = c.Value
	}
	if cp == nil || cp["rows_done"].(int64) == 0 || cp["rows_done"].(int64) >= rows {
		t.Fatalf("last checkpoint %v, want one inside the source transaction", cp)
	}
	t.Logf("stopped inside the transaction after %d of its %d rows", cp["rows_done"], rows)

	p = startProducer(t, withoutStart(args))
	waitEachOnce(t, ctx, "k1.big.t", 1, rows)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

// Twenty times: a workload runs (transactions of several statements across
// tables, and a large one published in parts) while a producer process
// streams it, and is killed with SIGKILL once it has committed some of it;
// the next one resumes from the checkpoint. At the end, the topics replayed
// by a read_committed reader give each key's changes exactly once and in
// order (the replayer checks every update's before image and version
// against the previous change), and reproduce every table as SELECT shows.
func TestKilledTwentyTimesExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const tables, kills = 3, 20
	stmts := []string{"CREATE DATABASE crash"}
	for i := range tables {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE crash.t%d (id INT PRIMARY KEY, ver INT NOT NULL,
			s VARCHAR(40) CHARACTER SET utf8mb4, amount DECIMAL(12,3), at DATETIME(6), n BIGINT)`, i))
	}
	if err := env.db.Exec(ctx, "", stmts...); err != nil {
		t.Fatal(err)
	}
	args := producerArgs(t, ctx, "x1", "crash.*", "-source.chunk_rows", "50", "-kafka.transaction_max_records", "100")
	again := withoutStart(args)
	var topics []string
	for i := range tables {
		topics = append(topics, fmt.Sprintf("x1.crash.t%d", i))
	}
	committed := func() int64 {
		adm := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs()))
		ends, err := adm.ListCommittedOffsets(ctx, topics...)
		if err != nil {
			return 0
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}

	for k := range kills {
		run := again
		if k == 0 {
			run = args
		}
		before := committed()
		cmd := exec.Command(os.Args[0], run...)
		cmd.Env = append(os.Environ(), "STRAIT_TEST_RUN_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// 2 writers × 30 transactions, and every third round a large
		// transaction (a multi-row UPDATE of many keys, in parts).
		if err := write(ctx, "crash", uint64(k), k%2, 2, tables, 30, 24); err != nil {
			t.Fatal(err)
		}
		if k%3 == 0 {
			if err := env.db.Exec(ctx, "crash", "UPDATE t0 SET ver = ver + 1, n = n + 1"); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, ctx, fmt.Sprintf("commits of producer %d", k+1), func() bool { return committed() > before })
		cmd.Process.Kill()
		cmd.Wait()
	}
	p := startProducer(t, again)
	want := selectTables(t, ctx, "crash", tables)
	r := newReplayer(t, ctx, topics)
	for !cmp.Equal(r.state, want) {
		if !r.poll() {
			t.Fatalf("topics never matched SELECT after %d kills (-topics +select):\n%s", kills, cmp.Diff(r.state, want))
		}
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	// Nothing after the matching state: no change came twice.
	total := 0
	for _, topic := range topics {
		for _, c := range readToEnd(t, ctx, topic) {
			if c.Value != nil {
				total++
			}
		}
	}
	if total != r.changes {
		t.Errorf("%d changes in the topics, %d replayed to reach the source state: duplicates", total, r.changes)
	}
	t.Logf("%d changes replayed exactly once after %d kills", r.changes, kills)
}

// When the binlog the checkpoint points into is purged, the producer stops
// with an error naming the position and the fix, never skipping ahead.
func TestPurgedBinlogStopsWithClearError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := env.db
	if err := db.Exec(ctx, "", "CREATE DATABASE purged", "CREATE TABLE purged.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	args := producerArgs(t, ctx, "pg1", "purged.*")
	p := startProducer(t, args)
	if err := db.Exec(ctx, "purged", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	consume(t, ctx, 1, "pg1.purged.t")
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	// A change the next producer must not skip, in a binlog then purged.
	if err := db.Exec(ctx, "purged", "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	purgeBinlogs(t, ctx)
	p = startProducer(t, withoutStart(args))
	err := p.wait(t, ctx)
	if err == nil || !strings.Contains(err.Error(), "no longer has the binlog") || !strings.Contains(err.Error(), "re-snapshot") {
		t.Fatalf("producer ended with %v, want the purged binlog named with the fix", err)
	}
}

// purgeBinlogs starts a new binlog file and purges every older one.
func purgeBinlogs(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := env.db.Exec(ctx, "", "FLUSH BINARY LOGS"); err != nil {
		t.Fatal(err)
	}
	st, err := env.db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	// The server purges a binlog once its transactions are durable in
	// InnoDB (its binlog checkpoint): retry until it is gone.
	waitFor(t, ctx, "the old binlogs purged", func() bool {
		if err := env.db.Exec(ctx, "", "PURGE BINARY LOGS TO '"+*st[0][0]+"'"); err != nil {
			t.Fatal(err)
		}
		logs, err := env.db.Query(ctx, "", "SHOW BINARY LOGS")
		return err == nil && len(logs) == 1
	})
}

// With source.snapshot=when_needed, a checkpoint whose binlog was purged
// is not an error: the producer streams from the current position with a
// higher sequence epoch and snapshots every captured table again, so each
// row that exists ends in its current state, ordered after everything
// published before. (A row deleted while the binlog was lost stays
// downstream: nothing on the source records it — README, "Snapshots".)
func TestPurgedBinlogResnapshotsWhenNeeded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := env.db
	if err := db.Exec(ctx, "", "CREATE DATABASE needed", "CREATE TABLE needed.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO needed.t VALUES (1, 'one'), (2, 'two'), (3, 'three')"); err != nil {
		t.Fatal(err)
	}
	args := withoutStart(producerArgs(t, ctx, "wn1", "needed.*", "-source.snapshot", "when_needed"))
	p := startProducer(t, args)
	consume(t, ctx, 3, "wn1.needed.t") // the snapshot: the producer streams
	if err := db.Exec(ctx, "needed", "INSERT INTO t VALUES (4, 'four')", "UPDATE t SET v = 'one+' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	consume(t, ctx, 5, "wn1.needed.t") // 3 snapshot rows, the insert, the update
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	// Changes in a binlog that is then purged.
	if err := db.Exec(ctx, "needed", "INSERT INTO t VALUES (5, 'five')", "UPDATE t SET v = 'two+' WHERE id = 2",
		"DELETE FROM t WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	purgeBinlogs(t, ctx)
	p = startProducer(t, args)
	if err := db.Exec(ctx, "needed", "INSERT INTO t VALUES (6, 'six')"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"1": "one+", "2": "two+", "3": "three", "4": "four", "5": "five", "6": "six"}
	var state map[string]string
	var changes []change
	waitFor(t, ctx, "the topic's latest row per key equals the table (and the lost delete)", func() bool {
		changes = readToEnd(t, ctx, "wn1.needed.t")
		state = map[string]string{}
		for _, c := range changes {
			if c.Value == nil {
				continue
			}
			id := fmt.Sprint(c.Key["id"])
			if after := row(c.Value, "after"); after != nil {
				state[id] = fmt.Sprint(unwrap(after["v"]))
			} else {
				delete(state, id)
			}
		}
		return cmp.Equal(state, want)
	})
	// Every row that exists was read again after the restart, in sequence
	// epoch 1: above every change published before (epoch 0).
	var before, after []string
	for _, c := range changes {
		if c.Value == nil {
			continue
		}
		seq := fmt.Sprint(unwrap(unwrap(c.Value["source"]).(map[string]any)["sequence"]))
		op := fmt.Sprintf("%v %v", c.Value["op"], c.Key["id"])
		switch {
		case strings.HasPrefix(seq, "0000000000000000/"):
			before = append(before, op)
		case strings.HasPrefix(seq, "0000000000000001/"):
			after = append(after, op)
		default:
			t.Errorf("%s: sequence %s, want epoch 0 or 1", op, seq)
		}
	}
	slices.Sort(before)
	slices.Sort(after)
	if diff := cmp.Diff([]string{"c 4", "r 1", "r 2", "r 3", "u 1"}, before); diff != "" {
		t.Errorf("changes before the purge (-want +got):\n%s", diff)
	}
	// Row 6 may come from the stream or the snapshot, as the chunk's read
	// and the insert interleave.
	if diff := cmp.Diff([]string{"c 6", "r 1", "r 2", "r 4", "r 5"}, after); diff != "" &&
		!cmp.Equal(after, []string{"r 1", "r 2", "r 4", "r 5", "r 6"}) {
		t.Errorf("changes after the purge (-want +got):\n%s", diff)
	}
	// Every captured table, or the tables that changed (needed.t did): which
	// depends on how long the server has been up (pkg/pipeline/lost.go).
	if !strings.Contains(p.logs.String(), "the binlog to resume from is gone") {
		t.Errorf("no warning that the binlog was lost in the log:\n%s", p.logs.String())
	}
}

// Transient broker faults — produce answered NOT_ENOUGH_REPLICAS, the
// transaction coordinator loading or moving — are retried: the producer
// keeps running and every change is committed exactly once.
func TestBrokerFaultsRecoverExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE faults", "CREATE TABLE faults.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	const txnID = "strait-bf1"
	var produces, ends atomic.Int32
	env.kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		env.kafka.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if pr.TransactionID == nil || *pr.TransactionID != txnID || produces.Add(1) > 4 {
			return nil, nil, false
		}
		return testenv.ProduceError(pr, kerr.NotEnoughReplicas.Code), nil, true
	})
	env.kafka.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		env.kafka.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		if r.TransactionalID != txnID || ends.Add(1) > 3 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = []int16{kerr.CoordinatorLoadInProgress.Code, kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code}[ends.Load()-1]
		return resp, nil, true
	})
	p := startProducer(t, producerArgs(t, ctx, "bf1", "faults.*"))
	for i := range 200 {
		if err := env.db.Exec(ctx, "faults", fmt.Sprintf("INSERT INTO t VALUES (%d)", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitEachOnce(t, ctx, "bf1.faults.t", 0, 200)
	if err := p.stop(); err != nil {
		t.Fatalf("producer: %v (transient faults must be retried)", err)
	}
	if produces.Load() < 4 || ends.Load() < 3 {
		t.Errorf("faults injected: %d produce, %d end-transaction; want 4 and 3", produces.Load(), ends.Load())
	}
}

// A commit the transaction coordinator keeps refusing (NOT_COORDINATOR past
// franz-go's retries, as while coordinators move) ends the run, not the
// producer: it restarts in-process from the last checkpoint, and every
// change is committed exactly once.
func TestRefusedCommitRestartsFromCheckpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE refused", "CREATE TABLE refused.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	const txnID = "strait-rc1"
	var refusing atomic.Bool
	var refused atomic.Int32
	refusing.Store(true)
	env.kafka.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		env.kafka.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		if r.TransactionalID != txnID || !r.Commit || !refusing.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil, true
	})
	p := startProducer(t, producerArgs(t, ctx, "rc1", "refused.*"))
	addr := p.httpAddr(t, ctx)
	for i := range 100 {
		if err := env.db.Exec(ctx, "refused", fmt.Sprintf("INSERT INTO t VALUES (%d)", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "a run restarted after the refused commit", func() bool {
		return strings.Contains(getText(t, addr+"/metrics"), "strait_producer_restarts_total 1")
	})
	refusing.Store(false)
	for i := 100; i < 200; i++ {
		if err := env.db.Exec(ctx, "refused", fmt.Sprintf("INSERT INTO t VALUES (%d)", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitEachOnce(t, ctx, "rc1.refused.t", 0, 200)
	if err := p.stop(); err != nil {
		t.Fatalf("producer: %v (a refused commit must restart the run)", err)
	}
	if !strings.Contains(p.logs.String(), "restarting from the last checkpoint") {
		t.Errorf("no restart in the log:\n%s", p.logs.String())
	}
	t.Logf("%d commits refused before the restart", refused.Load())
}
