package bqfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"time"

	bq "google.golang.org/api/bigquery/v2"
)

// apiError is an error in Google's JSON error format; the REST client turns
// it into a *googleapi.Error with the same code and reason.
type apiError struct {
	code   int
	reason string
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("bqfake: %d %s: %s", e.code, e.reason, e.msg) }

func errNotFound(format string, args ...any) *apiError {
	return &apiError{http.StatusNotFound, "notFound", fmt.Sprintf(format, args...)}
}

func errInvalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "invalid", fmt.Sprintf(format, args...)}
}

func errDuplicate(format string, args ...any) *apiError {
	return &apiError{http.StatusConflict, "duplicate", fmt.Sprintf(format, args...)}
}

var statusNames = map[int]string{
	http.StatusBadRequest:         "INVALID_ARGUMENT",
	http.StatusNotFound:           "NOT_FOUND",
	http.StatusConflict:           "ALREADY_EXISTS",
	http.StatusPreconditionFailed: "FAILED_PRECONDITION",
	http.StatusNotImplemented:     "UNIMPLEMENTED",
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"error": map[string]any{
		"code":    e.code,
		"message": e.msg,
		"status":  statusNames[e.code],
		"errors":  []map[string]string{{"domain": "global", "reason": e.reason, "message": e.msg}},
	}}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.code)
	json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// restService is the REST API (BigQuery API v2): datasets, tables and
// views, their metadata and schema changes.
type restService struct {
	cat *catalog
}

// handler serves the subset of BigQuery API v2 that strait uses, at the
// paths the generated client (google.golang.org/api/bigquery/v2) builds
// under /bigquery/v2/.
func (s *restService) handler() http.Handler {
	const p = "/bigquery/v2/projects/{project}/datasets"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p, s.listDatasets)
	mux.HandleFunc("POST "+p, s.insertDataset)
	mux.HandleFunc("GET "+p+"/{dataset}", s.getDataset)
	mux.HandleFunc("PATCH "+p+"/{dataset}", s.updateDataset)
	mux.HandleFunc("PUT "+p+"/{dataset}", s.updateDataset)
	mux.HandleFunc("DELETE "+p+"/{dataset}", s.deleteDataset)
	mux.HandleFunc("GET "+p+"/{dataset}/tables", s.listTables)
	mux.HandleFunc("POST "+p+"/{dataset}/tables", s.insertTable)
	mux.HandleFunc("GET "+p+"/{dataset}/tables/{table}", s.getTable)
	mux.HandleFunc("PATCH "+p+"/{dataset}/tables/{table}", s.updateTable)
	mux.HandleFunc("PUT "+p+"/{dataset}/tables/{table}", s.updateTable)
	mux.HandleFunc("DELETE "+p+"/{dataset}/tables/{table}", s.deleteTable)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotImplemented, "notImplemented",
			fmt.Sprintf("bqfake does not implement %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// datasetID is the documented form of a dataset name: letters, digits and
// underscores, up to 1,024 characters.
var datasetID = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// tableID is a table name: up to 1,024 bytes of letters, marks, numbers,
// connectors, dashes and spaces.
var tableID = regexp.MustCompile(`^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd} ]+$`)

func decodeBody(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return errInvalid("read request: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errInvalid("Invalid JSON payload received: %v", err)
	}
	return nil
}

func (s *restService) insertDataset(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	var d bq.Dataset
	if aerr := decodeBody(r, &d); aerr != nil {
		writeError(w, aerr)
		return
	}
	if d.DatasetReference == nil || len(d.DatasetReference.DatasetId) > 1024 || !datasetID.MatchString(d.DatasetReference.DatasetId) {
		writeError(w, errInvalid("Invalid dataset ID in datasetReference"))
		return
	}
	if d.DatasetReference.ProjectId == "" {
		d.DatasetReference.ProjectId = project
	}
	key := datasetKey{project, d.DatasetReference.DatasetId}
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	if s.cat.datasets[key] != nil {
		writeError(w, errDuplicate("Already Exists: Dataset %s:%s", key.project, key.dataset))
		return
	}
	now := time.Now().UnixMilli()
	d.Kind = "bigquery#dataset"
	d.Id = key.project + ":" + key.dataset
	d.Etag = "bqfake-1"
	d.CreationTime, d.LastModifiedTime = now, now
	if d.Location == "" {
		d.Location = s.cat.cfg.location
	}
	s.cat.datasets[key] = &dataset{meta: &d, tables: make(map[string]*table)}
	writeJSON(w, &d)
}

func (s *restService) getDataset(w http.ResponseWriter, r *http.Request) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	d, aerr := s.datasetLocked(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, d.meta)
}

