package binlog

// MySQL's JSON columns travel in the binlog in MySQL's binary JSON format.
// go-mysql's default rendering of them goes through Go values and loses
// what MySQL keeps: a DECIMAL inside a document (JSON_OBJECT('price',
// price) of a DECIMAL column) becomes a quoted string, a DATE gains
// " 00:00:00.000000", an opaque value of another type (CAST(x'..' AS
// JSON)) becomes its raw bytes, and a DOUBLE 1.0 becomes the integer 1.
// The snapshot (a SELECT) and BigQuery then hold another value than the
// binlog's. So decode.go renders the documents itself, as MySQL prints
// them: numbers and literals bare, DECIMALs by their digits, dates and
// times as MySQL's text, other opaque values in MySQL's
// "base64:type<n>:<base64>" form, keys in their stored order, compact
// separators. TestMySQL8Vectors compares the result with go-mysql's
// MySQL-text rendering and with MySQL's text of go-mysql's test documents.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Value types of the binary JSON format (MySQL's json_binary.h).
const (
	jsonSmallObject = 0x00
	jsonLargeObject = 0x01
	jsonSmallArray  = 0x02
	jsonLargeArray  = 0x03
	jsonLiteral     = 0x04
	jsonInt16       = 0x05
	jsonUint16      = 0x06
	jsonInt32       = 0x07
	jsonUint32      = 0x08
	jsonInt64       = 0x09
	jsonUint64      = 0x0a
	jsonDouble      = 0x0b
	jsonString      = 0x0c
	jsonOpaque      = 0x0f
)

// maxJSONDepth bounds the nesting of containers, as MySQL's documents are
// (at most 100 levels deep): a corrupt event cannot recurse without end.
const maxJSONDepth = 100

var errShortJSON = errors.New("document ends inside a value")

// jsonText renders a binary JSON document (a JSON column's non-empty value)
// as JSON text.
func jsonText(doc []byte) (string, error) {
	out, err := appendJSONValue(make([]byte, 0, len(doc)+len(doc)/4+8), doc[0], doc[1:], 0)
	if err != nil {
		return "", fmt.Errorf("binary JSON: %w", err)
	}
	return bytesString(out), nil
}

// appendJSONValue appends the text of the value of type tp whose bytes
// start data.
func appendJSONValue(out []byte, tp byte, data []byte, depth int) ([]byte, error) {
	fixed := func(n int) (uint64, error) {
		if len(data) < n {
			return 0, errShortJSON
		}
		return littleEndian(data, n), nil
	}
	switch tp {
	case jsonSmallObject, jsonLargeObject, jsonSmallArray, jsonLargeArray:
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
		}
		return appendJSONContainer(out, data, tp == jsonLargeObject || tp == jsonLargeArray,
			tp == jsonSmallObject || tp == jsonLargeObject, depth+1)
	case jsonLiteral:
		v, err := fixed(1)
		switch {
		case err != nil:
			return nil, err
		case v == 0:
			return append(out, "null"...), nil
		case v == 1:
			return append(out, "true"...), nil
		case v == 2:
			return append(out, "false"...), nil
		}
		return nil, fmt.Errorf("literal %#x", v)
	case jsonInt16, jsonUint16, jsonInt32, jsonUint32, jsonInt64, jsonUint64:
		// Signed and unsigned alternate, 2, 4 then 8 bytes wide.
		n := 2 << ((tp - jsonInt16) / 2)
		v, err := fixed(n)
		if err != nil {
			return nil, err
		}
		if (tp-jsonInt16)%2 == 1 {
			return strconv.AppendUint(out, v, 10), nil
		}
		return strconv.AppendInt(out, withSign(v, n, false), 10), nil
	case jsonDouble:
		v, err := fixed(8)
		if err != nil {
			return nil, err
		}
		f := math.Float64frombits(v)
		if !isFinite(f) {
			return nil, fmt.Errorf("double %v", f)
		}
		return appendJSONDouble(out, f), nil
	case jsonString:
		s, err := jsonVarBytes(data)
		if err != nil {
			return nil, err
		}
		return appendJSONString(out, s)
	case jsonOpaque:
		if len(data) < 1 {
			return nil, errShortJSON
		}
		v, err := jsonVarBytes(data[1:])
		if err != nil {
			return nil, err
		}
		return appendJSONOpaque(out, data[0], v)
	}
	return nil, fmt.Errorf("value type %#x", tp)
}

