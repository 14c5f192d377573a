package bigquery

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/sink"
)

// Proto field numbers of the writer schema: the CDC pseudo-columns first,
// then the table's columns in table order from 3 on. A table only ever
// gains columns at its end, so a column keeps its number for the table's
// life and rows encoded before a patch stay valid after it.
const (
	numChangeType = 1 // _CHANGE_TYPE: UPSERT or DELETE
	numChangeSeq  = 2 // _CHANGE_SEQUENCE_NUMBER
	numFirstCol   = 3
)

// protoName is what a proto field name may be; columns with other names
// (BigQuery's flexible column names) are left out of the writer schema.
var protoName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// protoTypes are the proto types strait writes each column type with
// ("Supported protocol buffer data types" of the Storage Write API):
// decimals as text so that they never pass through binary floating point,
// DATE as int32 days, DATETIME as the packed civil-time int64, TIMESTAMP as
// int64 microseconds.
var protoTypes = map[bigquery.FieldType]descriptorpb.FieldDescriptorProto_Type{
	bigquery.IntegerFieldType:    descriptorpb.FieldDescriptorProto_TYPE_INT64,
	bigquery.FloatFieldType:      descriptorpb.FieldDescriptorProto_TYPE_DOUBLE,
	bigquery.BooleanFieldType:    descriptorpb.FieldDescriptorProto_TYPE_BOOL,
	bigquery.StringFieldType:     descriptorpb.FieldDescriptorProto_TYPE_STRING,
	bigquery.JSONFieldType:       descriptorpb.FieldDescriptorProto_TYPE_STRING,
	bigquery.GeographyFieldType:  descriptorpb.FieldDescriptorProto_TYPE_STRING,
	bigquery.NumericFieldType:    descriptorpb.FieldDescriptorProto_TYPE_STRING,
	bigquery.BigNumericFieldType: descriptorpb.FieldDescriptorProto_TYPE_STRING,
	bigquery.BytesFieldType:      descriptorpb.FieldDescriptorProto_TYPE_BYTES,
	bigquery.DateFieldType:       descriptorpb.FieldDescriptorProto_TYPE_INT32,
	bigquery.DateTimeFieldType:   descriptorpb.FieldDescriptorProto_TYPE_INT64,
	bigquery.TimestampFieldType:  descriptorpb.FieldDescriptorProto_TYPE_INT64,
	bigquery.TimeFieldType:       descriptorpb.FieldDescriptorProto_TYPE_INT64,
	bigquery.RecordFieldType:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE,
}

// writerSchema builds the proto descriptor of a table's rows for
// managedwriter: one message with every column and, when cdc is set, the
// CDC pseudo-columns, normalized (nested messages inlined) by
// adapt.NormalizeDescriptor. Without cdc (append mode) the pseudo-columns
// are left out: BigQuery accepts them only on a table with a primary key.
func writerSchema(schema bigquery.Schema, cdc bool) (*descriptorpb.DescriptorProto, error) {
	root := &descriptorpb.DescriptorProto{Name: proto.String("row")}
	if cdc {
		optional := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
		str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
		root.Field = []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("_CHANGE_TYPE"), Number: proto.Int32(numChangeType), Label: optional, Type: str},
			{Name: proto.String("_CHANGE_SEQUENCE_NUMBER"), Number: proto.Int32(numChangeSeq), Label: optional, Type: str},
		}
	}
	names := nestedNames{taken: map[string]bool{}}
	names.take(schema)
	if err := addFields(root, root, schema, numFirstCol, &names); err != nil {
		return nil, err
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("strait_row.proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{root},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("writer schema: %w", err)
	}
	return adapt.NormalizeDescriptor(fd.Messages().Get(0))
}

// nestedNames names the nested message types of a writer schema: s1, s2,
// ..., skipping every name that is, or whose normalized form row_<name>
// (adapt.NormalizeDescriptor inlines nested types into the root message
// under that name) is, a column or field name of the table, in any case:
// a message type and a field of one name collide in a descriptor.
type nestedNames struct {
	taken map[string]bool // lower-case column and field names
	n     int
}

