package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestKfakeRemovedBrokerKeepsConnections documents a kfake behaviour the
// chaos test works around, without strait. kfake's RemoveNode closes the
// broker's listener but not the connections it accepted: the removed broker
// goes on answering on them, as a broker outside the cluster (it leads
// nothing, so it answers NOT_LEADER_FOR_PARTITION and points at the current
// leader). Re-added on the same port, the new broker has the node id and
// host:port franz-go already knows, so franz-go keeps its connection — to
// the removed broker — and a produce to a partition the new broker leads
// never completes (not within a minute): every answer points back at node
// 0, on the same connection. Re-added on a new port, franz-go sees node 0's
// address change, drops the old connection and dials the new broker: the
// chaos test re-adds the broker that way, and this test shows that it
// works. If the first assertion fails, kfake closes removed brokers'
// connections now and the same port would do.
func TestKfakeRemovedBrokerKeepsConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := testenv.StartKafka(kfake.NumBrokers(3), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	if err := c.MoveTopicPartition("t", 0, 0); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("t"), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	roundTrip := func(v string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %q (partition led by %d): %v", v, c.LeaderFor("t", 0), err)
		}
		for {
			f := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%q not consumed (partition led by %d)", v, c.LeaderFor("t", 0))
			}
			got := false
			f.EachRecord(func(r *kgo.Record) { got = got || string(r.Value) == v })
			if got {
				return
			}
		}
	}
	roundTrip("before") // the client has connections to broker 0 now

	if err := c.RemoveNode(0); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", addrs[0]); err == nil {
		conn.Close()
		t.Fatalf("removed broker 0 still accepts connections on %s", addrs[0])
	}
	resp, err := cl.Broker(0).Request(ctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		t.Fatalf("removed broker 0 no longer answers on an open connection (%v): kfake closes them now; the chaos test may re-add on the same port", err)
	}
	if n := len(resp.(*kmsg.MetadataResponse).Brokers); n != 2 {
		t.Errorf("the removed broker's metadata lists %d brokers, want the 2 left", n)
	}
	roundTrip("after removal")

	if _, _, err := c.AddNode(0, 0); err != nil { // a new port
		t.Fatal(err)
	}
	if err := c.MoveTopicPartition("t", 0, 0); err != nil {
		t.Fatal(err)
	}
	roundTrip("after re-adding on a new port")
	if c.LeaderFor("t", 0) != 0 {
		t.Errorf("partition led by %d, want the re-added broker 0", c.LeaderFor("t", 0))
	}
}
