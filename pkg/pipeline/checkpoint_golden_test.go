package pipeline

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/avro/avrotest"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/schemas"
)

// The golden checkpoints pin the bytes of the producer's saved position —
// <prefix>._checkpoint — as the checked-in files under testdata/golden
// hold them (avrotest.GoldenRecord): a producer upgraded across a refactor
// must read what the previous one wrote, and write what the previous one
// would read. Each record sits next to a .json file, its decoded Avro
// form, for a reader of the diff. (They were made in pkg/kafka, which
// encoded the checkpoint then; the files moved here unchanged.)
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
	{"checkpoint-filepos", &Checkpoint{Source: "strait", State: binlog.State{ServerID: 1, Flavor: "mysql", File: "mysql-bin.000001", Pos: 4},
		SourceTime: time.UnixMilli(0), Written: time.UnixMilli(1700000000000), Version: "v0.1.0"}},
	{"checkpoint-mysql-gtid", &Checkpoint{Source: "strait", State: binlog.State{ServerID: math.MaxUint32, Flavor: "mysql",
		GTIDSet: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18,4d2a1c3b-9f00-11ee-8c90-0242ac120002:1-27",
		File:    "mysql-bin.004711", Pos: 1 << 33, Epoch: 3,
		Include: []string{"shop.*", "crm.contacts", "b?_*"}, Exclude: []string{"shop.tmp_*", "shop.[a-c]log"}},
		SourceTime: time.UnixMilli(1733500000123), Written: time.UnixMilli(1733500000999),
		SchemaIDs: map[string]int{"strait.shop.users-key": 1, "strait.shop.users-value": 2, "strait.shop.orders-value": 41, "strait._checkpoint-value": math.MaxInt32},
		Version:   "v1.4.0-rc.1+dirty"}},
	// The richest: goldenCheckpoints[2].
	{"checkpoint-mariadb-snapshot", &Checkpoint{Source: "prod-eu", State: binlog.State{ServerID: 1017, Flavor: "mariadb", GTIDSet: "0-1017-1200,1-2-55",
		File: "mariadb-bin.000042", Pos: 918273, Epoch: 1, RowsDone: 250, TxGTID: "0-1017-1201",
		Snapshot: binlog.SnapshotState{
			Tables:   []string{"shop.orders", "shop.users", "crm.contacts", "shop.line_items"},
			After:    []cdc.Value{cdc.Int(-42), cdc.Str("\x00\xff\x10binary"), cdc.Float(2.5), cdc.Null, cdc.Str("Zoë 🙂"), cdc.Int(math.MinInt64)},
			Filters:  map[string]string{"shop.orders": "created_at >= '2024-01-01' AND status <> 'void'", "crm.contacts": "country IN ('DE','FR')"},
			Requests: 17, Origins: map[string]int64{"shop.orders": 9, "crm.contacts": 12, "shop.line_items": 16},
			Failed: []binlog.SnapshotFailure{
				{Table: "shop.visits", Request: -1, Reason: "source.snapshot_keys: (a) is not a unique index", At: time.UnixMilli(1733400000000)},
				{Table: "crm.leads", Request: 5, Reason: "cancelled by request at offset 6", At: time.UnixMilli(1733450000000)},
				{Table: "shop.orders", Request: 7, Reason: "SELECT command denied to user 'strait'@'%' for table 'orders'", At: time.UnixMilli(1733460000000)},
			}},
		Include: []string{"shop.*", "crm.*"}, Exclude: []string{"shop.audit"}},
		SourceTime: time.UnixMilli(1733500100000), Written: time.UnixMilli(1733500100456),
		SchemaIDs: map[string]int{"prod-eu.shop.orders-value": 12}, Version: "v1.5.0"}},
	// A snapshot of many tables: they are in the snapshot plan the
	// checkpoint names, 1,500 of whose tables are done.
	{"checkpoint-snapshot-plan", &Checkpoint{Source: "prod-eu", State: binlog.State{ServerID: 1017, Flavor: "mariadb", GTIDSet: "0-1017-1300",
		File: "mariadb-bin.000043", Pos: 4711, Epoch: 1,
		Snapshot: binlog.SnapshotState{After: []cdc.Value{cdc.Int(99)}, Requests: 18},
		Include:  []string{"shop.*"}},
		SourceTime: time.UnixMilli(1733500200000), Written: time.UnixMilli(1733500200789), Version: "v0.2.0",
		Plan: 3, PlanDone: 1500}},
}

