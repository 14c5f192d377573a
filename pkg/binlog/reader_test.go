package binlog

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

var server *testenv.MariaDB

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	server, err = testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	cancel()
	if err != nil {
		slog.Error("start MariaDB", "err", err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

func sourceConfig(m *testenv.MariaDB, include ...string) *Config {
	cfg := &Config{Host: m.Host, Port: m.Port, User: m.User, Password: m.Password, Include: include, ServerID: 100}
	cfg.Defaults()
	return cfg
}

// openAtCurrent opens a reader positioned at the server's current position.
func openAtCurrent(t *testing.T, ctx context.Context, cfg *Config) *Reader {
	t.Helper()
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.Start(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// readEvents reads transactions until n events of captured tables arrived.
func readEvents(t *testing.T, ctx context.Context, r *Reader, n int) []cdc.Event {
	t.Helper()
	var out []cdc.Event
	for len(out) < n {
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, tx.Events...)
	}
	return out
}

// typeCase is one column of the all-types table: its DDL type, a literal
// inserted in a session at time zone +05:30 and the canonical value the
// binlog path must decode it to.
type typeCase struct {
	name, def, lit string
	want           cdc.Value
	typ            cdc.Type
}

// TIMESTAMP literals are read in the session's zone (+05:30) and must
// arrive as the same instant in UTC; DATETIME ignores the zone.
var ist = time.FixedZone("+05:30", 5*3600+1800)

// typeCases are the columns of the all-types table, shared by the binlog
// test (TestTypesDecodeExactly) and the snapshot test
// (TestSnapshotTypesMatchBinlog).
var typeCases = []typeCase{
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
}

func TestTypesDecodeExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE types_db"); err != nil {
		t.Fatal(err)
	}
	// One column per case, a row with the value and the NULL row. The
	// reader is started after the DDL so only the inserts are read.
	cases := typeCases
	var defs, cols, lits []string
	for _, c := range cases {
		defs = append(defs, c.name+" "+c.def)
		cols = append(cols, c.name)
		lits = append(lits, c.lit)
	}
	if err := server.Exec(ctx, "types_db", "CREATE TABLE t (id INT PRIMARY KEY, "+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	r := openAtCurrent(t, ctx, sourceConfig(server, "types_db.*"))
	if err := server.Exec(ctx, "types_db",
		"SET SESSION time_zone = '+05:30'",
		"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
		"INSERT INTO t (id, "+strings.Join(cols, ", ")+") VALUES (1, "+strings.Join(lits, ", ")+")",
		"INSERT INTO t (id) VALUES (2)",
	); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, ctx, r, 2)
	tbl := evs[0].Table
	for i, c := range cases {
		col := tbl.Columns[i+1]
		t.Run(c.name, func(t *testing.T) {
			if col.Name != c.name || col.Type != c.typ {
				t.Fatalf("column %d = %s %s, want %s %s", i+1, col.Name, col.Type, c.name, c.typ)
			}
			if diff := cmp.Diff(evs[0].After[i+1], c.want); diff != "" {
				t.Errorf("value (-got +want):\n%s", diff)
			}
			if !evs[1].After[i+1].Null {
				t.Errorf("NULL row: got %+v", evs[1].After[i+1])
			}
		})
	}
}
