package avro

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite the seed corpora under testdata/fuzz")

// fuzzTable has a column of every type the producer writes.
var fuzzTable = &cdc.Table{Database: "shop", Name: "items", PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Type: cdc.TypeInt64},
	{Name: "u64", Type: cdc.TypeUint64, Nullable: true},
	{Name: "price", Type: cdc.TypeDecimal, Precision: 65, Scale: 30, Nullable: true},
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

// recursiveSchema has what the producer's schemas lack and a registry may
// hold: recursion, arrays, maps, null items, enums and fixed.
const recursiveSchema = `{"type":"record","name":"t.Tree","fields":[` +
	`{"name":"kids","type":{"type":"array","items":"Tree"}},` +
	`{"name":"tags","type":{"type":"map","values":["null","Tree"]}},` +
	`{"name":"nulls","type":{"type":"array","items":"null"}},` +
	`{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},` +
	`{"name":"fx","type":{"type":"fixed","name":"F2","size":2}}]}`

// fuzzSchemas are the schemas FuzzJSONDecoder picks from by index: the
// producer's value and key schemas of fuzzTable, and recursiveSchema.
func fuzzSchemas(t testing.TB) []string {
	s, err := Build("strait", fuzzTable)
	if err != nil {
		t.Fatal(err)
	}
	return []string{s.Value, s.Key, recursiveSchema}
}

// FuzzJSONDecoder feeds arbitrary bodies to the decoder of `consumer
// tail`: a body is decoded to a value encoding/json can print, or refused,
// never a panic, a hang or an allocation sized by a count the body claims.
func FuzzJSONDecoder(f *testing.F) {
	schemas := fuzzSchemas(f)
	dec := NewJSONDecoder()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		v, err := dec.Decode(schemas[int(which)%len(schemas)], body)
		if err != nil {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("a decoded body does not print as JSON: %v", err)
		}
	})
}

// TestFuzzCorpus checks the seed corpus against what it is made of — the
// real encoder's records, hostile variants of them, values of
// recursiveSchema — and rewrites it with -update. The hostile ones must be
// refused.
func TestFuzzCorpus(t *testing.T) {
	schemas := fuzzSchemas(t)
	enc := NewEncoder(fuzzTable, "strait", "test", 2, 1)
	row := []cdc.Value{cdc.Int(1), cdc.Int(-1), cdc.Str("-99999999999999999999999999999999999.999999999999999999999999999999"),
		cdc.Float(float64(float32(1.5e38))), cdc.Float(math.NaN()), cdc.Int(1), cdc.Int(0xABC), cdc.Str("zażółć 😀"),
		cdc.Str("\x00\xff"), cdc.Str(`{"a":[1,2]}`), cdc.Int(-719162), cdc.Int(-(838*3600 + 59*60 + 59) * 1e6),
		cdc.Int(253402300799999999), cdc.Int(0), cdc.Str("\xe6\x10\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@")}
	ev := &cdc.Event{Table: fuzzTable, Op: cdc.OpUpdate, Before: row, After: row,
		Position: cdc.Position{Epoch: 1, File: 3, Pos: 4}, CommitTime: time.Unix(1700000000, 0)}
	value, err := enc.AppendValue(nil, ev, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	key, err := enc.AppendKey(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	value, key = value[5:], key[5:]
	type seed struct {
		which uint8
		body  []byte
		good  bool
	}
	tree := []byte{0x00, 0x00, 0x04, 0x00, 0x02, 'x', 'y'}              // no kids, no tags, two nulls, B, "xy"
	deep := append(bytes.Repeat([]byte{0x02}, 200), 0)                  // arrays of one tree, 200 levels down
	hugeNulls := []byte{0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00} // 2^31-1 nulls
	hugeKids := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}                    // 2^31-1 kids
	seeds := []seed{
		{0, value, true}, {1, key, true}, {2, tree, true},
		{0, value[:len(value)-1], false}, {0, append(append([]byte{}, value...), 0), false},
		{0, append([]byte{0x02, 0xfe, 0xff, 0xff, 0xff, 0x0f}, value[1:]...), false}, // before: a length of 2^31-1
		{0, append([]byte{0x02, 0x01}, value[1:]...), false},                         // before: a negative length
		{1, bytes.Repeat([]byte{0xff}, 16), false},                                   // a varint that never ends
		{2, deep, false}, {2, hugeNulls, false}, {2, hugeKids, false},
	}
	dec := NewJSONDecoder()
	var files []string
	for i, s := range seeds {
		if _, err := dec.Decode(schemas[s.which], s.body); (err == nil) != s.good {
			t.Errorf("seed %d: Decode: %v, want an error: %t", i, err, !s.good)
		}
		files = append(files, fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%s)\n", s.which, strconv.Quote(string(s.body))))
	}
	testenv.CheckCorpus(t, filepath.Join("testdata", "fuzz", "FuzzJSONDecoder"), files, *update)
	if _, err := dec.Decode(recursiveSchema, deep); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("a tree 200 levels deep: %v, want an error about nesting", err)
	}
}
