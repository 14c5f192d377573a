package avro

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"weak"
)

// Type is a parsed Avro schema node: what a reader needs to walk the
// binary encoding and to map a value to another type system (BigQuery
// columns, JSON). A schema is parsed once (per schema id); decoding then
// follows these nodes without maps or reflection. The consumer's row path
// (pkg/bigquery), `consumer tail` (JSONDecoder) and `producer verify` read
// through it.
//
// Types are immutable once parsed, and shared: a node equal to one that
// any Parse made before and that is still in use (same kind, names and
// attributes, the very same children) is that node. Every table's value
// schema holds the same source block, the same unions of null and a
// primitive, and a consumer holds the parse of every table's schema for
// its life: shared, the source block is in memory once, not once a table
// (issue 18: a table's parsed value schema took 16.2 KB, now 2.0 KB, its
// envelope and row records; TestParseHeapPerTable).
type Type struct {
	Kind        string // null boolean int long float double bytes string record enum array map fixed union
	Name        string // full name of records, enums and fixed
	Logical     string // logicalType
	ConnectName string // connect.name (Debezium's semantic types)
	StraitType  string // strait.Typee (the source column's type, schema.go)
	Precision   int    // decimal
	Scale       int    // decimal
	Size        int    // fixed
	Fields      []Field
	Branches    []*Type  // union
	Items       *Type    // array items, map values
	Symbols     []string // enum

	// Set by Parse (sized): the fewest bytes a value takes, 0 only for
	// types whose values take none (null, fixed of size 0, records of
	// those), and for those how many values one decodes to.
	minBytes, values int
	sized            bool
}

// Field is a record field.
type Field struct {
	Name   string // the Avro name
	Column string // strait.column: the source column's own name, when Name had to differ; else Name
	Type   *Type
}

// Parse parses an Avro schema in JSON form. Safe for concurrent use.
func Parse(schema string) (*Type, error) {
	var v any
	if err := json.Unmarshal([]byte(schema), &v); err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	p := &parser{named: map[string]*Type{}, local: map[*Type]bool{}, visiting: map[*Type]bool{}}
	t, err := p.parse(v, "")
	if err != nil {
		return nil, err
	}
	t.size(p.visiting, true) // the nodes left local: within a recursive type
	return t, nil
}

type parser struct {
	named map[string]*Type // by full name
	// local are the nodes of this parse that are not shared: records still
	// being parsed, and nodes that refer to one (recursive types).
	local    map[*Type]bool
	visiting map[*Type]bool // for size
}

// share returns the shared node equal to t, t itself once shared; a node
// that refers to a local one stays local, unshared. t is sized first:
// shared nodes are never written again.
func (p *parser) share(t *Type) *Type {
	local := p.local[t.Items] || slices.ContainsFunc(t.Branches, func(b *Type) bool { return p.local[b] }) ||
		slices.ContainsFunc(t.Fields, func(f Field) bool { return p.local[f.Type] })
	if local {
		p.local[t] = true
		return t
	}
	t.size(p.visiting, true)
	return shared.get(t)
}

// shared holds every node in use, weakly: a node no longer referenced
// leaves it.
var shared = sharedTypes{by: map[uint64][]weak.Pointer[Type]{}, seed: maphash.MakeSeed()}

type sharedTypes struct {
	mu   sync.Mutex
	by   map[uint64][]weak.Pointer[Type] // by hash
	seed maphash.Seed
}

// get returns the node in use equal to t, else makes t that node.
func (s *sharedTypes) get(t *Type) *Type {
	h := t.hash(s.seed)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.by[h] {
		if u := w.Value(); u != nil && u.equal(t) {
			return u
		}
	}
	s.by[h] = append(s.by[h], weak.Make(t))
	runtime.AddCleanup(t, s.forget, h)
	return t
}

// forget drops the nodes of hash h no longer in use.
func (s *sharedTypes) forget(h uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := slices.DeleteFunc(s.by[h], func(w weak.Pointer[Type]) bool { return w.Value() == nil })
	if len(ws) == 0 {
		delete(s.by, h)
		return
	}
	s.by[h] = ws
}

