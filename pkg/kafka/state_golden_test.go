package kafka

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// The golden state records pin the bytes of the producer's saved state —
// <prefix>._checkpoint and <prefix>._schema_history — as the checked-in
// files under testdata/golden hold them: a producer upgraded across a
// refactor must read what the previous one wrote, and write what the
// previous one would read. Each record sits next to a .json file, its
// decoded Avro form, for a reader of the diff.
//
// goavro writes a map's entries in Go's map order, which varies from run to
// run, so the files hold every map sorted by key (canonical below) and a
// fresh encoding is compared after the same sort: byte for byte apart from
// the order of map entries, which Avro leaves to the writer.
//
// -update is for new golden records only: the files hold what producers
// already running have written, so a change that makes them fail is a
// change of the contract, not of the files.

// goldenCheckpoints are checkpoints as the producer writes them, in the
// states it passes through.
var goldenCheckpoints = []struct {
	name string
	cp   *Checkpoint
}{
	{"checkpoint-filepos", &Checkpoint{Source: "strait", ServerID: 1, Flavor: "mysql", File: "mysql-bin.000001", Pos: 4,
		SourceTime: time.UnixMilli(0), Written: time.UnixMilli(1700000000000), Version: "v0.1.0"}},
	{"checkpoint-mysql-gtid", &Checkpoint{Source: "strait", ServerID: math.MaxUint32, Flavor: "mysql",
		GTIDSet: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18,4d2a1c3b-9f00-11ee-8c90-0242ac120002:1-27",
		File:    "mysql-bin.004711", Pos: 1 << 33, Epoch: 3, SourceTime: time.UnixMilli(1733500000123), Written: time.UnixMilli(1733500000999),
		SchemaIDs: map[string]int{"strait.shop.users-key": 1, "strait.shop.users-value": 2, "strait.shop.orders-value": 41, "strait._checkpoint-value": math.MaxInt32},
		Version:   "v1.4.0-rc.1+dirty", Include: []string{"shop.*", "crm.contacts", "b?_*"}, Exclude: []string{"shop.tmp_*", "shop.[a-c]log"}}},
	{"checkpoint-mariadb-snapshot", &Checkpoint{Source: "prod-eu", ServerID: 1017, Flavor: "mariadb", GTIDSet: "0-1017-1200,1-2-55",
		File: "mariadb-bin.000042", Pos: 918273, Epoch: 1, RowsDone: 250, TxGTID: "0-1017-1201",
		SourceTime: time.UnixMilli(1733500100000), Written: time.UnixMilli(1733500100456),
		SchemaIDs: map[string]int{"prod-eu.shop.orders-value": 12}, Version: "v1.5.0",
		SnapshotTables:   []string{"shop.orders", "shop.users", "crm.contacts", "shop.line_items"},
		SnapshotAfter:    []cdc.Value{cdc.Int(-42), cdc.Str("\x00\xff\x10binary"), cdc.Float(2.5), cdc.Null, cdc.Str("Zoë 🙂"), cdc.Int(math.MinInt64)},
		SnapshotFilters:  map[string]string{"shop.orders": "created_at >= '2024-01-01' AND status <> 'void'", "crm.contacts": "country IN ('DE','FR')"},
		SnapshotRequests: 17, SnapshotOrigins: map[string]int64{"shop.orders": 9, "crm.contacts": 12, "shop.line_items": 16},
		Include: []string{"shop.*", "crm.*"}, Exclude: []string{"shop.audit"},
		SnapshotFailed: []SnapshotFailure{
			{Table: "shop.visits", Request: -1, Reason: "source.snapshot_keys: (a) is not a unique index", At: time.UnixMilli(1733400000000)},
			{Table: "crm.leads", Request: 5, Reason: "cancelled by request at offset 6", At: time.UnixMilli(1733450000000)},
			{Table: "shop.orders", Request: 7, Reason: "SELECT command denied to user 'strait'@'%' for table 'orders'", At: time.UnixMilli(1733460000000)},
		}}},
}

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

// olderCheckpoints are the layouts earlier strait versions wrote: the
// checkpoint schema without its last fields, each added later with a
// default (git log schemas/checkpoint.avsc). Read today, the missing fields
// take their defaults.
var olderCheckpoints = []struct {
	name string
	last string // the last field of that layout
}{
	{"checkpoint-layout-8512336", "version"},        // the first checkpoint
	{"checkpoint-layout-0229117", "snapshot_after"}, // the initial snapshot
	{"checkpoint-layout-80e03c0", "exclude"},        // snapshots on demand
}

