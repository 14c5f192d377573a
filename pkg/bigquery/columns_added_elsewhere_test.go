package bigquery_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
)

// TestApplyColumnAddedByAnotherWriter: two consumers write one table; one
// of them adds a column (its source table gained one), and then the other
// sees rows with that column. The second finds the column already there
// (its patch is refused as stale, it reads the table again) and must still
// write the column's values: its open stream's writer schema predates the
// column, and a row written through it would lose the value (the chaos
// test found customers.score NULL in BigQuery after such a race).
func TestApplyColumnAddedByAnotherWriter(t *testing.T) {
	srv, first, ctx, _ := startWriter(t, nil, io.Discard)
	cfg := &bigquery.Config{}
	cfg.Defaults()
	cfg.Project, cfg.Dataset = project, dataset
	cfg.Endpoint, cfg.WriteEndpoint, cfg.Insecure = srv.RESTURL(), srv.GRPCAddr(), true
	second, err := bigquery.NewWriter(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), bigquery.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.Schemas = &schemaIDs

	v1 := newSource(t, users)
	for _, w := range []*bigquery.Writer{first, second} {
		if err := w.Apply(ctx, v1.topic(), []sink.Change{v1.change(cdc.OpCreate, nil, user(1, "a@x"))}); err != nil {
			t.Fatal(err)
		}
	}
	grown := &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: append(append([]cdc.Column{}, users.Columns...),
		cdc.Column{Name: "age", Type: cdc.TypeInt32, Nullable: true})}
	v2 := newSource(t, grown)
	v2.seq = v1.seq
	if err := first.Apply(ctx, v2.topic(), []sink.Change{v2.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(2), cdc.Str("b@x"), cdc.Int(42)})}); err != nil {
		t.Fatal(err)
	}
	if err := second.Apply(ctx, v2.topic(), []sink.Change{v2.change(cdc.OpCreate, nil, []cdc.Value{cdc.Int(3), cdc.Str("c@x"), cdc.Int(43)})}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": int64(1), "email": "a@x", "age": nil},
		{"id": int64(2), "email": "b@x", "age": int64(42)},
		{"id": int64(3), "email": "c@x", "age": int64(43)},
	}
	if diff := cmp.Diff(userRows(t, srv), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}
