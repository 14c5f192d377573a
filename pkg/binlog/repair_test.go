package binlog

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// readRepaired reads transactions from r until one publishes the request
// before offset next, and returns the events read and that transaction's
// snapshot state.
func readRepaired(t *testing.T, ctx context.Context, r *Reader, next int64, during func()) ([]cdc.Event, *SnapshotState) {
	t.Helper()
	var out []cdc.Event
	for first := true; ; first = false {
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, tx.Events...)
		if first && during != nil {
			during() // the repair is taken: its table's changes are watched from now on
		}
		if tx.Snapshot != nil && tx.Snapshot.Requests == next {
			return out, tx.Snapshot
		}
	}
}

// TestRepairPublishesKeysWithTheSnapshotRule: a repair request publishes
// the rows of its keys the source has as snapshot rows, a key-only delete
// for each key it does not have, and leaves a key the stream changed
// after the request was taken to the stream (its change is newer), in one
// transaction that takes the request's offset.
func TestRepairPublishesKeysWithTheSnapshotRule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS repair_keys", "CREATE DATABASE repair_keys",
		"CREATE TABLE repair_keys.t (id INT, name VARCHAR(10), v VARCHAR(10) NOT NULL, PRIMARY KEY (id, name))",
		"INSERT INTO repair_keys.t VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three')"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "repair_keys.*")
	cfg.ServerID, cfg.HeartbeatPeriod = 171, 100*time.Millisecond
	r := openAtCurrent(t, ctx, cfg)
	req := SnapshotRequest{Tables: []string{"repair_keys.t"}, Keys: [][]string{{"1", "a"}, {"3", "c"}, {"99", "gone"}, {"2", "B"}}, Next: 5}
	if err := r.RequestSnapshot(ctx, req); err != nil {
		t.Fatal(err)
	}
	evs, st := readRepaired(t, ctx, r, 5, func() {
		if err := server.Exec(ctx, "repair_keys", "UPDATE t SET v = 'newest' WHERE id = 3"); err != nil {
			t.Error(err)
		}
	})
	type change struct {
		Op       cdc.Op
		ID       int64
		Name, V  string
		Snapshot bool
		KeyOnly  bool
	}
	var got []change
	for _, e := range evs {
		row := e.After
		if e.Op == cdc.OpDelete {
			row = e.Before
		}
		got = append(got, change{e.Op, row[0].Int, row[1].Str, row[2].Str, e.Source.Snapshot, e.Source.BeforeKeyOnly})
	}
	// (2, 'B') matches (2, 'b') in the column's collation: the row is
	// published, and the key as asked (which BigQuery, comparing bytes,
	// holds apart) is deleted.
	want := []change{
		{cdc.OpUpdate, 3, "c", "newest", false, false},
		{cdc.OpRead, 1, "a", "one", true, false},
		{cdc.OpRead, 2, "b", "two", true, false},
		{cdc.OpDelete, 99, "gone", "", true, true},
		{cdc.OpDelete, 2, "B", "", true, true},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("changes (-got +want): key 3, changed after the request was taken, comes from the stream only\n%s", diff)
	}
	if len(st.Failed) != 0 {
		t.Errorf("failures: %v", st.Failed)
	}
	last := evs[len(evs)-1]
	if !last.Before[2].Null {
		t.Errorf("a repair's delete carries a value of a non-key column: %v", last.Before)
	}
}

