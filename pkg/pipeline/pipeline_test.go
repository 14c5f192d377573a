package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// The real source and log satisfy the engine's interfaces as they are.
var (
	_ Source  = (*binlog.Reader)(nil)
	_ Replica = (*binlog.Reader)(nil)
	_ Log     = (*kafka.Writer)(nil)
)

// memSource hands out the transactions sent on txs; once txs is closed,
// ReadTx returns err (or, when err is nil, waits for the context).
type memSource struct {
	txs chan binlog.Tx
	err error
}

func newSource() *memSource { return &memSource{txs: make(chan binlog.Tx, 16)} }

func (s *memSource) ReadTx(ctx context.Context, tx *binlog.Tx) error {
	select {
	case t, ok := <-s.txs:
		if ok {
			*tx = t
			return nil
		}
		if s.err != nil {
			return s.err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	<-ctx.Done()
	return ctx.Err()
}

// eventBytes is what each change record weighs in the log.
const eventBytes = 100

// memLog is a Kafka transaction in memory: changes are pending until Commit
// makes them visible with a checkpoint.
type memLog struct {
	mu          sync.Mutex
	pending     []cdc.Event
	visible     []cdc.Event
	checkpoints []*Checkpoint // committed
	heartbeats  []*Checkpoint
	publishes   int           // calls of Publish
	down        bool          // the brokers do not answer: Commit waits for its context
	gate        chan struct{} // when set, each Publish waits for a value
	commitErr   error
	ended       chan struct{} // closed: a commit StartCommit started ended, with endErr
	endErr      error
	failed      chan struct{}
	err         error
}

func newLog() *memLog { return &memLog{failed: make(chan struct{})} }

func (l *memLog) PublishSchemas(ctx context.Context, schema string, entries []kafka.StateEntry) error {
	return nil
}

func (l *memLog) Publish(ctx context.Context, events []cdc.Event) error {
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.publishes++
	l.pending = append(l.pending, events...)
	return nil
}

func (l *memLog) PublishDDL(ctx context.Context, d cdc.SchemaChange) error { return nil }

func (l *memLog) PublishSnapshotPlan(ctx context.Context, plan kafka.StateValue) error { return nil }

func (l *memLog) Pending() (records, bytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending), len(l.pending) * eventBytes
}

// StartCommit commits at once; EndCommit returns the result.
func (l *memLog) StartCommit(ctx context.Context, cp kafka.StateValue) error {
	if err := l.EndCommit(ctx); err != nil {
		return err
	}
	err := l.commit(ctx, cp)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended, l.endErr = make(chan struct{}), err
	close(l.ended)
	return nil
}

func (l *memLog) Committing() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

func (l *memLog) EndCommit(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.endErr
	l.ended, l.endErr = nil, nil
	return err
}

func (l *memLog) commit(ctx context.Context, cp kafka.StateValue) error {
	l.mu.Lock()
	down, commitErr := l.down, l.commitErr
	l.mu.Unlock()
	if down {
		<-ctx.Done()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case down:
		l.pending = nil // aborted: nothing of it is visible
		return fmt.Errorf("commit Kafka transaction: %w", ctx.Err())
	case commitErr != nil:
		l.pending = nil
		return commitErr
	}
	l.visible = append(l.visible, l.pending...)
	l.pending = nil
	l.checkpoints = append(l.checkpoints, cp.(stateValue).cp)
	return nil
}

func (l *memLog) PublishHeartbeat(ctx context.Context, cp kafka.StateValue) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.heartbeats = append(l.heartbeats, cp.(stateValue).cp)
	return nil
}

func (l *memLog) Failed() <-chan struct{} { return l.failed }

func (l *memLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// fence is another producer taking over: deliveries fail.
func (l *memLog) fence() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = kafka.ErrFenced
	close(l.failed)
}

// state returns how many changes are visible, the last checkpoint
// committed (nil: none) and the heartbeats published.
func (l *memLog) state() (visible int, last *Checkpoint, heartbeats int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.checkpoints); n > 0 {
		last = l.checkpoints[n-1]
	}
	return len(l.visible), last, len(l.heartbeats)
}

// records returns the checkpoints committed and the heartbeats published.
func (l *memLog) records() (checkpoints, heartbeats []*Checkpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Checkpoint(nil), l.checkpoints...), append([]*Checkpoint(nil), l.heartbeats...)
}

