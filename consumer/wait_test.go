package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	gbq "cloud.google.com/go/bigquery"
	"google.golang.org/grpc/codes"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// newBigQuery starts a BigQuery of the test's own, with opts.
func newBigQuery(t *testing.T, opts ...bqfake.Opt) *bqfake.Server {
	t.Helper()
	srv, err := bqfake.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// waitLogged waits until the consumer has logged s.
func waitLogged(t *testing.T, ctx context.Context, c *consumerProc, s string) {
	t.Helper()
	waitLog(t, ctx, c, regexp.MustCompile(regexp.QuoteMeta(s)))
}

// publishAt sends ev as one source transaction at position seq with
// commit time at, whatever the publisher sent before: a change produced
// again.
func (p *publisher) publishAt(ctx context.Context, seq uint64, at time.Time, ev cdc.Event) {
	p.t.Helper()
	ev.Position = cdc.Position{Epoch: 1, File: 1, Pos: 100 * seq}
	ev.Source = cdc.Source{File: "binlog.000001", Pos: 100 * seq}
	ev.CommitTime = at
	if err := p.w.Publish(ctx, []cdc.Event{ev}); err != nil {
		p.t.Fatal(err)
	}
	if err := p.w.Commit(ctx, checkpointAt(p.t, 100*seq)); err != nil {
		p.t.Fatal(err)
	}
}

// TestTableWaitsForNewColumns: a new column the Write API does not see yet
// (bqfake's schema delay, at its real length on a clock the test moves)
// makes its table wait, not stop: the other tables keep flowing, and once
// the delay is over the change lands without a restart.
func TestTableWaitsForNewColumns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := bqfake.NewClock(time.Now())
	bq := newBigQuery(t, bqfake.WithClock(clock))
	const prefix = "waitcol"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	c := startConsumer(t, consumerArgsOn(bq, prefix, "g", "ds"))
	waitRowsOn(t, ctx, bq, "ds", "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})

	grown := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: append(append([]cdc.Column{}, users.Columns...),
		cdc.Column{Name: "note", Type: cdc.TypeString, Nullable: true})}
	pub.publish(ctx, ins(grown, cdc.Int(2), cdc.Str("b@x"), cdc.Str("2.00"), cdc.Str("new")))
	waitLogged(t, ctx, c, "reason=schema_not_visible")
	pub.publish(ctx, ins(orders, cdc.Str("t"), cdc.Int(1), cdc.Null))
	waitRowsOn(t, ctx, bq, "ds", "shop_orders", []map[string]any{{"tenant": "t", "id": int64(1), "at": nil}})
	if rows, _ := bq.Rows(project, "ds", "shop_users"); len(rows) != 1 {
		t.Fatalf("within the schema delay: %d users, want 1", len(rows))
	}
	m := scrape(t, c)
	if got := m.value("strait_consumer_table_waiting", "table", "shop_users"); got != 1 {
		t.Errorf("table_waiting{shop_users} = %v, want 1", got)
	}
	if got := m.value("strait_consumer_table_retries_total", "table", "shop_users", "reason", "schema_not_visible"); got < 1 {
		t.Errorf("table_retries_total{shop_users,schema_not_visible} = %v, want at least 1", got)
	}
	if got := m.value("strait_consumer_oldest_unapplied_seconds", "table", "shop_users"); got <= 0 {
		t.Errorf("oldest_unapplied_seconds{shop_users} = %v, want more than 0", got)
	}

	clock.Advance(bqfake.DefaultSchemaDelay)
	waitRowsOn(t, ctx, bq, "ds", "shop_users", []map[string]any{
		{"id": int64(1), "email": "a@x", "balance": rat("1.00"), "note": nil},
		{"id": int64(2), "email": "b@x", "balance": rat("2.00"), "note": "new"},
	})
	waitLogged(t, ctx, c, "table goes on")
	if strings.Contains(c.logs.String(), "table stopped") {
		t.Errorf("a table stopped:\n%s", c.logs.String())
	}
	m = scrape(t, c)
	if got := m.value("strait_consumer_table_waiting", "table", "shop_users"); got != 0 {
		t.Errorf("after the wait: table_waiting{shop_users} = %v, want 0", got)
	}
	if got := m.value("strait_consumer_oldest_unapplied_seconds", "table", "shop_users"); got != 0 {
		t.Errorf("after the wait: oldest_unapplied_seconds{shop_users} = %v, want 0", got)
	}
}

