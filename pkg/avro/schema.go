// Package avro turns cdc.Events into Avro records in the Debezium MySQL
// envelope shape, in the Confluent wire format (magic byte, 4-byte schema id,
// Avro binary): where Avro is encoded. The schemas come from the table
// (schema.go) and the envelope files under schemas/.
//
// Encoding is hand-written against a precompiled per-table plan (codec.go)
// rather than done through goavro's map[string]any interface: the producer
// benchmark measured goavro + map building at ~80 allocations and several
// microseconds a row, the plan at a few allocations. goavro remains the
// reference: tests decode every encoded record with it.
package avro

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// Schemas are the Avro schemas of one table version.
type Schemas struct {
	Key   string // record of the primary-key columns; "" for tables without a key
	Value string // the envelope
	// Fields are the Avro field names of the columns, in column order (names
	// are sanitized: Avro allows [A-Za-z_][A-Za-z0-9_]*).
	Fields []string
}

// Namespace returns the Avro namespace of a table's records:
// <prefix>.<database>.<table>, each part sanitized.
func Namespace(prefix string, t *cdc.Table) string {
	return Name(prefix) + "." + Name(t.Database) + "." + Name(t.Name)
}

// Name sanitizes s into an Avro name: invalid characters become '_', a
// leading digit gets a '_' prefix.
func Name(s string) string {
	var b strings.Builder
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		switch {
		case ok:
			b.WriteRune(r)
		case i == 0 && r >= '0' && r <= '9':
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// fieldNames sanitizes column names, keeping them unique.
func fieldNames(t *cdc.Table) []string {
	seen := map[string]bool{}
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		n := Name(c.Name)
		for seen[n] {
			n += "_"
		}
		seen[n] = true
		out[i] = n
	}
	return out
}

// avroType is the Avro type of a column's values (without the null union).
// The README's type-mapping table documents the same mapping.
func avroType(c *cdc.Column) (any, error) {
	switch c.Type {
	case cdc.TypeInt32:
		return "int", nil
	case cdc.TypeInt64:
		return "long", nil
	case cdc.TypeUint64:
		return map[string]any{"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0}, nil
	case cdc.TypeDecimal:
		return map[string]any{"type": "bytes", "logicalType": "decimal", "precision": c.Precision, "scale": c.Scale}, nil
	case cdc.TypeFloat32:
		return "float", nil
	case cdc.TypeFloat64:
		return "double", nil
	case cdc.TypeBool:
		return "boolean", nil
	case cdc.TypeBits:
		return map[string]any{"type": "bytes", "strait.type": "bits", "length": c.Length}, nil
	case cdc.TypeString:
		return "string", nil
	case cdc.TypeBytes:
		return "bytes", nil
	case cdc.TypeJSON:
		return map[string]any{"type": "string", "connect.name": "io.debezium.data.Json"}, nil
	case cdc.TypeDate:
		return map[string]any{"type": "int", "logicalType": "date"}, nil
	case cdc.TypeTime:
		// Not Avro's time-micros: MySQL TIME spans -838:59:59..838:59:59.
		return map[string]any{"type": "long", "connect.name": "io.debezium.time.MicroTime", "strait.type": "time-micros-signed"}, nil
	case cdc.TypeDateTime:
		return map[string]any{"type": "long", "logicalType": "local-timestamp-micros"}, nil
	case cdc.TypeTimestamp:
		return map[string]any{"type": "long", "logicalType": "timestamp-micros"}, nil
	case cdc.TypeGeometry:
		return geometryName, nil
	}
	return nil, fmt.Errorf("column %s: type %s has no Avro mapping", c.Name, c.Type)
}

const geometryName = "io.debezium.data.geometry.Geometry"

var geometrySchema = map[string]any{
	"type": "record", "name": "Geometry", "namespace": "io.debezium.data.geometry",
	"doc": "A spatial value: WKB and SRID.",
	"fields": []any{
		map[string]any{"name": "wkb", "type": "bytes"},
		map[string]any{"name": "srid", "type": []any{"null", "int"}, "default": nil},
	},
}

// field builds an Avro field for column i; nullable adds the null union with
// a null default (every value field is nullable, so columns added later
// stay compatible for readers).
func field(t *cdc.Table, i int, name string, nullable bool, geomDefined *bool) (map[string]any, error) {
	c := &t.Columns[i]
	typ, err := avroType(c)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.ID(), err)
	}
	if typ == geometryName && !*geomDefined {
		typ, *geomDefined = geometrySchema, true
	}
	f := map[string]any{"name": name, "type": typ}
	if nullable {
		f["type"], f["default"] = []any{"null", typ}, nil
	}
	if name != c.Name {
		f["strait.column"] = c.Name // the column's real name
	}
	if c.SQLType != "" {
		f["strait.sql_type"] = c.SQLType
	}
	return f, nil
}

// Build returns the key and value schemas of a table for topic prefix
// prefix.
func Build(prefix string, t *cdc.Table) (*Schemas, error) {
	ns := Namespace(prefix, t)
	names := fieldNames(t)
	s := &Schemas{Fields: names}

	if t.HasKey() {
		geom := false
		var keyFields []any
		for _, i := range t.PrimaryKey {
			f, err := field(t, i, names[i], false, &geom)
			if err != nil {
				return nil, err
			}
			keyFields = append(keyFields, f)
		}
		key, err := json.Marshal(map[string]any{"type": "record", "name": "Key", "namespace": ns, "fields": keyFields})
		if err != nil {
			return nil, err
		}
		s.Key = string(key)
	}

	geom := false
	var valueFields []any
	for i := range t.Columns {
		f, err := field(t, i, names[i], true, &geom)
		if err != nil {
			return nil, err
		}
		valueFields = append(valueFields, f)
	}
	valueRecord := map[string]any{"type": "record", "name": "Value", "namespace": ns, "fields": valueFields}

	var env map[string]any
	if err := json.Unmarshal([]byte(schemas.Envelope), &env); err != nil {
		return nil, fmt.Errorf("envelope schema: %w", err)
	}
	var source map[string]any
	if err := json.Unmarshal([]byte(schemas.Source), &source); err != nil {
		return nil, fmt.Errorf("source schema: %w", err)
	}
	env["namespace"] = ns
	for _, f := range env["fields"].([]any) {
		f := f.(map[string]any)
		switch f["name"] {
		case "before": // defines the row record; "after" refers to it by name
			f["type"] = []any{"null", valueRecord}
		case "after":
			f["type"] = []any{"null", ns + ".Value"}
		case "source":
			f["type"] = source
		}
	}
	value, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	s.Value = string(value)
	return s, nil
}

// FieldNames returns the Avro field names of t's columns, in column
// order: each name sanitized by Name and kept unique. They are also the
// BigQuery column names the consumer writes.
func FieldNames(t *cdc.Table) []string { return fieldNames(t) }
