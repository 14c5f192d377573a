package bigquery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gbq "cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/bigquery"
	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/sink"
	"github.com/strait-cdc/strait/pkg/testenv"
	"github.com/strait-cdc/strait/pkg/verify"
)

// The type walk: what a column type is, is known in about a dozen files
// (binlog decoding, the snapshot's SELECT, the Avro schema and encoder,
// the BigQuery schema and row, verify's canonical text). TestTypeWalk
// takes a sample of every type (testenv.TypeCases) through all of them on
// a real server and names the stage a type is missing from;
// TestTypeWalkCoversMapping checks that those samples are the README's
// type mapping and reach every canonical type the code knows.

// Stages of the walk, as failures name them.
const (
	stageStream   = "binlog decode (stream)"
	stageSnapshot = "snapshot decode (SELECT)"
	stageSchema   = "Avro schema"
	stageEncode   = "Avro encode"
	stageBQSchema = "BigQuery schema"
	stageBQRow    = "BigQuery row"
	stageVerify   = "verify canonical text"
	stageReadBack = "BigQuery write and read-back"
)

// TestTypeWalk creates a table with a column of every type of
// testenv.TypeCases, inserts the samples and a row of NULLs, reads both
// rows from the binlog and with the snapshot's SELECT, and takes each
// column, in a table of its own, through the Avro schema and encoder, the
// BigQuery schema and row builder and verify's canonical text; then the
// whole table through a local BigQuery and back with verify's reader,
// whose text must be verify's text of the source value.
func TestTypeWalk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	var defs, names, lits []string
	for _, c := range testenv.TypeCases {
		defs = append(defs, c.Name+" "+c.Def)
		names = append(names, c.Name)
		lits = append(lits, c.Lit)
	}
	if err := m.Exec(ctx, "", "CREATE DATABASE walk",
		"CREATE TABLE walk.t (id INT PRIMARY KEY, "+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	cfg := &binlog.Config{Host: m.Host, Port: m.Port, User: m.User, Password: m.Password, Include: []string{"walk.*"}, ServerID: 100}
	cfg.Defaults()
	log := slog.New(slog.DiscardHandler)
	r, err := binlog.Open(ctx, cfg, log, binlog.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Start(ctx, binlog.Start{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Exec(ctx, "walk",
		"SET SESSION time_zone = '+05:30'",
		"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
		"INSERT INTO t (id, "+strings.Join(names, ", ")+") VALUES (1, "+strings.Join(lits, ", ")+")",
		"INSERT INTO t (id) VALUES (2)",
	); err != nil {
		t.Fatal(err)
	}
	var streamed []cdc.Event
	for len(streamed) < 2 {
		var tx binlog.Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatalf("%s: %v", stageStream, err)
		}
		streamed = append(streamed, tx.Events...)
	}
	sc, err := binlog.NewScanner(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	scan, err := sc.Open(ctx, "walk", "t")
	if err != nil {
		t.Fatalf("%s: %v", stageSnapshot, err)
	}
	defer scan.Close()
	snapped, err := scan.Next(ctx, nil, 10)
	if err != nil || len(snapped) != 2 {
		t.Fatalf("%s: %d rows, %v", stageSnapshot, len(snapped), err)
	}

	tbl := streamed[0].Table
	back := readBack(t, tbl, [][]cdc.Value{streamed[0].After, streamed[1].After})
	for i, c := range testenv.TypeCases {
		j := i + 1 // after id
		t.Run(c.Name, func(t *testing.T) {
			w := &walk{t: t, c: c}
			col := tbl.Columns[j]
			sample, null := streamed[0].After[j], streamed[1].After[j]
			switch {
			case col.Name != c.Name || col.Type != c.Type:
				w.fail(stageStream, "column %s of type %s, want %s of type %s", col.Name, col.Type, c.Name, c.Type)
			case !cmp.Equal(sample, c.Want) || !null.Null:
				w.fail(stageStream, "values %+v and %+v, want %+v and NULL", sample, null, c.Want)
			case !cmp.Equal(scan.Table().Columns[j], col):
				w.fail(stageSnapshot, "column %+v, the stream's is %+v", scan.Table().Columns[j], col)
			case !cmp.Equal(snapped[0][j], sample) || !snapped[1][j].Null:
				w.fail(stageSnapshot, "values %+v and %+v, the stream's are %+v and NULL", snapped[0][j], snapped[1][j], sample)
			default:
				w.downstream(col, []cdc.Value{sample, null})
				for k, v := range []cdc.Value{sample, null} {
					if got, want := back[k][j], verify.SourceCell(&col, v); got != want {
						w.fail(stageVerify, "BigQuery reads %+v back as %+v, verify's text of the source value is %+v", v, got, want)
					}
				}
			}
		})
	}
}

// readBack writes rows of tbl to a local BigQuery with the consumer's
// writer and reads them back with verify's reader (Storage Read API), as
// canonical text, in tbl's column order and the order of rows (their
// first column, an INT key, counting from 1).
func readBack(t *testing.T, tbl *cdc.Table, rows [][]cdc.Value) [][]bigquery.Cell {
	t.Helper()
	var cfg *bigquery.Config
	// Read every table as it is now: staleness is not what this test is about.
	opts := []bqfake.Opt{bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0), bqfake.WithoutBackgroundApply()}
	_, w, ctx, _ := startWriterOn(t, opts, func(c *bigquery.Config) { cfg = c }, io.Discard)
	src := newSource(t, tbl)
	var changes []sink.Change
	for _, row := range rows {
		changes = append(changes, src.change(cdc.OpCreate, nil, row))
	}
	if err := w.Apply(ctx, src.topic(), changes); err != nil {
		t.Fatalf("%s: apply: %v", stageReadBack, err)
	}
	r, err := bigquery.NewTableReader(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	info, err := r.Describe(ctx, tbl.Database+"_"+tbl.Name)
	if err != nil {
		t.Fatalf("%s: %v", stageReadBack, err)
	}
	names := make([]string, len(tbl.Columns))
	for i, c := range tbl.Columns {
		names[i] = bigquery.ColumnName(c.Name)
	}
	out := make([][]bigquery.Cell, len(rows))
	err = r.Read(ctx, info, names, "", func(cells []bigquery.Cell) error {
		id, err := strconv.Atoi(cells[0].Text)
		if err != nil || id < 1 || id > len(rows) {
			return fmt.Errorf("a row of key %q", cells[0].Text)
		}
		out[id-1] = cells
		return nil
	})
	if err != nil {
		t.Fatalf("%s: read: %v", stageReadBack, err)
	}
	for i, cells := range out {
		if cells == nil {
			t.Fatalf("%s: row %d not read back", stageReadBack, i+1)
		}
	}
	return out
}

// walk is one type's way through the stages after the source.
type walk struct {
	t *testing.T
	c testenv.TypeCase
}

func (w *walk) fail(stage, format string, args ...any) {
	w.t.Helper()
	w.t.Errorf("%s (%s) fails at the stage %s: %s", w.c.Name, w.c.Def, stage, fmt.Sprintf(format, args...))
}

// downstream takes col's values (a sample, then NULL) in a table of its
// own through the Avro, BigQuery and verify stages.
func (w *walk) downstream(col cdc.Column, values []cdc.Value) {
	w.t.Helper()
	one := &cdc.Table{Database: "walk", Name: "t", PrimaryKey: []int{0},
		Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt32}, col}}
	s, err := avro.Build("walk", one)
	if err != nil {
		w.fail(stageSchema, "%v", err)
		return
	}
	env, err := avro.Parse(s.Value)
	if err != nil {
		w.fail(stageSchema, "%v", err)
		return
	}
	field := s.Fields[1]
	wantType, ok := wantBigQuery(col)
	if !ok {
		w.fail(stageBQSchema, "the walk knows no BigQuery type for the canonical type %s: add it to wantBigQuery (and the README's type mapping)", col.Type)
		return
	}
	columns, err := bigquery.TableColumns(s.Value)
	if err != nil {
		w.fail(stageBQSchema, "%v", err)
		return
	}
	i := slices.IndexFunc(columns, func(f *gbq.FieldSchema) bool { return f.Name == field })
	if i < 0 || columns[i].Type != wantType {
		w.fail(stageBQSchema, "no column %s of type %s in %v", field, wantType, columnTypes(columns))
		return
	}
	enc := avro.NewEncoder(one, "walk", "test", 1, 2)
	topic := &sink.Topic{Name: "walk.walk.t", Prefix: "walk", Database: "walk", Table: "t"}
	now := time.Unix(1700000000, 0)
	for k, v := range values {
		isNull := v.Null // the NULL row, and zero dates (NULL: README, "Type mapping")
		ev := cdc.Event{Table: one, Op: cdc.OpCreate, After: []cdc.Value{cdc.Int(int64(k)), v},
			Position: cdc.Position{Epoch: 1, File: 1, Pos: uint64(4 + k)}, CommitTime: now}
		b, err := enc.AppendValue(nil, &ev, now)
		if err != nil {
			w.fail(stageEncode, "%+v: %v", v, err)
			return
		}
		got, err := avro.Decode(env, b[5:])
		if err != nil {
			w.fail(stageEncode, "%+v does not read back: %v", v, err)
			return
		}
		after, _ := got.(avro.Object).Get("after").(avro.Object)
		if (after.Get(field) == nil) != isNull {
			w.fail(stageEncode, "%+v reads back as %v", v, after.Get(field))
			return
		}
		row, err := bigquery.AppendRow(w.t, s.Value, topic, b[5:])
		if err != nil {
			w.fail(stageBQRow, "%+v: %v", v, err)
			return
		}
		fd := row.Descriptor().Fields().ByName(protoreflect.Name(field))
		if fd == nil || row.Has(fd) == isNull {
			w.fail(stageBQRow, "%+v: field %s of the row set: %t, want %t", v, field, fd != nil && row.Has(fd), !isNull)
			return
		}
		cell := verify.SourceCell(&col, v)
		if cell.Null != isNull || !isNull && !textOf[wantType](cell.Text) {
			w.fail(stageVerify, "%+v is %+v, not the text of a %s", v, cell, wantType)
			return
		}
	}
}

// wantBigQuery is the BigQuery type of a (non-key) column of col's
// canonical type, as the README's type mapping says.
func wantBigQuery(col cdc.Column) (gbq.FieldType, bool) {
	switch col.Type {
	case cdc.TypeInt32, cdc.TypeInt64, cdc.TypeTime:
		return gbq.IntegerFieldType, true
	case cdc.TypeUint64:
		return gbq.NumericFieldType, true
	case cdc.TypeDecimal:
		if col.Precision-col.Scale <= 29 && col.Scale <= 9 {
			return gbq.NumericFieldType, true
		}
		return gbq.BigNumericFieldType, true
	case cdc.TypeFloat32, cdc.TypeFloat64:
		return gbq.FloatFieldType, true
	case cdc.TypeBool:
		return gbq.BooleanFieldType, true
	case cdc.TypeBits, cdc.TypeBytes:
		return gbq.BytesFieldType, true
	case cdc.TypeString:
		return gbq.StringFieldType, true
	case cdc.TypeJSON:
		return gbq.JSONFieldType, true
	case cdc.TypeDate:
		return gbq.DateFieldType, true
	case cdc.TypeDateTime:
		return gbq.DateTimeFieldType, true
	case cdc.TypeTimestamp:
		return gbq.TimestampFieldType, true
	case cdc.TypeGeometry:
		return gbq.RecordFieldType, true
	}
	return "", false
}

// matches returns a test of a text against pattern.
func matches(pattern string) func(string) bool { return regexp.MustCompile(pattern).MatchString }

// textOf tells whether a text is verify's canonical text of a value of a
// BigQuery type (pkg/bigquery/canon.go).
var textOf = map[gbq.FieldType]func(string) bool{
	gbq.IntegerFieldType:    matches(`^-?[0-9]+$`),
	gbq.NumericFieldType:    matches(`^-?[0-9]+(\.[0-9]*[1-9])?$`),
	gbq.BigNumericFieldType: matches(`^-?[0-9]+(\.[0-9]*[1-9])?$`),
	gbq.FloatFieldType:      func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil },
	gbq.BooleanFieldType:    matches(`^(true|false)$`),
	gbq.BytesFieldType:      matches(`^0x([0-9a-f]{2})*$`),
	gbq.StringFieldType:     utf8.ValidString,
	gbq.JSONFieldType:       func(s string) bool { return json.Valid([]byte(s)) },
	gbq.DateFieldType:       matches(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`),
	gbq.DateTimeFieldType:   matches(`^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}$`),
	gbq.TimestampFieldType:  matches(`^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6} UTC$`),
	gbq.RecordFieldType:     matches(`^\{wkb:0x([0-9a-f]{2})*,srid:[0-9]+\}$`),
}

func columnTypes(s gbq.Schema) []string {
	var out []string
	for _, f := range s {
		out = append(out, f.Name+" "+string(f.Type))
	}
	return out
}

// TestTypeWalkCoversMapping checks the walk's samples against the README's
// type-mapping table and the canonical types the code knows: each type a
// row of the table names has a sample, each sample's type is named by a
// row, and each canonical type (cdc.Type) is reached by a sample. A type
// added in one place and not the others fails here, naming the place.
func TestTypeWalkCoversMapping(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := mappingRows(t, string(readme))
	var named [][]string // the words of each item of every row
	for _, row := range rows {
		for _, item := range mappingItems(row) {
			named = append(named, item)
			if !slices.ContainsFunc(testenv.TypeCases, func(c testenv.TypeCase) bool { return coveredBy(item, defWords(c.Def)) }) {
				t.Errorf("README type mapping row %q names %s: no sample of it in testenv.TypeCases", row, strings.Join(item, " "))
			}
		}
	}
	for _, c := range testenv.TypeCases {
		first := defWords(c.Def)[:1]
		if !slices.ContainsFunc(named, func(item []string) bool { return coveredBy(item[:1], first) }) {
			t.Errorf("testenv.TypeCases %s (%s): no row of the README's type mapping names %s", c.Name, c.Def, first[0])
		}
	}
	for ty := cdc.Type(1); ty.String() != "unknown"; ty++ {
		if !slices.ContainsFunc(testenv.TypeCases, func(c testenv.TypeCase) bool { return c.Type == ty }) {
			t.Errorf("canonical type %s (pkg/cdc): no sample in testenv.TypeCases reaches it", ty)
		}
	}
}

// mappingRows returns the first cells of the README's type-mapping table,
// without the rows of masked columns (source.columns), which are not
// column types.
func mappingRows(t *testing.T, readme string) []string {
	_, section, ok := strings.Cut(readme, "\n## Type mapping\n")
	if !ok {
		t.Fatal(`README.md has no section "## Type mapping"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.HasPrefix(line, "|---") {
			continue
		}
		first := strings.TrimSpace(cells[1])
		if first == "MySQL / MariaDB" || strings.HasPrefix(first, "any column masked") {
			continue
		}
		rows = append(rows, first)
	}
	if len(rows) < 10 {
		t.Fatalf("the README's type mapping has %d rows: is it still a table whose first column names MySQL types?", len(rows))
	}
	return rows
}

