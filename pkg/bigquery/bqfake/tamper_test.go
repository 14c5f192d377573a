package bqfake_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPutRowDeleteRowDamageATable: PutRow and DeleteRow change a table as
// DML would, at once and without a sequence number, so that any later
// change of the key replaces what they wrote; they refuse a table without
// a primary key and a row without its key.
func TestPutRowDeleteRowDamageATable(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "users", cdcTable())
	w := e.newWriter(t, "users", cdcSchema, true)
	up := func(id int64, name, seq string) map[string]any {
		return map[string]any{"id": id, "name": name, "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": seq}
	}
	if _, err := w.append(e.ctx, t, up(1, "one", "5"), up(2, "two", "5"), up(3, "three", "5")); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.DeleteRow(project, dsID, "users", map[string]any{"id": int64(1)}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.PutRow(project, dsID, "users", map[string]any{"id": int64(2), "name": "damaged"}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.PutRow(project, dsID, "users", map[string]any{"id": int64(9), "name": "extra"}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"id": int64(2), "name": "damaged"}, {"id": int64(3), "name": "three"}, {"id": int64(9), "name": "extra"}}
	if diff := cmp.Diff(e.rows(t, "users"), want); diff != "" {
		t.Errorf("rows after the damage (-got +want):\n%s", diff)
	}
	// Older changes than the ones before the damage still replace it: the
	// damage carries no sequence number; the deleted key left no tombstone.
	if _, err := w.append(e.ctx, t, up(1, "back", "1"), up(2, "repaired", "1")); err != nil {
		t.Fatal(err)
	}
	want = []map[string]any{{"id": int64(1), "name": "back"}, {"id": int64(2), "name": "repaired"}, {"id": int64(3), "name": "three"}, {"id": int64(9), "name": "extra"}}
	if diff := cmp.Diff(e.rows(t, "users"), want); diff != "" {
		t.Errorf("rows after later changes (-got +want):\n%s", diff)
	}
	if err := e.srv.PutRow(project, dsID, "users", map[string]any{"name": "no key"}); err == nil {
		t.Error("a row without its key column was written")
	}
	e.createTable(t, "plain", nil)
	if err := e.srv.DeleteRow(project, dsID, "plain", map[string]any{"id": int64(1)}); err == nil {
		t.Error("a table without a primary key was changed by key")
	}
}