// take marks the names of schema's columns and of their fields as taken.
func (nn *nestedNames) take(schema bigquery.Schema) {
	for _, f := range schema {
		nn.taken[strings.ToLower(f.Name)] = true
		nn.take(f.Schema)
	}
}

// next returns the next free name.
func (nn *nestedNames) next() string {
	for {
		nn.n++
		name := "s" + strconv.Itoa(nn.n)
		if !nn.taken[name] && !nn.taken["row_"+name] {
			return name
		}
	}
}

// addFields adds a field per column to msg, numbered from first; record
// columns get a nested message type declared on root, named by names.
func addFields(root, msg *descriptorpb.DescriptorProto, schema bigquery.Schema, first int32, names *nestedNames) error {
	for i, f := range schema {
		typ, ok := protoTypes[f.Type]
		if !ok || !protoName.MatchString(f.Name) {
			if f.Required {
				return fmt.Errorf("column %s (%s) is REQUIRED but strait cannot write it", f.Name, f.Type)
			}
			continue // a column strait did not create and never writes
		}
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if f.Repeated {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		fp := &descriptorpb.FieldDescriptorProto{Name: proto.String(f.Name), Number: proto.Int32(first + int32(i)), Label: label.Enum(), Type: typ.Enum()}
		if typ == descriptorpb.FieldDescriptorProto_TYPE_MESSAGE {
			sub := &descriptorpb.DescriptorProto{Name: proto.String(names.next())}
			if err := addFields(root, sub, f.Schema, 1, names); err != nil {
				return err
			}
			root.NestedType = append(root.NestedType, sub)
			fp.TypeName = proto.String(".row." + sub.GetName())
		}
		msg.Field = append(msg.Field, fp)
	}
	return nil
}

// bindColumns returns cols numbered by their place in the table schema:
// from first for top-level columns, from 1 inside records. Every column
// must exist with the same type (the caller patches the table first).
// cols themselves are returned while every column is where planValue
// numbered it (as in the table strait created from the plan): a table's
// binding then holds no copy of its plan's columns.
func bindColumns(cols []column, schema bigquery.Schema, first int32) ([]column, error) {
	out, copied := cols, false
	for i, c := range cols {
		idx := -1
		for j, f := range schema {
			if strings.EqualFold(f.Name, c.name) {
				idx = j
				break
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("column %s is missing from the table", c.name)
		}
		if d := sameType(schema[idx], c.field()); d != "" {
			return nil, fmt.Errorf("%s", d)
		}
		num, sub := protowire.Number(first+int32(idx)), c.sub
		if c.sub != nil {
			var err error
			if sub, err = bindColumns(c.sub, schema[idx].Schema, 1); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.name, err)
			}
		}
		if num == c.num && (len(sub) == 0 || &sub[0] == &c.sub[0]) {
			continue
		}
		if !copied {
			out, copied = slices.Clone(cols), true
		}
		out[i].num, out[i].sub = num, sub
	}
	return out, nil
}

// numberColumns numbers cols as in a table made from them (from first,
// from 1 inside records): the numbers bindColumns keeps.
func numberColumns(cols []column, first int32) {
	for i := range cols {
		cols[i].num = protowire.Number(first + int32(i))
		numberColumns(cols[i].sub, 1)
	}
}

// binding is a value schema bound to a table: where each value goes on the
// proto wire.
type binding struct {
	plan        *valuePlan
	keySchemaID int    // the key schema the table was bound with
	prefix      string // the topic prefix fit found the schemas of
	columns     []column
	meta        [4]protowire.Number               // ColOp, ColSequence, ColSourceTime, ColIngestedAt
	cdc         bool                              // upsert mode: rows carry _CHANGE_TYPE and _CHANGE_SEQUENCE_NUMBER
	seen        struct{ topic, db, table string } // the source names ofTopic found right last
}

