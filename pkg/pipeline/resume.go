package pipeline

// resume.go: where a run starts. The last committed checkpoint, a
// configured start position, the server the reader is connected to (the
// checkpoint's or another after a failover) and source.snapshot decide the
// binlog position, the schema history to decode with and the tables to
// snapshot; Decide returns them as a Plan the producer hands to the reader
// before it starts.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// Replica is the source server as the resume policy asks it, before the
// stream starts: *binlog.Reader.
type Replica interface {
	// ServerID returns the server's server_id.
	ServerID() (uint32, error)
	// Available reports whether the server still has the binlog to stream
	// from s.
	Available(ctx context.Context, s binlog.Start) (bool, error)
	// CapturedTables returns every table source.include/exclude captures,
	// as "database.table".
	CapturedTables(ctx context.Context) ([]string, error)
	// ChangeTimes returns the oldest binlog file the server has and when
	// each captured table last changed (asked only when the checkpoint's
	// binlog is lost).
	ChangeTimes(ctx context.Context) (*binlog.ChangeTimes, error)
}

// Facts are what the resume policy decides from besides the server, read
// once before a run.
type Facts struct {
	// Checkpoint is the last committed checkpoint, nil when there is none;
	// SnapshotCaptured has dropped the tables no longer captured.
	Checkpoint *Checkpoint
	// History is the schema history recorded, by "database.table".
	History map[string]*cdc.TableSchema
	// Configured is source.start_position / start_gtid; zero when not set.
	Configured binlog.Start
}

// Policy is the configuration the resume policy follows.
type Policy struct {
	// Snapshot is source.snapshot: binlog.SnapshotInitial,
	// SnapshotWhenNeeded or SnapshotNever.
	Snapshot string
	// Transactional is kafka.transactions: the schema history then holds
	// no entry past the checkpoint.
	Transactional bool
	// LostClockMargin is source.lost_clock_margin: after a lost binlog, a
	// table is left out of the snapshot only if its last change is older
	// than the checkpoint's last transaction by more than this.
	LostClockMargin time.Duration
}

// Case names where a run starts.
type Case int

const (
	// Fresh: no checkpoint and no configured start; the current position.
	Fresh Case = iota
	// Configured: the configured start position, checkpoint or not.
	Configured
	// Resumed: the checkpoint's position (on another server: its GTID set,
	// in a new epoch).
	Resumed
	// Lost: the checkpoint's binlog is gone (source.snapshot=when_needed);
	// a new epoch, from the start of the oldest binlog the server has with
	// the tables that may have changed in the lost range snapshotted
	// again, or — when that cannot be known — from the current position
	// with every captured table (lost.go).
	Lost
)

// Plan is how a run starts.
type Plan struct {
	Case Case
	// Start is where the reader starts (binlog.Reader.Start).
	Start binlog.Start
	// History is the schema history to decode with when Resumed
	// (binlog.Reader.SetSchemaHistory); otherwise Erase names the entries
	// recorded for other positions, to void (ResetSchemaHistory).
	History map[string]*cdc.TableSchema
	Erase   []string
	// Snapshot is what the reader backfills (binlog.Reader.Snapshot).
	Snapshot binlog.SnapshotState
}

