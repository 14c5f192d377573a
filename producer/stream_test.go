package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Several writers change many tables at once — single and multi-row
// statements, multi-table transactions, updates and deletes of the same
// keys — and the topics, replayed per partition, reproduce every table
// exactly as SELECT shows it, with each key's changes in commit order.
func TestConcurrentWritersKeepPerKeyOrderAndMatchSelect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const tables, writers, txPerWriter = 5, 4, 60
	stmts := []string{"CREATE DATABASE busy"}
	for i := range tables {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE busy.t%d (id INT PRIMARY KEY, ver INT NOT NULL,
			s VARCHAR(40) CHARACTER SET utf8mb4, amount DECIMAL(12,3), at DATETIME(6), n BIGINT)`, i))
	}
	if err := env.db.Exec(ctx, "", stmts...); err != nil {
		t.Fatal(err)
	}
	startProducer(t, producerArgs(t, ctx, "c1", "busy.*"))

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- write(ctx, "busy", uint64(w), w, writers, tables, txPerWriter, 12*writers)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	want := selectTables(t, ctx, "busy", tables)

	var topics []string
	for i := range tables {
		topics = append(topics, fmt.Sprintf("c1.busy.t%d", i))
	}
	r := newReplayer(t, ctx, topics)
	for !cmp.Equal(r.state, want) {
		if !r.poll() {
			t.Fatalf("topics never matched SELECT (-topics +select):\n%s", cmp.Diff(r.state, want))
		}
	}
	if r.changes < writers*txPerWriter {
		t.Errorf("only %d changes replayed", r.changes)
	}
	n := 0
	for _, rows := range want {
		n += len(rows)
	}
	t.Logf("%d changes replayed into %d rows of %d tables", r.changes, n, tables)
}

// selectTables returns tables t0.. of db as SELECT prints them, by table
// and id, in the shape the replayer builds.
func selectTables(t *testing.T, ctx context.Context, db string, tables int) map[string]map[int32][]string {
	t.Helper()
	want := map[string]map[int32][]string{}
	for i := range tables {
		name := fmt.Sprintf("t%d", i)
		rows, err := env.db.Query(ctx, db, "SELECT id, ver, s, amount, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), n FROM "+name)
		if err != nil {
			t.Fatal(err)
		}
		want[name] = map[int32][]string{}
		for _, r := range rows {
			want[name][int32(atoi(*r[0]))] = strs(r)
		}
	}
	return want
}

// write runs n random transactions of writer w on tables t0.. of db; it
// touches only keys ≡ w (mod writers) below keys, so writers never wait on
// each other's row locks. seed picks the sequence.
func write(ctx context.Context, db string, seed uint64, w, writers, tables, n, keys int) error {
	c, err := env.db.Conn(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close()
	rnd := rand.New(rand.NewPCG(seed, 7))
	key := func() int { return rnd.IntN(max(1, keys/writers))*writers + w }
	table := func() string { return fmt.Sprintf("t%d", rnd.IntN(tables)) }
	for range n {
		stmts := []string{"BEGIN"}
		for range 1 + rnd.IntN(4) {
			t := table()
			switch rnd.IntN(4) {
			case 0: // multi-row insert; keys already present are left alone
				var vals []string
				for range 1 + rnd.IntN(3) {
					vals = append(vals, fmt.Sprintf("(%d, 0, 'w%d ✓ 😀', %d.%03d, '2024-02-29 23:59:59.%06d', %d)",
						key(), w, rnd.IntN(1e6)-5e5, rnd.IntN(1000), rnd.IntN(1e6), rnd.Int64()))
				}
				stmts = append(stmts, "INSERT IGNORE INTO "+t+" VALUES "+strings.Join(vals, ", "))
			case 1, 2:
				stmts = append(stmts, fmt.Sprintf("UPDATE %s SET ver = ver + 1, s = 'u%d', amount = NULL, n = n - 1 WHERE id = %d", t, rnd.IntN(100), key()))
			case 3:
				stmts = append(stmts, fmt.Sprintf("DELETE FROM %s WHERE id = %d", t, key()))
			}
		}
		stmts = append(stmts, "COMMIT")
		if err := execTx(c, stmts); err != nil {
			return fmt.Errorf("writer %d: %w", w, err)
		}
	}
	return nil
}

// execTx runs a transaction's statements, running it again when InnoDB
// picks it as a deadlock victim (rolled back whole, so nothing of it is in
// the binlog).
func execTx(c *client.Conn, stmts []string) error {
	for {
		var err error
		for _, s := range stmts {
			if _, err = c.Execute(s); err != nil {
				err = fmt.Errorf("%s: %w", s, err)
				break
			}
		}
		var me *mysql.MyError
		if !errors.As(err, &me) || me.Code != mysql.ER_LOCK_DEADLOCK {
			return err
		}
		if _, err := c.Execute("ROLLBACK"); err != nil {
			return err
		}
	}
}

func strs(r []*string) []string {
	out := make([]string, len(r))
	for i, v := range r {
		if v == nil {
			out[i] = "NULL"
		} else {
			out[i] = *v
		}
	}
	return out
}

// replayer applies consumed changes to per-table state, checking that each
// key's changes chain: an insert starts at ver 0, an update's before is the
// previous after and increments ver, a delete removes what is there.
type replayer struct {
	t       *testing.T
	ctx     context.Context
	cl      *kgo.Client
	decode  func([]byte) map[string]any
	state   map[string]map[int32][]string
	changes int

	snapshotted map[string]map[int32]bool // keys read by a snapshot (op r), each at most once
	preexisting bool                      // rows may predate the stream: a change may come before the row's snapshot
	next        map[string]int64          // "topic/partition": the offset after the last record polled
}

func newReplayer(t *testing.T, ctx context.Context, topics []string) *replayer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r := &replayer{t: t, ctx: ctx, cl: cl, decode: decoder(t, ctx), state: map[string]map[int32][]string{},
		snapshotted: map[string]map[int32]bool{}, next: map[string]int64{}}
	for _, tp := range topics {
		r.state[tp[strings.LastIndex(tp, ".")+1:]] = map[int32][]string{}
	}
	return r
}

// poll applies the next fetch; false at the deadline.
func (r *replayer) poll() bool {
	fetches := r.cl.PollFetches(r.ctx)
	if r.ctx.Err() != nil {
		return false
	}
	fetches.EachRecord(func(rec *kgo.Record) {
		r.next[fmt.Sprintf("%s/%d", rec.Topic, rec.Partition)] = rec.Offset + 1
		if rec.Attrs.IsControl() || rec.Value == nil {
			return // a transaction marker, a tombstone
		}
		r.apply(rec.Topic[strings.LastIndex(rec.Topic, ".")+1:], r.decode(rec.Value))
	})
	return true
}

// replayTo polls until every partition is read up to its end in ends
// (committed offsets; the transaction markers count).
func (r *replayer) replayTo(ends kadm.ListedOffsets) {
	behind := func() string {
		var late string
		ends.Each(func(o kadm.ListedOffset) {
			if tp := fmt.Sprintf("%s/%d", o.Topic, o.Partition); r.next[tp] < o.Offset {
				late = fmt.Sprintf("%s at %d of %d", tp, r.next[tp], o.Offset)
			}
		})
		return late
	}
	for late := behind(); late != ""; late = behind() {
		if !r.poll() {
			r.t.Fatalf("topics not replayed to their end before the deadline: %s", late)
		}
	}
}

func (r *replayer) apply(table string, v map[string]any) {
	r.changes++
	rows := r.state[table]
	before, after := image(row(v, "before")), image(row(v, "after"))
	switch op := v["op"]; op {
	case "c":
		if rows[key(after)] != nil || after[1] != "0" {
			r.t.Errorf("%s: insert of %v onto existing %v", table, after, rows[key(after)])
		}
		rows[key(after)] = after
	case "u":
		prev, ok := rows[key(after)]
		if !ok && r.preexisting {
			prev = before // a row older than the stream, not snapshotted yet
		}
		if !cmp.Equal(prev, before) || fmt.Sprint(atoi(before[1])+1) != after[1] {
			r.t.Errorf("%s: update out of order: before %v, state %v, after %v", table, before, prev, after)
		}
		rows[key(after)] = after
	case "r": // a snapshot row: the row as it is at its place in the stream
		if prev, ok := rows[key(after)]; ok && !cmp.Equal(prev, after) {
			r.t.Errorf("%s: snapshot row %v differs from the state %v", table, after, prev)
		}
		if r.snapshotted[table] == nil {
			r.snapshotted[table] = map[int32]bool{}
		}
		if r.snapshotted[table][key(after)] {
			r.t.Errorf("%s: key %d snapshotted twice", table, key(after))
		}
		r.snapshotted[table][key(after)] = true
		rows[key(after)] = after
	case "d":
		if prev, ok := rows[key(before)]; (ok || !r.preexisting) && !cmp.Equal(prev, before) {
			r.t.Errorf("%s: delete of %v, state %v", table, before, rows[key(before)])
		}
		delete(rows, key(before))
	default:
		r.t.Errorf("%s: op %v", table, op)
	}
}

func key(img []string) int32 { return int32(atoi(img[0])) }

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// image renders a decoded row as SELECT prints it.
func image(m map[string]any) []string {
	if m == nil {
		return nil
	}
	out := []string{fmt.Sprint(unwrap(m["id"])), fmt.Sprint(unwrap(m["ver"]))}
	for _, c := range []string{"s", "amount", "at", "n"} {
		switch v := unwrap(m[c]).(type) {
		case nil:
			out = append(out, "NULL")
		case *big.Rat:
			out = append(out, v.FloatString(3))
		case int64:
			if c == "at" { // local-timestamp-micros: goavro 2.15 leaves it a long
				out = append(out, time.UnixMicro(v).UTC().Format("2006-01-02 15:04:05.000000"))
				continue
			}
			out = append(out, fmt.Sprint(v))
		default:
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// decoder decodes Confluent-framed Avro through the registry.
func decoder(t *testing.T, ctx context.Context) func([]byte) map[string]any {
	var mu sync.Mutex
	codecs := map[int]codec{}
	return func(b []byte) map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return decodeFramed(t, ctx, codecs, b)
	}
}

// Started at a GTID set, the producer publishes exactly the transactions
// after it; with tombstones off, a delete is one record; with
// source.include_query, each change carries its statement.
func TestStartAtGTIDWithoutTombstones(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE gtids", "CREATE TABLE gtids.t (id INT PRIMARY KEY)",
		"INSERT INTO gtids.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	pos, err := env.db.Query(ctx, "", "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.db.Exec(ctx, "gtids", "INSERT INTO t VALUES (2)", "DELETE FROM t WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	args := producerArgs(t, ctx, "g1", "gtids.*", "-kafka.tombstones=false", "-source.include_query")
	args = append(args, "-source.start_position=", "-source.start_gtid", *pos[0][0])
	startProducer(t, args)
	if err := env.db.Exec(ctx, "gtids", "INSERT INTO t VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range consume(t, ctx, 3, "g1.gtids.t") {
		if c.Value == nil {
			t.Fatalf("tombstone for %v with kafka.tombstones=false", c.Key)
		}
		got = append(got, fmt.Sprint(c.Value["op"], c.Key["id"]))
		q := unwrap(c.Value["source"].(map[string]any)["query"])
		if want := map[int32]string{1: "DELETE FROM t WHERE id = 1", 2: "INSERT INTO t VALUES (2)", 3: "INSERT INTO t VALUES (3)"}[c.Key["id"].(int32)]; q != want {
			t.Errorf("source.query = %v, want %q (source.include_query on)", q, want)
		}
	}
	sort.Strings(got)
	if diff := cmp.Diff(got, []string{"c2", "c3", "d1"}); diff != "" {
		t.Errorf("changes after the GTID set (-got +want):\n%s", diff)
	}
}
