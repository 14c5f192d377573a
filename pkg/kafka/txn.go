package kafka

// Kafka transactions: the producer's exactly-once. Change records of whole
// source transactions accumulate in one open Kafka transaction, which
// Commit closes with a checkpoint record; a read_committed reader sees all
// of them or none. A second producer of the same source (same
// transactional id) fences this one: its commit then fails, and nothing it
// wrote since its last commit is ever visible.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnState is the open Kafka transaction.
type txnState struct {
	transactional bool
	id            string // transactional id: strait-<prefix>
	open          bool
	records       int // change records since the last Commit
	bytes         int // their key and value bytes

	produced map[string]bool // topics the client produced to
	firstIn  []string        // of those, the ones first produced to in this transaction (awaitPartitions)
}

// ErrFenced reports that another producer took over this source.
var ErrFenced = errors.New("fenced: another producer of this source (same transactional id) took over")

func (w *Writer) begin() error {
	if !w.txn.transactional || w.txn.open {
		return nil
	}
	if err := w.client.BeginTransaction(); err != nil {
		return fmt.Errorf("begin Kafka transaction: %w", err)
	}
	w.txn.open = true
	return nil
}

// Pending returns the change records and their bytes published since the
// last Commit.
func (w *Writer) Pending() (records, bytes int) { return w.txn.records, w.txn.bytes }

// Commit makes everything published since the last Commit visible, together
// with cp, atomically; it returns once the brokers committed. Without
// transactions (kafka.transactions off) it writes cp and waits for every
// record to be acknowledged. On error nothing since the last Commit is
// visible; ErrFenced means another producer took over.
func (w *Writer) Commit(ctx context.Context, cp *Checkpoint) error {
	if err := w.begin(); err != nil {
		return err
	}
	start := time.Now()
	if !w.txn.transactional {
		// At least once: the checkpoint goes out only once every record
		// before it is acknowledged.
		if err := w.Flush(ctx); err != nil {
			return err
		}
	}
	cp.Source, cp.Written, cp.SchemaIDs = w.cfg.TopicPrefix, start, w.registry.InUse()
	value, err := w.encodeCheckpoint(ctx, w.CheckpointTopic(), cp)
	if err != nil {
		return w.abort(ctx, fmt.Errorf("checkpoint: %w", err))
	}
	w.produce(ctx, &kgo.Record{Topic: w.CheckpointTopic(), Key: []byte(w.cfg.TopicPrefix), Value: value})
	if err := w.client.Flush(ctx); err != nil {
		return w.abort(ctx, fmt.Errorf("flush: %w", err))
	}
	if err := w.Err(); err != nil {
		return w.abort(ctx, err)
	}
	if w.txn.transactional {
		if err := w.awaitPartitions(ctx); err != nil {
			return w.abort(ctx, err)
		}
		if err := w.client.EndTransaction(ctx, kgo.TryCommit); err != nil {
			err = authorization(err, w.principal, access{txnID: w.txn.id, txnOp: "WRITE"})
			return w.abort(ctx, fmt.Errorf("commit Kafka transaction: %w", err))
		}
		w.txn.open = false
	}
	w.metrics.commits.Observe(time.Since(start).Seconds())
	w.metrics.txRecords.Observe(float64(w.txn.records))
	w.metrics.checkpoint.Set(float64(cp.SourceTime.UnixMilli()) / 1000)
	w.txn.records, w.txn.bytes = 0, 0
	return nil
}

// awaitPartitions waits until the client lists the partitions of every
// topic it produced to for the first time in this transaction.
//
// Why: franz-go (v1.22.3) buffers the first records of a topic it does not
// know yet, and once their metadata arrives it hands them to their
// partitions before it lists the partitions in the topic
// (storePartitionsUpdate: doPartition, then the deferred store). The
// records can be sent, with AddPartitionsToTxn, and acknowledged in
// between, and if EndTransaction runs in that gap it does not see the
// partition: it ends the transaction without clearing the partition's
// "added to the transaction" mark. The next transaction then produces to
// the partition without adding it, and the broker refuses the produce with
// INVALID_TXN_STATE (Kafka 3.6+ verifies; kfake too) — or, before 3.6,
// takes it outside the transaction. On a busy machine the gap lasts long
// enough: a fresh writer's second transaction failed on the checkpoint
// topic. Every record was acknowledged here, so each was handed to its
// partition and the listing follows at once; a record failed earlier
// aborted the transaction before this.
func (w *Writer) awaitPartitions(ctx context.Context) error {
	for len(w.txn.firstIn) > 0 {
		topic := w.txn.firstIn[0]
		// -1, -1 until the topic's partitions are listed; a listed
		// partition without a leader still has its leader epoch.
		if leader, epoch, _ := w.client.PartitionLeader(topic, 0); leader >= 0 || epoch >= 0 {
			w.txn.firstIn = w.txn.firstIn[1:]
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the client to list the partitions of %s: %w", topic, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// abort ends the open transaction without making anything visible and
// returns err, marked ErrFenced when that is the cause.
func (w *Writer) abort(ctx context.Context, err error) error {
	if isFenced(err) || isFenced(w.Err()) {
		return fmt.Errorf("%w: %v", ErrFenced, err)
	}
	if w.txn.transactional && w.txn.open {
		w.txn.open = false
		if aerr := w.client.AbortBufferedRecords(ctx); aerr == nil {
			if aerr := w.client.EndTransaction(ctx, kgo.TryAbort); aerr != nil && isFenced(aerr) {
				return fmt.Errorf("%w: %v", ErrFenced, err)
			}
		}
	}
	return err
}

// Transient reports whether err, which ended a run of the producer, may
// pass by itself (a coordinator moving or loading, not enough replicas for
// a while): kafka's retriable errors, once franz-go's own retries are
// spent, and a Schema Registry out of reach. A fenced producer is not
// transient: another one took over.
func Transient(err error) bool {
	var unavailable *RegistryUnavailableError
	return errors.As(err, &unavailable) || kerr.IsRetriable(err) && !errors.Is(err, ErrFenced)
}

func isFenced(err error) bool {
	// With Kafka 3.x transactions a producer whose transaction another
	// producer of the same transactional id aborted (by taking it over)
	// may also hear INVALID_TXN_STATE.
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.InvalidTxnState)
}
