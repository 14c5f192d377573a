package avro

// decode.go reads whole Avro values out of untrusted records: the
// producer's own state (checkpoint, schema history) and `consumer tail`'s
// JSON. Whoever can write a topic chooses the bytes, so nothing here is
// sized by a length or count the bytes claim: every length and count is
// checked against the bytes left before it is used, values nest at most
// MaxNesting deep, and items that take no bytes (null, records of nulls)
// are paid for from a budget of one item per byte of the body. Decoding is
// therefore linear in the body's size, in time and in memory.
//
// goavro, the reference decoder, trusts the counts it reads: a 14-byte
// record claiming 2^31-1 array items made it allocate 32 GiB and killed
// the producer at every start.

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"
)

// ErrTooMany is a value whose arrays or maps claim more items than the
// body's bytes can hold, or more zero-width items than it has bytes.
var ErrTooMany = errors.New("avro: more items than the bytes can hold")

// ErrTrailing is a body with bytes left after its value.
var ErrTrailing = errors.New("avro: bytes left after the value")

// MaxDecimalBytes bounds the two's-complement bytes of a decimal that is
// turned into text: BIGNUMERIC's 76 digits take 32 bytes, twice that
// allows sign-extension padding. Converting n bytes to decimal text costs
// more than linear time (about 1 s for 1 MiB), and no column holds more.
const MaxDecimalBytes = 64

// Decode reads the one value of type t that b holds, all of b, into Go
// values: null nil, boolean bool, int and long int64, float float32,
// double float64, bytes and fixed []byte (a copy), string string, enum its
// symbol, record an Object (fields under their Avro names), array []any,
// map map[string]any, union the value of its branch. Logical types are not
// applied.
func Decode(t *Type, b []byte) (any, error) {
	return decodeAll(t, b, false)
}

func decodeAll(t *Type, b []byte, json bool) (any, error) {
	r := &reader{budget: len(b), json: json}
	v, rest, err := r.value(b, t, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d of %d", ErrTrailing, len(rest), len(b))
	}
	return v, nil
}

// reader decodes one body.
type reader struct {
	budget int  // zero-width values still allowed
	json   bool // values for encoding/json: logical types applied, columns under their source names
}

// pay takes n zero-width values of t from the budget.
func (r *reader) pay(n int64, t *Type) error {
	cost := int64(t.unit())
	if n > int64(r.budget)/cost {
		return fmt.Errorf("%w: %d items of %s", ErrTooMany, n, t.Kind)
	}
	r.budget -= int(n * cost)
	return nil
}

// blockCount reads the count of an array or map block whose items take at
// least width bytes each (map keys included), checking it against the
// bytes left, and skips a block's byte size.
func blockCount(b []byte, kind string, width int) (int64, []byte, error) {
	n, b, err := ReadLong(b)
	if err != nil {
		return 0, nil, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, nil, fmt.Errorf("avro: %s block count %d", kind, n)
		}
		if _, b, err = ReadLong(b); err != nil { // the block's size in bytes
			return 0, nil, err
		}
		n = -n
	}
	if width > 0 && n > int64(len(b)/width) {
		return 0, nil, fmt.Errorf("%w: a %s block of %d items with %d bytes left", ErrTooMany, kind, n, len(b))
	}
	return n, b, nil
}

