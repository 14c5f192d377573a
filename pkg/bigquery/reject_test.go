package bigquery_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// TestApplyRejectsBadChanges: changes that can never be written — an Avro
// body that cannot be read, a row over the request limit, a row BigQuery
// rejects — are left out and named in a *RejectedError by their index,
// while the changes around them are applied and the table goes on.
func TestApplyRejectsBadChanges(t *testing.T) {
	srv, w, ctx := newWriter(t)
	src := newSource(t, users, 3)
	corrupt := src.change(cdc.OpCreate, nil, user(2, "b@x"))
	corrupt.Value = corrupt.Value[:3]
	// A JSON column whose text BigQuery refuses.
	docs := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: append(append([]cdc.Column{}, users.Columns...),
		cdc.Column{Name: "doc", Type: cdc.TypeJSON, Nullable: true})}
	withDoc := newSource(t, docs, 4)
	withDoc.seq = 100
	batch := []bigquery.Change{
		src.change(cdc.OpCreate, nil, user(1, "a@x")),
		corrupt,
		src.change(cdc.OpCreate, nil, user(3, strings.Repeat("x", 10<<20))),
		src.change(cdc.OpCreate, nil, user(4, "d@x")),
		withDoc.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(5), cdc.Str("e@x"), cdc.Str("{not json")}),
		withDoc.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(6), cdc.Str("f@x"), cdc.Str(`{"ok":true}`)}),
	}
	err := w.Apply(ctx, batch)
	var re *bigquery.RejectedError
	if !errors.As(err, &re) {
		t.Fatalf("Apply: %v, want a *RejectedError", err)
	}
	var got []string
	for _, r := range re.Rejections {
		got = append(got, r.Reason)
		if r.Err == nil || !strings.Contains(r.Err.Error(), "record strait.shop.items/") {
			t.Errorf("rejection %d: %v, want an error naming the record", r.Index, r.Err)
		}
	}
	want := []string{bigquery.ReasonUndecodable, bigquery.ReasonRowTooLarge, bigquery.ReasonRowRejected}
	if diff := cmp.Diff(got, want); diff != "" || re.Rejections[0].Index != 1 || re.Rejections[1].Index != 2 || re.Rejections[2].Index != 4 {
		t.Errorf("rejections %+v, want indexes 1, 2, 4 with reasons %v", re.Rejections, want)
	}
	wantRows := []map[string]any{
		{"id": int64(1), "email": "a@x", "doc": nil},
		{"id": int64(4), "email": "d@x", "doc": nil},
		{"id": int64(6), "email": "f@x", "doc": `{"ok":true}`},
	}
	if diff := cmp.Diff(userRows(t, srv), wantRows); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	// The table goes on.
	if err := w.Apply(ctx, []bigquery.Change{withDoc.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(7), cdc.Str("g@x"), cdc.Null})}); err != nil {
		t.Errorf("Apply after the rejections: %v", err)
	}
}
