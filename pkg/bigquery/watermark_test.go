package bigquery_test

import (
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	bq "cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
)

// TestRecordWatermark: the watermark table holds one row per group and
// source, keyed by both, and keeps the highest watermark recorded: one
// recorded late and lower (another replica's) does not move it back.
func TestRecordWatermark(t *testing.T) {
	srv, w, ctx, _ := startWriter(t, nil, io.Discard)
	at := func(pos uint64) string { return cdc.Position{Epoch: 1, File: 2, Pos: pos}.String() }
	commit := time.Unix(1700000000, 0).UTC()
	for _, wm := range []sink.Watermark{
		{Group: "g", Source: "s", Through: at(200), CommitTime: commit},
		{Group: "g", Source: "s", Through: at(100), CommitTime: commit.Add(-time.Second)},
		{Group: "h", Source: "s", Through: at(50), CommitTime: commit},
	} {
		if err := w.RecordWatermark(ctx, wm); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := srv.Rows(project, dataset, "_strait_watermark")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r["group_id"].(string)+"/"+r["source"].(string)] = r["sequence"].(string) + " " + r["commit_time"].(time.Time).Format(time.RFC3339)
	}
	want := map[string]string{"g/s": at(200) + " 2023-11-14T22:13:20Z", "h/s": at(50) + " 2023-11-14T22:13:20Z"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("watermarks (-got +want):\n%s", diff)
	}
	md, err := srv.Table(project, dataset, "_strait_watermark")
	if err != nil {
		t.Fatal(err)
	}
	if md.TableConstraints == nil || md.TableConstraints.PrimaryKey == nil || !cmp.Equal(md.TableConstraints.PrimaryKey.Columns, []string{"group_id", "source"}) {
		t.Errorf("watermark table constraints %+v, want PRIMARY KEY (group_id, source)", md.TableConstraints)
	}

	t.Run("not a sequence", func(t *testing.T) {
		err := w.RecordWatermark(ctx, sink.Watermark{Group: "g", Source: "s", Through: "not/hex"})
		if err == nil || !strings.Contains(err.Error(), "not a _CHANGE_SEQUENCE_NUMBER") {
			t.Errorf("err = %v, want one saying the sequence is invalid", err)
		}
	})
}

// TestWatermarkTableTaken: a table of another shape under the watermark
// table's name is not written to; the error names the key to change.
func TestWatermarkTableTaken(t *testing.T) {
	srv, w, ctx, _ := startWriter(t, func(c *bigquery.Config) { c.WatermarkTable = "taken" }, io.Discard)
	client, err := bq.NewClient(ctx, project, srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Dataset(dataset).Table("taken").Create(ctx, &bq.TableMetadata{Schema: bq.Schema{{Name: "x", Type: bq.StringFieldType}}}); err != nil {
		t.Fatal(err)
	}
	err = w.RecordWatermark(ctx, sink.Watermark{Group: "g", Source: "s", Through: cdc.Position{Epoch: 1}.String()})
	if err == nil || !strings.Contains(err.Error(), "bigquery.watermark_table") {
		t.Errorf("err = %v, want one naming bigquery.watermark_table", err)
	}
}

// TestAsOfView: in append mode a keyed changelog gets, next to its
// latest-row view, a view of the latest rows below its group's watermark
// of its source, reading the watermark table (created for it); run by the
// local endpoint, it shows the changelog as of the watermark, not as of
// another group's.
func TestAsOfView(t *testing.T) {
	srv, w, ctx, _ := startWriter(t, func(c *bigquery.Config) {
		appendMode(c)
		c.Group, c.Source = "o'brien", "shop"
	}, io.Discard)
	src := newSource(t, users)
	changes := []sink.Change{ // at positions 1000, 2000, ...
		src.change(cdc.OpCreate, nil, user(1, "a@x")),
		src.change(cdc.OpCreate, nil, user(2, "b@x")),
		src.change(cdc.OpUpdate, user(1, "a@x"), user(1, "a2@x")),
		src.change(cdc.OpDelete, user(2, "b@x"), nil),
		src.change(cdc.OpCreate, nil, user(3, "c@x")),
	}
	if err := w.Apply(ctx, src.topic(), changes); err != nil {
		t.Fatal(err)
	}
	v, err := srv.Table(project, dataset, "shop_users_as_of_watermark")
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT * EXCEPT (_strait_rank)\n" +
		"FROM (\n" +
		"  SELECT *, ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY _strait_sequence DESC, _strait_ingested_at DESC) AS _strait_rank\n" +
		"  FROM `proj.cdc.shop_users`\n" +
		"  WHERE _strait_sequence < (SELECT `sequence` FROM `proj.cdc._strait_watermark` WHERE `group_id` = 'o\\'brien' AND `source` = 'shop')\n" +
		")\n" +
		"WHERE _strait_rank = 1 AND _strait_op != 'd'"
	if v.View == nil {
		t.Fatalf("shop_users_as_of_watermark is a %s, want a view", v.Type)
	}
	if diff := cmp.Diff(v.View.Query, want); diff != "" {
		t.Errorf("as-of view (-got +want):\n%s", diff)
	}

	// ids reads both views at once: the ids and emails of each.
	ids := func() [2]string {
		t.Helper()
		views, err := srv.ViewRows(project, dataset, "shop_users_latest", "shop_users_as_of_watermark")
		if err != nil {
			t.Fatal(err)
		}
		var out [2]string
		for i, rows := range views {
			for _, r := range rows {
				out[i] += fmt.Sprintf("%v:%v ", r["id"], r["email"])
			}
		}
		return out
	}
	if got := ids(); got != [2]string{"1:a2@x 3:c@x ", ""} {
		t.Errorf("latest, as of no watermark yet: %q", got)
	}
	through := func(pos uint64) string {
		return cdc.Position{Epoch: 1, File: 3, Pos: pos, Row: math.MaxUint64}.String()
	}
	for _, wm := range []sink.Watermark{{Group: "o'brien", Source: "shop", Through: through(3000)}, {Group: "other", Source: "shop", Through: through(5000)}} {
		if err := w.RecordWatermark(ctx, wm); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(); got != [2]string{"1:a2@x 3:c@x ", "1:a2@x 2:b@x "} {
		t.Errorf("latest, as of the update of 1: %q", got)
	}
	if err := w.RecordWatermark(ctx, sink.Watermark{Group: "o'brien", Source: "shop", Through: through(4000)}); err != nil {
		t.Fatal(err)
	}
	if got := ids(); got != [2]string{"1:a2@x 3:c@x ", "1:a2@x "} {
		t.Errorf("latest, as of the delete of 2: %q", got)
	}
}
