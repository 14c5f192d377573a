package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/pipeline"
)

// Two account tables of one source database; transfers move money between
// them in one source transaction each, so their sum never changes.
var (
	accountsA = &cdc.Table{Database: "bank", Name: "a", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64}, {Name: "bal", Type: cdc.TypeInt64},
	}}
	accountsB = &cdc.Table{Database: "bank", Name: "b", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64}, {Name: "bal", Type: cdc.TypeInt64},
	}}
)

// bank is the source side of the transfer workload: the balances, and
// each source transaction published as the producer does (its change
// records and a checkpoint at the start of the next transaction, in one
// Kafka transaction).
type bank struct {
	pub   *publisher
	codec *pipeline.Codec
	bal   [2]map[int64]int64 // by table (a, b), by id; a missing id has no row
	tx    uint64             // source transactions published
	// snapshot is the tables whose snapshot is still in progress, as the
	// checkpoints say.
	snapshot []string
}

// position is where the row changes of source transaction tx lie: all
// below pos(tx+1), the checkpoint's resume point after it.
func (b *bank) pos(tx uint64) uint64 { return 1000 * tx }

// publish sends one source transaction.
func (b *bank) publish(ctx context.Context, evs ...cdc.Event) error {
	b.tx++
	for i := range evs {
		at := b.pos(b.tx) + 10 // the rows event ends after the transaction's start
		evs[i].Position = cdc.Position{Epoch: 1, File: 1, Pos: at, Row: uint64(i)}
		evs[i].Source = cdc.Source{File: "binlog.000001", Pos: at, Row: uint32(i)}
		evs[i].CommitTime = time.Unix(1700000000+int64(b.tx), 0)
	}
	if err := b.pub.w.Publish(ctx, evs); err != nil {
		return err
	}
	cp := &pipeline.Checkpoint{State: binlog.State{Flavor: "mariadb", File: "binlog.000001", Pos: b.pos(b.tx + 1), Epoch: 1,
		Snapshot: binlog.SnapshotState{Tables: b.snapshot}}, SourceTime: time.Unix(1700000000+int64(b.tx), 0)}
	return b.pub.w.Commit(ctx, b.codec.Value(cp))
}

// through is the watermark that covers every transaction published.
func (b *bank) through() string {
	return cdc.Position{Epoch: 1, File: 1, Pos: b.pos(b.tx + 1), Row: math.MaxUint64}.String()
}

// account is a row of table i.
func account(id, bal int64) []cdc.Value { return []cdc.Value{cdc.Int(id), cdc.Int(bal)} }

// transfer moves money between a random account of one table and one of
// the other in one source transaction; now and then it closes the source
// account (a delete, its whole balance moves) or opens one (an insert).
func (b *bank) transfer(ctx context.Context, r *rand.Rand) error {
	tables := [2]*cdc.Table{accountsA, accountsB}
	from := r.IntN(2)
	to := 1 - from
	id, dst := int64(r.IntN(8)), int64(r.IntN(8))
	if _, ok := b.bal[to][dst]; !ok {
		dst = slices.Sorted(maps.Keys(b.bal[to]))[0]
	}
	old, dstOld := b.bal[from][id], b.bal[to][dst]
	_, exists := b.bal[from][id]
	switch {
	case !exists: // open the account with money from the other table
		x := min(dstOld, int64(1+r.IntN(20)))
		b.bal[from][id], b.bal[to][dst] = x, dstOld-x
		return b.publish(ctx, upd(tables[to], account(dst, dstOld), account(dst, dstOld-x)), ins(tables[from], account(id, x)...))
	case r.IntN(10) == 0 && len(b.bal[from]) > 1: // close it
		delete(b.bal[from], id)
		b.bal[to][dst] = dstOld + old
		return b.publish(ctx, del(tables[from], account(id, old)...), upd(tables[to], account(dst, dstOld), account(dst, dstOld+old)))
	default:
		x := min(old, int64(1+r.IntN(20)))
		b.bal[from][id], b.bal[to][dst] = old-x, dstOld+x
		return b.publish(ctx, upd(tables[from], account(id, old), account(id, old-x)), upd(tables[to], account(dst, dstOld), account(dst, dstOld+x)))
	}
}

