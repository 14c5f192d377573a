package avro

// json.go decodes Avro bodies into values encoding/json prints readably,
// for `consumer tail`, with the bounded reader of decode.go: a body is
// untrusted, whoever wrote the topic chose it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
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
// Parsed schemas are cached by schema text. A JSONDecoder is not safe for
// concurrent use.
type JSONDecoder struct {
	types map[string]*Type
}

// NewJSONDecoder returns an empty decoder.
func NewJSONDecoder() *JSONDecoder { return &JSONDecoder{types: map[string]*Type{}} }

// Decode decodes body, written with schema, within Decode's bounds.
func (d *JSONDecoder) Decode(schema string, body []byte) (any, error) {
	t := d.types[schema]
	if t == nil {
		var err error
		if t, err = Parse(schema); err != nil {
			return nil, err
		}
		d.types[schema] = t
	}
	v, err := decodeAll(t, body, true)
	if err != nil {
		return nil, fmt.Errorf("avro decode: %w", err)
	}
	return v, nil
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