// published returns the calls of Publish so far.
func (l *memLog) published() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.publishes
}

// tx is a source transaction of n changes ending at bin.000001:end.
func tx(n int, end uint64) binlog.Tx {
	return binlog.Tx{Events: make([]cdc.Event, n), File: "bin.000001", EndPos: end, CommitTime: time.Unix(int64(end), 0)}
}

// config commits on a linger of a second only, with no heartbeats.
func config() Config {
	return Config{MaxRecords: 1000, MaxBytes: 1000 * eventBytes, Linger: time.Second, Shutdown: 30 * time.Second, Version: "test"}
}

// running is an engine run in the test's bubble.
type running struct {
	stop  context.CancelFunc
	ended chan error
}

// start runs the engine of src, l and cfg until stop.
func start(src Source, l Log, cfg Config) *running {
	ctx, stop := context.WithCancel(context.Background())
	e := &Engine{Source: src, Log: l, Resume: &binlog.Resume{ServerID: 7, Flavor: "mariadb"}, Config: cfg}
	r := &running{stop: stop, ended: make(chan error, 1)}
	go func() { r.ended <- e.Run(ctx) }()
	return r
}

// end stops the run and returns its error.
func (r *running) end() error {
	r.stop()
	return <-r.ended
}

// wantAt fails unless cp is a checkpoint at bin.000001:pos.
func wantAt(t *testing.T, cp *Checkpoint, pos uint64) {
	t.Helper()
	if cp == nil || cp.File != "bin.000001" || cp.Pos != pos || cp.ServerID != 7 || cp.Version != "test" {
		t.Fatalf("checkpoint %+v, want at bin.000001:%d of server 7, version test", cp, pos)
	}
}

func TestLingerCommitsALoneTransaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, l := newSource(), newLog()
		r := start(src, l, config())
		src.txs <- tx(3, 100)
		time.Sleep(time.Second - time.Millisecond)
		synctest.Wait()
		if visible, cp, _ := l.state(); visible != 0 || cp != nil {
			t.Fatalf("before the linger: %d changes visible, checkpoint %+v; want none", visible, cp)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		visible, cp, _ := l.state()
		if visible != 3 {
			t.Fatalf("after the linger: %d changes visible, want 3", visible)
		}
		wantAt(t, cp, 100)
		if want := time.Unix(100, 0); !cp.SourceTime.Equal(want) {
			t.Errorf("source time %s, want %s", cp.SourceTime, want)
		}
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSizeCommitsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"records", func(c *Config) { c.MaxRecords = 3 }},
		{"bytes", func(c *Config) { c.MaxBytes = 3 * eventBytes }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := config()
				cfg.Linger = time.Hour
				tc.cfg(&cfg)
				src, l := newSource(), newLog()
				r := start(src, l, cfg)
				src.txs <- tx(2, 100)
				synctest.Wait()
				if visible, _, _ := l.state(); visible != 0 {
					t.Fatalf("2 changes of at most 3: %d visible, want 0", visible)
				}
				src.txs <- tx(2, 200)
				synctest.Wait()
				visible, cp, _ := l.state()
				if visible != 4 {
					t.Fatalf("4 changes of at most 3: %d visible, want 4 without waiting", visible)
				}
				wantAt(t, cp, 200)
				if err := r.end(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestHeartbeatAdvancesAnIdleCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Heartbeat = 10 * time.Second
		src, l := newSource(), newLog()
		r := start(src, l, cfg)
		// The reader's idle heartbeat: a position, no changes.
		src.txs <- binlog.Tx{Heartbeat: true, File: "bin.000001", EndPos: 500}
		time.Sleep(cfg.Linger)
		synctest.Wait()
		_, cp, beats := l.state()
		wantAt(t, cp, 500)
		if beats != 0 {
			t.Fatalf("%d heartbeat records before heartbeat_interval, want 0", beats)
		}
		// Nothing read since: every heartbeat_interval a heartbeat record,
		// and a checkpoint a linger later.
		time.Sleep(cfg.Heartbeat - cfg.Linger)
		synctest.Wait()
		_, _, beats = l.state()
		if beats != 1 {
			t.Fatalf("%d heartbeat records after heartbeat_interval, want 1", beats)
		}
		before, _ := l.records()
		time.Sleep(cfg.Linger)
		synctest.Wait()
		after, heartbeats := l.records()
		if len(after) != len(before)+1 {
			t.Fatalf("%d checkpoints a linger after the heartbeat, want %d", len(after), len(before)+1)
		}
		wantAt(t, heartbeats[0], 500)
		wantAt(t, after[len(before)], 500)
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDrainCommitsWhatWasRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Linger = time.Hour
		src, l := newSource(), newLog()
		r := start(src, l, cfg)
		src.txs <- tx(2, 100)
		src.txs <- tx(3, 200)
		synctest.Wait()
		began := time.Now()
		if err := r.end(); err != nil {
			t.Fatalf("shutdown: %v, want nil", err)
		}
		if d := time.Since(began); d != 0 {
			t.Errorf("shutdown took %s with the brokers up, want no wait", d)
		}
		visible, cp, _ := l.state()
		if visible != 5 {
			t.Fatalf("%d changes visible after shutdown, want 5", visible)
		}
		wantAt(t, cp, 200)
	})
}

func TestDrainGivesUpAfterShutdownTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Linger = time.Hour
		src, l := newSource(), newLog()
		l.down = true
		r := start(src, l, cfg)
		src.txs <- tx(2, 100)
		synctest.Wait()
		began := time.Now()
		err := r.end()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("shutdown with the brokers down: %v, want the commit given up", err)
		}
		if d := time.Since(began); d != cfg.Shutdown {
			t.Errorf("gave up after %s, want shutdown_timeout %s", d, cfg.Shutdown)
		}
		if visible, cp, _ := l.state(); visible != 0 || cp != nil {
			t.Fatalf("%d changes visible, checkpoint %+v; want nothing uncommitted visible", visible, cp)
		}
	})
}

func TestFencedStopsPublishing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, l := newSource(), newLog()
		r := start(src, l, config())
		src.txs <- tx(1, 100)
		synctest.Wait()
		l.fence()
		synctest.Wait()
		src.txs <- tx(1, 200)
		synctest.Wait()
		select {
		case err := <-r.ended:
			if !errors.Is(err, kafka.ErrFenced) {
				t.Fatalf("fenced: %v, want kafka.ErrFenced", err)
			}
		default:
			t.Fatal("fenced: still running")
		}
		if n := l.published(); n != 1 {
			t.Errorf("%d publishes, want 1: none after the fence", n)
		}
		if visible, _, _ := l.state(); visible != 0 {
			t.Errorf("%d changes visible, want 0: the fenced transaction is never committed", visible)
		}
		r.stop()
	})
}

func TestFencedCommitStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, l := newSource(), newLog()
		l.commitErr = fmt.Errorf("%w: producer fenced", kafka.ErrFenced)
		r := start(src, l, config())
		src.txs <- tx(1, 100)
		time.Sleep(config().Linger)
		synctest.Wait()
		src.txs <- tx(1, 200)
		synctest.Wait()
		select {
		case err := <-r.ended:
			if !errors.Is(err, kafka.ErrFenced) {
				t.Fatalf("commit fenced: %v, want kafka.ErrFenced", err)
			}
		default:
			t.Fatal("commit fenced: still running")
		}
		if n := l.published(); n != 1 {
			t.Errorf("%d publishes, want 1: none after the refused commit", n)
		}
		r.stop()
	})
}

func TestReadErrorStopsAfterCommitting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, l := newSource(), newLog()
		src.err = errors.New("binlog: connection lost")
		cfg := config()
		cfg.Linger = time.Hour
		r := start(src, l, cfg)
		src.txs <- tx(2, 100)
		close(src.txs)
		synctest.Wait()
		select {
		case err := <-r.ended:
			if !errors.Is(err, src.err) {
				t.Fatalf("read error: Run returned %v, want %v", err, src.err)
			}
		default:
			t.Fatal("read error: still running")
		}
		visible, cp, _ := l.state()
		if visible != 2 {
			t.Fatalf("%d changes visible, want the 2 read before the error", visible)
		}
		wantAt(t, cp, 100)
		r.stop()
	})
}

func TestPartialTransactionCheckpointsInside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, l := newSource(), newLog()
		r := start(src, l, config())
		part := tx(4, 300)
		part.Partial, part.Begin, part.RowsBefore, part.GTID = true, binlog.Start{File: "bin.000001", Pos: 250}, 4, "0-1-9"
		src.txs <- part
		synctest.Wait()
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
		_, cp, _ := l.state()
		if cp == nil || cp.Pos != 250 || cp.RowsDone != 8 || cp.TxGTID != "0-1-9" {
			t.Fatalf("checkpoint %+v, want inside the transaction at 250 with 8 rows done", cp)
		}
	})
}