// TestRepairRefusesKeysNotOfTheTable: keys that do not fit the table's
// primary key (a value that is not of its type, a key of the wrong width)
// and a table the source does not have publish nothing, and the request
// is recorded as failed with why, naming the table and column.
func TestRepairRefusesKeysNotOfTheTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS repair_bad", "CREATE DATABASE repair_bad",
		"CREATE TABLE repair_bad.t (id INT PRIMARY KEY, f FLOAT)", "CREATE TABLE repair_bad.fk (f FLOAT PRIMARY KEY)",
		"INSERT INTO repair_bad.t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "repair_bad.*")
	cfg.ServerID, cfg.HeartbeatPeriod = 172, 100*time.Millisecond
	r := openAtCurrent(t, ctx, cfg)
	for i, tc := range []struct {
		table string
		keys  [][]string
		want  string
	}{
		{"repair_bad.t", [][]string{{"1"}, {"1; DROP TABLE t"}}, "repair: key 2 column id: strconv.ParseInt"},
		{"repair_bad.t", [][]string{{"3000000000"}}, "value out of range"},
		{"repair_bad.t", [][]string{{"1", "2"}}, "key 1 has 2 values, the primary key of repair_bad.t has 1 columns"},
		{"repair_bad.nothere", [][]string{{"1"}}, "table repair_bad.nothere does not exist"},
		{"repair_bad.fk", [][]string{{"1.5"}}, "a float32 key is not repaired by key"},
	} {
		next := int64(i + 1)
		if err := r.RequestSnapshot(ctx, SnapshotRequest{Tables: []string{tc.table}, Keys: tc.keys, Next: next}); err != nil {
			t.Fatal(err)
		}
		evs, st := readRepaired(t, ctx, r, next, nil)
		if len(evs) != 0 {
			t.Errorf("%s %v: published %v", tc.table, tc.keys, evs)
		}
		f := st.Failed[len(st.Failed)-1]
		if f.Table != tc.table || f.Request != next-1 || !strings.Contains(f.Reason, tc.want) {
			t.Errorf("%s %v: failure %+v, want request %d and %q", tc.table, tc.keys, f, next-1, tc.want)
		}
	}
	if rows, err := server.Query(ctx, "", "SELECT COUNT(*) FROM repair_bad.t"); err != nil || *rows[0][0] != "1" {
		t.Errorf("the table after the hostile keys: %v, %v", rows, err)
	}
}

// TestRepairAcrossARestart: a repair not published when its reader stops
// is carried out by the next reader, which reads the request again from
// the checkpoint's offset; one published already (the checkpoint's
// offset is past it) is not carried out again.
func TestRepairAcrossARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS repair_restart", "CREATE DATABASE repair_restart",
		"CREATE TABLE repair_restart.t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO repair_restart.t VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "repair_restart.*")
	cfg.ServerID, cfg.HeartbeatPeriod = 174, 100*time.Millisecond
	req := SnapshotRequest{Tables: []string{"repair_restart.t"}, Keys: [][]string{{"1"}}, Next: 1}

	first, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	if err := first.RequestSnapshot(ctx, req); err != nil {
		t.Fatal(err)
	}
	var tx Tx
	if err := first.ReadTx(ctx, &tx); err != nil { // takes the request; its keys are read recentWindow later
		t.Fatal(err)
	}
	if tx.Snapshot != nil && tx.Snapshot.Requests == 1 {
		t.Fatal("the repair was published before its keys could be read")
	}
	first.Close()

	cfg.ServerID = 175
	second := openAtCurrent(t, ctx, cfg)
	second.Snapshot(SnapshotState{Requests: 0}) // the checkpoint: the request not taken
	if err := second.RequestSnapshot(ctx, req); err != nil {
		t.Fatal(err)
	}
	evs, _ := readRepaired(t, ctx, second, 1, nil)
	if len(evs) != 1 || evs[0].Op != cdc.OpRead || evs[0].After[1].Str != "one" {
		t.Errorf("after the restart: %v, want the row of key 1 once", evs)
	}

	cfg.ServerID = 176
	third := openAtCurrent(t, ctx, cfg)
	third.Snapshot(SnapshotState{Requests: 1}) // the checkpoint: published
	if err := third.RequestSnapshot(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := server.Exec(ctx, "repair_restart", "INSERT INTO t VALUES (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); { // past recentWindow: a repair would be out
		var tx Tx
		if err := third.ReadTx(ctx, &tx); err != nil {
			t.Fatal(err)
		}
		for _, e := range tx.Events {
			if e.Op == cdc.OpRead {
				t.Fatalf("a repair published again: %v", e.After)
			}
		}
	}
}