// Decide plans a run from the facts f and the server r, following p.
func Decide(ctx context.Context, r Replica, f Facts, p Policy, log *slog.Logger) (*Plan, error) {
	cp := f.Checkpoint
	plan := &Plan{Start: f.Configured}
	switch {
	case f.Configured != (binlog.Start{}):
		plan.Case = Configured
		if cp != nil {
			log.Warn("starting where configured, not at the checkpoint", "start", f.Configured.String(), "checkpoint", cp.File+":"+strconv.FormatUint(cp.Pos, 10), "checkpoint_gtid", cp.GTIDSet)
		}
	case cp != nil:
		start, err := onServer(r, cp.Start(), cp.ServerID, log)
		lost := false
		if p.Snapshot == binlog.SnapshotWhenNeeded {
			lost, err = binlogLost(ctx, r, start, err)
		}
		if err != nil {
			return nil, err
		}
		if lost {
			plan.Case = Lost
			if plan.Start, plan.Snapshot, err = afterLoss(ctx, r, cp, start, p.LostClockMargin, log); err != nil {
				return nil, err
			}
			break
		}
		log.Info("resuming from the checkpoint", "at", start.String(), "file", cp.File, "pos", cp.Pos,
			"rows_done", cp.RowsDone, "epoch", start.Epoch, "written", cp.Written)
		plan.Case, plan.Start = Resumed, start
	}
	plan.History, plan.Erase = schemaHistory(f.History, cp, plan.Case, p.Transactional)
	if plan.Case == Lost {
		return plan, nil // afterLoss planned the snapshot
	}
	var err error
	if plan.Snapshot, err = planSnapshot(ctx, r, cp, plan.Case, p.Snapshot, log); err != nil {
		return nil, err
	}
	return plan, nil
}

// SnapshotCaptured keeps of the checkpoint cp's snapshot only the tables
// the configuration src captures. A table the checkpoint's own patterns
// captured was excluded since: its snapshot is dropped, with a warning.
// Any other table cannot be in a checkpoint the producer wrote: an error
// naming the record.
func SnapshotCaptured(cp *Checkpoint, src *binlog.Config, log *slog.Logger) error {
	if cp == nil {
		return nil
	}
	snap := &cp.Snapshot
	var keep []string
	for i, t := range snap.Tables {
		db, name, _ := strings.Cut(t, ".")
		switch {
		case binlog.Captures(src.Include, src.Exclude, db, name):
			keep = append(keep, t)
			continue
		case !binlog.Captures(cp.Include, cp.Exclude, db, name):
			return cp.Refuse(fmt.Errorf("snapshot table %s: captured neither by source.include/exclude nor by the checkpoint's own patterns", t))
		}
		log.Warn("snapshot: the configuration no longer captures the table; its snapshot is dropped", "table", t)
		if i == 0 {
			snap.After = nil
		}
		delete(snap.Filters, t)
		delete(snap.Origins, t)
	}
	snap.Tables = keep
	return nil
}

// onServer adapts a checkpoint's start, written while reading the server
// cpServer, to the server r. The same server: as it is. Another one (a
// failover to another replica of the same primary): only the GTID set
// carries over — file names and positions are that server's own — and the
// sequence epoch rises, so that every change's sequence stays above those
// published before.
func onServer(r Replica, start binlog.Start, cpServer uint32, log *slog.Logger) (binlog.Start, error) {
	id, err := r.ServerID()
	if err != nil || id == cpServer {
		return start, err
	}
	if start.GTID == "" {
		return start, fmt.Errorf("the checkpoint is of server_id %d, this server is %d, and without a GTID set the position cannot carry over: %w; "+
			"enable GTIDs, or re-snapshot (source.snapshot: when_needed does it by itself) and start at the current position (source.start_position)", cpServer, id, errElsewhere)
	}
	log.Warn("continuing on another server by GTID set: the sequence epoch rises", "checkpoint_server_id", cpServer,
		"server_id", id, "gtid", start.GTID, "epoch", start.Epoch+1)
	return binlog.Start{GTID: start.GTID, SkipRows: start.SkipRows, TxGTID: start.TxGTID, Epoch: start.Epoch + 1}, nil
}

// errElsewhere: the checkpoint's position is another server's, with no
// GTID set to carry over.
var errElsewhere = errors.New("the checkpoint's binlog position is another server's")

// binlogLost reports whether the binlog to resume from (start, which
// onServer returned with err) is gone: another server's position, or one
// the server no longer has (purged).
func binlogLost(ctx context.Context, r Replica, start binlog.Start, err error) (bool, error) {
	if errors.Is(err, errElsewhere) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	ok, err := r.Available(ctx, start)
	return !ok, err
}

