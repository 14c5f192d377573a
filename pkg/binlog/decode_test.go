package binlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// rawColumn is a column of the decoding comparison and the values its rows
// take in turn.
type rawColumn struct {
	name, def string
	values    []string
}

// rawColumns covers every type of the README's type mapping, in each binlog
// shape (length prefixes of 1 to 4 bytes, packed ENUM/SET of 1 and 2 or 8
// bytes, every fractional precision), with extremes, zero dates and NULLs.
func rawColumns() []rawColumn {
	labels := make([]string, 300) // an ENUM of more than 255 labels takes 2 bytes
	for i := range labels {
		labels[i] = fmt.Sprintf("'l%d'", i)
	}
	members := make([]string, 64) // a SET of 64 members takes 8 bytes
	for i := range members {
		members[i] = fmt.Sprintf("'m%d'", i)
	}
	cols := []rawColumn{
		{"tiny", "TINYINT", []string{"-128", "127", "0", "-1"}},
		{"tiny_u", "TINYINT UNSIGNED", []string{"255", "0", "128"}},
		{"small", "SMALLINT", []string{"-32768", "32767", "-1"}},
		{"small_u", "SMALLINT UNSIGNED", []string{"65535", "32768"}},
		{"medium", "MEDIUMINT", []string{"-8388608", "8388607", "-1"}},
		{"medium_u", "MEDIUMINT UNSIGNED", []string{"16777215", "8388608"}},
		{"int_s", "INT", []string{"-2147483648", "2147483647", "-1"}},
		{"int_u", "INT UNSIGNED", []string{"4294967295", "2147483648", "0"}},
		{"big", "BIGINT", []string{"-9223372036854775808", "9223372036854775807", "-1"}},
		{"big_u", "BIGINT UNSIGNED", []string{"18446744073709551615", "9223372036854775808", "1"}},
		{"dec_65_30", "DECIMAL(65,30)", []string{"'-12345678901234567890123456789012345.123456789012345678901234567890'", "0", "'0.000000000000000000000000000001'", "'99999999999999999999999999999999999.999999999999999999999999999999'"}},
		{"dec_10_4", "DECIMAL(10,4)", []string{"-0.0001", "123456.7891", "0", "-999999.9999"}},
		{"dec_5_0", "DECIMAL(5,0)", []string{"-99999", "0", "1"}},
		{"dec_30_30", "DECIMAL(30,30)", []string{"0.123", "-0.000000000000000000000000000001", "0"}},
		{"dec_18_9", "DECIMAL(18,9)", []string{"123456789.123456789", "-0.5", "1000000000"}},
		{"dec_1_0", "DECIMAL(1,0)", []string{"9", "-9", "0"}},
		{"dec_12_2", "DECIMAL(12,2) UNSIGNED", []string{"9999999999.99", "0.01"}},
		{"float_c", "FLOAT", []string{"3.40282e38", "-1.5", "0", "1.17549e-38"}},
		{"double_c", "DOUBLE", []string{"-1.7976931348623157e308", "4.9e-324", "0.1", "-0"}},
		{"bit1", "BIT(1)", []string{"b'1'", "b'0'"}},
		{"bit7", "BIT(7)", []string{"b'1010101'", "0"}},
		{"bit17", "BIT(17)", []string{"b'10000000000000001'", "b'1'"}},
		{"bit64", "BIT(64)", []string{"b'1000000000000000000000000000000000000000000000000000000000000001'", "0", "18446744073709551615"}},
		{"enum_s", "ENUM('small','it''s','large')", []string{"'it''s'", "'large'", "'nope'"}},
		{"enum_l", "ENUM(" + strings.Join(labels, ",") + ")", []string{"'l299'", "'l0'", "'l255'"}},
		{"set_s", "SET('a','b','c')", []string{"'a,c'", "''", "'b'", "'a,b,c'"}},
		{"set_l", "SET(" + strings.Join(members, ",") + ")", []string{"'m0,m63'", "'m5'", "''"}},
		{"char_s", "CHAR(5)", []string{"'ab'", "''", "'abcde'"}},
		{"char_l", "CHAR(100) CHARACTER SET utf8mb4", []string{"'" + strings.Repeat("x", 100) + "'", "'hi 🐬🚀'"}},
		{"varchar_s", "VARCHAR(20) CHARACTER SET utf8mb4", []string{"'hi 🐬🚀'", "''"}},
		{"varchar_l", "VARCHAR(300)", []string{"'" + strings.Repeat("ü", 300) + "'", "'a'"}},
		{"latin1_v", "VARCHAR(20) CHARACTER SET latin1", []string{"_latin1 x'436166E9809F'", "'plain'"}},
		{"latin1_c", "CHAR(3) CHARACTER SET latin1", []string{"_latin1 x'E9E9'", "''"}},
		{"text_3", "TEXT CHARACTER SET utf8mb3", []string{"'ñandú – ü'", "''"}},
		{"tinytext_c", "TINYTEXT", []string{"'tiny'"}},
		{"mediumtext_c", "MEDIUMTEXT", []string{"'" + strings.Repeat("m", 70000) + "'", "'m'"}},
		{"longtext_c", "LONGTEXT", []string{"'long'", "''"}},
		{"binary_c", "BINARY(4)", []string{"x'0100'", "x''", "x'01020304'"}},
		{"varbinary_c", "VARBINARY(300)", []string{"x'00FF00'", "x'" + strings.Repeat("AB", 300) + "'"}},
		{"tinyblob_c", "TINYBLOB", []string{"x'DEADBEEF'"}},
		{"blob_c", "BLOB", []string{"x'00'", "x''"}},
		{"mediumblob_c", "MEDIUMBLOB", []string{"x'" + strings.Repeat("CD", 70000) + "'"}},
		{"longblob_c", "LONGBLOB", []string{"x'EF'"}},
		{"json_c", "JSON", []string{`'{"a": [1, "ü", {"b": null}]}'`, "'[]'"}},
		{"geometry_c", "GEOMETRY", []string{"ST_GeomFromText('LINESTRING(0 0,1 1,2 3)')", "ST_GeomFromText('POINT(1 2)')"}},
		{"point_c", "POINT", []string{"ST_GeomFromText('POINT(-1.5 2e10)')"}},
		{"polygon_c", "POLYGON", []string{"ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')"}},
		{"multipoint_c", "MULTIPOINT", []string{"ST_GeomFromText('MULTIPOINT(0 0,1 1)')"}},
		{"date_c", "DATE", []string{"'1000-01-01'", "'9999-12-31'", "'0000-00-00'", "'2024-02-30'", "'2024-00-05'", "'1969-12-31'"}},
		{"year_c", "YEAR", []string{"2155", "1901", "0"}},
	}
	for dec := range 7 {
		cols = append(cols,
			rawColumn{fmt.Sprintf("time%d", dec), fmt.Sprintf("TIME(%d)", dec), []string{"'-838:59:59'", "'838:59:59.999999'", "'00:00:00'", "'-00:00:00.01'", "'100:00:00.5'", "'-01:02:03.456789'", "'-00:00:01.000001'"}},
			rawColumn{fmt.Sprintf("dt%d", dec), fmt.Sprintf("DATETIME(%d)", dec), []string{"'1969-07-20 20:17:40.25'", "'9999-12-31 23:59:59.999999'", "'0000-00-00 00:00:00'", "'2024-02-29 12:00:00.123'", "'1000-01-01 00:00:00.000001'", "'2024-00-00 10:00:00'", "'1970-01-01 00:00:00'"}},
			rawColumn{fmt.Sprintf("ts%d", dec), fmt.Sprintf("TIMESTAMP(%d) NULL", dec), []string{"'2038-01-19 03:14:07.999999'", "'1970-01-01 05:30:01'", "'0000-00-00 00:00:00'", "'2001-02-03 04:05:06.000007'"}},
		)
	}
	return cols
}

