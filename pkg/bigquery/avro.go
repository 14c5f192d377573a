package bigquery

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// avroType is a parsed Avro schema node: just what the consumer needs to
// walk the binary encoding and to pick a BigQuery type. Parsing is done once
// per schema id; decoding then follows these nodes without maps or
// reflection.
type avroType struct {
	kind        string // null boolean int long float double bytes string record enum array map fixed union
	name        string // full name of records, enums and fixed
	logical     string // logicalType
	connectName string // connect.name (Debezium's semantic types)
	precision   int    // decimal
	scale       int    // decimal
	size        int    // fixed
	fields      []avroField
	branches    []*avroType // union
	items       *avroType   // array items, map values
	symbols     []string    // enum
}

type avroField struct {
	name string
	typ  *avroType
}

// parseAvro parses an Avro schema in JSON form.
func parseAvro(schema string) (*avroType, error) {
	var v any
	if err := json.Unmarshal([]byte(schema), &v); err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	p := &avroParser{named: map[string]*avroType{}}
	return p.parse(v, "")
}

type avroParser struct {
	named map[string]*avroType // by full name
}

var avroPrimitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true, "float": true,
	"double": true, "bytes": true, "string": true,
}

// fullName resolves name in namespace ns, as the Avro specification says:
// a name containing a dot is already full.
func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func (p *avroParser) parse(v any, ns string) (*avroType, error) {
	switch x := v.(type) {
	case string:
		if avroPrimitives[x] {
			return &avroType{kind: x}, nil
		}
		if t := p.named[fullName(x, ns)]; t != nil {
			return t, nil
		}
		if t := p.named[x]; t != nil {
			return t, nil
		}
		return nil, fmt.Errorf("avro schema: unknown type %q", x)
	case []any:
		u := &avroType{kind: "union"}
		for _, b := range x {
			bt, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			u.branches = append(u.branches, bt)
		}
		return u, nil
	case map[string]any:
		return p.parseComplex(x, ns)
	}
	return nil, fmt.Errorf("avro schema: unexpected %T", v)
}

func (p *avroParser) parseComplex(m map[string]any, ns string) (*avroType, error) {
	kind, _ := m["type"].(string)
	if kind == "" {
		return nil, errors.New("avro schema: a complex type without \"type\"")
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	num := func(k string) int { f, _ := m[k].(float64); return int(f) }
	var t *avroType
	switch kind {
	case "record", "error", "enum", "fixed":
		name := str("name")
		if n := str("namespace"); n != "" && !strings.Contains(name, ".") {
			ns = n
		}
		full := fullName(name, ns)
		if i := strings.LastIndexByte(full, '.'); i >= 0 {
			ns = full[:i]
		}
		t = &avroType{kind: kind, name: full, size: num("size")}
		if kind == "error" {
			t.kind = "record"
		}
		p.named[full] = t // before the fields: a record may refer to itself
		if t.size < 0 {
			return nil, fmt.Errorf("avro schema: fixed %s has size %d", full, t.size)
		}
		if kind == "enum" {
			syms, _ := m["symbols"].([]any)
			for _, s := range syms {
				sym, ok := s.(string)
				if !ok {
					return nil, fmt.Errorf("avro schema: enum %s: a symbol is not a string", full)
				}
				t.symbols = append(t.symbols, sym)
			}
		}
		if t.kind == "record" {
			fs, _ := m["fields"].([]any)
			for _, f := range fs {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("avro schema: record %s: malformed field", full)
				}
				ft, err := p.parse(fm["type"], ns)
				if err != nil {
					return nil, fmt.Errorf("record %s field %v: %w", full, fm["name"], err)
				}
				name, _ := fm["name"].(string)
				t.fields = append(t.fields, avroField{name: name, typ: ft})
			}
		}
	case "array", "map":
		key := "items"
		if kind == "map" {
			key = "values"
		}
		it, err := p.parse(m[key], ns)
		if err != nil {
			return nil, err
		}
		t = &avroType{kind: kind, items: it}
	default:
		if !avroPrimitives[kind] {
			// {"type": "ns.Name"}: a reference written as an object.
			return p.parse(kind, ns)
		}
		t = &avroType{kind: kind}
	}
	t.logical = str("logicalType")
	t.connectName = str("connect.name")
	t.precision, t.scale = num("precision"), num("scale")
	if t.logical == "decimal" && (t.scale < 0 || t.precision < 0) {
		return nil, fmt.Errorf("avro schema: decimal(%d,%d)", t.precision, t.scale)
	}
	return t, nil
}

// nullable returns the non-null branch of a ["null", T] or [T, "null"]
// union and the index of the null branch, or t and -1 for any other type.
func (t *avroType) nullable() (*avroType, int) {
	if t.kind != "union" || len(t.branches) != 2 {
		return t, -1
	}
	switch {
	case t.branches[0].kind == "null":
		return t.branches[1], 0
	case t.branches[1].kind == "null":
		return t.branches[0], 1
	}
	return t, -1
}