// appendJSONContainer appends an object or an array: a count and a size,
// then a key entry (offset, length) per member of an object, a value entry
// (type, then the value inline or its offset) per member, then the keys and
// values the offsets point at, all offsets from the container's start.
// Large containers use 4-byte counts and offsets, small ones 2.
func appendJSONContainer(out []byte, data []byte, large, object bool, depth int) ([]byte, error) {
	w := 2
	if large {
		w = 4
	}
	if len(data) < 2*w {
		return nil, errShortJSON
	}
	count, size := int(littleEndian(data, w)), int(littleEndian(data[w:], w))
	if size < 2*w || size > len(data) {
		return nil, fmt.Errorf("container of %d bytes in %d", size, len(data))
	}
	if count > size {
		return nil, fmt.Errorf("container of %d members in %d bytes", count, size)
	}
	data = data[:size]
	keyEntry, valueEntry := w+2, 1+w
	values := 2 * w // where the value entries start
	if object {
		values += count * keyEntry
	}
	header := values + count*valueEntry
	if header > size {
		return nil, fmt.Errorf("container of %d members in %d bytes", count, size)
	}
	open, close := byte('['), byte(']')
	if object {
		open, close = '{', '}'
	}
	out = append(out, open)
	var err error
	for i := range count {
		if i > 0 {
			out = append(out, ',')
		}
		if object {
			e := 2*w + i*keyEntry
			off, l := int(littleEndian(data[e:], w)), int(littleEndian(data[e+w:], 2))
			if off < header || off+l > size {
				return nil, fmt.Errorf("key at %d of %d bytes outside its container", off, l)
			}
			if out, err = appendJSONString(out, data[off:off+l]); err != nil {
				return nil, err
			}
			out = append(out, ':')
		}
		e := values + i*valueEntry
		tp := data[e]
		switch {
		case tp == jsonLiteral || tp == jsonInt16 || tp == jsonUint16 || large && (tp == jsonInt32 || tp == jsonUint32):
			out, err = appendJSONValue(out, tp, data[e+1:e+1+w], depth) // inline
		default:
			off := int(littleEndian(data[e+1:], w))
			if off < header || off >= size {
				return nil, fmt.Errorf("value at %d outside its container", off)
			}
			out, err = appendJSONValue(out, tp, data[off:], depth)
		}
		if err != nil {
			return nil, err
		}
	}
	return append(out, close), nil
}

// jsonVarBytes reads a variable-length size (7 bits a byte, low bits first,
// at most 5 bytes) and the bytes it counts.
func jsonVarBytes(data []byte) ([]byte, error) {
	var l uint64
	for i := 0; i < 5 && i < len(data); i++ {
		l |= uint64(data[i]&0x7f) << (7 * i)
		if data[i]&0x80 == 0 {
			if l > uint64(len(data)-i-1) {
				return nil, errShortJSON
			}
			return data[i+1 : i+1+int(l)], nil
		}
	}
	return nil, errors.New("bad variable-length size")
}

// appendJSONDouble appends a DOUBLE as MySQL keeps it apart from an
// integer: a whole number keeps a ".0".
func appendJSONDouble(out []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendFloat(out, f, 'f', 1, 64)
	}
	return strconv.AppendFloat(out, f, 'g', -1, 64)
}

// appendJSONString appends s quoted. MySQL's JSON strings are utf8mb4: any
// other byte sequence is a corrupt event, not a value to pass on.
func appendJSONString(out, s []byte) ([]byte, error) {
	if !utf8.Valid(s) {
		return nil, fmt.Errorf("string %q is not valid UTF-8", truncate(string(s)))
	}
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"'), nil
}

// appendJSONOpaque appends a value of MySQL type ft kept in a document as
// its binary form: DECIMAL bare, by its digits; DATE, TIME, DATETIME and
// TIMESTAMP quoted, as MySQL prints them (six fractional digits); anything
// else as MySQL prints it, "base64:type<ft>:<the bytes in base64>".
func appendJSONOpaque(out []byte, ft byte, v []byte) ([]byte, error) {
	switch ft {
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		if len(v) < 2 {
			return nil, errShortJSON
		}
		start := len(out)
		var n int
		var err error
		if out, n, err = appendDecimal(out, v[2:], int(v[0]), int(v[1])); err != nil {
			return nil, fmt.Errorf("DECIMAL(%d,%d): %w", v[0], v[1], err)
		}
		if n != len(v)-2 {
			return nil, fmt.Errorf("DECIMAL %s of %d bytes, want %d", out[start:], len(v)-2, n)
		}
		return out, nil
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIME:
		if len(v) < 8 {
			return nil, errShortJSON
		}
		return appendPackedTemporal(out, ft, int64(littleEndian(v, 8)))
	}
	out = append(out, `"base64:type`...)
	out = strconv.AppendInt(out, int64(ft), 10)
	out = append(out, ':')
	out = base64.StdEncoding.AppendEncode(out, v)
	return append(out, '"'), nil
}

// appendPackedTemporal appends, quoted, a temporal value in MySQL's packed
// 64-bit form: the microseconds in the low 24 bits, above them the second,
// minute and hour (6, 6 and 10 bits) and, for dates, the day (5 bits) and
// year*13+month; negative for a negative TIME.
func appendPackedTemporal(out []byte, ft byte, v int64) ([]byte, error) {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	us, hms := v%(1<<24), v>>24
	if us > 999_999 {
		return nil, fmt.Errorf("fraction %d of a packed temporal value", us)
	}
	hour, minute, second := hms>>12%(1<<10), hms>>6%(1<<6), hms%(1<<6)
	if ft == mysql.MYSQL_TYPE_TIME {
		return fmt.Appendf(out, `"%s%02d:%02d:%02d.%06d"`, sign, hour, minute, second, us), nil
	}
	ymd := hms >> 17
	ym, day := ymd>>5, ymd%(1<<5)
	year, month := ym/13, ym%13
	hour = hms % (1 << 17) >> 12
	if sign != "" || year > 9999 {
		return nil, fmt.Errorf("packed date out of range (%s%d)", sign, v)
	}
	if ft == mysql.MYSQL_TYPE_DATE {
		return fmt.Appendf(out, `"%04d-%02d-%02d"`, year, month, day), nil
	}
	return fmt.Appendf(out, `"%04d-%02d-%02d %02d:%02d:%02d.%06d"`, year, month, day, hour, minute, second, us), nil
}
