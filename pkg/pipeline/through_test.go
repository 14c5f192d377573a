package pipeline

import (
	"math"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// TestThroughOfCheckpoint: a checkpoint record read back gives the
// sequence of its resume point and its source time, and is no cut while a
// snapshot is in progress; a record of another source is refused.
func TestThroughOfCheckpoint(t *testing.T) {
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1700000000123)
	record := func(snapshot []string) *kafka.StateRecord {
		cp := &Checkpoint{Source: "shop", SourceTime: at, Written: at, Version: "test",
			State: binlog.State{Flavor: "mariadb", File: "binlog.000007", Pos: 4096, Epoch: 2, Snapshot: binlog.SnapshotState{Tables: snapshot}}}
		body, err := c.Append(nil, cp)
		if err != nil {
			t.Fatal(err)
		}
		return &kafka.StateRecord{Key: "shop", Body: body}
	}
	through, commit, cut, err := c.Through(record(nil), "shop")
	if want := (cdc.Position{Epoch: 2, File: 7, Pos: 4096, Row: math.MaxUint64}); err != nil || through != want || !commit.Equal(at) || !cut {
		t.Errorf("Through = %v, %v, cut %v, %v; want %v, %v, a cut", through, commit, cut, err, want, at)
	}
	if _, _, cut, err := c.Through(record([]string{"shop.users"}), "shop"); err != nil || cut {
		t.Errorf("during a snapshot: cut %v, %v; want no cut", cut, err)
	}
	// A snapshot of many tables: its checkpoints name the plan.
	planned := record(nil)
	cp, err := c.Decode(planned.Body, "shop")
	if err != nil {
		t.Fatal(err)
	}
	cp.Plan, cp.PlanDone = 4, 17
	if planned.Body, err = c.Append(nil, cp); err != nil {
		t.Fatal(err)
	}
	if _, _, cut, err := c.Through(planned, "shop"); err != nil || cut {
		t.Errorf("during a snapshot named by its plan: cut %v, %v; want no cut", cut, err)
	}
	if _, _, _, err := c.Through(record(nil), "other"); err == nil {
		t.Error("a checkpoint of another source: no error")
	}
}
