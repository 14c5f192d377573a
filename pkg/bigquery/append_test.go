package bigquery_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
)

func appendMode(c *bigquery.Config) { c.Mode = bigquery.ModeAppend }

// usersView is the query of shop_users' latest-row view.
const usersView = "SELECT * EXCEPT (_strait_rank)\n" +
	"FROM (\n" +
	"  SELECT *, ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY _strait_sequence DESC, _strait_ingested_at DESC) AS _strait_rank\n" +
	"  FROM `proj.cdc.shop_users`\n" +
	")\n" +
	"WHERE _strait_rank = 1 AND _strait_op != 'd'"

// logBuffer collects log lines; the writer may log from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// changelogRow is a changelog row as the test expects it: the data and
// every metadata column but the ingestion time.
func changelogRow(id int64, email, op string, seq uint64) map[string]any {
	return map[string]any{
		"id": id, "email": email,
		bigquery.ColOp:         op,
		bigquery.ColSequence:   cdc.Position{Epoch: 1, File: 3, Pos: 1000 * seq}.String(),
		bigquery.ColSourceTime: time.Unix(1700000000+int64(seq), 0).UTC(),
	}
}

// latestPerKey does what the latest-row view's query does, in Go: per
// key, the row with the highest _strait_sequence (on a tie the later
// one: rows are in ingestion order), left out when it is a delete. The
// result has the data columns only, sorted by key.
func latestPerKey(rows []map[string]any, key string) []map[string]any {
	best := map[any]map[string]any{}
	for _, r := range rows {
		if b := best[r[key]]; b == nil || r[bigquery.ColSequence].(string) >= b[bigquery.ColSequence].(string) {
			best[r[key]] = r
		}
	}
	var out []map[string]any
	for _, r := range best {
		if r[bigquery.ColOp] == "d" {
			continue
		}
		data := map[string]any{}
		for k, v := range r {
			if !strings.HasPrefix(k, "_strait_") {
				data[k] = v
			}
		}
		out = append(out, data)
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return int(a[key].(int64) - b[key].(int64)) })
	return out
}

