package pipeline

import (
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
	"github.com/strait-cdc/strait/schemas"
)

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz and the golden checkpoints under testdata/golden")

func newCodec(t testing.TB) *Codec {
	t.Helper()
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// header frames a body as the Kafka state store does: magic byte 0, schema
// id 7.
var header = []byte{0, 0, 0, 0, 7}

// framed is cp's record as the Kafka state store writes it.
func framed(t testing.TB, c *Codec, cp *Checkpoint) []byte {
	t.Helper()
	b, err := c.Append(append([]byte{}, header...), cp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeWith(t testing.TB, enc *avro.NativeEncoder, native map[string]any) []byte {
	t.Helper()
	b, err := enc.Append(append([]byte{}, header...), native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errNotFramed is a record the Kafka state store refuses before its body
// is decoded: a tombstone, or not in the Confluent wire format.
var errNotFramed = errors.New("not a framed record")

// decodeFramed decodes a framed checkpoint record of the source strait.
func decodeFramed(c *Codec, b []byte) (*Checkpoint, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, errNotFramed
	}
	return c.Decode(b[5:], "strait")
}

// ignoreFrom compares checkpoints without the record they were read from.
var ignoreFrom = cmpopts.IgnoreUnexported(Checkpoint{})

// FuzzCheckpoint feeds arbitrary records to the producer's checkpoint
// decoder: a record is refused, or read into a checkpoint that encodes to
// a record read back the same — never a panic, a hang or an allocation
// sized by a count the record claims.
func FuzzCheckpoint(f *testing.F) {
	c := newCodec(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := decodeFramed(c, b)
		if err != nil {
			return
		}
		again, err := decodeFramed(c, framed(t, c, cp))
		if err != nil {
			t.Fatalf("a checkpoint read from % x does not read back: %v", b, err)
		}
		if diff := cmp.Diff(again, cp, ignoreFrom); diff != "" {
			t.Fatalf("read back differently (-again +first):\n%s", diff)
		}
	})
}

// realCheckpoint has a value in every field.
var realCheckpoint = &Checkpoint{Source: "strait", State: binlog.State{ServerID: 7, Flavor: "mariadb", GTIDSet: "0-7-42", File: "mysql-bin.000003",
	Pos: 1234, Epoch: 2, RowsDone: 10, TxGTID: "0-7-43",
	Snapshot: binlog.SnapshotState{Tables: []string{"shop.users", "shop.orders"}, After: []cdc.Value{cdc.Int(5), cdc.Str("\x00\xff"), cdc.Null},
		Filters: map[string]string{"shop.orders": "id > 5"}, Requests: 3, Origins: map[string]int64{"shop.orders": 2},
		Failed: []binlog.SnapshotFailure{{Table: "shop.visits", Request: 1, Reason: "source.snapshot_keys: (a) is not a unique index", At: time.UnixMilli(1700000000500)}}},
	Include: []string{"shop.*"}, Exclude: []string{"shop.tmp_*"}},
	SourceTime: time.UnixMilli(1700000000123), Written: time.UnixMilli(1700000001000),
	SchemaIDs: map[string]int{"strait.shop.users-value": 3}, Version: "v1.2.3"}

// planned is the framed record of realCheckpoint naming snapshot plan 2,
// with 5 tables done, changed by change; the record holds what a plan
// would then hold, when change adds it.
func planned(t *testing.T, c *Codec, change func(*Checkpoint)) []byte {
	t.Helper()
	cp := *realCheckpoint
	cp.Plan, cp.PlanDone = 2, 5
	cp.Snapshot = binlog.SnapshotState{Requests: cp.Snapshot.Requests, Failed: cp.Snapshot.Failed}
	change(&cp)
	native := checkpointNative(&cp)
	native["snapshot_tables"] = []any{}
	for _, tb := range cp.Snapshot.Tables {
		native["snapshot_tables"] = append(native["snapshot_tables"].([]any), tb)
	}
	b, err := c.enc.Append(append([]byte{}, header...), native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// maxFailures is the most snapshot failures a checkpoint may hold
// (binlog's bound).
const maxFailures = 64

// TestCheckpointCorpus checks the seed corpus of FuzzCheckpoint against
// what it is made of — the real encoder's records and hostile or
// impossible variants, each refused for its reason — and rewrites it with
// -update.
func TestCheckpointCorpus(t *testing.T) {
	c := newCodec(t)
	cp := framed(t, c, realCheckpoint)
	with := func(change func(*Checkpoint)) []byte {
		cp := *realCheckpoint
		change(&cp)
		return framed(t, c, &cp)
	}
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // 2^31-1, zig-zag
	seeds := []struct {
		b    []byte
		want error // nil: read
	}{
		{cp, nil},
		{append(append([]byte{}, header...), append(make([]byte, 10), huge...)...), avro.ErrTooMany}, // ten one-byte fields, then 2^31-1 schema ids
		{cp[:len(cp)/2], avro.ErrShort},
		{append(append([]byte{}, cp...), 0), avro.ErrTrailing},
		{with(func(c *Checkpoint) { c.Source = "other" }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Snapshot.Tables = []string{"no_dot"} }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Snapshot.Filters = map[string]string{"shop.elsewhere": "1"} }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Include = []string{"["} }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.File = "bin\x00" }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Flavor = "oracle" }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Snapshot.Tables = nil; c.Snapshot.Filters = nil }), avro.ErrInvalid}, // snapshot_after without tables
		{with(func(c *Checkpoint) { c.Pos = 1 << 63 }), avro.ErrInvalid},                                   // negative once a long
		{with(func(c *Checkpoint) { c.Snapshot.Origins = map[string]int64{"shop.elsewhere": 1} }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Snapshot.Failed = []binlog.SnapshotFailure{{Table: "nodot", Reason: "x"}} }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Snapshot.Failed = make([]binlog.SnapshotFailure, maxFailures+1) }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.Plan = -1 }), avro.ErrInvalid},
		{with(func(c *Checkpoint) { c.PlanDone = 3 }), avro.ErrInvalid},                                      // tables done of no plan
		{planned(t, c, func(c *Checkpoint) { c.Snapshot.Tables = []string{"shop.users"} }), avro.ErrInvalid}, // a plan and tables of its own
		{nil, errNotFramed}, // a tombstone: the Kafka state store refuses it (kafka.ErrInvalid)
	}
	var files []string
	for i, s := range seeds {
		got, err := decodeFramed(c, s.b)
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
}