// TestRebuiltTableWaits follows the README's rebuild: stop the consumer,
// drop the table, reset the group to the earliest offsets, start again.
// The table is created again and its default stream answers NOT_FOUND for
// a while (bqfake's re-create window): the table waits, then fills.
func TestRebuiltTableWaits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := bqfake.NewClock(time.Now())
	bq := newBigQuery(t, bqfake.WithClock(clock))
	const prefix = "rebuild"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...), ins(users, user(2, "b@x", "2.00")...))
	want := []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")}
	first := startConsumer(t, consumerArgsOn(bq, prefix, "g", "ds"))
	waitRowsOn(t, ctx, bq, "ds", "shop_users", want)
	waitCommitted(t, ctx, "g", prefix+".shop.users")
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	admin, err := gbq.NewClient(ctx, project, bq.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Dataset("ds").Table("shop_users").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	mustReset(t, ctx, prefix, "g", "-to-earliest", "-topics", "shop.users")
	second := startConsumer(t, consumerArgsOn(bq, prefix, "g", "ds"))
	waitLogged(t, ctx, second, "reason=table_not_found")
	if rows, err := bq.Rows(project, "ds", "shop_users"); err != nil || len(rows) != 0 {
		t.Fatalf("within the re-create window: rows %v (%v), want an empty table", rows, err)
	}
	clock.Advance(bqfake.DefaultRecreateDelay)
	waitRowsOn(t, ctx, bq, "ds", "shop_users", want)
	if strings.Contains(second.logs.String(), "table stopped") {
		t.Errorf("a table stopped:\n%s", second.logs.String())
	}
}

// TestStoppedTableRetried: a table stopped by BigQuery errors (permission
// denied, as while an IAM grant propagates) is tried again after a backoff
// and fills without a restart.
func TestStoppedTableRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bq := newBigQuery(t, bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0))
	bq.FailAppends(codes.PermissionDenied, 3)
	const prefix = "stopretry"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	args := append(consumerArgsOn(bq, prefix, "g", "ds"), "-stopped_retry_backoff", "100ms", "-stopped_retry_max_backoff", "400ms")
	c := startConsumer(t, args)
	waitRowsOn(t, ctx, bq, "ds", "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})
	waitLogged(t, ctx, c, "table goes on")
	if n := countLog(c, "tried again after the backoff"); n != 3 {
		t.Errorf("stops = %d, want 3:\n%s", n, c.logs.String())
	}
	m := scrape(t, c)
	if got := m.value("strait_consumer_table_retries_total", "table", "shop_users", "reason", "stopped"); got != 3 {
		t.Errorf("table_retries_total{shop_users,stopped} = %v, want 3", got)
	}
	if got := m.value("strait_consumer_tables_stopped"); got != 0 {
		t.Errorf("tables_stopped = %v, want 0", got)
	}
}

// TestReappliedChangeBeyondDeleteWindow: BigQuery forgets a delete after
// two days (bqfake's delete retention, on a clock the test moves), so an
// old upsert produced again (a dead letter re-applied, a partial replay)
// brings the deleted row back; the consumer warns about such changes.
func TestReappliedChangeBeyondDeleteWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := bqfake.NewClock(time.Now())
	bq := newBigQuery(t, bqfake.WithClock(clock), bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0))
	const prefix = "deletewindow"
	pub := newPublisher(t, prefix)
	insert := ins(users, user(1, "a@x", "1.00")...)
	pub.publishAt(ctx, 1, time.Now(), insert)
	pub.publishAt(ctx, 2, time.Now(), del(users, user(1, "a@x", "1.00")...))
	c := startConsumer(t, consumerArgsOn(bq, prefix, "g", "ds"))
	waitCommitted(t, ctx, "g", prefix+".shop.users")
	waitRowsOn(t, ctx, bq, "ds", "shop_users", []map[string]any{})
	if strings.Contains(c.logs.String(), "older than the delete window") {
		t.Fatalf("warned about recent changes:\n%s", c.logs.String())
	}

	clock.Advance(bqfake.DefaultDeleteRetention)
	// The insert again, as it was produced three days ago.
	pub.publishAt(ctx, 1, time.Now().Add(-72*time.Hour), ins(users, user(1, "a@x", "1.00")...))
	waitRowsOn(t, ctx, bq, "ds", "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})
	waitLogged(t, ctx, c, "older than the delete window")
}

// TestManyTablesWithinConnectionQuota: 40 tables through one consumer
// share bigquery.write_connections connections, within a project quota
// (bqfake's, set to 10) that one connection per table would exceed; once
// the tables are idle their streams close and every connection is given
// back.
func TestManyTablesWithinConnectionQuota(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bq := newBigQuery(t, bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0), bqfake.WithMaxConnections(10))
	const prefix = "manytables"
	pub := newPublisher(t, prefix)
	var tables []*cdc.Table
	for i := range 40 {
		tb := &cdc.Table{Database: "many", Name: fmt.Sprintf("t%02d", i), PrimaryKey: []int{0}, Columns: users.Columns}
		tables = append(tables, tb)
		pub.publish(ctx, ins(tb, user(int64(i), "a@x", "1.00")...))
	}
	const conns = 4
	args := append(consumerArgsOn(bq, prefix, "g", "ds"), "-bigquery.write_connections", fmt.Sprint(conns), "-bigquery.stream_idle_timeout", "300ms")
	c := startConsumer(t, args)
	for i, tb := range tables {
		waitRowsOn(t, ctx, bq, "ds", "many_"+tb.Name, []map[string]any{userRow(int64(i), "a@x", "1.00")})
	}
	if got := bq.PeakConnections(); got > conns {
		t.Errorf("peak connections = %d, want at most %d", got, conns)
	}
	for bq.Connections() > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("idle tables still hold %d connections", bq.Connections())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if got := scrape(t, c).value("strait_consumer_bigquery_connections"); got != 0 {
		t.Errorf("strait_consumer_bigquery_connections = %v once idle, want 0", got)
	}
}
