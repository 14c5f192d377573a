package bqfake

// wire.go reads a serialized row with the bound writer schema straight from
// the protobuf wire format, as proto.Unmarshal reads it into a dynamicpb
// message of the writer's descriptor (a proto2 message: strings are not
// checked for UTF-8 here, convert.go checks them per column): a field of an
// unknown number, or with a wire type its kind does not take, is an unknown
// field and ignored; a singular scalar's last occurrence wins; occurrences
// of a singular message merge; repeated scalars may be packed. Reading the
// wire directly costs a fraction of dynamicpb's map per message and boxed
// values, which made the endpoint the slowest part of the consumer
// benchmark (README, "Performance").

import (
	"errors"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errWireFormat is proto.Unmarshal's complaint about bytes that are not a
// message encoding.
var errWireFormat = errors.New("proto: cannot parse invalid wire-format data")

// errUnknownField marks a field proto.Unmarshal would keep as unknown.
var errUnknownField = errors.New("unknown field")

// wireField is what one message encoding holds for one bound field.
type wireField struct {
	set  bool
	val  protoreflect.Value   // a singular scalar's last value
	list []protoreflect.Value // a repeated scalar's values
	msgs [][]byte             // a message field's encodings: one per element, or a singular one's occurrences (merged when read)
}

// fieldIndex finds a field's slot by number.
type fieldIndex struct {
	small []int32 // by number, slot+1 (0: none); numbers up to smallNumbers
	large map[protowire.Number]int32
}

const smallNumbers = 1 << 12

func (x *fieldIndex) add(num protowire.Number, slot int) {
	if num <= smallNumbers {
		if int(num) >= len(x.small) {
			x.small = append(x.small, make([]int32, int(num)+1-len(x.small))...)
		}
		x.small[num] = int32(slot) + 1
		return
	}
	if x.large == nil {
		x.large = map[protowire.Number]int32{}
	}
	x.large[num] = int32(slot) + 1
}

func (x *fieldIndex) slot(num protowire.Number) int {
	if int(num) < len(x.small) {
		return int(x.small[num]) - 1
	}
	if s, ok := x.large[num]; ok {
		return int(s) - 1
	}
	return -1
}

// slots returns the field descriptors of b's wire slots: its fields, then
// _CHANGE_TYPE and _CHANGE_SEQUENCE_NUMBER (nil when absent).
func (b *binding) slots() []protoreflect.FieldDescriptor {
	out := make([]protoreflect.FieldDescriptor, 0, len(b.fields)+2)
	for i := range b.fields {
		out = append(out, b.fields[i].fd)
	}
	return append(out, b.changeType, b.changeSeq)
}

// indexFields builds b's field index; bind calls it once b is complete.
func (b *binding) indexFields() {
	b.fds = b.slots()
	for i, fd := range b.fds {
		if fd != nil {
			b.index.add(fd.Number(), i)
		}
	}
}

// parse splits a message encoding by slot. The result is b's scratch,
// valid until the next parse with b: a binding belongs to one writer
// schema on one connection, whose requests are handled one at a time, and
// a nested binding's result is read before its next parse.
func (b *binding) parse(raw []byte) ([]wireField, error) {
	if b.scratch == nil {
		b.scratch = make([]wireField, len(b.fds))
	}
	out := b.scratch
	for i := range out {
		out[i] = wireField{list: out[i].list[:0], msgs: out[i].msgs[:0]}
	}
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return nil, errWireFormat
		}
		raw = raw[n:]
		err := errUnknownField
		if s := b.index.slot(num); s >= 0 {
			n, err = readField(&out[s], b.fds[s], typ, raw)
		}
		if errors.Is(err, errUnknownField) {
			n = protowire.ConsumeFieldValue(num, typ, raw)
			err = nil
			if n < 0 {
				err = errWireFormat
			}
		}
		if err != nil {
			return nil, err
		}
		raw = raw[n:]
	}
	return out, nil
}

