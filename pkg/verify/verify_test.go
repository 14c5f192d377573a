package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// TestSourceCell: the text of each source type is the text the BigQuery
// value the consumer writes for it reads back as.
func TestSourceCell(t *testing.T) {
	tests := []struct {
		name string
		col  cdc.Column
		v    cdc.Value
		want string
	}{
		{"int", cdc.Column{Type: cdc.TypeInt32}, cdc.Int(-7), "-7"},
		{"TIME as µs", cdc.Column{Type: cdc.TypeTime}, cdc.Int(-3_000_000), "-3000000"},
		{"BIGINT UNSIGNED max", cdc.Column{Type: cdc.TypeUint64}, cdc.Int(-1), "18446744073709551615"},
		{"decimal", cdc.Column{Type: cdc.TypeDecimal, Scale: 2}, cdc.Str("-0.50"), "-0.5"},
		{"FLOAT widened", cdc.Column{Type: cdc.TypeFloat32}, cdc.Float(0.1), "0.10000000149011612"},
		{"DOUBLE", cdc.Column{Type: cdc.TypeFloat64}, cdc.Float(-2.5e300), "-2.5e+300"},
		{"BIT(1)", cdc.Column{Type: cdc.TypeBool}, cdc.Int(1), "true"},
		{"BIT(12)", cdc.Column{Type: cdc.TypeBits, Length: 12}, cdc.Int(0xabc), "0x0abc"},
		{"text", cdc.Column{Type: cdc.TypeString}, cdc.Str("Björn 🙂"), "Björn 🙂"},
		{"binary", cdc.Column{Type: cdc.TypeBytes}, cdc.Str("\x00\xff"), "0x00ff"},
		{"JSON", cdc.Column{Type: cdc.TypeJSON}, cdc.Str(`{"b": 1.0, "a": 2}`), `{"a":2,"b":1}`},
		{"DATE", cdc.Column{Type: cdc.TypeDate}, cdc.Int(19782), "2024-02-29"},
		{"DATETIME", cdc.Column{Type: cdc.TypeDateTime}, cdc.Int(1_500_000), "1970-01-01 00:00:01.500000"},
		{"TIMESTAMP", cdc.Column{Type: cdc.TypeTimestamp}, cdc.Int(0), "1970-01-01 00:00:00.000000 UTC"},
		{"geometry", cdc.Column{Type: cdc.TypeGeometry}, cdc.Str("\xe6\x10\x00\x00\x01\x01"), "{wkb:0x0101,srid:4326}"},
	}
	for _, tt := range tests {
		if got := SourceCell(&tt.col, tt.v); got.Null || got.Text != tt.want {
			t.Errorf("%s: got %+v, want %q", tt.name, got, tt.want)
		}
	}
	if got := SourceCell(&cdc.Column{Type: cdc.TypeInt64}, cdc.Null); !got.Null {
		t.Errorf("NULL: got %+v", got)
	}
}

