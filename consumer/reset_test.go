package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// command runs a consumer command to its end with the flags of `consumer
// run` for the shared environment (one configuration serves every
// command) followed by extra, and returns its stdout.
func command(t *testing.T, ctx context.Context, name, prefix, group string, extra ...string) (string, error) {
	t.Helper()
	args := append(append([]string{name}, consumerArgs(prefix, group, "unused")[1:]...), extra...)
	var out, errOut bytes.Buffer
	err := run(ctx, args, func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Logf("consumer %s: stderr:\n%s", name, errOut.String())
	}
	return out.String(), err
}

// mustReset runs `consumer reset` and fails the test on an error.
func mustReset(t *testing.T, ctx context.Context, prefix, group string, extra ...string) string {
	t.Helper()
	out, err := command(t, ctx, "reset", prefix, group, extra...)
	if err != nil {
		t.Fatalf("consumer reset %v: %v", extra, err)
	}
	return out
}

// admin returns a kadm client of the shared Kafka, closed at the end of
// the test.
func admin(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// offsets is committed or listed offsets as topic/partition → offset.
type offsets map[string]int64

func committedOffsets(t *testing.T, ctx context.Context, group string) offsets {
	t.Helper()
	res, err := admin(t).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := offsets{}
	res.Each(func(o kadm.OffsetResponse) { out[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.At })
	return out
}

func listed(t *testing.T, l kadm.ListedOffsets, err error) offsets {
	t.Helper()
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	out := offsets{}
	l.Each(func(o kadm.ListedOffset) { out[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.Offset })
	return out
}

// dropTable deletes a BigQuery table through the REST API, as `bq rm` does.
func dropTable(t *testing.T, ctx context.Context, dataset, table string) {
	t.Helper()
	url := fmt.Sprintf("%sprojects/%s/datasets/%s/tables/%s", env.bq.RESTURL(), project, dataset, table)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete %s.%s: %s", dataset, table, resp.Status)
	}
	if _, err := env.bq.Rows(project, dataset, table); err == nil {
		t.Fatalf("%s.%s still exists after the delete", dataset, table)
	}
}

// publishUsers publishes the changes of TestConsume to users and returns
// the state they leave.
func publishUsers(ctx context.Context, pub *publisher) []map[string]any {
	pub.publish(ctx, ins(users, user(1, "a@x", "10.00")...), ins(users, user(2, "b@x", "20.50")...), ins(users, user(3, "c@x", "-0.01")...))
	pub.publish(ctx, upd(users, user(1, "a@x", "10.00"), user(1, "a2@x", "11.00")), del(users, user(2, "b@x", "20.50")...))
	pub.publish(ctx, del(users, user(3, "c@x", "-0.01")...), ins(users, user(4, "c@x", "-0.01")...))
	return []map[string]any{userRow(1, "a2@x", "11.00"), userRow(4, "c@x", "-0.01")}
}

// TestResetReplay: after a reset to the earliest offsets, a rerun applies
// every change again and leaves the BigQuery state unchanged; after the
// table is dropped, a reset and a rerun rebuild it from the topics.
func TestResetReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const prefix, group, ds = "replay", "replay-g", "replay_ds"
	topic := prefix + ".shop.users"
	want := publishUsers(ctx, newPublisher(t, prefix))

	c := startConsumer(t, consumerArgs(prefix, group, ds))
	waitRows(t, ctx, ds, "shop_users", want)
	waitCommitted(t, ctx, group, topic)
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	ends := committedOffsets(t, ctx, group)

	out := mustReset(t, ctx, prefix, group, "-to-earliest")
	l, err := admin(t).ListStartOffsets(ctx, topic)
	starts := listed(t, l, err)
	if diff := cmp.Diff(committedOffsets(t, ctx, group), starts); diff != "" {
		t.Fatalf("committed after reset -to-earliest (-got +want):\n%s\noutput:\n%s", diff, out)
	}
	for p, end := range ends {
		if line := fmt.Sprintf("%s: %d → %d\n", p, end, starts[p]); !strings.Contains(out, line) {
			t.Errorf("reset output lacks %q:\n%s", line, out)
		}
	}

	// The rerun applies every change again: same state.
	appends := env.bq.Appends()
	c = startConsumer(t, consumerArgs(prefix, group, ds))
	waitCommitted(t, ctx, group, topic)
	if env.bq.Appends() == appends {
		t.Fatal("the rerun appended nothing: the changes were not re-applied")
	}
	waitRows(t, ctx, ds, "shop_users", want)
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}

	// A dropped table is rebuilt from the topics.
	dropTable(t, ctx, ds, "shop_users")
	mustReset(t, ctx, prefix, group, "-to-earliest")
	startConsumer(t, consumerArgs(prefix, group, ds))
	waitRows(t, ctx, ds, "shop_users", want)
	waitCommitted(t, ctx, group, topic)
}

