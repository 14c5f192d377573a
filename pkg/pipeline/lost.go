package pipeline

// lost.go: the run after the checkpoint's binlog was lost, with
// source.snapshot=when_needed. The changes between the checkpoint and the
// oldest binlog the server still has are gone; a table whose rows may have
// changed there is snapshotted again, and only a table the server proves
// unchanged is left out. The proof is InnoDB's last change time of the
// table (information_schema UPDATE_TIME, moved by every committed row
// change), older than the checkpoint's last transaction less
// source.lost_clock_margin, with its CREATE_TIME as old (no ALTER, RENAME
// or re-creation since). The stream then resumes at the start of the
// oldest binlog the server has, so every change after the lost range is
// read from the binlog itself, and every transaction of the purged range
// was committed to InnoDB (a server purges a binlog only then) when the
// times are read. Where the proof cannot hold — another server, a server
// restarted since the checkpoint (the times live in memory), MySQL (not
// verified there), no commit time in the checkpoint — every captured table
// is snapshotted again from the current position, as before, and the log
// says why.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
)

// afterLoss plans the run after the checkpoint cp's binlog was found lost
// (at: where it pointed, as onServer adapted it): where the stream starts,
// in the next epoch, and what is snapshotted — the tables that may have
// changed in the lost range, or every captured table — with the snapshot's
// requests and failures carried over.
func afterLoss(ctx context.Context, r Replica, cp *Checkpoint, at binlog.Start, margin time.Duration, log *slog.Logger) (binlog.Start, binlog.SnapshotState, error) {
	captured, err := r.CapturedTables(ctx)
	if err != nil {
		return binlog.Start{}, binlog.SnapshotState{}, err
	}
	next := cp.Epoch + 1
	st := binlog.SnapshotState{Requests: cp.Snapshot.Requests, Failed: cp.Snapshot.Failed}
	ct, why := lostRange(ctx, r, cp, margin)
	if why != "" {
		// The changes between the checkpoint and now are gone; the
		// snapshot brings every row that exists up to date (rows deleted
		// meanwhile stay downstream: README, "Snapshots").
		log.Warn("the binlog to resume from is gone: streaming from the current position and snapshotting every captured table again",
			"checkpoint", at.String(), "epoch", next, "why", why)
		st.Tables = captured
		return binlog.Start{Epoch: next}, st, nil
	}
	again := map[string][]string{} // tables by why they are snapshotted again
	var kept []string
	since := cp.SourceTime.Add(-margin)
	for _, t := range captured {
		tt, ok := ct.Tables[t]
		db, name, _ := strings.Cut(t, ".")
		why := changedSince(tt, ok, since)
		switch {
		case slices.Contains(cp.Snapshot.Tables, t):
			why = "its snapshot was in progress at the checkpoint"
		case !binlog.Captures(cp.Include, cp.Exclude, db, name):
			why = "captured from now on"
		}
		if why == "" {
			kept = append(kept, t)
			continue
		}
		again[why] = append(again[why], t)
		st.Tables = append(st.Tables, t)
	}
	log.Warn("the binlog to resume from is gone: streaming from the start of the oldest binlog the server has and snapshotting again the tables that may have changed since the checkpoint",
		"checkpoint", at.String(), "from", ct.Oldest, "epoch", next, "tables_again", len(st.Tables), "tables_unchanged", len(kept),
		"checkpoint_time", cp.SourceTime.UTC().Format(time.RFC3339), "margin", margin.String())
	for _, why := range slices.Sorted(maps.Keys(again)) {
		log.Info("snapshot again: "+why, "tables", again[why])
	}
	if len(kept) > 0 {
		log.Info("not snapshotted again: unchanged since before the checkpoint (InnoDB update and create times older than its last transaction less source.lost_clock_margin)", "tables", kept)
	}
	return binlog.Start{File: ct.Oldest, Pos: 4, Epoch: next}, st, nil
}

// lostRange reads the server's change times when they can tell which
// tables changed since the checkpoint cp; otherwise it says why not.
func lostRange(ctx context.Context, r Replica, cp *Checkpoint, margin time.Duration) (*binlog.ChangeTimes, string) {
	id, err := r.ServerID()
	if err != nil {
		return nil, fmt.Sprintf("cannot read the server_id: %v", err)
	}
	if id != cp.ServerID {
		return nil, fmt.Sprintf("the checkpoint is of server_id %d, this server is %d: its binlog tells nothing of this one", cp.ServerID, id)
	}
	ct, err := r.ChangeTimes(ctx)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("cannot read the tables' change times: %v", err)
	case cp.File == "" || !binlog.Purged(cp.File, ct.Oldest):
		return nil, fmt.Sprintf("the checkpoint's binlog %q is not older than the oldest the server has (%q): not a purge", cp.File, ct.Oldest)
	case !ct.MariaDB:
		return nil, "tables' change times are relied on with MariaDB only (where strait's tests verify them)"
	case cp.SourceTime.IsZero():
		return nil, "the checkpoint has no source commit time"
	case !ct.Started.Before(cp.SourceTime.Add(-margin)):
		return nil, fmt.Sprintf("the server started at %s, not before the checkpoint's last transaction (%s) less source.lost_clock_margin (%s): "+
			"InnoDB keeps tables' change times in memory only", ct.Started.UTC().Format(time.RFC3339), cp.SourceTime.UTC().Format(time.RFC3339), margin)
	}
	return ct, ""
}

// changedSince says why the table with times tt (ok: the server listed
// it) may have changed since the time since; "" when it provably did not.
func changedSince(tt binlog.TableTimes, ok bool, since time.Time) string {
	switch {
	case !ok:
		return "not listed in information_schema.TABLES"
	case !strings.EqualFold(tt.Engine, "InnoDB"):
		return fmt.Sprintf("engine %s: its change time is not relied on", tt.Engine)
	case tt.Partitioned:
		return "partitioned: no change time"
	case tt.Created.IsZero() || !tt.Created.Before(since):
		return "created, altered or renamed since the checkpoint (CREATE_TIME)"
	case tt.Updated.IsZero():
		return "no change time (UPDATE_TIME is NULL: none since the server started, or since InnoDB last loaded the table)"
	case !tt.Updated.Before(since):
		return "changed since the checkpoint (UPDATE_TIME)"
	}
	return ""
}
