package binlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
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
	loop := r.snapshots.snap.loop
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

// TestSnapshotResumedFarBehindCatchesUp places a restart at the point that
// stalled TestSnapshotKeylessTableByConfiguredUniqueKey (issue 20): the
// snapshot of a table without a primary key, by a configured unique key
// given in another order than its index's, resumes after a key from a
// checkpoint far behind the source, with 160,000 changes of that very
// table to stream before the first chunk's high watermark. Every one of
// them is a change of the table being snapshotted; the reader used to
// keep each in a list it copied whole at every change, and a reader that
// slow fell further behind a source writing on, never reaching the high
// watermark. It must catch up, keep what it remembers bounded, and end
// with every row after the key as SELECT shows it.
func TestSnapshotResumedFarBehindCatchesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS snap_behind", "CREATE DATABASE snap_behind",
		"SET SESSION max_recursive_iterations = 100000",
		`CREATE TABLE snap_behind.t (host VARCHAR(20) NOT NULL, seq INT NOT NULL, payload VARCHAR(40), UNIQUE KEY hs (host, seq))`,
		`INSERT INTO snap_behind.t WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < 19999)
			SELECT ELT(1 + k % 3, 'alpha', 'beta', 'gamma'), k DIV 3, CONCAT('p', k) FROM s`); err != nil {
		t.Fatal(err)
	}
	// The checkpoint: a GTID position, and the snapshot after (alpha, 100).
	pos, err := server.Query(ctx, "", "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	var behind []string
	for i := range 8 {
		behind = append(behind, fmt.Sprintf("UPDATE snap_behind.t SET payload = CONCAT('u%d ', seq)", i))
	}
	behind = append(behind, "DELETE FROM snap_behind.t WHERE seq % 7 = 3", "INSERT INTO snap_behind.t VALUES ('beta', 99999, 'late')")
	if err := server.Exec(ctx, "", behind...); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "snap_behind.*")
	cfg.ServerID, cfg.SnapshotChunkRows = 164, 50
	cfg.SnapshotKeys = []string{"snap_behind.t:seq+host"}
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Snapshot(SnapshotState{Tables: []string{"snap_behind.t"}, After: []cdc.Value{cdc.Str("alpha"), cdc.Int(100)}})
	if err := r.Start(ctx, Start{GTID: *pos[0][0]}); err != nil {
		t.Fatal(err)
	}
	state := map[string]string{} // "host/seq" → payload, replayed in order
	id := func(row []cdc.Value) string { return fmt.Sprintf("%s/%d", row[0].Str, row[1].Int) }
	held := 0
	for done := false; !done; {
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatalf("%d rows replayed, %d changes held at most: %v", len(state), held, err)
		}
		if r.snapshots.snap != nil {
			held = max(held, len(r.snapshots.snap.recent))
		}
		for _, e := range tx.Events {
			if e.Before != nil {
				delete(state, id(e.Before))
			}
			if e.After != nil {
				state[id(e.After)] = e.After[2].Str
			}
		}
		done = tx.Snapshot != nil && len(tx.Snapshot.Tables) == 0
	}
	if held > maxRecent {
		t.Errorf("%d changes remembered for the chunks read ahead, want at most %d", held, maxRecent)
	}
	rows, err := server.Query(ctx, "snap_behind", "SELECT host, seq, payload FROM t WHERE host <> 'alpha' OR seq > 100")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, row := range rows {
		want[*row[0]+"/"+*row[1]] = *row[2]
	}
	for k := range state {
		if host, seq, _ := strings.Cut(k, "/"); host == "alpha" && atoiTest(seq) <= 100 {
			delete(state, k) // published before the checkpoint
		}
	}
	if diff := cmp.Diff(state, want); diff != "" {
		t.Errorf("rows after the key, replayed, against SELECT (-got +want):\n%s", diff)
	}
}

