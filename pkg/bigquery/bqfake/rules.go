package bqfake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"cloud.google.com/go/bigquery"
	bq "google.golang.org/api/bigquery/v2"
)

// BigQuery's documented limits that the server enforces.
const (
	// "Storage Write API quotas": AppendRows request size, 10 MB.
	maxAppendBytes = 10 << 20
	// "Change data capture": composite primary keys of up to 16 columns.
	maxPrimaryKeyColumns = 16
	// "Change data capture" limitations: at most 2,000 top-level columns
	// in a table written with _CHANGE_TYPE.
	maxCDCColumns = 2000
	// "Quotas and limits", tables: 10,000 columns.
	maxColumns = 10000
	// "Specifying nested and repeated columns": 15 levels of nesting.
	maxNesting = 15
	// "Specifying a schema", column names: at most 300 characters.
	maxColumnName = 300
	// "Introduction to clustered tables": up to four clustering columns.
	maxClusteringFields = 4
)

// The CDC pseudo-columns ("Change data capture").
const (
	colChangeType = "_CHANGE_TYPE"
	colChangeSeq  = "_CHANGE_SEQUENCE_NUMBER"
)

// normType maps the REST API's type names to the standard SQL ones.
func normType(t string) string {
	switch t = strings.ToUpper(t); t {
	case "INTEGER":
		return "INT64"
	case "FLOAT":
		return "FLOAT64"
	case "BOOLEAN":
		return "BOOL"
	case "RECORD":
		return "STRUCT"
	}
	return t
}

var knownTypes = map[string]bool{
	"STRING": true, "BYTES": true, "INT64": true, "FLOAT64": true, "NUMERIC": true,
	"BIGNUMERIC": true, "BOOL": true, "TIMESTAMP": true, "DATE": true, "TIME": true,
	"DATETIME": true, "GEOGRAPHY": true, "JSON": true, "STRUCT": true,
}

// clusterTypes are the types a clustering column may have.
var clusterTypes = map[string]bool{
	"BIGNUMERIC": true, "BOOL": true, "DATE": true, "DATETIME": true, "GEOGRAPHY": true,
	"INT64": true, "NUMERIC": true, "STRING": true, "TIMESTAMP": true,
}

func mode(f *bq.TableFieldSchema) string {
	if f.Mode == "" {
		return "NULLABLE"
	}
	return strings.ToUpper(f.Mode)
}

func isStruct(f *bq.TableFieldSchema) bool { return normType(f.Type) == "STRUCT" }

