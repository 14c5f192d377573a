package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// tailLines parses tail's output and blanks what differs from run to run
// (the processing time ts, the partition); it checks that offsets
// increase and that a key stays in one partition.
func tailLines(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	last := map[string]int64{}
	partitions := map[string]string{}
	for _, s := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("not a JSON line: %q: %v", s, err)
		}
		if ts, ok := l["ts"].(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("ts %q is not RFC 3339", ts)
			}
			s = strings.Replace(s, `"ts":"`+ts+`"`, `"ts":"…"`, 1)
		}
		// The partition of a key depends on the topic's partition count
		// and the key hash, not on tail: it only has to be one per key.
		p := fmt.Sprint(l["partition"])
		s = strings.Replace(s, `"partition":`+p+`,`, `"partition":…,`, 1)
		tp := fmt.Sprint(l["topic"], "/", p, "/", l["key"])
		if partitions[fmt.Sprint(l["topic"], l["key"])] == "" {
			partitions[fmt.Sprint(l["topic"], l["key"])] = p
		} else if partitions[fmt.Sprint(l["topic"], l["key"])] != p {
			t.Errorf("key %v in two partitions", l["key"])
		}
		off := int64(l["offset"].(float64))
		if prev, ok := last[tp]; ok && off <= prev {
			t.Errorf("%s: offset %d after %d", tp, off, prev)
		}
		last[tp] = off
		lines = append(lines, s)
	}
	return lines
}

// TestTail prints an insert, an update, a delete and its tombstone of one
// row as JSON lines, from the beginning, filtered to one table.
func TestTail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const prefix = "tail"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "10.00")...), ins(orders, cdc.Str("t"), cdc.Int(1), cdc.Int(1714564800123456)))
	pub.publish(ctx, upd(users, user(1, "a@x", "10.00"), user(1, "b@x", "-0.50")))
	pub.publish(ctx, del(users, user(1, "b@x", "-0.50")...))

	out, err := command(t, ctx, "tail", prefix, "unused", "-from-beginning", "-topics", "shop.users", "-n", "4")
	if err != nil {
		t.Fatal(err)
	}
	src := func(ms, seq, pos string) string {
		return `"source":{"version":"test","connector":"mysql","name":"tail","ts_ms":17000000` + ms + `,"snapshot":"false","db":"shop",` +
			`"sequence":"0000000000000001/0000000000000001/` + seq + `/0000000000000000","table":"users","server_id":0,"gtid":null,` +
			`"file":"binlog.000001","pos":` + pos + `,"row":0,"thread":null,"query":null,"before_key_only":null}`
	}
	want := []string{
		`{"topic":"tail.shop.users","partition":…,"offset":0,"key":{"id":1},"op":"c","before":null,` +
			`"after":{"id":1,"email":"a@x","balance":"10.00"},` + src("01000", "0000000000000064", "100") + `,"ts":"…"}`,
		`{"topic":"tail.shop.users","partition":…,"offset":2,"key":{"id":1},"op":"u","before":{"id":1,"email":"a@x","balance":"10.00"},` +
			`"after":{"id":1,"email":"b@x","balance":"-0.50"},` + src("03000", "000000000000012C", "300") + `,"ts":"…"}`,
		`{"topic":"tail.shop.users","partition":…,"offset":4,"key":{"id":1},"op":"d","before":{"id":1,"email":"b@x","balance":"-0.50"},` +
			`"after":null,` + src("04000", "0000000000000190", "400") + `,"ts":"…"}`,
		`{"topic":"tail.shop.users","partition":…,"offset":5,"key":{"id":1},"op":null,"before":null,"after":null,"source":null,"ts":null}`,
	}
	if diff := cmp.Diff(tailLines(t, out), want); diff != "" {
		t.Errorf("tail (-got +want):\n%s", diff)
	}

	// Another table: a DATETIME prints as a wall-clock time.
	out, err = command(t, ctx, "tail", prefix, "unused", "-from-beginning", "-topics", "tail.shop.orders", "-n", "1")
	if err != nil {
		t.Fatal(err)
	}
	if got := tailLines(t, out); len(got) != 1 || !strings.Contains(got[0], `"after":{"tenant":"t","id":1,"at":"2024-05-01T12:00:00.123456"}`) {
		t.Errorf("tail of orders:\n%s", strings.Join(got, "\n"))
	}
}

// TestTailFromNow: without -from-beginning tail prints only what is
// written after it started, here selected by a regular expression.
func TestTailFromNow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const prefix = "tailnow"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "old@x", "1.00")...))
	nextMilli(time.Now())

	var out, errOut testenv.Buffer
	done := make(chan error, 1)
	args := append(append([]string{"tail"}, consumerArgs(prefix, "unused", "unused")[1:]...), "-topics", `^tailnow\.shop\.u.*`, "-n", "1")
	go func() { done <- run(ctx, args, func(string) string { return "" }, &out, &errOut) }()
	for !strings.Contains(errOut.String(), "tailing") {
		select {
		case err := <-done:
			t.Fatalf("tail ended: %v\n%s", err, errOut.String())
		case <-ctx.Done():
			t.Fatalf("tail did not start:\n%s", errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	nextMilli(time.Now())
	pub.publish(ctx, ins(users, user(2, "new@x", "2.00")...))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := tailLines(t, out.String())
	if len(got) != 1 || !strings.Contains(got[0], `"after":{"id":2,"email":"new@x","balance":"2.00"}`) {
		t.Errorf("tail from now printed:\n%s", strings.Join(got, "\n"))
	}
}
