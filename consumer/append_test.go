package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// waitChangelog waits until a changelog table holds want, rows rendered as
// "<op> <data columns>" in sequence order (the topics' partitions
// interleave the rows of different keys), or fails at the deadline.
func waitChangelog(t *testing.T, ctx context.Context, dataset, table string, cols []string, want []string) {
	t.Helper()
	var diff string
	for {
		rows, err := env.bq.Rows(project, dataset, table)
		if err == nil {
			slices.SortStableFunc(rows, func(a, b map[string]any) int {
				return strings.Compare(a["_strait_sequence"].(string), b["_strait_sequence"].(string))
			})
			var got []string
			for _, r := range rows {
				s := fmt.Sprint(r["_strait_op"])
				for _, c := range cols {
					s += fmt.Sprintf(" %v", r[c])
				}
				got = append(got, s)
			}
			if diff = cmp.Diff(got, want); diff == "" {
				return
			}
		} else {
			diff = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s.%s at the deadline (-got +want):\n%s", dataset, table, diff)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestConsumeAppend: with bigquery.mode append, every change of a keyed
// and of a keyless table lands as a changelog row in sequence order, the
// keyed table gets its latest-row view and the keyless one none.
func TestConsumeAppend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const prefix = "appendmode"
	events := &cdc.Table{Database: "shop", Name: "events", Columns: []cdc.Column{
		{Name: "kind", Type: cdc.TypeString, Nullable: true},
	}}
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...), ins(users, user(2, "b@x", "2.00")...), ins(events, cdc.Str("login")))
	pub.publish(ctx, upd(users, user(1, "a@x", "1.00"), user(1, "a2@x", "1.50")), del(users, user(2, "b@x", "2.00")...), ins(events, cdc.Str("login")))
	// UPDATE users SET id = 3 WHERE id = 1: a delete and an insert.
	pub.publish(ctx, del(users, user(1, "a2@x", "1.50")...), ins(users, user(3, "a2@x", "1.50")...))

	startConsumer(t, append(consumerArgs(prefix, "g", "ds_append"), "-bigquery.mode", "append"))
	waitChangelog(t, ctx, "ds_append", "shop_users", []string{"id", "email"}, []string{
		"c 1 a@x", "c 2 b@x", "u 1 a2@x", "d 2 b@x", "d 1 a2@x", "c 3 a2@x",
	})
	waitChangelog(t, ctx, "ds_append", "shop_events", []string{"kind"}, []string{"c login", "c login"})
	waitCommitted(t, ctx, "g", prefix+".shop.users", prefix+".shop.events")

	view, err := env.bq.Table(project, "ds_append", "shop_users_latest")
	if err != nil {
		t.Fatal(err)
	}
	if view.Type != "VIEW" || view.View == nil || !strings.Contains(view.View.Query, "PARTITION BY `id` ORDER BY _strait_sequence DESC") ||
		!strings.Contains(view.View.Query, "FROM `proj.ds_append.shop_users`") {
		t.Errorf("view of shop_users: %s %+v, want a view ranking each id's rows by sequence", view.Type, view.View)
	}
	if _, err := env.bq.Table(project, "ds_append", "shop_events_latest"); err == nil {
		t.Error("the keyless table shop_events has a view, want none")
	}
}