// loadRawCases writes, into database db, rows of every type of rawColumns
// in every kind of rows event: single and multi-row inserts, updates and
// deletes, and a table in MariaDB's old temporal formats. (Row images
// without every column — binlog_row_image MINIMAL or NOBLOB — stop the
// reader: TestPartialRowImagesStop.) It returns the number of row changes written.
func loadRawCases(t *testing.T, ctx context.Context, m *testenv.MariaDB, db string, cols []rawColumn, afterDDL func()) int {
	t.Helper()
	var defs, names []string
	nrows := 0
	for _, c := range cols {
		defs = append(defs, c.name+" "+c.def)
		names = append(names, c.name)
		nrows = max(nrows, len(c.values))
	}
	nrows++ // and one row of NULLs
	row := func(id, k int) string {
		lits := []string{fmt.Sprint(id)}
		for _, c := range cols {
			lits = append(lits, c.values[k%len(c.values)])
		}
		return "(" + strings.Join(lits, ", ") + ")"
	}
	if err := m.Exec(ctx, "", "CREATE DATABASE "+db,
		"CREATE TABLE "+db+".t (id INT PRIMARY KEY, "+strings.Join(defs, ", ")+")",
		// MariaDB's pre-5.6 temporal formats: TIME and DATETIME packed as
		// decimal digits, TIMESTAMP as 4 bytes.
		"SET GLOBAL mysql56_temporal_format = OFF",
		"CREATE TABLE "+db+".old (id INT PRIMARY KEY, d DATETIME, t TIME, ts TIMESTAMP NULL)",
		"SET GLOBAL mysql56_temporal_format = ON",
	); err != nil {
		t.Fatal(err)
	}
	afterDDL()
	all := "INSERT INTO t (id, " + strings.Join(names, ", ") + ") VALUES "
	var multi []string
	for k := 1; k < nrows; k++ {
		multi = append(multi, row(100+k, k))
	}
	stmts := []string{
		"SET SESSION time_zone = '+05:30'",
		"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
		all + row(1, 0),
		"INSERT INTO t (id) VALUES (2)",
		all + strings.Join(multi, ", "),
		// Full images before and after, the after image each column's
		// next value.
		"UPDATE t SET " + setNext(cols, 1) + " WHERE id = 1",
		"UPDATE t SET " + setNext(cols, 0) + " WHERE id = 2",
		"UPDATE t SET id = id + 1000 WHERE id > 100",
		"DELETE FROM t WHERE id IN (1101, 1102)",
		"INSERT INTO old VALUES (1, '2024-02-29 12:34:56', '-838:59:59', '2001-02-03 04:05:06'), (2, '0000-00-00 00:00:00', '00:00:00', '0000-00-00 00:00:00'), (3, '1969-07-20 20:17:40', '123:45:06', '1970-01-01 05:30:01'), (4, NULL, NULL, NULL), (5, '2024-00-10 01:00:00', '00:00:01', '2038-01-19 08:44:07')",
		"UPDATE old SET d = '1000-01-01 00:00:00', t = '-00:00:01' WHERE id = 1",
	}
	if err := m.Exec(ctx, db, stmts...); err != nil {
		t.Fatal(err)
	}
	return 1 + 1 + len(multi) + 2 + len(multi) + 2 + 5 + 1
}