// A snapshot chunk is no source transaction: its time is the producer's
// clock when it went out, not the source's. The checkpoint's source time
// stays the last source transaction's — the bound the resume policy reads
// after a lost binlog (lost.go) must be of the source's clock.
func TestSnapshotChunkKeepsSourceTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, l := newSource(), newLog()
		r := start(src, l, config())
		src.txs <- tx(1, 100)
		chunk := tx(2, 200)
		chunk.CommitTime, chunk.Snapshot = time.Unix(5000, 0), &binlog.SnapshotState{Tables: []string{"shop.a"}}
		src.txs <- chunk
		time.Sleep(time.Second)
		synctest.Wait()
		_, cp, _ := l.state()
		wantAt(t, cp, 200)
		if want := time.Unix(100, 0); !cp.SourceTime.Equal(want) {
			t.Errorf("source time %s, want the source transaction's %s", cp.SourceTime, want)
		}
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
	})
}

// endless is a source of transactions of n changes each, without end,
// counting those read.
type endless struct {
	n    int
	read atomic.Int64
}

func (s *endless) ReadTx(ctx context.Context, tx *binlog.Tx) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := s.read.Add(1)
	tx.Events, tx.File, tx.EndPos = make([]cdc.Event, s.n), "bin.000001", uint64(100*r)
	return nil
}

// TestReadAheadBounded: while publishing waits, the reader reads ahead, up
// to readAhead transactions or readAheadEvents changes, and no further.
func TestReadAheadBounded(t *testing.T) {
	for _, c := range []struct {
		changes int   // per transaction
		read    int64 // transactions read while the first is published
	}{
		{1, 1 + readAhead + 1}, // the one published, readAhead waiting, one read and waiting for room
		{100, 1 + (readAheadEvents+99)/100},
	} {
		t.Run(fmt.Sprintf("changes=%d", c.changes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src, l := &endless{n: c.changes}, newLog()
				l.gate = make(chan struct{})
				r := start(src, l, config())
				synctest.Wait()
				if n := src.read.Load(); n != c.read {
					t.Fatalf("%d transactions read while publishing waited, want %d", n, c.read)
				}
				l.gate <- struct{}{} // one published: room for one more
				synctest.Wait()
				if n := src.read.Load(); n != c.read+1 {
					t.Fatalf("%d transactions read once one was published, want %d", n, c.read+1)
				}
				close(l.gate)
				r.stop()
				<-r.ended
			})
		})
	}
}

// sized is a source of transactions of sizes[i] changes, then none, noting
// which *binlog.Tx each large one was read into.
type sized struct {
	sizes []int
	read  int
	large map[*binlog.Tx]bool
}

func (s *sized) ReadTx(ctx context.Context, tx *binlog.Tx) error {
	if s.read == len(s.sizes) {
		<-ctx.Done()
		return ctx.Err()
	}
	n := s.sizes[s.read]
	s.read++
	if n > 1000 {
		s.large[tx] = true
	}
	tx.Events, tx.File, tx.EndPos = make([]cdc.Event, n), "bin.000001", uint64(100*s.read)
	return nil
}

// TestReadAheadReusesFewLargeBuffers: after a burst of small transactions
// filled the pool, large ones (a snapshot's chunks, a large transaction's
// parts) are read into the same few transactions, not into every one in
// turn (each would keep its grown buffers).
func TestReadAheadReusesFewLargeBuffers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &sized{large: map[*binlog.Tx]bool{}}
		for range 2 * readAhead {
			src.sizes = append(src.sizes, 1)
		}
		for range 50 {
			src.sizes = append(src.sizes, readAheadEvents)
		}
		l := newLog()
		l.gate = make(chan struct{})
		cfg := config()
		cfg.MaxRecords, cfg.MaxBytes = 1<<30, 1<<40
		r := start(src, l, cfg)
		synctest.Wait() // the pool's transactions are all read into
		close(l.gate)
		synctest.Wait()
		if src.read != len(src.sizes) {
			t.Fatalf("%d transactions read, want %d", src.read, len(src.sizes))
		}
		if n := len(src.large); n > 3 {
			t.Errorf("50 large transactions read into %d different ones, want at most 3", n)
		}
		r.stop()
		<-r.ended
	})
}
