// Package pipeline is the producer's engine: it reads whole source
// transactions, publishes them into the open Kafka transaction and commits
// that transaction together with a checkpoint naming the point just after
// the last source transaction it holds, so that a restart continues exactly
// there. It decides when to commit (enough records or bytes, or the linger
// after the first change), when to say the source is idle (heartbeats), how
// to stop (what was read is published and committed, within the shutdown
// timeout), that a fenced log ends the run and when a transient error
// restarts it; and, before a run, where it starts (the checkpoint, a
// configured position, another server, a lost binlog). It knows the source
// and the log only by the small interfaces it declares, which
// *binlog.Reader and *kafka.Writer satisfy.
package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/schemas"
)

// Source is where source transactions come from: *binlog.Reader.
type Source interface {
	// ReadTx fills tx with the next whole source transaction (or a part of
	// a huge one, or an idle heartbeat); it returns ctx's error once ctx
	// ends.
	ReadTx(ctx context.Context, tx *binlog.Tx) error
}

// Log is where they go: *kafka.Writer, one open Kafka transaction at a
// time. It is called from the engine's goroutine only.
type Log interface {
	// PublishSchemas, Publish and PublishDDL add a transaction's
	// schema-history entries (Avro bodies of schema), changes and DDL to
	// the open Kafka transaction.
	PublishSchemas(ctx context.Context, schema string, entries []kafka.StateEntry) error
	Publish(ctx context.Context, events []cdc.Event) error
	PublishDDL(ctx context.Context, d cdc.SchemaChange) error
	// Pending returns the change records and bytes published since the
	// last StartCommit.
	Pending() (records, bytes int)
	// StartCommit makes everything since the last StartCommit visible
	// together with the checkpoint cp (Codec.Value), or on error nothing
	// of it: it ends the commit started before (EndCommit), then starts
	// this one, which ends on its own while publishing goes on into the
	// next transaction.
	StartCommit(ctx context.Context, cp kafka.StateValue) error
	// Committing is closed once the commit started last ended; nil when
	// none is to end.
	Committing() <-chan struct{}
	// EndCommit waits for the commit started last and returns its error.
	EndCommit(ctx context.Context) error
	// PublishSnapshotPlan adds a snapshot plan (Codec's) to the open
	// Kafka transaction.
	PublishSnapshotPlan(ctx context.Context, plan kafka.StateValue) error
	// PublishHeartbeat adds cp, the current position, to the heartbeat
	// topic.
	PublishHeartbeat(ctx context.Context, cp kafka.StateValue) error
	// Failed is closed once a delivery failed (a fenced producer); Err
	// then says why.
	Failed() <-chan struct{}
	Err() error
}

// Config bounds the engine's Kafka transactions and its shutdown.
type Config struct {
	// MaxRecords and MaxBytes commit a Kafka transaction once it holds
	// that many change records or key and value bytes
	// (kafka.transaction_max_records, _max_bytes).
	MaxRecords, MaxBytes int
	// Linger commits a Kafka transaction this long after its first change
	// (kafka.transaction_linger).
	Linger time.Duration
	// Heartbeat is the interval of heartbeat records
	// (kafka.heartbeat_interval); 0: none.
	Heartbeat time.Duration
	// Shutdown is how long publishing and committing go on after the
	// context ends (shutdown_timeout).
	Shutdown time.Duration
	// Version is the producer's release, carried by every checkpoint.
	Version string
}

// Engine is one run of the producer's loop: Source → Log, committed with
// checkpoints built from Resume.
type Engine struct {
	Source Source
	Log    Log
	// Resume is the resume point of where Source was started; the engine
	// advances it past each transaction it publishes.
	Resume *binlog.Resume
	Config Config
	// Committed, when not nil, receives each checkpoint once the brokers
	// committed it (for /status).
	Committed func(*Checkpoint)
	// Codec is the codec the checkpoint was read with, which knows the
	// snapshot plan it names; nil: a new one.
	Codec *Codec
}