// TestConsistentCut: two consumer replicas of one group apply transfers
// between two account tables (append mode) while they are made, the
// second table (a new topic) appearing after the first watermark; sampled
// again and again meanwhile, the two tables as of the watermark the group
// records always hold the constant total, the watermark advances, and it
// reaches the last source transaction at the end. Each table has an
// as-of-watermark view reading the watermark table.
func TestConsistentCut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Names of their own, so that the test can run again in one process
	// (-count): a watermark never goes back.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix, group, dataset := "cut"+run, "g", "ds_cut_"+run
	codec, err := pipeline.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	b := &bank{pub: newPublisher(t, prefix), codec: codec, bal: [2]map[int64]int64{{}, {}}}
	// The accounts open in table a; table b, and its topic, come later.
	var opening []cdc.Event
	for id := range int64(8) {
		b.bal[0][id] = 200
		opening = append(opening, ins(accountsA, account(id, 200)...))
	}
	const total = 1600
	if err := b.publish(ctx, opening...); err != nil {
		t.Fatal(err)
	}

	args := append(consumerArgs(prefix, group, dataset), "-bigquery.mode", "append", "-watermark_interval", "20ms")
	startConsumer(t, args)
	startConsumer(t, args)

	// watermark is the group's watermark of the source; "" before the
	// first.
	watermark := func() string {
		wms, err := env.bq.Rows(project, dataset, "_strait_watermark")
		if err != nil || len(wms) == 0 {
			return ""
		}
		return fmt.Sprint(wms[0]["sequence"])
	}
	// The transfers go out in rounds; after each the workload waits for
	// the watermark to reach it, so that it advances while they run
	// whatever the machine's pace.
	const rounds, perRound = 8, 50
	done := make(chan error, 1)
	go func() {
		// Once the watermark stands at the accounts' opening (a cut of
		// table a's topic alone was taken), half of each account moves
		// to a new account in table b, a new topic, in one transaction.
		for want := b.through(); watermark() != want; {
			select {
			case <-ctx.Done():
				done <- fmt.Errorf("watermark %q at the deadline, want %s", watermark(), want)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		var split []cdc.Event
		for id := range int64(8) {
			b.bal[0][id], b.bal[1][id] = 100, 100
			split = append(split, upd(accountsA, account(id, 200), account(id, 100)), ins(accountsB, account(id, 100)...))
		}
		if err := b.publish(ctx, split...); err != nil {
			done <- err
			return
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range rounds {
			for range perRound {
				if err := b.transfer(ctx, r); err != nil {
					done <- err
					return
				}
			}
			for want := b.through(); watermark() != want; {
				select {
				case <-ctx.Done():
					done <- fmt.Errorf("watermark %q at the deadline, want %s", watermark(), want)
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		done <- nil
	}()

	// sample reads the watermark, then both as-of views in one read (as
	// one query joining them would), and checks their total; "" before
	// the first watermark, when the views are empty.
	sample := func() string {
		wms, err := env.bq.Rows(project, dataset, "_strait_watermark")
		if err != nil || len(wms) == 0 {
			return ""
		}
		if len(wms) != 1 || wms[0]["group_id"] != group || wms[0]["source"] != prefix {
			t.Fatalf("watermark table holds %v, want one row of group %s and source %s", wms, group, prefix)
		}
		through := wms[0]["sequence"].(string)
		views, err := env.bq.ViewRows(project, dataset, "bank_a_as_of_watermark", "bank_b_as_of_watermark")
		if err != nil && strings.Contains(err.Error(), "Not found: Table") && strings.Contains(err.Error(), "bank_b_as_of_watermark") {
			// Table b is not there yet: neither may the watermark cover
			// its first change, so table a holds the whole total.
			views, err = env.bq.ViewRows(project, dataset, "bank_a_as_of_watermark")
		}
		if err != nil {
			t.Fatal(err)
		}
		sum := int64(0)
		var state []string
		for i, rows := range views {
			for _, r := range rows {
				sum += r["bal"].(int64)
				state = append(state, fmt.Sprintf("%c.%d=%d", 'a'+i, r["id"], r["bal"]))
			}
		}
		if sum != total {
			slices.Sort(state)
			t.Fatalf("as of the watermark (at least %s) the accounts hold %d, want %d: %s", through, sum, total, strings.Join(state, " "))
		}
		return through
	}
	seen := map[string]bool{}
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		case <-ctx.Done():
			t.Fatal("the workload did not finish at the deadline")
		case <-time.After(5 * time.Millisecond):
		}
		if wm := sample(); wm != "" {
			seen[wm] = true
		}
	}
	final := b.through()
	for last := ""; last != final; last = sample() {
		select {
		case <-ctx.Done():
			t.Fatalf("watermark %q at the deadline, want %s (the last transaction's)", last, final)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if len(seen) < rounds {
		t.Errorf("the watermark took %d values while the transfers ran, want at least one a round (%d)", len(seen), rounds)
	}
	t.Logf("%d transfers; %d watermarks seen while they ran", rounds*perRound, len(seen))

	for _, table := range []string{"bank_a", "bank_b"} {
		v, err := env.bq.Table(project, dataset, table+"_as_of_watermark")
		if err != nil {
			t.Fatal(err)
		}
		want := "WHERE _strait_sequence < (SELECT `sequence` FROM `proj." + dataset + "._strait_watermark` WHERE `group_id` = 'g' AND `source` = '" + prefix + "')"
		if v.Type != "VIEW" || v.View == nil || !strings.Contains(v.View.Query, want) || !strings.Contains(v.View.Query, "FROM `proj."+dataset+"."+table+"`") {
			t.Errorf("view %s_as_of_watermark: %s %+v, want one reading %s below the watermark", table, v.Type, v.View, table)
		}
	}
}

// TestWatermarkWaitsForSnapshot: while the producer's checkpoints say a
// snapshot is in progress, no watermark is recorded even once every
// record is applied (rows not read yet are older than the checkpoint, so
// the tables below it are no state the source had); the first
// checkpoint after the snapshot is done is.
func TestWatermarkWaitsForSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix, group, dataset := "snapcut"+run, "g", "ds_snapcut_"+run
	codec, err := pipeline.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	b := &bank{pub: newPublisher(t, prefix), codec: codec, snapshot: []string{"bank.a", "bank.b"}}
	read := func(table *cdc.Table) []cdc.Event {
		var evs []cdc.Event
		for id := range int64(8) {
			evs = append(evs, cdc.Event{Table: table, Op: cdc.OpRead, After: account(id, 100)})
		}
		return evs
	}
	// Table a is read; b is not yet, while a changes.
	if err := b.publish(ctx, read(accountsA)...); err != nil {
		t.Fatal(err)
	}
	if err := b.publish(ctx, upd(accountsA, account(0, 100), account(0, 100))); err != nil {
		t.Fatal(err)
	}
	c := startConsumer(t, append(consumerArgs(prefix, group, dataset), "-bigquery.mode", "append", "-watermark_interval", "20ms"))
	waitCommitted(t, ctx, group, prefix+".bank.a")
	for !strings.Contains(c.logs.String(), "watermark waits: the producer is snapshotting") {
		select {
		case <-ctx.Done():
			t.Fatal("no \"watermark waits\" line at the deadline")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if wms, err := env.bq.Rows(project, dataset, "_strait_watermark"); err == nil && len(wms) > 0 {
		t.Fatalf("a watermark while the snapshot is in progress: %v", wms)
	}

	b.snapshot = nil // b's rows finish the snapshot
	if err := b.publish(ctx, read(accountsB)...); err != nil {
		t.Fatal(err)
	}
	var views [][]map[string]any
	for want := b.through(); ; {
		wms, err := env.bq.Rows(project, dataset, "_strait_watermark")
		if err == nil && len(wms) == 1 && wms[0]["sequence"] == want {
			if views, err = env.bq.ViewRows(project, dataset, "bank_a_as_of_watermark", "bank_b_as_of_watermark"); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("watermark %v at the deadline, want %s", wms, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if len(views[0]) != 8 || len(views[1]) != 8 {
		t.Errorf("as of the watermark after the snapshot: %d accounts in a, %d in b; want 8 and 8", len(views[0]), len(views[1]))
	}
}
