package bqfake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
)

// table is one table's metadata and rows.
type table struct {
	meta    *bq.Table
	rev     int   // bumped on every metadata change; the etag
	version int   // bumped on every schema change
	next    int64 // insertion counter

	// A table without a primary key keeps every row, in insertion order.
	rows []*row
	// A table with a primary key keeps one entry per key, including the
	// tombstones of deleted rows (see apply).
	byKey map[string]*row

	// The modelled delays and windows (delays.go).
	added         map[string]time.Time // lower-cased column → when it was added
	notFoundUntil time.Time            // a re-created table's default stream is NOT_FOUND until then
	tombs         []tomb               // deletes still remembered, oldest first
	applied       map[string]*row      // byKey as of the last background apply
	appliedAt     time.Time
}

type row struct {
	values  map[string]any // by column name as declared in the schema
	seq     seqNum         // nil when the change carried no sequence number
	deleted bool
	order   int64
}

// change is one decoded row of an AppendRows request.
type change struct {
	values map[string]any
	del    bool   // _CHANGE_TYPE = DELETE
	seq    seqNum // _CHANGE_SEQUENCE_NUMBER, nil if absent
}

// Table returns a copy of a table's metadata as the REST API returns it
// (tables.get).
func (s *Server) Table(project, ds, tbl string) (*bq.Table, error) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	t, aerr := s.cat.lookupTableLocked(project, ds, tbl)
	if aerr != nil {
		return nil, aerr
	}
	return t.resource(), nil
}

// Rows returns a table's current rows, after changes are applied: one map
// per row from column name to value, with every column of the schema
// present. Rows are sorted by primary key (column by column, NULL first),
// or in insertion order for a table without one.
//
// Values are Go values by column type: INT64 int64, FLOAT64 float64, BOOL
// bool, STRING/JSON/GEOGRAPHY string, BYTES []byte, NUMERIC/BIGNUMERIC
// *big.Rat, DATE civil.Date, DATETIME civil.DateTime, TIME civil.Time,
// TIMESTAMP time.Time in UTC, RECORD map[string]any, REPEATED []any (empty,
// never nil), NULL nil.
//
// A view has no rows of its own and bqfake runs no SQL: Rows of a view is
// an error; read its definition with Table.
func (s *Server) Rows(project, ds, tbl string) ([]map[string]any, error) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	t, aerr := s.cat.lookupTableLocked(project, ds, tbl)
	if aerr != nil {
		return nil, aerr
	}
	if t.meta.Type == "VIEW" {
		return nil, fmt.Errorf("bqfake: %s is a view; bqfake does not run its query", t.meta.Id)
	}
	return t.snapshot(), nil
}

// resource returns a deep copy of the table's REST resource.
func (t *table) resource() *bq.Table {
	b, err := json.Marshal(t.meta)
	if err != nil {
		panic(fmt.Sprintf("bqfake: marshal table: %v", err))
	}
	out := new(bq.Table)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("bqfake: unmarshal table: %v", err))
	}
	out.NumRows = uint64(t.liveRows())
	return out
}

func (t *table) liveRows() int {
	if t.byKey == nil {
		return len(t.rows)
	}
	n := 0
	for _, r := range t.byKey {
		if !r.deleted {
			n++
		}
	}
	return n
}

func (t *table) fields() []*bq.TableFieldSchema {
	if t.meta.Schema == nil {
		return nil
	}
	return t.meta.Schema.Fields
}

// primaryKey returns the primary-key columns, spelled as in the schema.
func (t *table) primaryKey() []string {
	tc := t.meta.TableConstraints
	if tc == nil || tc.PrimaryKey == nil {
		return nil
	}
	var out []string
	for _, c := range tc.PrimaryKey.Columns {
		if f := findField(t.fields(), c); f != nil {
			out = append(out, f.Name)
		}
	}
	return out
}

// setMeta replaces the metadata and, when the primary key changes, moves
// the rows between the two layouts: rows gaining a key keep the last row
// written per key; rows losing it keep every live row.
func (t *table) setMeta(m *bq.Table, schemaChanged bool) {
	var oldPK []string
	if t.meta != nil {
		oldPK = t.primaryKey()
	}
	t.meta = m
	t.rev++
	t.meta.Etag = fmt.Sprintf("bqfake-%d", t.rev)
	t.meta.LastModifiedTime = uint64(time.Now().UnixMilli())
	if schemaChanged {
		t.version++
	}
	newPK := t.primaryKey()
	if slices.Equal(oldPK, newPK) {
		return
	}
	old := t.liveInOrder()
	t.rows, t.byKey = nil, nil
	if len(newPK) == 0 {
		t.rows = old
		return
	}
	t.byKey = make(map[string]*row)
	for _, r := range old {
		t.byKey[keyOf(r.values, newPK)] = r
	}
}

func (t *table) liveInOrder() []*row {
	if t.byKey == nil {
		return t.rows
	}
	var out []*row
	for _, r := range t.byKey {
		if !r.deleted {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *row) int { return cmp.Compare(a.order, b.order) })
	return out
}

