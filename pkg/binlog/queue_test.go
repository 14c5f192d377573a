package binlog

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

// queued is an event of size bytes numbered n (in its position).
func queued(n uint32, size uint32) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: &replication.EventHeader{LogPos: n, EventSize: size}}
}

// TestEventQueueOrderAndEnd: events come out in the order the syncer handed
// them, every one before the error it stopped with.
func TestEventQueueOrderAndEnd(t *testing.T) {
	q := newEventQueue()
	end := errors.New("connection lost")
	go func() {
		for n := range uint32(10_000) {
			if err := q.HandleEvent(queued(n, 100)); err != nil {
				t.Error(err)
				return
			}
		}
		q.fail(end)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for n := range uint32(10_000) {
		ev, err := q.get(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", n, err)
		}
		if ev.Header.LogPos != n {
			t.Fatalf("event %d came out as %d", n, ev.Header.LogPos)
		}
	}
	if _, err := q.get(ctx); !errors.Is(err, end) {
		t.Fatalf("after the events: %v, want %v", err, end)
	}
}

// TestEventQueueBounded: the syncer waits once the events waiting reach
// queueEvents or queueBytes, and goes on once the stream takes them; close
// releases a syncer waiting for room.
func TestEventQueueBounded(t *testing.T) {
	for _, c := range []struct {
		name string
		size uint32
		fits int // events waiting when the syncer waits
	}{
		{"events", 10, queueEvents},
		{"bytes", 1 << 20, queueBytes >> 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newEventQueue()
				var handed atomic.Int64
				stopped := make(chan error, 1)
				go func() {
					for n := uint32(0); ; n++ {
						if err := q.HandleEvent(queued(n, c.size)); err != nil {
							stopped <- err
							return
						}
						handed.Add(1)
					}
				}()
				synctest.Wait() // the syncer waits for room
				if n := handed.Load(); n != int64(c.fits) {
					t.Fatalf("%d events handed to the queue before the syncer waited, want %d", n, c.fits)
				}
				// Taking one takes all that wait: as many again fit.
				if ev, err := q.get(t.Context()); err != nil || ev.Header.LogPos != 0 {
					t.Fatalf("first event: %v, %v", ev, err)
				}
				synctest.Wait()
				if n := handed.Load(); n != int64(2*c.fits) {
					t.Fatalf("%d events handed once the first were taken, want %d", n, 2*c.fits)
				}
				q.close()
				if err := <-stopped; !errors.Is(err, errQueueClosed) {
					t.Fatalf("the syncer stopped with %v", err)
				}
			})
		})
	}
}
