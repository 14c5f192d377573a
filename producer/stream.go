package main

import (
	"context"
	"fmt"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// stream is the producer's loop. One goroutine reads whole source
// transactions from the binlog; this one publishes them, in order, into the
// open Kafka transaction and commits it with a checkpoint once it holds
// kafka.transaction_max_records records or _max_bytes bytes, or
// kafka.transaction_linger after its first source transaction. The
// checkpoint names the point just after the last source transaction
// published, so a restart continues exactly there.
//
// On shutdown (ctx ends) reading stops, every whole source transaction read
// is published and committed, and stream returns nil. A transaction cut off
// mid-way is not lost: it lies after the checkpoint and is read again on
// restart. Publishing and committing get shutdown more after ctx ends
// (Kubernetes kills the pod at its grace period): with the brokers down,
// stream then gives up and returns the error, and nothing uncommitted is
// visible (the next start resumes at the checkpoint).
//
// committed receives each checkpoint once the brokers committed it (for
// /status).
func stream(ctx context.Context, reader *binlog.Reader, writer *kafka.Writer, resume *binlog.Resume, cfg *kafka.Config, shutdown time.Duration,
	committed func(*kafka.Checkpoint)) error {
	// Publishing and committing outlive the signal, by shutdown at most:
	// what was read is published and committed before stream returns.
	pubCtx, giveUp := context.WithCancel(context.WithoutCancel(ctx))
	defer giveUp()
	stopWatch := context.AfterFunc(ctx, func() { time.AfterFunc(shutdown, giveUp) })
	defer stopWatch()
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()

	// Two transactions in turn: the reader fills one while this goroutine
	// publishes the other.
	read, free := make(chan *binlog.Tx), make(chan *binlog.Tx, 2)
	free <- new(binlog.Tx)
	free <- new(binlog.Tx)
	readErr := make(chan error, 1)
	quit := make(chan struct{}) // stream returned: nobody receives any more
	defer close(quit)
	go func() {
		for {
			var tx *binlog.Tx
			select {
			case tx = <-free:
			case <-readCtx.Done():
				readErr <- readCtx.Err()
				return
			}
			if err := reader.ReadTx(readCtx, tx); err != nil {
				readErr <- err
				return
			}
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
	)
	position := func() *kafka.Checkpoint {
		s, snap := resume.Start(), resume.Snapshot()
		return &kafka.Checkpoint{ServerID: resume.ServerID, Flavor: resume.Flavor, GTIDSet: s.GTID,
			File: s.File, Pos: s.Pos, Epoch: resume.Epoch, RowsDone: s.SkipRows, TxGTID: s.TxGTID, SourceTime: sourceTime, Version: version,
			SnapshotTables: snap.Tables, SnapshotAfter: snap.After, SnapshotFilters: snap.Filters, SnapshotRequests: snap.Requests,
			SnapshotOrigins: snap.Origins, SnapshotFailed: failuresOut(snap.Failed),
			Include: resume.Include, Exclude: resume.Exclude}
	}
	changed := func() {
		if !dirty {
			dirty = true
			linger.Reset(cfg.TransactionLinger)
		}
	}
	var heartbeat <-chan time.Time
	if cfg.HeartbeatInterval > 0 {
		t := time.NewTicker(cfg.HeartbeatInterval)
		defer t.Stop()
		heartbeat = t.C
	}
	commit := func() error {
		linger.Stop()
		if !dirty {
			return nil
		}
		cp := position()
		if err := writer.Commit(pubCtx, cp); err != nil {
			return err
		}
		committed(cp)
		dirty = false
		return nil
	}
	for {
		select {
		case tx := <-read:
			if err := publish(pubCtx, writer, tx); err != nil {
				return err
			}
			if err := resume.Advance(tx); err != nil {
				return err
			}
			if !tx.CommitTime.IsZero() {
				sourceTime = tx.CommitTime
			}
			free <- tx
			changed()
			if records, bytes := writer.Pending(); records >= cfg.TransactionMaxRecords || bytes >= cfg.TransactionMaxBytes {
				if err := commit(); err != nil {
					return err
				}
			}
		case <-heartbeat:
			if err := writer.PublishHeartbeat(pubCtx, position()); err != nil {
				return err
			}
			changed()
		case <-linger.C:
			if err := commit(); err != nil {
				return err
			}
		case <-writer.Failed():
			// The open Kafka transaction is never committed: nothing of it
			// becomes visible, and the next start resumes before it.
			return writer.Err()
		case err := <-readErr:
			if werr := writer.Err(); werr != nil {
				return werr
			}
			// The source transactions published before the stop are
			// whole: commit them, then stop.
			if cerr := commit(); cerr != nil {
				return fmt.Errorf("commit on shutdown: %w", cerr)
			}
			if ctx.Err() != nil {
				return nil // shutdown
			}
			return err
		}
	}
}

// publish hands one source transaction's schema-history entries, changes
// and DDL to the writer.
func publish(ctx context.Context, writer *kafka.Writer, tx *binlog.Tx) error {
	if err := writer.PublishSchemas(ctx, tx.Schemas); err != nil {
		return err
	}
	if err := writer.Publish(ctx, tx.Events); err != nil {
		return err
	}
	for _, d := range tx.DDL {
		if err := writer.PublishDDL(ctx, d); err != nil {
			return err
		}
	}
	return nil
}