func atoiTest(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestSnapshotStallIsReported: a chunk read that waits (the table is locked
// by another session) is reported once source.snapshot_stall_warning has
// passed without a publication — a warning naming the table, the last key,
// the chunk's query and what the snapshot waits for, and a count in
// strait_producer_snapshot_stalls_total — and the snapshot goes on once the
// lock is released.
func TestSnapshotStallIsReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS snap_stall", "CREATE DATABASE snap_stall",
		"CREATE TABLE snap_stall.t (id INT PRIMARY KEY, v INT)", "INSERT INTO snap_stall.t VALUES (1, 1), (2, 2), (3, 3)"); err != nil {
		t.Fatal(err)
	}
	lock, err := server.Conn(ctx, "snap_stall")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.Execute("LOCK TABLES t WRITE"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "snap_stall.*")
	cfg.ServerID, cfg.SnapshotChunkRows, cfg.SnapshotStallWarning = 165, 2, 100*time.Millisecond
	var logs testenv.Buffer
	reg := prometheus.NewRegistry()
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Snapshot(SnapshotState{Tables: []string{"snap_stall.t"}, After: []cdc.Value{cdc.Int(1)}})
	if err := r.Start(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	read := make(chan []cdc.Event, 1)
	go func() {
		var out []cdc.Event
		for {
			var tx Tx
			if err := r.ReadTx(ctx, &tx); err != nil {
				t.Error(err)
				read <- nil
				return
			}
			out = append(out, tx.Events...)
			if tx.Snapshot != nil && len(tx.Snapshot.Tables) == 0 {
				read <- out
				return
			}
		}
	}()
	stalls := func() float64 {
		return testutil.ToFloat64(r.snapshots.metrics.snapshotStalls.WithLabelValues("snap_stall.t"))
	}
	for stalls() < 2 { // reported again each period
		select {
		case <-ctx.Done():
			t.Fatalf("the stalled snapshot is not reported; log:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	log := logs.String()
	for _, want := range []string{"level=WARN", "snapshot: nothing published for a while", "table=snap_stall.t", "after_key=(1)",
		"waiting_for=\"the chunk's read on the source\"", "SELECT `id`, `v` FROM `snap_stall`.`t` WHERE (`id` > ?) ORDER BY `id` LIMIT 2"} {
		if !strings.Contains(log, want) {
			t.Errorf("the stall warning does not say %s:\n%s", want, log)
		}
	}
	if _, err := lock.Execute("UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	select {
	case evs := <-read:
		if diff := cmp.Diff(snapshotIDs(evs), []int64{2, 3}); diff != "" {
			t.Errorf("snapshot rows after the lock (-got +want):\n%s", diff)
		}
	case <-ctx.Done():
		t.Fatal("the snapshot did not go on after the lock was released")
	}
}

// TestChunksBoundedByBytes: with rows of 100 KB and a budget of 1 MiB,
// the snapshot of a keyed table ends each chunk at about 1 MiB whatever
// source.snapshot_chunk_rows says (the next chunks read fewer rows), a
// table without a key comes in pieces of it, and a source transaction
// changing 5 MB of rows is handed out in parts of about 1 MiB; every row
// arrives once, in order.
func TestChunksBoundedByBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "DROP DATABASE IF EXISTS snap_bytes", "CREATE DATABASE snap_bytes",
		"SET SESSION max_recursive_iterations = 1000",
		"CREATE TABLE snap_bytes.t (id INT PRIMARY KEY, body MEDIUMBLOB)",
		"INSERT INTO snap_bytes.t WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < 50) SELECT k, REPEAT('x', 100000) FROM s",
		"CREATE TABLE snap_bytes.nokey (id INT, body MEDIUMBLOB)",
		"INSERT INTO snap_bytes.nokey SELECT id, body FROM snap_bytes.t",
	); err != nil {
		t.Fatal(err)
	}
	const budget = 1 << 20
	for _, table := range []string{"t", "nokey"} {
		t.Run(table, func(t *testing.T) {
			cfg := sourceConfig(server, "snap_bytes."+table)
			cfg.ServerID, cfg.SnapshotChunkRows, cfg.SnapshotChunkBytes = 166, 4096, budget
			r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			r.Snapshot(SnapshotState{Tables: []string{"snap_bytes." + table}})
			if err := r.Start(ctx, Start{}); err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for done := false; !done; {
				var tx Tx
				if err := r.ReadTx(ctx, &tx); err != nil {
					t.Fatal(err)
				}
				size := 0
				for _, e := range tx.Events {
					ids = append(ids, e.After[0].Int)
					size += rowBytes(e.After)
				}
				if size > budget+110_000 {
					t.Errorf("a snapshot transaction of %d rows, %d bytes", len(tx.Events), size)
				}
				done = tx.Snapshot != nil && len(tx.Snapshot.Tables) == 0
			}
			slices.Sort(ids)
			want := make([]int64, 50)
			for i := range want {
				want[i] = int64(i + 1)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("snapshot rows %v, want 1..50 once each", ids)
			}
		})
	}
	t.Run("stream", func(t *testing.T) {
		cfg := sourceConfig(server, "snap_bytes.t")
		cfg.ServerID, cfg.ChunkBytes = 167, budget
		r := openAtCurrent(t, ctx, cfg)
		if err := server.Exec(ctx, "snap_bytes", "UPDATE t SET body = REPEAT('y', 100000)"); err != nil {
			t.Fatal(err)
		}
		var n, parts int
		for n < 50 {
			var tx Tx
			if err := r.ReadTx(ctx, &tx); err != nil {
				t.Fatal(err)
			}
			if len(tx.Events) == 0 {
				continue
			}
			parts++
			n += len(tx.Events)
			if tx.bytes > budget+210_000 {
				t.Errorf("a part of %d changes, %d bytes", len(tx.Events), tx.bytes)
			}
		}
		if n != 50 || parts < 5 {
			t.Errorf("%d changes in %d parts, want 50 in parts of about 1 MiB", n, parts)
		}
	})
}

// A failure is kept as the checkpoint takes it: its reason on one line and
// bounded, the last maxFailed failures only, the list handed out before
// left as it was.
func TestWithFailureKeepsTheCheckpointsBounds(t *testing.T) {
	var failed []SnapshotFailure
	for i := range maxFailed + 3 {
		failed = withFailure(failed, fmt.Sprintf("db.t%d", i), int64(i), fmt.Errorf("denied\nsecond line"))
	}
	if len(failed) != maxFailed || failed[0].Table != "db.t3" || failed[maxFailed-1].Table != "db.t34" {
		t.Fatalf("kept %d failures, %s to %s; want the last %d", len(failed), failed[0].Table, failed[len(failed)-1].Table, maxFailed)
	}
	if got := failed[0].Reason; got != "denied second line" {
		t.Errorf("reason %q, want one line", got)
	}
	before := slices.Clone(failed)
	long := withFailure(failed, "db.long", -1, fmt.Errorf("%s", strings.Repeat("é", maxReason)))
	if diff := cmp.Diff(failed, before); diff != "" {
		t.Errorf("the list handed in changed (-got +want):\n%s", diff)
	}
	if r := long[len(long)-1].Reason; len(r) > maxReason+len("…") || !strings.HasSuffix(r, "…") || !utf8.ValidString(r) {
		t.Errorf("long reason of %d bytes, valid %v: want at most %d and valid UTF-8, ending in …", len(r), utf8.ValidString(r), maxReason)
	}
}
