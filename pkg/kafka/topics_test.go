package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// TestPreloadSendsNothing: the topics created ahead of a snapshot, and
// those a restarted writer finds, are known to the client with their
// partitions before any record goes to them (one metadata request for
// all, not one per table's first record), and the records preload uses
// to get there never reach a topic: the topics hold exactly the changes
// published, through a snapshot's writer and a restarted one.
func TestPreloadSendsNothing(t *testing.T) {
	const tables = 40
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := startStore(t, "pre").cfg
	cfg.Partitions = 3
	table := func(i int) *cdc.Table {
		return &cdc.Table{Database: "shop", Name: fmt.Sprintf("t%02d", i), PrimaryKey: []int{0}, Columns: txnUsers.Columns}
	}
	names, topics := make([]string, tables), make([]string, tables)
	for i := range tables {
		names[i], topics[i] = table(i).ID(), fmt.Sprintf("pre.shop.t%02d", i)
	}
	// publish commits one change of each of tables with a new writer,
	// between before and after.
	publish := func(before, after func(w *Writer), tables ...int) {
		t.Helper()
		w, err := NewWriter(cfg, "test", slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		before(w)
		for _, i := range tables {
			ev := cdc.Event{Table: table(i), Op: cdc.OpCreate, After: []cdc.Value{cdc.Int(int64(i)), cdc.Str("x")},
				Position: cdc.Position{Epoch: 1, File: 1, Pos: uint64(100 + i)}, CommitTime: time.Unix(1700000000, 0)}
			if err := w.Publish(ctx, []cdc.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(ctx, testCheckpoint{}); err != nil {
			t.Fatal(err)
		}
		after(w)
	}
	none := func(*Writer) {}

	// A snapshot's writer: the topics created ahead are preloaded.
	publish(func(w *Writer) {
		if created, err := w.CreateTableTopics(ctx, names); err != nil || created != tables {
			t.Fatalf("created %d topics (%v), want %d", created, err, tables)
		}
		waitPartitionsKnown(t, ctx, w.producer.client, topics)
	}, none, 3, 17)
	// A restarted writer: its first change lists the topics, which
	// preloads them all, those it never writes to too.
	publish(none, func(w *Writer) { waitPartitionsKnown(t, ctx, w.producer.client, topics) }, 17, 29)

	if got := dataRecords(t, ctx, cfg.Brokers, topics); got != 4 {
		t.Errorf("%d records in the table topics, want the 4 changes published", got)
	}
}

// waitPartitionsKnown waits until cl lists the partitions of every topic,
// with none produced to.
func waitPartitionsKnown(t *testing.T, ctx context.Context, cl *kgo.Client, topics []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, topic := range topics {
		for {
			// -1, -1 until the topic's partitions are listed.
			if leader, epoch, _ := cl.PartitionLeader(topic, 0); leader >= 0 || epoch >= 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the client does not know the partitions of %s, never written to: %v", topic, ctx.Err())
			case <-time.After(time.Millisecond): // polling a condition with a deadline
			}
		}
	}
}

// dataRecords counts the records in topics, read uncommitted (aborted and
// undecided ones too), control records left out.
func dataRecords(t *testing.T, ctx context.Context, brokers, topics []string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]map[int32]int64{} // the end offset still to reach
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if left[o.Topic] == nil {
				left[o.Topic] = map[int32]int64{}
			}
			left[o.Topic][o.Partition] = o.Offset
		}
	})
	n := 0
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				n++
			}
			if end, ok := left[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
		})
	}
	return n
}
