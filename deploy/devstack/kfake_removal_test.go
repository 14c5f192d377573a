package main

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// TestKfakeKeepsMemberKilledInJoin documents the kfake behaviour behind
// the chaos test's wait for a settled group before it kills a consumer,
// without strait. A member whose JoinGroup waits in the join barrier and
// whose connection closes before the barrier completes may never be
// expired: kfake arms a member's session timeout when its JoinGroup answer
// is written, and that write may find the connection gone; the barrier's
// own timeout for members that never sync is dropped as soon as the leader
// syncs. The group then stays stable with the dead member, and the
// partitions assigned to it are read by nobody. (Whether the answer's write
// notices the closed connection is a race inside kfake, hence the
// attempts.) Real Kafka arms every member's session timeout when a join
// completes. If this test fails, kfake expires such members now.
func TestKfakeKeepsMemberKilledInJoin(t *testing.T) {
	for attempt := 1; ; attempt++ {
		if stuck := memberKilledInJoin(t); stuck {
			t.Logf("attempt %d: the member killed in the join barrier stayed in the group, holding its partition", attempt)
			return
		}
		if attempt == 12 {
			t.Fatal("in 12 attempts kfake always expired the member killed in the join barrier: the chaos test's wait for a settled group may go")
		}
	}
}

// memberKilledInJoin runs the scenario once: a live consumer a reads the
// two partitions of t; member b joins by hand, and its connection closes
// while its JoinGroup waits for a's. It reports whether b is still a member
// holding a partition well after its session timeout.
func memberKilledInJoin(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testenv.StartKafka(kfake.SeedTopics(2, "t"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const session = time.Second
	a, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.Balancers(kgo.RoundRobinBalancer()), kgo.SessionTimeout(session), kgo.RebalanceTimeout(session), kgo.HeartbeatInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	go func() {
		for ctx.Err() == nil && !a.PollFetches(ctx).IsClientClosed() {
		}
	}()
	adm := kadm.NewClient(a)
	group := func() kadm.DescribedGroup {
		gs, err := adm.DescribeGroups(ctx, "g")
		if err != nil {
			return kadm.DescribedGroup{}
		}
		return gs["g"]
	}
	waitFor := func(what string, ok func(kadm.DescribedGroup) bool) {
		t.Helper()
		for !ok(group()) {
			if ctx.Err() != nil {
				t.Fatalf("group never %s: %+v", what, group())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("stable with a", func(g kadm.DescribedGroup) bool { return g.State == "Stable" && len(g.Members) == 1 })
	aID := group().Members[0].MemberID

	// a's rejoin waits until b's connection is closed.
	bClosed := make(chan struct{})
	c.ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if req.(*kmsg.JoinGroupRequest).MemberID == aID {
			c.SleepControl(func() { <-bClosed })
		}
		return nil, nil, false
	})
	b, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "g", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = int32(session.Milliseconds()), int32(session.Milliseconds())
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name, proto.Metadata = "roundrobin", meta.AppendTo(nil)
	join.Protocols = append(join.Protocols, proto)
	resp, err := join.RequestWith(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	join.MemberID = resp.MemberID // MEMBER_ID_REQUIRED: join again with it
	go join.RequestWith(ctx, b)   // waits in the barrier for a
	waitFor("joined by b", func(g kadm.DescribedGroup) bool { return len(g.Members) == 2 })
	b.Close()
	close(bClosed)

	// b is in the new generation, with a partition (unless kfake dropped
	// it already). It never heartbeats: within a few session timeouts a
	// correct coordinator removes it, and a holds both partitions again.
	bHolds := func(g kadm.DescribedGroup) bool {
		i := slices.IndexFunc(g.Members, func(m kadm.DescribedGroupMember) bool { return m.MemberID == join.MemberID })
		if i < 0 {
			return false
		}
		c, ok := g.Members[i].Assigned.AsConsumer()
		return ok && len(c.Topics) > 0
	}
	waitFor("rebalanced", func(g kadm.DescribedGroup) bool { return g.State == "Stable" && (bHolds(g) || len(g.Members) == 1) })
	deadline := time.Now().Add(4 * session)
	for time.Now().Before(deadline) {
		if !bHolds(group()) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
