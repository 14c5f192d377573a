package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Encoder writes the key and value records of one table version. It holds
// no per-call state and is safe for concurrent use.
type Encoder struct {
	table   *cdc.Table
	source  string // source name (topic prefix) for source.name
	version string
	keyID   uint32
	valueID uint32
	dbName  string
	tblName string
}

// NewEncoder returns an encoder for t whose records carry the registry ids
// keyID and valueID. source is the source name written to source.name,
// version the strait version written to source.version.
func NewEncoder(t *cdc.Table, source, version string, keyID, valueID uint32) *Encoder {
	return &Encoder{table: t, source: source, version: version, keyID: keyID, valueID: valueID, dbName: t.Database, tblName: t.Name}
}

// Table returns the table version the encoder was built for.
func (e *Encoder) Table() *cdc.Table { return e.table }

// header appends the Confluent wire-format header: magic byte 0 and the
// big-endian schema id.
func header(b []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0), id)
}

// AppendKey appends the key record of ev (the primary-key columns of the row
// after the change, or before it for deletes) to b. Tables without a key
// have no key record: b is returned unchanged.
func (e *Encoder) AppendKey(b []byte, ev *cdc.Event) ([]byte, error) {
	if !e.table.HasKey() {
		return b, nil
	}
	row := ev.After
	if row == nil {
		row = ev.Before
	}
	b = header(b, e.keyID)
	for _, i := range e.table.PrimaryKey {
		var err error
		if b, err = appendValue(b, &e.table.Columns[i], row[i]); err != nil {
			return nil, fmt.Errorf("key column %s: %w", e.table.Columns[i].Name, err)
		}
	}
	return b, nil
}

// AppendValue appends the envelope of ev to b. now is the processing time
// written to ts_ms.
func (e *Encoder) AppendValue(b []byte, ev *cdc.Event, now time.Time) ([]byte, error) {
	b = header(b, e.valueID)
	var err error
	for _, row := range [2][]cdc.Value{ev.Before, ev.After} {
		if row == nil {
			b = append(b, 0) // union branch 0: null
			continue
		}
		b = append(b, 2) // union branch 1: the row record
		for i := range e.table.Columns {
			if b, err = appendNullable(b, &e.table.Columns[i], row[i]); err != nil {
				return nil, fmt.Errorf("column %s: %w", e.table.Columns[i].Name, err)
			}
		}
	}
	b = e.appendSource(b, ev)
	b = appendString(b, ev.Op.String())
	b = append(b, 2)
	b = appendLong(b, now.UnixMilli())
	return b, nil
}

// appendSource writes the source block in the field order of schemas/source.avsc.
func (e *Encoder) appendSource(b []byte, ev *cdc.Event) []byte {
	s := &ev.Source
	b = appendString(b, e.version)
	b = appendString(b, "mysql")
	b = appendString(b, e.source)
	b = appendLong(b, ev.CommitTime.UnixMilli())
	b = append(b, 2)
	if s.Snapshot {
		b = appendString(b, "true")
	} else {
		b = appendString(b, "false")
	}
	b = appendString(b, e.dbName)
	b = append(b, 2)
	b = appendLong(b, 67)
	b = ev.Position.AppendText(b)
	b = append(b, 2)
	b = appendString(b, e.tblName)
	b = appendLong(b, int64(s.ServerID))
	b = appendOptionalString(b, s.GTID)
	b = appendString(b, s.File)
	b = appendLong(b, int64(s.Pos))
	b = appendLong(b, int64(s.Row))
	b = append(b, 0) // thread: unknown in row events
	b = appendOptionalString(b, s.Query)
	if s.BeforeKeyOnly {
		return append(b, 2, 1) // before_key_only: true
	}
	return append(b, 0)
}

func appendOptionalString(b []byte, s string) []byte {
	if s == "" {
		return append(b, 0)
	}
	return appendString(append(b, 2), s)
}

func appendNullable(b []byte, c *cdc.Column, v cdc.Value) ([]byte, error) {
	if v.Null {
		return append(b, 0), nil
	}
	return appendValue(append(b, 2), c, v)
}

var errNull = errors.New("NULL in a key column")