func bind(p *valuePlan, schema bigquery.Schema, cdc bool) (*binding, error) {
	cols, err := bindColumns(p.columns, schema, numFirstCol)
	if err != nil {
		return nil, err
	}
	b := &binding{plan: p, columns: cols, cdc: cdc}
	for i, name := range []string{ColOp, ColSequence, ColSourceTime, ColIngestedAt} {
		b.meta[i] = 0
		for j, f := range schema {
			if strings.EqualFold(f.Name, name) {
				b.meta[i] = protowire.Number(numFirstCol + j)
			}
		}
		if b.meta[i] == 0 {
			return nil, fmt.Errorf("metadata column %s is missing from the table", name)
		}
	}
	return b, nil
}

// envelope is what the consumer reads of one Debezium envelope.
type envelope struct {
	before, after []byte // the row records' encodings, nil when null
	op            []byte
	seq           []byte // source.sequence, nil when absent
	srcMillis     int64  // source.ts_ms
	hasSrcTime    bool
	db, table     []byte // source.db and source.table, nil when null
}

// readEnvelope walks a value body, keeping the spans of the two rows and
// the fields the row needs; every other field is skipped.
func (p *valuePlan) readEnvelope(b []byte) (envelope, error) {
	var e envelope
	var err error
	for i, f := range p.env.Fields {
		switch i {
		case p.before, p.after:
			t, nullIdx := f.Type.Nullable()
			if nullIdx >= 0 {
				var br int
				if br, b, err = avro.ReadBranch(b, f.Type); err != nil {
					return e, err
				}
				if br == nullIdx {
					continue
				}
			}
			start := b
			if b, err = avro.Skip(b, t); err != nil {
				return e, err
			}
			span := start[:len(start)-len(b)]
			if i == p.before {
				e.before = span
			} else {
				e.after = span
			}
		case p.source:
			if b, err = p.readSource(b, f.Type, &e); err != nil {
				return e, err
			}
		case p.op:
			if e.op, b, err = avro.ReadBytes(b); err != nil {
				return e, err
			}
		default:
			if b, err = avro.Skip(b, f.Type); err != nil {
				return e, err
			}
		}
	}
	if len(b) != 0 {
		return e, fmt.Errorf("avro: %d bytes left after the envelope", len(b))
	}
	return e, nil
}

