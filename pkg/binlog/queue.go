package binlog

import (
	"context"
	"errors"
	"sync"

	"github.com/go-mysql-org/go-mysql/replication"
)

// eventQueue carries the events go-mysql's syncer reads, on its own
// goroutine, to the stream, which takes all that are waiting at once. It is
// the syncer's SynchronousEventHandler, in place of go-mysql's channel,
// which costs a select on each side for every event: with one row per
// source transaction (four events), a tenth of the producer's CPU, spent
// on the reading side that bounds its rate (producer/bench_test.go).
//
// It holds events up to queueBytes of the binlog (or queueEvents events),
// plus the batch being read: enough for the syncer to read and parse on
// while the stream is busy, without holding more than a few MiB however
// large the events are.
type eventQueue struct {
	mu      sync.Mutex
	waiting []*replication.BinlogEvent
	bytes   int   // binlog bytes of waiting
	err     error // the syncer stopped with it: read after waiting
	closed  bool

	ready chan struct{} // a token once waiting is no longer empty, or err is set
	room  chan struct{} // a token once waiting was taken
	done  chan struct{} // closed by close

	batch []*replication.BinlogEvent // taken, read from next on
	next  int
}

// The queue's bounds: the syncer waits once either is reached.
const (
	queueBytes  = 2 << 20
	queueEvents = 4 << 10
)

// errQueueClosed ends the syncer's loop once the stream is closed.
var errQueueClosed = errors.New("binlog stream closed")

func newEventQueue() *eventQueue {
	return &eventQueue{ready: make(chan struct{}, 1), room: make(chan struct{}, 1), done: make(chan struct{})}
}

// HandleEvent queues ev, waiting while the queue is full (the syncer's
// goroutine).
func (q *eventQueue) HandleEvent(ev *replication.BinlogEvent) error {
	size := int(ev.Header.EventSize)
	q.mu.Lock()
	for len(q.waiting) > 0 && (q.bytes+size > queueBytes || len(q.waiting) >= queueEvents) && !q.closed {
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-q.done:
		}
		q.mu.Lock()
	}
	if q.closed {
		q.mu.Unlock()
		return errQueueClosed
	}
	q.waiting = append(q.waiting, ev)
	q.bytes += size
	first := len(q.waiting) == 1
	q.mu.Unlock()
	if first {
		signal(q.ready)
	}
	return nil
}

// fail records the error the syncer stopped with, for get to return once
// the events before it are read.
func (q *eventQueue) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	signal(q.ready)
}

// get returns the next event, waiting for one until ctx ends.
func (q *eventQueue) get(ctx context.Context) (*replication.BinlogEvent, error) {
	for q.next == len(q.batch) {
		q.mu.Lock()
		if len(q.waiting) > 0 {
			clear(q.batch) // read: let the events go
			q.batch, q.waiting, q.bytes, q.next = q.waiting, q.batch[:0], 0, 0
			q.mu.Unlock()
			signal(q.room)
			break
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ev := q.batch[q.next]
	q.next++
	return ev, nil
}

// close makes the syncer's next or waiting HandleEvent fail, so that its
// goroutine ends.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// signal leaves a token in c (capacity 1) unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