// apply applies one change. Without a primary key every row is appended.
// With one, the change replaces the entry of its key unless both carry a
// sequence number and the new one is lower: an older change never
// overwrites a newer one, and on equal numbers the later arrival wins. A
// DELETE leaves a tombstone holding its sequence number, so that an older
// UPSERT arriving after it does not bring the row back.
//
// pk is t.primaryKey(), which the caller looks up once per request.
func (t *table) apply(c change, pk []string) {
	r := &row{values: c.values, seq: c.seq, deleted: c.del, order: t.next}
	t.next++
	if len(pk) == 0 {
		t.rows = append(t.rows, r)
		return
	}
	k := keyOf(c.values, pk)
	if old := t.byKey[k]; old != nil && old.seq != nil && c.seq != nil && c.seq.compare(old.seq) < 0 {
		return
	}
	t.byKey[k] = r
}

// snapshot returns the live rows as maps holding every column.
func (t *table) snapshot() []map[string]any {
	rows := t.liveInOrder()
	if pk := t.primaryKey(); len(pk) > 0 {
		slices.SortStableFunc(rows, func(a, b *row) int {
			for _, c := range pk {
				if n := compareValues(a.values[c], b.values[c]); n != 0 {
					return n
				}
			}
			return 0
		})
	}
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		out = append(out, fill(t.fields(), r.values))
	}
	return out
}

// fill returns a copy of vals holding every field of fs, nested records
// included: a column written before it existed reads as NULL (or as an
// empty array when REPEATED).
func fill(fs []*bq.TableFieldSchema, vals map[string]any) map[string]any {
	out := make(map[string]any, len(fs))
	for _, f := range fs {
		v := vals[f.Name]
		switch {
		case mode(f) == "REPEATED":
			list, _ := v.([]any)
			cp := make([]any, len(list))
			for i, e := range list {
				if m, ok := e.(map[string]any); ok && isStruct(f) {
					e = fill(f.Fields, m)
				}
				cp[i] = e
			}
			v = cp
		case isStruct(f) && v != nil:
			v = fill(f.Fields, v.(map[string]any))
		}
		out[f.Name] = v
	}
	return out
}

// keyOf encodes a row's primary-key values as a map key.
func keyOf(vals map[string]any, pk []string) string {
	var b strings.Builder
	for _, c := range pk {
		v := vals[c]
		switch x := v.(type) {
		case nil:
			b.WriteString("N")
		case int64: // the common keys, without fmt: the same text as %T:%v
			b.WriteString("int64:")
			b.WriteString(strconv.FormatInt(x, 10))
		case string:
			b.WriteString("string:")
			b.WriteString(x)
		case *big.Rat:
			fmt.Fprintf(&b, "R%s", x.RatString())
		case []byte:
			fmt.Fprintf(&b, "B%x", x)
		case time.Time:
			fmt.Fprintf(&b, "T%d", x.UnixNano())
		default:
			fmt.Fprintf(&b, "%T:%v", x, x)
		}
		b.WriteByte(0)
	}
	return b.String()
}

// compareValues orders two values of one column; NULL sorts first.
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch x := a.(type) {
	case int64:
		return cmp.Compare(x, b.(int64))
	case float64:
		return cmp.Compare(x, b.(float64))
	case string:
		return strings.Compare(x, b.(string))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case []byte:
		return bytes.Compare(x, b.([]byte))
	case *big.Rat:
		return x.Cmp(b.(*big.Rat))
	case civil.Date:
		return x.Compare(b.(civil.Date))
	case civil.DateTime:
		return x.Compare(b.(civil.DateTime))
	case civil.Time:
		return x.Compare(b.(civil.Time))
	case time.Time:
		return x.Compare(b.(time.Time))
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// PutRow writes row — values by column name, of the Go types Rows returns
// — into a table with a primary key, replacing the row of its key, as a DML
// statement does: at once visible to reads, and without a change sequence
// number, so that any later change of the key replaces it. Tests damage a
// table with it behind the writer's back.
func (s *Server) PutRow(project, ds, tbl string, row map[string]any) error {
	return s.tamper(project, ds, tbl, row, false)
}

// DeleteRow removes the row of key (the primary-key columns' values by
// name, as Rows returns them) from a table with a primary key, as a DML
// DELETE does: at once, leaving no tombstone.
func (s *Server) DeleteRow(project, ds, tbl string, key map[string]any) error {
	return s.tamper(project, ds, tbl, key, true)
}

func (s *Server) tamper(project, ds, tbl string, vals map[string]any, del bool) error {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	t, aerr := s.cat.lookupTableLocked(project, ds, tbl)
	if aerr != nil {
		return aerr
	}
	pk := t.primaryKey()
	if len(pk) == 0 || t.byKey == nil {
		return fmt.Errorf("bqfake: %s has no primary key", t.meta.Id)
	}
	for _, c := range pk {
		if _, ok := vals[c]; !ok {
			return fmt.Errorf("bqfake: %s: no value of key column %s", t.meta.Id, c)
		}
	}
	k := keyOf(vals, pk)
	if t.applied != nil {
		t.applied = maps.Clone(t.applied) // reads in flight may hold the old one
	}
	if del {
		delete(t.byKey, k)
		delete(t.applied, k)
		return nil
	}
	r := &row{values: maps.Clone(vals), order: t.next}
	t.next++
	t.byKey[k] = r
	if t.applied != nil {
		t.applied[k] = r
	}
	return nil
}