// mappingItems splits a row's first cell ("CHAR, VARCHAR, TINYTEXT …
// LONGTEXT", "DECIMAL(p,s) / NUMERIC", "YEAR (signed or unsigned)") into
// the types it names, each as its words; a range X … Y of a family
// (TINYBLOB … LONGBLOB) names each member.
func mappingItems(cell string) [][]string {
	if i := strings.Index(cell, " ("); i >= 0 {
		cell = cell[:i] // a remark
	}
	var items [][]string
	depth, start := 0, 0
	add := func(s string) {
		if lo, hi, ok := strings.Cut(s, "…"); ok {
			lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
			base := strings.TrimPrefix(lo, "TINY")
			for _, member := range []string{lo, base, "MEDIUM" + base, hi} {
				items = append(items, typeWords(member))
			}
			return
		}
		if w := typeWords(s); len(w) > 0 {
			items = append(items, w)
		}
	}
	for i, r := range cell {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0 && (r == ',' || r == '/'):
			add(cell[start:i])
			start = i + 1
		}
	}
	add(cell[start:])
	return items
}

// typeWord is a word of a type in SQL: a name, with its length when that
// is a number (BIT(1)), or a prefix (MULTI*).
var typeWord = regexp.MustCompile(`[A-Z][A-Z0-9]*(\([0-9]+\)|\*)?`)

func typeWords(s string) []string { return typeWord.FindAllString(s, -1) }

// defWords are the words of a column definition's type, without its
// character set.
func defWords(def string) []string {
	def, _, _ = strings.Cut(def, " CHARACTER SET")
	return typeWords(def)
}

// coveredBy reports whether every word of item is one of words: the same
// word, or the word with a length item does not fix, or a word item's
// prefix (MULTI*) begins.
func coveredBy(item, words []string) bool {
	for _, want := range item {
		if !slices.ContainsFunc(words, func(w string) bool {
			base, _, _ := strings.Cut(w, "(")
			prefix, isPrefix := strings.CutSuffix(want, "*")
			return w == want || base == want || isPrefix && strings.HasPrefix(base, prefix)
		}) {
			return false
		}
	}
	return true
}
