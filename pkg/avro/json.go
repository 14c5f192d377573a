package avro

// json.go decodes Avro bodies into values encoding/json prints readably,
// for `consumer tail`. It goes through goavro: tailing is for people and
// scripts, not a hot path, so the reference decoder is worth its cost.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
)

// Object is a decoded Avro record: its fields in schema order, which
// MarshalJSON keeps.
type Object []Member

// Member is one field of an Object.
type Member struct {
	Name  string
	Value any
}

// Get returns the value of the field called name, or nil.
func (o Object) Get(name string) any {
	for _, m := range o {
		if m.Name == name {
			return m.Value
		}
	}
	return nil
}

// MarshalJSON writes the fields as a JSON object in schema order.
func (o Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.Name)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.Value)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", m.Name, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// JSONDecoder decodes Avro binary bodies into JSON-ready values. Records
// become Objects (a column under its real name when the schema carries
// strait.column), unions their value, and logical types readable text:
//
//   - decimal: a string with the schema's scale ("-12.50"), never a float;
//   - timestamp-millis, timestamp-micros: RFC 3339 in UTC
//     ("2024-05-01T12:00:00.123456Z");
//   - local-timestamp-millis, local-timestamp-micros (DATETIME): the same
//     without a zone ("2024-05-01T12:00:00.123456");
//   - date: "2024-05-01";
//   - time-millis, time-micros and strait's signed time-micros (TIME):
//     "[-]HH:MM:SS[.ffffff]", hours beyond 24 allowed;
//   - bytes and fixed: base64, as encoding/json writes []byte;
//   - float and double NaN and ±Inf: the strings "NaN", "Infinity",
//     "-Infinity".
//
// Codecs are cached by schema text. A JSONDecoder is not safe for
// concurrent use.
type JSONDecoder struct {
	codecs map[string]*jsonCodec
}

type jsonCodec struct {
	codec *goavro.Codec
	root  *jnode
}

// jnode is the part of a schema node the conversion needs.
type jnode struct {
	kind     string // null boolean int long float double bytes string record enum array map fixed union
	name     string // full name of named types
	logical  string
	strait   string // strait.type
	scale    int
	size     int // fixed
	fields   []jfield
	branches []*jnode
	items    *jnode
}

type jfield struct {
	name   string // the Avro name
	column string // strait.column, the real column name
	typ    *jnode
}

// NewJSONDecoder returns an empty decoder.
func NewJSONDecoder() *JSONDecoder { return &JSONDecoder{codecs: map[string]*jsonCodec{}} }

// Decode decodes body, written with schema.
func (d *JSONDecoder) Decode(schema string, body []byte) (any, error) {
	c := d.codecs[schema]
	if c == nil {
		codec, err := goavro.NewCodec(schema)
		if err != nil {
			return nil, fmt.Errorf("avro schema: %w", err)
		}
		var v any
		if err := json.Unmarshal([]byte(schema), &v); err != nil {
			return nil, fmt.Errorf("avro schema: %w", err)
		}
		p := jparser{named: map[string]*jnode{}}
		root, err := p.parse(v, "")
		if err != nil {
			return nil, err
		}
		c = &jsonCodec{codec: codec, root: root}
		d.codecs[schema] = c
	}
	if err := checkBody(body, c.root); err != nil {
		return nil, fmt.Errorf("avro decode: %w", err)
	}
	native, rest, err := c.codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("avro decode: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("avro decode: %d bytes after the value", len(rest))
	}
	return c.root.convert(native), nil
}

type jparser struct{ named map[string]*jnode }

func (p *jparser) parse(v any, ns string) (*jnode, error) {
	switch x := v.(type) {
	case string:
		switch x {
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
			return &jnode{kind: x}, nil
		}
		if n := p.named[qualify(x, ns)]; n != nil {
			return n, nil
		}
		if n := p.named[x]; n != nil {
			return n, nil
		}
		return nil, fmt.Errorf("avro schema: unknown type %q", x)
	case []any:
		u := &jnode{kind: "union"}
		for _, b := range x {
			n, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			u.branches = append(u.branches, n)
		}
		return u, nil
	case map[string]any:
		str := func(k string) string { s, _ := x[k].(string); return s }
		kind := str("type")
		n := &jnode{kind: kind, logical: str("logicalType"), strait: str("strait.type")}
		if f, ok := x["scale"].(float64); ok {
			n.scale = int(f)
		}
		if f, ok := x["size"].(float64); ok {
			n.size = int(f)
		}
		switch kind {
		case "record", "error", "enum", "fixed":
			n.kind = strings.Replace(kind, "error", "record", 1)
			if s := str("namespace"); s != "" {
				ns = s
			}
			n.name = qualify(str("name"), ns)
			if i := strings.LastIndexByte(n.name, '.'); i >= 0 {
				ns = n.name[:i]
			}
			p.named[n.name] = n
			fs, _ := x["fields"].([]any)
			for _, f := range fs {
				fm, _ := f.(map[string]any)
				ft, err := p.parse(fm["type"], ns)
				if err != nil {
					return nil, err
				}
				name, _ := fm["name"].(string)
				column, _ := fm["strait.column"].(string)
				if column == "" {
					column = name
				}
				n.fields = append(n.fields, jfield{name: name, column: column, typ: ft})
			}
		case "array", "map":
			key := "items"
			if kind == "map" {
				key = "values"
			}
			it, err := p.parse(x[key], ns)
			if err != nil {
				return nil, err
			}
			n.items = it
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
		default: // {"type": "ns.Name"}
			return p.parse(kind, ns)
		}
		return n, nil
	}
	return nil, fmt.Errorf("avro schema: unexpected %T", v)
}

