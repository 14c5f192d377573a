package bqfake

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// changelogView is the one shape of view query ViewRows runs: per
// partition of key columns, the row of the highest sequence (ties to the
// highest ingestion time, then to the row written last), unless its op is
// 'd' — optionally only among rows whose sequence is below a scalar read
// from another table by two equalities. Any other query is refused, not
// guessed at: bqfake runs no SQL beyond it.
var changelogView = regexp.MustCompile("^SELECT \\* EXCEPT \\((\\w+)\\)\nFROM \\(\n" +
	"  SELECT \\*, ROW_NUMBER\\(\\) OVER \\(PARTITION BY ((?:`\\w+`, )*`\\w+`) ORDER BY (\\w+) DESC, (\\w+) DESC\\) AS (\\w+)\n" +
	"  FROM `([^`]+)`\n" +
	"(?:  WHERE (\\w+) < \\(SELECT `(\\w+)` FROM `([^`]+)` WHERE `(\\w+)` = '((?:[^'\\\\\n]|\\\\.)*)' AND `(\\w+)` = '((?:[^'\\\\\n]|\\\\.)*)'\\)\n)?" +
	"\\)\nWHERE (\\w+) = 1 AND (\\w+) != 'd'$")

// ViewRows returns the rows of views of dataset ds as BigQuery computes
// them, for the views of changelogs strait defines (the latest row per
// key, and the latest row per key below a watermark read from another
// table); a view of another query is an error. The views are read at one
// moment, as one query reading them all would: tables as they are then
// (the latest change of each key of a CDC table, as a query merging the
// changes not yet applied reads them). Values are as Rows returns them.
func (s *Server) ViewRows(project, ds string, views ...string) ([][]map[string]any, error) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	out := make([][]map[string]any, len(views))
	for i, view := range views {
		rows, err := s.viewRowsLocked(project, ds, view)
		if err != nil {
			return nil, err
		}
		out[i] = rows
	}
	return out, nil
}

// viewRowsLocked is ViewRows of one view.
func (s *Server) viewRowsLocked(project, ds, view string) ([]map[string]any, error) {
	v, aerr := s.cat.lookupTableLocked(project, ds, view)
	if aerr != nil {
		return nil, aerr
	}
	if v.meta.Type != "VIEW" || v.meta.View == nil {
		return nil, fmt.Errorf("bqfake: %s is not a view", v.meta.Id)
	}
	m := changelogView.FindStringSubmatch(v.meta.View.Query)
	if m == nil {
		return nil, fmt.Errorf("bqfake: view %s: bqfake runs only strait's changelog views, not %q", v.meta.Id, v.meta.View.Query)
	}
	rank, parts, seq, ingested, rankAs, from := m[1], m[2], m[3], m[4], m[5], m[6]
	belowCol, subCol, subFrom, eq1, lit1, eq2, lit2 := m[7], m[8], m[9], m[10], m[11], m[12], m[13]
	outerRank, op := m[14], m[15]
	if rank != rankAs || outerRank != rankAs {
		return nil, fmt.Errorf("bqfake: view %s: the rank column is %s, %s and %s", v.meta.Id, rank, rankAs, outerRank)
	}
	t, err := s.queryTableLocked(project, from)
	if err != nil {
		return nil, fmt.Errorf("bqfake: view %s: %w", v.meta.Id, err)
	}
	var key []string
	for _, k := range strings.Split(parts, ", ") {
		key = append(key, strings.Trim(k, "`"))
	}
	if err := hasColumns(t, append([]string{seq, ingested, op}, key...)...); err != nil {
		return nil, fmt.Errorf("bqfake: view %s: %w", v.meta.Id, err)
	}
	rows := t.snapshot()
	if belowCol != "" {
		if belowCol != seq {
			return nil, fmt.Errorf("bqfake: view %s: filters on %s, ranks by %s", v.meta.Id, belowCol, seq)
		}
		v1, err1 := literal(lit1)
		v2, err2 := literal(lit2)
		below, err := s.scalarLocked(project, subFrom, subCol, eq1, v1, eq2, v2)
		if err = cmp.Or(err1, err2, err); err != nil {
			return nil, fmt.Errorf("bqfake: view %s: %w", v.meta.Id, err)
		}
		kept := rows[:0]
		for _, r := range rows {
			// NULL on either side compares to NULL: the row is left out.
			if s, ok := r[seq].(string); ok && below != nil && s < *below {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	best := map[string]map[string]any{}
	var order []string
	for _, r := range rows {
		k := keyOf(r, key)
		b, seen := best[k]
		if !seen {
			order = append(order, k)
		}
		if !seen || !ranksBelow(r, b, seq, ingested) {
			best[k] = r
		}
	}
	var out []map[string]any
	for _, k := range order {
		if r := best[k]; r[op] != nil && r[op] != "d" {
			out = append(out, r)
		}
	}
	return out, nil
}

// ranksBelow reports whether row a comes after b in ORDER BY seq DESC,
// ingested DESC (NULLs last in a descending order); equal rows go to the
// later one, the caller's a.
func ranksBelow(a, b map[string]any, seq, ingested string) bool {
	as, _ := a[seq].(string)
	bs, _ := b[seq].(string)
	if as != bs {
		return as < bs
	}
	at, _ := a[ingested].(time.Time)
	bt, _ := b[ingested].(time.Time)
	return at.Before(bt)
}

// queryTableLocked is the table a query names as `project.dataset.table`,
// in the view's project.
func (s *Server) queryTableLocked(project, path string) (*table, error) {
	parts := strings.Split(path, ".")
	if len(parts) != 3 || parts[0] != project {
		return nil, fmt.Errorf("%s is not a table of project %s as project.dataset.table", path, project)
	}
	t, aerr := s.cat.lookupTableLocked(parts[0], parts[1], parts[2])
	if aerr != nil {
		return nil, aerr
	}
	if t.meta.Type == "VIEW" {
		return nil, fmt.Errorf("%s is a view: bqfake does not run views of views", path)
	}
	return t, nil
}

// scalarLocked is (SELECT col FROM path WHERE eq1 = lit1 AND eq2 = lit2):
// nil when no row matches; more than one is BigQuery's error.
func (s *Server) scalarLocked(project, path, col, eq1, lit1, eq2, lit2 string) (*string, error) {
	t, err := s.queryTableLocked(project, path)
	if err != nil {
		return nil, err
	}
	if err := hasColumns(t, col, eq1, eq2); err != nil {
		return nil, err
	}
	var out *string
	found := false
	for _, r := range t.snapshot() {
		if r[eq1] != lit1 || r[eq2] != lit2 {
			continue
		}
		if found {
			return nil, fmt.Errorf("Scalar subquery produced more than one element")
		}
		found = true
		switch v := r[col].(type) {
		case nil:
		case string:
			out = &v
		default:
			return nil, fmt.Errorf("column %s of %s is not a STRING", col, path)
		}
	}
	return out, nil
}

// hasColumns checks that t has every column of cols.
func hasColumns(t *table, cols ...string) error {
	have := map[string]bool{}
	for _, f := range t.fields() {
		have[f.Name] = true
	}
	for _, c := range cols {
		if !have[c] {
			return fmt.Errorf("Unrecognized name: %s in %s", c, t.meta.Id)
		}
	}
	return nil
}

// literal is the text of the body of a single-quoted GoogleSQL string
// literal the view pattern matched.
func literal(body string) (string, error) {
	text, _, err := unquote("'" + body + "'")
	return text, err
}