func (s *restService) datasetLocked(r *http.Request) (*dataset, *apiError) {
	key := datasetKey{r.PathValue("project"), r.PathValue("dataset")}
	d := s.cat.datasets[key]
	if d == nil {
		return nil, errNotFound("Not found: Dataset %s:%s", key.project, key.dataset)
	}
	return d, nil
}

// updateDataset serves datasets.patch and datasets.update for the fields a
// CDC sink touches: description, friendly name, labels.
func (s *restService) updateDataset(w http.ResponseWriter, r *http.Request) {
	var in bq.Dataset
	if aerr := decodeBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	d, aerr := s.datasetLocked(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if r.Method == http.MethodPut || in.Description != "" {
		d.meta.Description = in.Description
	}
	if r.Method == http.MethodPut || in.FriendlyName != "" {
		d.meta.FriendlyName = in.FriendlyName
	}
	if r.Method == http.MethodPut || in.Labels != nil {
		d.meta.Labels = in.Labels
	}
	d.meta.LastModifiedTime = time.Now().UnixMilli()
	writeJSON(w, d.meta)
}

func (s *restService) deleteDataset(w http.ResponseWriter, r *http.Request) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	d, aerr := s.datasetLocked(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if len(d.tables) > 0 && r.URL.Query().Get("deleteContents") != "true" {
		writeError(w, &apiError{http.StatusBadRequest, "resourceInUse",
			fmt.Sprintf("Dataset %s is still in use", d.meta.Id)})
		return
	}
	delete(s.cat.datasets, datasetKey{r.PathValue("project"), r.PathValue("dataset")})
	w.WriteHeader(http.StatusNoContent)
}

func (s *restService) listDatasets(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	out := &bq.DatasetList{Kind: "bigquery#datasetList"}
	for k, d := range s.cat.datasets {
		if k.project != project {
			continue
		}
		out.Datasets = append(out.Datasets, &bq.DatasetListDatasets{
			Kind: "bigquery#dataset", Id: d.meta.Id, DatasetReference: d.meta.DatasetReference,
			FriendlyName: d.meta.FriendlyName, Labels: d.meta.Labels, Location: d.meta.Location,
		})
	}
	sort.Slice(out.Datasets, func(i, j int) bool { return out.Datasets[i].Id < out.Datasets[j].Id })
	writeJSON(w, out)
}

func (s *restService) insertTable(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, errInvalid("read request: %v", err))
		return
	}
	var in bq.Table
	if err := json.Unmarshal(b, &in); err != nil {
		writeError(w, errInvalid("Invalid JSON payload received: %v", err))
		return
	}
	project, ds := r.PathValue("project"), r.PathValue("dataset")
	if in.TableReference == nil || len(in.TableReference.TableId) > 1024 || !tableID.MatchString(in.TableReference.TableId) {
		writeError(w, errInvalid("Invalid table ID in tableReference"))
		return
	}
	id := in.TableReference.TableId
	name := tableName(project, ds, id)
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	d, aerr := s.datasetLocked(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if d.tables[id] != nil {
		writeError(w, errDuplicate("Already Exists: Table %s", name))
		return
	}
	if aerr := validateTable(name, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	if in.View != nil && in.View.Query != "" {
		defaultLegacySQL(in.View, b)
		if aerr := s.validateViewLocked(d.meta.Location, in.View); aerr != nil {
			writeError(w, aerr)
			return
		}
	}
	in.Kind = "bigquery#table"
	in.Id = name
	in.TableReference = &bq.TableReference{ProjectId: project, DatasetId: ds, TableId: id}
	in.Location = d.meta.Location
	in.CreationTime = time.Now().UnixMilli()
	in.Type = "TABLE"
	if in.View != nil && in.View.Query != "" {
		in.Type = "VIEW"
		in.Schema = nil
	}
	t := &table{}
	t.setMeta(&in, true)
	s.cat.noteCreatedLocked(d, id, t)
	d.tables[id] = t
	writeJSON(w, t.resource())
}

func (s *restService) getTable(w http.ResponseWriter, r *http.Request) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	t, aerr := s.cat.lookupTableLocked(r.PathValue("project"), r.PathValue("dataset"), r.PathValue("table"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, t.resource())
}

// mutableTableFields are the table resource fields an update may set; the
// rest are output only or not modelled.
var mutableTableFields = []string{
	"clustering", "description", "expirationTime", "friendlyName", "labels",
	"maxStaleness", "schema", "tableConstraints", "view",
}

// updateTable serves tables.patch (PATCH: the fields present in the body
// replace the stored ones, JSON null clears one) and tables.update (PUT:
// the body replaces every mutable field). Schema changes follow
// validateSchemaChange; an If-Match etag must match.
func (s *restService) updateTable(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, errInvalid("read request: %v", err))
		return
	}
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(b, &patch); err != nil {
		writeError(w, errInvalid("Invalid JSON payload received: %v", err))
		return
	}
	project, ds, id := r.PathValue("project"), r.PathValue("dataset"), r.PathValue("table")
	name := tableName(project, ds, id)
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	t, aerr := s.cat.lookupTableLocked(project, ds, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != t.meta.Etag {
		writeError(w, &apiError{http.StatusPreconditionFailed, "conditionNotMet", "Precondition check failed."})
		return
	}

	cur, err := json.Marshal(t.meta)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "internalError", err.Error()})
		return
	}
	var merged map[string]json.RawMessage
	json.Unmarshal(cur, &merged)
	for _, f := range mutableTableFields {
		v, ok := patch[f]
		switch {
		case ok && string(v) != "null":
			merged[f] = v
		case ok || r.Method == http.MethodPut:
			delete(merged, f)
		}
	}
	mb, _ := json.Marshal(merged)
	next := new(bq.Table)
	if err := json.Unmarshal(mb, next); err != nil {
		writeError(w, errInvalid("Invalid table resource: %v", err))
		return
	}

	isView := t.meta.Type == "VIEW"
	if hasView := next.View != nil && next.View.Query != ""; hasView != isView {
		writeError(w, errInvalid("Table %s: a table cannot be turned into a view or back", name))
		return
	}
	if aerr := validateTable(name, next); aerr != nil {
		writeError(w, aerr)
		return
	}
	if isView {
		defaultLegacySQL(next.View, mb)
		d := s.cat.datasets[datasetKey{project, ds}]
		if aerr := s.validateViewLocked(d.meta.Location, next.View); aerr != nil {
			writeError(w, aerr)
			return
		}
	}
	var oldFields, newFields []*bq.TableFieldSchema
	if t.meta.Schema != nil {
		oldFields = t.meta.Schema.Fields
	}
	if next.Schema != nil {
		newFields = next.Schema.Fields
	}
	if !isView {
		if aerr := validateSchemaChange(name, "", oldFields, newFields); aerr != nil {
			writeError(w, aerr)
			return
		}
	}
	ob, _ := json.Marshal(oldFields)
	nb, _ := json.Marshal(newFields)
	s.cat.noteSchemaLocked(t, oldFields, newFields)
	t.setMeta(next, string(ob) != string(nb))
	writeJSON(w, t.resource())
}

func (s *restService) deleteTable(w http.ResponseWriter, r *http.Request) {
	project, ds, id := r.PathValue("project"), r.PathValue("dataset"), r.PathValue("table")
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	if _, aerr := s.cat.lookupTableLocked(project, ds, id); aerr != nil {
		writeError(w, aerr)
		return
	}
	d := s.cat.datasets[datasetKey{project, ds}]
	delete(d.tables, id)
	d.noteDropped(id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *restService) listTables(w http.ResponseWriter, r *http.Request) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	d, aerr := s.datasetLocked(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out := &bq.TableList{Kind: "bigquery#tableList"}
	for _, t := range d.tables {
		out.Tables = append(out.Tables, &bq.TableListTables{
			Kind: "bigquery#table", Id: t.meta.Id, TableReference: t.meta.TableReference,
			Type: t.meta.Type, FriendlyName: t.meta.FriendlyName, Labels: t.meta.Labels,
			Clustering: t.meta.Clustering, CreationTime: t.meta.CreationTime,
		})
	}
	sort.Slice(out.Tables, func(i, j int) bool { return out.Tables[i].Id < out.Tables[j].Id })
	out.TotalItems = int64(len(out.Tables))
	writeJSON(w, out)
}