// currentLast is the last field of the checkpoint the golden records were
// made with.
const currentLast = "snapshot_failed"

// TestStateGolden decodes each golden state record and compares it, field
// by field, with the value it was written from, then encodes that value
// again and compares the bytes. -update rewrites the files from the values.
func TestStateGolden(t *testing.T) {
	cpType, histType, cpCodec, histCodec := stateCodecs(t)
	for _, g := range goldenCheckpoints {
		t.Run(g.name, func(t *testing.T) {
			encoded := encodeWith(t, cpCodec, checkpointNative(g.cp))
			b := golden(t, g.name, cpType[0], encoded)
			got, err := decodeCheckpoint(cpType, g.cp.Source, b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(got, g.cp, ignoreFrom); diff != "" {
				t.Errorf("decoded (-got +want):\n%s", diff)
			}
			sameBytes(t, cpType[0], encodeWith(t, cpCodec, checkpointNative(got)), b)
		})
	}
	for _, g := range goldenHistory {
		t.Run(g.name, func(t *testing.T) {
			encoded := encodeWith(t, histCodec, historyNative(g.s))
			b := golden(t, g.name, histType[0], encoded)
			got, err := decodeHistory(histType, g.s.ID(), b)
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
			sameBytes(t, histType[0], encodeWith(t, histCodec, historyNative(got)), b)
		})
	}
	// The richest checkpoint, as each earlier layout held it.
	rich := goldenCheckpoints[len(goldenCheckpoints)-1].cp
	for _, o := range olderCheckpoints {
		t.Run(o.name, func(t *testing.T) {
			schema, dropped := schemaUpTo(t, schemas.Checkpoint, o.last)
			codec, err := goavro.NewCodec(schema)
			if err != nil {
				t.Fatal(err)
			}
			old, err := avro.Parse(schema)
			if err != nil {
				t.Fatal(err)
			}
			native := checkpointNative(rich)
			for _, f := range dropped {
				delete(native, f)
			}
			b := golden(t, o.name, old, encodeWith(t, codec, native))
			got, err := decodeCheckpoint(cpType, rich.Source, b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := withDefaults(rich, dropped)
			if diff := cmp.Diff(got, want, ignoreFrom); diff != "" {
				t.Errorf("decoded (-got +want):\n%s", diff)
			}
			// What it read, written in that layout, is what was there.
			again := checkpointNative(got)
			for _, f := range dropped {
				delete(again, f)
			}
			sameBytes(t, old, encodeWith(t, codec, again), b)
		})
	}
}

// TestStateGoldenCovers keeps the golden records in step with the
// schemas: a field added at the end of schemas/checkpoint.avsc makes
// today's layout an earlier one, which needs a golden record of its own
// before -update rewrites the current ones; and every earlier layout must
// be one the decoder reads.
func TestStateGoldenCovers(t *testing.T) {
	cpType, histType, _, _ := stateCodecs(t)
	fields := cpType[0].Fields
	if last := fields[len(fields)-1].Name; last != currentLast {
		t.Errorf("schemas/checkpoint.avsc now ends at %q: add the layout ending at %q to olderCheckpoints, then set currentLast", last, currentLast)
	}
	for _, o := range olderCheckpoints {
		if !slices.ContainsFunc(cpType, func(v *avro.Type) bool { return v.Fields[len(v.Fields)-1].Name == o.last }) {
			t.Errorf("older layout %s ends at %q: not a layout the checkpoint decoder reads", o.name, o.last)
		}
	}
	if len(histType) != 1 {
		t.Errorf("the decoder reads %d schema-history layouts: add golden records of the earlier ones", len(histType))
	}
}

// schemaUpTo returns schema cut after the field named last, and the names
// of the fields it dropped.
func schemaUpTo(t *testing.T, schema, last string) (string, []string) {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal([]byte(schema), &rec); err != nil {
		t.Fatal(err)
	}
	fs := rec["fields"].([]any)
	i := slices.IndexFunc(fs, func(f any) bool { return f.(map[string]any)["name"] == last })
	if i < 0 {
		t.Fatalf("no field %q", last)
	}
	var dropped []string
	for _, f := range fs[i+1:] {
		dropped = append(dropped, f.(map[string]any)["name"].(string))
	}
	rec["fields"] = fs[:i+1]
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), dropped
}

// withDefaults returns cp with the fields named by dropped at the values
// their schema defaults decode to.
func withDefaults(cp *Checkpoint, dropped []string) *Checkpoint {
	c := *cp
	for _, f := range dropped {
		switch f {
		case "snapshot_tables":
			c.SnapshotTables = nil
		case "snapshot_after":
			c.SnapshotAfter = nil
		case "snapshot_filters":
			c.SnapshotFilters = nil
		case "snapshot_requests":
			c.SnapshotRequests = 0
		case "include":
			c.Include = nil
		case "exclude":
			c.Exclude = nil
		case "snapshot_origins":
			c.SnapshotOrigins = nil
		case "snapshot_failed":
			c.SnapshotFailed = nil
		default:
			panic("withDefaults: no default known for " + f)
		}
	}
	return &c
}

// golden returns the checked-in record testdata/golden/<name>.avro (t its
// schema), after checking it against encoded, what the encoder writes now;
// with -update it writes encoded, maps sorted, and its JSON form instead.
func golden(t *testing.T, name string, typ *avro.Type, encoded []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".avro")
	sorted, err := canonical(typ, encoded)
	if err != nil {
		t.Fatalf("the encoder's record does not read: %v", err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		text, err := jsonForm(typ, sorted)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, sorted, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "golden", name+".json"), text, 0o644); err != nil {
			t.Fatal(err)
		}
		return sorted
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./pkg/kafka -run TestStateGolden -update writes it)", err)
	}
	text, err := jsonForm(typ, b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if want, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json")); err != nil || !bytes.Equal(text, want) {
		t.Errorf("%s.json is not the decoded form of %s (err %v)", name, path, err)
	}
	return b
}

