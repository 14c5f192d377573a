package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// source is the users and orders tables as the source holds them, changed
// only through the publisher, so that it is what BigQuery must end up
// holding.
type source struct {
	pub    *publisher
	users  map[int64][]cdc.Value
	orders map[int64]bool // tenant "t"
}

func newSource(pub *publisher) *source {
	return &source{pub: pub, users: map[int64][]cdc.Value{}, orders: map[int64]bool{}}
}

// insertUsers inserts users from..to, txn rows per source transaction.
func (s *source) insertUsers(ctx context.Context, from, to, txn int64) {
	for lo := from; lo <= to; lo += txn {
		var evs []cdc.Event
		for id := lo; id <= min(lo+txn-1, to); id++ {
			row := user(id, fmt.Sprintf("u%d@x", id), fmt.Sprintf("%d.00", id))
			s.users[id] = row
			evs = append(evs, ins(users, row...))
		}
		s.pub.publish(ctx, evs...)
	}
}

// updateUsers sets a new email on every live user with an id in [from, to].
func (s *source) updateUsers(ctx context.Context, from, to int64, tag string) {
	var evs []cdc.Event
	for id := from; id <= to; id++ {
		if old := s.users[id]; old != nil {
			row := user(id, fmt.Sprintf("u%d-%s@x", id, tag), old[2].Str)
			evs = append(evs, upd(users, old, row))
			s.users[id] = row
		}
	}
	s.pub.publish(ctx, evs...)
}

// deleteUsers deletes the users with an id in [from, to].
func (s *source) deleteUsers(ctx context.Context, from, to int64) {
	var evs []cdc.Event
	for id := from; id <= to; id++ {
		if old := s.users[id]; old != nil {
			evs = append(evs, del(users, old...))
			delete(s.users, id)
		}
	}
	s.pub.publish(ctx, evs...)
}

// insertOrders inserts orders from..to in one transaction.
func (s *source) insertOrders(ctx context.Context, from, to int64) {
	var evs []cdc.Event
	for id := from; id <= to; id++ {
		s.orders[id] = true
		evs = append(evs, ins(orders, cdc.Str("t"), cdc.Int(id), cdc.Null))
	}
	s.pub.publish(ctx, evs...)
}

// deleteOrders deletes orders from..to in one transaction.
func (s *source) deleteOrders(ctx context.Context, from, to int64) {
	var evs []cdc.Event
	for id := from; id <= to; id++ {
		if s.orders[id] {
			evs = append(evs, del(orders, cdc.Str("t"), cdc.Int(id), cdc.Null))
			delete(s.orders, id)
		}
	}
	s.pub.publish(ctx, evs...)
}

// waitState waits until BigQuery holds the source's state in dataset.
func (s *source) waitState(t *testing.T, ctx context.Context, dataset string) {
	t.Helper()
	var ids []int64
	for id := range s.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	wantUsers := []map[string]any{}
	for _, id := range ids {
		r := s.users[id]
		wantUsers = append(wantUsers, userRow(id, r[1].Str, r[2].Str))
	}
	ids = ids[:0]
	for id := range s.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	wantOrders := []map[string]any{}
	for _, id := range ids {
		wantOrders = append(wantOrders, map[string]any{"tenant": "t", "id": id, "at": nil})
	}
	waitRows(t, ctx, dataset, "shop_users", wantUsers)
	waitRows(t, ctx, dataset, "shop_orders", wantOrders)
}

// healBigQuery ends injected append failures, now and when the test ends.
func healBigQuery(t *testing.T) {
	env.bq.FailAppends(codes.OK, 0)
	t.Cleanup(func() { env.bq.FailAppends(codes.OK, 0) })
}

// waitGroup waits until cond holds for the group's description.
func waitGroup(t *testing.T, ctx context.Context, group, what string, cond func(kadm.DescribedGroup) bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last kadm.DescribedGroup
	for {
		gs, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			if last = gs[group]; last.Err == nil && cond(last) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s: not %s at the deadline: state %s, %d members", group, what, last.State, len(last.Members))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// assigned returns how many partitions each member of g is assigned.
func assigned(g kadm.DescribedGroup) []int {
	var out []int
	for _, m := range g.Members {
		n := 0
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				n += len(t.Partitions)
			}
		}
		out = append(out, n)
	}
	return out
}

