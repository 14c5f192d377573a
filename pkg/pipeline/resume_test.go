package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// replica is a source server: its server_id, whether it still has the
// binlog asked for, and the tables the configuration captures there.
type replica struct {
	id     uint32
	gone   bool
	tables []string
	probed []binlog.Start // asked of Available
	times  *binlog.ChangeTimes
}

func (r *replica) ServerID() (uint32, error) { return r.id, nil }

func (r *replica) Available(ctx context.Context, s binlog.Start) (bool, error) {
	r.probed = append(r.probed, s)
	return !r.gone, nil
}

func (r *replica) CapturedTables(ctx context.Context) ([]string, error) { return r.tables, nil }

func (r *replica) ChangeTimes(ctx context.Context) (*binlog.ChangeTimes, error) {
	if r.times == nil {
		return nil, errors.New("information_schema: access denied")
	}
	return r.times, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// checkpoint is one written on server 1 while snapshotting shop.a, when
// the configuration captured shop.* only.
func checkpointOf(gtid string) *Checkpoint {
	return &Checkpoint{State: binlog.State{ServerID: 1, GTIDSet: gtid, File: "bin.000003", Pos: 400, RowsDone: 5, TxGTID: "0-1-42", Epoch: 2,
		Snapshot: binlog.SnapshotState{Tables: []string{"shop.a"}, After: []cdc.Value{{Int: 9}}, Requests: 3},
		Include:  []string{"shop.*"}}}
}

// history has an entry of server 1 before the checkpoint, one after it,
// and one of server 2.
func history() map[string]*cdc.TableSchema {
	return map[string]*cdc.TableSchema{
		"shop.a": {Database: "shop", Table: "a", ServerID: 1, File: "bin.000003", Pos: 100},
		"shop.b": {Database: "shop", Table: "b", ServerID: 1, File: "bin.000003", Pos: 900},
		"crm.c":  {Database: "crm", Table: "c", ServerID: 2, File: "bin.000001", Pos: 4},
	}
}

func TestDecide(t *testing.T) {
	captured := []string{"shop.a", "shop.b", "crm.c"} // crm.c: captured since the checkpoint
	resumed := binlog.Start{GTID: "0-1-41", File: "bin.000003", Pos: 400, SkipRows: 5, TxGTID: "0-1-42", Epoch: 2}
	inCheckpoint := binlog.SnapshotState{Tables: []string{"shop.a", "crm.c"}, After: []cdc.Value{{Int: 9}}, Requests: 3}
	for _, tc := range []struct {
		name       string
		serverID   uint32
		gone       bool
		cp         *Checkpoint
		configured binlog.Start
		policy     Policy
		want       *Plan
		wantErr    error
		wantProbe  bool
	}{{
		name:   "first start snapshots every captured table",
		policy: Policy{Snapshot: binlog.SnapshotInitial, Transactional: true},
		want:   &Plan{Case: Fresh, Erase: []string{"crm.c", "shop.a", "shop.b"}, Snapshot: binlog.SnapshotState{Tables: captured}},
	}, {
		name:   "first start without a snapshot",
		policy: Policy{Snapshot: binlog.SnapshotNever, Transactional: true},
		want:   &Plan{Case: Fresh, Erase: []string{"crm.c", "shop.a", "shop.b"}},
	}, {
		name:       "a configured start wins over the checkpoint",
		serverID:   1,
		cp:         checkpointOf("0-1-41"),
		configured: binlog.Start{File: "bin.000009", Pos: 4},
		policy:     Policy{Snapshot: binlog.SnapshotInitial, Transactional: true},
		want: &Plan{Case: Configured, Start: binlog.Start{File: "bin.000009", Pos: 4}, Erase: []string{"crm.c", "shop.a", "shop.b"},
			Snapshot: inCheckpoint},
	}, {
		name:     "the checkpoint on its own server",
		serverID: 1,
		cp:       checkpointOf("0-1-41"),
		policy:   Policy{Snapshot: binlog.SnapshotInitial, Transactional: true},
		want:     &Plan{Case: Resumed, Start: resumed, History: history(), Snapshot: inCheckpoint},
	}, {
		name:     "the checkpoint without new tables (snapshot never)",
		serverID: 1,
		cp:       checkpointOf("0-1-41"),
		policy:   Policy{Snapshot: binlog.SnapshotNever, Transactional: true},
		want: &Plan{Case: Resumed, Start: resumed, History: history(),
			Snapshot: binlog.SnapshotState{Tables: []string{"shop.a"}, After: []cdc.Value{{Int: 9}}, Requests: 3}},
	}, {
		name:     "without transactions, history past the checkpoint or of another server is dropped",
		serverID: 1,
		cp:       checkpointOf("0-1-41"),
		policy:   Policy{Snapshot: binlog.SnapshotInitial},
		want: &Plan{Case: Resumed, Start: resumed, History: map[string]*cdc.TableSchema{"shop.a": history()["shop.a"]},
			Snapshot: inCheckpoint},
	}, {
		name:     "failover by GTID set: a new epoch",
		serverID: 2,
		cp:       checkpointOf("0-1-41"),
		policy:   Policy{Snapshot: binlog.SnapshotInitial, Transactional: true},
		want: &Plan{Case: Resumed, Start: binlog.Start{GTID: "0-1-41", SkipRows: 5, TxGTID: "0-1-42", Epoch: 3}, History: history(),
			Snapshot: inCheckpoint},
	}, {
		name:     "failover without GTIDs stops",
		serverID: 2,
		cp:       checkpointOf(""),
		policy:   Policy{Snapshot: binlog.SnapshotInitial, Transactional: true},
		wantErr:  errElsewhere,
	}, {
		name:     "failover without GTIDs when_needed: snapshot again",
		serverID: 2,
		cp:       checkpointOf(""),
		policy:   Policy{Snapshot: binlog.SnapshotWhenNeeded, Transactional: true},
		want: &Plan{Case: Lost, Start: binlog.Start{Epoch: 3}, Erase: []string{"crm.c", "shop.a", "shop.b"},
			Snapshot: binlog.SnapshotState{Tables: captured, Requests: 3}},
	}, {
		name:      "purged binlog when_needed: snapshot again",
		serverID:  1,
		gone:      true,
		cp:        checkpointOf("0-1-41"),
		policy:    Policy{Snapshot: binlog.SnapshotWhenNeeded, Transactional: true},
		wantProbe: true,
		want: &Plan{Case: Lost, Start: binlog.Start{Epoch: 3}, Erase: []string{"crm.c", "shop.a", "shop.b"},
			Snapshot: binlog.SnapshotState{Tables: captured, Requests: 3}},
	}, {
		name:      "binlog still there when_needed: resumed",
		serverID:  1,
		cp:        checkpointOf("0-1-41"),
		policy:    Policy{Snapshot: binlog.SnapshotWhenNeeded, Transactional: true},
		wantProbe: true,
		want:      &Plan{Case: Resumed, Start: resumed, History: history(), Snapshot: inCheckpoint},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := &replica{id: tc.serverID, gone: tc.gone, tables: captured}
			got, err := Decide(context.Background(), r, Facts{Checkpoint: tc.cp, History: history(), Configured: tc.configured}, tc.policy, quiet)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("plan (-got +want):\n%s", diff)
			}
			if probed := len(r.probed) > 0; probed != tc.wantProbe {
				t.Errorf("binlog probed: %v, want %v", probed, tc.wantProbe)
			}
		})
	}
}

