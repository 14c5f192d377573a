package main

import (
	"context"
	"encoding/binary"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// TestConsumeFloatAndBinaryKeys: BigQuery refuses FLOAT64 and BYTES
// primary-key columns and window partitions by FLOAT64, so a FLOAT or
// DOUBLE key column is a STRING holding the shortest decimal that reads
// back as the value's FLOAT64 (−0 written as 0, the same key in MySQL),
// in both modes, and a binary key column of an upsert table is a STRING of
// 0x and hex; a changelog keeps it BYTES. An update of a key from −0 to 0
// leaves one row.
func TestConsumeFloatAndBinaryKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "floatkeys"
	floats := &cdc.Table{Database: "shop", Name: "floats", PrimaryKey: []int{0, 1}, Columns: []cdc.Column{
		{Name: "f", Type: cdc.TypeFloat32},
		{Name: "d", Type: cdc.TypeFloat64},
		{Name: "v", Type: cdc.TypeString, Nullable: true},
	}}
	blobs := &cdc.Table{Database: "shop", Name: "blobs", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "b", Type: cdc.TypeBytes},
		{Name: "v", Type: cdc.TypeString, Nullable: true},
	}}
	negZero := math.Copysign(0, -1)
	pub := newPublisher(t, prefix)
	pub.publish(ctx,
		ins(floats, cdc.Float(0.1), cdc.Float(0.1), cdc.Str("tenth")),
		ins(floats, cdc.Float(1), cdc.Float(negZero), cdc.Str("minus zero")),
		ins(floats, cdc.Float(-2.5), cdc.Float(1e300), cdc.Str("big")),
		ins(blobs, cdc.Str("\x00\xff"), cdc.Str("a")), ins(blobs, cdc.Str(""), cdc.Str("empty")))
	// UPDATE floats SET d = 0 WHERE d = -0: the same key in MySQL.
	pub.publish(ctx, upd(floats, []cdc.Value{cdc.Float(1), cdc.Float(negZero), cdc.Str("minus zero")}, []cdc.Value{cdc.Float(1), cdc.Float(0), cdc.Str("zero")}))

	startConsumer(t, consumerArgs(prefix, "g", "ds_floatkeys"))
	waitRows(t, ctx, "ds_floatkeys", "shop_floats", []map[string]any{
		{"f": "-2.5", "d": "1e+300", "v": "big"},
		{"f": "0.10000000149011612", "d": "0.1", "v": "tenth"},
		{"f": "1", "d": "0", "v": "zero"},
	})
	waitRows(t, ctx, "ds_floatkeys", "shop_blobs", []map[string]any{
		{"b": "0x", "v": "empty"},
		{"b": "0x00ff", "v": "a"},
	})

	startConsumer(t, append(consumerArgs(prefix, "g_append", "ds_floatkeys_append"), "-bigquery.mode", "append"))
	waitChangelog(t, ctx, "ds_floatkeys_append", "shop_floats", []string{"f", "d", "v"}, []string{
		"c 0.10000000149011612 0.1 tenth", "c 1 0 minus zero", "c -2.5 1e+300 big", "u 1 0 zero",
	})
	waitChangelog(t, ctx, "ds_floatkeys_append", "shop_blobs", []string{"b", "v"}, []string{"c [0 255] a", "c [] empty"})
	view, err := env.bq.Table(project, "ds_floatkeys_append", "shop_floats_latest")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(view.View.Query, "PARTITION BY `f`, `d`") {
		t.Errorf("view query %s, want it to partition by f, d", view.View.Query)
	}
}

// TestConsumeWideDecimal: a DECIMAL(65,0) column is BIGNUMERIC; its values
// at both ends of BIGNUMERIC's range arrive exactly, and one beyond either
// end and 65 nines are dead-lettered as row_rejected with an error naming
// the column, the value and the range, while the table goes on.
func TestConsumeWideDecimal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix, group, dataset = "widedec", "g", "ds_widedec"
	wide := &cdc.Table{Database: "shop", Name: "wide", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64},
		{Name: "amount", Type: cdc.TypeDecimal, Precision: 65, Scale: 0, Nullable: true},
	}}
	const (
		max    = "578960446186580977117854925043439539266"
		beyond = "578960446186580977117854925043439539267"
	)
	nines := strings.Repeat("9", 65)
	pub := newPublisherPartitions(t, prefix, 1)
	pub.publish(ctx,
		ins(wide, cdc.Int(1), cdc.Str(max)), ins(wide, cdc.Int(2), cdc.Str("-"+max)),
		ins(wide, cdc.Int(3), cdc.Str(beyond)), ins(wide, cdc.Int(4), cdc.Str("-"+beyond)),
		ins(wide, cdc.Int(5), cdc.Str(nines)), ins(wide, cdc.Int(6), cdc.Str("0")))

	startConsumer(t, consumerArgs(prefix, group, dataset))
	ratOf := func(s string) *big.Rat { r, _ := new(big.Rat).SetString(s); return r }
	waitRows(t, ctx, dataset, "shop_wide", []map[string]any{
		{"id": int64(1), "amount": ratOf(max)},
		{"id": int64(2), "amount": ratOf("-" + max)},
		{"id": int64(6), "amount": ratOf("0")},
	})
	waitCommitted(t, ctx, group, prefix+".shop.wide")
	letters := readTopic(t, ctx, prefix+"._dead_letter."+group, 3)
	want := map[string]string{"2": beyond, "3": "-" + beyond, "4": nines} // offset → value
	for _, l := range letters {
		h := headers(l)
		v, ok := want[h["strait.offset"]]
		if !ok {
			t.Errorf("dead letter of offset %s, want only offsets 2, 3, 4", h["strait.offset"])
			continue
		}
		delete(want, h["strait.offset"])
		if h["strait.reason"] != bigquery.ReasonRowRejected {
			t.Errorf("offset %s: reason %q, want %q", h["strait.offset"], h["strait.reason"], bigquery.ReasonRowRejected)
		}
		for _, s := range []string{"amount", v, max} {
			if !strings.Contains(h["strait.error"], s) {
				t.Errorf("offset %s: error %q does not name %s", h["strait.offset"], h["strait.error"], s)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("no dead letter for offsets %v", want)
	}
}

// point is a geometry value as MySQL stores it: SRID 0, then the WKB of
// POINT(x y).
func point(x, y float64) cdc.Value {
	b := make([]byte, 4, 25)
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(y))
	return cdc.Str(string(b))
}