// TestResetToTimeAndOffsets: a reset to a time sets each partition to its
// first record at or after that time, explicit offsets set exactly the
// partitions named, and a dry run commits nothing.
func TestResetToTimeAndOffsets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group = "resettime", "resettime-g"
	topic := prefix + ".shop.users"
	pub := newPublisher(t, prefix)
	var batch []cdc.Event
	for id := range int64(12) {
		batch = append(batch, ins(users, user(id, "a@x", "1.00")...))
	}
	pub.publish(ctx, batch...)
	l, err := admin(t).ListEndOffsets(ctx, topic)
	afterFirst := listed(t, l, err)
	// at is a millisecond after every record and transaction marker
	// written so far and before every record written next.
	at := nextMilli(time.Now())
	nextMilli(at)
	pub.publish(ctx, batch...)

	// A group that never ran: no member, no offsets.
	out := mustReset(t, ctx, prefix, group, "-to-time", at.Format(time.RFC3339Nano))
	if diff := cmp.Diff(committedOffsets(t, ctx, group), afterFirst); diff != "" {
		t.Fatalf("committed after -to-time (-got +want):\n%s\noutput:\n%s", diff, out)
	}
	if !strings.Contains(out, topic+"/0: none → ") {
		t.Errorf("output does not show a partition without an earlier commit as none:\n%s", out)
	}

	want := committedOffsets(t, ctx, group)
	want[topic+"/0"], want[topic+"/2"] = 1, 0
	mustReset(t, ctx, prefix, group, "-to-offsets", "shop.users:0=1,"+topic+":2=0")
	if diff := cmp.Diff(committedOffsets(t, ctx, group), want); diff != "" {
		t.Fatalf("committed after -to-offsets (-got +want):\n%s", diff)
	}

	out = mustReset(t, ctx, prefix, group, "-to-earliest", "-dry-run")
	if diff := cmp.Diff(committedOffsets(t, ctx, group), want); diff != "" {
		t.Errorf("a dry run changed the committed offsets (-got +want):\n%s", diff)
	}
	if !strings.Contains(out, topic+"/0: 1 → 0") || !strings.Contains(out, "dry run") {
		t.Errorf("dry run output:\n%s", out)
	}

	for _, bad := range [][]string{
		{"-to-offsets", "shop.users:0=100000"},
		{"-to-offsets", "shop.nothing:0=0"},
		{"-to-earliest", "-topics", "shop.nothing"},
		{"-to-earliest", "-to-time", "1h"},
		{},
	} {
		if _, err := command(t, ctx, "reset", prefix, group, bad...); err == nil {
			t.Errorf("reset %v: no error", bad)
		}
	}
	if diff := cmp.Diff(committedOffsets(t, ctx, group), want); diff != "" {
		t.Errorf("a refused reset changed the committed offsets (-got +want):\n%s", diff)
	}
}

// TestResetRefusesLiveGroup: while a member runs, reset refuses, naming
// the group, and the committed offsets stay.
func TestResetRefusesLiveGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, ds = "refuse", "refuse-g", "refuse_ds"
	want := publishUsers(ctx, newPublisher(t, prefix))
	startConsumer(t, consumerArgs(prefix, group, ds))
	waitRows(t, ctx, ds, "shop_users", want)
	waitCommitted(t, ctx, group, prefix+".shop.users")
	before := committedOffsets(t, ctx, group)

	_, err := command(t, ctx, "reset", prefix, group, "-to-earliest")
	var active *kafka.GroupActiveError
	if !errors.As(err, &active) || !strings.Contains(err.Error(), "group refuse-g has 1 live member") {
		t.Fatalf("reset of a running group: %v, want a refusal naming its live member", err)
	}
	if diff := cmp.Diff(committedOffsets(t, ctx, group), before); diff != "" {
		t.Errorf("a refused reset changed the committed offsets (-got +want):\n%s", diff)
	}
}

