package binlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestSnapshotTypesMatchBinlog reads the rows of the all-types table both
// ways, from the binlog and with readChunk, and requires the same schema
// and the same values: a snapshot row and a streamed row of a table must be
// indistinguishable downstream.
func TestSnapshotTypesMatchBinlog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE snap_types"); err != nil {
		t.Fatal(err)
	}
	var defs, cols, lits []string
	for _, c := range testenv.TypeCases {
		defs = append(defs, c.Name+" "+c.Def)
		cols = append(cols, c.Name)
		lits = append(lits, c.Lit)
	}
	if err := server.Exec(ctx, "snap_types", "CREATE TABLE t (id INT PRIMARY KEY, "+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "snap_types.*")
	r := openAtCurrent(t, ctx, cfg)
	r.catalog.kept = map[uint64]*replication.TableMapEvent{}
	if err := server.Exec(ctx, "snap_types",
		"SET SESSION time_zone = '+05:30'",
		"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
		"INSERT INTO t (id, "+strings.Join(cols, ", ")+") VALUES (1, "+strings.Join(lits, ", ")+")",
		"INSERT INTO t (id) VALUES (2)",
	); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, ctx, r, 2)
	var streamed *tableState // the reader's schema, built from the real (FULL) TABLE_MAP event
	var event *replication.TableMapEvent
	for id, st := range r.catalog.tables {
		if st.info != nil && st.info.table.ID() == "snap_types.t" {
			streamed, event = st, r.catalog.kept[id]
		}
	}
	if streamed == nil {
		t.Fatal("the reader holds no schema of snap_types.t")
	}

	conn := newSnapshotConn(t, ctx, cfg)
	s, err := readSchema(conn, "snap_types", "t")
	if err != nil {
		t.Fatal(err)
	}
	full, err := snapshotInfo(s, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("schema like a FULL table map", func(t *testing.T) {
		if diff := cmp.Diff(full.table, streamed.info.table); diff != "" {
			t.Errorf("table (-snapshot +binlog):\n%s", diff)
		}
		if diff := cmp.Diff(full.cols, streamed.info.cols, cmp.AllowUnexported(colInfo{})); diff != "" {
			t.Errorf("columns (-snapshot +binlog):\n%s", diff)
		}
	})
	t.Run("schema like information_schema on a MINIMAL table map", func(t *testing.T) {
		minimal, err := snapshotInfo(s, false)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fromSchema(s, event)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(minimal.table, want.table); diff != "" {
			t.Errorf("table (-snapshot +fromSchema):\n%s", diff)
		}
		if diff := cmp.Diff(minimal.cols, want.cols, cmp.AllowUnexported(colInfo{})); diff != "" {
			t.Errorf("columns (-snapshot +fromSchema):\n%s", diff)
		}
	})

	conv, err := newConverter(full)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := readChunk(ctx, conn, full, conv, nil, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("read %d rows, want 2", len(rows))
	}
	for i, c := range testenv.TypeCases {
		t.Run(c.Name, func(t *testing.T) {
			if diff := cmp.Diff(rows[0][i+1], evs[0].After[i+1]); diff != "" {
				t.Errorf("value (-snapshot +binlog):\n%s", diff)
			}
			if diff := cmp.Diff(rows[0][i+1], c.Want); diff != "" {
				t.Errorf("value (-snapshot +want):\n%s", diff)
			}
			if diff := cmp.Diff(rows[1][i+1], evs[1].After[i+1]); diff != "" {
				t.Errorf("NULL row (-snapshot +binlog):\n%s", diff)
			}
		})
	}
}

