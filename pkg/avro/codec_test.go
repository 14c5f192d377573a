package avro

import (
	"encoding/binary"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// decode checks the Confluent header and decodes the body with goavro, the
// reference implementation.
func decode(t *testing.T, schema string, id uint32, b []byte) map[string]any {
	t.Helper()
	if b[0] != 0 || binary.BigEndian.Uint32(b[1:5]) != id {
		t.Fatalf("header % x, want magic 0 and id %d", b[:5], id)
	}
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatalf("schema does not parse: %v\n%s", err, schema)
	}
	native, rest, err := codec.NativeFromBinary(b[5:])
	if err != nil {
		t.Fatalf("goavro cannot decode our bytes: %v", err)
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left over", len(rest))
	}
	return native.(map[string]any)
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

func TestEncodeEveryType(t *testing.T) {
	tbl := &cdc.Table{Database: "shop", Name: "all-types", PrimaryKey: []int{0, 1}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64},
		{Name: "region", Type: cdc.TypeString},
		{Name: "i32", Type: cdc.TypeInt32, Nullable: true},
		{Name: "u64", Type: cdc.TypeUint64, Nullable: true},
		{Name: "dec", Type: cdc.TypeDecimal, Precision: 65, Scale: 30, Nullable: true},
		{Name: "dec_neg", Type: cdc.TypeDecimal, Precision: 10, Scale: 4, Nullable: true},
		{Name: "f32", Type: cdc.TypeFloat32, Nullable: true},
		{Name: "f64", Type: cdc.TypeFloat64, Nullable: true},
		{Name: "flag", Type: cdc.TypeBool, Nullable: true},
		{Name: "bits", Type: cdc.TypeBits, Length: 64, Nullable: true},
		{Name: "raw", Type: cdc.TypeBytes, Nullable: true},
		{Name: "doc", Type: cdc.TypeJSON, Nullable: true},
		{Name: "day", Type: cdc.TypeDate, Nullable: true},
		{Name: "dur", Type: cdc.TypeTime, Nullable: true},
		{Name: "wall", Type: cdc.TypeDateTime, Nullable: true},
		{Name: "at", Type: cdc.TypeTimestamp, Nullable: true},
		{Name: "geo", Type: cdc.TypeGeometry, Nullable: true},
		{Name: "2 odd-name", Type: cdc.TypeString, Nullable: true},
		{Name: "gone", Type: cdc.TypeString, Nullable: true},
	}}
	s, err := Build("strait", tbl)
	if err != nil {
		t.Fatal(err)
	}
	row := []cdc.Value{
		cdc.Int(math.MaxInt64), cdc.Str("eu 🐬"), cdc.Int(math.MinInt32), cdc.Int(-1),
		cdc.Str("-12345678901234567890123456789012345.123456789012345678901234567890"), cdc.Str("-0.0001"),
		cdc.Float(float64(float32(3.4028235e38))), cdc.Float(-math.MaxFloat64), cdc.Int(1), cdc.Int(math.MinInt64 + 1),
		cdc.Str("\x00\xff"), cdc.Str(`{"a":1}`), cdc.Int(-354285), cdc.Int(-3020999000000),
		cdc.Int(253402300799999999), cdc.Int(981173106000007),
		cdc.Str("\xe6\x10\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@"),
		cdc.Str("x"), cdc.Null,
	}
	commit := time.Unix(1700000000, 0)
	ev := &cdc.Event{Table: tbl, Op: cdc.OpUpdate, Before: row, After: row,
		Position:   cdc.Position{Epoch: 1, File: 2, Pos: 3, Row: 4},
		Source:     cdc.Source{ServerID: 9, GTID: "0-9-42", File: "mysql-bin.000002", Pos: 3, Row: 4},
		CommitTime: commit,
	}
	enc := NewEncoder(tbl, "strait", "test", 11, 12)

	key, err := enc.AppendKey(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	gotKey := decode(t, s.Key, 11, key)
	if diff := cmp.Diff(gotKey, map[string]any{"id": int64(math.MaxInt64), "region": "eu 🐬"}); diff != "" {
		t.Errorf("key (-got +want):\n%s", diff)
	}

	val, err := enc.AppendValue(nil, ev, time.UnixMilli(1700000000123))
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, s.Value, 12, val)
	after := got["after"].(map[string]any)["strait.shop.all_types.Value"].(map[string]any)
	want := map[string]any{
		"id":          map[string]any{"long": int64(math.MaxInt64)},
		"region":      map[string]any{"string": "eu 🐬"},
		"i32":         map[string]any{"int": int32(math.MinInt32)},
		"u64":         map[string]any{"bytes.decimal": rat("18446744073709551615")},
		"dec":         map[string]any{"bytes.decimal": rat("-12345678901234567890123456789012345.123456789012345678901234567890")},
		"dec_neg":     map[string]any{"bytes.decimal": rat("-0.0001")},
		"f32":         map[string]any{"float": float32(3.4028235e38)},
		"f64":         map[string]any{"double": -math.MaxFloat64},
		"flag":        map[string]any{"boolean": true},
		"bits":        map[string]any{"bytes": []byte{0x80, 0, 0, 0, 0, 0, 0, 1}},
		"raw":         map[string]any{"bytes": []byte{0, 0xff}},
		"doc":         map[string]any{"string": `{"a":1}`},
		"day":         map[string]any{"int.date": time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"dur":         map[string]any{"long": int64(-3020999000000)},
		"wall":        map[string]any{"long": int64(253402300799999999)}, // goavro 2.15 predates local-timestamp-micros
		"at":          map[string]any{"long.timestamp-micros": time.UnixMicro(981173106000007).UTC()},
		"geo":         map[string]any{"io.debezium.data.geometry.Geometry": map[string]any{"wkb": []byte("\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@"), "srid": map[string]any{"int": int32(4326)}}},
		"_2_odd_name": map[string]any{"string": "x"},
		"gone":        nil,
	}
	if diff := cmp.Diff(after, want, cmp.Comparer(func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("after (-got +want):\n%s", diff)
	}
	if _, ok := got["before"].(map[string]any)["strait.shop.all_types.Value"]; !ok {
		t.Errorf("before missing: %v", got["before"])
	}
	src := got["source"].(map[string]any)
	wantSrc := map[string]any{
		"version": "test", "connector": "mysql", "name": "strait", "ts_ms": int64(1700000000000),
		"snapshot": map[string]any{"string": "false"}, "db": "shop",
		"sequence": map[string]any{"string": "0000000000000001/0000000000000002/0000000000000003/0000000000000004"},
		"table":    map[string]any{"string": "all-types"}, "server_id": int64(9),
		"gtid": map[string]any{"string": "0-9-42"}, "file": "mysql-bin.000002", "pos": int64(3), "row": int32(4),
		"thread": nil, "query": nil, "before_key_only": nil,
	}
	if diff := cmp.Diff(src, wantSrc); diff != "" {
		t.Errorf("source (-got +want):\n%s", diff)
	}
	if got["op"] != "u" || got["ts_ms"].(map[string]any)["long"] != int64(1700000000123) {
		t.Errorf("op %v ts_ms %v", got["op"], got["ts_ms"])
	}
}

func TestDecimalEdges(t *testing.T) {
	for _, c := range []struct {
		in    string
		scale int
		want  string
	}{
		{"0", 0, "0"}, {"-0.0", 1, "0"}, {"127", 0, "127"}, {"128", 0, "128"}, {"-128", 0, "-128"}, {"-129", 0, "-129"},
		{"99999999999999999999999999999999999999999999999999999999999999999", 0, "99999999999999999999999999999999999999999999999999999999999999999"},
		{"-99999999999999999999999999999999999.999999999999999999999999999999", 30, "-99999999999999999999999999999999999.999999999999999999999999999999"},
		{"1.5", 3, "1.5"},
	} {
		tbl := &cdc.Table{Database: "d", Name: "t", Columns: []cdc.Column{{Name: "v", Type: cdc.TypeDecimal, Precision: 65, Scale: c.scale}}}
		s, _ := Build("p", tbl)
		b, err := NewEncoder(tbl, "p", "v", 1, 2).AppendValue(nil, &cdc.Event{Table: tbl, Op: cdc.OpCreate, After: []cdc.Value{cdc.Str(c.in)}}, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		got := decode(t, s.Value, 2, b)["after"].(map[string]any)["p.d.t.Value"].(map[string]any)["v"].(map[string]any)["bytes.decimal"].(*big.Rat)
		if got.Cmp(rat(c.want)) != 0 {
			t.Errorf("%s scale %d: got %s", c.in, c.scale, got.FloatString(c.scale))
		}
	}
	if _, err := appendDecimal(nil, "1.25", 1); err == nil {
		t.Error("a value with more fractional digits than the scale must fail, not round")
	}
}
