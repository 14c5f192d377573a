package bigquery_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
	"github.com/strait-cdc/strait/schemas"
)

// TestApplyRejectsBadChanges: changes that can never be written — an Avro
// body that cannot be read, a row over the request limit, a row BigQuery
// rejects — are left out and named in a *RejectedError by their index,
// while the changes around them are applied and the table goes on.
func TestApplyRejectsBadChanges(t *testing.T) {
	srv, w, ctx := newWriter(t)
	src := newSource(t, users)
	corrupt := src.change(cdc.OpCreate, nil, user(2, "b@x"))
	corrupt.Value = corrupt.Value[:3]
	// A JSON column whose text BigQuery refuses.
	docs := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: append(append([]cdc.Column{}, users.Columns...),
		cdc.Column{Name: "doc", Type: cdc.TypeJSON, Nullable: true})}
	withDoc := newSource(t, docs)
	withDoc.seq = 100
	batch := []sink.Change{
		src.change(cdc.OpCreate, nil, user(1, "a@x")),
		corrupt,
		src.change(cdc.OpCreate, nil, user(3, strings.Repeat("x", 10<<20))),
		src.change(cdc.OpCreate, nil, user(4, "d@x")),
		withDoc.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(5), cdc.Str("e@x"), cdc.Str("{not json")}),
		withDoc.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(6), cdc.Str("f@x"), cdc.Str(`{"ok":true}`)}),
	}
	err := w.Apply(ctx, src.topic(), batch)
	var re *sink.RejectedError
	if !errors.As(err, &re) {
		t.Fatalf("Apply: %v, want a *RejectedError", err)
	}
	var got []string
	for _, r := range re.Rejections {
		got = append(got, r.Reason)
		if r.Err == nil || !strings.Contains(r.Err.Error(), "record strait.shop.users/") {
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
	if err := w.Apply(ctx, withDoc.topic(), []sink.Change{withDoc.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(7), cdc.Str("g@x"), cdc.Null})}); err != nil {
		t.Errorf("Apply after the rejections: %v", err)
	}
}

// TestApplyRejectsChangesOfOtherTables: the topic alone names the table.
// A change whose schemas are not an envelope (here the checkpoint's
// schema, a "long", an envelope without a source block), or that is of
// another table (by its value schema's namespace, its key schema's, or
// its source.db and source.table), is rejected for that reason, even
// first in the call; the topic's own changes go to its table, and no
// other table is written.
func TestApplyRejectsChangesOfOtherTables(t *testing.T) {
	srv, w, ctx := newWriter(t)
	src := newSource(t, users)
	other := newSource(t, &cdc.Table{Database: "shop", Name: "visits", PrimaryKey: []int{0}, Columns: users.Columns})
	twin := newSource(t, &cdc.Table{Database: "shop", Name: "users2", PrimaryKey: []int{0}, Columns: users.Columns})
	withSchemas := func(c sink.Change, value, key string) sink.Change {
		c.ValueSchemaID, c.KeySchemaID = schemaIDs.ID(value), 0
		if key != "" {
			c.KeySchemaID = schemaIDs.ID(key)
		}
		return c
	}
	sourceless := `{"type":"record","name":"Envelope","namespace":"strait.shop.users","fields":[` +
		`{"name":"before","type":["null",{"type":"record","name":"Value","fields":[{"name":"id","type":"long"}]}]},` +
		`{"name":"after","type":["null","Value"]},{"name":"source","type":"string"},{"name":"op","type":"string"}]}`
	good := src.change(cdc.OpCreate, nil, user(2, "b@x"))
	changes := []sink.Change{
		other.change(cdc.OpCreate, nil, user(9, "visit")),                                                // another table's envelope
		src.change(cdc.OpCreate, nil, user(1, "a@x")),                                                    // the topic's
		withSchemas(good, schemas.Checkpoint, ""),                                                        // not an envelope
		withSchemas(good, `"long"`, ""),                                                                  // not a record
		withSchemas(good, sourceless, ""),                                                                // an envelope without source.db and source.table
		withSchemas(good, src.schemas.Value, other.schemas.Key),                                          // another table's key
		withSchemas(twin.change(cdc.OpCreate, nil, user(8, "twin")), src.schemas.Value, src.schemas.Key), // source.table users2
		good,
	}
	err := w.Apply(ctx, src.topic(), changes)
	var re *sink.RejectedError
	if !errors.As(err, &re) {
		t.Fatalf("Apply: %v, want a *RejectedError", err)
	}
	got := map[int]string{}
	for _, r := range re.Rejections {
		got[r.Index] = r.Reason
	}
	want := map[int]string{0: bigquery.ReasonWrongTable, 2: bigquery.ReasonNotEnvelope, 3: bigquery.ReasonNotEnvelope,
		4: bigquery.ReasonNotEnvelope, 5: bigquery.ReasonWrongTable, 6: bigquery.ReasonWrongTable}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("rejections by index (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(userRows(t, srv), []map[string]any{{"id": int64(1), "email": "a@x"}, {"id": int64(2), "email": "b@x"}}); diff != "" {
		t.Errorf("shop_users (-got +want):\n%s", diff)
	}
	for _, name := range []string{"shop_visits", "shop_users2"} {
		if _, err := srv.Table(project, dataset, name); err == nil {
			t.Errorf("table %s written from the topic of shop.users", name)
		}
	}
	// The prefix is the topic's too.
	foreign := sink.Topic{Name: "other.shop.users", Prefix: "other", Database: "shop", Table: "users"}
	if err := w.Apply(ctx, foreign, []sink.Change{src.change(cdc.OpCreate, nil, user(3, "c@x"))}); !errors.As(err, &re) || re.Rejections[0].Reason != bigquery.ReasonWrongTable {
		t.Errorf("a change of prefix strait in a topic of prefix other: %v, want a rejection %s", err, bigquery.ReasonWrongTable)
	}
}
