package binlog

import (
	"context"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Resume is the point to resume reading from once the transactions handed
// to Advance are safely published: the binlog file:pos just after the last
// of them and, when GTIDs are known, the GTID set including it. It belongs
// to the goroutine that publishes, which may lag behind the reader.
type Resume struct {
	// ServerID is the source server's server_id; Flavor is mysql or mariadb.
	ServerID uint32
	Flavor   string
	Epoch    uint64 // the sequence epoch in force
	// Include and Exclude are the capture patterns in force
	// (source.include, source.exclude).
	Include, Exclude []string

	gtids mysql.GTIDSet // nil when the GTID set is not known
	file  string
	pos   uint64
	// inside: the last transaction advanced past was a part: resume at its
	// begin, skipping its rows published so far.
	inside *Start
	// snapshot is the progress of the snapshot, as of the last snapshot
	// transaction advanced past.
	snapshot SnapshotState
}

// Resume returns the resume point of where the stream was started (call
// after Start). With a GTID start the set is the start's; with a file:pos
// start on MariaDB it is the server's BINLOG_GTID_POS of that position; on
// MySQL it is known only when started by GTID or at the current position.
func (r *Reader) Resume(ctx context.Context) (*Resume, error) {
	p := &Resume{Flavor: r.q.flavor, Epoch: r.stream.started.Epoch, file: r.stream.started.File, pos: r.stream.started.Pos,
		Include: r.cfg.Include, Exclude: r.cfg.Exclude}
	p.snapshot = r.snapshots.State()
	if r.stream.started.SkipRows > 0 {
		inside := r.stream.started
		p.inside = &inside
	}
	var err error
	if p.ServerID, err = r.ServerID(); err != nil {
		return nil, err
	}
	gtid := r.stream.started.GTID
	if gtid == "" && r.q.flavor == mysql.MariaDBFlavor {
		res, err := r.q.conn.Execute("SELECT BINLOG_GTID_POS(?, ?)", r.stream.started.File, r.stream.started.Pos)
		if err != nil {
			return nil, fmt.Errorf("GTID position of %s: %w", r.stream.started, err)
		}
		gtid = text(res, 0, 0)
		res.Close()
	}
	if gtid != "" || r.q.flavor == mysql.MariaDBFlavor {
		set, err := mysql.ParseGTIDSet(r.q.flavor, gtid)
		if err != nil {
			return nil, fmt.Errorf("GTID set %q: %w", gtid, err)
		}
		p.gtids = set
	}
	return p, nil
}

// Advance moves the resume point past tx.
func (p *Resume) Advance(tx *Tx) error {
	if tx.Snapshot != nil {
		p.snapshot = *tx.Snapshot
	}
	if tx.Partial {
		p.inside = &Start{File: tx.Begin.File, Pos: tx.Begin.Pos, SkipRows: tx.RowsBefore + len(tx.Events), TxGTID: tx.GTID}
		return nil
	}
	p.inside = nil
	if tx.File != "" {
		p.file, p.pos = tx.File, tx.EndPos
	}
	if p.gtids != nil && tx.GTID != "" {
		if err := p.gtids.Update(tx.GTID); err != nil {
			return fmt.Errorf("GTID %s: %w", tx.GTID, err)
		}
	}
	return nil
}

// Start returns where to start reading to continue after everything
// advanced past: the GTID set when known (the server then finds the
// position itself, on any replica of the same primary), and file:pos.
func (p *Resume) Start() Start {
	s := Start{File: p.file, Pos: p.pos}
	if p.inside != nil {
		s = *p.inside
	}
	if p.gtids != nil {
		s.GTID = p.gtids.String() // the set before the transaction in progress
	}
	return s
}

// Snapshot returns the snapshot's progress to resume from: tables left
// and the key of the last row published (empty when no snapshot runs).
func (p *Resume) Snapshot() SnapshotState { return p.snapshot }