func qualify(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

// goavroName is the key goavro gives a union branch's value.
func (n *jnode) goavroName() string {
	if n.name != "" {
		return n.name
	}
	switch n.logical {
	case "decimal", "date", "time-millis", "time-micros", "timestamp-millis", "timestamp-micros", "uuid":
		return n.kind + "." + n.logical
	}
	return n.kind
}

// convert turns goavro's native value of n into a JSON-ready one.
func (n *jnode) convert(v any) any {
	if v == nil {
		return nil
	}
	switch n.kind {
	case "union":
		m, ok := v.(map[string]any)
		if !ok {
			return plain(v)
		}
		for k, bv := range m {
			for _, b := range n.branches {
				if b.goavroName() == k {
					return b.convert(bv)
				}
			}
			return plain(bv)
		}
		return nil
	case "record":
		m, _ := v.(map[string]any)
		o := make(Object, 0, len(n.fields))
		for _, f := range n.fields {
			o = append(o, Member{Name: f.column, Value: f.typ.convert(m[f.name])})
		}
		return o
	case "array":
		xs, _ := v.([]any)
		out := make([]any, len(xs))
		for i, x := range xs {
			out[i] = n.items.convert(x)
		}
		return out
	case "map":
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = n.items.convert(x)
		}
		return out
	}
	switch x := v.(type) {
	case *big.Rat:
		return x.FloatString(n.scale)
	case time.Time:
		if n.logical == "date" {
			return x.UTC().Format(time.DateOnly)
		}
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return clock(x.Microseconds())
	case int64:
		switch {
		case n.logical == "local-timestamp-micros":
			return time.UnixMicro(x).UTC().Format("2006-01-02T15:04:05.999999")
		case n.logical == "local-timestamp-millis":
			return time.UnixMilli(x).UTC().Format("2006-01-02T15:04:05.999")
		case n.strait == "time-micros-signed":
			return clock(x)
		}
	}
	return plain(v)
}

// plain converts a value whose schema node is not known.
func plain(v any) any {
	switch x := v.(type) {
	case float32:
		return finite(float64(x))
	case float64:
		return finite(x)
	case *big.Rat:
		return x.RatString()
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// finite keeps a float JSON can hold, else names it.
func finite(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// clock formats a signed duration in microseconds as [-]HH:MM:SS[.ffffff].
func clock(us int64) string {
	sign := ""
	if us < 0 {
		sign, us = "-", -us
	}
	s := fmt.Sprintf("%s%02d:%02d:%02d", sign, us/3600e6, us/60e6%60, us/1e6%60)
	if frac := us % 1e6; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	return s
}

// maxNesting is how deep values may nest (records, unions, arrays, maps
// within each other) in a body Decode accepts: a recursive schema lets the
// data choose the depth, and goavro's decoder recurses with it.
const maxNesting = 64

// checkBody walks body as a value of n before goavro decodes it: goavro
// trusts the counts it reads (an array of 2^31-1 items is allocated as
// such) and recurses as deep as the data goes. Every record is untrusted,
// so Decode refuses a body nested deeper than maxNesting or whose array
// and map blocks claim more items than bytes remain — the producer never
// writes arrays of zero-width items (null, empty records), the one case
// where that is valid Avro.
func checkBody(body []byte, n *jnode) error {
	_, err := checkValue(body, n, 0)
	return err
}

var errShort = errors.New("truncated data")

func checkValue(b []byte, n *jnode, depth int) ([]byte, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("values nested deeper than %d levels", maxNesting)
	}
	switch n.kind {
	case "null":
		return b, nil
	case "boolean":
		return advance(b, 1)
	case "int", "long", "enum":
		_, b, err := readLong(b)
		return b, err
	case "float":
		return advance(b, 4)
	case "double":
		return advance(b, 8)
	case "fixed":
		if n.size < 0 {
			return nil, fmt.Errorf("fixed %s of size %d", n.name, n.size)
		}
		return advance(b, n.size)
	case "bytes", "string":
		l, b, err := readLong(b)
		if err != nil {
			return nil, err
		}
		if l < 0 || l > int64(len(b)) {
			return nil, fmt.Errorf("a length of %d with %d bytes left", l, len(b))
		}
		return b[l:], nil
	case "record":
		var err error
		for _, f := range n.fields {
			if b, err = checkValue(b, f.typ, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case "union":
		i, b, err := readLong(b)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return nil, fmt.Errorf("union branch %d out of range", i)
		}
		return checkValue(b, n.branches[i], depth+1)
	case "array", "map":
		for {
			count, rest, err := readLong(b)
			if err != nil {
				return nil, err
			}
			b = rest
			if count == 0 {
				return b, nil
			}
			if count < 0 {
				if count == math.MinInt64 {
					return nil, fmt.Errorf("%s block count %d", n.kind, count)
				}
				count = -count
				if _, b, err = readLong(b); err != nil {
					return nil, err
				}
			}
			if count > int64(len(b)) {
				return nil, fmt.Errorf("%s block of %d items with %d bytes left", n.kind, count, len(b))
			}
			for range count {
				if n.kind == "map" {
					if b, err = checkValue(b, &jnode{kind: "string"}, depth+1); err != nil {
						return nil, err
					}
				}
				if b, err = checkValue(b, n.items, depth+1); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("cannot read type %q", n.kind)
}

// advance steps over n bytes.
func advance(b []byte, n int) ([]byte, error) {
	if len(b) < n {
		return nil, errShort
	}
	return b[n:], nil
}

// readLong reads an Avro int or long (zig-zag varint).
func readLong(b []byte) (int64, []byte, error) {
	u, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, errShort
	case n < 0:
		return 0, nil, errors.New("varint longer than 64 bits")
	}
	return int64(u>>1) ^ -int64(u&1), b[n:], nil
}
