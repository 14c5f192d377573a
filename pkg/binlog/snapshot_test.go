package binlog

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// openSnapshot opens a reader of db.* at the server's current position that
// snapshots db.t in chunks of chunkRows rows, closed when the test ends.
func openSnapshot(t *testing.T, ctx context.Context, db string, serverID uint32, chunkRows int) *Reader {
	t.Helper()
	r := openSnapshotUnclosed(t, ctx, db, serverID, chunkRows)
	t.Cleanup(r.Close)
	return r
}

func openSnapshotUnclosed(t *testing.T, ctx context.Context, db string, serverID uint32, chunkRows int) *Reader {
	t.Helper()
	cfg := sourceConfig(server, db+".*")
	cfg.ServerID, cfg.SnapshotChunkRows = serverID, chunkRows
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	r.Snapshot(SnapshotState{Tables: []string{db + ".t"}})
	if err := r.Start(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// readSnapshot reads transactions until the snapshot is done and returns
// their events in order.
func readSnapshot(t *testing.T, ctx context.Context, r *Reader) []cdc.Event {
	t.Helper()
	var out []cdc.Event
	for {
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, tx.Events...)
		if tx.Snapshot != nil && len(tx.Snapshot.Tables) == 0 {
			return out
		}
	}
}

// snapshotIDs returns the ids (column 0) of the snapshot rows (op r) among
// evs, in order.
func snapshotIDs(evs []cdc.Event) []int64 {
	var ids []int64
	for _, e := range evs {
		if e.Op == cdc.OpRead {
			ids = append(ids, e.After[0].Int)
		}
	}
	return ids
}

// TestSnapshotReadAheadDropsKeysChangedSinceItStarted: the chunks after the
// first are read ahead while the reader streams on to the first chunk's high
// watermark, behind an update of a row of the second chunk. The reader
// streams the update after that chunk's read started, so the row is
// published by the stream and left out of the chunk, whose window opened
// when its read started, not when the reader took it up.
func TestSnapshotReadAheadDropsKeysChangedSinceItStarted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS snap_ahead", "CREATE DATABASE snap_ahead",
		"CREATE TABLE snap_ahead.t (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO snap_ahead.t VALUES (1, 'old'), (2, 'old'), (3, 'old'), (4, 'old'), (5, 'old'), (6, 'old')"); err != nil {
		t.Fatal(err)
	}
	r := openSnapshot(t, ctx, "snap_ahead", 161, 2)
	// The reader stands before this update when it reads the first chunk
	// and the next ones (ids 3 and 4, 5 and 6) ahead.
	if err := server.Exec(ctx, "snap_ahead", "UPDATE t SET v = 'new' WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	evs := readSnapshot(t, ctx, r)
	if diff := cmp.Diff(snapshotIDs(evs), []int64{1, 2, 4, 5, 6}); diff != "" {
		t.Errorf("snapshot rows (-got +want): the row updated after the read ahead started must come from the stream only\n%s", diff)
	}
	state := map[int64]string{}
	for _, e := range evs {
		if e.After != nil {
			state[e.After[0].Int] = e.After[1].Str
		}
	}
	want := map[int64]string{1: "old", 2: "old", 3: "new", 4: "old", 5: "old", 6: "old"}
	if diff := cmp.Diff(state, want); diff != "" {
		t.Errorf("last state per key (-got +want):\n%s", diff)
	}
}

// TestSnapshotReadAheadReadAgainAfterDDL: a DDL of the table streamed while
// chunks are read ahead drops them with the waiting one (they follow rows
// the reader must read again with the new schema): every row is published
// once, in the new schema, none skipped.
func TestSnapshotReadAheadReadAgainAfterDDL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS snap_ahead_ddl", "CREATE DATABASE snap_ahead_ddl",
		"CREATE TABLE snap_ahead_ddl.t (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO snap_ahead_ddl.t VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f')"); err != nil {
		t.Fatal(err)
	}
	r := openSnapshot(t, ctx, "snap_ahead_ddl", 162, 2)
	// The reader reads the first chunk, and the next ones ahead, before it
	// streams this DDL: the DDL drops them all.
	if err := server.Exec(ctx, "snap_ahead_ddl", "ALTER TABLE t ADD COLUMN w INT NOT NULL DEFAULT 7"); err != nil {
		t.Fatal(err)
	}
	evs := readSnapshot(t, ctx, r)
	if diff := cmp.Diff(snapshotIDs(evs), []int64{1, 2, 3, 4, 5, 6}); diff != "" {
		t.Errorf("snapshot rows (-got +want):\n%s", diff)
	}
	for _, e := range evs {
		if e.Op == cdc.OpRead && (len(e.After) != 3 || e.After[2] != cdc.Int(7)) {
			t.Errorf("snapshot row %d: %v, want the new schema's three columns", e.After[0].Int, e.After)
		}
	}
}

// TestSnapshotCloseEndsChunkLoop: Close, which may run while ReadTx does,
// ends the chunk loop reading ahead (its goroutine exits and closes its
// session), and a ReadTx after it returns an error instead of waiting for
// chunks that will not come.
func TestSnapshotCloseEndsChunkLoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS snap_close", "CREATE DATABASE snap_close",
		"CREATE TABLE snap_close.t (id INT PRIMARY KEY)",
		"INSERT INTO snap_close.t VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)"); err != nil {
		t.Fatal(err)
	}
	r := openSnapshotUnclosed(t, ctx, "snap_close", 163, 2)
	var tx Tx
	if err := r.ReadTx(ctx, &tx); err != nil {
		t.Fatal(err)
	}
	if got := snapshotIDs(tx.Events); !cmp.Equal(got, []int64{1, 2}) {
		t.Fatalf("first transaction: snapshot rows %v, want [1 2]", got)
	}
	loop := r.snap.loop
	if loop == nil {
		t.Fatal("no chunk loop reads ahead after the first chunk")
	}
	r.Close()
	select {
	case <-loop.exited:
	case <-ctx.Done():
		t.Fatal("the chunk loop still runs after Close")
	}
	if !loop.closed {
		t.Error("the stopped chunk loop left its session open")
	}
	for {
		var tx Tx
		err := r.ReadTx(ctx, &tx)
		if ctx.Err() != nil {
			t.Fatal("ReadTx after Close waits instead of failing")
		}
		if err != nil {
			break // a chunk read ahead before Close may still be published first
		}
	}
}
