package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestCutsEnds lists the ends of many table topics, two partitions each,
// led by three brokers: every partition's end is the count of records
// written to it, other topics are left out, and the Cuts keeps nothing
// of them afterwards (the live heap allocated under Ends, its answer
// dropped). Through the client, the metadata requests had it cache every
// topic's metadata for good, about 1.2 KB a topic (issue 18: the consumer
// at 20,000 tables).
func TestCutsEnds(t *testing.T) {
	const topics, bound = 300, 128
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := testenv.StartKafka(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	names := []string{"strait._checkpoint", "other.shop.t"}
	for i := range topics {
		names = append(names, fmt.Sprintf("strait.shop.t%04d", i))
	}
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 2, 1, nil, names...); err != nil {
		t.Fatal(err)
	}
	want := map[TopicPartition]int64{}
	var recs []*kgo.Record
	for i, name := range names[2:] {
		for p := range int32(2) {
			n := (i + int(p)) % 3 // 0, 1 or 2 records
			want[TopicPartition{name, p}] = int64(n)
			for range n {
				recs = append(recs, &kgo.Record{Topic: name, Partition: p, Value: []byte("v")})
			}
		}
	}
	recs = append(recs, &kgo.Record{Topic: "other.shop.t", Value: []byte("v")})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var cfg GroupConfig
	cfg.Defaults()
	cfg.Brokers = cluster.ListenAddrs()
	c, err := NewCuts(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ends(ctx); err != nil { // the client's connections, out of the figure
		t.Fatal(err)
	}
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1 // every allocation, not a sample
	before := testenv.HeapUnder("(*Cuts).Ends")
	ends, err := c.Ends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) != len(want) {
		t.Errorf("%d ends, want %d", len(ends), len(want))
	}
	for tp, n := range want {
		if got, ok := ends[tp]; !ok || got != n {
			t.Errorf("end of %s/%d: %d (listed %v), want %d", tp.Topic, tp.Partition, got, ok, n)
		}
	}
	ends = nil
	per := (testenv.HeapUnder("(*Cuts).Ends") - before) / topics
	t.Logf("%d bytes a topic kept", per)
	if per > bound {
		t.Errorf("the Cuts keeps %d bytes a topic after Ends, over %d", per, bound)
	}
}