// Run is the producer's loop. One goroutine reads whole source
// transactions from the Source, ahead of publishing; this one publishes
// them, in order, into the open Kafka transaction and commits it with a
// checkpoint once it holds Config.MaxRecords records or MaxBytes bytes, or
// Config.Linger after its first source transaction. While the brokers
// commit one transaction, the next is published (Log.StartCommit); a
// checkpoint is reported (Committed) once its commit ended.
//
// On shutdown (ctx ends) reading stops, every whole source transaction read
// is published and committed, and Run returns nil. A transaction cut off
// mid-way is not lost: it lies after the checkpoint and is read again on
// restart. Publishing and committing get Config.Shutdown more after ctx
// ends (Kubernetes kills the pod at its grace period): with the brokers
// down, Run then gives up and returns the error, and nothing uncommitted
// is visible (the next start resumes at the checkpoint).
//
// A failed Log (fenced by another producer) ends Run with its error; so
// does a read error, after what was read before it is committed.
func (e *Engine) Run(ctx context.Context) error {
	cfg := &e.Config
	codec := e.Codec
	if codec == nil {
		var err error
		if codec, err = NewCodec(); err != nil {
			return err
		}
	}
	// Publishing and committing outlive the signal, by Shutdown at most:
	// what was read is published and committed before Run returns.
	pubCtx, giveUp := context.WithCancel(context.WithoutCancel(ctx))
	defer giveUp()
	stopWatch := context.AfterFunc(ctx, func() { time.AfterFunc(cfg.Shutdown, giveUp) })
	defer stopWatch()
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()

	// The reader reads ahead while this goroutine publishes: up to
	// readAhead transactions, and no more once those waiting hold
	// readAheadEvents row changes (one is always read ahead, however
	// large). With one change per transaction, handing them over one at a
	// time left each goroutine waiting on the other at every step
	// (producer/bench_test.go).
	read := make(chan *binlog.Tx, readAhead)
	var pool txPool
	var ahead atomic.Int64         // row changes waiting in read
	room := make(chan struct{}, 1) // a token once ahead fell below readAheadEvents
	readErr := make(chan error, 1)
	quit := make(chan struct{}) // Run returned: nobody receives any more
	defer close(quit)
	go func() {
		for {
			for ahead.Load() >= readAheadEvents {
				select {
				case <-room:
				case <-readCtx.Done():
					readErr <- readCtx.Err()
					return
				}
			}
			tx := pool.get()
			if err := e.Source.ReadTx(readCtx, tx); err != nil {
				readErr <- err
				return
			}
			ahead.Add(int64(len(tx.Events)))
			select {
			case read <- tx: // a whole transaction read is published, even when stopping
			case <-quit:
				return
			}
		}
	}()

	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var (
		dirty      bool // the resume point moved since the last commit
		sourceTime time.Time
		committing *Checkpoint // of the commit under way
	)
	changed := func() {
		if !dirty {
			dirty = true
			linger.Reset(cfg.Linger)
		}
	}
	var heartbeat <-chan time.Time
	if cfg.Heartbeat > 0 {
		t := time.NewTicker(cfg.Heartbeat)
		defer t.Stop()
		heartbeat = t.C
	}
	// A commit ends while the next transaction is published (StartCommit);
	// its checkpoint is reported once it ended.
	ended := func() error {
		if committing == nil {
			return nil
		}
		if err := e.Log.EndCommit(pubCtx); err != nil {
			return err
		}
		if e.Committed != nil {
			e.Committed(committing)
		}
		committing = nil
		return nil
	}
	commit := func() error {
		linger.Stop()
		if !dirty {
			return nil
		}
		cp := checkpoint(e.Resume, sourceTime, cfg.Version)
		if err := publishPlan(pubCtx, e.Log, codec, cp); err != nil {
			return err
		}
		if err := ended(); err != nil {
			return err
		}
		if err := e.Log.StartCommit(pubCtx, codec.Value(cp)); err != nil {
			return err
		}
		committing, dirty = cp, false
		return nil
	}
	// commitAll commits what was published and waits for it.
	commitAll := func() error {
		if err := commit(); err != nil {
			return err
		}
		return ended()
	}
	// handle publishes tx, taken from read, and hands it back to the
	// reader.
	handle := func(tx *binlog.Tx) error {
		if n := int64(len(tx.Events)); ahead.Add(-n)+n >= readAheadEvents {
			signal(room) // the reader may be waiting
		}
		if err := publish(pubCtx, e.Log, codec, tx); err != nil {
			return err
		}
		if err := e.Resume.Advance(tx); err != nil {
			return err
		}
		// A snapshot chunk's time is the producer's clock, not the
		// source's: the checkpoint keeps the last source transaction's (a
		// lower bound of the source's time at its position, which the
		// resume policy relies on after a lost binlog).
		if !tx.CommitTime.IsZero() && tx.Snapshot == nil {
			sourceTime = tx.CommitTime
		}
		pool.put(tx)
		changed()
		if records, bytes := e.Log.Pending(); records >= cfg.MaxRecords || bytes >= cfg.MaxBytes {
			return commit()
		}
		return nil
	}
	for {
		select {
		case tx := <-read:
			if err := handle(tx); err != nil {
				return err
			}
		case <-heartbeat:
			cp := checkpoint(e.Resume, sourceTime, cfg.Version)
			if err := publishPlan(pubCtx, e.Log, codec, cp); err != nil {
				return err
			}
			if err := e.Log.PublishHeartbeat(pubCtx, codec.Value(cp)); err != nil {
				return err
			}
			changed()
		case <-linger.C:
			if err := commit(); err != nil {
				return err
			}
		case <-e.Log.Committing():
			if err := ended(); err != nil {
				return err
			}
		case <-e.Log.Failed():
			// The open Kafka transaction is never committed: nothing of it
			// becomes visible, and the next start resumes before it.
			return e.Log.Err()
		case err := <-readErr:
			if werr := e.Log.Err(); werr != nil {
				return werr
			}
			// The source transactions read before the stop are whole:
			// publish and commit them, then stop.
			for len(read) > 0 {
				if herr := handle(<-read); herr != nil {
					return herr
				}
			}
			if cerr := commitAll(); cerr != nil {
				return fmt.Errorf("commit on shutdown: %w", cerr)
			}
			if ctx.Err() != nil {
				return nil // shutdown
			}
			return err
		}
	}
}