// TestFanOut: two groups with different datasets read the same topics
// independently and reach the same state; resetting one leaves the other's
// offsets alone.
func TestFanOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "fanout"
	topic := prefix + ".shop.users"
	pub := newPublisher(t, prefix)
	want := publishUsers(ctx, pub)
	a := startConsumer(t, consumerArgs(prefix, "fanout-a", "fan_a"))
	startConsumer(t, consumerArgs(prefix, "fanout-b", "fan_b"))
	waitRows(t, ctx, "fan_a", "shop_users", want)
	waitRows(t, ctx, "fan_b", "shop_users", want)

	pub.publish(ctx, ins(users, user(5, "e@x", "5.00")...))
	want = append(want, userRow(5, "e@x", "5.00"))
	waitRows(t, ctx, "fan_a", "shop_users", want)
	waitRows(t, ctx, "fan_b", "shop_users", want)
	waitCommitted(t, ctx, "fanout-a", topic)
	waitCommitted(t, ctx, "fanout-b", topic)

	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	b := committedOffsets(t, ctx, "fanout-b")
	mustReset(t, ctx, prefix, "fanout-a", "-to-earliest")
	if diff := cmp.Diff(committedOffsets(t, ctx, "fanout-b"), b); diff != "" {
		t.Errorf("resetting group a moved group b (-got +want):\n%s", diff)
	}
}

// nextMilli waits until the clock is in a later millisecond than t and
// returns the time then.
func nextMilli(t time.Time) time.Time {
	for {
		now := time.Now()
		if now.UnixMilli() > t.UnixMilli() {
			return now
		}
		runtime.Gosched() // the clock is the condition: at most a millisecond
	}
}

// TestCommandHelp: reset and tail list their own flags and the
// configuration keys they share with run.
func TestCommandHelp(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"reset": {"-to-earliest", "-to-time", "-to-offsets", "-topics", "-dry-run", "-kafka.group_id", "STRAIT_KAFKA_BROKERS"},
		"tail":  {"-from-beginning", "-topics", "-n", "-kafka.schema_registry_url"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{cmd, "-h"}, func(string) string { return "" }, &out, &errOut); err != nil {
			t.Errorf("%s -h: %v", cmd, err)
		}
		for _, f := range flags {
			if !strings.Contains(errOut.String(), f) {
				t.Errorf("%s -h does not mention %s:\n%s", cmd, f, errOut.String())
			}
		}
	}
	// Without kafka.brokers the commands name the key; BigQuery keys are
	// not required.
	err := run(context.Background(), []string{"tail"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "kafka.brokers: required") || strings.Contains(err.Error(), "bigquery") {
		t.Errorf("tail without configuration: %v", err)
	}
}

// TestResetDryRunLiveGroup: a dry run changes nothing, so it runs while a
// member of the group does (before, it was refused): it prints each
// partition's committed offset and target and says that the group is
// active, so a real reset needs it stopped. The committed offsets stay,
// and a real reset is still refused.
func TestResetDryRunLiveGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, ds = "dryrun", "dryrun-g", "dryrun_ds"
	topic := prefix + ".shop.users"
	want := publishUsers(ctx, newPublisher(t, prefix))
	startConsumer(t, consumerArgs(prefix, group, ds))
	waitRows(t, ctx, ds, "shop_users", want)
	waitCommitted(t, ctx, group, topic)
	before := committedOffsets(t, ctx, group)
	l, err := admin(t).ListStartOffsets(ctx, topic)
	starts := listed(t, l, err)

	out, err := command(t, ctx, "reset", prefix, group, "-to-earliest", "-dry-run")
	if err != nil {
		t.Fatalf("reset -dry-run of a running group: %v", err)
	}
	for p, at := range before {
		if line := fmt.Sprintf("%s: %d → %d\n", p, at, starts[p]); !strings.Contains(out, line) {
			t.Errorf("dry run output lacks %q:\n%s", line, out)
		}
	}
	if !strings.Contains(out, "dry run") || !strings.Contains(out, "1 live member") || !strings.Contains(out, "stop") {
		t.Errorf("dry run output does not say the group is active and must be stopped for a real reset:\n%s", out)
	}
	if diff := cmp.Diff(committedOffsets(t, ctx, group), before); diff != "" {
		t.Errorf("a dry run changed the committed offsets (-got +want):\n%s", diff)
	}

	_, err = command(t, ctx, "reset", prefix, group, "-to-earliest")
	var active *kafka.GroupActiveError
	if !errors.As(err, &active) {
		t.Fatalf("reset of a running group: %v, want a refusal", err)
	}
	if diff := cmp.Diff(committedOffsets(t, ctx, group), before); diff != "" {
		t.Errorf("a refused reset changed the committed offsets (-got +want):\n%s", diff)
	}
}
