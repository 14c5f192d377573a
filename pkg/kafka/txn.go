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
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sr"
)

// producer is the transport under the Writer: the franz-go client, the
// Kafka transaction it keeps open, the topics it created, and the first
// delivery failure. Everything that writes goes through its produce, once
// begin opened a transaction; Writer.StartCommit ends it. Used from the
// publishing goroutine, but for delivery results, which arrive on the
// client's (setErr), and for a commit under way, which ends on its own
// (commitTxn).
type producer struct {
	cfg       *Config
	log       *slog.Logger
	client    *kgo.Client
	admin     *kadm.Client
	metrics   *Metrics
	sec       []kgo.Opt // TLS and SASL, for the writer's other clients (state reads, signals)
	principal string    // User:<name> for authorization errors; "" unknown

	txn        txnState
	committing *commit                  // the last transaction StartCommit started, until endCommit; nil: none
	held       []*kgo.Record            // produced while committing: the next transaction's, produced at its end
	topics     map[string]bool          // topics known to exist
	listed     bool                     // topics listed once (learnTopics)
	onDelivery func(*kgo.Record, error) // p.delivered, allocated once

	failMu sync.Mutex
	fail   error
	failed chan struct{} // closed with the first delivery failure
}

// newProducer connects to the brokers. opts are extra client options
// (security, tests); it returns the registry's options too, which the
// client's security settings decide.
func newProducer(cfg *Config, log *slog.Logger, m *Metrics, opts ...kgo.Opt) (*producer, []sr.ClientOpt, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.RecordPartitioner(partitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxRecordBytes)),
		kgo.ProducerLinger(cfg.ProducerLinger),
		withLog(log),
	}
	txn := txnState{transactional: cfg.Transactions, id: "strait-" + cfg.TopicPrefix}
	if txn.transactional {
		base = append(base, kgo.TransactionalID(txn.id), kgo.TransactionTimeout(cfg.TransactionTimeout),
			// Kafka 3.9's transactions, which every 3.x and 4.x broker
			// speaks: with 4.0's (KIP-890, a new epoch at every commit)
			// a produce right after a commit was sometimes sent with the
			// old sequence (OUT_OF_ORDER_SEQUENCE_NUMBER in our tests).
			kgo.MaxVersions(kversion.V3_9_0()))
	}
	client, sec, regOpts, err := cfg.Security.newClient(log, base, opts...)
	if err != nil {
		return nil, nil, err
	}
	return &producer{cfg: cfg, log: log, client: client, admin: kadm.NewClient(client), metrics: m, sec: sec, principal: cfg.Security.Principal(),
		txn: txn, topics: map[string]bool{}, failed: make(chan struct{})}, regOpts, nil
}

// txnState is the open Kafka transaction.
type txnState struct {
	transactional bool
	id            string // transactional id: strait-<prefix>
	open          bool
	records       int // change records since the last Commit
	bytes         int // their key and value bytes

	produced map[string]bool // topics the client produced to
	firstIn  []string        // of those, the ones first produced to in this transaction (awaitPartitions)
	// preloaded are the topics preload had the client learn (topics.go).
	preloaded map[string]bool
}

// ErrFenced reports that another producer took over this source.
var ErrFenced = errors.New("fenced: another producer of this source (same transactional id) took over")

// begin opens a transaction unless one is open (or transactions are off).
// While a commit is under way the next transaction opens at its end. Once
// the writer failed it returns why: a commit that failed on its own
// goroutine leaves the client's transaction open until the run ends.
func (p *producer) begin() error {
	if !p.txn.transactional || p.txn.open || p.committing != nil {
		return nil
	}
	if err := p.Err(); err != nil {
		return err
	}
	if err := p.client.BeginTransaction(); err != nil {
		return fmt.Errorf("begin Kafka transaction: %w", err)
	}
	p.txn.open = true
	return nil
}

// counted notes a change record of n key and value bytes (Pending).
func (p *producer) counted(n int) {
	p.txn.records++
	p.txn.bytes += n
}

// commit is a Kafka transaction ending on its own goroutine (commitTxn).
type commit struct {
	done chan struct{} // closed once it ended
	err  error         // then: why it failed; nil once committed
}

