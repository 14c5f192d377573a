package bigquery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// The consumer reads every Kafka record as untrusted: these fuzz targets
// feed the Avro row path arbitrary bodies (and schemas), which must give
// an error — a dead letter — and never a panic, a hang or an allocation
// sized by a length the record claims rather than has.

var update = flag.Bool("update", false, "rewrite the seed corpora under testdata/fuzz")

// fuzzTable has a column of every type the producer writes.
var fuzzTable = &cdc.Table{Database: "shop", Name: "items", PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Type: cdc.TypeInt64},
	{Name: "i32", Type: cdc.TypeInt32, Nullable: true},
	{Name: "u64", Type: cdc.TypeUint64, Nullable: true},
	{Name: "price", Type: cdc.TypeDecimal, Precision: 10, Scale: 2, Nullable: true},
	{Name: "huge", Type: cdc.TypeDecimal, Precision: 65, Scale: 30, Nullable: true},
	{Name: "f32", Type: cdc.TypeFloat32, Nullable: true},
	{Name: "f64", Type: cdc.TypeFloat64, Nullable: true},
	{Name: "flag", Type: cdc.TypeBool, Nullable: true},
	{Name: "bits", Type: cdc.TypeBits, Length: 12, Nullable: true},
	{Name: "name", Type: cdc.TypeString, Nullable: true},
	{Name: "raw", Type: cdc.TypeBytes, Nullable: true},
	{Name: "doc", Type: cdc.TypeJSON, Nullable: true},
	{Name: "day", Type: cdc.TypeDate, Nullable: true},
	{Name: "dur", Type: cdc.TypeTime, Nullable: true},
	{Name: "at", Type: cdc.TypeDateTime, Nullable: true},
	{Name: "ts", Type: cdc.TypeTimestamp, Nullable: true},
	{Name: "geo", Type: cdc.TypeGeometry, Nullable: true},
}}

// fuzzTopic is fuzzTable's topic.
var fuzzTopic = &sink.Topic{Name: "strait.shop.items", Prefix: "strait", Database: "shop", Table: "items"}

// fuzzRows are rows of fuzzTable: extremes and NULLs.
var fuzzRows = [][]cdc.Value{
	{cdc.Int(1), cdc.Int(math.MinInt32), cdc.Int(-1), cdc.Str("-12345678.90"),
		cdc.Str("-99999999999999999999999999999999999.999999999999999999999999999999"),
		cdc.Float(float64(float32(1.5e38))), cdc.Float(-math.MaxFloat64), cdc.Int(1), cdc.Int(0xABC),
		cdc.Str("zażółć 😀"), cdc.Str("\x00\xff"), cdc.Str(`{"a":[1,2]}`), cdc.Int(-719162),
		cdc.Int(-(838*3600 + 59*60 + 59) * 1e6), cdc.Int(253402300799999999), cdc.Int(0),
		cdc.Str("\xe6\x10\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@")},
	{cdc.Int(2), cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null,
		cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null, cdc.Null},
}

// realValues returns value bodies (without the Confluent header) the real
// encoder writes for fuzzTable: an insert, a snapshot read, an update and
// a delete.
func realValues(t testing.TB) (schema string, bodies [][]byte) {
	s, err := avro.Build("strait", fuzzTable)
	if err != nil {
		t.Fatal(err)
	}
	enc := avro.NewEncoder(fuzzTable, "strait", "test", 2, 1)
	now := time.Unix(1700000000, 0)
	for i, ev := range []cdc.Event{
		{Op: cdc.OpCreate, After: fuzzRows[0]},
		{Op: cdc.OpRead, After: fuzzRows[1]},
		{Op: cdc.OpUpdate, Before: fuzzRows[1], After: fuzzRows[0]},
		{Op: cdc.OpDelete, Before: fuzzRows[0]},
	} {
		ev.Table = fuzzTable
		ev.Position = cdc.Position{Epoch: 1, File: 3, Pos: uint64(1000 * (i + 1))}
		ev.CommitTime = now
		v, err := enc.AppendValue(nil, &ev, now)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, v[5:])
	}
	return s.Value, bodies
}

// hostile returns bad variants of a good body: truncations, a huge and a
// negative length prefix, a varint that never ends, trailing bytes.
func hostile(good []byte) [][]byte {
	out := [][]byte{nil, good[:1], good[:len(good)/2], good[:len(good)-1], append(append([]byte{}, good...), 0)}
	for _, prefix := range [][]byte{
		{0x02, 0xfe, 0xff, 0xff, 0xff, 0x0f},    // a union branch, then a length of 2^31-1
		{0x02, 0x01},                            // a negative length
		bytes.Repeat([]byte{0xff}, 16),          // a varint that never ends
		{0x02, 0xfe, 0xff, 0xff, 0xff, 0xff, 1}, // a length beyond int32
	} {
		out = append(out, append(append([]byte{}, prefix...), good...))
	}
	return out
}