// TestCheckpointOfEarlierVersionReads: a checkpoint an earlier strait wrote,
// before fields were added at the end of schemas/checkpoint.avsc, is read
// with those fields' defaults (an upgrade resumes where it stopped).
func TestCheckpointOfEarlierVersionReads(t *testing.T) {
	c := newCodec(t)
	var rec map[string]any
	if err := json.Unmarshal([]byte(schemas.Checkpoint), &rec); err != nil {
		t.Fatal(err)
	}
	// The layout before snapshot_origins and the fields after it.
	fs := rec["fields"].([]any)
	cut := slices.IndexFunc(fs, func(f any) bool { return f.(map[string]any)["name"] == "snapshot_origins" })
	if cut < 0 {
		t.Fatal("the checkpoint has no field snapshot_origins")
	}
	var dropped []string
	for _, f := range fs[cut:] {
		dropped = append(dropped, f.(map[string]any)["name"].(string))
	}
	rec["fields"] = fs[:cut]
	old, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := avro.NewNativeEncoder(string(old))
	if err != nil {
		t.Fatal(err)
	}
	native := checkpointNative(realCheckpoint)
	for _, f := range dropped {
		delete(native, f)
	}
	got, err := decodeFramed(c, encodeWith(t, enc, native))
	if err != nil {
		t.Fatalf("an earlier version's checkpoint is refused: %v", err)
	}
	want := *realCheckpoint
	want.Snapshot.Origins, want.Snapshot.Failed = nil, nil
	if diff := cmp.Diff(got, &want, ignoreFrom); diff != "" {
		t.Errorf("read differently (-got +want):\n%s", diff)
	}
}