// findField finds a column by name; BigQuery column names are
// case-insensitive.
func findField(fs []*bq.TableFieldSchema, name string) *bq.TableFieldSchema {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

// validateTable checks a table resource on insert and update.
func validateTable(name string, t *bq.Table) *apiError {
	if t.View != nil && t.View.Query != "" {
		if t.Schema != nil && len(t.Schema.Fields) > 0 {
			return errInvalid("Schema field shouldn't be used as input with a view (table %s)", name)
		}
		return nil
	}
	var fs []*bq.TableFieldSchema
	if t.Schema != nil {
		fs = t.Schema.Fields
	}
	n, aerr := validateFields("", fs, 1)
	if aerr != nil {
		return aerr
	}
	if n > maxColumns {
		return errInvalid("Table %s has %d columns, more than the limit of %d", name, n, maxColumns)
	}
	if tc := t.TableConstraints; tc != nil && tc.PrimaryKey != nil {
		if aerr := validatePrimaryKey(fs, tc.PrimaryKey.Columns); aerr != nil {
			return aerr
		}
	}
	if c := t.Clustering; c != nil {
		if len(c.Fields) > maxClusteringFields {
			return errInvalid("Too many clustering fields: %d, only %d are allowed", len(c.Fields), maxClusteringFields)
		}
		for _, name := range c.Fields {
			f := findField(fs, name)
			switch {
			case f == nil:
				return errInvalid("The field specified for clustering cannot be found in the schema: %s", name)
			case mode(f) == "REPEATED" || !clusterTypes[normType(f.Type)]:
				return errInvalid("Field %s is of type %s %s which is not supported for clustering", f.Name, mode(f), normType(f.Type))
			}
		}
	}
	if t.MaxStaleness != "" {
		if _, err := bigquery.ParseInterval(t.MaxStaleness); err != nil {
			return errInvalid("Invalid max_staleness %q: %v", t.MaxStaleness, err)
		}
	}
	return nil
}

// defaultLegacySQL applies the documented default of view.useLegacySql,
// true, when the resource (raw, its JSON) leaves it out, and makes it
// explicit in responses, as BigQuery's are.
func defaultLegacySQL(v *bq.ViewDefinition, raw []byte) {
	var in struct {
		View struct {
			UseLegacySQL *bool `json:"useLegacySql"`
		} `json:"view"`
	}
	if json.Unmarshal(raw, &in) == nil && in.View.UseLegacySQL == nil {
		v.UseLegacySql = true
	}
	v.ForceSendFields = append(v.ForceSendFields, "UseLegacySql")
}

// quotedPath is a backtick-quoted GoogleSQL path; legacySQLTable is a legacy
// SQL table reference, [project:dataset.table].
var (
	quotedPath     = regexp.MustCompile("`([^`]+)`")
	legacySQLTable = regexp.MustCompile(`\[[^\]]+:[^\]]+\]`)
)

// validateViewLocked checks a view definition the way BigQuery checks its
// query on tables.insert and tables.update ("Create logical views"): the
// query must parse in its dialect and the tables it names must exist in
// the view's location. bqfake runs no SQL: it checks the dialect by its
// table references (backtick-quoted paths are GoogleSQL, [p:d.t] legacy
// SQL) and the existence of every backtick-quoted project.dataset.table.
// catalog.mu is held.
func (s *restService) validateViewLocked(location string, v *bq.ViewDefinition) *apiError {
	switch {
	case v.UseLegacySql && strings.Contains(v.Query, "`"):
		return errInvalidQuery("Invalid view query in legacy SQL: backtick-quoted names are GoogleSQL; set view.useLegacySql to false")
	case !v.UseLegacySql && legacySQLTable.MatchString(v.Query):
		return errInvalidQuery("Invalid view query in GoogleSQL: %s is a legacy SQL table reference; quote it as `project.dataset.table`", legacySQLTable.FindString(v.Query))
	}
	var read [][]*bq.TableFieldSchema // the columns of the tables the query names
	for _, m := range quotedPath.FindAllStringSubmatch(v.Query, -1) {
		parts := strings.Split(m[1], ".")
		if len(parts) < 3 {
			continue // a column, an alias, or dataset.table: not checked
		}
		p, ds, tbl := strings.Join(parts[:len(parts)-2], "."), parts[len(parts)-2], parts[len(parts)-1]
		d := s.cat.datasets[datasetKey{p, ds}]
		if d == nil || d.meta.Location != location {
			return errNotFound("Not found: Dataset %s:%s was not found in location %s", p, ds, location)
		}
		if d.tables[tbl] == nil {
			return errNotFound("Not found: Table %s was not found in location %s", tableName(p, ds, tbl), location)
		}
		read = append(read, d.tables[tbl].fields())
	}
	return checkPartitions(v.Query, read)
}

func errInvalidQuery(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "invalidQuery", fmt.Sprintf(format, args...)}
}

// validateFields checks one level of a schema and returns how many columns
// it holds, nested ones included.
func validateFields(path string, fs []*bq.TableFieldSchema, depth int) (int, *apiError) {
	if depth > maxNesting {
		return 0, errInvalid("Field %s is nested deeper than %d levels", path, maxNesting)
	}
	seen := make(map[string]bool)
	n := 0
	for _, f := range fs {
		full := path + f.Name
		upper := strings.ToUpper(f.Name)
		switch {
		case f.Name == "":
			return 0, errInvalid("Empty field name in %s", strings.TrimSuffix(path, "."))
		case len([]rune(f.Name)) > maxColumnName:
			return 0, errInvalid("Field name %s is longer than %d characters", full, maxColumnName)
		case seen[upper]:
			return 0, errInvalid("Duplicate column name %s (names are case-insensitive)", full)
		case !knownTypes[normType(f.Type)]:
			return 0, errInvalid("Field %s has unsupported type %q", full, f.Type)
		}
		if p := reservedPrefix(f.Name); p != "" {
			return 0, errInvalid("Invalid field name %s: the prefix %s is reserved", full, p)
		}
		switch mode(f) {
		case "NULLABLE", "REQUIRED", "REPEATED":
		default:
			return 0, errInvalid("Field %s has invalid mode %q", full, f.Mode)
		}
		seen[upper] = true
		n++
		if isStruct(f) {
			if len(f.Fields) == 0 {
				return 0, errInvalid("Field %s is type RECORD but has no schema", full)
			}
			m, aerr := validateFields(full+".", f.Fields, depth+1)
			if aerr != nil {
				return 0, aerr
			}
			n += m
		} else if len(f.Fields) > 0 {
			return 0, errInvalid("Field %s has subfields but is not of type RECORD", full)
		}
		t := normType(f.Type)
		if f.MaxLength != 0 && t != "STRING" && t != "BYTES" {
			return 0, errInvalid("Field %s: max length is only allowed for STRING and BYTES", full)
		}
	}
	return n, nil
}