func (r *reader) value(b []byte, t *Type, depth int) (any, []byte, error) {
	if depth > MaxNesting {
		return nil, nil, ErrNesting
	}
	var err error
	switch t.Kind {
	case "null":
		return nil, b, nil
	case "boolean":
		if len(b) < 1 {
			return nil, nil, ErrShort
		}
		return b[0] != 0, b[1:], nil
	case "int", "long":
		var n int64
		if n, b, err = ReadLong(b); err != nil {
			return nil, nil, err
		}
		if r.json {
			return jsonLong(t, n), b, nil
		}
		return n, b, nil
	case "float":
		var f float64
		if f, b, err = ReadFloat(b); err != nil {
			return nil, nil, err
		}
		if r.json {
			return finite(f), b, nil
		}
		return float32(f), b, nil
	case "double":
		var f float64
		if f, b, err = ReadDouble(b); err != nil {
			return nil, nil, err
		}
		if r.json {
			return finite(f), b, nil
		}
		return f, b, nil
	case "bytes", "fixed":
		var v []byte
		if t.Kind == "fixed" {
			if len(b) < t.Size {
				return nil, nil, ErrShort
			}
			v, b = b[:t.Size], b[t.Size:]
		} else if v, b, err = ReadBytes(b); err != nil {
			return nil, nil, err
		}
		if r.json && t.Logical == "decimal" {
			if len(v) > MaxDecimalBytes {
				return nil, nil, fmt.Errorf("avro: a decimal of %d bytes, over %d", len(v), MaxDecimalBytes)
			}
			return string(AppendDecimalText(nil, v, t.Scale)), b, nil
		}
		return append([]byte{}, v...), b, nil
	case "string":
		var v []byte
		if v, b, err = ReadBytes(b); err != nil {
			return nil, nil, err
		}
		return string(v), b, nil
	case "enum":
		var i int64
		if i, b, err = ReadLong(b); err != nil {
			return nil, nil, err
		}
		if i < 0 || i >= int64(len(t.Symbols)) {
			return nil, nil, fmt.Errorf("avro: enum %s index %d out of range", t.Name, i)
		}
		return t.Symbols[i], b, nil
	case "union":
		var i int
		if i, b, err = ReadBranch(b, t); err != nil {
			return nil, nil, err
		}
		return r.value(b, t.Branches[i], depth+1)
	case "record":
		o := make(Object, len(t.Fields))
		for i, f := range t.Fields {
			o[i].Name = f.Name
			if r.json {
				o[i].Name = f.Column
			}
			if o[i].Value, b, err = r.value(b, f.Type, depth+1); err != nil {
				return nil, nil, err
			}
		}
		return o, b, nil
	case "array":
		items := []any{}
		for {
			var n int64
			if n, b, err = blockCount(b, t.Kind, t.Items.width()); err != nil {
				return nil, nil, err
			}
			if n == 0 {
				return items, b, nil
			}
			if t.Items.width() == 0 {
				if err := r.pay(n, t.Items); err != nil {
					return nil, nil, err
				}
			}
			items = slices.Grow(items, int(n))
			for range n {
				var v any
				if v, b, err = r.value(b, t.Items, depth+1); err != nil {
					return nil, nil, err
				}
				items = append(items, v)
			}
		}
	case "map":
		m := map[string]any{}
		for {
			var n int64
			if n, b, err = blockCount(b, t.Kind, 1+t.Items.width()); err != nil {
				return nil, nil, err
			}
			if n == 0 {
				return m, b, nil
			}
			for range n {
				var k []byte
				if k, b, err = ReadBytes(b); err != nil {
					return nil, nil, err
				}
				var v any
				if v, b, err = r.value(b, t.Items, depth+1); err != nil {
					return nil, nil, err
				}
				m[string(k)] = v
			}
		}
	}
	return nil, nil, fmt.Errorf("avro: cannot read type %s", t.Kind)
}

// jsonLong is an int or long for people: dates, times and timestamps as
// text, other numbers as they are.
func jsonLong(t *Type, n int64) any {
	switch {
	case t.Logical == "date":
		return time.Unix(n*86400, 0).UTC().Format(time.DateOnly)
	case t.Logical == "timestamp-micros":
		return time.UnixMicro(n).UTC().Format(time.RFC3339Nano)
	case t.Logical == "timestamp-millis":
		return time.UnixMilli(n).UTC().Format(time.RFC3339Nano)
	case t.Logical == "local-timestamp-micros":
		return time.UnixMicro(n).UTC().Format("2006-01-02T15:04:05.999999")
	case t.Logical == "local-timestamp-millis":
		return time.UnixMilli(n).UTC().Format("2006-01-02T15:04:05.999")
	case t.Logical == "time-micros" || t.StraitType == "time-micros-signed":
		return clock(n)
	case t.Logical == "time-millis":
		return clock(n * 1000)
	}
	return n
}

// AppendDecimalText appends the decimal text of an Avro decimal: raw is
// the unscaled value in big-endian two's complement, scale its number of
// fractional digits ("-0.50" for -50 at scale 2). Exact: never through
// float64.
func AppendDecimalText(dst, raw []byte, scale int) []byte {
	var buf [96]byte
	var digits []byte
	neg := len(raw) > 0 && raw[0]&0x80 != 0
	if len(raw) <= 7 {
		var v int64
		if neg {
			v = -1
		}
		for _, c := range raw {
			v = v<<8 | int64(c)
		}
		if neg {
			v = -v
		}
		digits = strconv.AppendInt(buf[:0], v, 10)
	} else {
		n := new(big.Int).SetBytes(raw)
		if neg {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
			n.Neg(n)
		}
		digits = n.Append(buf[:0], 10)
	}
	if neg {
		dst = append(dst, '-')
	}
	if scale <= 0 {
		return append(dst, digits...)
	}
	if len(digits) <= scale {
		dst = append(dst, '0', '.')
		for range scale - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	cut := len(digits) - scale
	dst = append(dst, digits[:cut]...)
	dst = append(dst, '.')
	return append(dst, digits[cut:]...)
}
