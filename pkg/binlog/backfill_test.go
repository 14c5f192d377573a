package binlog

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/cdc"
)

func str(s string) *string { return &s }

// backfillTable has a column of each type a backfill loads from text.
var backfillTable = &cdc.Table{Database: "shop", Name: "t", PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Type: cdc.TypeInt64},
	{Name: "small", Type: cdc.TypeInt32, Nullable: true},
	{Name: "big", Type: cdc.TypeUint64, Nullable: true},
	{Name: "price", Type: cdc.TypeDecimal, Precision: 6, Scale: 2, Nullable: true},
	{Name: "ratio", Type: cdc.TypeFloat32, Nullable: true},
	{Name: "flag", Type: cdc.TypeBool, Nullable: true},
	{Name: "name", Type: cdc.TypeString, Nullable: false},
	{Name: "kind", Type: cdc.TypeString, SQLType: "enum('a','b')", Values: []string{"a", "b"}, Nullable: true},
	{Name: "tags", Type: cdc.TypeString, SQLType: "set('x','y')", Values: []string{"x", "y"}, Nullable: true},
	{Name: "raw", Type: cdc.TypeBytes, Nullable: true},
	{Name: "doc", Type: cdc.TypeJSON, Nullable: true},
	{Name: "day", Type: cdc.TypeDate, Nullable: true},
	{Name: "at", Type: cdc.TypeDateTime, Scale: 6, Nullable: true},
	{Name: "ts", Type: cdc.TypeTimestamp, Scale: 3, Nullable: true},
	{Name: "place", Type: cdc.TypeGeometry, Nullable: true},
}}

func TestBackfillRowParsesEachType(t *testing.T) {
	cols := []string{"ID", "small", "big", "price", "ratio", "flag", "name", "kind", "tags", "raw", "doc", "day", "at", "ts", "place"}
	vals := []*string{str("7"), str("-3"), str("18446744073709551615"), str("-1234.5"), str("1.5"), str("true"), str("Björn"), str("b"), str("x,y"),
		str("0x00ff"), str(`{"a":1}`), str("1969-12-31"), str("2024-02-29 23:59:59.000001"), str("2024-01-01T00:00:00.5+01:00"), nil}
	got, err := BackfillRow(backfillTable, cols, vals)
	if err != nil {
		t.Fatal(err)
	}
	want := []cdc.Value{{Int: 7}, {Int: -3}, {Int: -1}, {Str: "-1234.5"}, {Float: 1.5}, {Int: 1}, {Str: "Björn"}, {Str: "b"}, {Str: "x,y"},
		{Str: "\x00\xff"}, {Str: `{"a":1}`}, {Int: -1},
		{Int: time.Date(2024, 2, 29, 23, 59, 59, 1000, time.UTC).UnixMicro()}, {Int: time.Date(2023, 12, 31, 23, 0, 0, 5e8, time.UTC).UnixMicro()}, {Null: true}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("row (-got +want):\n%s", diff)
	}
	// A column left out is NULL.
	got, err = BackfillRow(backfillTable, []string{"id", "name"}, []*string{str("1"), str("x")})
	if err != nil || !got[1].Null || !got[14].Null {
		t.Errorf("columns left out: %v, %v", got, err)
	}
}

