package binlog

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/avro/avrotest"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// The golden state records pin the bytes of the producer's schema history
// — <prefix>._schema_history — as the checked-in files under
// testdata/golden hold them (avrotest.GoldenRecord): a producer upgraded
// across a refactor must read what the previous one wrote, and write what
// the previous one would read. Each record sits next to a .json file, its
// decoded Avro form, for a reader of the diff.
//
// -update is for new golden records only: the files hold what producers
// already running have written, so a change that makes them fail is a
// change of the contract, not of the files.

// goldenHistory are schema-history entries: one column of every kind the
// source has, and a table without a primary key.
var goldenHistory = []struct {
	name string
	s    *cdc.TableSchema
}{
	{"history-every-kind", &cdc.TableSchema{Database: "shop", Table: "everything", PrimaryKey: []string{"tenant", "id"},
		ServerID: 1017, File: "mariadb-bin.000042", Pos: 918000, Columns: []cdc.SchemaColumn{
			{Name: "id", ColumnType: "bigint(20) unsigned", DataType: "bigint"},
			{Name: "tenant", ColumnType: "int(11)", DataType: "int"},
			{Name: "flag", ColumnType: "tinyint(1)", DataType: "tinyint", Nullable: true},
			{Name: "small", ColumnType: "smallint(5) unsigned", DataType: "smallint", Nullable: true},
			{Name: "medium", ColumnType: "mediumint(9)", DataType: "mediumint", Nullable: true},
			{Name: "amount", ColumnType: "decimal(65,30)", DataType: "decimal", Nullable: true},
			{Name: "ratio", ColumnType: "float", DataType: "float", Nullable: true},
			{Name: "score", ColumnType: "double", DataType: "double", Nullable: true},
			{Name: "bit1", ColumnType: "bit(1)", DataType: "bit", Nullable: true},
			{Name: "mask", ColumnType: "bit(64)", DataType: "bit", Nullable: true},
			{Name: "code", ColumnType: "char(3)", DataType: "char", Charset: "latin1", Nullable: true},
			{Name: "name", ColumnType: "varchar(255)", DataType: "varchar", Charset: "utf8mb4"},
			{Name: "note", ColumnType: "mediumtext", DataType: "mediumtext", Charset: "utf8mb3", Nullable: true},
			{Name: "digest", ColumnType: "binary(16)", DataType: "binary", Nullable: true},
			{Name: "blob", ColumnType: "longblob", DataType: "longblob", Nullable: true},
			{Name: "doc", ColumnType: "longtext", DataType: "longtext", Charset: "utf8mb4", Nullable: true}, // MariaDB's JSON
			{Name: "born", ColumnType: "date", DataType: "date", Nullable: true},
			{Name: "took", ColumnType: "time(6)", DataType: "time", Nullable: true},
			{Name: "wall", ColumnType: "datetime(3)", DataType: "datetime", Nullable: true},
			{Name: "at", ColumnType: "timestamp(6)", DataType: "timestamp"},
			{Name: "yr", ColumnType: "year(4)", DataType: "year", Nullable: true},
			{Name: "state", ColumnType: "enum('new','paid','it''s')", DataType: "enum", Charset: "utf8mb4"},
			{Name: "tags", ColumnType: "set('a','b','c,d')", DataType: "set", Charset: "utf8mb4", Nullable: true},
			{Name: "place", ColumnType: "point", DataType: "point", Nullable: true},
			{Name: "Größe", ColumnType: "geometry", DataType: "geometry", Nullable: true},
		}}},
	{"history-no-key", &cdc.TableSchema{Database: "log", Table: "events", ServerID: 1, File: "mysql-bin.000001", Pos: 4,
		PrimaryKey: []string{}, Columns: []cdc.SchemaColumn{{Name: "line", ColumnType: "text", DataType: "text", Charset: "utf8mb4", Nullable: true}}}},
}

// TestHistoryGolden decodes each golden schema-history record and
// compares it, field by field, with the value it was written from, then
// encodes that value again and compares the bytes. -update rewrites the
// files from the values. (They were made in pkg/kafka, which encoded the
// schema history then; the files moved here unchanged. The golden
// checkpoints are pkg/pipeline's.)
func TestHistoryGolden(t *testing.T) {
	c := newHistoryCodec(t)
	for _, g := range goldenHistory {
		t.Run(g.name, func(t *testing.T) {
			b := avrotest.GoldenRecord(t, g.name, c.versions[0], framedHistory(t, c, g.s), *update)
			got, err := c.Decode(g.s.ID(), b[5:])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := *g.s
			if len(want.PrimaryKey) == 0 {
				want.PrimaryKey = nil // an empty array decodes to none
			}
			if diff := cmp.Diff(got, &want); diff != "" {
				t.Errorf("decoded (-got +want):\n%s", diff)
			}
			avrotest.SameRecord(t, c.versions[0], framedHistory(t, c, got), b)
		})
	}
}

// TestHistoryGoldenCovers keeps the golden records in step with the
// schema: the decoder reads one schema-history layout, the golden
// records'.
func TestHistoryGoldenCovers(t *testing.T) {
	if n := len(newHistoryCodec(t).versions); n != 1 {
		t.Errorf("the decoder reads %d schema-history layouts: add golden records of the earlier ones", n)
	}
}