// Commit makes everything published since the last commit visible, together
// with the checkpoint cp, atomically; it returns once the brokers committed.
// Without transactions (kafka.transactions off) it writes cp and waits for
// every record to be acknowledged. On error nothing since the last commit
// is visible; ErrFenced means another producer took over.
func (w *Writer) Commit(ctx context.Context, cp StateValue) error {
	if err := w.StartCommit(ctx, cp); err != nil {
		return err
	}
	return w.EndCommit(ctx)
}

// StartCommit is Commit without the wait for the brokers: it waits for the
// commit started before (EndCommit), writes cp and has the transaction
// flushed and ended on a goroutine of its own. What is published meanwhile
// is encoded and held, then produced into the next transaction once this
// one ended: publishing goes on while the brokers commit, which with
// thousands of partitions take as long as the records took to encode
// (producer/bench_test.go). Committing says when it ended; its failure
// also fails the writer (Failed). Without transactions it returns once
// committed, as Commit.
func (w *Writer) StartCommit(ctx context.Context, cp StateValue) error {
	p := w.producer
	if err := p.endCommit(ctx); err != nil {
		return err
	}
	if err := p.begin(); err != nil {
		return err
	}
	start := time.Now()
	if !p.txn.transactional {
		// At least once: the checkpoint goes out only once every record
		// before it is acknowledged.
		if err := p.Flush(ctx); err != nil {
			return err
		}
		if err := w.state.putCheckpoint(ctx, cp, start); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if err := p.Flush(ctx); err != nil {
			return err
		}
		p.committed(start, p.txn.records, cp)
		p.txn.records, p.txn.bytes = 0, 0
		return nil
	}
	if err := w.state.putCheckpoint(ctx, cp, start); err != nil {
		return p.abort(ctx, fmt.Errorf("checkpoint: %w", err))
	}
	c := &commit{done: make(chan struct{})}
	records, firstIn := p.txn.records, p.txn.firstIn
	p.txn.open, p.txn.records, p.txn.bytes, p.txn.firstIn = false, 0, 0, nil
	p.committing = c
	go func() {
		defer close(c.done)
		if c.err = p.commitTxn(ctx, firstIn); c.err != nil {
			p.setErr(c.err)
			return
		}
		p.committed(start, records, cp)
	}()
	return nil
}

// Committing is closed once the commit StartCommit started last ended;
// nil when there is none to end.
func (w *Writer) Committing() <-chan struct{} {
	if c := w.producer.committing; c != nil {
		return c.done
	}
	return nil
}

// EndCommit waits for the commit StartCommit started last and returns its
// error; the records held meanwhile then go into the next transaction.
func (w *Writer) EndCommit(ctx context.Context) error { return w.producer.endCommit(ctx) }

// endCommit is EndCommit.
func (p *producer) endCommit(ctx context.Context) error {
	c := p.committing
	if c == nil {
		return nil
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("commit Kafka transaction: %w", ctx.Err())
	}
	p.committing = nil
	if c.err != nil {
		p.held = nil // the run ends: nothing after the last commit is visible
		return c.err
	}
	if len(p.held) == 0 {
		return nil
	}
	if err := p.begin(); err != nil {
		return err
	}
	for i, r := range p.held {
		p.produce(ctx, r)
		p.held[i] = nil
	}
	p.held = p.held[:0]
	return nil
}

// commitTxn ends the transaction StartCommit closed, on its own goroutine:
// every record acknowledged, then EndTransaction. firstIn are the topics
// it produced to for the first time (awaitPartitions). It reads nothing
// the publishing goroutine writes.
func (p *producer) commitTxn(ctx context.Context, firstIn []string) error {
	if err := p.client.Flush(ctx); err != nil {
		return p.abortTxn(ctx, fmt.Errorf("flush: %w", err))
	}
	if err := p.Err(); err != nil {
		return p.abortTxn(ctx, err)
	}
	if err := p.awaitPartitions(ctx, firstIn); err != nil {
		return p.abortTxn(ctx, err)
	}
	if err := p.client.EndTransaction(ctx, kgo.TryCommit); err != nil {
		err = authorization(err, p.principal, access{txnID: p.txn.id, txnOp: "WRITE"})
		return p.abortTxn(ctx, fmt.Errorf("commit Kafka transaction: %w", err))
	}
	return nil
}

