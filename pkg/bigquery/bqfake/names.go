package bqfake

import (
	"regexp"
	"strings"

	bq "google.golang.org/api/bigquery/v2"
)

// reservedPrefixes are the column-name prefixes BigQuery refuses, compared
// case-insensitively at every level of a schema (nested fields included):
//   - "Specify a schema", "Column names": a column name can't use the
//     prefixes _TABLE_, _FILE_, _PARTITION, _ROW_TIMESTAMP, __ROOT__ or
//     _COLIDENTIFIER.
//   - "Stream table updates with change data capture": _CHANGE_TYPE and
//     _CHANGE_SEQUENCE_NUMBER are pseudocolumns of the write, not columns;
//     a column named like them could not be told apart from them in a
//     writer schema, so the _CHANGE_ prefix is refused too.
var reservedPrefixes = []string{"_TABLE_", "_FILE_", "_PARTITION", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER", "_CHANGE_"}

// reservedPrefix returns the reserved prefix name starts with, or "".
func reservedPrefix(name string) string {
	upper := strings.ToUpper(name)
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(upper, p) {
			return p
		}
	}
	return ""
}

// keyTypes are the types a primary-key column may have: "INFORMATION_SCHEMA
// .TABLE_CONSTRAINTS view" says primary and foreign keys must be of type
// BIGNUMERIC, BOOLEAN, DATE, DATETIME, INT64, NUMERIC, STRING or
// TIMESTAMP. BigQuery refuses the others on create ("Primary key column
// cannot be of type FLOAT", "... of type BYTES"): FLOAT64, BYTES, TIME,
// GEOGRAPHY, JSON, INTERVAL, STRUCT and arrays.
var keyTypes = map[string]bool{
	"BIGNUMERIC": true, "BOOL": true, "DATE": true, "DATETIME": true,
	"INT64": true, "NUMERIC": true, "STRING": true, "TIMESTAMP": true,
}

// unpartitionable are the column types a window's PARTITION BY refuses:
// "Window function calls" says a partition_expression can't be a
// floating-point type or a non-groupable type, and "Data types",
// "Groupable data types", leaves out GEOGRAPHY and JSON. BigQuery answers
// a view partitioning by a FLOAT64 with "Partitioning by expressions of
// type DOUBLE is not allowed".
var unpartitionable = map[string]bool{"FLOAT64": true, "GEOGRAPHY": true, "JSON": true}

// partitionBy finds each window PARTITION BY list of a query: the text up to
// the window's ORDER BY, its closing parenthesis or a frame clause.
var partitionBy = regexp.MustCompile("(?is)\\bPARTITION\\s+BY\\s+(.+?)\\s*(?:\\bORDER\\s+BY\\b|\\)|\\bROWS\\b|\\bRANGE\\b)")

// partitionColumns returns the columns a query's windows partition by, as
// written (backticks removed); expressions other than column names are
// left out, bqfake runs no SQL.
func partitionColumns(query string) []string {
	var out []string
	for _, m := range partitionBy.FindAllStringSubmatch(query, -1) {
		for _, e := range strings.Split(m[1], ",") {
			e = strings.TrimSpace(e)
			if strings.HasPrefix(e, "`") && strings.HasSuffix(e, "`") && len(e) >= 2 {
				e = strings.NewReplacer("\\`", "`", `\\`, `\`).Replace(e[1 : len(e)-1])
			}
			if e != "" && !strings.ContainsAny(e, "()` ") {
				out = append(out, e)
			}
		}
	}
	return out
}

// checkPartitions refuses a view whose windows partition by a column of an
// unpartitionable type in one of the tables the query reads (fields).
func checkPartitions(query string, fields [][]*bq.TableFieldSchema) *apiError {
	for _, name := range partitionColumns(query) {
		for _, fs := range fields {
			f := findField(fs, name)
			if f == nil {
				continue
			}
			if t := normType(f.Type); unpartitionable[t] || mode(f) == "REPEATED" {
				return errInvalidQuery("Partitioning by expressions of type %s is not allowed (column %s)", typeLabel(f), f.Name)
			}
		}
	}
	return nil
}

func typeLabel(f *bq.TableFieldSchema) string {
	if mode(f) == "REPEATED" {
		return "ARRAY<" + normType(f.Type) + ">"
	}
	return normType(f.Type)
}
