package avro

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// manyTable is table i of a source with many tables: a few columns, some
// named as in no other table.
func manyTable(i int) *cdc.Table {
	return &cdc.Table{Database: "shop", Name: fmt.Sprintf("t%05d", i), PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64},
		{Name: fmt.Sprintf("ref_%d", i), Type: cdc.TypeInt32, Nullable: true},
		{Name: "amount", Type: cdc.TypeDecimal, Precision: 12, Scale: 2},
		{Name: "status", Type: cdc.TypeString},
		{Name: fmt.Sprintf("note_%d", i), Type: cdc.TypeString, Nullable: true},
		{Name: "created_at", Type: cdc.TypeDateTime},
		{Name: "updated_at", Type: cdc.TypeTimestamp},
		{Name: "score", Type: cdc.TypeFloat64},
	}}
}

// valueSchemas returns the value schemas of tables [from, from+n).
func valueSchemas(t testing.TB, from, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range n {
		s, err := Build("strait", manyTable(from+i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s.Value
	}
	return out
}

func TestParseShares(t *testing.T) {
	s := valueSchemas(t, 0, 2)
	a, err := Parse(s[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(s[1])
	if err != nil {
		t.Fatal(err)
	}
	field := func(env *Type, name string) *Type { return env.Fields[env.FieldIndex(name)].Type }
	if field(a, "source") != field(b, "source") {
		t.Error("the two tables' source blocks are two parses")
	}
	rowA, _ := field(a, "after").Nullable()
	rowB, _ := field(b, "after").Nullable()
	if rowA == rowB {
		t.Fatal("two tables share a row record")
	}
	if before, _ := field(a, "before").Nullable(); before != rowA {
		t.Error("before and after are two row records")
	}
	if rowA.Fields[0].Type != rowB.Fields[0].Type {
		t.Error("the id columns' types are two parses")
	}
	if rowA.Fields[1].Type == rowA.Fields[0].Type {
		t.Error("an int column and a long column share a type")
	}
}

// TestParseConcurrent parses schemas that share nodes from several
// goroutines at once and skips a value with each parse (run with -race).
func TestParseConcurrent(t *testing.T) {
	schemas := valueSchemas(t, 0, 50)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for _, s := range schemas {
				p, err := Parse(s)
				if err == nil {
					_, err = Skip([]byte{0, 0, 0}, p) // before and after null, then the source block ends short
				}
				if err != nil && !errors.Is(err, ErrShort) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestParseRecursiveNotShared(t *testing.T) {
	const schema = `{"type":"record","name":"List","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","List"]}]}`
	a, err := Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	if next, _ := a.Fields[1].Type.Nullable(); next != a {
		t.Fatal("next is not the list itself")
	}
	if a == b {
		t.Error("a recursive record is shared")
	}
	if a.Fields[0].Type != b.Fields[0].Type {
		t.Error("the long within a recursive record is not shared")
	}
	if _, err := Decode(a, []byte{2, 2, 4, 0}); err != nil { // 1 → 2 → end
		t.Fatal(err)
	}
}

// TestParseHeapPerTable holds the parsed value schemas of many tables, as
// a consumer does for its life, and bounds the heap each takes: the
// envelope and the row record are the table's own, the source block and
// the column types are shared (issue 18: 15.5 KB a table before).
func TestParseHeapPerTable(t *testing.T) {
	const tables, bound = 2000, 4096
	schemas := valueSchemas(t, 0, tables)
	parsed := make([]*Type, 0, tables)
	if _, err := Parse(schemas[0]); err != nil { // what every table shares is counted once, out of the figure
		t.Fatal(err)
	}
	before := testenv.HeapInUse()
	for _, s := range schemas {
		p, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, p)
	}
	per := (testenv.HeapInUse() - before) / tables
	runtime.KeepAlive(parsed)
	runtime.KeepAlive(schemas)
	t.Logf("%d bytes a table", per)
	if per > bound {
		t.Errorf("the parsed value schema of a table holds %d bytes, over %d", per, bound)
	}
}

// BenchmarkParse parses the value schemas of distinct tables.
func BenchmarkParse(b *testing.B) {
	schemas := valueSchemas(b, 0, 1000)
	keep := make([]*Type, 0, len(schemas))
	b.ResetTimer()
	for i := range b.N {
		p, err := Parse(schemas[i%len(schemas)])
		if err != nil {
			b.Fatal(err)
		}
		keep = append(keep, p)
	}
}
