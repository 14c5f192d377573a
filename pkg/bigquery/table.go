package bigquery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

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
// capture"; "Introduction to clustered tables") and for any table ("Quotas
// and limits": 10,000 columns).
const (
	maxKeyColumns     = 16
	maxCDCColumns     = 2000
	maxColumns        = 10000
	maxClusterColumns = 4
)

// dataset is the writer's side of the REST API: the dataset, its tables'
// metadata and schemas, and append mode's latest-row views. It holds no
// state of its own: what it learns of a table goes into the tableState it
// is given, which the caller guards (table.mu).
type dataset struct {
	cfg *Config
	log *slog.Logger
	bq  *bigquery.Client

	wmMu    sync.Mutex
	wmReady bool // the watermark table exists (watermark.go)
}

// tableState is what the writer knows of one BigQuery table.
type tableState struct {
	id     string
	known  bool // schema, key and etag were read from (or written to) BigQuery
	schema bigquery.Schema
	key    []string
	etag   string
	// appendMode: the table is a changelog (append mode), written without
	// the CDC pseudo-columns.
	appendMode bool
	// view, asOf and viewColumns are the queries and the table's column
	// count the latest-row view and the as-of view were last confirmed
	// with (append mode).
	view, asOf  string
	viewColumns int
}

// ensureTable makes the table ready for rows of plan p with primary key
// key: it reads it or creates it on first sight, and adds the columns p
// has and the table lacks (BigQuery allows adding NULLABLE columns only).
// It returns whether the schema changed. A changed type, a changed key in
// upsert mode, or a table of the other mode is a permanent error that
// says what to do.
func (d *dataset) ensureTable(ctx context.Context, t *tableState, p *valuePlan, key []string) (bool, error) {
	ref := d.bq.Dataset(d.cfg.Dataset).Table(t.id)
	if !t.known {
		md, err := ref.Metadata(ctx)
		if isHTTP(err, http.StatusNotFound) {
			md, err = d.createTable(ctx, ref, p, key, t.appendMode)
		}
		if err != nil {
			return false, fmt.Errorf("table %s: %w", t.id, err)
		}
		if md.Type != bigquery.RegularTable {
			return false, permanent(fmt.Errorf("table %s is a %s in BigQuery (the latest-row view of another changelog?): name the tables differently with bigquery.table_template or bigquery.view_suffix", t.id, md.Type))
		}
		t.load(md)
	}
	switch {
	case t.appendMode && len(t.key) > 0:
		return false, permanent(fmt.Errorf("table %s has a primary key (%s), so it holds upserts, but its changes are now appended (append mode): write the changelog elsewhere (another bigquery.dataset or bigquery.table_template), or drop the table and replay the topic from the beginning (consumer reset)",
			t.id, strings.Join(t.key, ", ")))
	case !t.appendMode && !equalFold(t.key, key):
		return false, permanent(fmt.Errorf("table %s has primary key (%s) but the source key is now (%s): drop the BigQuery table and replay the topic from the beginning (consumer reset), or name the new version differently with bigquery.table_template",
			t.id, strings.Join(t.key, ", "), strings.Join(key, ", ")))
	}
	var add bigquery.Schema
	for _, c := range p.columns {
		have := findColumn(t.schema, c.name)
		if have == nil {
			add = append(add, c.field())
			continue
		}
		if diff := sameType(have, c.field()); diff != "" {
			return false, permanent(fmt.Errorf("table %s: %s; BigQuery cannot change a column's type in place: drop the table and replay the topic from the beginning (consumer reset), or add a new column in the source instead of changing the type", t.id, diff))
		}
	}
	if len(add) == 0 {
		return false, nil
	}
	if limit, what := columnLimit(t.appendMode); len(t.schema)+len(add) > limit {
		return false, permanent(fmt.Errorf("table %s would have %d columns, more than the %d BigQuery allows for %s", t.id, len(t.schema)+len(add), limit, what))
	}
	schema := append(append(bigquery.Schema{}, t.schema...), add...)
	md, err := ref.Update(ctx, bigquery.TableMetadataToUpdate{Schema: schema}, t.etag)
	if isHTTP(err, http.StatusPreconditionFailed) {
		t.known = false // changed meanwhile (another consumer): read it again
		return d.ensureTable(ctx, t, p, key)
	}
	if err != nil {
		return false, fmt.Errorf("table %s: add columns: %w", t.id, err)
	}
	d.log.Info("table columns added", "table", t.id, "columns", names(add))
	t.load(md)
	return true, nil
}

// columnLimit is the most columns a table of the mode may have.
func columnLimit(appendMode bool) (int, string) {
	if appendMode {
		return maxColumns, "a table"
	}
	return maxCDCColumns, "CDC tables (bigquery.mode: append has no such limit)"
}