// TestBackfillRowRefusesBadValues: each value not of its column's type,
// and each row that does not fit the table, is an error naming the column.
func TestBackfillRowRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		col, val string
		want     string
	}{
		{"small", "3000000000", "column small"},
		{"big", "-1", "column big"},
		{"price", "12345.6", "does not fit DECIMAL(6,2)"},
		{"price", "1.234", "does not fit DECIMAL(6,2)"},
		{"price", "1e3", "want [-]digits[.digits]"},
		{"price", "1.", "want [-]digits[.digits]"},
		{"ratio", "NaN", "not a finite number"},
		{"ratio", "1e39", "column ratio"},
		{"flag", "yes", "want 0, 1, true or false"},
		{"kind", "c", `"c" is not one of its labels`},
		{"tags", "x,z", `"z" is not one of its labels`},
		{"raw", "00ff", "want 0x and hexadecimal digits"},
		{"doc", "{", "not JSON"},
		{"day", "2024-02-30", "want YYYY-MM-DD"},
		{"at", "2024-01-01 00:00:00+01:00", "want YYYY-MM-DD HH:MM:SS"},
		{"ts", "2024-01-01 00:00:00.0000001", "want YYYY-MM-DD HH:MM:SS"},
		{"place", "POINT(1 2)", "a geometry column is not loaded from text"},
	} {
		t.Run(tc.col+" "+tc.val, func(t *testing.T) {
			_, err := BackfillRow(backfillTable, []string{"id", "name", tc.col}, []*string{str("1"), str("n"), str(tc.val)})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "column "+tc.col) {
				t.Errorf("%v, want an error naming column %s and %q", err, tc.col, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		cols []string
		vals []*string
		want string
	}{
		{"unknown column", []string{"id", "name", "nope"}, []*string{str("1"), str("n"), str("x")}, `table shop.t has no column "nope"`},
		{"NULL key", []string{"id", "name"}, []*string{nil, str("n")}, "column id is NOT NULL"},
		{"NOT NULL left out", []string{"id"}, []*string{str("1")}, "column name is NOT NULL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := BackfillRow(backfillTable, tc.cols, tc.vals); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckBackfillRefusesHostileRequests: the shape of a backfill request
// is checked before anything is read.
func TestCheckBackfillRefusesHostileRequests(t *testing.T) {
	many := make([][]*string, MaxBackfillRows+1)
	for i := range many {
		many[i] = []*string{str("1")}
	}
	big := strings.Repeat("x", 3000)
	huge := make([][]*string, 400)
	for i := range huge {
		huge[i] = []*string{&big}
	}
	for _, tc := range []struct {
		name string
		cols []string
		rows [][]*string
		want string
	}{
		{"no columns", nil, [][]*string{{}}, "0 columns"},
		{"repeated column", []string{"id", "ID"}, [][]*string{{str("1"), str("2")}}, "repeated"},
		{"empty column", []string{""}, [][]*string{{str("1")}}, "empty"},
		{"no rows", []string{"id"}, nil, "0 rows"},
		{"too many rows", []string{"id"}, many, "1001 rows"},
		{"ragged row", []string{"id", "v"}, [][]*string{{str("1")}}, "row 1 has 1 values for 2 columns"},
		{"not UTF-8", []string{"id"}, [][]*string{{str("\xff")}}, "not UTF-8"},
		{"too many bytes", []string{"id"}, huge, "bytes of values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckBackfill(tc.cols, tc.rows); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
}

// TestBackfillPublishesBelowEveryLiveChange: a backfill request's rows go
// out as snapshot rows in one transaction with a sequence below the
// stream's changes, taking the request's offset; a request with a row
// that does not fit the table publishes nothing and is recorded as failed.
func TestBackfillPublishesBelowEveryLiveChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS backfill_rows", "CREATE DATABASE backfill_rows",
		"CREATE TABLE backfill_rows.t (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL, n DECIMAL(5,1))",
		"INSERT INTO backfill_rows.t VALUES (1, 'live', 1)"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "backfill_rows.*")
	cfg.ServerID, cfg.HeartbeatPeriod = 173, 100*time.Millisecond
	r := openAtCurrent(t, ctx, cfg)
	if err := server.Exec(ctx, "backfill_rows", "UPDATE t SET v = 'newer' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	req := SnapshotRequest{Tables: []string{"backfill_rows.t"}, Columns: []string{"id", "v", "n"},
		Rows: [][]*string{{str("1"), str("old"), nil}, {str("2"), str("gap"), str("-2.5")}}, Next: 3}
	if err := r.RequestSnapshot(ctx, req); err != nil {
		t.Fatal(err)
	}
	evs, st := readRepaired(t, ctx, r, 3, nil)
	for !slices.ContainsFunc(evs, func(e cdc.Event) bool { return e.Op == cdc.OpUpdate }) { // the live change, before or after
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, tx.Events...)
	}
	var live cdc.Position
	var got []string
	for _, e := range evs {
		if e.Op == cdc.OpUpdate {
			live = e.Position
		}
	}
	for _, e := range evs {
		if e.Op == cdc.OpUpdate {
			continue
		}
		got = append(got, e.Op.String()+" "+e.After[1].Str)
		if !e.Position.Less(live) || !e.Source.Snapshot {
			t.Errorf("backfilled row %v at %v (snapshot %v): want below the live change at %v", e.After, e.Position, e.Source.Snapshot, live)
		}
	}
	if diff := cmp.Diff(got, []string{"r old", "r gap"}); diff != "" {
		t.Errorf("backfilled rows (-got +want):\n%s", diff)
	}
	if live == (cdc.Position{}) || live.File == 0 {
		t.Errorf("the live change's position %v: want one in a numbered binlog file", live)
	}
	if len(st.Failed) != 0 {
		t.Errorf("failures: %v", st.Failed)
	}

	bad := SnapshotRequest{Tables: []string{"backfill_rows.t"}, Columns: []string{"id", "v"},
		Rows: [][]*string{{str("3"), str("fine")}, {str("4"), nil}}, Next: 4}
	if err := r.RequestSnapshot(ctx, bad); err != nil {
		t.Fatal(err)
	}
	evs, st = readRepaired(t, ctx, r, 4, nil)
	if len(evs) != 0 {
		t.Errorf("a request with a bad row published %v", evs)
	}
	if f := st.Failed[len(st.Failed)-1]; f.Request != 3 || f.Table != "backfill_rows.t" || !strings.Contains(f.Reason, "row 2: column v is NOT NULL") {
		t.Errorf("failure %+v", f)
	}
}