// TestRebalanceMidBatch: a second consumer joins the group while the first
// is in the middle of a batch (BigQuery keeps failing its appends), the two
// split the partitions, then the first leaves in the middle of another
// batch, which it cannot finish; the one left takes every partition over.
// BigQuery ends with the source state and every offset is committed.
func TestRebalanceMidBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const prefix, group, dataset = "rebal", "g", "ds_rebal"
	topics := []string{prefix + ".shop.users", prefix + ".shop.orders"}
	src := newSource(newPublisher(t, prefix))
	src.insertUsers(ctx, 1, 300, 50)
	src.insertOrders(ctx, 1, 60)
	args := append(consumerArgs(prefix, group, dataset), "-bigquery.retry_max_backoff", "100ms", "-shutdown_timeout", "1s")

	healBigQuery(t)
	env.bq.FailAppends(codes.Unavailable, 1<<30)
	a := startConsumer(t, args)
	waitLog(t, ctx, a, regexpQuote("append failed, retrying"))
	// a is in its batch and cannot finish it: its lag is what it polled.
	if lag := scrape(t, a).value("strait_consumer_lag_records"); lag <= 0 {
		t.Errorf("strait_consumer_lag_records of a stuck consumer: %v in all, want more than 0", lag)
	}

	b := startConsumer(t, args)
	waitGroup(t, ctx, group, "joined by the second consumer", func(g kadm.DescribedGroup) bool {
		return len(g.Members) == 2 || g.State == "PreparingRebalance" || g.State == "CompletingRebalance"
	})
	src.updateUsers(ctx, 1, 100, "v2")
	src.deleteUsers(ctx, 201, 250)
	src.deleteOrders(ctx, 1, 10)
	env.bq.FailAppends(codes.OK, 0)

	waitGroup(t, ctx, group, "split between two consumers", func(g kadm.DescribedGroup) bool {
		n := assigned(g)
		return len(n) == 2 && n[0] > 0 && n[1] > 0 && n[0]+n[1] == 6
	})
	src.updateUsers(ctx, 1, 300, "v3")
	src.waitState(t, ctx, dataset)
	waitCommitted(t, ctx, group, topics...)

	// a leaves in the middle of a batch it cannot finish.
	env.bq.FailAppends(codes.Unavailable, 1<<30)
	before := countLog(a, "append failed, retrying")
	src.updateUsers(ctx, 1, 300, "v4")
	src.insertOrders(ctx, 61, 90)
	for countLog(a, "append failed, retrying") == before {
		select {
		case <-ctx.Done():
			t.Fatal("the first consumer got no new batch")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := a.stop(); err != nil {
		t.Fatalf("first consumer: %v", err)
	}
	if !strings.Contains(a.logs.String(), "changes not applied") {
		t.Error("the first consumer left after finishing its batch, want it to leave in the middle")
	}
	env.bq.FailAppends(codes.OK, 0)
	waitGroup(t, ctx, group, "left to the second consumer", func(g kadm.DescribedGroup) bool {
		n := assigned(g)
		return len(n) == 1 && n[0] == 6
	})
	src.deleteUsers(ctx, 1, 20)
	src.waitState(t, ctx, dataset)
	waitCommitted(t, ctx, group, topics...)
	// Leaving mid-batch is no failure of the table: its changes are
	// simply not committed.
	if strings.Contains(a.logs.String(), "table stopped") || strings.Contains(b.logs.String(), "table stopped") {
		t.Error("a table stopped during the rebalances")
	}
}

// TestRebalanceWithPollsInFlight: a consumer has polls in flight, held by
// BigQuery refusing appends, with changes of every partition, when a
// second one joins the group. The rebalance waits while the first finishes
// and commits every poll in flight, so no change is applied twice: the
// rows the two consumers applied add up to the changes published, and
// BigQuery holds the source state.
func TestRebalanceWithPollsInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const prefix, group, dataset = "pipe", "g", "ds_pipe"
	topics := []string{prefix + ".shop.users", prefix + ".shop.orders"}
	src := newSource(newPublisher(t, prefix))
	src.insertUsers(ctx, 1, 300, 10)
	src.insertOrders(ctx, 1, 60)
	args := append(consumerArgs(prefix, group, dataset), "-bigquery.retry_max_backoff", "100ms", "-max_polls_in_flight", "4")

	healBigQuery(t)
	env.bq.FailAppends(codes.Unavailable, 1<<30)
	a := startConsumer(t, args)
	waitLog(t, ctx, a, regexpQuote("append failed, retrying"))
	src.updateUsers(ctx, 1, 300, "v2")
	src.insertOrders(ctx, 61, 90)
	for scrape(t, a).value("strait_consumer_polls_in_flight") < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("the first consumer never had 2 polls in flight")
		case <-time.After(20 * time.Millisecond):
		}
	}

	b := startConsumer(t, args)
	waitLog(t, ctx, a, regexpQuote("partitions leaving: finishing the polls in flight first"))
	// Had a let the partitions go, b would read their changes from the
	// old committed offsets and apply them a second time.
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if n := assigned(gs[group]); len(n) == 2 && n[0] > 0 && n[1] > 0 {
		t.Fatalf("partitions per member %v while the first consumer still holds polls in flight, want none moved yet", n)
	}
	env.bq.FailAppends(codes.OK, 0)
	waitGroup(t, ctx, group, "split between two consumers", func(g kadm.DescribedGroup) bool {
		n := assigned(g)
		return len(n) == 2 && n[0] > 0 && n[1] > 0 && n[0]+n[1] == 6
	})
	src.deleteUsers(ctx, 1, 20)
	src.waitState(t, ctx, dataset)
	waitCommitted(t, ctx, group, topics...)

	const published = 300 + 60 + 300 + 30 + 20
	if got := scrape(t, a).value("strait_consumer_rows_applied_total") + scrape(t, b).value("strait_consumer_rows_applied_total"); got != published {
		t.Errorf("rows applied by the two consumers: %v, want %d (each change once)", got, published)
	}
}