// tableSchema is the BigQuery table the consumer creates for p.
func tableSchema(p *valuePlan) bigquery.Schema {
	var s bigquery.Schema
	for _, c := range p.columns {
		s = append(s, c.field())
	}
	return append(s, metadataColumns()...)
}

// rowMessage returns an empty message of the writer schema of s.
func rowMessage(t testing.TB, s bigquery.Schema, cdcCols bool) protoreflect.Message {
	d, err := writerSchema(s, cdcCols)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{Name: proto.String("fuzz.proto"), Syntax: proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{d}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dynamicpb.NewMessage(fd.Messages().Get(0))
}

// maxRowGrowth bounds a row's size by its Avro body's: a value never grows
// more than this many times on its way to the proto wire (decimal digits
// from two's complement bytes), plus a constant per row.
const maxRowGrowth = 4

// FuzzAppendRow feeds arbitrary value bodies to the row path of a
// realistic envelope schema, in both modes: a row built must be a valid
// message of the writer schema and no larger than its body allows.
func FuzzAppendRow(f *testing.F) {
	schema, _ := realValues(f)
	p, err := planValue(schema)
	if err != nil {
		f.Fatal(err)
	}
	ts := tableSchema(p)
	var bindings []*binding
	var msgs []protoreflect.Message
	for _, cdcCols := range []bool{true, false} {
		bd, err := bind(p, ts, cdcCols)
		if err != nil {
			f.Fatal(err)
		}
		bindings = append(bindings, bd)
		msgs = append(msgs, rowMessage(f, ts, cdcCols))
	}
	// Each column costs a few bytes of constant overhead (tag, decimal
	// point and zeros of the scale): bound it by the schema.
	perRow := 64 * (len(ts) + 4)
	f.Fuzz(func(t *testing.T, body []byte) {
		for i, bd := range bindings {
			row, _, _, err := bd.appendRow(nil, body, 1, fuzzTopic)
			if err != nil {
				continue
			}
			if len(row) > maxRowGrowth*len(body)+perRow {
				t.Fatalf("a row of %d bytes from a body of %d", len(row), len(body))
			}
			m := msgs[i].New()
			if err := proto.Unmarshal(row, m.Interface()); err != nil {
				t.Fatalf("the row is not a message of the writer schema: %v", err)
			}
		}
	})
}

// FuzzValueSchema feeds arbitrary schemas and bodies to the consumer's
// schema planning and row path: a record whose schema id names another
// schema, or a registry holding a hostile one. Any schema the plan takes
// must read any body without panicking, and skipping a value of any
// schema must end (recursive schemas, huge counts).
func FuzzValueSchema(f *testing.F) {
	f.Fuzz(func(t *testing.T, schema string, body []byte) {
		if env, err := avro.Parse(schema); err == nil {
			_, _ = avro.Skip(body, env)
		}
		p, err := planValue(schema)
		if err != nil {
			return
		}
		ts := tableSchema(p)
		if _, err := writerSchema(ts, true); err != nil {
			return // a table BigQuery would not take: the table stops, nothing is decoded
		}
		bd, err := bind(p, ts, true)
		if err != nil {
			return
		}
		_, _, _, _ = bd.appendRow(nil, body, 1, fuzzTopic)
	})
}

// TestFuzzCorpus checks the seed corpora against what they are made of —
// the real encoder's records and hostile variants of them — and rewrites
// them with -update.
func TestFuzzCorpus(t *testing.T) {
	schema, bodies := realValues(t)
	var rows [][]byte
	rows = append(rows, bodies...)
	rows = append(rows, hostile(bodies[0])...)
	rows = append(rows, hostile(bodies[3])...)
	checkCorpus(t, "FuzzAppendRow", rows, func(b []byte) string { return fuzzFile(b) })
	p, err := planValue(schema)
	if err != nil {
		t.Fatal(err)
	}
	bd, err := bind(p, tableSchema(p), true)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range rows {
		_, _, _, err := bd.appendRow(nil, b, 1, fuzzTopic)
		if good := i < len(bodies); (err == nil) != good {
			t.Errorf("FuzzAppendRow seed %d: appendRow: %v, want an error: %t", i, err, !good)
		}
	}

	// The envelope with other envelopes' bodies (a wrong schema id), and a
	// recursive schema in an extra envelope field with deep and huge
	// values.
	users, err := avro.Build("strait", &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0},
		Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt64}, {Name: "email", Type: cdc.TypeString, Nullable: true}}})
	if err != nil {
		t.Fatal(err)
	}
	const recursive = `{"type":"record","name":"strait.shop.t.Envelope","fields":[` +
		`{"name":"tree","type":{"type":"record","name":"Node","fields":[{"name":"kids","type":{"type":"array","items":"Node"}},{"name":"tags","type":{"type":"map","values":["null","Node"]}}]}},` +
		`{"name":"nulls","type":{"type":"array","items":"null"}},` +
		`{"name":"before","type":["null",{"type":"record","name":"Value","fields":[{"name":"id","type":"long"},{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},{"name":"fx","type":{"type":"fixed","name":"F4","size":4}}]}]},` +
		`{"name":"after","type":["null","Value"]},{"name":"source","type":["null","string"]},{"name":"op","type":"string"}]}`
	deep := append(bytes.Repeat([]byte{0x02}, 200), 0) // arrays of one node, 200 levels down
	huge := []byte{0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	good := []byte{0x00, 0x00, 0x04, 0x00, 0x02, 0x02, 0x02, 'A', 'B', 'C', 'D', 0x00, 0x00, 0x02, 'c'}
	pairs := [][2][]byte{
		{[]byte(schema), bodies[0]},
		{[]byte(users.Value), bodies[0]},
		{[]byte(users.Key), bodies[2]},
		{[]byte(recursive), good},
		{[]byte(recursive), deep},
		{[]byte(recursive), huge},
		{[]byte(recursive), append([]byte{0x00}, huge...)},
		{[]byte(`{"type":"fixed","name":"f","size":-1}`), []byte{1}},
		{[]byte(`{"type":"enum","name":"e"}`), []byte{0}},
	}
	checkCorpus(t, "FuzzValueSchema", pairs, func(p [2][]byte) string { return fuzzFile(string(p[0]), p[1]) })
	env, err := avro.Parse(recursive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := avro.Skip(good, env); err != nil {
		t.Errorf("skip a good value of the recursive schema: %v", err)
	}
	if _, err := avro.Skip(deep, env); !errors.Is(err, avro.ErrNesting) {
		t.Errorf("skip a value nested 200 deep: %v, want %v", err, avro.ErrNesting)
	}
	for _, schema := range []string{`{"type":"fixed","name":"f","size":-1}`, `{"type":"enum","name":"e","symbols":[1]}`,
		`{"type":"bytes","logicalType":"decimal","precision":4,"scale":-2}`} {
		if _, err := avro.Parse(schema); err == nil {
			t.Errorf("avro.Parse(%s): no error", schema)
		}
	}
}

// checkCorpus compares testdata/fuzz/<target>/seed-NN with the entries (or
// writes them with -update).
func checkCorpus[T any](t *testing.T, target string, entries []T, file func(T) string) {
	t.Helper()
	files := make([]string, len(entries))
	for i, e := range entries {
		files[i] = file(e)
	}
	testenv.CheckCorpus(t, filepath.Join("testdata", "fuzz", target), files, *update)
}

// fuzzFile is a corpus file of the values, in go test's format.
func fuzzFile(values ...any) string {
	s := "go test fuzz v1\n"
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			s += "[]byte(" + strconv.Quote(string(v)) + ")\n"
		case string:
			s += "string(" + strconv.Quote(v) + ")\n"
		}
	}
	return s
}

// TestDecimalTooLong: a decimal longer than any BIGNUMERIC is a
// *rangeError before its digits are computed (a length the record chooses
// would otherwise choose the CPU time: about 1 s per MiB); one within the
// byte bound but beyond BIGNUMERIC's range is one after; one within the
// range is written.
func TestDecimalTooLong(t *testing.T) {
	c := &column{name: "price", conv: convDecimal, value: &avro.Type{Kind: "bytes", Logical: "decimal", Precision: 76, Scale: 38}, num: 3,
		bqType: bigquery.BigNumericFieldType}
	body := func(n int) []byte {
		b := binary.AppendVarint(nil, int64(n))
		return append(b, bytes.Repeat([]byte{0x7f}, n)...)
	}
	for _, n := range []int{maxDecimalBytes, 1 << 20} {
		var re *rangeError
		if _, _, err := appendValue(nil, body(n), c); !errors.As(err, &re) {
			t.Errorf("a decimal of %d bytes: err = %v, want a *rangeError", n, err)
		}
	}
	if _, _, err := appendValue(nil, body(31), c); err != nil {
		t.Errorf("a decimal of 31 bytes: %v", err)
	}
}
