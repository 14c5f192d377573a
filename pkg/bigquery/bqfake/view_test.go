package bqfake_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
)

// TestViews: a view is created and updated through the real client with
// its GoogleSQL query stored for tests to read, and every view rule
// BigQuery enforces fails here too.
func TestViews(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "users", &bigquery.TableMetadata{Schema: cdcSchema})
	const q1 = "SELECT * FROM `proj.ds.users` WHERE id > 0"
	view := e.bq.Dataset(dsID).Table("users_latest")
	if err := view.Create(e.ctx, &bigquery.TableMetadata{ViewQuery: q1, Labels: map[string]string{"strait_columns": "2"}}); err != nil {
		t.Fatalf("create view: %v", err)
	}
	md, err := view.Metadata(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"type": md.Type, "query": md.ViewQuery, "legacy": md.UseLegacySQL, "labels": md.Labels, "schema": len(md.Schema)}
	want := map[string]any{"type": bigquery.ViewTable, "query": q1, "legacy": false, "labels": map[string]string{"strait_columns": "2"}, "schema": 0}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("view (-got +want):\n%s", diff)
	}
	if _, err := e.srv.Rows(project, dsID, "users_latest"); err == nil || !strings.Contains(err.Error(), "is a view") {
		t.Errorf("Rows of a view: err = %v, want one saying it is a view", err)
	}

	t.Run("update query", func(t *testing.T) {
		const q2 = "SELECT * FROM `proj.ds.users`"
		upd := bigquery.TableMetadataToUpdate{ViewQuery: q2, UseLegacySQL: false}
		upd.SetLabel("strait_columns", "3")
		got, err := view.Update(e.ctx, upd, md.ETag)
		if err != nil {
			t.Fatalf("update view: %v", err)
		}
		if got.ViewQuery != q2 || got.UseLegacySQL || got.Labels["strait_columns"] != "3" || got.ETag == md.ETag {
			t.Errorf("after update: query %q legacy %v labels %v etag %q (was %q)", got.ViewQuery, got.UseLegacySQL, got.Labels, got.ETag, md.ETag)
		}
		srvMeta, err := e.srv.Table(project, dsID, "users_latest")
		if err != nil {
			t.Fatal(err)
		}
		if srvMeta.View == nil || srvMeta.View.Query != q2 {
			t.Errorf("Server.Table view = %+v, want the query %q", srvMeta.View, q2)
		}
	})

	// post sends a raw tables.insert, for what the Go client does not send.
	post := func(t *testing.T, body string) int {
		t.Helper()
		resp, err := http.Post(e.srv.RESTURL()+"projects/proj/datasets/ds/tables", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	t.Run("legacy SQL by default", func(t *testing.T) {
		if code := post(t, `{"tableReference":{"tableId":"legacy"},"view":{"query":"SELECT id FROM [proj:ds.users]"}}`); code != http.StatusOK {
			t.Fatalf("insert: HTTP %d", code)
		}
		md, err := e.bq.Dataset(dsID).Table("legacy").Metadata(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !md.UseLegacySQL {
			t.Error("a view inserted without useLegacySql is not legacy SQL")
		}
	})

	t.Run("errors", func(t *testing.T) {
		ds := e.bq.Dataset(dsID)
		tests := []struct {
			name string
			call func() error
			want int
			why  string // in the error
		}{
			{"missing table", func() error {
				return ds.Table("v1").Create(e.ctx, &bigquery.TableMetadata{ViewQuery: "SELECT * FROM `proj.ds.nope`"})
			}, http.StatusNotFound, "Not found: Table proj:ds.nope"},
			{"missing dataset", func() error {
				return ds.Table("v2").Create(e.ctx, &bigquery.TableMetadata{ViewQuery: "SELECT * FROM `proj.nope.users`"})
			}, http.StatusNotFound, "Not found: Dataset proj:nope"},
			{"GoogleSQL view with a legacy table reference", func() error {
				return ds.Table("v3").Create(e.ctx, &bigquery.TableMetadata{ViewQuery: "SELECT * FROM [proj:ds.users]"})
			}, http.StatusBadRequest, "legacy SQL table reference"},
			{"legacy SQL view with a backtick-quoted table", func() error {
				return ds.Table("v4").Create(e.ctx, &bigquery.TableMetadata{ViewQuery: q1, UseLegacySQL: true})
			}, http.StatusBadRequest, "backtick-quoted names are GoogleSQL"},
			{"update to a missing table", func() error {
				_, err := view.Update(e.ctx, bigquery.TableMetadataToUpdate{ViewQuery: "SELECT * FROM `proj.ds.gone`", UseLegacySQL: false}, "")
				return err
			}, http.StatusNotFound, "Not found: Table proj:ds.gone"},
			{"update a view's schema", func() error {
				_, err := view.Update(e.ctx, bigquery.TableMetadataToUpdate{Schema: cdcSchema}, "")
				return err
			}, http.StatusBadRequest, "Schema field"},
			{"turn a table into a view", func() error {
				_, err := ds.Table("users").Update(e.ctx, bigquery.TableMetadataToUpdate{ViewQuery: q1, UseLegacySQL: false}, "")
				return err
			}, http.StatusBadRequest, "cannot be turned into a view"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				wantHTTP(t, err, tt.want)
				if !strings.Contains(err.Error(), tt.why) {
					t.Errorf("error %v, want it to say %q", err, tt.why)
				}
			})
		}
		if code := post(t, `{"tableReference":{"tableId":"v5"},"view":{"query":"SELECT 1","useLegacySql":false},"schema":{"fields":[{"name":"a","type":"INTEGER"}]}}`); code != http.StatusBadRequest {
			t.Errorf("view with a schema: HTTP %d, want 400", code)
		}
	})

	t.Run("no writes to a view", func(t *testing.T) {
		w := e.newWriter(t, "users_latest", cdcSchema, false)
		_, err := w.append(e.ctx, t, map[string]any{"id": int64(1)})
		wantCode(t, err, codes.InvalidArgument)
	})

	t.Run("appends without CDC to a table without primary key", func(t *testing.T) {
		w := e.newWriter(t, "users", cdcSchema, false)
		for _, name := range []string{"a", "b", "a"} {
			if _, err := w.append(e.ctx, t, map[string]any{"id": int64(1), "name": name}); err != nil {
				t.Fatal(err)
			}
		}
		want := []map[string]any{{"id": int64(1), "name": "a"}, {"id": int64(1), "name": "b"}, {"id": int64(1), "name": "a"}}
		if diff := cmp.Diff(e.rows(t, "users"), want); diff != "" {
			t.Errorf("rows (-got +want):\n%s", diff)
		}
	})
}

// TestViewRowsRunsOnlyChangelogViews: ViewRows runs strait's changelog
// views only; the query of any other view is refused, not guessed at.
func TestViewRowsRunsOnlyChangelogViews(t *testing.T) {
	e := newEnv(t)
	e.createTable(t, "users", &bigquery.TableMetadata{Schema: cdcSchema})
	for name, q := range map[string]string{
		"filtered": "SELECT * FROM `proj.ds.users` WHERE id > 0",
		"no_ops":   "SELECT * EXCEPT (r)\nFROM (\n  SELECT *, ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY seq DESC, at DESC) AS r\n  FROM `proj.ds.users`\n)\nWHERE r = 1 AND op != 'd'",
	} {
		if err := e.bq.Dataset(dsID).Table(name).Create(e.ctx, &bigquery.TableMetadata{ViewQuery: q}); err != nil {
			t.Fatalf("create view %s: %v", name, err)
		}
		if _, err := e.srv.ViewRows(project, dsID, name); err == nil {
			t.Errorf("ViewRows of %s: no error, want a refusal", name)
		}
	}
	if _, err := e.srv.ViewRows(project, dsID, "users"); err == nil || !strings.Contains(err.Error(), "not a view") {
		t.Errorf("ViewRows of a table: err = %v, want one saying it is not a view", err)
	}
}
