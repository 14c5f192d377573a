package bqfake_test

import (
	"net/http"
	"testing"

	"cloud.google.com/go/bigquery"
)

// TestKeyAndNameRules: primary-key columns of the types BigQuery refuses
// in keys, reserved column-name prefixes in any case and at any level,
// and a view partitioning its window by a FLOAT64, GEOGRAPHY or JSON
// column are refused; the allowed cases are created.
func TestKeyAndNameRules(t *testing.T) {
	e := newEnv(t)
	keyed := func(typ bigquery.FieldType) *bigquery.TableMetadata {
		return &bigquery.TableMetadata{
			Schema:           bigquery.Schema{{Name: "k", Type: typ}, {Name: "v", Type: bigquery.StringFieldType}},
			TableConstraints: &bigquery.TableConstraints{PrimaryKey: &bigquery.PrimaryKey{Columns: []string{"k"}}},
		}
	}
	named := func(name string) *bigquery.TableMetadata {
		return &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: name, Type: bigquery.StringFieldType}}}
	}
	nested := func(name string) *bigquery.TableMetadata {
		return &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: "r", Type: bigquery.RecordFieldType,
			Schema: bigquery.Schema{{Name: name, Type: bigquery.StringFieldType}}}}}
	}
	tests := []struct {
		name string
		md   *bigquery.TableMetadata
		want int // HTTP status; 0 = created
	}{
		{"STRING key", keyed(bigquery.StringFieldType), 0},
		{"INT64 key", keyed(bigquery.IntegerFieldType), 0},
		{"BIGNUMERIC key", keyed(bigquery.BigNumericFieldType), 0},
		{"FLOAT64 key", keyed(bigquery.FloatFieldType), http.StatusBadRequest},
		{"BYTES key", keyed(bigquery.BytesFieldType), http.StatusBadRequest},
		{"JSON key", keyed(bigquery.JSONFieldType), http.StatusBadRequest},
		{"TIME key", keyed(bigquery.TimeFieldType), http.StatusBadRequest},
		{"GEOGRAPHY key", keyed(bigquery.GeographyFieldType), http.StatusBadRequest},
		{"_CHANGE_TYPE", named("_CHANGE_TYPE"), http.StatusBadRequest},
		{"_change_sequence_number", named("_change_sequence_number"), http.StatusBadRequest},
		{"_table_suffix", named("_table_suffix"), http.StatusBadRequest},
		{"_File_name", named("_File_name"), http.StatusBadRequest},
		{"_row_timestampX", named("_row_timestampX"), http.StatusBadRequest},
		{"__root__x", named("__root__x"), http.StatusBadRequest},
		{"_colidentifier", named("_colidentifier"), http.StatusBadRequest},
		{"nested _partitiontime", nested("_partitiontime"), http.StatusBadRequest},
		{"_change (no reserved prefix)", named("_change"), 0},
		{"_strait__CHANGE_TYPE", named("_strait__CHANGE_TYPE"), 0},
		{"nested partition (no underscore)", nested("partition"), 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.bq.Dataset(dsID).Table("n"+string(rune('a'+i))).Create(e.ctx, tt.md)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				return
			}
			wantHTTP(t, err, tt.want)
		})
	}

	t.Run("view partitions", func(t *testing.T) {
		e.createTable(t, "log", &bigquery.TableMetadata{Schema: bigquery.Schema{
			{Name: "f", Type: bigquery.FloatFieldType}, {Name: "g", Type: bigquery.GeographyFieldType},
			{Name: "j", Type: bigquery.JSONFieldType}, {Name: "s", Type: bigquery.StringFieldType},
			{Name: "seq", Type: bigquery.StringFieldType},
		}})
		view := func(part string) string {
			return "SELECT * EXCEPT (rk) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY " + part +
				" ORDER BY seq DESC) AS rk FROM `proj.ds.log`) WHERE rk = 1"
		}
		for i, c := range []struct {
			part string
			want int
		}{
			{"`s`", 0},
			{"s, `seq`", 0},
			{"`f`", http.StatusBadRequest},
			{"s, `F`", http.StatusBadRequest},
			{"`g`", http.StatusBadRequest},
			{"j", http.StatusBadRequest},
		} {
			err := e.bq.Dataset(dsID).Table("v"+string(rune('a'+i))).Create(e.ctx, &bigquery.TableMetadata{ViewQuery: view(c.part)})
			if c.want == 0 {
				if err != nil {
					t.Errorf("PARTITION BY %s: %v", c.part, err)
				}
				continue
			}
			wantHTTP(t, err, c.want)
		}
	})
}
