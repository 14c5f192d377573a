package bqfake_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
)

// OnAppend reports every applied request with its rows, in order, and not
// the requests the server refuses.
func TestOnAppendReportsAppliedRequests(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "users", cdcTable())
	w := e.newWriter(t, "users", cdcSchema, true)

	type seen struct {
		table string
		rows  []map[string]any
	}
	var got []seen
	var last time.Time
	before := time.Now()
	e.srv.OnAppend(func(a bqfake.Applied) {
		// Copies: the maps are the server's own.
		var rows []map[string]any
		for _, r := range a.Rows {
			rows = append(rows, map[string]any{"id": r["id"], "name": r["name"]})
		}
		got = append(got, seen{a.Project + ":" + a.Dataset + "." + a.Table, rows})
		if a.At.Before(last) || a.At.Before(before) {
			t.Errorf("At %v goes back (previous %v, start %v)", a.At, last, before)
		}
		last = a.At
	})
	up := func(id int64, name string) map[string]any {
		return map[string]any{"id": id, "name": name, "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "1"}
	}
	if _, err := w.append(e.ctx, t, up(1, "a"), up(2, "b")); err != nil {
		t.Fatal(err)
	}
	e.srv.FailAppends(codes.Unavailable, 1)
	if _, err := w.append(e.ctx, t, up(3, "refused")); err == nil {
		t.Fatal("an injected failure was acknowledged")
	}
	if _, err := w.append(e.ctx, t, map[string]any{"id": int64(3), "_CHANGE_TYPE": "DELETE", "_CHANGE_SEQUENCE_NUMBER": "2"}); err != nil {
		t.Fatal(err)
	}
	e.srv.OnAppend(nil)
	if _, err := w.append(e.ctx, t, up(4, "unobserved")); err != nil {
		t.Fatal(err)
	}

	want := []seen{
		{"proj:ds.users", []map[string]any{{"id": int64(1), "name": "a"}, {"id": int64(2), "name": "b"}}},
		{"proj:ds.users", []map[string]any{{"id": int64(3), "name": nil}}},
	}
	if diff := cmp.Diff(got, want, cmp.AllowUnexported(seen{})); diff != "" {
		t.Errorf("observed appends (-got +want):\n%s", diff)
	}
}