// committed records a commit of records change records and checkpoint cp
// started at start.
func (p *producer) committed(start time.Time, records int, cp StateValue) {
	p.metrics.commits.Observe(time.Since(start).Seconds())
	p.metrics.txRecords.Observe(float64(records))
	p.metrics.checkpoint.Set(float64(cp.StateTime().UnixMilli()) / 1000)
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
func (p *producer) awaitPartitions(ctx context.Context, topics []string) error {
	for len(topics) > 0 {
		topic := topics[0]
		// -1, -1 until the topic's partitions are listed; a listed
		// partition without a leader still has its leader epoch.
		if leader, epoch, _ := p.client.PartitionLeader(topic, 0); leader >= 0 || epoch >= 0 {
			topics = topics[1:]
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
func (p *producer) abort(ctx context.Context, err error) error {
	if p.txn.transactional && p.txn.open {
		p.txn.open = false
		return p.abortTxn(ctx, err)
	}
	if isFenced(err) || isFenced(p.Err()) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

// abortTxn aborts the transaction, open or being committed, and returns
// err, marked ErrFenced when that is the cause.
func (p *producer) abortTxn(ctx context.Context, err error) error {
	if isFenced(err) || isFenced(p.Err()) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	if aerr := p.client.AbortBufferedRecords(ctx); aerr == nil {
		if aerr := p.client.EndTransaction(ctx, kgo.TryAbort); aerr != nil && isFenced(aerr) {
			return fmt.Errorf("%w: %w", ErrFenced, err)
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

// close releases the client, and waits for a commit under way to give up;
// call Flush (or EndCommit) first to wait for in-flight records.
func (p *producer) close() {
	p.client.Close()
	if c := p.committing; c != nil {
		<-c.done
	}
}

// Err returns the first delivery failure, if any.
func (p *producer) Err() error {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	return p.fail
}

// Failed is closed when a delivery fails; Err then says why.
func (p *producer) Failed() <-chan struct{} { return p.failed }

func (p *producer) setErr(err error) {
	p.failMu.Lock()
	if p.fail == nil {
		p.fail = err
		close(p.failed)
	}
	p.failMu.Unlock()
}

// Flush waits until every record published so far is acknowledged.
func (p *producer) Flush(ctx context.Context) error {
	if err := p.client.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return p.Err()
}

// produce hands r to the client, noting its topic for awaitPartitions;
// the delivery result arrives in delivered.
func (p *producer) produce(ctx context.Context, r *kgo.Record) {
	if c := p.committing; c != nil {
		select {
		case <-c.done:
			// The next transaction opens here: the caller's begin came
			// while the commit was under way.
			err := p.endCommit(ctx)
			if err == nil {
				err = p.begin()
			}
			if err != nil {
				p.setErr(err) // the writer fails (Failed): the run ends
				return
			}
		default:
			p.held = append(p.held, r) // the next transaction's
			return
		}
	}
	if p.onDelivery == nil {
		p.onDelivery = p.delivered
	}
	if !p.txn.produced[r.Topic] {
		if p.txn.produced == nil {
			p.txn.produced = map[string]bool{}
		}
		p.txn.produced[r.Topic] = true
		if p.txn.transactional {
			p.txn.firstIn = append(p.txn.firstIn, r.Topic)
		}
	}
	p.client.Produce(ctx, r, p.onDelivery)
}

// delivered keeps the first delivery failure, named by the missing ACL or
// as ErrFenced when that is the cause.
func (p *producer) delivered(r *kgo.Record, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		p.metrics.errors.WithLabelValues("produce").Inc()
		if isFenced(err) {
			err = fmt.Errorf("%w (%v)", ErrFenced, err)
		}
		err = authorization(err, p.principal, access{topic: r.Topic, topicOp: "WRITE", txnID: p.txn.id, txnOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"})
		p.setErr(fmt.Errorf("produce to %s: %w", r.Topic, err))
	}
}