func validatePrimaryKey(fs []*bq.TableFieldSchema, cols []string) *apiError {
	if len(cols) == 0 {
		return errInvalid("A primary key needs at least one column")
	}
	if len(cols) > maxPrimaryKeyColumns {
		return errInvalid("A primary key can have at most %d columns, got %d", maxPrimaryKeyColumns, len(cols))
	}
	seen := make(map[string]bool)
	for _, c := range cols {
		f := findField(fs, c)
		switch {
		case f == nil:
			return errInvalid("Primary key column %s is not in the table schema", c)
		case seen[strings.ToUpper(c)]:
			return errInvalid("Primary key column %s is listed twice", c)
		case mode(f) == "REPEATED" || !keyTypes[normType(f.Type)]:
			return errInvalid("Primary key column cannot be of type %s. Invalid column: %s", typeLabel(f), f.Name)
		}
		seen[strings.ToUpper(c)] = true
	}
	return nil
}

// validateSchemaChange enforces "Modifying table schemas": an update may
// add NULLABLE or REPEATED columns (top-level or inside a RECORD) and relax
// REQUIRED to NULLABLE; it may not remove, rename or retype a column,
// change any other mode, or add a REQUIRED column.
func validateSchemaChange(name, path string, old, new []*bq.TableFieldSchema) *apiError {
	prefix := "Provided Schema does not match Table " + name + "."
	for _, o := range old {
		full := path + o.Name
		n := findField(new, o.Name)
		switch {
		case n == nil:
			return errInvalid("%s Field %s is missing in new schema", prefix, full)
		case n.Name != o.Name:
			return errInvalid("%s Field %s cannot be renamed to %s", prefix, full, n.Name)
		case normType(n.Type) != normType(o.Type):
			return errInvalid("%s Field %s has changed type from %s to %s", prefix, full, normType(o.Type), normType(n.Type))
		case mode(n) != mode(o) && !(mode(o) == "REQUIRED" && mode(n) == "NULLABLE"):
			return errInvalid("%s Field %s has changed mode from %s to %s", prefix, full, mode(o), mode(n))
		}
		if isStruct(o) {
			if aerr := validateSchemaChange(name, full+".", o.Fields, n.Fields); aerr != nil {
				return aerr
			}
		}
	}
	for _, n := range new {
		if findField(old, n.Name) == nil && mode(n) == "REQUIRED" {
			return errInvalid("%s Cannot add required fields to an existing schema. (field: %s)", prefix, path+n.Name)
		}
	}
	return nil
}

// seqNum is a parsed _CHANGE_SEQUENCE_NUMBER.
type seqNum []uint64

// parseSeq parses the documented format: one to four sections of one to
// 16 hexadecimal digits (either case), separated by "/".
func parseSeq(s string) (seqNum, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 4 {
		return nil, fmt.Errorf("%s %q has %d sections, at most 4 are allowed", colChangeSeq, s, len(parts))
	}
	out := make(seqNum, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 64)
		if err != nil || len(p) > 16 {
			return nil, fmt.Errorf("%s %q: section %d must be 1 to 16 hexadecimal digits", colChangeSeq, s, i+1)
		}
		out[i] = v
	}
	return out, nil
}

// compare orders sequence numbers section by section by numeric value
// ("0A" equals "a"). When one is a prefix of the other, the one with fewer
// sections is lower ("A" < "A/0").
func (a seqNum) compare(b seqNum) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}
