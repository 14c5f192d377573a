package avro

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// TestJSONDecoder encodes a row of every kind of column with the Encoder
// and checks the JSON the decoder makes of it: columns in order under their
// real names, decimals with their scale, times readable, no floats for
// exact values.
func TestJSONDecoder(t *testing.T) {
	tbl := &cdc.Table{Database: "shop", Name: "all", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64},
		{Name: "u64", Type: cdc.TypeUint64, Nullable: true},
		{Name: "price", Type: cdc.TypeDecimal, Precision: 12, Scale: 2, Nullable: true},
		{Name: "f32", Type: cdc.TypeFloat32, Nullable: true},
		{Name: "f64", Type: cdc.TypeFloat64, Nullable: true},
		{Name: "raw", Type: cdc.TypeBytes, Nullable: true},
		{Name: "day", Type: cdc.TypeDate, Nullable: true},
		{Name: "dur", Type: cdc.TypeTime, Nullable: true},
		{Name: "wall", Type: cdc.TypeDateTime, Nullable: true},
		{Name: "at", Type: cdc.TypeTimestamp, Nullable: true},
		{Name: "2 odd", Type: cdc.TypeString, Nullable: true},
		{Name: "gone", Type: cdc.TypeString, Nullable: true},
	}}
	s, err := Build("strait", tbl)
	if err != nil {
		t.Fatal(err)
	}
	row := []cdc.Value{
		cdc.Int(7), cdc.Int(-1), cdc.Str("10.50"), cdc.Float(1.5), cdc.Float(math.NaN()), cdc.Str("\x00\xff"),
		cdc.Int(19844), cdc.Int(-(838*3600e6 + 59*60e6 + 59e6 + 500)), cdc.Int(1714564800123456), cdc.Int(1714564800000001),
		cdc.Str("x"), cdc.Null,
	}
	ev := &cdc.Event{Table: tbl, Op: cdc.OpCreate, After: row,
		Position: cdc.Position{Epoch: 1, File: 2, Pos: 3}, Source: cdc.Source{File: "b.000002", Pos: 3},
		CommitTime: time.Unix(1700000000, 0)}
	enc := NewEncoder(tbl, "strait", "test", 1, 2)
	key, err := enc.AppendKey(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	val, err := enc.AppendValue(nil, ev, time.UnixMilli(1700000000123))
	if err != nil {
		t.Fatal(err)
	}
	d := NewJSONDecoder()
	k, err := d.Decode(s.Key, key[5:])
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Decode(s.Value, val[5:])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"key", marshal(t, k), `{"id":7}`},
		{"after", marshal(t, v.(Object).Get("after")), `{"id":7,"u64":"18446744073709551615","price":"10.50","f32":1.5,"f64":"NaN",` +
			`"raw":"AP8=","day":"2024-05-01","dur":"-838:59:59.0005","wall":"2024-05-01T12:00:00.123456",` +
			`"at":"2024-05-01T12:00:00.000001Z","2 odd":"x","gone":null}`},
		{"before", marshal(t, v.(Object).Get("before")), `null`},
		{"op", marshal(t, v.(Object).Get("op")), `"c"`},
		{"source.sequence", marshal(t, v.(Object).Get("source").(Object).Get("sequence")), `"0000000000000001/0000000000000002/0000000000000003/0000000000000000"`},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.what, c.got, c.want)
		}
	}
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