// sameBytes fails t unless got, a record encoded now, is want apart from
// the order of map entries.
func sameBytes(t *testing.T, typ *avro.Type, got, want []byte) {
	t.Helper()
	sorted, err := canonical(typ, got)
	if err != nil {
		t.Fatalf("the encoder's record does not read: %v", err)
	}
	if !bytes.Equal(sorted, want) {
		t.Errorf("encoded again, the record differs from the golden one:\n got % x\nwant % x", sorted, want)
	}
}

// jsonForm is the framed record b decoded, as indented JSON.
func jsonForm(typ *avro.Type, b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%d bytes: not framed", len(b))
	}
	v, err := avro.Decode(typ, b[5:])
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	return append(out, '\n'), err
}

// canonical returns the framed record b with the entries of every map
// sorted by key, each map written as goavro writes one: a single block of
// all its entries, then the end block.
func canonical(typ *avro.Type, b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%d bytes: not framed", len(b))
	}
	out, rest, err := sortMaps(append([]byte{}, b[:5]...), typ, b[5:])
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the record", len(rest))
	}
	return out, err
}

// sortMaps appends the value of type typ at the start of b to out, its
// maps sorted, and returns the bytes after it.
func sortMaps(out []byte, typ *avro.Type, b []byte) ([]byte, []byte, error) {
	switch typ.Kind {
	case "record":
		var err error
		for _, f := range typ.Fields {
			if out, b, err = sortMaps(out, f.Type, b); err != nil {
				return nil, nil, err
			}
		}
		return out, b, nil
	case "union":
		i, rest, err := avro.ReadBranch(b, typ)
		if err != nil {
			return nil, nil, err
		}
		return sortMaps(append(out, b[:len(b)-len(rest)]...), typ.Branches[i], rest)
	case "array", "map":
		type entry struct{ name, key, value []byte } // key: name as encoded
		var entries []entry
		for {
			n, rest, err := avro.ReadLong(b)
			if err != nil {
				return nil, nil, err
			}
			b = rest
			if n == 0 {
				break
			}
			if n < 0 { // a block with its size in bytes
				n = -n
				if _, b, err = avro.ReadLong(b); err != nil {
					return nil, nil, err
				}
			}
			for range n {
				var e entry
				if typ.Kind == "map" {
					name, rest, err := avro.ReadBytes(b)
					if err != nil {
						return nil, nil, err
					}
					e.name, e.key, b = name, b[:len(b)-len(rest)], rest
				}
				if e.value, b, err = sortMaps(nil, typ.Items, b); err != nil {
					return nil, nil, err
				}
				entries = append(entries, e)
			}
		}
		if typ.Kind == "map" {
			slices.SortFunc(entries, func(x, y entry) int { return bytes.Compare(x.name, y.name) })
		}
		if len(entries) > 0 {
			out = binary.AppendVarint(out, int64(len(entries))) // zig-zag, as Avro's long
		}
		for _, e := range entries {
			out = append(append(out, e.key...), e.value...)
		}
		return append(out, 0), b, nil
	default:
		rest, err := avro.Skip(b, typ)
		if err != nil {
			return nil, nil, err
		}
		return append(out, b[:len(b)-len(rest)]...), rest, nil
	}
}
