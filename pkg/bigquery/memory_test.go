package bigquery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestPlanHeapPerTable plans and binds the value schemas of many tables,
// turns a change of each into its row, and keeps what the writer keeps of
// each table for its life — the value plan (Writer.plans) and the binding
// to the table (table.bindings) — and bounds the heap a table takes
// (issue 18: about 20 KB before, most of it the parsed schema and a
// BigQuery column description per column, twice).
func TestPlanHeapPerTable(t *testing.T) {
	const tables, bound = 2000, 8192
	type source struct {
		schemas *avro.Schemas
		value   []byte // a change's value body
		topic   sink.Topic
	}
	in := make([]source, tables+1)
	for i := range in {
		table := &cdc.Table{Database: "shop", Name: fmt.Sprintf("t%05d", i), PrimaryKey: []int{0}, Columns: []cdc.Column{
			{Name: "id", Type: cdc.TypeInt64},
			{Name: fmt.Sprintf("ref_%d", i), Type: cdc.TypeInt32, Nullable: true},
			{Name: "amount", Type: cdc.TypeDecimal, Precision: 12, Scale: 2},
			{Name: "status", Type: cdc.TypeString},
			{Name: fmt.Sprintf("note_%d", i), Type: cdc.TypeString, Nullable: true},
			{Name: "created_at", Type: cdc.TypeDateTime},
			{Name: "updated_at", Type: cdc.TypeTimestamp},
			{Name: "score", Type: cdc.TypeFloat64},
		}}
		s, err := avro.Build("strait", table)
		if err != nil {
			t.Fatal(err)
		}
		ev := &cdc.Event{Table: table, Op: cdc.OpCreate, Position: cdc.Position{Epoch: 1, File: 1, Pos: 100}, CommitTime: time.Unix(1700000000, 0),
			After: []cdc.Value{cdc.Int(int64(i)), cdc.Null, cdc.Str("12.50"), cdc.Str("paid"), cdc.Str("gift"), cdc.Int(1704067200_000000), cdc.Int(1700000000_000000), cdc.Float(0.5)}}
		v, err := avro.NewEncoder(table, "strait", "test", 1, 2).AppendValue(nil, ev, time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		in[i] = source{s, v[5:], sink.Topic{Name: "strait.shop." + table.Name, Prefix: "strait", Database: "shop", Table: table.Name}}
	}
	kept := make([]*binding, 0, tables)
	plan := func(s *source) *binding {
		p, err := planValue(s.schemas.Value)
		if err != nil {
			t.Fatal(err)
		}
		_, key, err := keyColumns(s.schemas.Key)
		if err != nil {
			t.Fatal(err)
		}
		p = p.withKey(key, true)
		bd, err := bind(p, tableSchema(p), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := bd.appendRow(nil, s.value, 1, &s.topic); err != nil {
			t.Fatal(err)
		}
		return bd
	}
	first := plan(&in[tables]) // what tables share, out of the figure
	before := testenv.HeapInUse()
	for i := range in[:tables] {
		kept = append(kept, plan(&in[i]))
	}
	per := (testenv.HeapInUse() - before) / tables
	runtime.KeepAlive(kept)
	runtime.KeepAlive(first)
	runtime.KeepAlive(in)
	t.Logf("%d bytes a table", per)
	if per > bound {
		t.Errorf("a table's value plan and binding hold %d bytes, over %d", per, bound)
	}
}

// localWriter is a Writer of a local BigQuery that sees schema changes
// and re-created tables at once, both closed when the test ends.
func localWriter(t *testing.T, ctx context.Context) (*Writer, *testenv.Schemas) {
	t.Helper()
	srv, err := bqfake.New(bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := &Config{}
	cfg.Defaults()
	cfg.Project, cfg.Dataset = "proj", "cdc"
	cfg.Endpoint, cfg.WriteEndpoint, cfg.Insecure = srv.RESTURL(), srv.GRPCAddr(), true
	w, err := NewWriter(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	ids := &testenv.Schemas{}
	w.Schemas = ids
	return w, ids
}

// TestTableSchemaSharesMetadataColumns writes to two tables of the local
// BigQuery through the real clients: the schemas the writer holds of
// them, as read back from BigQuery, both refer to the one copy of the
// metadata columns.
func TestTableSchemaSharesMetadataColumns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, ids := localWriter(t, ctx)
	for i, name := range []string{"users", "orders"} {
		table := &cdc.Table{Database: "shop", Name: name, PrimaryKey: []int{0}, Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt64}}}
		s, err := avro.Build("strait", table)
		if err != nil {
			t.Fatal(err)
		}
		ev := &cdc.Event{Table: table, Op: cdc.OpCreate, After: []cdc.Value{cdc.Int(1)}, Position: cdc.Position{Epoch: 1, File: 1, Pos: 100}, CommitTime: time.Now()}
		v, err := avro.NewEncoder(table, "strait", "test", uint32(2*i+1), uint32(2*i+2)).AppendValue(nil, ev, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		topic := sink.Topic{Name: "strait.shop." + name, Prefix: "strait", Database: "shop", Table: name}
		if err := w.Apply(ctx, topic, []sink.Change{{KeySchemaID: ids.ID(s.Key), ValueSchemaID: ids.ID(s.Value), Value: v[5:]}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"users", "orders"} {
		schema := w.table("shop_" + name).state.schema
		for _, m := range metadataFields {
			if f := findColumn(schema, m.Name); f != m {
				t.Errorf("table %s: column %s is a copy of its own", name, m.Name)
			}
		}
	}
}

// TestBindSharesPlanColumns: bound to the table made from its plan, a
// binding holds the plan's columns themselves; bound to a table whose
// columns are elsewhere, a copy numbered for it, the plan left as it was.
func TestBindSharesPlanColumns(t *testing.T) {
	s, err := avro.Build("strait", &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64}, {Name: "name", Type: cdc.TypeString},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := planValue(s.Value)
	if err != nil {
		t.Fatal(err)
	}
	own := tableSchema(p)
	bd, err := bind(p, own, true)
	if err != nil {
		t.Fatal(err)
	}
	if &bd.columns[0] != &p.columns[0] {
		t.Error("bound to its own table, the binding holds a copy of the plan's columns")
	}
	moved := append(bigquery.Schema{{Name: "added_elsewhere", Type: bigquery.StringFieldType}}, own...)
	if bd, err = bind(p, moved, true); err != nil {
		t.Fatal(err)
	}
	for i, want := range []protowire.Number{numFirstCol + 1, numFirstCol + 2} {
		if got := bd.columns[i].num; got != want {
			t.Errorf("column %d: bound as field %d, want %d", i, got, want)
		}
		if got := p.columns[i].num; got != numFirstCol+protowire.Number(i) {
			t.Errorf("column %d: the plan's number became %d", i, got)
		}
	}
}

// TestWriterHeapPerTable applies a change to each of many tables of the
// local BigQuery through the real clients and bounds what the writer holds
// for a table with its stream open — its state, its plan and binding, its
// stream, its metrics: the live heap allocated under Writer.Apply (the
// local BigQuery's own, served on other goroutines, left out), a table's
// share (issue 18: the consumer at 20,000 tables; 14.8 KB before, 5.3 KB
// of it the random source of managedwriter's own retries, one per stream;
// 9.4 KB without them, 8.3 KB with the per-table counters of pkg/metrics).
func TestWriterHeapPerTable(t *testing.T) {
	const tables, bound = 500, 10 * 1024
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1 // every allocation, not a sample
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, ids := localWriter(t, ctx)
	apply := func(i int) {
		table := &cdc.Table{Database: "shop", Name: fmt.Sprintf("t%05d", i), PrimaryKey: []int{0}, Columns: []cdc.Column{
			{Name: "id", Type: cdc.TypeInt64}, {Name: "n", Type: cdc.TypeInt32}, {Name: "note", Type: cdc.TypeString},
		}}
		s, err := avro.Build("strait", table)
		if err != nil {
			t.Fatal(err)
		}
		ev := &cdc.Event{Table: table, Op: cdc.OpCreate, After: []cdc.Value{cdc.Int(1), cdc.Int(0), cdc.Str("one")}, Position: cdc.Position{Epoch: 1, File: 1, Pos: 100}, CommitTime: time.Now()}
		v, err := avro.NewEncoder(table, "strait", "test", uint32(2*i+1), uint32(2*i+2)).AppendValue(nil, ev, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		topic := sink.Topic{Name: "strait.shop." + table.Name, Prefix: "strait", Database: "shop", Table: table.Name}
		if err := w.Apply(ctx, topic, []sink.Change{{KeySchemaID: ids.ID(s.Key), ValueSchemaID: ids.ID(s.Value), Value: v[5:]}}); err != nil {
			t.Fatal(err)
		}
	}
	apply(tables) // what tables share, out of the figure
	first := testenv.HeapUnder("(*Writer).Apply")
	for i := range tables {
		apply(i)
	}
	per := (testenv.HeapUnder("(*Writer).Apply") - first) / tables
	t.Logf("%d bytes a table", per)
	if per > bound {
		t.Errorf("the writer holds %d bytes a table, over %d", per, bound)
	}
}
