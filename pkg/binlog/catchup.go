package binlog

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// catchUp is whether the reader has read the backlog it started behind:
// the binlog up to where the server was when the stream started. The
// moment it has is a state change worth a line in the log (a producer
// restarted after a while works through its backlog first).
type catchUp struct {
	target  binlogPos // the server's position at the start
	started time.Time
	done    bool
}

// startCatchUp returns the backlog of a stream starting now: up to the
// server's current position, which current reads. A stream started at the
// current position has none; a position unknown (the server did not say)
// is not waited for.
func startCatchUp(ctx context.Context, current func(context.Context) (Start, error), atCurrent bool, log *slog.Logger) catchUp {
	if atCurrent {
		return catchUp{done: true}
	}
	cur, err := current(ctx)
	if err != nil {
		log.Debug("no catch-up line: the server's position is unknown", "err", err)
		return catchUp{done: true}
	}
	return catchUp{target: binlogPos{file: cur.File, pos: cur.Pos}, started: time.Now()}
}

// note logs, once, that the reader caught up: tx, just read, ends at at,
// at or after the start's target, or is the server's heartbeat (sent only
// to a replica with nothing left to read).
func (c *catchUp) note(tx *Tx, at binlogPos, log *slog.Logger) {
	if c.done || !tx.Heartbeat && at.before(c.target) {
		return
	}
	c.done = true
	log.Info("caught up with the source", "at", at.file+":"+strconv.FormatUint(at.pos, 10),
		"behind_at_start", c.target.file+":"+strconv.FormatUint(c.target.pos, 10),
		"took", time.Since(c.started).Round(time.Millisecond).String())
}