func newSnapshotConn(t *testing.T, ctx context.Context, cfg *Config) *client.Conn {
	t.Helper()
	d, err := newDialer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	conn, err := snapshotConn(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// snapTable creates table name in database snap_chunks with the key
// columns defs (and a tag column n numbering the rows), fills it with rows
// (the key columns' SQL literals), and returns its snapshot schema.
func snapTable(t *testing.T, ctx context.Context, conn *client.Conn, name, defs, pk string, rows []string) *tableInfo {
	t.Helper()
	keyClause := ""
	if pk != "" {
		keyClause = ", PRIMARY KEY (" + pk + ")"
	}
	stmts := []string{"CREATE TABLE " + name + " (" + defs + ", n INT NOT NULL" + keyClause + ")"}
	for i, r := range rows {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s VALUES (%s, %d)", name, r, i))
	}
	if err := server.Exec(ctx, "snap_chunks", stmts...); err != nil {
		t.Fatal(err)
	}
	s, err := readSchema(conn, "snap_chunks", name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := snapshotInfo(s, true)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// readAll reads a table chunk after chunk until an empty chunk.
func readAll(t *testing.T, ctx context.Context, conn *client.Conn, info *tableInfo, limit int, filter string) [][]cdc.Value {
	t.Helper()
	conv, err := newConverter(info)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]cdc.Value
	var after []cdc.Value
	for range 1000 {
		rows, err := readChunk(ctx, conn, info, conv, after, limit, filter)
		if err != nil {
			t.Fatalf("after %d rows: %v", len(all), err)
		}
		if len(rows) > limit {
			t.Fatalf("chunk of %d rows, limit %d", len(rows), limit)
		}
		if len(rows) == 0 {
			return all
		}
		all = append(all, rows...)
		last := rows[len(rows)-1]
		after = nil
		for _, k := range info.table.PrimaryKey {
			after = append(after, last[k])
		}
	}
	t.Fatal("no end after 1000 chunks")
	return nil
}

// tags returns column n of rows.
func tags(rows [][]cdc.Value) []int64 {
	out := []int64{}
	for _, r := range rows {
		out = append(out, r[len(r)-1].Int)
	}
	return out
}

// wantTags returns column n of the table in primary-key order, read with a
// plain SELECT over the text protocol.
func wantTags(t *testing.T, ctx context.Context, name, pk, where string) []int64 {
	t.Helper()
	if where != "" {
		where = " WHERE " + where
	}
	res, err := server.Query(ctx, "snap_chunks", "SELECT n FROM "+name+where+" ORDER BY "+pk)
	if err != nil {
		t.Fatal(err)
	}
	out := []int64{}
	for _, r := range res {
		n, err := strconv.ParseInt(*r[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestSnapshotChunksInKeyOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE snap_chunks"); err != nil {
		t.Fatal(err)
	}
	conn := newSnapshotConn(t, ctx, sourceConfig(server))
	tests := []struct {
		name, defs, pk string
		rows           []string
	}{
		{"utf8mb4_key", "k VARCHAR(20) CHARACTER SET utf8mb4", "k", []string{
			"'apple'", "'Äpfel'", "'éclair'", "'zebra'", "'🐬 dolphin'", "''", "'b b'", "'B c'", "'ñu'", "'Ωmega'", "'日本'", "'x'''"}},
		{"latin1_key", "k VARCHAR(20) CHARACTER SET latin1", "k", []string{
			"'Ærø'", "'Zoë'", "'über'", "'abc'", "'€uro'", "'Ÿes'", "'ça'", "'Œuvre'"}},
		{"uuid_key", "k BINARY(16)", "k", []string{
			"x'00000000000000000000000000000000'", "x'ffffffffffffffffffffffffffffffff'",
			"x'80000000000000000000000000000000'", "x'c3280000000000000000000000000001'",
			"x'0123456789abcdef0123456789abcdef'", "x'fedcba9876543210fedcba9876543210'",
			"x'00000000000000000000000000000100'", "x'e2828200000000000000000000000000'"}},
		{"datetime_key", "k DATETIME(6)", "k", []string{
			"'1000-01-01 00:00:00'", "'1969-12-31 23:59:59.999999'", "'1970-01-01 00:00:00'",
			"'2024-02-29 12:00:00.000001'", "'2024-02-29 12:00:00.000002'", "'9999-12-31 23:59:59.999999'"}},
		{"int_varchar_key", "a INT, b VARCHAR(10)", "a, b", []string{
			"1, 'x'", "1, 'y'", "1, ''", "2, 'a'", "-1, 'z'", "2, 'b'", "3, 'é'", "-1, 'a'", "2, 'é'"}},
		{"ubigint_key", "k BIGINT UNSIGNED", "k", []string{
			"0", "1", "9223372036854775807", "9223372036854775808", "18446744073709551614", "18446744073709551615"}},
		{"negative_int_key", "k INT", "k", []string{"-2147483648", "-1", "0", "1", "2147483647", "-5"}},
		{"double_key", "k DOUBLE", "k", []string{"0.1", "0.30000000000000004", "0.3", "-5e-324", "1e308", "0"}},
		{"temporal_decimal_key", "d DATE, tm TIME(6), dc DECIMAL(30,10), ts TIMESTAMP(3)", "d, tm, dc, ts", []string{
			"'2024-01-01', '-838:59:59', '12345678901234567890.0000000001', '2024-01-01 00:00:00.001'",
			"'2024-01-01', '-838:59:59', '12345678901234567890.0000000001', '2024-01-01 00:00:00.002'",
			"'2024-01-01', '-838:59:59', '12345678901234567890.0000000002', '2024-01-01 00:00:00.001'",
			"'2024-01-01', '-838:59:59', '-0.0000000001', '2024-01-01 00:00:00.001'",
			"'2024-01-01', '00:00:00', '1', '2024-01-01 00:00:00.001'",
			"'2024-01-01', '100:00:00.5', '1', '2024-01-01 00:00:00.001'",
			"'1999-12-31', '838:59:59', '1', '2038-01-19 03:14:07.999'"}},
		{"empty", "k INT", "k", nil},
		{"one_row", "k INT", "k", []string{"42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := snapTable(t, ctx, conn, tt.name, tt.defs, tt.pk, tt.rows)
			want := wantTags(t, ctx, tt.name, tt.pk, "")
			if len(want) != len(tt.rows) {
				t.Fatalf("table has %d rows, inserted %d", len(want), len(tt.rows))
			}
			whole := readAll(t, ctx, conn, info, 1000, "")
			if diff := cmp.Diff(tags(whole), want); diff != "" {
				t.Fatalf("one chunk, rows (-got +want SELECT ORDER BY):\n%s", diff)
			}
			keys := map[string]bool{}
			for _, r := range whole {
				keys[keyOf(info.table, info.key, r)] = true
			}
			if len(keys) != len(whole) {
				t.Errorf("keyOf gives %d identities to %d rows", len(keys), len(whole))
			}
			for _, limit := range []int{1, 2, 3} {
				got := readAll(t, ctx, conn, info, limit, "")
				if diff := cmp.Diff(got, whole); diff != "" {
					t.Errorf("chunks of %d (-got +want):\n%s", limit, diff)
				}
			}
			// Ranges (after, through], as verify reads them again (TableScan.Range).
			conv, err := newConverter(info)
			if err != nil {
				t.Fatal(err)
			}
			keyVals := func(row []cdc.Value) []cdc.Value {
				var k []cdc.Value
				for _, i := range info.table.PrimaryKey {
					k = append(k, row[i])
				}
				return k
			}
			for i := 0; i <= len(whole); i++ {
				for j := i - 1; j < len(whole); j++ {
					var after, through []cdc.Value
					if i > 0 {
						after = keyVals(whole[i-1])
					}
					want := whole[i:]
					if j >= i {
						through, want = keyVals(whole[j]), whole[i:j+1]
					}
					got, _, err := readBounded(ctx, conn, info, conv, after, 0, "", chunkBound{through: through})
					if err != nil {
						t.Fatalf("range %d..%d: %v", i, j, err)
					}
					if diff := cmp.Diff(got, want, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("range after row %d through row %d (-got +want):\n%s", i-1, j, diff)
					}
				}
			}
			filtered := readAll(t, ctx, conn, info, 2, "n % 2 = 0")
			if diff := cmp.Diff(tags(filtered), wantTags(t, ctx, tt.name, tt.pk, "n % 2 = 0")); diff != "" {
				t.Errorf("filtered chunks of 2 (-got +want):\n%s", diff)
			}
		})
	}
}

func TestSnapshotWithoutKeyReadsWhole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS snap_chunks"); err != nil {
		t.Fatal(err)
	}
	conn := newSnapshotConn(t, ctx, sourceConfig(server))
	info := snapTable(t, ctx, conn, "nokey", "a INT, b VARCHAR(5)", "", []string{"1, 'x'", "1, 'x'", "NULL, NULL", "3, 'é'", "2, 'y'"})
	conv, err := newConverter(info)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := readChunk(ctx, conn, info, conv, nil, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][2].Int < rows[j][2].Int })
	want := [][]cdc.Value{
		{cdc.Int(1), cdc.Str("x"), cdc.Int(0)}, {cdc.Int(1), cdc.Str("x"), cdc.Int(1)}, {cdc.Null, cdc.Null, cdc.Int(2)},
		{cdc.Int(3), cdc.Str("é"), cdc.Int(3)}, {cdc.Int(2), cdc.Str("y"), cdc.Int(4)},
	}
	if diff := cmp.Diff(rows, want); diff != "" {
		t.Errorf("rows, limit ignored (-got +want):\n%s", diff)
	}
	filtered, err := readChunk(ctx, conn, info, conv, nil, 0, "a = 1")
	if err != nil {
		t.Fatal(err)
	}
	if len(filtered) != 2 {
		t.Errorf("filter a = 1: %d rows, want 2", len(filtered))
	}
	if _, err := readChunk(ctx, conn, info, conv, []cdc.Value{cdc.Int(1)}, 2, ""); err == nil {
		t.Error("reading a keyless table after a key: no error")
	}
}

func TestSnapshotRefusesInexactKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS snap_chunks"); err != nil {
		t.Fatal(err)
	}
	conn := newSnapshotConn(t, ctx, sourceConfig(server))
	for _, tt := range []struct{ name, defs string }{
		{"float_key", "k FLOAT"},
		{"enum_key", "k ENUM('a','b')"},
		{"set_key", "k SET('a','b')"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := snapTable(t, ctx, conn, tt.name, tt.defs, "k", nil)
			conv, err := newConverter(info)
			if err != nil {
				t.Fatal(err)
			}
			_, err = readChunk(ctx, conn, info, conv, nil, 10, "")
			if err == nil || !strings.Contains(err.Error(), "another unique key") {
				t.Errorf("got %v, want an error asking for another unique key", err)
			}
		})
	}
	t.Run("zero date key value", func(t *testing.T) {
		info := snapTable(t, ctx, conn, "date_key", "k DATE", "k", nil)
		conv, err := newConverter(info)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readChunk(ctx, conn, info, conv, []cdc.Value{cdc.Null}, 10, "")
		if err == nil || !strings.Contains(err.Error(), "NULL") {
			t.Errorf("got %v, want an error about the NULL key value", err)
		}
	})
}