func (p *valuePlan) readSource(b []byte, typ *avro.Type, e *envelope) ([]byte, error) {
	t, nullIdx := typ.Nullable()
	var err error
	if nullIdx >= 0 {
		var br int
		if br, b, err = avro.ReadBranch(b, typ); err != nil || br == nullIdx {
			return b, err
		}
	}
	if t.Kind != "record" {
		return avro.Skip(b, t)
	}
	for i, f := range t.Fields {
		switch i {
		case p.srcTime:
			var present bool
			if present, b, err = avro.ReadOptional(b, f.Type); err != nil || !present {
				if err != nil {
					return nil, err
				}
				continue
			}
			if e.srcMillis, b, err = avro.ReadLong(b); err != nil {
				return nil, err
			}
			e.hasSrcTime = true
		case p.srcSeq, p.srcDB, p.srcTable:
			var present bool
			if present, b, err = avro.ReadOptional(b, f.Type); err != nil || !present {
				if err != nil {
					return nil, err
				}
				continue
			}
			if v, _ := f.Type.Nullable(); v.Kind != "string" {
				return nil, fmt.Errorf("source.%s is a %s, want a string", f.Name, v.Kind)
			}
			var v []byte
			if v, b, err = avro.ReadBytes(b); err != nil {
				return nil, err
			}
			switch i {
			case p.srcSeq:
				e.seq = v
			case p.srcDB:
				e.db = v
			default:
				e.table = v
			}
		default:
			if b, err = avro.Skip(b, f.Type); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// ofTopic returns a *wrongTableError unless the change e is of the table
// topic names: its source.db and source.table name it as the topic does
// (sameName), and they are what the envelope's namespace was made of. The
// names last found right are remembered: a topic's changes all have the
// same.
func (bd *binding) ofTopic(e *envelope, topic *sink.Topic) error {
	if e.db == nil || e.table == nil {
		return wrongTable("source.db or source.table is null")
	}
	if bd.seen.topic == topic.Name && string(e.db) == bd.seen.db && string(e.table) == bd.seen.table {
		return nil
	}
	p := bd.plan
	switch {
	case !sameName(e.db, topic.Database) || !sameName(e.table, topic.Table):
		return wrongTable("a change of %s.%s in the topic of %s.%s", e.db, e.table, topic.Database, topic.Table)
	case avro.Name(string(e.db)) != p.database || avro.Name(string(e.table)) != p.table:
		return wrongTable("a change of %s.%s with the value schema of %s.%s", e.db, e.table, p.database, p.table)
	}
	bd.seen.topic, bd.seen.db, bd.seen.table = topic.Name, string(e.db), string(e.table)
	return nil
}

// sameName reports whether a source name and the part of a topic name
// made of it name the same BigQuery table: equal once every byte a table
// name cannot hold is '_' (TableName), as the topic's every byte a topic
// name cannot hold is.
func sameName(source []byte, part string) bool {
	if len(source) != len(part) {
		return false
	}
	for i := range len(source) {
		a, b := source[i], part[i]
		if !tableNameChar(a) {
			a = '_'
		}
		if !tableNameChar(b) {
			b = '_'
		}
		if a != b {
			return false
		}
	}
	return true
}

// appendRow appends the proto row of one change to dst: in upsert mode
// _CHANGE_TYPE (BigQuery accepts only UPSERT and DELETE: inserts, updates
// and snapshot reads are upserts) and _CHANGE_SEQUENCE_NUMBER from
// source.sequence; then the row (after, or before for a delete, whose key
// identifies the row) and the metadata columns. ingested is the ingestion
// time in µs.
//
// In append mode _strait_sequence is what orders a key's changes in the
// latest-row view, as text: it is written in canonical form (see
// canonicalSequence), and a sequence that is not a valid
// _CHANGE_SEQUENCE_NUMBER is an error, as BigQuery makes it in upsert mode.
func (bd *binding) appendRow(dst, value []byte, ingested int64, topic *sink.Topic) ([]byte, byte, int64, error) {
	e, err := bd.plan.readEnvelope(value)
	if err != nil {
		return dst, 0, 0, err
	}
	if err := bd.ofTopic(&e, topic); err != nil {
		return dst, 0, 0, err
	}
	if len(e.op) != 1 {
		return dst, 0, 0, fmt.Errorf("op %q: want c, u, d or r", e.op)
	}
	op := e.op[0]
	row, change := e.after, "UPSERT"
	switch op {
	case 'c', 'u', 'r':
	case 'd':
		row, change = e.before, "DELETE"
	default:
		return dst, 0, 0, fmt.Errorf("op %q: want c, u, d or r", e.op)
	}
	if row == nil {
		return dst, 0, 0, fmt.Errorf("op %c without its row", op)
	}
	if bd.cdc {
		dst = protowire.AppendTag(dst, numChangeType, protowire.BytesType)
		dst = protowire.AppendString(dst, change)
		if e.seq != nil {
			dst = protowire.AppendTag(dst, numChangeSeq, protowire.BytesType)
			dst = protowire.AppendBytes(dst, e.seq)
		}
	} else if e.seq != nil {
		if e.seq, err = canonicalSequence(e.seq); err != nil {
			return dst, 0, 0, err
		}
	}
	if e.seq != nil {
		dst = protowire.AppendTag(dst, bd.meta[1], protowire.BytesType)
		dst = protowire.AppendBytes(dst, e.seq)
	}
	rest, dst, err := appendColumns(dst, row, bd.columns)
	if err != nil {
		return dst, 0, 0, err
	}
	if len(rest) != 0 {
		return dst, 0, 0, fmt.Errorf("avro: %d bytes left after the row", len(rest))
	}
	dst = protowire.AppendTag(dst, bd.meta[0], protowire.BytesType)
	dst = protowire.AppendBytes(dst, e.op)
	if e.hasSrcTime {
		dst = protowire.AppendTag(dst, bd.meta[2], protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(e.srcMillis*1000))
	}
	dst = protowire.AppendTag(dst, bd.meta[3], protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(ingested))
	return dst, op, e.srcMillis, nil
}

// seqSection is the width of a canonical sequence section: 16 hex digits,
// a uint64.
const seqSection = 16

// canonicalSequence returns a source sequence in the canonical form of a
// _CHANGE_SEQUENCE_NUMBER: one to four '/'-separated sections, each
// zero-padded to 16 upper-case hexadecimal digits. In that form text order
// is BigQuery's order (section by section, by value; when one sequence is
// a prefix of the other, the shorter first), so SQL can ORDER BY it.
// strait's producer writes this form (cdc.Position), which is returned
// as is; another producer's valid sequence is rewritten.
func canonicalSequence(seq []byte) ([]byte, error) {
	if isCanonicalSequence(seq) {
		return seq, nil
	}
	sections := strings.Split(string(seq), "/")
	if len(sections) > 4 {
		return nil, fmt.Errorf("source.sequence %q has %d sections, a _CHANGE_SEQUENCE_NUMBER at most 4", seq, len(sections))
	}
	out := make([]byte, 0, len(sections)*(seqSection+1))
	for i, sec := range sections {
		if _, err := strconv.ParseUint(sec, 16, 64); err != nil || len(sec) > seqSection {
			return nil, fmt.Errorf("source.sequence %q is not a _CHANGE_SEQUENCE_NUMBER (1 to 4 '/'-separated sections of 1 to 16 hex digits)", seq)
		}
		if i > 0 {
			out = append(out, '/')
		}
		for range seqSection - len(sec) {
			out = append(out, '0')
		}
		out = append(out, strings.ToUpper(sec)...)
	}
	return out, nil
}

// isCanonicalSequence reports whether s is 1 to 4 sections of exactly 16
// upper-case hex digits separated by '/', without allocating: the form of
// every sequence strait's producer writes.
func isCanonicalSequence(s []byte) bool {
	const step = seqSection + 1
	if (len(s)+1)%step != 0 || (len(s)+1)/step > 4 {
		return false
	}
	for i, c := range s {
		if (i+1)%step == 0 {
			if c != '/' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// appendColumns converts one Avro record (at b) to proto fields appended to
// dst, and returns what follows the record in b.
func appendColumns(dst, b []byte, cols []column) ([]byte, []byte, error) {
	var err error
	for i := range cols {
		c := &cols[i]
		if c.nullIdx >= 0 {
			var br int
			if br, b, err = avro.ReadBranch(b, c.typ); err != nil {
				return nil, dst, err
			}
			if br == int(c.nullIdx) {
				continue // NULL: the field stays unset
			}
		}
		if b, dst, err = appendValue(dst, b, c); err != nil {
			return nil, dst, fmt.Errorf("column %s: %w", c.name, err)
		}
	}
	return b, dst, nil
}

// appendValue converts one non-null value.
func appendValue(dst, b []byte, c *column) ([]byte, []byte, error) {
	var err error
	switch c.conv {
	case convLong, convDate, convTimestampMicros, convTimestampMillis, convDateTimeMicros, convDateTimeMillis:
		var v int64
		if v, b, err = avro.ReadLong(b); err != nil {
			return nil, dst, err
		}
		switch c.conv {
		case convTimestampMillis:
			v *= 1000
		case convDateTimeMillis:
			v, err = packDateTime(v * 1000)
		case convDateTimeMicros:
			v, err = packDateTime(v)
		}
		if err != nil {
			return nil, dst, err
		}
		dst = protowire.AppendTag(dst, c.num, protowire.VarintType)
		return b, protowire.AppendVarint(dst, uint64(v)), nil
	case convFloat, convDouble:
		var f float64
		if c.conv == convFloat {
			f, b, err = avro.ReadFloat(b)
		} else {
			f, b, err = avro.ReadDouble(b)
		}
		if err != nil {
			return nil, dst, err
		}
		dst = protowire.AppendTag(dst, c.num, protowire.Fixed64Type)
		return b, protowire.AppendFixed64(dst, math.Float64bits(f)), nil
	case convFloatKey, convDoubleKey:
		var f float64
		if c.conv == convFloatKey {
			f, b, err = avro.ReadFloat(b)
		} else {
			f, b, err = avro.ReadDouble(b)
		}
		if err != nil {
			return nil, dst, err
		}
		var buf [32]byte
		dst = protowire.AppendTag(dst, c.num, protowire.BytesType)
		return b, protowire.AppendBytes(dst, appendFloatKey(buf[:0], f)), nil
	case convBytesKey, convFixedKey:
		var v []byte
		if c.conv == convBytesKey {
			if v, b, err = avro.ReadBytes(b); err != nil {
				return nil, dst, err
			}
		} else {
			if len(b) < c.value.Size {
				return nil, dst, avro.ErrShort
			}
			v, b = b[:c.value.Size], b[c.value.Size:]
		}
		dst = protowire.AppendTag(dst, c.num, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(2+hex.EncodedLen(len(v))))
		return b, hex.AppendEncode(append(dst, "0x"...), v), nil
	case convBool:
		if len(b) < 1 {
			return nil, dst, avro.ErrShort
		}
		dst = protowire.AppendTag(dst, c.num, protowire.VarintType)
		return b[1:], protowire.AppendVarint(dst, uint64(b[0]&1)), nil
	case convBytes, convString, convDecimal:
		var v []byte
		if v, b, err = avro.ReadBytes(b); err != nil {
			return nil, dst, err
		}
		if c.conv == convDecimal {
			dst, err = appendDecimal(dst, v, c)
			return b, dst, err
		}
		dst = protowire.AppendTag(dst, c.num, protowire.BytesType)
		return b, protowire.AppendBytes(dst, v), nil
	case convFixed, convFixedDecimal:
		n := c.value.Size
		if len(b) < n {
			return nil, dst, avro.ErrShort
		}
		if c.conv == convFixedDecimal {
			dst, err = appendDecimal(dst, b[:n], c)
			return b[n:], dst, err
		}
		dst = protowire.AppendTag(dst, c.num, protowire.BytesType)
		return b[n:], protowire.AppendBytes(dst, b[:n]), nil
	case convEnum:
		var i int64
		if i, b, err = avro.ReadLong(b); err != nil {
			return nil, dst, err
		}
		if i < 0 || i >= int64(len(c.value.Symbols)) {
			return nil, dst, fmt.Errorf("enum index %d out of range", i)
		}
		dst = protowire.AppendTag(dst, c.num, protowire.BytesType)
		return b, protowire.AppendString(dst, c.value.Symbols[i]), nil
	case convRecord:
		var sub []byte
		if b, sub, err = appendColumns(nil, b, c.sub); err != nil {
			return nil, dst, err
		}
		dst = protowire.AppendTag(dst, c.num, protowire.BytesType)
		return b, protowire.AppendBytes(dst, sub), nil
	}
	return nil, dst, fmt.Errorf("no conversion %d", c.conv)
}

// maxDecimalBytes bounds a decimal's two's-complement bytes: converting
// them to text costs more than linear time, and no column holds more.
const maxDecimalBytes = avro.MaxDecimalBytes

// appendDecimal appends the field of decimal column c holding raw, the
// unscaled value in big-endian two's complement (Avro's decimal), as
// decimal text: exact, never through float64. A value outside the range
// of the column's type is a *rangeError: BigQuery would refuse it, and
// strait never rounds.
func appendDecimal(dst, raw []byte, c *column) ([]byte, error) {
	if len(raw) > maxDecimalBytes {
		return dst, &rangeError{fmt.Errorf("a decimal of %d bytes, beyond %s's range %s", len(raw), c.bqType, decimalRanges[c.bqType])}
	}
	var buf [160]byte // the text of maxDecimalBytes at any scale up to BIGNUMERIC's
	text := avro.AppendDecimalText(buf[:0], raw, c.value.Scale)
	if err := checkDecimal(text, c.bqType); err != nil {
		return dst, err
	}
	dst = protowire.AppendTag(dst, c.num, protowire.BytesType)
	return protowire.AppendBytes(dst, text), nil
}

// rangeError is a value outside the range of its column's BigQuery type.
// The change is rejected (ReasonRowRejected), as BigQuery rejects such a
// row; the table goes on.
type rangeError struct{ err error }

func (e *rangeError) Error() string { return e.err.Error() }
func (e *rangeError) Unwrap() error { return e.err }

// The ranges of NUMERIC and BIGNUMERIC ("Data types", "Decimal types"):
// NUMERIC is ±(10^29 − 10^−9), BIGNUMERIC −2^255/10^38 to (2^255 − 1)/10^38.
const (
	numericMaxInt    = "99999999999999999999999999999"
	bigNumericMaxInt = "578960446186580977117854925043439539266"
	bigNumericMaxFrc = "34992332820282019728792003956564819967" // of the maximum
	bigNumericMinFrc = "34992332820282019728792003956564819968" // of the minimum, negated
)

var decimalRanges = map[bigquery.FieldType]string{
	bigquery.NumericFieldType:    "-" + numericMaxInt + ".999999999 to " + numericMaxInt + ".999999999",
	bigquery.BigNumericFieldType: "-" + bigNumericMaxInt + "." + bigNumericMinFrc + " to " + bigNumericMaxInt + "." + bigNumericMaxFrc,
}

// checkDecimal returns a *rangeError when decimal text ("-12.50", as
// avro.AppendDecimalText writes it: no leading zeros, no exponent) is
// outside the range of typ. The fractional digits are the column's scale,
// which decimalType keeps within typ's.
func checkDecimal(text []byte, typ bigquery.FieldType) error {
	digits := text
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	intPart, frac, _ := bytes.Cut(digits, []byte{'.'})
	if len(intPart) == 1 && intPart[0] == '0' {
		intPart = nil
	}
	maxInt := numericMaxInt
	if typ == bigquery.BigNumericFieldType {
		maxInt = bigNumericMaxInt
	}
	in := len(intPart) < len(maxInt)
	if len(intPart) == len(maxInt) {
		switch c := bytes.Compare(intPart, []byte(maxInt)); {
		case c < 0:
			in = true
		case c == 0 && typ == bigquery.NumericFieldType:
			in = true // any fraction of at most 9 digits
		case c == 0:
			limit := bigNumericMaxFrc
			if neg {
				limit = bigNumericMinFrc
			}
			f := append(slices.Clone(frac), bytes.Repeat([]byte{'0'}, max(0, len(limit)-len(frac)))...)
			in = bytes.Compare(f, []byte(limit)) <= 0
		}
	}
	if in {
		return nil
	}
	return &rangeError{fmt.Errorf("%s is outside %s's range %s", text, typ, decimalRanges[typ])}
}

// appendFloatKey appends TextFloatKey(f) to dst.
func appendFloatKey(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// packDateTime turns wall-clock microseconds since 1970-01-01 00:00 into
// the Storage Write API's packed DATETIME: year<<46 | month<<42 | day<<37 |
// hour<<32 | minute<<26 | second<<20 | microsecond.
func packDateTime(us int64) (int64, error) {
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	t := time.Unix(sec, 0).UTC()
	y, mo, d := t.Date()
	if y < 1 || y > 9999 {
		return 0, fmt.Errorf("DATETIME year %d outside BigQuery's 1..9999", y)
	}
	h, mi, s := t.Clock()
	return int64(y)<<46 | int64(mo)<<42 | int64(d)<<37 | int64(h)<<32 | int64(mi)<<26 | int64(s)<<20 | frac, nil
}
