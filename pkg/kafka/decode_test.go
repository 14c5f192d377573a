package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestDecoderHeapPerSchema decodes a record of each of many tables'
// schemas, as the consumer's group does, and has the sink take each
// schema's text once, as the writer does to parse it: what the decoder
// holds afterwards is bounded by a few bytes an id (the live heap
// allocated under decode). It kept every text, about 2.5 KB a value
// schema of three columns (issue 18: the consumer at 20,000 tables). A
// second take of a text fetches it again.
func TestDecoderHeapPerSchema(t *testing.T) {
	const tables, bound = 500, 256
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := testenv.StartBenchRegistry() // srfake compares a schema with each it holds
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, tables)
	for i := range ids {
		table := &cdc.Table{Database: "shop", Name: fmt.Sprintf("t%05d", i), PrimaryKey: []int{0}, Columns: []cdc.Column{
			{Name: "id", Type: cdc.TypeInt64}, {Name: "n", Type: cdc.TypeInt32}, {Name: "note", Type: cdc.TypeString},
		}}
		s, err := avro.Build("strait", table)
		if err != nil {
			t.Fatal(err)
		}
		sch, err := cl.CreateSchema(ctx, "strait.shop."+table.Name+"-value", sr.Schema{Schema: s.Value, Type: sr.TypeAvro})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = sch.ID
	}
	dec := newDecoder(slog.New(slog.DiscardHandler), cl, func(bool) {})
	read := func(id int) {
		m, err := dec.decode(ctx, binary.BigEndian.AppendUint32([]byte{0}, uint32(id)))
		if err != nil || m.SchemaID != id {
			t.Fatalf("decode of schema id %d: %+v, %v", id, m, err)
		}
		if _, err := dec.take(ctx, id); err != nil {
			t.Fatalf("take %d: %v", id, err)
		}
	}

	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1 // every allocation, not a sample
	first := testenv.HeapUnder("(*decoder).decode")
	for _, id := range ids {
		read(id)
	}
	per := (testenv.HeapUnder("(*decoder).decode") - first) / tables
	t.Logf("%d bytes a schema", per)
	if per > bound {
		t.Errorf("the decoder holds %d bytes a schema once the sink took them, over %d", per, bound)
	}

	// Taken texts are asked for again: the registry answers.
	text, err := dec.take(ctx, ids[0])
	if want, _ := cl.SchemaByID(ctx, ids[0]); err != nil || text != want.Schema {
		t.Errorf("second take of schema %d: %.40q, %v; want the registry's text", ids[0], text, err)
	}
}
