package binlog

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestJSONText covers what go-mysql's test documents (TestMySQL8Vectors)
// do not: the extremes of each scalar, MySQL's spelling of a DOUBLE and of
// times, string escaping, and the corrupt documents json.go refuses.
func TestJSONText(t *testing.T) {
	le64 := func(tp byte, v uint64) []byte { return binary.LittleEndian.AppendUint64([]byte{tp}, v) }
	opaque := func(ft byte, packed int64) []byte {
		return binary.LittleEndian.AppendUint64([]byte{jsonOpaque, ft, 8}, uint64(packed))
	}
	clock := func(h, m, s, us int64) int64 { return (h<<12|m<<6|s)<<24 | us }
	// nested returns n arrays, each holding the next, the last empty.
	nested := func(n int) []byte {
		body := []byte{0, 0, 4, 0}
		for range n - 1 {
			outer := []byte{1, 0, byte(7 + len(body)), byte((7 + len(body)) >> 8), jsonSmallArray, 7, 0}
			body = append(outer, body...)
		}
		return append([]byte{jsonSmallArray}, body...)
	}
	tests := []struct {
		name string
		doc  []byte
		want string // "" for an error
	}{
		{"double_whole", le64(jsonDouble, math.Float64bits(1)), "1.0"},
		{"double_negative_zero", le64(jsonDouble, math.Float64bits(math.Copysign(0, -1))), "-0.0"},
		{"double_fraction", le64(jsonDouble, math.Float64bits(0.1)), "0.1"},
		{"double_large", le64(jsonDouble, math.Float64bits(1e300)), "1e+300"},
		{"double_nan", le64(jsonDouble, math.Float64bits(math.NaN())), ""},
		{"uint64_max", le64(jsonUint64, math.MaxUint64), "18446744073709551615"},
		{"int64_min", le64(jsonInt64, 1<<63), "-9223372036854775808"},
		{"int16_min", []byte{jsonInt16, 0x00, 0x80}, "-32768"},
		{"uint32_max", []byte{jsonUint32, 0xff, 0xff, 0xff, 0xff}, "4294967295"},
		{"literal_false", []byte{jsonLiteral, 2}, "false"},
		{"literal_bad", []byte{jsonLiteral, 3}, ""},
		{"string_escapes", []byte{jsonString, 8, 'a', 1, '\n', '"', '\\', 0xc3, 0xa9, 0x7f}, "\"a\\u0001\\n\\\"\\\\é\x7f\""},
		{"string_long_size", append([]byte{jsonString, 0x80, 0x01}, make([]byte, 128)...), `"` + strings.Repeat(`\u0000`, 128) + `"`},
		{"string_not_utf8", []byte{jsonString, 2, 0xff, 0xfe}, ""},
		{"string_overrun", []byte{jsonString, 5, 'a'}, ""},
		{"time_negative", opaque(mysql.MYSQL_TYPE_TIME, -clock(1, 2, 3, 500000)), `"-01:02:03.500000"`},
		{"time_beyond_a_day", opaque(mysql.MYSQL_TYPE_TIME, clock(838, 59, 59, 0)), `"838:59:59.000000"`},
		{"time_zero", opaque(mysql.MYSQL_TYPE_TIME, 0), `"00:00:00.000000"`},
		{"datetime_zero", opaque(mysql.MYSQL_TYPE_DATETIME, 0), `"0000-00-00 00:00:00.000000"`},
		{"timestamp", opaque(mysql.MYSQL_TYPE_TIMESTAMP, ((2038*13+1)<<5|19)<<41|clock(3, 14, 7, 999999)), `"2038-01-19 03:14:07.999999"`},
		{"date_bad_fraction", opaque(mysql.MYSQL_TYPE_DATE, 1_000_000), ""},
		{"decimal_negative", []byte{jsonOpaque, mysql.MYSQL_TYPE_NEWDECIMAL, 4, 4, 2, 0x7e, 0xf3}, "-1.12"},
		{"decimal_extra_bytes", []byte{jsonOpaque, mysql.MYSQL_TYPE_NEWDECIMAL, 5, 4, 2, 0x81, 0x0c, 0}, ""},
		{"opaque_other", []byte{jsonOpaque, mysql.MYSQL_TYPE_VARCHAR, 2, 'h', 'i'}, `"base64:type15:aGk="`},
		{"large_object_inline_int32", []byte{jsonLargeObject, 1, 0, 0, 0, 20, 0, 0, 0, 19, 0, 0, 0, 1, 0,
			jsonInt32, 0xff, 0xff, 0xff, 0xff, 'k'}, `{"k":-1}`},
		{"value_outside_container", []byte{jsonSmallArray, 1, 0, 7, 0, jsonString, 9, 0}, ""},
		{"key_outside_container", []byte{jsonSmallObject, 1, 0, 12, 0, 11, 0, 2, 0, jsonLiteral, 0, 0, 'k'}, ""},
		{"size_beyond_document", []byte{jsonSmallArray, 0, 0, 9, 0}, ""},
		{"nested_100", nested(100), strings.Repeat("[", 100) + strings.Repeat("]", 100)},
		{"nested_101", nested(101), ""},
		{"unknown_type", []byte{0x0d, 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jsonText(tt.doc)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("jsonText = %q, want an error", got)
			case tt.want != "" && err != nil:
				t.Errorf("jsonText: %v, want %q", err, tt.want)
			case got != tt.want:
				t.Errorf("jsonText = %q, want %q", got, tt.want)
			}
		})
	}
}
