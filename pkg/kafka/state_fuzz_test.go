package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/linkedin/goavro/v2"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
	"github.com/strait-cdc/strait/schemas"
)

// stateCodecs are the parsed schemas and goavro codecs of the state
// records.
func stateCodecs(t testing.TB) (cpType, histType []*avro.Type, cpCodec, histCodec *goavro.Codec) {
	var err error
	if cpType, err = stateTypes(schemas.Checkpoint); err != nil {
		t.Fatal(err)
	}
	if histType, err = stateTypes(schemas.SchemaHistory); err != nil {
		t.Fatal(err)
	}
	if cpCodec, err = goavro.NewCodec(schemas.Checkpoint); err != nil {
		t.Fatal(err)
	}
	if histCodec, err = goavro.NewCodec(schemas.SchemaHistory); err != nil {
		t.Fatal(err)
	}
	return cpType, histType, cpCodec, histCodec
}

func encodeWith(t testing.TB, c *goavro.Codec, native map[string]any) []byte {
	b, err := c.BinaryFromNative(header(7), native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ignoreFrom compares checkpoints without the record they were read from.
var ignoreFrom = cmpopts.IgnoreUnexported(Checkpoint{})

// FuzzCheckpoint feeds arbitrary records to the producer's checkpoint
// decoder: a record is refused, or read into a checkpoint that encodes to
// a record read back the same — never a panic, a hang or an allocation
// sized by a count the record claims.
func FuzzCheckpoint(f *testing.F) {
	cpType, _, cpCodec, _ := stateCodecs(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := decodeCheckpoint(cpType, "strait", b)
		if err != nil {
			return
		}
		again, err := decodeCheckpoint(cpType, "strait", encodeWith(t, cpCodec, checkpointNative(cp)))
		if err != nil {
			t.Fatalf("a checkpoint read from % x does not read back: %v", b, err)
		}
		if diff := cmp.Diff(again, cp, ignoreFrom); diff != "" {
			t.Fatalf("read back differently (-again +first):\n%s", diff)
		}
	})
}

// FuzzSchemaHistory is FuzzCheckpoint for schema-history entries, under
// a key.
func FuzzSchemaHistory(f *testing.F) {
	_, histType, _, histCodec := stateCodecs(f)
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		s, err := decodeHistory(histType, key, b)
		if err != nil {
			return
		}
		again, err := decodeHistory(histType, key, encodeWith(t, histCodec, historyNative(s)))
		if err != nil {
			t.Fatalf("an entry read from % x does not read back: %v", b, err)
		}
		if diff := cmp.Diff(again, s); diff != "" {
			t.Fatalf("read back differently (-again +first):\n%s", diff)
		}
	})
}

// realCheckpoint has a value in every field.
var realCheckpoint = &Checkpoint{Source: "strait", ServerID: 7, Flavor: "mariadb", GTIDSet: "0-7-42", File: "mysql-bin.000003",
	Pos: 1234, Epoch: 2, RowsDone: 10, TxGTID: "0-7-43", SourceTime: time.UnixMilli(1700000000123), Written: time.UnixMilli(1700000001000),
	SchemaIDs: map[string]int{"strait.shop.users-value": 3}, Version: "v1.2.3",
	SnapshotTables: []string{"shop.users", "shop.orders"}, SnapshotAfter: []cdc.Value{cdc.Int(5), cdc.Str("\x00\xff"), cdc.Null},
	SnapshotFilters: map[string]string{"shop.orders": "id > 5"}, SnapshotRequests: 3, Include: []string{"shop.*"}, Exclude: []string{"shop.tmp_*"},
	SnapshotOrigins: map[string]int64{"shop.orders": 2},
	SnapshotFailed:  []SnapshotFailure{{Table: "shop.visits", Request: 1, Reason: "source.snapshot_keys: (a) is not a unique index", At: time.UnixMilli(1700000000500)}}}

// realHistory is a schema-history entry as the producer writes it.
var realHistory = &cdc.TableSchema{Database: "shop", Table: "users", PrimaryKey: []string{"id"}, ServerID: 7, File: "mysql-bin.000003", Pos: 99,
	Columns: []cdc.SchemaColumn{{Name: "id", ColumnType: "bigint(20) unsigned", DataType: "bigint"},
		{Name: "email", ColumnType: "varchar(255)", DataType: "varchar", Charset: "utf8mb4", Nullable: true}}}

