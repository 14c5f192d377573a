package bigquery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
)

// clusterTypes are the column types BigQuery can cluster on ("Introduction
// to clustered tables").
var clusterTypes = map[bigquery.FieldType]bool{
	bigquery.BigNumericFieldType: true, bigquery.BooleanFieldType: true, bigquery.DateFieldType: true,
	bigquery.DateTimeFieldType: true, bigquery.GeographyFieldType: true, bigquery.IntegerFieldType: true,
	bigquery.NumericFieldType: true, bigquery.StringFieldType: true, bigquery.TimestampFieldType: true,
}

// BigQuery's limits for CDC tables ("Stream table updates with change data
// capture"; "Introduction to clustered tables").
const (
	maxKeyColumns     = 16
	maxCDCColumns     = 2000
	maxClusterColumns = 4
)

// tableState is what the writer knows of one BigQuery table.
type tableState struct {
	id     string
	known  bool // schema, key and etag were read from (or written to) BigQuery
	schema bigquery.Schema
	key    []string
	etag   string
}

// ensureTable makes the table ready for rows of plan p with primary key
// key: it reads it or creates it on first sight, and adds the columns p
// has and the table lacks (BigQuery allows adding NULLABLE columns only).
// It returns whether the schema changed. A changed type or key is a
// permanent error that says what to do.
func (w *Writer) ensureTable(ctx context.Context, t *tableState, p *valuePlan, key []string) (bool, error) {
	ref := w.bq.Dataset(w.cfg.Dataset).Table(t.id)
	if !t.known {
		md, err := ref.Metadata(ctx)
		if isHTTP(err, http.StatusNotFound) {
			md, err = w.createTable(ctx, ref, p, key)
		}
		if err != nil {
			return false, fmt.Errorf("table %s: %w", t.id, err)
		}
		t.load(md)
	}
	if !equalFold(t.key, key) {
		return false, permanent(fmt.Errorf("table %s has primary key (%s) but the source key is now (%s): drop the BigQuery table and replay the topic from the beginning (consumer reset), or name the new version differently with bigquery.table_template",
			t.id, strings.Join(t.key, ", "), strings.Join(key, ", ")))
	}
	var add bigquery.Schema
	for _, c := range p.columns {
		have := findColumn(t.schema, c.name)
		if have == nil {
			add = append(add, c.field)
			continue
		}
		if d := sameType(have, c.field); d != "" {
			return false, permanent(fmt.Errorf("table %s: %s; BigQuery cannot change a column's type in place: drop the table and replay the topic from the beginning (consumer reset), or add a new column in the source instead of changing the type", t.id, d))
		}
	}
	if len(add) == 0 {
		return false, nil
	}
	if len(t.schema)+len(add) > maxCDCColumns {
		return false, permanent(fmt.Errorf("table %s would have %d columns, more than the %d BigQuery allows for CDC tables", t.id, len(t.schema)+len(add), maxCDCColumns))
	}
	schema := append(append(bigquery.Schema{}, t.schema...), add...)
	md, err := ref.Update(ctx, bigquery.TableMetadataToUpdate{Schema: schema}, t.etag)
	if isHTTP(err, http.StatusPreconditionFailed) {
		t.known = false // changed meanwhile (another consumer): read it again
		return w.ensureTable(ctx, t, p, key)
	}
	if err != nil {
		return false, fmt.Errorf("table %s: add columns: %w", t.id, err)
	}
	w.log.Info("table columns added", "table", t.id, "columns", names(add))
	t.load(md)
	return true, nil
}

func (w *Writer) createTable(ctx context.Context, ref *bigquery.Table, p *valuePlan, key []string) (*bigquery.TableMetadata, error) {
	if len(key) == 0 {
		return nil, permanent(fmt.Errorf("source table %s.%s has no primary key: upsert mode needs one (append mode is not implemented yet)", p.database, p.table))
	}
	if len(key) > maxKeyColumns {
		return nil, permanent(fmt.Errorf("source table %s.%s has %d primary-key columns, more than the %d BigQuery allows for CDC tables", p.database, p.table, len(key), maxKeyColumns))
	}
	var schema bigquery.Schema
	for _, c := range p.columns {
		schema = append(schema, c.field)
	}
	schema = append(schema, metadataColumns()...)
	if len(schema) > maxCDCColumns {
		return nil, permanent(fmt.Errorf("source table %s.%s has %d columns, more than the %d BigQuery allows for CDC tables", p.database, p.table, len(schema), maxCDCColumns))
	}
	var cluster []string
	for _, k := range key {
		f := findColumn(schema, k)
		if f == nil {
			return nil, permanent(fmt.Errorf("primary-key column %s is not in the value schema of %s.%s", k, p.database, p.table))
		}
		if clusterTypes[f.Type] && len(cluster) < maxClusterColumns {
			cluster = append(cluster, f.Name)
		}
	}
	md := &bigquery.TableMetadata{
		Description:      fmt.Sprintf("strait: changes of %s.%s, applied as upserts", p.database, p.table),
		Schema:           schema,
		TableConstraints: &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: key}},
	}
	if len(cluster) > 0 {
		md.Clustering = &bigquery.Clustering{Fields: cluster}
	}
	if w.cfg.MaxStaleness > 0 {
		md.MaxStaleness = bigquery.IntervalValueFromDuration(w.cfg.MaxStaleness)
	}
	err := ref.Create(ctx, md)
	if isHTTP(err, http.StatusConflict) { // another consumer was first
		return ref.Metadata(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	w.log.Info("table created", "table", ref.TableID, "primary_key", key, "clustering", cluster)
	return ref.Metadata(ctx)
}

func (t *tableState) load(md *bigquery.TableMetadata) {
	t.known, t.schema, t.etag, t.key = true, md.Schema, md.ETag, nil
	if tc := md.TableConstraints; tc != nil && tc.PrimaryKey != nil {
		t.key = tc.PrimaryKey.Columns
	}
}

// ensureDataset creates the dataset when it does not exist.
func (w *Writer) ensureDataset(ctx context.Context) error {
	ds := w.bq.Dataset(w.cfg.Dataset)
	_, err := ds.Metadata(ctx)
	if isHTTP(err, http.StatusNotFound) {
		err = ds.Create(ctx, &bigquery.DatasetMetadata{Location: w.cfg.Location})
		if isHTTP(err, http.StatusConflict) {
			err = nil
		}
		if err == nil {
			w.log.Info("dataset created", "dataset", w.cfg.Dataset, "location", w.cfg.Location)
		}
	}
	if err != nil {
		return fmt.Errorf("dataset %s.%s: %w", w.cfg.Project, w.cfg.Dataset, err)
	}
	return nil
}

func isHTTP(err error, code int) bool {
	var g *googleapi.Error
	return errors.As(err, &g) && g.Code == code
}

func equalFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

func names(s bigquery.Schema) []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Name
	}
	return out
}
