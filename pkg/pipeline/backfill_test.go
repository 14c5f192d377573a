package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

var accounts = &cdc.Table{Database: "shop", Name: "accounts", PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Type: cdc.TypeInt64}, {Name: "note", Type: cdc.TypeString, Nullable: true},
	{Name: "ok", Type: cdc.TypeBool, Nullable: true}, {Name: "doc", Type: cdc.TypeJSON, Nullable: true},
}}

func TestBackfillSignalsReadTheFile(t *testing.T) {
	src := &binlog.Config{Include: []string{"shop.*"}}
	file := `{"id": 1, "note": "a", "ok": true, "doc": {"b": [1, 2]}}

{"note": null, "id": 2, "ok": false, "doc": null}
`
	var got []kafka.Signal
	n, err := BackfillSignals(strings.NewReader(file), accounts, src, func(s kafka.Signal) error { got = append(got, s); return nil })
	if err != nil || n != 2 {
		t.Fatalf("%d rows, %v", n, err)
	}
	want := []kafka.Signal{{Type: kafka.SignalBackfill, Tables: []string{"shop.accounts"}, Columns: []string{"doc", "id", "note", "ok"},
		Rows: [][]*string{{ptr(`{"b":[1,2]}`), ptr("1"), ptr("a"), ptr("1")}, {nil, ptr("2"), nil, ptr("0")}}}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("signals (-got +want):\n%s", diff)
	}
}

// TestBackfillSignalsNameTheBadLine: nothing is sent for a file with a bad
// line, and the error names it.
func TestBackfillSignalsNameTheBadLine(t *testing.T) {
	src := &binlog.Config{Include: []string{"shop.*"}}
	for _, tc := range []struct{ name, file, want string }{
		{"not JSON", "{\"id\": 1}\nid=2\n", "line 2: not a JSON object"},
		{"two objects", `{"id": 1} {"id": 2}`, "line 1: want one JSON object"},
		{"other columns", "{\"id\": 1}\n{\"id\": 2, \"note\": \"x\"}\n", "line 2: names 2 columns, the first line 1"},
		{"renamed column", "{\"id\": 1, \"note\": \"x\"}\n{\"id\": 2, \"nope\": \"x\"}\n", `line 2: has no "note"`},
		{"unknown column", `{"id": 1, "nope": 2}`, `line 1: table shop.accounts has no column "nope"`},
		{"bad value", "{\"id\": 1}\n{\"id\": 2}\n{\"id\": \"x\"}\n", "line 3: column id"},
		{"empty", "\n\n", "no rows"},
		{"too long a line", `{"id": 1, "note": "` + strings.Repeat("x", 1<<20) + `"}`, "line 1: bufio.Scanner: token too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := 0
			_, err := BackfillSignals(strings.NewReader(tc.file), accounts, src, func(kafka.Signal) error { sent++; return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
			if tc.name == "bad value" && sent != 0 {
				t.Errorf("%d signals sent before the bad line", sent)
			}
		})
	}
}

// TestBackfillSignalsSplit: rows are split into signals of at most
// binlog.MaxBackfillRows rows and maxSignalBytes, none lost.
func TestBackfillSignalsSplit(t *testing.T) {
	src := &binlog.Config{Include: []string{"shop.*"}}
	var b strings.Builder
	long := strings.Repeat("\x01", 1000) // 6,000 bytes in JSON
	for i := range 2500 {
		note := "n"
		if i >= 2000 {
			note = long
		}
		line, _ := json.Marshal(map[string]any{"id": i, "note": note})
		b.Write(append(line, '\n'))
	}
	var rows int
	var sigs int
	n, err := BackfillSignals(strings.NewReader(b.String()), accounts, src, func(s kafka.Signal) error {
		j, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if len(j) > maxSignalBytes || len(s.Rows) > binlog.MaxBackfillRows {
			return fmt.Errorf("a signal of %d bytes and %d rows", len(j), len(s.Rows))
		}
		if *s.Rows[0][0] != fmt.Sprint(rows) {
			return fmt.Errorf("signal %d starts at row %s, want %d", sigs, *s.Rows[0][0], rows)
		}
		rows += len(s.Rows)
		sigs++
		return nil
	})
	if err != nil || n != 2500 || rows != 2500 {
		t.Fatalf("%d rows read, %d sent, %v", n, rows, err)
	}
	if sigs < 5 {
		t.Errorf("%d signals, want at least 5 (2 by count, more by bytes)", sigs)
	}
}

func ptr(s string) *string { return &s }