// TestBigQueryOutage: BigQuery refuses appends with RESOURCE_EXHAUSTED (over
// quota), then with UNAVAILABLE, while a backlog waits; the consumer backs
// off and retries, then drains the backlog to the source state, commits
// everything, and shows it in its metrics: retries counted, rows applied,
// no lag; /healthz and /readyz answer.
func TestBigQueryOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const prefix, group, dataset = "outage", "g", "ds_outage"
	topics := []string{prefix + ".shop.users", prefix + ".shop.orders"}
	src := newSource(newPublisher(t, prefix))
	src.insertUsers(ctx, 1, 200, 50)
	src.insertOrders(ctx, 1, 40)

	healBigQuery(t)
	const exhausted, unavailable = 10, 6
	start := env.bq.Appends()
	env.bq.FailAppends(codes.ResourceExhausted, exhausted)
	c := startConsumer(t, append(consumerArgs(prefix, group, dataset), "-bigquery.retry_max_backoff", "200ms"))
	src.updateUsers(ctx, 1, 200, "v2")
	waitAppends(t, ctx, start+exhausted)
	start = env.bq.Appends()
	env.bq.FailAppends(codes.Unavailable, unavailable)
	src.deleteUsers(ctx, 101, 150)
	src.insertOrders(ctx, 41, 80)
	waitAppends(t, ctx, start+unavailable)

	src.waitState(t, ctx, dataset)
	waitCommitted(t, ctx, group, topics...)

	m := scrape(t, c)
	// 10 refusals on at most two tables, each retried by the consumer's
	// own backoff (managedwriter's retries are off).
	if v := m.value("strait_consumer_bigquery_errors_total", "kind", "append"); v < 1 {
		t.Errorf("strait_consumer_bigquery_errors_total{kind=append} = %v, want retries counted", v)
	}
	if v, want := m.value("strait_consumer_rows_applied_total"), float64(200+40+200+50+40); v < want {
		t.Errorf("strait_consumer_rows_applied_total = %v, want at least %v", v, want)
	}
	for {
		m = scrape(t, c)
		if n, lag := m.count("strait_consumer_lag_records"), m.value("strait_consumer_lag_records"); n == 6 && lag == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("strait_consumer_lag_records at the deadline: %d series, %v in all; want 6 series, 0", m.count("strait_consumer_lag_records"), m.value("strait_consumer_lag_records"))
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + httpAddr(t, c) + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s, want 200", path, resp.Status)
		}
	}
}

// waitAppends waits until the endpoint has received n AppendRows requests.
func waitAppends(t *testing.T, ctx context.Context, n int64) {
	t.Helper()
	for env.bq.Appends() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d appends at the deadline, want %d", env.bq.Appends(), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
