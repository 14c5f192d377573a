package avro

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// zeroWidthArray is an array of items that take no bytes, size bytes
// long, whose blocks each claim as many items as there are bytes left: a
// plausible claim for items of no width, and about size²/6 items in all.
func zeroWidthArray(size int) []byte {
	b := make([]byte, 0, size)
	for len(b)+3+1 <= size {
		left := size - len(b) - 3 - 1 // after this block's count and the final 0
		v := uint64(min(left, 1<<20-1)) << 1
		b = append(b, byte(v)|0x80, byte(v>>7)|0x80, byte(v>>14)) // a 3-byte varint
	}
	return append(b, 0)
}

// hostile are bodies of 1 MiB (or claiming far more) that once made a
// reader allocate or loop by what they claim: for each, its schema.
func hostile() []struct {
	name, schema string
	body         []byte
} {
	const mib = 1 << 20
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // 2^31-1, zig-zag
	return []struct {
		name, schema string
		body         []byte
	}{
		{"nulls", `{"type":"array","items":"null"}`, zeroWidthArray(mib)},
		{"empty records", `{"type":"array","items":{"type":"record","name":"E","fields":[]}}`, zeroWidthArray(mib)},
		{"records of nulls", `{"type":"array","items":{"type":"record","name":"N","fields":[{"name":"a","type":"null"},{"name":"b","type":"null"}]}}`, zeroWidthArray(mib)},
		{"fixed of size 0", `{"type":"array","items":{"type":"fixed","name":"Z","size":0}}`, zeroWidthArray(mib)},
		{"arrays of nulls", `{"type":"array","items":{"type":"array","items":"null"}}`,
			append(append(appendLong(nil, mib/64-1), bytes.Repeat(zeroWidthArray(64), mib/64-1)...), 0)},
		{"map of nulls", `{"type":"map","values":"null"}`, append(huge, 0)},
		{"claimed strings", `{"type":"array","items":"string"}`, append(huge, bytes.Repeat([]byte{0}, mib)...)},
		{"claimed length", `"string"`, append(huge, bytes.Repeat([]byte{'x'}, mib)...)},
		{"deep", `{"type":"record","name":"T","fields":[{"name":"kids","type":{"type":"array","items":"T"}}]}`, bytes.Repeat([]byte{0x02}, mib)},
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileBodiesBoundedMemory: every reader of untrusted bodies —
// Skip (the consumer's row path), Decode (the producer's state) and the
// JSONDecoder (consumer tail) — reads each hostile body or refuses it,
// allocating at most a fixed multiple of its size; Skip allocates
// nothing but its error. (How fast: BenchmarkHostile.)
func TestHostileBodiesBoundedMemory(t *testing.T) {
	for _, h := range hostile() {
		typ, err := Parse(h.schema)
		if err != nil {
			t.Fatal(err)
		}
		// An error is a few allocations (its message), more with -race.
		if n := testing.AllocsPerRun(1, func() { _, err = Skip(h.body, typ) }); err == nil && n != 0 || n > 32 {
			t.Errorf("%s: Skip made %v allocations (%v), want none, or an error's few", h.name, n, err)
		}
		limit := 64*uint64(len(h.body)) + 4<<10
		for _, d := range []struct {
			name   string
			decode func() error
		}{
			{"Decode", func() error { _, err := Decode(typ, h.body); return err }},
			{"JSONDecoder", func() error { _, err := NewJSONDecoder().Decode(h.schema, h.body); return err }},
		} {
			if n := allocated(func() { err = d.decode() }); n > limit {
				t.Errorf("%s: %s allocated %d bytes for a body of %d (%v), want at most %d", h.name, d.name, n, len(h.body), err, limit)
			}
		}
	}
}

// TestDecodeRefusals: what Decode refuses, by error.
func TestDecodeRefusals(t *testing.T) {
	for _, c := range []struct {
		schema string
		body   []byte
		want   error
	}{
		{`{"type":"array","items":"null"}`, zeroWidthArray(1 << 16), ErrTooMany},
		{`{"type":"array","items":"long"}`, []byte{0x10, 0x02, 0x00}, ErrTooMany}, // 8 items, 2 bytes
		{`"string"`, []byte{0x10, 'a'}, ErrShort},
		{`"long"`, []byte{0x02, 0x00}, ErrTrailing},
		{`"long"`, bytes.Repeat([]byte{0xff}, 11), nil}, // a varint beyond 64 bits: an error of its own
		{`{"type":"record","name":"T","fields":[{"name":"a","type":["null","T"]}]}`, bytes.Repeat([]byte{0x02}, 100), ErrNesting},
	} {
		typ, err := Parse(c.schema)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Decode(typ, c.body)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s % x: %v, want %v", c.schema, c.body, err, c.want)
		}
	}
}

// TestDecodeValues: every Avro type to its Go value.
func TestDecodeValues(t *testing.T) {
	schema := `{"type":"record","name":"R","fields":[
		{"name":"n","type":"null"},{"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},
		{"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"by","type":"bytes"},{"name":"s","type":"string"},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["x","y"]}},{"name":"fx","type":{"type":"fixed","name":"F","size":2}},
		{"name":"a","type":{"type":"array","items":"long"}},{"name":"m","type":{"type":"map","values":"string"}},
		{"name":"u","type":["null","string"]},{"name":"nulls","type":{"type":"array","items":"null"}}]}`
	body := []byte{
		0x01, 0x03, 0x04, // true, -2, 2
		0x00, 0x00, 0xc0, 0x3f, // 1.5
		0, 0, 0, 0, 0, 0, 0x04, 0xc0, // -2.5
		0x02, 0xff, 0x04, 'h', 'i', 0x02, 0xab, 0xcd, // bytes, string, enum y, fixed
		0x03, 0x02, 0x02, 0x04, 0x00, // a block of -2 items (2 bytes), 1, 2
		0x02, 0x02, 'k', 0x02, 'v', 0x00, // {k: v}
		0x02, 0x02, 'z', // "z"
		0x06, 0x00, // three nulls
	}
	typ, err := Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	want := Object{{"n", nil}, {"b", true}, {"i", int64(-2)}, {"l", int64(2)}, {"f", float32(1.5)}, {"d", -2.5},
		{"by", []byte{0xff}}, {"s", "hi"}, {"e", "y"}, {"fx", []byte{0xab, 0xcd}}, {"a", []any{int64(1), int64(2)}},
		{"m", map[string]any{"k": "v"}}, {"u", "z"}, {"nulls", []any{nil, nil, nil}}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

// BenchmarkHostile reads the hostile bodies at growing sizes next to a
// baseline of the same size, an array of one-byte longs: time grows with
// the size alone, as the baseline's does. (Zero-width arrays took 25 ms
// at 4 KiB, 747 ms at 32 KiB and about 13 minutes at 1 MiB when items
// were walked one by one.)
func BenchmarkHostile(b *testing.B) {
	null, _ := Parse(`{"type":"array","items":"null"}`)
	long, _ := Parse(`{"type":"array","items":"long"}`)
	for _, size := range []int{4 << 10, 32 << 10, 1 << 20} {
		baseline := append(AppendLongs(nil, size-5), 0)
		for _, c := range []struct {
			name string
			t    *Type
			body []byte
		}{{"baseline", long, baseline}, {"zero-width", null, zeroWidthArray(size)}} {
			b.Run(fmt.Sprintf("Skip/%s/%dKiB", c.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(c.body)))
				for b.Loop() {
					Skip(c.body, c.t)
				}
			})
			b.Run(fmt.Sprintf("Decode/%s/%dKiB", c.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(c.body)))
				for b.Loop() {
					Decode(c.t, c.body)
				}
			})
		}
	}
}

// AppendLongs appends an array block of n zeros (one byte each).
func AppendLongs(b []byte, n int) []byte {
	b = appendLong(b, int64(n))
	return append(b, make([]byte, n)...)
}