// TestRestriction: the key range (lo, hi] of a composite key as a row
// restriction, lexicographic, each value a literal of its BigQuery type.
func TestRestriction(t *testing.T) {
	tbl := &cdc.Table{Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64}, {Name: "day", Type: cdc.TypeDate}, {Name: "amount", Type: cdc.TypeDecimal, Scale: 2},
		{Name: "bin", Type: cdc.TypeBytes}, {Name: "ts", Type: cdc.TypeTimestamp},
	}, PrimaryKey: []int{0, 1, 2, 3, 4}}
	r := &run{t: tbl, keyNames: []string{"id", "day", "amount", "bin", "ts"}, keyTypes: []string{"INTEGER", "DATE", "NUMERIC", "BYTES", "TIMESTAMP"}}
	lo := []cdc.Value{cdc.Int(1), cdc.Int(0), cdc.Str("1.50"), cdc.Str("\x00'"), cdc.Int(1)}
	hi := []cdc.Value{cdc.Int(2), cdc.Int(1), cdc.Str("-3.00"), cdc.Str(""), cdc.Int(0)}
	tests := []struct {
		name   string
		lo, hi []cdc.Value
		want   string
	}{
		{"whole", nil, nil, ""},
		{"below", nil, hi[:5], "((`id` < 2) OR (`id` = 2 AND `day` < DATE '1970-01-02') OR (`id` = 2 AND `day` = DATE '1970-01-02' AND `amount` < NUMERIC '-3') OR " +
			"(`id` = 2 AND `day` = DATE '1970-01-02' AND `amount` = NUMERIC '-3' AND `bin` < b'') OR " +
			"(`id` = 2 AND `day` = DATE '1970-01-02' AND `amount` = NUMERIC '-3' AND `bin` = b'' AND `ts` <= TIMESTAMP '1970-01-01 00:00:00.000000+00:00'))"},
		{"above", lo, nil, "((`id` > 1) OR (`id` = 1 AND `day` > DATE '1970-01-01') OR (`id` = 1 AND `day` = DATE '1970-01-01' AND `amount` > NUMERIC '1.5') OR " +
			"(`id` = 1 AND `day` = DATE '1970-01-01' AND `amount` = NUMERIC '1.5' AND `bin` > b'\\x00\\x27') OR " +
			"(`id` = 1 AND `day` = DATE '1970-01-01' AND `amount` = NUMERIC '1.5' AND `bin` = b'\\x00\\x27' AND `ts` > TIMESTAMP '1970-01-01 00:00:00.000001+00:00'))"},
	}
	for _, tt := range tests {
		got, err := r.restriction(tt.lo, tt.hi)
		if err != nil || got != tt.want {
			t.Errorf("%s:\ngot  %s (%v)\nwant %s", tt.name, got, err, tt.want)
		}
	}
	both, err := r.restriction(lo, hi)
	if err != nil || both == "" {
		t.Fatalf("both bounds: %q, %v", both, err)
	}
	if _, err := r.restriction([]cdc.Value{cdc.Null, cdc.Int(0), cdc.Str("1"), cdc.Str(""), cdc.Int(0)}, nil); err == nil {
		t.Error("a NULL key value made a restriction")
	}
}

// TestChecksum: order-independent, and two equal rows do not cancel out.
func TestChecksum(t *testing.T) {
	a := []bigquery.Cell{{Text: "1"}, {Null: true}}
	b := []bigquery.Cell{{Text: "2"}, {Text: ""}}
	if checksum([][]bigquery.Cell{a, b}) != checksum([][]bigquery.Cell{b, a}) {
		t.Error("the checksum depends on row order")
	}
	if checksum([][]bigquery.Cell{a, a, b}) == checksum([][]bigquery.Cell{b, b, b}) {
		t.Error("duplicated rows collide")
	}
	if checksum([][]bigquery.Cell{{{Null: true}}}) == checksum([][]bigquery.Cell{{{Text: ""}}}) {
		t.Error("NULL and empty text collide")
	}
}

// TestSummaryReadPath: the summary line ends with the read path and, for
// an upsert table, its max_staleness and how many pending keys settled.
func TestSummaryReadPath(t *testing.T) {
	tests := []struct {
		name string
		res  Result
		want string
	}{
		{"missing table", Result{Table: "d.t"}, "0 differences, 0s"},
		{"changelog", Result{Table: "d.t", ReadPath: ReadPath}, "0 differences, 0s (read through the Storage Read API)"},
		{"upsert", Result{Table: "d.t", ReadPath: ReadPath, Upsert: true, MaxStaleness: 15 * time.Minute},
			"0 differences, 0s (read through the Storage Read API, max_staleness 15m0s)"},
		{"pending", Result{Table: "d.t", ReadPath: ReadPath, Upsert: true, MaxStaleness: time.Minute, Pending: 3, Settled: 2, Differences: 1},
			"1 differences, 0s (read through the Storage Read API, max_staleness 1m0s, 2 of 3 pending keys settled)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.Summary(); !strings.HasSuffix(got, tt.want) {
				t.Errorf("Summary() = %q, want it to end with %q", got, tt.want)
			}
		})
	}
}