func TestSnapshotCapturedDropsExcludedTables(t *testing.T) {
	cp := &Checkpoint{State: binlog.State{Snapshot: binlog.SnapshotState{Tables: []string{"shop.a", "shop.b"}, After: []cdc.Value{{Int: 9}},
		Filters: map[string]string{"shop.a": "id > 1"}, Origins: map[string]int64{"shop.a": 4}},
		Include: []string{"shop.*"}}}
	if err := SnapshotCaptured(cp, &binlog.Config{Include: []string{"shop.b"}}, quiet); err != nil {
		t.Fatal(err)
	}
	want := &Checkpoint{State: binlog.State{Snapshot: binlog.SnapshotState{Tables: []string{"shop.b"}, Filters: map[string]string{}, Origins: map[string]int64{}},
		Include: []string{"shop.*"}}}
	if diff := cmp.Diff(cp, want, cmp.AllowUnexported(Checkpoint{})); diff != "" {
		t.Errorf("checkpoint (-got +want):\n%s", diff)
	}

	// A table neither pattern captures cannot be in a checkpoint strait wrote.
	cp = &Checkpoint{State: binlog.State{Snapshot: binlog.SnapshotState{Tables: []string{"crm.c"}}, Include: []string{"shop.*"}}}
	if err := SnapshotCaptured(cp, &binlog.Config{Include: []string{"shop.*"}}, quiet); err == nil {
		t.Fatal("a snapshot table captured by no pattern: no error")
	}
}