// TestAppendChangelog: in append mode inserts, updates, deletes, a
// primary-key change and snapshot reads land as changelog rows in source
// order with their ops and metadata; the latest row per key of the
// changelog is the source state, also after redelivery; the table has no
// primary key and the view's query ranks each key's rows by sequence.
func TestAppendChangelog(t *testing.T) {
	srv, w, ctx, _ := startWriter(t, appendMode, io.Discard)
	src := newSource(t, users)
	batch := []sink.Change{
		src.change(cdc.OpCreate, nil, user(1, "a@x")),
		src.change(cdc.OpCreate, nil, user(2, "b@x")),
		src.change(cdc.OpCreate, nil, user(3, "c@x")),
		src.change(cdc.OpUpdate, user(1, "a@x"), user(1, "a2@x")),
		src.change(cdc.OpDelete, user(2, "b@x"), nil),
		{}, // the delete's tombstone
		// UPDATE users SET id = 4 WHERE id = 3: a delete of the old key
		// and an insert of the new one.
		src.change(cdc.OpDelete, user(3, "c@x"), nil),
		src.change(cdc.OpCreate, nil, user(4, "c@x")),
		src.change(cdc.OpRead, nil, user(5, "e@x")),
		src.change(cdc.OpUpdate, user(1, "a2@x"), user(1, "a3@x")),
	}
	if err := w.Apply(ctx, src.topic(), batch); err != nil {
		t.Fatal(err)
	}
	wantLog := []map[string]any{
		changelogRow(1, "a@x", "c", 1),
		changelogRow(2, "b@x", "c", 2),
		changelogRow(3, "c@x", "c", 3),
		changelogRow(1, "a2@x", "u", 4),
		changelogRow(2, "b@x", "d", 5), // a delete carries the before image
		changelogRow(3, "c@x", "d", 6),
		changelogRow(4, "c@x", "c", 7),
		changelogRow(5, "e@x", "r", 8),
		changelogRow(1, "a3@x", "u", 9),
	}
	got := rows(t, srv, "shop_users")
	if diff := cmp.Diff(got, wantLog); diff != "" {
		t.Fatalf("changelog (-got +want):\n%s", diff)
	}
	wantState := []map[string]any{
		{"id": int64(1), "email": "a3@x"}, {"id": int64(4), "email": "c@x"}, {"id": int64(5), "email": "e@x"},
	}
	if diff := cmp.Diff(latestPerKey(got, "id"), wantState); diff != "" {
		t.Errorf("latest row per key (-got +want):\n%s", diff)
	}

	// Redelivery appends the changes again; the latest rows stay the same.
	if err := w.Apply(ctx, src.topic(), batch[3:5]); err != nil {
		t.Fatal(err)
	}
	got = rows(t, srv, "shop_users")
	if diff := cmp.Diff(got, append(wantLog, wantLog[3:5]...)); diff != "" {
		t.Errorf("changelog after redelivery (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(latestPerKey(got, "id"), wantState); diff != "" {
		t.Errorf("latest row per key after redelivery (-got +want):\n%s", diff)
	}

	md, err := srv.Table(project, dataset, "shop_users")
	if err != nil {
		t.Fatal(err)
	}
	if md.TableConstraints != nil || md.MaxStaleness != "" || md.Clustering == nil || !slices.Equal(md.Clustering.Fields, []string{"id"}) {
		t.Errorf("changelog table: constraints %+v, max_staleness %q, clustering %+v; want no primary key, no max_staleness, clustering on id",
			md.TableConstraints, md.MaxStaleness, md.Clustering)
	}
	view, err := srv.Table(project, dataset, "shop_users_latest")
	if err != nil {
		t.Fatal(err)
	}
	if view.Type != "VIEW" || view.View == nil || view.View.UseLegacySql || view.Labels["strait_columns"] != "6" {
		t.Fatalf("view: type %s, definition %+v, labels %v; want a GoogleSQL VIEW labelled strait_columns=6", view.Type, view.View, view.Labels)
	}
	if diff := cmp.Diff(view.View.Query, usersView); diff != "" {
		t.Errorf("view query (-got +want):\n%s", diff)
	}
}

// TestUpsertWithoutKey: in upsert mode a table without a primary key is
// appended to a changelog, with one warning, and gets no view.
func TestUpsertWithoutKey(t *testing.T) {
	var logs logBuffer
	srv, w, ctx, _ := startWriter(t, nil, &logs)
	logTable := &cdc.Table{Database: "shop", Name: "log", Columns: users.Columns}
	src := newSource(t, logTable)
	for range 2 {
		if err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(1, "a")), src.change(cdc.OpCreate, nil, user(1, "a"))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpDelete, user(1, "a"), nil)}); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range rows(t, srv, "shop_log") {
		ops = append(ops, fmt.Sprintf("%v %v %v", r["id"], r["email"], r[bigquery.ColOp]))
	}
	if diff := cmp.Diff(ops, []string{"1 a c", "1 a c", "1 a c", "1 a c", "1 a d"}); diff != "" {
		t.Errorf("changelog rows (-got +want):\n%s", diff)
	}
	md, err := srv.Table(project, dataset, "shop_log")
	if err != nil {
		t.Fatal(err)
	}
	if md.TableConstraints != nil {
		t.Errorf("table constraints %+v, want no primary key", md.TableConstraints)
	}
	if _, err := srv.Table(project, dataset, "shop_log_latest"); err == nil || !strings.Contains(err.Error(), "Not found") {
		t.Errorf("view of a table without key: err = %v, want not found", err)
	}
	const warning = `level=WARN msg="source table has no primary key: its changes are appended to a changelog table instead of upserted" table=shop_log source=shop.log topic=strait.shop.log`
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("warning logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestAppendSchemaChange: in append mode a new column patches the
// changelog and re-defines the view, so that its schema has the column.
func TestAppendSchemaChange(t *testing.T) {
	srv, w, ctx, _ := startWriter(t, appendMode, io.Discard)
	v1 := newSource(t, users)
	if err := w.Apply(ctx, v1.topic(), []sink.Change{v1.change(cdc.OpCreate, nil, user(1, "a@x"))}); err != nil {
		t.Fatal(err)
	}
	before, err := srv.Table(project, dataset, "shop_users_latest")
	if err != nil {
		t.Fatal(err)
	}
	grown := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: append(append([]cdc.Column{}, users.Columns...),
		cdc.Column{Name: "age", Type: cdc.TypeInt32, Nullable: true})}
	v2 := newSource(t, grown)
	v2.seq = v1.seq
	if err := w.Apply(ctx, v2.topic(), []sink.Change{
		v2.change(cdc.OpUpdate, []cdc.Value{cdc.Int(1), cdc.Str("a@x"), cdc.Null}, []cdc.Value{cdc.Int(1), cdc.Str("a@x"), cdc.Int(42)}),
	}); err != nil {
		t.Fatal(err)
	}
	var data []map[string]any
	for _, r := range rows(t, srv, "shop_users") {
		data = append(data, map[string]any{"id": r["id"], "age": r["age"], "op": r[bigquery.ColOp]})
	}
	want := []map[string]any{{"id": int64(1), "age": nil, "op": "c"}, {"id": int64(1), "age": int64(42), "op": "u"}}
	if diff := cmp.Diff(data, want); diff != "" {
		t.Errorf("changelog (-got +want):\n%s", diff)
	}
	md, err := srv.Table(project, dataset, "shop_users")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Schema.Fields); n != 7 || md.Schema.Fields[6].Name != "age" || md.TableConstraints != nil {
		t.Errorf("changelog: %d columns (last %s), constraints %+v; want 7 with age last, no primary key", n, md.Schema.Fields[n-1].Name, md.TableConstraints)
	}
	after, err := srv.Table(project, dataset, "shop_users_latest")
	if err != nil {
		t.Fatal(err)
	}
	if after.Etag == before.Etag || after.Labels["strait_columns"] != "7" || after.View.Query != usersView || after.View.UseLegacySql {
		t.Errorf("view after the new column: etag %s (was %s), labels %v, query %q, legacy %v; want it re-defined with strait_columns=7 and the same GoogleSQL query",
			after.Etag, before.Etag, after.Labels, after.View.Query, after.View.UseLegacySql)
	}
}