// TestConsumeNestedMessageNames: columns named like the nested messages
// of the writer schema's geometry records (s1, S2, row_s1) and like its
// root message (row) do not collide with them.
func TestConsumeNestedMessageNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "nestednames"
	shapes := &cdc.Table{Database: "shop", Name: "shapes", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64},
		{Name: "s1", Type: cdc.TypeString, Nullable: true},
		{Name: "S2", Type: cdc.TypeString, Nullable: true},
		{Name: "row", Type: cdc.TypeString, Nullable: true},
		{Name: "row_s1", Type: cdc.TypeString, Nullable: true},
		{Name: "g1", Type: cdc.TypeGeometry, Nullable: true},
		{Name: "g2", Type: cdc.TypeGeometry, Nullable: true},
	}}
	pub := newPublisher(t, prefix)
	p1, p2 := point(1, 2), point(3, 4)
	pub.publish(ctx, ins(shapes, cdc.Int(1), cdc.Str("a"), cdc.Str("b"), cdc.Str("c"), cdc.Str("d"), p1, p2))
	startConsumer(t, consumerArgs(prefix, "g", "ds_nestednames"))
	waitRows(t, ctx, "ds_nestednames", "shop_shapes", []map[string]any{{
		"id": int64(1), "s1": "a", "S2": "b", "row": "c", "row_s1": "d",
		"g1": map[string]any{"wkb": []byte(p1.Str[4:]), "srid": int64(0)},
		"g2": map[string]any{"wkb": []byte(p2.Str[4:]), "srid": int64(0)},
	}})
}

// TestConsumeReservedColumnNames: columns whose names start with a prefix
// BigQuery reserves, in any case, or with _strait_ get _strait_ in front,
// the primary key included, in both modes.
func TestConsumeReservedColumnNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "reserved"
	odd := &cdc.Table{Database: "shop", Name: "odd", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "_PARTITION_id", Type: cdc.TypeInt64},
		{Name: "_CHANGE_TYPE", Type: cdc.TypeString, Nullable: true},
		{Name: "_change_sequence_number", Type: cdc.TypeString, Nullable: true},
		{Name: "_Table_name", Type: cdc.TypeString, Nullable: true},
		{Name: "_strait_op", Type: cdc.TypeString, Nullable: true},
		{Name: "name", Type: cdc.TypeString, Nullable: true},
	}}
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(odd, cdc.Int(1), cdc.Str("DELETE"), cdc.Str("x"), cdc.Str("t"), cdc.Str("op"), cdc.Str("one")),
		ins(odd, cdc.Int(2), cdc.Str("UPSERT"), cdc.Null, cdc.Null, cdc.Null, cdc.Str("two")))
	pub.publish(ctx, del(odd, cdc.Int(2), cdc.Str("UPSERT"), cdc.Null, cdc.Null, cdc.Null, cdc.Str("two")))

	startConsumer(t, consumerArgs(prefix, "g", "ds_reserved"))
	want := map[string]any{
		"_strait__PARTITION_id": int64(1), "_strait__CHANGE_TYPE": "DELETE", "_strait__change_sequence_number": "x",
		"_strait__Table_name": "t", "_strait__strait_op": "op", "name": "one",
	}
	waitRows(t, ctx, "ds_reserved", "shop_odd", []map[string]any{want})
	md, err := env.bq.Table(project, "ds_reserved", "shop_odd")
	if err != nil {
		t.Fatal(err)
	}
	if pk := md.TableConstraints.PrimaryKey.Columns; len(pk) != 1 || pk[0] != "_strait__PARTITION_id" {
		t.Errorf("primary key %v, want [_strait__PARTITION_id]", pk)
	}
	for _, n := range []string{"_PARTITION_id", "_CHANGE_TYPE", "_Table_name"} {
		if name := bigquery.ColumnName(n); name != "_strait_"+n {
			t.Errorf("ColumnName(%s) = %s, want _strait_%s", n, name, n)
		}
	}

	startConsumer(t, append(consumerArgs(prefix, "g_append", "ds_reserved_append"), "-bigquery.mode", "append"))
	waitChangelog(t, ctx, "ds_reserved_append", "shop_odd", []string{"_strait__PARTITION_id", "_strait__CHANGE_TYPE", "_strait__strait_op", "name"}, []string{
		"c 1 DELETE op one", "c 2 UPSERT <nil> two", "d 2 UPSERT <nil> two",
	})
	view, err := env.bq.Table(project, "ds_reserved_append", "shop_odd_latest")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(view.View.Query, "PARTITION BY `_strait__PARTITION_id`") {
		t.Errorf("view query %s, want it to partition by _strait__PARTITION_id", view.View.Query)
	}
}