// hash hashes what equal compares.
func (t *Type) hash(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, s := range []string{t.Kind, t.Name, t.Logical, t.ConnectName, t.StraitType} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	maphash.WriteComparable(&h, [3]int{t.Precision, t.Scale, t.Size})
	for _, f := range t.Fields {
		h.WriteString(f.Name)
		h.WriteByte(0)
		h.WriteString(f.Column)
		h.WriteByte(0)
		maphash.WriteComparable(&h, f.Type)
	}
	for _, b := range t.Branches {
		maphash.WriteComparable(&h, b)
	}
	maphash.WriteComparable(&h, t.Items)
	for _, s := range t.Symbols {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// equal reports whether t and u are the same node but for where they are
// in memory: children are compared by identity (they are shared).
func (t *Type) equal(u *Type) bool {
	return t.Kind == u.Kind && t.Name == u.Name && t.Logical == u.Logical && t.ConnectName == u.ConnectName &&
		t.StraitType == u.StraitType && t.Precision == u.Precision && t.Scale == u.Scale && t.Size == u.Size &&
		slices.Equal(t.Fields, u.Fields) && slices.Equal(t.Branches, u.Branches) && t.Items == u.Items &&
		slices.Equal(t.Symbols, u.Symbols)
}

var primitives = map[string]bool{
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

func (p *parser) parse(v any, ns string) (*Type, error) {
	switch x := v.(type) {
	case string:
		if primitives[x] {
			return p.share(&Type{Kind: x}), nil
		}
		if t := p.named[fullName(x, ns)]; t != nil {
			return t, nil
		}
		if t := p.named[x]; t != nil {
			return t, nil
		}
		return nil, fmt.Errorf("avro schema: unknown type %q", x)
	case []any:
		u := &Type{Kind: "union"}
		for _, b := range x {
			bt, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			u.Branches = append(u.Branches, bt)
		}
		return p.share(u), nil
	case map[string]any:
		return p.parseComplex(x, ns)
	}
	return nil, fmt.Errorf("avro schema: unexpected %T", v)
}

func (p *parser) parseComplex(m map[string]any, ns string) (*Type, error) {
	kind, _ := m["type"].(string)
	if kind == "" {
		return nil, errors.New("avro schema: a complex type without \"type\"")
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	num := func(k string) int { f, _ := m[k].(float64); return int(f) }
	var t *Type
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
		t = &Type{Kind: kind, Name: full, Size: num("size")}
		if kind == "error" {
			t.Kind = "record"
		}
		p.named[full] = t // before the fields: a record may refer to itself
		p.local[t] = true // until its fields are parsed
		if t.Size < 0 {
			return nil, fmt.Errorf("avro schema: fixed %s has size %d", full, t.Size)
		}
		if kind == "enum" {
			syms, _ := m["symbols"].([]any)
			for _, s := range syms {
				sym, ok := s.(string)
				if !ok {
					return nil, fmt.Errorf("avro schema: enum %s: a symbol is not a string", full)
				}
				t.Symbols = append(t.Symbols, sym)
			}
		}
		if t.Kind == "record" {
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
				column, _ := fm["strait.column"].(string)
				if column == "" {
					column = name
				}
				t.Fields = append(t.Fields, Field{Name: name, Column: column, Type: ft})
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
		t = &Type{Kind: kind, Items: it}
	default:
		if !primitives[kind] {
			// {"type": "ns.Name"}: a reference written as an object.
			return p.parse(kind, ns)
		}
		t = &Type{Kind: kind}
	}
	t.Logical = str("logicalType")
	t.ConnectName = str("connect.name")
	t.StraitType = str("strait.type")
	t.Precision, t.Scale = num("precision"), num("scale")
	if t.Logical == "decimal" && (t.Scale < 0 || t.Precision < 0) {
		return nil, fmt.Errorf("avro schema: decimal(%d,%d)", t.Precision, t.Scale)
	}
	if t.Name == "" {
		return p.share(t), nil
	}
	delete(p.local, t)
	if u := p.share(t); u != t || !p.local[t] {
		p.named[t.Name] = u // later references by name get the shared node
		return u, nil
	}
	return t, nil
}

// size returns the fewest bytes a value of t takes and, for a type whose
// values take none, how many values one decodes to; with keep it records
// them in t and every type within t (Parse). A type met again while being
// sized is recursive: a value of it holds another, so it takes at least a
// byte.
func (t *Type) size(visiting map[*Type]bool, keep bool) (minBytes, values int) {
	if t.sized {
		return t.minBytes, t.values
	}
	if visiting[t] {
		return 1, 1
	}
	visiting[t] = true
	defer delete(visiting, t)
	minBytes, values = 0, 1
	switch t.Kind {
	case "null":
	case "float":
		minBytes = 4
	case "double":
		minBytes = 8
	case "fixed":
		minBytes = t.Size
	case "record":
		for _, f := range t.Fields {
			b, v := f.Type.size(visiting, keep)
			minBytes, values = min(minBytes+b, math.MaxInt32), min(values+v, math.MaxInt32)
		}
	case "union":
		least := math.MaxInt32 - 1
		for _, br := range t.Branches {
			b, _ := br.size(visiting, keep)
			least = min(least, b)
		}
		minBytes = 1 + least
	case "array", "map":
		t.Items.size(visiting, keep)
		minBytes = 1
	default: // boolean, int, long, enum, bytes, string: at least a byte
		minBytes = 1
	}
	if keep {
		t.minBytes, t.values, t.sized = minBytes, values, true
	}
	return minBytes, values
}

// width returns the fewest bytes a value of t takes: 0 only for types
// whose values take none (null, fixed of size 0, records of those).
func (t *Type) width() int {
	if t.sized {
		return t.minBytes
	}
	b, _ := t.size(map[*Type]bool{}, false)
	return b
}

// unit returns how many values one value of a zero-width type decodes to:
// what Decode charges it against its budget.
func (t *Type) unit() int {
	_, v := t.size(map[*Type]bool{}, false)
	return v
}

// Nullable returns the non-null branch of a ["null", T] or [T, "null"]
// union and the index of the null branch, or t and -1 for any other type.
func (t *Type) Nullable() (*Type, int) {
	if t.Kind != "union" || len(t.Branches) != 2 {
		return t, -1
	}
	switch {
	case t.Branches[0].Kind == "null":
		return t.Branches[1], 0
	case t.Branches[1].Kind == "null":
		return t.Branches[0], 1
	}
	return t, -1
}

// FieldIndex returns the index of the record field called name, or -1.
func (t *Type) FieldIndex(name string) int {
	for i, f := range t.Fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// ErrShort is data that ends inside a value.
var ErrShort = errors.New("avro: truncated data")

// ReadLong reads an Avro int or long (zig-zag varint).
func ReadLong(b []byte) (int64, []byte, error) {
	u, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, ErrShort
	case n < 0:
		return 0, nil, errors.New("avro: varint longer than 64 bits")
	}
	return int64(u>>1) ^ -int64(u&1), b[n:], nil
}

// ReadBytes reads an Avro bytes or string: a length, then the data. The
// result aliases b.
func ReadBytes(b []byte) ([]byte, []byte, error) {
	n, b, err := ReadLong(b)
	if err != nil {
		return nil, nil, err
	}
	if n < 0 || n > int64(len(b)) {
		return nil, nil, ErrShort
	}
	return b[:n], b[n:], nil
}

// ReadOptional reads the union branch of a nullable t (nothing for a plain
// type) and reports whether a value follows.
func ReadOptional(b []byte, t *Type) (bool, []byte, error) {
	if ft, _ := t.Nullable(); ft == t {
		return true, b, nil
	}
	br, b, err := ReadBranch(b, t)
	if err != nil {
		return false, nil, err
	}
	return t.Branches[br].Kind != "null", b, nil
}

// ReadBranch reads the branch index of union t.
func ReadBranch(b []byte, t *Type) (int, []byte, error) {
	i, b, err := ReadLong(b)
	if err != nil {
		return 0, nil, err
	}
	if i < 0 || i >= int64(len(t.Branches)) {
		return 0, nil, fmt.Errorf("avro: union branch %d out of range", i)
	}
	return int(i), b, nil
}

// MaxNesting is how deep values may nest (records, unions, arrays, maps
// within each other) in a body the consumer walks. A recursive schema lets
// the data choose the depth, and every record is untrusted: without a
// bound a small record could exhaust the stack. Debezium envelopes nest a
// few levels; BigQuery columns at most 15.
const MaxNesting = 64

// ErrNesting is a value nested deeper than MaxNesting.
var ErrNesting = fmt.Errorf("avro: values nested deeper than %d levels", MaxNesting)

// Skip steps over one value of type t, in time linear in the bytes it
// steps over.
func Skip(b []byte, t *Type) ([]byte, error) { return skipNested(b, t, 0) }

// skipNested steps over one value of type t found depth levels down.
func skipNested(b []byte, t *Type, depth int) ([]byte, error) {
	if depth > MaxNesting {
		return nil, ErrNesting
	}
	var err error
	switch t.Kind {
	case "null":
		return b, nil
	case "boolean":
		if len(b) < 1 {
			return nil, ErrShort
		}
		return b[1:], nil
	case "int", "long", "enum":
		_, b, err = ReadLong(b)
		return b, err
	case "float":
		if len(b) < 4 {
			return nil, ErrShort
		}
		return b[4:], nil
	case "double":
		if len(b) < 8 {
			return nil, ErrShort
		}
		return b[8:], nil
	case "bytes", "string":
		_, b, err = ReadBytes(b)
		return b, err
	case "fixed":
		if len(b) < t.Size {
			return nil, ErrShort
		}
		return b[t.Size:], nil
	case "record":
		for _, f := range t.Fields {
			if b, err = skipNested(b, f.Type, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case "union":
		var i int
		if i, b, err = ReadBranch(b, t); err != nil {
			return nil, err
		}
		return skipNested(b, t.Branches[i], depth+1)
	case "array", "map":
		// Blocks: a count, then the items; a negative count is followed by
		// the block's size in bytes; a zero count ends the value. Items
		// that take no bytes are stepped over a block at a time: walking
		// them one by one made skipping quadratic (a block may claim as
		// many as there are bytes left, and every byte can start a block).
		w := t.Items.width()
		if t.Kind == "map" {
			w++ // the key
		}
		for {
			var n int64
			if n, b, err = blockCount(b, t.Kind, w); err != nil {
				return nil, err
			}
			if n == 0 {
				return b, nil
			}
			if w == 0 {
				continue
			}
			for range n {
				if t.Kind == "map" {
					if _, b, err = ReadBytes(b); err != nil {
						return nil, err
					}
				}
				if b, err = skipNested(b, t.Items, depth+1); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("avro: cannot read type %s", t.Kind)
}

// ReadFloat reads an Avro float.
func ReadFloat(b []byte) (float64, []byte, error) {
	if len(b) < 4 {
		return 0, nil, ErrShort
	}
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), b[4:], nil
}

// ReadDouble reads an Avro double.
func ReadDouble(b []byte) (float64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, ErrShort
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:], nil
}
