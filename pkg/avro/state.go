package avro

// state.go reads and writes the records the producer keeps its own state
// in (checkpoint, schema history): records of schemas we own, read back as
// untrusted input with the bounded reader, each field checked by the
// record's owner with Fields. Written through goavro's native form, which
// the state records, one per Kafka transaction, can afford.

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/linkedin/goavro/v2"
)

// ErrInvalid is a state record holding a value the producer cannot have
// written.
var ErrInvalid = errors.New("a value the producer cannot have written")

// Versions parses the schema of a state record: the schema itself and,
// for records an earlier strait wrote before fields were added at its end
// (each with a default, as schema evolution asks), the schema without them,
// one field fewer at a time. The first is the current schema.
func Versions(schema string) ([]*Type, error) {
	var rec map[string]any
	if err := json.Unmarshal([]byte(schema), &rec); err != nil {
		return nil, err
	}
	var out []*Type
	for {
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		t, err := Parse(string(b))
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		fs, _ := rec["fields"].([]any)
		last, _ := fs[len(fs)-1].(map[string]any)
		if _, ok := last["default"]; !ok || len(fs) == 1 {
			return out, nil
		}
		rec["fields"] = fs[:len(fs)-1]
	}
}

// DecodeVersions reads the Avro body of a state record by the first of
// its schema's versions (Versions) that reads the whole body; fields a
// version lacks are absent (their defaults).
func DecodeVersions(versions []*Type, body []byte) (Object, error) {
	var first error
	for _, t := range versions {
		v, err := Decode(t, body)
		if err == nil {
			o, _ := v.(Object)
			return o, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// Fields reads the fields of a decoded state record, whose types its
// schema fixes, and keeps the first value that cannot be (Fail).
type Fields struct {
	Object Object
	Err    error // the first failure: wraps ErrInvalid
}

// Fail notes a value that cannot be, unless one was noted before.
func (f *Fields) Fail(format string, args ...any) {
	if f.Err == nil {
		f.Err = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
}

// Str returns a string field (or the string of a ["null", "string"]
// union, "" for null), which must be UTF-8 without control characters.
func (f *Fields) Str(name string) string {
	s, _ := f.Object.Get(name).(string)
	if !Printable(s) {
		f.Fail("%s %q: not printable text", name, s)
	}
	return s
}

// Long returns a long field.
func (f *Fields) Long(name string) int64 {
	n, _ := f.Object.Get(name).(int64)
	return n
}

// Strs returns an array of strings, each printable.
func (f *Fields) Strs(name string) []string {
	vs, _ := f.Object.Get(name).([]any)
	var out []string
	for _, v := range vs {
		s, _ := v.(string)
		if !Printable(s) {
			f.Fail("%s: %q is not printable text", name, s)
		}
		out = append(out, s)
	}
	return out
}

// Dict returns a map field, whose keys must be printable and whose string
// values UTF-8.
func (f *Fields) Dict(name string) map[string]any {
	m, _ := f.Object.Get(name).(map[string]any)
	for k, v := range m {
		s, isStr := v.(string)
		if !Printable(k) || isStr && !utf8.ValidString(s) {
			f.Fail("%s[%q]: not text", name, k)
		}
	}
	return m
}

// Printable reports whether s is UTF-8 without control characters: what
// names, positions and patterns of a source are.
func Printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// NativeEncoder writes records of a schema we own from goavro's native
// form (maps by field name; a union's value as map[string]any{branch: v}).
type NativeEncoder struct{ codec *goavro.Codec }

// NewNativeEncoder parses schema.
func NewNativeEncoder(schema string) (*NativeEncoder, error) {
	c, err := goavro.NewCodec(schema)
	if err != nil {
		return nil, err
	}
	return &NativeEncoder{codec: c}, nil
}

// Append appends the Avro body of native to b.
func (e *NativeEncoder) Append(b []byte, native map[string]any) ([]byte, error) {
	return e.codec.BinaryFromNative(b, native)
}
