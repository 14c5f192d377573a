package pipeline

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/avro"
	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// manyTables are n tables to snapshot, shop.t00000 on.
func manyTables(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("shop.t%05d", i)
	}
	return out
}

// setPlan is Codec.setPlan with the body of the plan it writes (nil:
// none), as the state store stamps it for source "strait".
func setPlan(t *testing.T, c *Codec, cp *Checkpoint) []byte {
	t.Helper()
	v := c.setPlan(cp)
	if v == nil {
		return nil
	}
	b, err := v.AppendState(nil, kafka.Stamp{Source: "strait"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckpointSizeFlatInTables: with a snapshot of 20,000 tables under
// way, the checkpoint written at every commit is as small as with 100 —
// the tables are in the snapshot plan, written once — and no longer lists
// schema ids.
func TestCheckpointSizeFlatInTables(t *testing.T) {
	size := func(n int) (checkpoint, plan int) {
		c := newCodec(t)
		cp := &Checkpoint{Source: "strait", State: binlog.State{ServerID: 1, Flavor: "mariadb", File: "bin.000001", Pos: 4,
			Snapshot: binlog.SnapshotState{Tables: manyTables(n)}}}
		body := setPlan(t, c, cp)
		// A thousand tables later.
		cp.Snapshot.Tables = cp.Snapshot.Tables[min(1000, n-1):]
		if more := setPlan(t, c, cp); more != nil {
			t.Fatalf("a table done wrote a new plan (%d bytes)", len(more))
		}
		return len(framed(t, c, cp)), len(body)
	}
	small, smallPlan := size(100)
	large, largePlan := size(20_000)
	t.Logf("checkpoint: %d bytes at 100 tables, %d at 20,000; plan %d and %d bytes, written once", small, large, smallPlan, largePlan)
	if large > small+8 || large > 200 {
		t.Errorf("checkpoint of %d bytes at 20,000 tables, %d at 100: want the same size, under 200", large, small)
	}
}

// TestSnapshotPlanRoundTrip: a checkpoint names its plan, and reads back
// with the tables, filters and origins left of it; a change other than
// the first table finishing writes a new plan.
func TestSnapshotPlanRoundTrip(t *testing.T) {
	c := newCodec(t)
	snap := binlog.SnapshotState{Tables: []string{"shop.a", "shop.b", "shop.c", "crm.d"}, Requests: 9,
		Filters: map[string]string{"shop.c": "id > 5"}, Origins: map[string]int64{"shop.c": 7, "crm.d": 8}}
	cp := &Checkpoint{Source: "strait", State: binlog.State{ServerID: 1, Flavor: "mariadb", File: "bin.000001", Pos: 4, Snapshot: snap}}
	plan1 := setPlan(t, c, cp)
	if plan1 == nil || cp.Plan != 1 {
		t.Fatalf("first plan: %d bytes, number %d", len(plan1), cp.Plan)
	}

	steps := []struct {
		name    string
		change  func(s *binlog.SnapshotState)
		newPlan bool
		number  int64
		done    int64
	}{
		{"first table done", func(s *binlog.SnapshotState) { s.Tables = s.Tables[1:] }, false, 1, 1},
		{"second table done", func(s *binlog.SnapshotState) { s.Tables = s.Tables[1:] }, false, 1, 2},
		{"a filter changed", func(s *binlog.SnapshotState) { s.Filters = map[string]string{"shop.c": "id > 6"} }, true, 2, 0},
		{"a table added", func(s *binlog.SnapshotState) {
			s.Tables = append(append([]string{}, s.Tables...), "crm.e")
			s.Origins = map[string]int64{"shop.c": 7, "crm.d": 8, "crm.e": 10}
		}, true, 3, 0},
		{"a table dropped from the middle", func(s *binlog.SnapshotState) {
			s.Tables = []string{"shop.c", "crm.e"}
			s.Origins = map[string]int64{"shop.c": 7, "crm.e": 10}
		}, true, 4, 0},
		{"the last table left", func(s *binlog.SnapshotState) {
			s.Tables, s.Filters, s.Origins = []string{"crm.e"}, nil, map[string]int64{"crm.e": 10}
		}, false, 4, 1},
	}
	for _, st := range steps {
		st.change(&cp.Snapshot)
		body := setPlan(t, c, cp)
		if (body != nil) != st.newPlan || cp.Plan != st.number || cp.PlanDone != st.done {
			t.Fatalf("%s: new plan %v, plan %d, done %d; want %v, %d, %d", st.name, body != nil, cp.Plan, cp.PlanDone, st.newPlan, st.number, st.done)
		}
		if body != nil {
			plan1 = body
		}
		// Read back by a new producer: the same snapshot state.
		read := newCodec(t)
		got, err := read.FromRecord(&kafka.StateRecord{Body: framed(t, c, cp)[5:]}, &kafka.StateRecord{Body: plan1}, "strait")
		if err != nil {
			t.Fatalf("%s: read back: %v", st.name, err)
		}
		if diff := cmp.Diff(got.Snapshot, cp.Snapshot); diff != "" {
			t.Errorf("%s: snapshot read back (-got +want):\n%s", st.name, diff)
		}
		// It goes on with that plan: the next table done writes none.
		if len(got.Snapshot.Tables) > 1 {
			next := *got
			next.Snapshot.Tables = next.Snapshot.Tables[1:]
			if body := setPlan(t, read, &next); body != nil || next.Plan != cp.Plan {
				t.Errorf("%s: after the read, a table done wrote a plan or named plan %d", st.name, next.Plan)
			}
		}
	}
	cp.Snapshot = binlog.SnapshotState{}
	if body := setPlan(t, c, cp); body != nil || cp.Plan != 0 {
		t.Errorf("no snapshot: plan %d written %v, want none", cp.Plan, body != nil)
	}
}

// TestSnapshotPlanRefused: a checkpoint and plan that cannot have been
// written together are refused, never read as another snapshot.
func TestSnapshotPlanRefused(t *testing.T) {
	c := newCodec(t)
	cp := &Checkpoint{Source: "strait", State: binlog.State{ServerID: 1, Flavor: "mariadb", File: "bin.000001", Pos: 4,
		Snapshot: binlog.SnapshotState{Tables: []string{"shop.a", "shop.b"}}}}
	plan := setPlan(t, c, cp)
	record := func(change func(*Checkpoint)) *kafka.StateRecord {
		cp := *cp
		change(&cp)
		return &kafka.StateRecord{Body: framed(t, c, &cp)[5:]}
	}
	otherPlan := func(change func(native map[string]any)) *kafka.StateRecord {
		native := map[string]any{"source": "strait", "plan": int64(1), "tables": []any{"shop.a", "shop.b"}, "filters": map[string]any{}, "origins": map[string]any{}}
		change(native)
		b, err := c.planEnc.Append(nil, native)
		if err != nil {
			t.Fatal(err)
		}
		return &kafka.StateRecord{Body: b}
	}
	for name, tc := range map[string]struct{ cp, plan *kafka.StateRecord }{
		"no plan record":        {record(func(*Checkpoint) {}), nil},
		"another plan's number": {record(func(cp *Checkpoint) { cp.Plan = 2 }), &kafka.StateRecord{Body: plan}},
		"more done than tables": {record(func(cp *Checkpoint) { cp.PlanDone = 3 }), &kafka.StateRecord{Body: plan}},
		"another source's plan": {record(func(*Checkpoint) {}), otherPlan(func(n map[string]any) { n["source"] = "other" })},
		"a table twice":         {record(func(*Checkpoint) {}), otherPlan(func(n map[string]any) { n["tables"] = []any{"shop.a", "shop.a"} })},
		"not a database.table":  {record(func(*Checkpoint) {}), otherPlan(func(n map[string]any) { n["tables"] = []any{"shop.a", "b"} })},
		"a filter of no table":  {record(func(*Checkpoint) {}), otherPlan(func(n map[string]any) { n["filters"] = map[string]any{"x.y": "1"} })},
		"a negative origin":     {record(func(*Checkpoint) {}), otherPlan(func(n map[string]any) { n["origins"] = map[string]any{"shop.a": int64(-1)} })},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := newCodec(t).FromRecord(tc.cp, tc.plan, "strait")
			if !errors.Is(err, avro.ErrInvalid) {
				t.Fatalf("read as %+v, %v; want refused (avro.ErrInvalid)", got, err)
			}
		})
	}
}
