package binlog

import (
	"context"
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

// startCatchUp sets the backlog of a stream starting at s: up to the
// server's current position. A stream started at the current position
// has none; a position unknown (the server did not say) is not waited for.
func (r *Reader) startCatchUp(ctx context.Context, s Start, atCurrent bool) {
	r.catchUp = catchUp{done: true}
	if atCurrent {
		return
	}
	cur, err := r.Current(ctx)
	if err != nil {
		r.log.Debug("no catch-up line: the server's position is unknown", "err", err)
		return
	}
	r.catchUp = catchUp{target: binlogPos{file: cur.File, pos: cur.Pos}, started: time.Now()}
}

// noteCatchUp logs, once, that the reader caught up: tx, just read, ends
// at or after the start's target, or is the server's heartbeat (sent
// only to a replica with nothing left to read).
func (r *Reader) noteCatchUp(tx *Tx) {
	if r.catchUp.done || !tx.Heartbeat && (binlogPos{file: r.file, pos: r.pos}).before(r.catchUp.target) {
		return
	}
	r.catchUp.done = true
	r.log.Info("caught up with the source", "at", r.file+":"+strconv.FormatUint(r.pos, 10),
		"behind_at_start", r.catchUp.target.file+":"+strconv.FormatUint(r.catchUp.target.pos, 10),
		"took", time.Since(r.catchUp.started).Round(time.Millisecond).String())
}