// TestSnapshotChunkUsesPrimaryKeyRange checks that a composite key's
// continuation is served as a range of the primary key, in key order
// (no filesort), so each chunk costs its own rows, not the table's.
func TestSnapshotChunkUsesPrimaryKeyRange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS snap_chunks"); err != nil {
		t.Fatal(err)
	}
	conn := newSnapshotConn(t, ctx, sourceConfig(server))
	var rows []string
	for i := range 2000 {
		rows = append(rows, fmt.Sprintf("%d, 'v%d', %d", i%50, i, i%7))
	}
	info := snapTable(t, ctx, conn, "ranged", "a INT, b VARCHAR(10), c INT", "a, b, c", rows)
	q, args, err := chunkQuery(info, []cdc.Value{cdc.Int(10), cdc.Str("v100"), cdc.Int(3)}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := conn.Execute("EXPLAIN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	plan := map[string]string{}
	for j := range r.ColumnNumber() {
		plan[string(r.Fields[j].Name)] = text(r, 0, j)
	}
	if plan["type"] != "range" || plan["key"] != "PRIMARY" || strings.Contains(plan["Extra"], "filesort") {
		t.Errorf("plan of %s: %v, want a range of PRIMARY without filesort", q, plan)
	}
}

func TestSnapshotChunkCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE IF NOT EXISTS snap_chunks"); err != nil {
		t.Fatal(err)
	}
	conn := newSnapshotConn(t, ctx, sourceConfig(server))
	info := snapTable(t, ctx, conn, "cancelled", "k INT", "k", []string{"1", "2"})
	conv, err := newConverter(info)
	if err != nil {
		t.Fatal(err)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := readChunk(done, conn, info, conv, nil, 10, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestTemporalBinaryMatchesText: a binary-protocol temporal value converts
// to what converter.value makes of go-mysql's text rendering of the same
// bytes (the snapshot's former path), zero and partial dates included.
func TestTemporalBinaryMatchesText(t *testing.T) {
	date := func(y uint16, m, d byte, rest ...byte) []byte {
		return append([]byte{byte(y), byte(y >> 8), m, d}, rest...)
	}
	micros := func(us uint32) []byte { return []byte{byte(us), byte(us >> 8), byte(us >> 16), byte(us >> 24)} }
	clock := func(neg byte, days uint32, h, m, s byte, rest ...byte) []byte {
		return append(append([]byte{neg}, micros(days)...), append([]byte{h, m, s}, rest...)...)
	}
	tests := []struct {
		name string
		typ  cdc.Type
		b    []byte
	}{
		{"date", cdc.TypeDate, date(2024, 2, 29)},
		{"date_min", cdc.TypeDate, date(1000, 1, 1)},
		{"date_max", cdc.TypeDate, date(9999, 12, 31)},
		{"date_zero", cdc.TypeDate, nil},
		{"date_zero_month", cdc.TypeDate, date(2024, 0, 15)},
		{"date_zero_day", cdc.TypeDate, date(2024, 5, 0)},
		{"date_zero_year", cdc.TypeDate, date(0, 5, 15)},
		{"datetime_date_only", cdc.TypeDateTime, date(1969, 7, 20)},
		{"datetime_seconds", cdc.TypeDateTime, date(1969, 7, 20, 20, 17, 40)},
		{"datetime_micros", cdc.TypeDateTime, append(date(9999, 12, 31, 23, 59, 59), micros(999999)...)},
		{"datetime_zero", cdc.TypeDateTime, nil},
		{"datetime_partial", cdc.TypeDateTime, date(2024, 0, 0, 12, 0, 0)},
		{"timestamp_micros", cdc.TypeTimestamp, append(date(2038, 1, 19, 3, 14, 7), micros(7)...)},
		{"time_zero", cdc.TypeTime, nil},
		{"time", cdc.TypeTime, clock(0, 0, 12, 34, 56)},
		{"time_days", cdc.TypeTime, clock(0, 4, 4, 0, 0, micros(500000)...)},
		{"time_negative", cdc.TypeTime, clock(1, 34, 22, 59, 59)},
		{"time_negative_fraction", cdc.TypeTime, clock(1, 0, 0, 0, 0, micros(10000)...)},
	}
	info := &tableInfo{table: &cdc.Table{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var text []byte
			var err error
			switch tt.typ {
			case cdc.TypeDate:
				text, err = mysql.FormatBinaryDate(len(tt.b), tt.b)
			case cdc.TypeTime:
				text, err = mysql.FormatBinaryTime(len(tt.b), tt.b)
			default:
				text, err = mysql.FormatBinaryDateTime(len(tt.b), tt.b)
			}
			if err != nil {
				t.Fatal(err)
			}
			info.table.Columns = []cdc.Column{{Name: "c", Type: tt.typ}}
			info.cols = []colInfo{{}}
			want, wantErr := (&converter{}).value(info, 0, string(text))
			us, err := temporalBinary(tt.typ, tt.b)
			if (err == nil) != (wantErr == nil) || wantErr != nil && !errors.Is(err, wantErr) {
				t.Fatalf("%q: got error %v, want %v", text, err, wantErr)
			}
			if err == nil && cdc.Int(us) != want {
				t.Errorf("%q: got %v, want %v", text, cdc.Int(us), want)
			}
		})
	}
	if _, err := temporalBinary(cdc.TypeDateTime, []byte{1, 2, 3}); err == nil || errors.Is(err, errUnrepresentable) {
		t.Errorf("3-byte DATETIME: got %v, want a length error", err)
	}
}