// setNext is an UPDATE's SET list giving each column its value of row k.
func setNext(cols []rawColumn, k int) string {
	var sets []string
	for _, c := range cols {
		sets = append(sets, c.name+" = "+c.values[k%len(c.values)])
	}
	return strings.Join(sets, ", ")
}

// TestRawDecodingMatchesGoMySQL reads the same events twice, with decode.go
// and with go-mysql's decoding plus convert.go, and compares every value.
// Both run with full row metadata (schema from the TABLE_MAP) and without it
// (schema from information_schema, where go-mysql alone cannot know
// signedness), and with MariaDB's compressed binlog events.
func TestRawDecodingMatchesGoMySQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	minimal, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{RowMetadata: "MINIMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer minimal.Stop()
	for _, c := range []struct {
		name       string
		m          *testenv.MariaDB
		cols       []rawColumn
		compressed bool
	}{
		{"full_metadata", server, rawColumns(), false},
		// information_schema has no character set for binary strings,
		// which fromInformationSchema does not map yet.
		{"minimal_metadata", minimal, textColumns(rawColumns()), false},
		{"compressed", server, rawColumns(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := "raw_" + c.name
			cfg := sourceConfig(c.m, db+".*")
			var raw, goMySQL *Reader
			var start Start
			// Readers start after the DDL: information_schema then shows the
			// tables as the rows were written.
			n := loadRawCases(t, ctx, c.m, db, c.cols, func() {
				raw = openAtCurrent(t, ctx, cfg)
				start = raw.stream.started
				goMySQL = openReader(t, ctx, cfg, start, true)
				if c.compressed {
					if err := c.m.Exec(ctx, "", "SET GLOBAL log_bin_compress = ON", "SET GLOBAL log_bin_compress_min_len = 10"); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.m.Exec(context.Background(), "", "SET GLOBAL log_bin_compress = OFF") })
				}
			})
			got := readEvents(t, ctx, raw, n)
			want := readEvents(t, ctx, goMySQL, n)
			if len(got) != n || len(want) != n {
				t.Fatalf("read %d and %d row changes, wrote %d", len(got), len(want), n)
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.Table.ID() != w.Table.ID() || g.Op != w.Op || g.Position != w.Position {
					t.Fatalf("change %d: %s %v at %v, go-mysql %s %v at %v", i, g.Table.ID(), g.Op, g.Position, w.Table.ID(), w.Op, w.Position)
				}
				if diff := cmp.Diff(g.Table, w.Table); diff != "" {
					t.Fatalf("change %d: schema (-tablemap.go +go-mysql):\n%s", i, diff)
				}
				for _, img := range []struct {
					name      string
					got, want []cdc.Value
				}{{"before", g.Before, w.Before}, {"after", g.After, w.After}} {
					if len(img.got) != len(img.want) {
						t.Fatalf("change %d %s: %d values, go-mysql %d", i, img.name, len(img.got), len(img.want))
					}
					for j := range img.got {
						if diff := cmp.Diff(img.got[j], img.want[j]); diff != "" {
							t.Errorf("change %d (%s at %v) %s column %s (-decode.go +go-mysql):\n%s", i, g.Table.ID(), g.Position, img.name, g.Table.Columns[j].Name, diff)
						}
					}
				}
			}
			checkDeferred(t, ctx, c.m, start, db, c.compressed)
			checkOptionalMeta(t, ctx, c.m, start, db)
			// Without row metadata go-mysql decodes every integer as
			// signed; the column's signedness applies on both paths.
			first := got[0].After
			for j, want := range map[string]cdc.Value{"tiny_u": cdc.Int(255), "small_u": cdc.Int(65535), "medium_u": cdc.Int(16777215), "int_u": cdc.Int(4294967295), "big_u": cdc.Int(-1)} {
				if k := columnIndex(got[0].Table, j); first[k] != want {
					t.Errorf("%s = %+v, want %+v", j, first[k], want)
				}
			}
		})
	}
}