// field returns the index of the record field called name, or -1.
func (t *avroType) field(name string) int {
	for i, f := range t.fields {
		if f.name == name {
			return i
		}
	}
	return -1
}

var errShort = errors.New("avro: truncated data")

// readLong reads an Avro int or long (zig-zag varint).
func readLong(b []byte) (int64, []byte, error) {
	u, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, errShort
	case n < 0:
		return 0, nil, errors.New("avro: varint longer than 64 bits")
	}
	return int64(u>>1) ^ -int64(u&1), b[n:], nil
}

// readBytes reads an Avro bytes or string: a length, then the data. The
// result aliases b.
func readBytes(b []byte) ([]byte, []byte, error) {
	n, b, err := readLong(b)
	if err != nil {
		return nil, nil, err
	}
	if n < 0 || n > int64(len(b)) {
		return nil, nil, errShort
	}
	return b[:n], b[n:], nil
}

// readBranch reads a union's branch index.
// readOptional reads the union branch of a nullable t (nothing for a plain
// type) and reports whether a value follows.
func readOptional(b []byte, t *avroType) (bool, []byte, error) {
	if ft, _ := t.nullable(); ft == t {
		return true, b, nil
	}
	br, b, err := readBranch(b, t)
	if err != nil {
		return false, nil, err
	}
	return t.branches[br].kind != "null", b, nil
}

func readBranch(b []byte, t *avroType) (int, []byte, error) {
	i, b, err := readLong(b)
	if err != nil {
		return 0, nil, err
	}
	if i < 0 || i >= int64(len(t.branches)) {
		return 0, nil, fmt.Errorf("avro: union branch %d out of range", i)
	}
	return int(i), b, nil
}

// maxNesting is how deep values may nest (records, unions, arrays, maps
// within each other) in a body the consumer walks. A recursive schema lets
// the data choose the depth, and every record is untrusted: without a
// bound a small record could exhaust the stack. Debezium envelopes nest a
// few levels; BigQuery columns at most 15.
const maxNesting = 64

// errNesting is a value nested deeper than maxNesting.
var errNesting = fmt.Errorf("avro: values nested deeper than %d levels", maxNesting)

// skip steps over one value of type t.
func skip(b []byte, t *avroType) ([]byte, error) { return skipNested(b, t, 0) }

// skipNested steps over one value of type t found depth levels down.
func skipNested(b []byte, t *avroType, depth int) ([]byte, error) {
	if depth > maxNesting {
		return nil, errNesting
	}
	var err error
	switch t.kind {
	case "null":
		return b, nil
	case "boolean":
		if len(b) < 1 {
			return nil, errShort
		}
		return b[1:], nil
	case "int", "long", "enum":
		_, b, err = readLong(b)
		return b, err
	case "float":
		if len(b) < 4 {
			return nil, errShort
		}
		return b[4:], nil
	case "double":
		if len(b) < 8 {
			return nil, errShort
		}
		return b[8:], nil
	case "bytes", "string":
		_, b, err = readBytes(b)
		return b, err
	case "fixed":
		if len(b) < t.size {
			return nil, errShort
		}
		return b[t.size:], nil
	case "record":
		for _, f := range t.fields {
			if b, err = skipNested(b, f.typ, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case "union":
		var i int
		if i, b, err = readBranch(b, t); err != nil {
			return nil, err
		}
		return skipNested(b, t.branches[i], depth+1)
	case "array", "map":
		// Blocks: a count, then the items; a negative count is followed by
		// the block's size in bytes; a zero count ends the value. The
		// count is untrusted: every item but a zero-width one (null, an
		// empty record) takes a byte at least, so the loop ends with the
		// data; a zero-width item means they all are, and the rest of the
		// block is nothing to step over.
		for {
			var n int64
			if n, b, err = readLong(b); err != nil {
				return nil, err
			}
			if n == 0 {
				return b, nil
			}
			if n < 0 {
				if n == math.MinInt64 {
					return nil, fmt.Errorf("avro: %s block count %d", t.kind, n)
				}
				if _, b, err = readLong(b); err != nil {
					return nil, err
				}
				n = -n
			}
			for range n {
				left := len(b)
				if t.kind == "map" {
					if _, b, err = readBytes(b); err != nil {
						return nil, err
					}
				}
				if b, err = skipNested(b, t.items, depth+1); err != nil {
					return nil, err
				}
				if len(b) == left {
					break
				}
			}
		}
	}
	return nil, fmt.Errorf("avro: cannot read type %s", t.kind)
}

func readFloat(b []byte) (float64, []byte, error) {
	if len(b) < 4 {
		return 0, nil, errShort
	}
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), b[4:], nil
}

func readDouble(b []byte) (float64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errShort
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:], nil
}
