package avro

// json.go decodes Avro bodies into values encoding/json prints readably,
// for `consumer tail`. It goes through goavro: tailing is for people and
// scripts, not a hot path, so the reference decoder is worth its cost.

import (
	"bytes"
	"encoding/json"
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
	root  *Type
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
		root, err := Parse(schema)
		if err != nil {
			return nil, err
		}
		c = &jsonCodec{codec: codec, root: root}
		d.codecs[schema] = c
	}
	// goavro trusts the counts it reads (an array of 2^31-1 items is
	// allocated as such) and recurses as deep as the data goes: the body
	// is walked first, which refuses both (Skip).
	if _, err := Skip(body, c.root); err != nil {
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

// goavroName is the key goavro gives a union branch's value.
func (n *Type) goavroName() string {
	if n.Name != "" {
		return n.Name
	}
	switch n.Logical {
	case "decimal", "date", "time-millis", "time-micros", "timestamp-millis", "timestamp-micros", "uuid":
		return n.Kind + "." + n.Logical
	}
	return n.Kind
}

// convert turns goavro's native value of n into a JSON-ready one.
func (n *Type) convert(v any) any {
	if v == nil {
		return nil
	}
	switch n.Kind {
	case "union":
		m, ok := v.(map[string]any)
		if !ok {
			return plain(v)
		}
		for k, bv := range m {
			for _, b := range n.Branches {
				if b.goavroName() == k {
					return b.convert(bv)
				}
			}
			return plain(bv)
		}
		return nil
	case "record":
		m, _ := v.(map[string]any)
		o := make(Object, 0, len(n.Fields))
		for _, f := range n.Fields {
			o = append(o, Member{Name: f.Column, Value: f.Type.convert(m[f.Name])})
		}
		return o
	case "array":
		xs, _ := v.([]any)
		out := make([]any, len(xs))
		for i, x := range xs {
			out[i] = n.Items.convert(x)
		}
		return out
	case "map":
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = n.Items.convert(x)
		}
		return out
	}
	switch x := v.(type) {
	case *big.Rat:
		return x.FloatString(n.Scale)
	case time.Time:
		if n.Logical == "date" {
			return x.UTC().Format(time.DateOnly)
		}
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return clock(x.Microseconds())
	case int64:
		switch {
		case n.Logical == "local-timestamp-micros":
			return time.UnixMicro(x).UTC().Format("2006-01-02T15:04:05.999999")
		case n.Logical == "local-timestamp-millis":
			return time.UnixMilli(x).UTC().Format("2006-01-02T15:04:05.999")
		case n.StraitType == "time-micros-signed":
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