// How far the reader reads ahead of publishing (Run).
const (
	readAhead       = 256
	readAheadEvents = 4096
)

// txPool keeps the transactions published for the reader to read into
// again, last in first out: the few that a large transaction or a snapshot
// chunk grew are the ones reused, the others keep their small buffers.
type txPool struct {
	mu  sync.Mutex
	txs []*binlog.Tx
}

func (p *txPool) get() *binlog.Tx {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.txs)
	if n == 0 {
		return new(binlog.Tx) // at most readAhead+2 in all: waiting, being read, being published
	}
	tx := p.txs[n-1]
	p.txs[n-1], p.txs = nil, p.txs[:n-1]
	return tx
}

func (p *txPool) put(tx *binlog.Tx) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.txs = append(p.txs, tx)
}

// signal leaves a token in c (capacity 1) unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// publish hands one source transaction's schema-history entries, changes
// and DDL to the log.
func publish(ctx context.Context, log Log, c *Codec, tx *binlog.Tx) error {
	if len(tx.Schemas) > 0 {
		entries, err := c.historyEntries(tx.Schemas)
		if err != nil {
			return err
		}
		if err := log.PublishSchemas(ctx, schemas.SchemaHistory, entries); err != nil {
			return err
		}
	}
	if err := log.Publish(ctx, tx.Events); err != nil {
		return err
	}
	for _, d := range tx.DDL {
		if err := log.PublishDDL(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// publishPlan names in cp the snapshot plan its tables come from and, when
// that is a new one, adds it to the open Kafka transaction.
func publishPlan(ctx context.Context, log Log, c *Codec, cp *Checkpoint) error {
	if plan := c.setPlan(cp); plan != nil {
		return log.PublishSnapshotPlan(ctx, plan)
	}
	return nil
}

// checkpoint is the checkpoint of the resume point r: the source's state
// there; sourceTime is the commit time of the last source transaction
// published, version the producer's release.
func checkpoint(r *binlog.Resume, sourceTime time.Time, version string) *Checkpoint {
	return &Checkpoint{State: r.State(), SourceTime: sourceTime, Version: version}
}