// olderCheckpoints are the layouts earlier strait versions wrote: the
// checkpoint schema without its last fields, each added later with a
// default (git log schemas/checkpoint.avsc). Read today, the missing fields
// take their defaults.
var olderCheckpoints = []struct {
	name string
	last string // the last field of that layout
}{
	{"checkpoint-layout-8512336", "version"},         // the first checkpoint
	{"checkpoint-layout-0229117", "snapshot_after"},  // the initial snapshot
	{"checkpoint-layout-80e03c0", "exclude"},         // snapshots on demand
	{"checkpoint-layout-1226152", "snapshot_failed"}, // failed snapshot requests
}

// currentLast is the last field of the checkpoint the golden records were
// made with.
const currentLast = "snapshot_done"

// TestCheckpointGolden decodes each golden checkpoint and compares it,
// field by field, with the value it was written from, then encodes that
// value again and compares the bytes. -update rewrites the files from the
// values.
func TestCheckpointGolden(t *testing.T) {
	c := newCodec(t)
	for _, g := range goldenCheckpoints {
		t.Run(g.name, func(t *testing.T) {
			b := avrotest.GoldenRecord(t, g.name, c.versions[0], framed(t, c, g.cp), *update)
			got, err := c.Decode(b[5:], g.cp.Source)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(got, g.cp, ignoreFrom); diff != "" {
				t.Errorf("decoded (-got +want):\n%s", diff)
			}
			avrotest.SameRecord(t, c.versions[0], framed(t, c, got), b)
		})
	}
	// The richest checkpoint, as each earlier layout held it.
	rich := goldenCheckpoints[2].cp
	for _, o := range olderCheckpoints {
		t.Run(o.name, func(t *testing.T) {
			schema, dropped := schemaUpTo(t, schemas.Checkpoint, o.last)
			enc, err := avro.NewNativeEncoder(schema)
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
			b := avrotest.GoldenRecord(t, o.name, old, encodeWith(t, enc, native), *update)
			got, err := c.Decode(b[5:], rich.Source)
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
			avrotest.SameRecord(t, old, encodeWith(t, enc, again), b)
		})
	}
}

// TestCheckpointGoldenCovers keeps the golden records in step with the
// schema: a field added at the end of schemas/checkpoint.avsc makes
// today's layout an earlier one, which needs a golden record of its own
// before -update rewrites the current ones; and every earlier layout must
// be one the decoder reads.
func TestCheckpointGoldenCovers(t *testing.T) {
	versions := newCodec(t).versions
	fields := versions[0].Fields
	if last := fields[len(fields)-1].Name; last != currentLast {
		t.Errorf("schemas/checkpoint.avsc now ends at %q: add the layout ending at %q to olderCheckpoints, then set currentLast", last, currentLast)
	}
	for _, o := range olderCheckpoints {
		if !slices.ContainsFunc(versions, func(v *avro.Type) bool { return v.Fields[len(v.Fields)-1].Name == o.last }) {
			t.Errorf("older layout %s ends at %q: not a layout the checkpoint decoder reads", o.name, o.last)
		}
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
			c.Snapshot.Tables = nil
		case "snapshot_after":
			c.Snapshot.After = nil
		case "snapshot_filters":
			c.Snapshot.Filters = nil
		case "snapshot_requests":
			c.Snapshot.Requests = 0
		case "include":
			c.Include = nil
		case "exclude":
			c.Exclude = nil
		case "snapshot_origins":
			c.Snapshot.Origins = nil
		case "snapshot_failed":
			c.Snapshot.Failed = nil
		case "snapshot_plan":
			c.Plan = 0
		case "snapshot_done":
			c.PlanDone = 0
		default:
			panic("withDefaults: no default known for " + f)
		}
	}
	return &c
}