// appendValue writes a non-null value of column c.
func appendValue(b []byte, c *cdc.Column, v cdc.Value) ([]byte, error) {
	if v.Null {
		return nil, errNull
	}
	switch c.Type {
	case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeDate, cdc.TypeTime, cdc.TypeDateTime, cdc.TypeTimestamp:
		return appendLong(b, v.Int), nil
	case cdc.TypeUint64:
		return appendUnsignedDecimal(b, uint64(v.Int)), nil
	case cdc.TypeDecimal:
		return appendDecimal(b, v.Str, c.Scale)
	case cdc.TypeFloat32:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v.Float))), nil
	case cdc.TypeFloat64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float)), nil
	case cdc.TypeBool:
		if v.Int != 0 {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case cdc.TypeBits:
		n := (c.Length + 7) / 8
		b = appendLong(b, int64(n))
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(uint64(v.Int)>>(8*uint(i))))
		}
		return b, nil
	case cdc.TypeString, cdc.TypeBytes, cdc.TypeJSON:
		return appendString(b, v.Str), nil
	case cdc.TypeGeometry:
		// MySQL stores a 4-byte little-endian SRID before the WKB.
		if len(v.Str) < 4 {
			return nil, fmt.Errorf("geometry of %d bytes: want SRID + WKB", len(v.Str))
		}
		b = appendString(b, v.Str[4:])
		return appendLong(append(b, 2), int64(uint32(v.Str[0])|uint32(v.Str[1])<<8|uint32(v.Str[2])<<16|uint32(v.Str[3])<<24)), nil
	}
	return nil, fmt.Errorf("type %s has no Avro encoding", c.Type)
}

// appendLong writes an Avro int or long: zig-zag, then base-128 varint.
func appendLong(b []byte, n int64) []byte {
	return binary.AppendUvarint(b, uint64((n<<1)^(n>>63)))
}

func appendString(b []byte, s string) []byte {
	return append(appendLong(b, int64(len(s))), s...)
}

// appendUnsignedDecimal writes an unsigned 64-bit integer as an Avro
// decimal(20,0): big-endian two's complement, minimal length.
func appendUnsignedDecimal(b []byte, u uint64) []byte {
	var buf [9]byte
	binary.BigEndian.PutUint64(buf[1:], u)
	return appendTwosComplement(b, buf[:], false)
}

// appendDecimal writes MySQL's decimal text ("-123.4500") as an Avro decimal
// with the column's scale: the unscaled integer in big-endian two's
// complement. It never goes through float64 or math/big: DECIMAL(65) needs at
// most 216 bits, eight 32-bit limbs on the stack.
func appendDecimal(b []byte, s string, scale int) ([]byte, error) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var limbs [8]uint32 // little-endian limbs of the unscaled value
	frac, seenDot, nd := 0, false, 0
	push := func(d uint64) {
		carry := d
		for i := range limbs {
			v := uint64(limbs[i])*10 + carry
			limbs[i], carry = uint32(v), v>>32
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !seenDot:
			seenDot = true
		case c >= '0' && c <= '9':
			if seenDot {
				frac++
			}
			nd++
			push(uint64(c - '0'))
		default:
			return nil, fmt.Errorf("decimal %q: unexpected %q", s, c)
		}
	}
	if nd == 0 || nd > 65 || frac > scale {
		return nil, fmt.Errorf("decimal %q does not fit scale %d", s, scale)
	}
	for ; frac < scale; frac++ {
		push(0)
	}
	var buf [33]byte // one spare leading byte for the sign
	for i := range limbs {
		binary.BigEndian.PutUint32(buf[1+4*(7-i):], limbs[i])
	}
	return appendTwosComplement(b, buf[:], neg), nil
}

// appendTwosComplement writes the big-endian magnitude mag (whose first byte
// is zero) as a length-prefixed minimal two's-complement number.
func appendTwosComplement(b []byte, mag []byte, neg bool) []byte {
	if neg {
		carry := byte(1)
		for i := len(mag) - 1; i >= 0; i-- {
			v := ^mag[i] + carry
			if carry == 1 && mag[i] != 0 {
				carry = 0
			}
			mag[i] = v
		}
	}
	// Strip sign-extension bytes, keeping the sign bit right.
	for len(mag) > 1 && ((mag[0] == 0 && mag[1]&0x80 == 0) || (mag[0] == 0xFF && mag[1]&0x80 != 0)) {
		mag = mag[1:]
	}
	b = appendLong(b, int64(len(mag)))
	return append(b, mag...)
}

// AppendSchemaChange appends a schemas/schema_change.avsc record for d.
func AppendSchemaChange(b []byte, id uint32, d *cdc.SchemaChange) []byte {
	b = header(b, id)
	b = appendString(b, d.Database)
	b = appendString(b, d.DDL)
	b = appendLong(b, d.CommitTime.UnixMilli())
	b = appendOptionalString(b, d.Source.GTID)
	b = appendString(b, d.Source.File)
	b = appendLong(b, int64(d.Source.Pos))
	b = appendLong(b, 67)
	return d.Position.AppendText(b)
}