// TestAppendModeOnUpsertTable: a table created in upsert mode is not
// appended to later: the error says what to do.
func TestAppendModeOnUpsertTable(t *testing.T) {
	srv, err := bqfake.New(bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, mode := range []string{bigquery.ModeUpsert, bigquery.ModeAppend} {
		_, w, ctx, _ := startWriter(t, func(c *bigquery.Config) {
			c.Mode = mode
			c.Endpoint, c.WriteEndpoint = srv.RESTURL(), srv.GRPCAddr()
		}, io.Discard)
		src := newSource(t, users)
		err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(1, "a@x"))})
		if mode == bigquery.ModeUpsert {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		var te *sink.TableError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "has a primary key (id), so it holds upserts") {
			t.Errorf("append to an upsert table: err = %v, want a TableError saying the table holds upserts", err)
		}
	}
}

// TestAppendViewNameTaken: a source table whose BigQuery name is another
// changelog's view stops with an error naming the way out, and so does a
// view name taken by a table.
func TestAppendViewNameTaken(t *testing.T) {
	_, w, ctx, _ := startWriter(t, appendMode, io.Discard)
	src := newSource(t, users)
	if err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(1, "a@x"))}); err != nil {
		t.Fatal(err)
	}
	latest := newSource(t, &cdc.Table{Database: "shop", Name: "users_latest", PrimaryKey: []int{0}, Columns: users.Columns})
	err := w.Apply(ctx, latest.topic(), []sink.Change{latest.change(cdc.OpCreate, nil, user(1, "a@x"))})
	if err == nil || !strings.Contains(err.Error(), "table shop_users_latest is a VIEW in BigQuery") {
		t.Errorf("a table named like a view: err = %v, want one saying it is a view", err)
	}

	// The other way round: shop_orders_latest exists as a changelog first.
	ordersLatest := newSource(t, &cdc.Table{Database: "shop", Name: "orders_latest", PrimaryKey: []int{0}, Columns: users.Columns})
	if err := w.Apply(ctx, ordersLatest.topic(), []sink.Change{ordersLatest.change(cdc.OpCreate, nil, user(1, "a@x"))}); err != nil {
		t.Fatal(err)
	}
	orders := newSource(t, &cdc.Table{Database: "shop", Name: "orders", PrimaryKey: []int{0}, Columns: users.Columns})
	err = w.Apply(ctx, orders.topic(), []sink.Change{orders.change(cdc.OpCreate, nil, user(1, "a@x"))})
	if err == nil || !strings.Contains(err.Error(), "shop_orders_latest, the name of the latest-row view of shop_orders, is taken by a TABLE") {
		t.Errorf("a view named like a table: err = %v, want one saying the name is taken", err)
	}
}