// textColumns drops the binary string columns.
func textColumns(cols []rawColumn) []rawColumn {
	var out []rawColumn
	for _, c := range cols {
		if !strings.Contains(c.def, "BINARY") && !strings.Contains(c.def, "BLOB") {
			out = append(out, c)
		}
	}
	return out
}

func columnIndex(t *cdc.Table, name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// openReader opens a reader at s; goMySQL leaves the decoding to go-mysql.
func openReader(t *testing.T, ctx context.Context, cfg *Config, s Start, goMySQL bool) *Reader {
	t.Helper()
	c := *cfg
	c.ServerID++
	r, err := Open(ctx, &c, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	r.catalog.goMySQL = goMySQL
	if err := r.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkDeferred checks, with a bare syncer, that decodeRowsLater left every
// rows event of db to decode.go (and, when asked, that some were compressed:
// MariaDB compresses an event only when that makes it smaller).
func checkDeferred(t *testing.T, ctx context.Context, m *testenv.MariaDB, s Start, db string, compressed bool) {
	t.Helper()
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 300, Flavor: mysql.MariaDBFlavor, Host: m.Host, Port: uint16(m.Port), User: m.User, Password: m.Password,
		Logger: slog.New(slog.DiscardHandler), RowsEventDecodeFunc: decodeRowsLater,
	})
	defer syncer.Close()
	stream, err := syncer.StartSync(mysql.Position{Name: s.File, Pos: uint32(s.Pos)})
	if err != nil {
		t.Fatal(err)
	}
	end, err := m.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	var rowsEvents, compressedEvents int
	for {
		ev, err := stream.GetEvent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := ev.Event.(*replication.RowsEvent); ok && string(e.Table.Schema) == db {
			rowsEvents++
			if _, ok := deferredImages(e); !ok {
				t.Errorf("rows event of %s.%s at %d decoded by go-mysql", e.Table.Schema, e.Table.Table, ev.Header.LogPos)
			}
			if compressedRows(ev.Header.EventType) {
				compressedEvents++
			}
		}
		if fmt.Sprint(ev.Header.LogPos) == *end[0][1] {
			break
		}
	}
	if rowsEvents == 0 || compressed && compressedEvents == 0 {
		t.Errorf("%d rows events, %d of them compressed", rowsEvents, compressedEvents)
	}
}

// checkOptionalMeta checks, with a bare syncer decoding everything itself,
// that withOptionalMeta decodes each TABLE_MAP's optional metadata of db
// exactly as go-mysql does.
func checkOptionalMeta(t *testing.T, ctx context.Context, m *testenv.MariaDB, s Start, db string) {
	t.Helper()
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 301, Flavor: mysql.MariaDBFlavor, Host: m.Host, Port: uint16(m.Port), User: m.User, Password: m.Password,
		Logger: slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	stream, err := syncer.StartSync(mysql.Position{Name: s.File, Pos: uint32(s.Pos)})
	if err != nil {
		t.Fatal(err)
	}
	end, err := m.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	checksum, maps := 0, 0
	for {
		ev, err := stream.GetEvent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.Event.(type) {
		case *replication.FormatDescriptionEvent:
			checksum = 0
			if e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32 {
				checksum = replication.BinlogChecksumLength
			}
		case *replication.TableMapEvent:
			if string(e.Schema) != db {
				break
			}
			maps++
			meta, err := optionalMeta(e, ev.RawData, checksum)
			if err != nil {
				t.Fatal(err)
			}
			got, err := withOptionalMeta(e, meta)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, e, cmpopts.IgnoreUnexported(replication.TableMapEvent{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("TABLE_MAP of %s.%s at %d (-tablemap.go +go-mysql):\n%s", e.Schema, e.Table, ev.Header.LogPos, diff)
			}
			if string(e.Table) == "t" && (e.SignednessBitmap == nil || e.DefaultCharset == nil && e.ColumnCharset == nil) {
				t.Errorf("TABLE_MAP of %s.%s at %d: no signedness or character sets to compare", e.Schema, e.Table, ev.Header.LogPos)
			}
		}
		if fmt.Sprint(ev.Header.LogPos) == *end[0][1] {
			break
		}
	}
	if maps == 0 {
		t.Error("no TABLE_MAP event read")
	}
}

// FuzzRawValue feeds arbitrary bytes to every column shape of decode.go: a
// corrupt event must give an error, never a panic or a read past its end.
func FuzzRawValue(f *testing.F) {
	type shape struct {
		tp       byte
		meta     uint16
		unsigned bool
		charset  string
	}
	shapes := []shape{
		{mysql.MYSQL_TYPE_TINY, 0, false, ""}, {mysql.MYSQL_TYPE_SHORT, 0, true, ""}, {mysql.MYSQL_TYPE_INT24, 0, false, ""},
		{mysql.MYSQL_TYPE_LONG, 0, true, ""}, {mysql.MYSQL_TYPE_LONGLONG, 0, false, ""}, {mysql.MYSQL_TYPE_YEAR, 0, false, ""},
		{mysql.MYSQL_TYPE_NEWDECIMAL, 65<<8 | 30, false, ""}, {mysql.MYSQL_TYPE_NEWDECIMAL, 10<<8 | 4, false, ""},
		{mysql.MYSQL_TYPE_NEWDECIMAL, 1 << 8, false, ""}, {mysql.MYSQL_TYPE_NEWDECIMAL, 30<<8 | 30, false, ""},
		{mysql.MYSQL_TYPE_FLOAT, 4, false, ""}, {mysql.MYSQL_TYPE_DOUBLE, 8, false, ""},
		{mysql.MYSQL_TYPE_BIT, 1, false, ""}, {mysql.MYSQL_TYPE_BIT, 8<<8 | 0, false, ""}, {mysql.MYSQL_TYPE_BIT, 2<<8 | 1, false, ""},
		{mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_ENUM)<<8 | 2, false, "utf8mb4"},
		{mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_SET)<<8 | 8, false, "utf8mb4"},
		{mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_STRING)<<8 | 20, false, "latin1"},
		{mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_STRING)<<8 | 4, false, "binary"},
		{mysql.MYSQL_TYPE_STRING, 0xee<<8 | 0x90, false, "utf8mb4"}, // CHAR(100) utf8mb4: 400 bytes
		{mysql.MYSQL_TYPE_VARCHAR, 300, false, "utf8mb4"}, {mysql.MYSQL_TYPE_VARCHAR, 20, false, "cp1251"},
		{mysql.MYSQL_TYPE_BLOB, 1, false, "binary"}, {mysql.MYSQL_TYPE_BLOB, 2, false, "utf8mb3"},
		{mysql.MYSQL_TYPE_BLOB, 3, false, "binary"}, {mysql.MYSQL_TYPE_BLOB, 4, false, "utf8mb4"},
		{mysql.MYSQL_TYPE_GEOMETRY, 4, false, "binary"},
		{mysql.MYSQL_TYPE_JSON, 1, false, ""}, {mysql.MYSQL_TYPE_JSON, 4, false, ""},
		{mysql.MYSQL_TYPE_DATE, 0, false, ""}, {mysql.MYSQL_TYPE_TIME, 0, false, ""}, {mysql.MYSQL_TYPE_DATETIME, 0, false, ""},
		{mysql.MYSQL_TYPE_TIMESTAMP, 0, false, ""},
	}
	for dec := range uint16(8) {
		shapes = append(shapes, shape{mysql.MYSQL_TYPE_TIME2, dec, false, ""},
			shape{mysql.MYSQL_TYPE_DATETIME2, dec, false, ""}, shape{mysql.MYSQL_TYPE_TIMESTAMP2, dec, false, ""})
	}
	info := &tableInfo{table: &cdc.Table{Database: "fuzz", Name: "t"}}
	labels := make([]string, 64)
	for i := range labels {
		labels[i] = fmt.Sprint(i)
	}
	for i, s := range shapes {
		c, ci, err := column(fmt.Sprint("c", i), s.tp, s.meta, s.unsigned, s.charset, true, labels)
		if err != nil {
			f.Fatal(err)
		}
		info.table.Columns = append(info.table.Columns, c)
		info.cols = append(info.cols, ci)
	}
	cv, err := newConverter(info)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{3, 'a', 'b', 'c', 0xe9, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'x'})
	f.Add([]byte{12, 0, 1, 0, 11, 0, 11, 0, 1, 0, 5, 0xd2, 4, 'a'}) // JSON {"a":1234}, 1-byte length
	f.Fuzz(func(t *testing.T, data []byte) {
		var arena textArena
		for i := range info.cols {
			_, n, err := cv.rawValue(info, i, data, &arena)
			if (err == nil || err == errUnrepresentable) && (n < 0 || n > len(data)) {
				t.Fatalf("column %d (%v): took %d of %d bytes", i, info.table.Columns[i].Type, n, len(data))
			}
		}
	})
}

// FuzzOptionalMeta feeds arbitrary TABLE_MAP optional metadata to
// withOptionalMeta: an error, never a panic.
func FuzzOptionalMeta(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{replication.TABLE_MAP_OPT_META_SIGNEDNESS, 1, 0x80, replication.TABLE_MAP_OPT_META_COLUMN_NAME, 3, 2, 'i', 'd'})
	f.Add([]byte{replication.TABLE_MAP_OPT_META_ENUM_STR_VALUE, 6, 2, 1, 'a', 2, 'b', 'c'})
	f.Add([]byte{replication.TABLE_MAP_OPT_META_PRIMARY_KEY_WITH_PREFIX, 0xfc, 2, 0, 0, 0})
	f.Add([]byte{replication.TABLE_MAP_OPT_META_DEFAULT_CHARSET, 3, 45, 1, 63})
	f.Fuzz(func(t *testing.T, meta []byte) {
		withOptionalMeta(&replication.TableMapEvent{ColumnCount: 1}, meta)
	})
}
