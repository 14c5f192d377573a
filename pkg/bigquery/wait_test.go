package bigquery_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	gbq "cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
)

// TestApplyRecreatedTable: a table dropped under the writer (the README's
// rebuild) is created again, and while its default stream answers
// NOT_FOUND (the re-create window, on bqfake's clock) Apply returns a
// *sink.WaitError instead of stopping the table; once the window is over the
// changes land.
func TestApplyRecreatedTable(t *testing.T) {
	clock := bqfake.NewClock(time.Now())
	srv, w, ctx, _ := startWriterOn(t, []bqfake.Opt{bqfake.WithClock(clock), bqfake.WithSchemaDelay(0)}, nil, io.Discard)
	src := newSource(t, users)
	if err := w.Apply(ctx, src.topic(), []sink.Change{src.change(cdc.OpCreate, nil, user(1, "a@x"))}); err != nil {
		t.Fatal(err)
	}
	admin, err := gbq.NewClient(ctx, project, srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Dataset(dataset).Table("shop_users").Delete(ctx); err != nil {
		t.Fatal(err)
	}

	batch := []sink.Change{src.change(cdc.OpCreate, nil, user(1, "a@x")), src.change(cdc.OpCreate, nil, user(2, "b@x"))}
	// The first attempt may meet the old table's stream (NOT_FOUND) or
	// the new table's (NOT_FOUND within the window): both wait.
	for range 2 {
		err = w.Apply(ctx, src.topic(), batch)
		var we *sink.WaitError
		if !errors.As(err, &we) || we.Reason != bigquery.WaitTableNotFound || we.Table != "shop_users" {
			t.Fatalf("within the re-create window: err = %v, want a WaitError for shop_users, reason %s", err, bigquery.WaitTableNotFound)
		}
	}
	if _, err := srv.Table(project, dataset, "shop_users"); err != nil {
		t.Fatalf("the table was not created again: %v", err)
	}
	clock.Advance(bqfake.DefaultRecreateDelay)
	if err := w.Apply(ctx, src.topic(), batch); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"id": int64(1), "email": "a@x"}, {"id": int64(2), "email": "b@x"}}
	if diff := cmp.Diff(userRows(t, srv), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}

// TestApplyBeyondDeleteWindow: upserts committed longer ago than the
// delete window are counted per table and warned about at most once a
// minute; deletes and recent changes are not.
func TestApplyBeyondDeleteWindow(t *testing.T) {
	var logs logBuffer
	_, w, ctx, reg := startWriter(t, nil, &logs)
	src := newSource(t, users) // commits in 2023: beyond 48h
	old := []sink.Change{
		src.change(cdc.OpCreate, nil, user(1, "a@x")),
		src.change(cdc.OpCreate, nil, user(2, "b@x")),
		src.change(cdc.OpDelete, user(2, "b@x"), nil),
	}
	for range 2 {
		if err := w.Apply(ctx, src.topic(), old); err != nil {
			t.Fatal(err)
		}
	}
	want := `# HELP strait_consumer_changes_beyond_delete_window_total Upserts applied whose source commit time is older than bigquery.delete_window: BigQuery has forgotten deletes that old, so a deleted row may come back.
# TYPE strait_consumer_changes_beyond_delete_window_total counter
strait_consumer_changes_beyond_delete_window_total{table="shop_users"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "strait_consumer_changes_beyond_delete_window_total"); err != nil {
		t.Error(err)
	}
	if n := strings.Count(logs.String(), "older than the delete window"); n != 1 {
		t.Errorf("warnings = %d, want 1 (at most one a minute per table):\n%s", n, logs.String())
	}
	// Per-table appended rows and bytes.
	rowsWant := `# HELP strait_consumer_bigquery_appended_rows_total Rows BigQuery acknowledged, by BigQuery table: what CDC background applies and storage are billed on.
# TYPE strait_consumer_bigquery_appended_rows_total counter
strait_consumer_bigquery_appended_rows_total{table="shop_users"} 6
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(rowsWant), "strait_consumer_bigquery_appended_rows_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "strait_consumer_bigquery_appended_bytes_total"); err != nil || n != 1 {
		t.Errorf("appended bytes series = %d (%v), want 1", n, err)
	}
}
