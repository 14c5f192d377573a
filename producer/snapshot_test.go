package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-cdc/strait/pkg/pipeline"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// snapshotRows is the size of the largest table of
// TestSnapshotUnderLoadMatchesSelect: make test runs it at the default
// under the race detector, then at 1,000,000 rows without it.
var snapshotRows = flag.Int("snapshot_rows", 5000, "rows of the largest table TestSnapshotUnderLoadMatchesSelect snapshots")

// The initial snapshot under load: tables that already hold rows are
// backfilled (op r) in primary-key chunks while writers insert, update and
// delete across the whole key range until the snapshot is done, and the
// producer is killed (SIGKILL) several times mid-snapshot and restarted
// from its checkpoint. Replayed per partition, the topics reproduce every
// table exactly as SELECT shows it at the end: every row the stream did
// not change arrives as a snapshot row once, every changed row from the
// binlog, each key's history chained (a snapshot row equals the state
// before it, an update's before image equals the state), nothing twice.
func TestSnapshotUnderLoadMatchesSelect(t *testing.T) {
	big := *snapshotRows
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute+time.Duration(big)*time.Millisecond/2)
	defer cancel()
	const tables, writers, kills = 4, 2, 4
	keys := big + big/5             // writers insert past the end too
	sizes := []int{big, 1, 0, 1200} // rows already in t0..t3 (t1: one row, t2: empty)
	stmts := []string{"DROP DATABASE IF EXISTS snap", "CREATE DATABASE snap", fmt.Sprintf("SET SESSION max_recursive_iterations = %d", big+1)}
	for i, n := range sizes {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE snap.t%d (id INT PRIMARY KEY, ver INT NOT NULL,
			s VARCHAR(40) CHARACTER SET utf8mb4, amount DECIMAL(12,3), at DATETIME(6), n BIGINT)`, i))
		if n > 0 {
			stmts = append(stmts, fmt.Sprintf(`INSERT INTO snap.t%d
				WITH RECURSIVE seq(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM seq WHERE k < %d)
				SELECT k, 0, CONCAT('pre ', k, ' ✓'), k / 8, '2023-12-31 23:59:59.999999', k * 1000003 FROM seq`, i, n-1))
		}
	}
	if err := env.db.Exec(ctx, "", stmts...); err != nil {
		t.Fatal(err)
	}
	// No start position: a first start, which snapshots the tables. Small
	// chunks, so that a small table makes many.
	chunk := max(250, big/250)
	prefix := uniquePrefix("snapload")
	args := withoutStart(producerArgs(t, ctx, prefix, "snap.*", "-source.snapshot_chunk_rows", fmt.Sprint(chunk),
		"-kafka.transaction_max_records", fmt.Sprint(chunk*2+100), "-kafka.partitions", "2"))
	var topics []string
	for i := range tables {
		topics = append(topics, fmt.Sprintf("%s.snap.t%d", prefix, i))
	}
	committed := func() int64 {
		ends, err := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs())).ListCommittedOffsets(ctx, topics...)
		if err != nil {
			return 0
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}

	// Writers run, across the whole key range, until the snapshot is done.
	var wg sync.WaitGroup
	snapshotted := make(chan struct{})
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				if err := write(ctx, "snap", uint64(100+w+writers*round), w, writers, tables, 50, keys); err != nil {
					errs <- err
					return
				}
				select {
				case <-snapshotted:
					if round >= 8 {
						return
					}
				default:
				}
			}
		}()
	}
	// Each kill comes after an eighth of the largest table is published.
	step := int64(max(500, big/8))
	for k := range kills {
		before := committed()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "STRAIT_TEST_RUN_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, fmt.Sprintf("commits of producer %d", k+1), func() bool { return committed() > before+step })
		cmd.Process.Kill()
		cmd.Wait()
	}
	p := startProducer(t, args)
	addr := p.httpAddr(t, ctx)
	snapshotDone := func() bool {
		var st pipeline.Status
		return getJSON(addr+"/status", &st) == nil && st.Checkpoint != nil && st.Snapshot == nil
	}
	waitFor(t, ctx, "the snapshot done", snapshotDone)
	close(snapshotted)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The producer has published the writers' last transaction.
	end, err := env.db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	endFile, endPos := *end[0][0], uint64(atoi(*end[0][1]))
	waitFor(t, ctx, "the checkpoint at the source's end", func() bool {
		var st pipeline.Status
		return getJSON(addr+"/status", &st) == nil && st.Checkpoint != nil &&
			(st.Checkpoint.File > endFile || st.Checkpoint.File == endFile && st.Checkpoint.Pos >= endPos)
	})
	ends, err := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs())).ListCommittedOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}

	want := selectTables(t, ctx, "snap", tables)
	r := newReplayer(t, ctx, topics)
	r.preexisting = true
	r.replayTo(ends)
	if diff := stateDiff(r.state, want); diff != "" {
		t.Fatalf("topics do not match SELECT after %d kills:\n%s", kills, diff)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range ends {
		for _, o := range n {
			total += int(o.Offset)
		}
	}
	reads := 0
	for _, keys := range r.snapshotted {
		reads += len(keys)
	}
	if reads < (big+1+1200)/2 {
		t.Errorf("%d snapshot rows, want most of the %d rows there were", reads, big+1+1200)
	}
	t.Logf("%d changes (%d snapshot rows, %d offsets with markers) replayed exactly once after %d kills mid-snapshot of %d rows",
		r.changes, reads, total, kills, big+1+1200)
}

// getText returns the body of a GET of addr.
func getText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stateDiff lists the first differences between replayed and selected
// tables ("" when equal); cmp.Diff takes minutes on a million rows.
func stateDiff(got, want map[string]map[int32][]string) string {
	var out []string
	note := func(format string, args ...any) {
		if len(out) < 20 {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	for table, rows := range want {
		for k, w := range rows {
			if g, ok := got[table][k]; !ok {
				note("%s key %d: missing from the topics, SELECT has %v", table, k, w)
			} else if !slices.Equal(g, w) {
				note("%s key %d: topics %v, SELECT %v", table, k, g, w)
			}
		}
		for k, g := range got[table] {
			if _, ok := rows[k]; !ok {
				note("%s key %d: in the topics as %v, not in SELECT", table, k, g)
			}
		}
	}
	return strings.Join(out, "\n")
}

// getJSON decodes the JSON answer of GET http://addr into v.
func getJSON(addr string, v any) error {
	resp, err := http.Get("http://" + addr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", addr, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// The snapshot on a read-only replica, as a capture user without write
// rights: composite, binary (UUID), DATETIME and non-ASCII VARCHAR keys, an
// empty table, a one-row table, a table without a key, and a table dropped
// while it is read. Writes keep running on the source with one-second lock
// timeouts: the snapshot holds no lock that blocks them. Every table's
// topic ends as SELECT shows it.
func TestSnapshotReadOnlyKeysAndLocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{ServerID: 31, Args: []string{"--read-only=1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	seq := func(n int) string {
		return fmt.Sprintf("WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < %d) ", n)
	}
	if err := db.Exec(ctx, "", "CREATE DATABASE ro", "SET SESSION max_recursive_iterations = 100000",
		"CREATE USER capture@'%'", "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO capture@'%'",
		"CREATE TABLE ro.comp (a INT, b VARCHAR(20), v INT, PRIMARY KEY (a, b))",
		"INSERT INTO ro.comp "+seq(300)+"SELECT k % 7, CONCAT('b', k), k FROM seq",
		"CREATE TABLE ro.uuid (id BINARY(16) PRIMARY KEY, v INT)",
		"INSERT INTO ro.uuid "+seq(200)+"SELECT UNHEX(MD5(k)), k FROM seq",
		"CREATE TABLE ro.dt (at DATETIME(6) PRIMARY KEY, v INT)",
		"INSERT INTO ro.dt "+seq(150)+"SELECT TIMESTAMPADD(MICROSECOND, k * 1234567, '1999-12-31 23:59:59'), k FROM seq",
		"CREATE TABLE ro.vc (name VARCHAR(30) CHARACTER SET utf8mb4 PRIMARY KEY, v INT)",
		"INSERT INTO ro.vc "+seq(100)+"SELECT CONCAT(ELT(1 + k % 4, 'Ärger', 'zebra', 'ñu', '🐬'), k), k FROM seq",
		"CREATE TABLE ro.empty (id INT PRIMARY KEY)",
		"CREATE TABLE ro.one (id INT PRIMARY KEY, v INT)", "INSERT INTO ro.one VALUES (1, 1)",
		"CREATE TABLE ro.nokey (v INT, w VARCHAR(10))",
		"INSERT INTO ro.nokey "+seq(50)+"SELECT k, 'x' FROM seq",
		"CREATE TABLE ro.gone (id INT PRIMARY KEY, v INT, pad VARCHAR(200))",
		"INSERT INTO ro.gone "+seq(5000)+"SELECT k, k, REPEAT('p', 200) FROM seq",
	); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("snapro")
	// The first records of ro.gone are held at the broker until the table
	// is dropped: the producer, committing every chunk, waits there with
	// the rest of the table unread.
	adm := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs()))
	created, err := adm.CreateTopic(ctx, 1, 1, nil, prefix+".ro.gone")
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	seen, release := make(chan struct{}), make(chan struct{})
	env.kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if held.Load() {
			env.kafka.DropControl()
			return nil, nil, false
		}
		env.kafka.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if (tp.Topic == created.Topic || tp.TopicID == created.ID) && held.CompareAndSwap(false, true) {
				close(seen)
				env.kafka.SleepControl(func() { <-release })
			}
		}
		return nil, nil, false
	})
	args := withoutStart(producerArgs(t, ctx, prefix, "ro.*", "-source.host", db.Host, "-source.port", fmt.Sprint(db.Port),
		"-source.user", "capture", "-source.server_id", "3101", "-source.snapshot_chunk_rows", "40", "-kafka.partitions", "1",
		"-kafka.transaction_max_records", "40"))
	addr := startProducer(t, args).httpAddr(t, ctx)

	// Writers with one-second lock timeouts, while the snapshot runs.
	writes := make(chan error, 1)
	go func() {
		c, err := db.Conn(ctx, "ro")
		if err != nil {
			writes <- err
			return
		}
		defer c.Close()
		for _, s := range []string{"SET SESSION innodb_lock_wait_timeout = 1", "SET SESSION lock_wait_timeout = 1"} {
			if _, err := c.Execute(s); err != nil {
				writes <- err
				return
			}
		}
		for i := range 200 {
			for _, s := range []string{
				fmt.Sprintf("UPDATE comp SET v = v + 1000 WHERE a = %d AND b = 'b%d'", (i*13)%7, (i*13)%300+1),
				fmt.Sprintf("UPDATE vc SET v = v + 1000 WHERE v = %d", i%100+1),
				fmt.Sprintf("DELETE FROM uuid WHERE id = UNHEX(MD5(%d))", i+1),
				fmt.Sprintf("INSERT INTO dt VALUES (TIMESTAMPADD(SECOND, %d, '2030-01-01'), %d)", i, 10000+i),
			} {
				if _, err := c.Execute(s); err != nil {
					writes <- fmt.Errorf("a write blocked or failed while the snapshot ran: %s: %w", s, err)
					return
				}
			}
		}
		writes <- nil
	}()
	// The table dropped mid-snapshot.
	select {
	case <-seen:
	case <-ctx.Done():
		t.Fatal("no records of ro.gone before the deadline")
	}
	// Held there, /status shows the snapshot's committed progress: the
	// tables before gone are done, gone is next.
	var st pipeline.Status
	waitFor(t, ctx, "/status with the snapshot's progress", func() bool {
		st = pipeline.Status{}
		return getJSON(addr+"/status", &st) == nil && st.Snapshot != nil && st.Snapshot.Table == "ro.gone"
	})
	if diff := cmp.Diff(st.Snapshot.Remaining, []string{"ro.nokey", "ro.one", "ro.uuid", "ro.vc"}); diff != "" || st.Checkpoint == nil || st.Checkpoint.File == "" {
		t.Errorf("/status mid-snapshot: %+v, remaining tables (-got +want):\n%s", st, diff)
	}
	err = db.Exec(ctx, "ro", "DROP TABLE gone")
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-writes; err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the snapshot to finish", func() bool {
		var st pipeline.Status
		return getJSON(addr+"/status", &st) == nil && st.Checkpoint != nil && st.Snapshot == nil
	})

	// Each table's topic, replayed (last change per key wins), is SELECT.
	keyed := map[string]string{
		"comp": "SELECT CONCAT(a, '|', b), v FROM comp",
		"uuid": "SELECT HEX(id), v FROM uuid",
		"dt":   "SELECT DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), v FROM dt",
		"vc":   "SELECT name, v FROM vc",
		"one":  "SELECT id, v FROM one",
	}
	keyOf := func(table string, k map[string]any) string {
		switch table {
		case "comp":
			return fmt.Sprintf("%v|%v", k["a"], k["b"])
		case "uuid":
			return strings.ToUpper(hex.EncodeToString(k["id"].([]byte)))
		case "dt":
			return time.UnixMicro(k["at"].(int64)).UTC().Format("2006-01-02 15:04:05.000000")
		case "vc":
			return k["name"].(string)
		}
		return fmt.Sprint(k["id"])
	}
	for table, q := range keyed {
		rows, err := db.Query(ctx, "ro", q)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, r := range rows {
			want[*r[0]] = *r[1]
		}
		waitFor(t, ctx, table+" replayed equal to SELECT", func() bool {
			got := map[string]string{}
			for _, c := range readToEnd(t, ctx, prefix+".ro."+table) {
				if c.Value == nil {
					continue
				}
				if after := plain(row(c.Value, "after")); after != nil {
					got[keyOf(table, c.Key)] = fmt.Sprint(after["v"])
				} else {
					delete(got, keyOf(table, c.Key))
				}
			}
			if !cmp.Equal(got, want) {
				t.Logf("%s (-topic +select):\n%s", table, cmp.Diff(got, want))
				return false
			}
			return true
		})
	}
	if n := len(readToEnd(t, ctx, prefix+".ro.nokey")); n != 50 {
		t.Errorf("nokey: %d records, want its 50 rows", n)
	}
	if n := len(readToEnd(t, ctx, prefix+".ro.gone")); n == 0 || n >= 5000 {
		t.Errorf("gone: %d snapshot rows, want some and not all of 5000 (dropped while read)", n)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(prefix + ".ro.empty") {
		t.Errorf("empty: a topic with records for an empty table")
	}
}

// Snapshots on demand: `producer snapshot` asks the running producer for a
// filtered snapshot of one table, which arrives as op r records of exactly
// the matching rows, once — also after a restart, which takes the request
// again from its checkpoint's offset and so not at all. A table added to
// source.include is snapshotted on the restart by itself; a table that was
// captured all along is not.
func TestSnapshotOnDemandAndNewlyIncluded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seq := func(n int) string {
		return fmt.Sprintf("WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < %d) ", n)
	}
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS sod", "CREATE DATABASE sod", "SET SESSION max_recursive_iterations = 100000",
		"CREATE TABLE sod.a (id INT PRIMARY KEY, v INT)", "INSERT INTO sod.a "+seq(300)+"SELECT k, k FROM seq",
		"CREATE TABLE sod.b (id INT PRIMARY KEY, v INT)", "INSERT INTO sod.b "+seq(200)+"SELECT k, k FROM seq",
		"CREATE TABLE sod.c (id INT PRIMARY KEY, v INT)", "INSERT INTO sod.c "+seq(50)+"SELECT k, k FROM seq",
	); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("sod")
	// A configured start position: no initial snapshot.
	args := producerArgs(t, ctx, prefix, "sod.a,sod.b", "-source.snapshot_chunk_rows", "30", "-source.heartbeat_period", "1s")
	p := startProducer(t, args)
	if err := env.db.Exec(ctx, "sod", "INSERT INTO a VALUES (1000, 1)"); err != nil {
		t.Fatal(err)
	}
	published(t, ctx, p, prefix+".sod.a", 1)

	snapshot := func(extra ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"snapshot", "-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","),
			"-kafka.topic_prefix", prefix, "-kafka.schema_registry_url", env.registry.URL(), "-source.include", "sod.a,sod.b"}, extra...),
			func(string) string { return "" }, &out, io.Discard)
		return out.String(), err
	}
	if _, err := snapshot("-tables", "sod.zzz"); err == nil {
		t.Error("a snapshot of a table outside source.include was requested")
	}
	out, err := snapshot("-tables", "sod.a", "-where", "id <= 100")
	if err != nil || !strings.Contains(out, "requested") {
		t.Fatalf("producer snapshot: %q, %v", out, err)
	}
	reads := func(table string) map[string]int {
		got := map[string]int{}
		for _, c := range readToEnd(t, ctx, prefix+".sod."+table) {
			if c.Value != nil && c.Value["op"] == "r" {
				got[fmt.Sprint(c.Key["id"])]++
			}
		}
		return got
	}
	want := func(lo, hi int) map[string]int {
		m := map[string]int{}
		for i := lo; i <= hi; i++ {
			m[fmt.Sprint(i)] = 1
		}
		return m
	}
	waitFor(t, ctx, "the filtered snapshot of sod.a", func() bool { return len(reads("a")) >= 100 })
	if diff := cmp.Diff(reads("a"), want(1, 100)); diff != "" {
		t.Errorf("sod.a snapshot rows by id, each once (-got +want):\n%s", diff)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}

	// Restart from the checkpoint with sod.c added.
	again := withoutStart(producerArgs(t, ctx, prefix, "sod.a,sod.b,sod.c", "-source.snapshot_chunk_rows", "30"))
	p = startProducer(t, again)
	waitFor(t, ctx, "the snapshot of the newly included sod.c", func() bool { return len(reads("c")) >= 50 })
	if err := env.db.Exec(ctx, "sod", "INSERT INTO a VALUES (1001, 1)"); err != nil {
		t.Fatal(err)
	}
	published(t, ctx, p, prefix+".sod.a", 1+100+1)
	if diff := cmp.Diff(reads("c"), want(1, 50)); diff != "" {
		t.Errorf("sod.c snapshot rows by id, each once (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(reads("a"), want(1, 100)); diff != "" {
		t.Errorf("sod.a after the restart: the request was taken again (-got +want):\n%s", diff)
	}
	if n := len(reads("b")); n != 0 {
		t.Errorf("sod.b, captured all along, got %d snapshot rows", n)
	}
}

// A table without a primary key, snapshotted by the unique key
// source.snapshot_keys names (given in another order than its index's): in
// chunks, matched against the stream like a primary key, while a writer
// inserts, updates and deletes rows and the producer is killed once
// mid-snapshot. Replayed in sequence order, the topic ends as SELECT shows
// the table, each row snapshotted at most once. A key that is not a unique
// index of NOT NULL columns stops the producer with an error naming it.
func TestSnapshotKeylessTableByConfiguredUniqueKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS uk", "CREATE DATABASE uk", "SET SESSION max_recursive_iterations = 100000",
		`CREATE TABLE uk.events (host VARCHAR(20) NOT NULL, seq INT NOT NULL, payload VARCHAR(40), UNIQUE KEY hs (host, seq))`,
		`INSERT INTO uk.events WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < 19999)
			SELECT ELT(1 + k % 3, 'alpha', 'beta', 'gamma'), k DIV 3, CONCAT('p', k) FROM s`,
		"CREATE TABLE uk.loose (a INT NOT NULL, b INT)",
		"CREATE TABLE uk.nulls (a INT, UNIQUE KEY (a))",
	); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("snapuk")
	topic := prefix + ".uk.events"
	args := withoutStart(producerArgs(t, ctx, prefix, "uk.events", "-source.snapshot_chunk_rows", "50",
		"-source.snapshot_keys", "uk.events:seq+host", "-kafka.transaction_max_records", "100"))

	stop := make(chan struct{})
	type writes struct {
		touched map[string]bool
		err     error
	}
	written := make(chan writes, 1)
	go func() {
		touched, err := writeKeyless(ctx, stop)
		written <- writes{touched, err}
	}()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "STRAIT_TEST_RUN_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "some of the snapshot committed", func() bool { return len(readToEnd(t, ctx, topic)) > 2000 })
	cmd.Process.Kill()
	cmd.Wait()
	p := startProducer(t, args)
	addr := p.httpAddr(t, ctx)
	waitFor(t, ctx, "the snapshot done", func() bool {
		var st pipeline.Status
		return getJSON(addr+"/status", &st) == nil && st.Checkpoint != nil && st.Snapshot == nil
	})
	close(stop)
	w := <-written
	if w.err != nil {
		t.Fatal(w.err)
	}
	metrics := getText(t, addr+"/metrics")
	for _, m := range []string{"strait_producer_snapshot_table_rows_remaining 0", `strait_producer_snapshot_rows_total{table="uk.events"}`,
		"strait_producer_snapshot_tables_remaining 0", "strait_producer_snapshot_chunk_seconds_count"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("no %s in /metrics after the snapshot:\n%s", m, metrics)
		}
	}

	rows, err := env.db.Query(ctx, "uk", "SELECT host, seq, COALESCE(payload, 'NULL') FROM events")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range rows {
		want[*r[0]+"/"+*r[1]] = *r[2]
	}
	var state map[string]string
	reads := map[string]int{}
	waitFor(t, ctx, "the topic replayed in sequence order equals SELECT", func() bool {
		state, reads = foldKeyless(readToEnd(t, ctx, topic))
		return cmp.Equal(state, want)
	})
	twice := 0
	for k, n := range reads {
		if n > 1 {
			t.Errorf("row %s snapshotted %d times", k, n)
			twice++
		}
	}
	// A row the workload changed may reach the topic as that change
	// instead (how many depends on timing); every other row is read by
	// the snapshot, once.
	untouched := 0
	for k := range state {
		if !w.touched[k] {
			untouched++
			if reads[k] != 1 {
				t.Errorf("row %s, never changed by the workload, snapshotted %d times, want once", k, reads[k])
			}
		}
	}
	if !strings.Contains(p.logs.String(), "resuming_after_key=true") {
		t.Errorf("the restarted producer did not resume the snapshot after a key:\n%s", p.logs.String())
	}
	t.Logf("%d rows: %d snapshotted, each once, across a kill mid-snapshot (%d never changed by the workload, %d keys changed)", len(state), len(reads), untouched, len(w.touched))
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ table, key, want string }{
		{"uk.loose", "uk.loose:a", "(a) is not a unique index of uk.loose"},
		{"uk.nulls", "uk.nulls:a", "column a of uk.nulls may be NULL"},
		{"uk.loose", "uk.loose:zz", "table uk.loose has no column zz"},
	} {
		p := startProducer(t, withoutStart(producerArgs(t, ctx, uniquePrefix("snapukbad"), c.table, "-source.snapshot_keys", c.key)))
		if err := p.wait(t, ctx); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "source.snapshot_keys") {
			t.Errorf("snapshot key %s: producer ended with %v, want an error saying %q", c.key, err, c.want)
		}
	}
}

// writeKeyless updates, deletes and inserts rows of uk.events, keys only
// inserted or deleted, until stop closes; touched is every "host/seq" it
// wrote to.
func writeKeyless(ctx context.Context, stop <-chan struct{}) (touched map[string]bool, err error) {
	c, err := env.db.Conn(ctx, "uk")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rnd := rand.New(rand.NewPCG(5, 11))
	hosts := []string{"alpha", "beta", "gamma"}
	touched = map[string]bool{}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return touched, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		host, seq := hosts[rnd.IntN(3)], rnd.IntN(7000)
		touched[fmt.Sprintf("%s/%d", host, seq)] = true
		var q string
		switch rnd.IntN(4) {
		case 0:
			q = fmt.Sprintf("INSERT IGNORE INTO events VALUES ('%s', %d, 'new %d')", host, seq, i)
		case 1:
			q = fmt.Sprintf("DELETE FROM events WHERE host = '%s' AND seq = %d", host, seq)
		default:
			q = fmt.Sprintf("UPDATE events SET payload = 'upd %d' WHERE host = '%s' AND seq = %d", i, host, seq)
		}
		if _, err := c.Execute(q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
}

// foldKeyless replays the changes of uk.events in sequence order (a table
// without a key has no Kafka key: its records spread over the partitions)
// into payload by "host/seq", and counts the snapshot reads of each row.
func foldKeyless(changes []change) (map[string]string, map[string]int) {
	slices.SortFunc(changes, func(a, b change) int {
		return strings.Compare(sequenceOf(a), sequenceOf(b))
	})
	state, reads := map[string]string{}, map[string]int{}
	id := func(img map[string]any) string { return fmt.Sprintf("%v/%v", unwrap(img["host"]), unwrap(img["seq"])) }
	for _, c := range changes {
		if c.Value == nil {
			continue
		}
		if before := row(c.Value, "before"); before != nil {
			delete(state, id(before))
		}
		if after := row(c.Value, "after"); after != nil {
			p := unwrap(after["payload"])
			if p == nil {
				p = "NULL"
			}
			state[id(after)] = fmt.Sprint(p)
			if c.Value["op"] == "r" {
				reads[id(after)]++
			}
		}
	}
	return state, reads
}

// sequenceOf returns a change's source.sequence.
func sequenceOf(c change) string {
	if c.Value == nil {
		return ""
	}
	return fmt.Sprint(unwrap(unwrap(c.Value["source"]).(map[string]any)["sequence"]))
}