// TestStateCorpus checks the seed corpora of FuzzCheckpoint and
// FuzzSchemaHistory against what they are made of — the real encoder's
// records and hostile or impossible variants, each refused for its reason —
// and rewrites them with -update.
func TestStateCorpus(t *testing.T) {
	cpType, histType, cpCodec, histCodec := stateCodecs(t)
	cp := encodeWith(t, cpCodec, checkpointNative(realCheckpoint))
	with := func(change func(*Checkpoint)) []byte {
		c := *realCheckpoint
		change(&c)
		return encodeWith(t, cpCodec, checkpointNative(&c))
	}
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // 2^31-1, zig-zag
	cpSeeds := []struct {
		b    []byte
		want error // nil: read
	}{
		{cp, nil},
		{append(header(7), append(make([]byte, 10), huge...)...), avro.ErrTooMany}, // ten one-byte fields, then 2^31-1 schema ids
		{cp[:len(cp)/2], avro.ErrShort},
		{append(append([]byte{}, cp...), 0), avro.ErrTrailing},
		{with(func(c *Checkpoint) { c.Source = "other" }), ErrInvalid},
		{with(func(c *Checkpoint) { c.SnapshotTables = []string{"no_dot"} }), ErrInvalid},
		{with(func(c *Checkpoint) { c.SnapshotFilters = map[string]string{"shop.elsewhere": "1"} }), ErrInvalid},
		{with(func(c *Checkpoint) { c.Include = []string{"["} }), ErrInvalid},
		{with(func(c *Checkpoint) { c.File = "bin\x00" }), ErrInvalid},
		{with(func(c *Checkpoint) { c.Flavor = "oracle" }), ErrInvalid},
		{with(func(c *Checkpoint) { c.SnapshotTables = nil; c.SnapshotFilters = nil }), ErrInvalid}, // snapshot_after without tables
		{with(func(c *Checkpoint) { c.Pos = 1 << 63 }), ErrInvalid},                                 // negative once a long
		{with(func(c *Checkpoint) { c.SnapshotOrigins = map[string]int64{"shop.elsewhere": 1} }), ErrInvalid},
		{with(func(c *Checkpoint) { c.SnapshotFailed = []SnapshotFailure{{Table: "nodot", Reason: "x"}} }), ErrInvalid},
		{with(func(c *Checkpoint) { c.SnapshotFailed = make([]SnapshotFailure, maxFailures+1) }), ErrInvalid},
		{nil, ErrInvalid}, // a tombstone
	}
	var files []string
	for i, s := range cpSeeds {
		got, err := decodeCheckpoint(cpType, "strait", s.b)
		switch {
		case s.want == nil && err != nil:
			t.Errorf("checkpoint seed %d: %v", i, err)
		case s.want == nil:
			if diff := cmp.Diff(got, realCheckpoint, ignoreFrom); diff != "" {
				t.Errorf("checkpoint seed %d (-got +want):\n%s", i, diff)
			}
		case !errors.Is(err, s.want):
			t.Errorf("checkpoint seed %d: %v, want %v", i, err, s.want)
		}
		files = append(files, "go test fuzz v1\n[]byte("+strconv.Quote(string(s.b))+")\n")
	}
	testenv.CheckCorpus(t, filepath.Join("testdata", "fuzz", "FuzzCheckpoint"), files, *update)

	hist := encodeWith(t, histCodec, historyNative(realHistory))
	withHist := func(change func(*cdc.TableSchema)) []byte {
		s := *realHistory
		s.Columns = append([]cdc.SchemaColumn{}, s.Columns...)
		change(&s)
		return encodeWith(t, histCodec, historyNative(&s))
	}
	histSeeds := []struct {
		key  string
		b    []byte
		want error
	}{
		{"shop.users", hist, nil},
		// database "a", table "b", then 2^31-1 columns: the 14 bytes that
		// killed the producer at every start.
		{"a.b", append(header(7), append([]byte{2, 'a', 2, 'b'}, huge...)...), avro.ErrTooMany},
		{"shop.orders", hist, ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.Columns[1].Name = "id" }), ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.PrimaryKey = []string{"missing"} }), ErrInvalid},
		{"shop.users", withHist(func(s *cdc.TableSchema) { s.Columns = []cdc.SchemaColumn{}; s.PrimaryKey = nil }), ErrInvalid},
		{"shop.users", hist[:3], nil}, // not framed: an error of its own
	}
	files = nil
	for i, s := range histSeeds {
		got, err := decodeHistory(histType, s.key, s.b)
		switch {
		case i == len(histSeeds)-1:
			if err == nil {
				t.Errorf("history seed %d: read", i)
			}
		case s.want == nil && err != nil:
			t.Errorf("history seed %d: %v", i, err)
		case s.want == nil:
			if diff := cmp.Diff(got, realHistory); diff != "" {
				t.Errorf("history seed %d (-got +want):\n%s", i, diff)
			}
		case !errors.Is(err, s.want):
			t.Errorf("history seed %d: %v, want %v", i, err, s.want)
		}
		files = append(files, fmt.Sprintf("go test fuzz v1\nstring(%s)\n[]byte(%s)\n", strconv.Quote(s.key), strconv.Quote(string(s.b))))
	}
	testenv.CheckCorpus(t, filepath.Join("testdata", "fuzz", "FuzzSchemaHistory"), files, *update)
}

// TestCheckpointOfEarlierVersionReads: a checkpoint an earlier strait wrote,
// before fields were added at the end of schemas/checkpoint.avsc, is read
// with those fields' defaults (an upgrade resumes where it stopped).
func TestCheckpointOfEarlierVersionReads(t *testing.T) {
	cpType, _, _, _ := stateCodecs(t)
	var rec map[string]any
	if err := json.Unmarshal([]byte(schemas.Checkpoint), &rec); err != nil {
		t.Fatal(err)
	}
	fs := rec["fields"].([]any)
	if name := fs[len(fs)-2].(map[string]any)["name"]; name != "snapshot_origins" {
		t.Fatalf("the checkpoint's fields end with %v: this test drops the last two, added together", name)
	}
	rec["fields"] = fs[:len(fs)-2]
	old, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(string(old))
	if err != nil {
		t.Fatal(err)
	}
	native := checkpointNative(realCheckpoint)
	delete(native, "snapshot_origins")
	delete(native, "snapshot_failed")
	got, err := decodeCheckpoint(cpType, "strait", encodeWith(t, codec, native))
	if err != nil {
		t.Fatalf("an earlier version's checkpoint is refused: %v", err)
	}
	want := *realCheckpoint
	want.SnapshotOrigins, want.SnapshotFailed = nil, nil
	if diff := cmp.Diff(got, &want, ignoreFrom); diff != "" {
		t.Errorf("read differently (-got +want):\n%s", diff)
	}
}