// createTable creates the table of plan p. In upsert mode it gets
// PRIMARY KEY (key) NOT ENFORCED and max_staleness; in append mode it is a
// changelog without a primary key. Both are clustered on the key, which
// serves upserts and the latest-row view alike.
func (d *dataset) createTable(ctx context.Context, ref *bigquery.Table, p *valuePlan, key []string, appendMode bool) (*bigquery.TableMetadata, error) {
	if !appendMode && len(key) == 0 {
		return nil, permanent(fmt.Errorf("source table %s.%s has no primary key: upsert mode needs one", p.database, p.table))
	}
	if !appendMode && len(key) > maxKeyColumns {
		return nil, permanent(fmt.Errorf("source table %s.%s has %d primary-key columns, more than the %d BigQuery allows for CDC tables (bigquery.mode: append has no such limit)", p.database, p.table, len(key), maxKeyColumns))
	}
	var schema bigquery.Schema
	for _, c := range p.columns {
		schema = append(schema, c.field())
	}
	schema = append(schema, metadataColumns()...)
	if limit, what := columnLimit(appendMode); len(schema) > limit {
		return nil, permanent(fmt.Errorf("source table %s.%s has %d columns, more than the %d BigQuery allows for %s", p.database, p.table, len(schema), limit, what))
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
	md := &bigquery.TableMetadata{Schema: schema}
	if appendMode {
		md.Description = fmt.Sprintf("strait: changelog of %s.%s, every change appended as a row", p.database, p.table)
	} else {
		md.Description = fmt.Sprintf("strait: changes of %s.%s, applied as upserts", p.database, p.table)
		md.TableConstraints = &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: key}}
		if d.cfg.MaxStaleness > 0 {
			md.MaxStaleness = bigquery.IntervalValueFromDuration(d.cfg.MaxStaleness)
		}
	}
	if len(cluster) > 0 {
		md.Clustering = &bigquery.Clustering{Fields: cluster}
	}
	err := ref.Create(ctx, md)
	if isHTTP(err, http.StatusConflict) { // another consumer was first
		return ref.Metadata(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if appendMode {
		d.log.Info("changelog table created", "table", ref.TableID, "clustering", cluster)
	} else {
		d.log.Info("table created", "table", ref.TableID, "primary_key", key, "clustering", cluster)
	}
	return ref.Metadata(ctx)
}

// viewColumnsLabel is the label of a latest-row view that records how many
// columns its changelog had when the view was last defined.
const viewColumnsLabel = "strait_columns"

// ensureView makes the views of changelog t (append mode, a source table
// with primary key key): the latest-row view and, with a watermark table,
// the view as of the watermark. It creates each, or updates it when its
// query differs (a new key) or the changelog gained columns since it was
// defined. BigQuery keeps a view's schema from when the view was defined,
// so re-defining it is what brings new columns into the view's schema;
// the columns it was defined with are in the label strait_columns.
func (d *dataset) ensureView(ctx context.Context, t *tableState, key []string) error {
	query := viewQuery(d.cfg.Project, d.cfg.Dataset, t.id, key)
	asOf := ""
	if d.cfg.WatermarkTable != "" {
		asOf = asOfQuery(d.cfg, t.id, key)
	}
	if t.view == query && t.asOf == asOf && t.viewColumns == len(t.schema) {
		return nil
	}
	latest := viewDef{name: t.id + d.cfg.ViewSuffix, query: query, what: "latest-row view", key: "bigquery.view_suffix",
		desc: fmt.Sprintf("strait: the latest row per primary key (%s) of changelog %s, by %s; keys whose latest change is a delete are left out",
			strings.Join(key, ", "), t.id, ColSequence)}
	if err := d.defineView(ctx, t, latest); err != nil {
		return err
	}
	if asOf != "" {
		// The view names the watermark table: BigQuery wants it to exist.
		if err := d.ensureWatermarkTable(ctx); err != nil {
			return err
		}
		v := viewDef{name: t.id + d.cfg.AsOfSuffix, query: asOf, what: "as-of-watermark view", key: "bigquery.as_of_suffix",
			desc: fmt.Sprintf("strait: the latest row per primary key (%s) of changelog %s among the changes below the watermark of group %s in %s; views of one group read together show a state the source had",
				strings.Join(key, ", "), t.id, d.cfg.Group, d.cfg.WatermarkTable)}
		if err := d.defineView(ctx, t, v); err != nil {
			return err
		}
	}
	t.view, t.asOf, t.viewColumns = query, asOf, len(t.schema)
	return nil
}

// viewDef is a view of a changelog: its name, query and description, what
// it is and the key naming its suffix, for errors.
type viewDef struct {
	name, query, desc, what, key string
}

// defineView creates view v of changelog t, or updates it when its query
// differs or t gained columns since it was defined.
func (d *dataset) defineView(ctx context.Context, t *tableState, v viewDef) error {
	ref := d.bq.Dataset(d.cfg.Dataset).Table(v.name)
	cols := strconv.Itoa(len(t.schema))
	md, err := ref.Metadata(ctx)
	if isHTTP(err, http.StatusNotFound) {
		err = ref.Create(ctx, &bigquery.TableMetadata{ViewQuery: v.query, Description: v.desc, Labels: map[string]string{viewColumnsLabel: cols}})
		if err == nil {
			d.log.Info("view created", "view", v.name, "table", t.id, "primary_key", t.key)
			return nil
		}
		if isHTTP(err, http.StatusConflict) { // another consumer was first
			md, err = ref.Metadata(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("view %s of %s: %w", v.name, t.id, err)
	}
	if md.Type != bigquery.ViewTable {
		return permanent(fmt.Errorf("%s, the name of the %s of %s, is taken by a %s: rename it or choose another %s", v.name, v.what, t.id, md.Type, v.key))
	}
	if n, _ := strconv.Atoi(md.Labels[viewColumnsLabel]); md.ViewQuery != v.query || md.UseLegacySQL || n < len(t.schema) {
		upd := bigquery.TableMetadataToUpdate{ViewQuery: v.query, UseLegacySQL: false, Description: v.desc}
		upd.SetLabel(viewColumnsLabel, cols)
		_, err := ref.Update(ctx, upd, md.ETag)
		if isHTTP(err, http.StatusPreconditionFailed) { // changed meanwhile: look again
			return d.defineView(ctx, t, v)
		}
		if err != nil {
			return fmt.Errorf("view %s of %s: update: %w", v.name, t.id, err)
		}
		d.log.Info("view updated", "view", v.name, "table", t.id, "primary_key", t.key, "columns", len(t.schema))
	}
	return nil
}

// viewQuery is the standard-SQL query of the latest-row view of a
// changelog: per primary key, the row of the newest change, that is the
// highest _strait_sequence (the writer stores it in canonical form, whose
// text order is sequence order; ties, which are redeliveries of one
// change, go to the later ingestion), unless that change is a delete.
func viewQuery(project, dataset, table string, key []string) string {
	part := make([]string, len(key))
	for i, k := range key {
		part[i] = quoteIdent(k)
	}
	return fmt.Sprintf(`SELECT * EXCEPT (%[1]s)
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY %[2]s ORDER BY %[3]s DESC, %[4]s DESC) AS %[1]s
  FROM %[5]s
)
WHERE %[1]s = 1 AND %[6]s != 'd'`,
		colRank, strings.Join(part, ", "), ColSequence, ColIngestedAt,
		quoteIdent(project+"."+dataset+"."+table), ColOp)
}

// quoteIdent quotes a GoogleSQL identifier or path in backticks.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(s) + "`"
}

func (t *tableState) load(md *bigquery.TableMetadata) {
	t.known, t.schema, t.etag, t.key = true, shareMetadataColumns(md.Schema), md.ETag, nil
	if tc := md.TableConstraints; tc != nil && tc.PrimaryKey != nil {
		t.key = tc.PrimaryKey.Columns
	}
}

// ensure creates the dataset when it does not exist (Writer.EnsureDataset).
func (d *dataset) ensure(ctx context.Context) error {
	ds := d.bq.Dataset(d.cfg.Dataset)
	_, err := ds.Metadata(ctx)
	if isHTTP(err, http.StatusNotFound) {
		err = ds.Create(ctx, &bigquery.DatasetMetadata{Location: d.cfg.Location})
		if isHTTP(err, http.StatusConflict) {
			err = nil
		}
		if err == nil {
			d.log.Info("dataset created", "dataset", d.cfg.Dataset, "location", d.cfg.Location)
		}
	}
	if err != nil {
		return fmt.Errorf("dataset %s.%s: %w", d.cfg.Project, d.cfg.Dataset, err)
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

// metadataFields are the metadata columns as strait creates them, one
// copy for every table: a table's schema, as the writer holds it for the
// table's life, refers to these instead of its own equal copies (with
// their descriptions, over a kilobyte a table; issue 18).
var metadataFields = metadataColumns()

// shareMetadataColumns replaces in s every column equal to one of
// metadataFields by it, and returns s. Columns are never changed in place.
func shareMetadataColumns(s bigquery.Schema) bigquery.Schema {
	for i, f := range s {
		for _, m := range metadataFields {
			if f.Name == m.Name && reflect.DeepEqual(f, m) {
				s[i] = m
			}
		}
	}
	return s
}

func names(s bigquery.Schema) []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Name
	}
	return out
}
