package testenv

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// TypeCase is one column of the all-types table: its DDL type, a literal
// inserted in a session at time zone +05:30 and the canonical value the
// binlog and snapshot paths must decode it to.
type TypeCase struct {
	Name, Def, Lit string
	Want           cdc.Value
	Type           cdc.Type
}

// TIMESTAMP literals are read in the session's zone (+05:30) and must
// arrive as the same instant in UTC; DATETIME ignores the zone.
var ist = time.FixedZone("+05:30", 5*3600+1800)

// TypeCases are the columns of the all-types table: every type of the
// README's type mapping with a sample value, shared by the binlog test
// (TestTypesDecodeExactly), the snapshot test
// (TestSnapshotTypesMatchBinlog) and the walk of every type through every
// stage (pkg/bigquery, TestTypeWalk). Insert them with SET SESSION
// time_zone = '+05:30' and sql_mode = 'ALLOW_INVALID_DATES'.
var TypeCases = []TypeCase{
	{"tiny_min", "TINYINT", "-128", cdc.Int(-128), cdc.TypeInt32},
	{"tiny_umax", "TINYINT UNSIGNED", "255", cdc.Int(255), cdc.TypeInt32},
	{"small_min", "SMALLINT", "-32768", cdc.Int(-32768), cdc.TypeInt32},
	{"small_umax", "SMALLINT UNSIGNED", "65535", cdc.Int(65535), cdc.TypeInt32},
	{"medium_min", "MEDIUMINT", "-8388608", cdc.Int(-8388608), cdc.TypeInt32},
	{"medium_umax", "MEDIUMINT UNSIGNED", "16777215", cdc.Int(16777215), cdc.TypeInt32},
	{"int_min", "INT", "-2147483648", cdc.Int(math.MinInt32), cdc.TypeInt32},
	{"int_umax", "INT UNSIGNED", "4294967295", cdc.Int(4294967295), cdc.TypeInt64},
	{"big_min", "BIGINT", "-9223372036854775808", cdc.Int(math.MinInt64), cdc.TypeInt64},
	{"big_max", "BIGINT", "9223372036854775807", cdc.Int(math.MaxInt64), cdc.TypeInt64},
	{"big_umax", "BIGINT UNSIGNED", "18446744073709551615", cdc.Int(-1), cdc.TypeUint64},
	{"dec_65_30", "DECIMAL(65,30)", "'-12345678901234567890123456789012345.123456789012345678901234567890'", cdc.Str("-12345678901234567890123456789012345.123456789012345678901234567890"), cdc.TypeDecimal},
	{"dec_small_neg", "DECIMAL(10,4)", "-0.0001", cdc.Str("-0.0001"), cdc.TypeDecimal},
	{"dec_int", "DECIMAL(5,0)", "-99999", cdc.Str("-99999"), cdc.TypeDecimal},
	{"float_max", "FLOAT", "3.40282e38", cdc.Float(float64(float32(3.40282e38))), cdc.TypeFloat32},
	{"double_min", "DOUBLE", "-1.7976931348623157e308", cdc.Float(-math.MaxFloat64), cdc.TypeFloat64},
	{"double_tiny", "DOUBLE", "4.9e-324", cdc.Float(5e-324), cdc.TypeFloat64},
	{"bit1", "BIT(1)", "b'1'", cdc.Int(1), cdc.TypeBool},
	{"bit64", "BIT(64)", "b'1000000000000000000000000000000000000000000000000000000000000001'", cdc.Int(math.MinInt64 + 1), cdc.TypeBits},
	{"latin1_text", "VARCHAR(20) CHARACTER SET latin1", "_latin1 x'436166E9809F'", cdc.Str("Café€Ÿ"), cdc.TypeString},
	{"utf8mb3_text", "TEXT CHARACTER SET utf8mb3", "'ñandú – ü'", cdc.Str("ñandú – ü"), cdc.TypeString},
	{"utf8mb4_emoji", "VARCHAR(20) CHARACTER SET utf8mb4", "'hi 🐬🚀'", cdc.Str("hi 🐬🚀"), cdc.TypeString},
	{"char_pad", "CHAR(5)", "'ab'", cdc.Str("ab"), cdc.TypeString},
	{"binary_pad", "BINARY(4)", "x'0100'", cdc.Str("\x01\x00\x00\x00"), cdc.TypeBytes},
	{"varbin", "VARBINARY(10)", "x'00FF00'", cdc.Str("\x00\xff\x00"), cdc.TypeBytes},
	{"blob_col", "BLOB", "x'DEADBEEF'", cdc.Str("\xde\xad\xbe\xef"), cdc.TypeBytes},
	{"enum_col", "ENUM('small','it''s','large')", "'it''s'", cdc.Str("it's"), cdc.TypeString},
	{"set_col", "SET('a','b','c')", "'a,c'", cdc.Str("a,c"), cdc.TypeString},
	{"date_min", "DATE", "'1000-01-01'", cdc.Int(-354285), cdc.TypeDate},
	{"date_max", "DATE", "'9999-12-31'", cdc.Int(2932896), cdc.TypeDate},
	{"date_zero", "DATE", "'0000-00-00'", cdc.Null, cdc.TypeDate},
	{"dt0", "DATETIME", "'1969-07-20 20:17:40'", cdc.Int(-14182940 * 1_000_000), cdc.TypeDateTime},
	{"dt6", "DATETIME(6)", "'9999-12-31 23:59:59.999999'", cdc.Int(253402300799999999), cdc.TypeDateTime},
	{"dt3", "DATETIME(3)", "'2024-02-29 12:00:00.123'", cdc.Int(1709208000123000), cdc.TypeDateTime},
	{"dt_zero", "DATETIME", "'0000-00-00 00:00:00'", cdc.Null, cdc.TypeDateTime},
	{"ts0", "TIMESTAMP NULL", "'2038-01-19 03:14:07'", cdc.Int(time.Date(2038, 1, 19, 3, 14, 7, 0, ist).UnixMicro()), cdc.TypeTimestamp},
	{"ts6", "TIMESTAMP(6) NULL", "'2001-02-03 04:05:06.000007'", cdc.Int(time.Date(2001, 2, 3, 4, 5, 6, 7000, ist).UnixMicro()), cdc.TypeTimestamp},
	{"ts_zero", "TIMESTAMP NULL", "'0000-00-00 00:00:00'", cdc.Null, cdc.TypeTimestamp},
	{"time_neg", "TIME(6)", "'-838:59:59.000000'", cdc.Int(-(838*3600 + 59*60 + 59) * 1_000_000), cdc.TypeTime},
	{"time_big", "TIME(3)", "'100:00:00.5'", cdc.Int(360000500000), cdc.TypeTime},
	{"time_frac_neg", "TIME(2)", "'-00:00:00.01'", cdc.Int(-10000), cdc.TypeTime},
	{"year_col", "YEAR", "2155", cdc.Int(2155), cdc.TypeInt32},
	{"json_col", "JSON", `'{"a": [1, "ü", {"b": null}]}'`, cdc.Str(`{"a": [1, "ü", {"b": null}]}`), cdc.TypeJSON},
	{"uuid_v1", "UUID", "'123e4567-e89b-12d3-a456-426655440000'", cdc.Str("123e4567-e89b-12d3-a456-426655440000"), cdc.TypeString},
	{"uuid_v7_zeros", "UUID", "'0190a5b3-7c2d-7abc-8def-012345000000'", cdc.Str("0190a5b3-7c2d-7abc-8def-012345000000"), cdc.TypeString},
	{"inet6_mapped", "INET6", "'::ffff:1.2.3.4'", cdc.Str("::ffff:1.2.3.4"), cdc.TypeString},
	{"inet6_two_gaps", "INET6", "'2001:db8:0:0:1:0:0:0'", cdc.Str("2001:db8:0:0:1::"), cdc.TypeString},
	{"inet4_col", "INET4", "'192.168.0.255'", cdc.Str("192.168.0.255"), cdc.TypeString},
	{"binary16", "BINARY(16)", "x'00112233445566778899AABBCCDDEEFF'", cdc.Str("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"), cdc.TypeBytes},
	{"point_col", "POINT", "ST_GeomFromText('POINT(1 2)')", cdc.Str("\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x00@"), cdc.TypeGeometry},
	{"numeric_col", "NUMERIC(10,2)", "'-12.50'", cdc.Str("-12.50"), cdc.TypeDecimal},
	{"tinytext_col", "TINYTEXT", "'tiny'", cdc.Str("tiny"), cdc.TypeString},
	{"mediumtext_col", "MEDIUMTEXT CHARACTER SET utf8mb4", "'medium 🐬'", cdc.Str("medium 🐬"), cdc.TypeString},
	{"longtext_col", "LONGTEXT", "'long'", cdc.Str("long"), cdc.TypeString},
	{"tinyblob_col", "TINYBLOB", "x'00'", cdc.Str("\x00"), cdc.TypeBytes},
	{"mediumblob_col", "MEDIUMBLOB", "x'ABCD'", cdc.Str("\xab\xcd"), cdc.TypeBytes},
	{"longblob_col", "LONGBLOB", "x'EF'", cdc.Str("\xef"), cdc.TypeBytes},
	{"geometry_col", "GEOMETRY", "ST_GeomFromText('LINESTRING(0 0,1 1)')", geometry(wkb(2, 2, 0, 0, 1, 1)), cdc.TypeGeometry},
	{"linestring_col", "LINESTRING", "ST_GeomFromText('LINESTRING(1 2,3 4)')", geometry(wkb(2, 2, 1, 2, 3, 4)), cdc.TypeGeometry},
	{"polygon_col", "POLYGON", "ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')", geometry(wkb(3, 1, 4, 0, 0, 1, 0, 1, 1, 0, 0)), cdc.TypeGeometry},
	{"multipoint_col", "MULTIPOINT", "ST_GeomFromText('MULTIPOINT(0 0,1 1)')", geometry(wkb(4, 2), wkb(1, 0, 0), wkb(1, 1, 1)), cdc.TypeGeometry},
	{"collection_col", "GEOMETRYCOLLECTION", "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2))')", geometry(wkb(7, 1), wkb(1, 1, 2)), cdc.TypeGeometry},
}

// wkb is a little-endian WKB geometry of type typ: the leading counts of
// vs as uint32 (none for a point; the points of a line string, the parts
// of a multi-geometry or collection; rings, then points, for a polygon of
// one ring), the rest as float64 coordinates. The parts of a
// multi-geometry follow as WKB of their own.
func wkb(typ uint32, vs ...float64) []byte {
	b := binary.LittleEndian.AppendUint32([]byte{1}, typ)
	counts := map[uint32]int{1: 0, 2: 1, 3: 2, 4: 1, 7: 1}[typ]
	for i, v := range vs {
		if i < counts {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		} else {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	return b
}

// geometry is a geometry value as MySQL stores it: SRID 0, then the WKB
// parts.
func geometry(parts ...[]byte) cdc.Value {
	b := make([]byte, 4)
	for _, p := range parts {
		b = append(b, p...)
	}
	return cdc.Str(string(b))
}
