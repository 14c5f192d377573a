package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// The chaos test: the whole pipeline — real MariaDB, a 3-broker kfake
// cluster, srfake, the local BigQuery endpoint, bin/producer and two
// bin/consumer processes — under a random workload (inserts, updates,
// deletes, primary-key changes, large transactions, a column added
// mid-way) while the test SIGKILLs and restarts the producer and the
// consumers, makes the brokers refuse produce requests, moves partition
// leaders and group/transaction coordinators, and removes a broker and adds
// it back. At the end every BigQuery table equals its source table (all
// columns), and the topics hold every source change exactly once for a
// read_committed reader.
func TestChaosEndsExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := buildBinaries(t, ctx)
	var out bytes.Buffer
	o := &options{dir: t.TempDir(), bin: bin, brokers: 3, dataset: "strait_demo"}
	st, err := startStack(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	defer func() {
		if t.Failed() {
			for _, name := range []string{"producer", "consumer"} {
				b, _ := os.ReadFile(filepath.Join(o.dir, name+".log"))
				t.Logf("%s log (all runs):\n%s", name, tail(string(b), 150))
			}
		}
	}()
	if err := loadSchema(ctx, st.db); err != nil {
		t.Fatal(err)
	}
	// The table of every type: its edge rows, a row of NULLs and random
	// rows; the workload changes it with random and edge values.
	nextTyped, err := loadAllTypes(ctx, st.db, rand.New(rand.NewPCG(13, 17)), 60)
	if err != nil {
		t.Fatal(err)
	}
	initial := 500 + 1000 + 2000 + nextTyped - 1
	if err := st.writeConfigs(); err != nil {
		t.Fatal(err)
	}
	// The processes: restarted in place by index when the test kills
	// them, and — as Kubernetes restarts a container — when one exits by
	// itself (an error it does not recover from in-process, such as a
	// commit refused while coordinators move: it resumes from its
	// checkpoint).
	names := []string{"producer", "consumer", "consumer"}
	procs := make([]*process, len(names))
	restarts := 0
	start := func(i int) {
		p, err := st.spawn(names[i], "-http_addr", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	kill := func(i int) {
		procs[i].cmd.Process.Kill()
		<-procs[i].exited
		start(i)
	}
	supervise := func() {
		for i, p := range procs {
			select {
			case <-p.exited:
				t.Logf("%s exited by itself (%v); restarted", names[i], p.cmd.ProcessState)
				restarts++
				start(i)
			default:
			}
		}
	}
	for i := range procs {
		start(i)
	}

	// Progress between two actions: more acknowledged appends in BigQuery
	// and more records in the topics.
	adm := kadm.NewClient(st.adminClient(t))
	ends := func() int64 {
		offs, err := adm.ListEndOffsets(ctx)
		if err != nil {
			return 0
		}
		var n int64
		offs.Each(func(o kadm.ListedOffset) {
			if strings.HasPrefix(o.Topic, "demo.") {
				n += o.Offset
			}
		})
		return n
	}
	progressed := func(what string) {
		appends, records := st.bq.Appends(), ends()
		deadline := time.Now().Add(90 * time.Second)
		for st.bq.Appends() <= appends+2 || ends() <= records {
			supervise()
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("no progress after %s: appends %d, records %d", what, st.bq.Appends(), ends())
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	// settled waits until the consumer group is stable with just the two
	// running consumers. A consumer is killed only then: kfake may never
	// expire a member killed while its JoinGroup waits for the others
	// (when the answer finds the connection closed, once the leader has
	// synced), and the partitions assigned to it are then read by nobody
	// (TestKfakeKeepsMemberKilledInJoin): the consumers' stall seen after
	// some rounds. Real Kafka arms every member's session timeout when a
	// join completes.
	settled := func() {
		deadline := time.Now().Add(90 * time.Second)
		for {
			supervise()
			groups, err := adm.DescribeGroups(ctx, "strait-demo")
			if err == nil && groups["strait-demo"].State == "Stable" && len(groups["strait-demo"].Members) == 2 {
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("the consumer group did not settle with the two consumers: %v %+v", err, groups)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	// The workload, until stop is closed, once the producer streams: it
	// publishes its first snapshot rows only after taking its start
	// position, so every change the workload makes is after it.
	for ends() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the producer published nothing")
		case <-time.After(50 * time.Millisecond):
		}
	}
	w := &chaosWorkload{nextTyped: nextTyped}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.err = w.run(ctx, st, stop) })

	var refuse atomic.Int32
	st.kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		st.kafka.KeepControl()
		if refuse.Add(-1) < 0 {
			refuse.Store(0)
			return nil, nil, false
		}
		return testenv.ProduceError(req.(*kmsg.ProduceRequest), kerr.NotEnoughReplicas.Code), nil, true
	})
	rnd := rand.New(rand.NewPCG(7, 11))
	actions := []struct {
		name string
		do   func()
	}{
		{"SIGKILL the producer", func() { kill(0) }},
		{"SIGKILL a consumer", func() { settled(); kill(1 + rnd.IntN(2)) }},
		{"SIGKILL both consumers", func() { settled(); kill(1); kill(2) }},
		{"refuse 5 produce requests (NOT_ENOUGH_REPLICAS)", func() { refuse.Store(5) }},
		{"move every partition leader", st.kafka.ShufflePartitionLeaders},
		{"move the group and transaction coordinators", st.kafka.RehashCoordinators},
		// Broker 0, not 2: kfake's controller is its last broker, and
		// kfake cannot move the controller. Back on a new port: on the
		// same one the clients keep talking to the removed broker (see
		// TestKfakeRemovedBrokerKeepsConnections). Adding it moves every
		// partition leader, so that the new broker leads some.
		{"remove broker 0, then add it back (on a new port)", func() {
			if err := st.kafka.RemoveNode(0); err != nil {
				t.Fatal(err)
			}
			progressed("removing broker 0")
			if _, _, err := st.kafka.AddNode(0, 0); err != nil {
				t.Fatal(err)
			}
		}},
	}
	// scored waits, with no fault on the way, until a change carrying the
	// column the workload adds is in BigQuery. Appends naming it are
	// refused until BigQuery's schema delay has passed; each answer then
	// reaches a running consumer, which logs that it waits (checked at
	// the end). A consumer killed between a refusal and its log line
	// (seen once) would leave a refusal nobody could report.
	scored := func() {
		deadline := time.Now().Add(90 * time.Second)
		for {
			supervise()
			rows, _ := st.bq.Rows("demo", o.dataset, "shop_customers")
			if slices.ContainsFunc(rows, func(r map[string]any) bool { return r["score"] != nil }) {
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("no change with the added column in BigQuery after 90s (appends refused for it: %d)", st.bq.SchemaRefusals())
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	progressed("the start")
	const rounds = 14
	for r := range rounds {
		a := actions[r%len(actions)]
		if r == len(actions) {
			a = actions[rnd.IntN(len(actions))]
		}
		if r == rounds/2 {
			w.addColumn.Store(true) // the workload runs the DDL next
			scored()
		}
		t.Logf("%s round %d: %s", time.Now().UTC().Format(time.TimeOnly), r+1, a.name)
		a.do()
		progressed(a.name)
	}
	close(stop)
	wg.Wait()
	if w.err != nil {
		t.Fatal(w.err)
	}
	if !w.altered.Load() {
		t.Fatal("the workload never added its column")
	}

	// BigQuery equals the source, every column (the added one too).
	ts := slices.Clone(tables)
	ts[0].selectList += ", score"
	ts[0].cols = append(slices.Clone(ts[0].cols), "score")
	ts = append(ts, allTypes)
	// Replays (kfake may tell a consumer records were lost after leader
	// moves, and it starts the partition over) take a while: the deadline
	// moves as long as BigQuery keeps acknowledging appends.
	deadline, appends := time.Now().Add(time.Minute), st.bq.Appends()
	for {
		supervise()
		if n := st.bq.Appends(); n > appends {
			deadline, appends = time.Now().Add(time.Minute), n
		}
		same, lines, err := st.compare(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		if same {
			t.Logf("BigQuery equals the source:\n%s", strings.Join(lines, "\n"))
			rows, err := st.sourceRows(ctx, allTypes)
			if err != nil {
				t.Fatal(err)
			}
			var edges []string
			for _, r := range rows {
				if strings.HasPrefix(r, "1|") || strings.HasPrefix(r, "2|") {
					edges = append(edges, r[:min(len(r), 600)])
				}
			}
			t.Logf("all_types' first two edge rows, as compared (columns %s):\n%s", strings.Join(allTypes.cols, "|"), strings.Join(edges, "\n"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BigQuery differs from the source:\n%s\n%s\n%s", strings.Join(lines, "\n"), groupLag(ctx, adm, "strait-demo"), st.differences(ctx, ts, 5))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The topics: every source row change once (a key change as a delete
	// and an insert), every snapshot row at most once.
	ops, snapshotted, perTable := st.readTopics(t, ctx)
	if diff := cmp.Diff(perTable, w.byTable); diff != "" {
		t.Errorf("changes (c, u, d) per table in the topics, against the source's row changes — lost or duplicated (-topics +source):\n%s", diff)
	}
	for key, n := range snapshotted {
		if n > 1 {
			t.Errorf("%s snapshotted %d times", key, n)
		}
	}
	if ops["r"] == 0 {
		t.Errorf("no snapshot rows, want the rows there were (%d at the start, some changed while read)", initial)
	}
	// BigQuery's delays were on (localDelay): an append the Write API
	// refused for the new column made a consumer wait, and no table
	// stopped. Whether one was refused depends on timing (the consumers
	// may first append a change with the column after the delay has
	// passed), so the wait is required only when one was.
	clog, _ := os.ReadFile(filepath.Join(o.dir, "consumer.log"))
	if n := st.bq.SchemaRefusals(); n > 0 && !strings.Contains(string(clog), "reason=schema_not_visible") {
		t.Errorf("BigQuery refused %d appends naming the new column before it was visible, and no consumer waited for it (log reason=schema_not_visible)", n)
	} else {
		t.Logf("appends refused for the new column before it was visible: %d", n)
	}
	if strings.Contains(string(clog), "table stopped") {
		t.Errorf("a table stopped:\n%s", tail(string(clog), 50))
	}
	t.Logf("verified after %d rounds of faults (%d processes exited by themselves and were restarted): %d source row changes (%d key changes, %d large transactions) and %d snapshot rows, each once; %d BigQuery appends",
		rounds, restarts, w.changes.Load(), w.keyChanges.Load(), w.large.Load(), ops["r"], st.bq.Appends())
}

// chaosWorkload writes random source transactions and counts the row
// changes they made (each is one change in the binlog).
type chaosWorkload struct {
	changes, keyChanges, large atomic.Int64
	addColumn, altered         atomic.Bool
	err                        error
	nextTyped                  int // the next free key of all_types

	mu      sync.Mutex
	byTable map[string]int64 // records each table's topic must hold (c, u, d)
}

func (w *chaosWorkload) run(ctx context.Context, st *stack, stop <-chan struct{}) error {
	c, err := st.db.Conn(ctx, "shop")
	if err != nil {
		return err
	}
	defer c.Close()
	// all_types' TIMESTAMP literals are UTC.
	if _, err := c.Execute("SET SESSION time_zone = '+00:00'"); err != nil {
		return err
	}
	rnd := rand.New(rand.NewPCG(3, 5))
	nextOrder, nextCustomer := 1001, 501
	pace := time.NewTicker(5 * time.Millisecond) // at most 200 transactions a second
	defer pace.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-pace.C:
		}
		if w.addColumn.Load() && !w.altered.Load() {
			if _, err := c.Execute("ALTER TABLE customers ADD COLUMN score INT"); err != nil {
				return err
			}
			w.altered.Store(true)
		}
		var stmts []string
		key := false
		switch rnd.IntN(10) {
		case 0, 1:
			id := nextOrder
			nextOrder++
			stmts = append(stmts, fmt.Sprintf(`INSERT INTO orders (id, customer_id, amount, status, details) VALUES (%d, %d, %d.%02d, 'new', '{"n": %d}')`,
				id, 1+rnd.IntN(nextCustomer-1), rnd.IntN(500), rnd.IntN(100), rnd.IntN(9)))
			for line := 1; line <= 1+rnd.IntN(3); line++ {
				stmts = append(stmts, fmt.Sprintf("INSERT INTO order_items VALUES (%d, %d, 'SKU-%d', %d, %d.%02d)", id, line, rnd.IntN(97), 1+rnd.IntN(4), rnd.IntN(50), rnd.IntN(100)))
			}
		case 2:
			stmts = append(stmts, fmt.Sprintf("UPDATE orders SET status = ELT(1 + FIELD(status, 'new', 'paid', 'shipped', 'cancelled') %% 4, 'new', 'paid', 'shipped', 'cancelled') WHERE id = %d", 1+rnd.IntN(nextOrder-1)))
		case 3:
			score := ""
			if w.altered.Load() {
				score = fmt.Sprintf(", score = %d", rnd.IntN(1000))
			}
			stmts = append(stmts, fmt.Sprintf("UPDATE customers SET tier = ELT(1 + %d, 'free', 'pro', 'enterprise'), updated_at = NOW(6)%s WHERE id = %d", rnd.IntN(3), score, 1+rnd.IntN(nextCustomer-1)))
		case 4:
			stmts = append(stmts, fmt.Sprintf("INSERT INTO customers (id, name, email, tier, signed_up, updated_at) VALUES (%d, 'Neu %d 🙂', NULL, 'free', CURDATE(), NOW(6))", nextCustomer, nextCustomer))
			nextCustomer++
		case 5:
			id := 1 + rnd.IntN(nextOrder-1)
			stmts = append(stmts, fmt.Sprintf("DELETE FROM order_items WHERE order_id = %d AND line = 1", id),
				fmt.Sprintf("DELETE FROM orders WHERE id = %d AND status = 'cancelled'", id))
		case 6: // a primary-key change
			key = true
			stmts = append(stmts, fmt.Sprintf("UPDATE order_items SET line = line + 10 WHERE order_id = %d AND line = 2", 1+rnd.IntN(nextOrder-1)))
		case 7:
			if rnd.IntN(8) == 0 { // a large transaction: many orders at once
				w.large.Add(1)
				lo := rnd.IntN(nextOrder)
				stmts = append(stmts, fmt.Sprintf("UPDATE orders SET amount = amount + 1 WHERE id BETWEEN %d AND %d", lo, lo+400))
			} else {
				stmts = append(stmts, fmt.Sprintf("UPDATE order_items SET qty = qty + 1 WHERE order_id = %d", 1+rnd.IntN(nextOrder-1)))
			}
		case 8: // all_types: a new row, or one deleted
			if rnd.IntN(4) == 0 {
				stmts = append(stmts, fmt.Sprintf("DELETE FROM all_types WHERE id = %d", 1+rnd.IntN(w.nextTyped-1)))
			} else {
				stmts = append(stmts, insertTyped(w.nextTyped, typedValues(rnd, -1)))
				w.nextTyped++
			}
		case 9: // all_types: some columns of a row changed, or its key
			id := 1 + rnd.IntN(w.nextTyped-1)
			if rnd.IntN(8) == 0 {
				key = true
				stmts = append(stmts, fmt.Sprintf("UPDATE all_types SET id = %d WHERE id = %d", w.nextTyped, id))
				w.nextTyped++
				break
			}
			var set []string
			for range 1 + rnd.IntN(4) {
				col := typedColumns[rnd.IntN(len(typedColumns))]
				set = append(set, col.name+" = "+typedValue(rnd, col, -1))
			}
			stmts = append(stmts, fmt.Sprintf("UPDATE all_types SET %s WHERE id = %d", strings.Join(set, ", "), id))
		}
		if _, err := c.Execute("BEGIN"); err != nil {
			return err
		}
		var n int64
		tx := map[string]int64{}
		for _, s := range stmts {
			res, err := c.Execute(s)
			if err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
			n += int64(res.AffectedRows)
			records := int64(res.AffectedRows)
			if key {
				records *= 2 // a delete and an insert
			}
			tx[tableOf(s)] += records
		}
		if _, err := c.Execute("COMMIT"); err != nil {
			return err
		}
		w.changes.Add(n)
		if key {
			w.keyChanges.Add(n)
		}
		w.mu.Lock()
		if w.byTable == nil {
			w.byTable = map[string]int64{}
		}
		for t, k := range tx {
			w.byTable[t] += k
		}
		w.mu.Unlock()
	}
}

// adminClient is a Kafka client of the stack's cluster for the test.
func (st *stack) adminClient(t *testing.T) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(st.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readTopics reads every table topic to its last stable offset
// (read_committed) and counts the changes by op, and the snapshot rows by
// topic and key.
func (st *stack) readTopics(t *testing.T, ctx context.Context) (ops map[string]int64, snapshotted map[string]int, perTable map[string]int64) {
	t.Helper()
	cl := st.adminClient(t)
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, "demo.") && !strings.HasPrefix(name, "demo._") {
			names = append(names, name)
		}
	}
	lso, err := adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int32]kgo.Offset{}
	left := 0
	lso.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if want[o.Topic] == nil {
				want[o.Topic] = map[int32]kgo.Offset{}
			}
			want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
			left++
		}
	})
	ends := map[string]int64{}
	lso.Each(func(o kadm.ListedOffset) { ends[fmt.Sprint(o.Topic, o.Partition)] = o.Offset })
	rd, err := kgo.NewClient(kgo.SeedBrokers(st.kafka.ListenAddrs()...), kgo.ConsumePartitions(want),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	reg, err := sr.NewClient(sr.URLs(st.registry.URL()))
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[int]string{}
	dec := avro.NewJSONDecoder()
	ops, snapshotted, perTable = map[string]int64{}, map[string]int{}, map[string]int64{}
	// Each key's changes chain: an update's or delete's before image is
	// the after image of the key's previous change (when one was read).
	last := map[string]string{}
	breaks := 0
	done := map[string]bool{}
	for len(done) < left {
		fetches := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topics not read to their end: %d of %d partitions", len(done), left)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			tp := fmt.Sprint(r.Topic, r.Partition)
			if r.Offset >= ends[tp]-1 {
				done[tp] = true
			}
			if r.Attrs.IsControl() || r.Value == nil {
				return
			}
			id := int(r.Value[1])<<24 | int(r.Value[2])<<16 | int(r.Value[3])<<8 | int(r.Value[4])
			if _, ok := schemas[id]; !ok {
				s, err := reg.SchemaByID(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				schemas[id] = s.Schema
			}
			v, err := dec.Decode(schemas[id], r.Value[5:])
			if err != nil {
				t.Fatal(err)
			}
			env := v.(avro.Object)
			op := fmt.Sprint(env.Get("op"))
			key := r.Topic + "/" + string(r.Key)
			image := func(name string) string {
				b, _ := json.Marshal(env.Get(name))
				// The column added mid-way is null in images written
				// after it and absent before.
				return strings.Replace(string(b), `,"score":null`, "", 1)
			}
			if prev, ok := last[key]; ok && (op == "u" || op == "d") && prev != image("before") {
				if breaks++; breaks <= 5 {
					t.Errorf("%s partition %d offset %d: %s of a row whose last change read was %s, before image %s", r.Topic, r.Partition, r.Offset, op, prev, image("before"))
				}
			}
			if op == "d" {
				delete(last, key)
			} else {
				last[key] = image("after")
			}
			ops[op]++
			if op != "r" {
				perTable[r.Topic[strings.LastIndexByte(r.Topic, '.')+1:]]++
			}
			if op == "r" {
				snapshotted[r.Topic+"/"+string(r.Key)]++
			}
		})
	}
	return ops, snapshotted, perTable
}

// tableOf returns the table an INSERT, UPDATE or DELETE statement writes.
func tableOf(stmt string) string {
	f := strings.Fields(stmt)
	switch strings.ToUpper(f[0]) {
	case "UPDATE":
		return f[1]
	default: // INSERT INTO t, DELETE FROM t
		return f[2]
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// differences lists, for each table of ts whose sides differ, up to n rows
// only MariaDB holds and up to n only BigQuery holds (as sourceRows and
// bigQueryRow print them).
func (st *stack) differences(ctx context.Context, ts []table, n int) string {
	var b strings.Builder
	for _, t := range ts {
		src, err := st.sourceRows(ctx, t)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", t.name, err)
			continue
		}
		rows, _ := st.bq.Rows("demo", st.o.dataset, "shop_"+t.name)
		seen := map[string]int{}
		for _, r := range rows {
			seen[bigQueryRow(t, r)]++
		}
		var onlySource []string
		for _, r := range src {
			if seen[r] > 0 {
				seen[r]--
			} else {
				onlySource = append(onlySource, r)
			}
		}
		var onlyBigQuery []string
		for r, k := range seen {
			for range k {
				onlyBigQuery = append(onlyBigQuery, r)
			}
		}
		slices.Sort(onlySource)
		slices.Sort(onlyBigQuery)
		if len(onlySource)+len(onlyBigQuery) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: %d rows only in MariaDB, %d only in BigQuery\n", t.name, len(onlySource), len(onlyBigQuery))
		for _, r := range onlySource[:min(n, len(onlySource))] {
			fmt.Fprintf(&b, "  MariaDB  %s\n", r)
		}
		for _, r := range onlyBigQuery[:min(n, len(onlyBigQuery))] {
			fmt.Fprintf(&b, "  BigQuery %s\n", r)
		}
	}
	return b.String()
}

// groupLag is, per table topic, the records in it and how many of them
// group has not committed: which side a difference is on (nothing
// published, or published and not applied).
func groupLag(ctx context.Context, adm *kadm.Client, group string) string {
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		return fmt.Sprintf("topics' end offsets: %v", err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Sprintf("group %s's offsets: %v", group, err)
	}
	var b strings.Builder
	for _, topic := range slices.Sorted(maps.Keys(ends)) {
		if !strings.HasPrefix(topic, "demo.") || strings.HasPrefix(topic, "demo._") {
			continue
		}
		var end, lag int64
		for p, o := range ends[topic] {
			end += o.Offset
			c, ok := committed.Lookup(topic, p)
			switch {
			case !ok || c.At < 0:
				lag += o.Offset
			case o.Offset > c.At:
				lag += o.Offset - c.At
			}
		}
		fmt.Fprintf(&b, "  %-28s %8d offsets, %8d not committed by %s\n", topic, end, lag, group)
	}
	return "Kafka:\n" + b.String()
}