// readField reads one occurrence of fd into w and returns its length.
func readField(w *wireField, fd protoreflect.FieldDescriptor, typ protowire.Type, b []byte) (int, error) {
	kind := fd.Kind()
	if kind == protoreflect.MessageKind || kind == protoreflect.GroupKind {
		var v []byte
		var n int
		switch {
		case kind == protoreflect.MessageKind && typ == protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case kind == protoreflect.GroupKind && typ == protowire.StartGroupType:
			v, n = protowire.ConsumeGroup(fd.Number(), b)
		default:
			return 0, errUnknownField
		}
		if n < 0 {
			return 0, errWireFormat
		}
		switch {
		case fd.IsList() || !w.set:
			w.msgs = append(w.msgs, v)
		default: // a singular message seen again merges into the first
			w.msgs[0] = append(w.msgs[0][:len(w.msgs[0]):len(w.msgs[0])], v...)
		}
		w.set = true
		return n, nil
	}
	if fd.IsList() && typ == protowire.BytesType && kind != protoreflect.StringKind && kind != protoreflect.BytesKind {
		// Packed.
		buf, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errWireFormat
		}
		for len(buf) > 0 {
			v, m, err := readScalar(kind, scalarWireType(kind), buf)
			if err != nil {
				return 0, errWireFormat
			}
			w.list = append(w.list, v)
			buf = buf[m:]
		}
		w.set = true
		return n, nil
	}
	v, n, err := readScalar(kind, typ, b)
	if err != nil {
		return 0, err
	}
	if fd.IsList() {
		w.list = append(w.list, v)
	} else {
		w.val = v
	}
	w.set = true
	return n, nil
}

// scalarWireType is the wire type of a scalar kind's unpacked values.
func scalarWireType(kind protoreflect.Kind) protowire.Type {
	switch kind {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind:
		return protowire.BytesType
	}
	return protowire.VarintType
}

// readScalar reads one scalar value of kind; errUnknownField when the wire
// type does not fit the kind. Strings and bytes alias b.
func readScalar(kind protoreflect.Kind, typ protowire.Type, b []byte) (protoreflect.Value, int, error) {
	if typ != scalarWireType(kind) {
		return protoreflect.Value{}, 0, errUnknownField
	}
	switch typ {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return protoreflect.Value{}, 0, errWireFormat
		}
		switch kind {
		case protoreflect.BoolKind:
			return protoreflect.ValueOfBool(protowire.DecodeBool(v)), n, nil
		case protoreflect.EnumKind:
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(v)), n, nil
		case protoreflect.Int32Kind:
			return protoreflect.ValueOfInt32(int32(v)), n, nil
		case protoreflect.Sint32Kind:
			return protoreflect.ValueOfInt32(int32(protowire.DecodeZigZag(v & math.MaxUint32))), n, nil
		case protoreflect.Uint32Kind:
			return protoreflect.ValueOfUint32(uint32(v)), n, nil
		case protoreflect.Int64Kind:
			return protoreflect.ValueOfInt64(int64(v)), n, nil
		case protoreflect.Sint64Kind:
			return protoreflect.ValueOfInt64(protowire.DecodeZigZag(v)), n, nil
		case protoreflect.Uint64Kind:
			return protoreflect.ValueOfUint64(v), n, nil
		}
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return protoreflect.Value{}, 0, errWireFormat
		}
		switch kind {
		case protoreflect.Fixed32Kind:
			return protoreflect.ValueOfUint32(v), n, nil
		case protoreflect.Sfixed32Kind:
			return protoreflect.ValueOfInt32(int32(v)), n, nil
		case protoreflect.FloatKind:
			return protoreflect.ValueOfFloat32(math.Float32frombits(v)), n, nil
		}
	case protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return protoreflect.Value{}, 0, errWireFormat
		}
		switch kind {
		case protoreflect.Fixed64Kind:
			return protoreflect.ValueOfUint64(v), n, nil
		case protoreflect.Sfixed64Kind:
			return protoreflect.ValueOfInt64(int64(v)), n, nil
		case protoreflect.DoubleKind:
			return protoreflect.ValueOfFloat64(math.Float64frombits(v)), n, nil
		}
	case protowire.BytesType:
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protoreflect.Value{}, 0, errWireFormat
		}
		if kind == protoreflect.StringKind {
			return protoreflect.ValueOfString(string(v)), n, nil
		}
		return protoreflect.ValueOfBytes(v), n, nil
	}
	return protoreflect.Value{}, 0, errUnknownField
}