// schemaHistory returns the schema history h (pkg/binlog/history.go) to
// decode with when the run resumes from the checkpoint cp; a run starting
// anywhere else erases the recorded entries, which describe other
// positions: their ids are returned instead. Without transactions, entries
// may lie past the checkpoint (written before a crash that lost the
// checkpoint after them): those of the checkpoint's server are dropped by
// position, and the table's schema is read again.
func schemaHistory(h map[string]*cdc.TableSchema, cp *Checkpoint, c Case, transactional bool) (keep map[string]*cdc.TableSchema, erase []string) {
	if cp == nil || c != Resumed {
		return nil, slices.Sorted(maps.Keys(h))
	}
	if !transactional {
		for id, s := range h {
			if s.ServerID != cp.ServerID || binlog.After(s.File, s.Pos, cp.File, cp.Pos) {
				delete(h, id)
			}
		}
	}
	return h, nil
}

// planSnapshot returns which tables to backfill: the rest of the snapshot
// the checkpoint cp was taking, or — on a Fresh start with
// source.snapshot=initial (mode) — every captured table. (After a Lost
// binlog, afterLoss decides.)
//
// With a checkpoint, tables the configuration captures now but did not when
// the checkpoint was written (source.include grew) are added, unless
// source.snapshot is never.
func planSnapshot(ctx context.Context, r Replica, cp *Checkpoint, c Case, mode string, log *slog.Logger) (binlog.SnapshotState, error) {
	var st binlog.SnapshotState
	switch {
	case cp != nil:
		st = cp.Snapshot
		if mode == binlog.SnapshotNever {
			break
		}
		tables, err := r.CapturedTables(ctx)
		if err != nil {
			return st, err
		}
		for _, t := range tables {
			db, name, _ := strings.Cut(t, ".")
			if !binlog.Captures(cp.Include, cp.Exclude, db, name) && !slices.Contains(st.Tables, t) {
				log.Info("snapshot: a table the configuration captures from now on", "table", t)
				st.Tables = append(st.Tables, t)
			}
		}
	case c == Fresh && mode != binlog.SnapshotNever:
		tables, err := r.CapturedTables(ctx)
		if err != nil {
			return st, err
		}
		st.Tables = tables
	}
	if len(st.Tables) > 0 {
		log.Info("snapshot: backfilling tables alongside the stream", "tables", len(st.Tables), "first", st.Tables[0], "resuming_after_key", st.After != nil)
	}
	return st, nil
}

// TopicCreator creates table topics ahead of their first change:
// *kafka.Writer.
type TopicCreator interface {
	CreateTableTopics(ctx context.Context, tables []string) (int, error)
}

// KeyLister tells which tables have a primary key: *binlog.Reader.
type KeyLister interface {
	KeyedTables(ctx context.Context, tables []string) (map[string]bool, error)
}

// CreateSnapshotTopics creates, in a few batched requests, the topics of
// the snapshot's tables that have a primary key (compacted, as their first
// change would) before the snapshot reads them: one round trip per table
// otherwise, at 20,000 tables the better part of the snapshot's time.
// Keyless tables' topics (cleanup delete) are left to their first change,
// as is every topic when this fails, which it logs.
func CreateSnapshotTopics(ctx context.Context, snap *binlog.SnapshotState, keys KeyLister, topics TopicCreator, log *slog.Logger) {
	if len(snap.Tables) < 2 {
		return
	}
	start := time.Now()
	keyed, err := keys.KeyedTables(ctx, snap.Tables)
	if err != nil {
		log.Warn("topics of the snapshot's tables not created ahead: each is created at its first change", "err", err)
		return
	}
	tables := make([]string, 0, len(keyed))
	for _, t := range snap.Tables {
		if keyed[t] {
			tables = append(tables, t)
		}
	}
	created, err := topics.CreateTableTopics(ctx, tables)
	if err != nil {
		log.Warn("topics of the snapshot's tables not all created ahead: the others are created at their first change", "created", created, "err", err)
		return
	}
	log.Info("topics of the snapshot's tables created ahead", "created", created, "tables", len(tables), "took", time.Since(start).Round(time.Millisecond).String())
}
