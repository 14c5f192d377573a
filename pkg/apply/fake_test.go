package apply_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/sink"
)

// prefix is the fakes' kafka.topic_prefix.
const prefix = "strait"

// fakeKafka is an in-memory consumer group for the engine: one partition
// per topic, records appended by the test, polls of up to perPoll records
// a topic, Hold/Release/Pause as kafka.Group does them, and a commit that
// fails the test unless every record it covers was acknowledged by the
// sink or dead-lettered.
type fakeKafka struct {
	t       *testing.T
	sink    *fakeSink
	perPoll int

	mu        sync.Mutex
	logs      map[string][]kafka.Record // by topic; a record's offset is its index
	pos       map[string]int64          // next offset to poll, by topic
	paused    map[string]bool
	held      map[string]int64 // where a held topic is read again
	committed map[string]int64 // next offset, by topic
	dead      []kafka.BadRecord
	onRevoke  func(context.Context)
	revokes   []chan revoked // asked for by revoke, run by the next Poll
	changed   chan struct{}  // closed and replaced when there is something to poll

	wokenAt time.Time // when Poll last returned for a wake, and how many
	woken   int       // times at that instant: a loop that never sleeps
}

// revoked is what a revoke saw: every topic's polled and committed
// offsets once the hook returned.
type revoked struct{ polled, committed map[string]int64 }

func newFakeKafka(t *testing.T, s *fakeSink, perPoll int) *fakeKafka {
	return &fakeKafka{t: t, sink: s, perPoll: perPoll, logs: map[string][]kafka.Record{}, pos: map[string]int64{},
		paused: map[string]bool{}, held: map[string]int64{}, committed: map[string]int64{}, changed: make(chan struct{})}
}

// notify wakes a waiting Poll; mu held.
func (k *fakeKafka) notify() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// produce appends n records to topic.
func (k *fakeKafka) produce(topic string, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for range n {
		off := int64(len(k.logs[topic]))
		k.logs[topic] = append(k.logs[topic], kafka.Record{Offset: off, Value: kafka.Message{SchemaID: 1, Body: []byte{byte(off)}}})
	}
	k.notify()
}

// revoke runs the OnRevoke hook in the next Poll, as a rebalance does, and
// returns what it saw.
func (k *fakeKafka) revoke() <-chan revoked {
	k.mu.Lock()
	defer k.mu.Unlock()
	ch := make(chan revoked, 1)
	k.revokes = append(k.revokes, ch)
	k.notify()
	return ch
}

// Poll returns up to perPoll records of every topic not paused.
func (k *fakeKafka) Poll(ctx context.Context, wake <-chan struct{}) ([]*kafka.TopicBatch, error) {
	for {
		k.mu.Lock()
		if len(k.revokes) > 0 {
			ch, f := k.revokes[0], k.onRevoke
			k.revokes = k.revokes[1:]
			k.mu.Unlock()
			f(ctx)
			k.mu.Lock()
			ch <- revoked{polled: maps.Clone(k.pos), committed: maps.Clone(k.committed)}
			k.mu.Unlock()
			continue
		}
		var out []*kafka.TopicBatch
		for _, topic := range slices.Sorted(maps.Keys(k.logs)) {
			log, at := k.logs[topic], k.pos[topic]
			if k.paused[topic] || at >= int64(len(log)) {
				continue
			}
			end := min(at+int64(k.perPoll), int64(len(log)))
			out = append(out, &kafka.TopicBatch{Topic: topic, Records: slices.Clone(log[at:end])})
			k.pos[topic] = end
		}
		changed := k.changed
		k.mu.Unlock()
		if out != nil {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
			// synctest's clock stands still while a goroutine runs: many
			// wakes at one instant are a loop that never waits.
			if now := time.Now(); now.Equal(k.wokenAt) {
				k.woken++
			} else {
				k.wokenAt, k.woken = now, 0
			}
			if k.woken > 100 {
				k.t.Errorf("the engine polls in a busy loop")
				return nil, errors.New("busy loop")
			}
			return nil, nil
		case <-changed:
		}
	}
}

func (k *fakeKafka) AllowRebalance() {}

func (k *fakeKafka) OnRevoke(f func(context.Context)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.onRevoke = f
}

func (k *fakeKafka) Commit(_ context.Context, batches []*kafka.TopicBatch) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, tb := range batches {
		for _, r := range tb.Records {
			if !k.sink.acked(tb.Topic, r.Offset) && !slices.ContainsFunc(k.dead, func(b kafka.BadRecord) bool { return b.Topic == tb.Topic && b.Offset == r.Offset }) {
				k.t.Errorf("commit of %s offset %d, which the sink did not acknowledge", tb.Topic, r.Offset)
			}
			k.committed[tb.Topic] = max(k.committed[tb.Topic], r.Offset+1)
		}
	}
	return nil
}

func (k *fakeKafka) Pause(topic string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.paused[topic] = true
}

func (k *fakeKafka) Hold(tb *kafka.TopicBatch) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.paused[tb.Topic] = true
	if _, ok := k.held[tb.Topic]; !ok && len(tb.Records) > 0 {
		k.held[tb.Topic] = tb.Records[0].Offset
	}
}

func (k *fakeKafka) Release(topic string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if at, ok := k.held[topic]; ok {
		k.pos[topic] = at
		delete(k.held, topic)
	}
	k.paused[topic] = false
	k.notify()
}

func (k *fakeKafka) DeadLetter(_ context.Context, bad []kafka.BadRecord) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dead = append(k.dead, bad...)
	return nil
}

func (k *fakeKafka) DeadLetterTopic() string { return prefix + "._dead_letter" }

// committedOf returns topic's committed offset.
func (k *fakeKafka) committedOf(topic string) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.committed[topic]
}

// isPaused reports whether topic is paused or held.
func (k *fakeKafka) isPaused(topic string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.paused[topic]
}

// call is one Apply of the fake sink.
type call struct {
	topic         string
	first, last   int64 // offsets
	start, finish time.Time
	err           error
}

// fakeSink records every Apply and answers with the test's write
// function (nil: every change acknowledged at once). It fails the test
// when two calls of one topic overlap.
type fakeSink struct {
	t     *testing.T
	write func(ctx context.Context, topic string, changes []sink.Change) error // may sleep

	mu     sync.Mutex
	calls  []call
	active map[string]bool
	ack    map[string]map[int64]bool
}

func newFakeSink(t *testing.T, write func(ctx context.Context, topic string, changes []sink.Change) error) *fakeSink {
	return &fakeSink{t: t, write: write, active: map[string]bool{}, ack: map[string]map[int64]bool{}}
}

func (s *fakeSink) Apply(ctx context.Context, topic sink.Topic, changes []sink.Change) error {
	s.mu.Lock()
	if s.active[topic.Name] {
		s.t.Errorf("two applies of %s at once", topic.Name)
	}
	s.active[topic.Name] = true
	s.mu.Unlock()
	c := call{topic: topic.Name, first: changes[0].Offset, last: changes[len(changes)-1].Offset, start: time.Now()}
	if topic.Database != "shop" || topic.Prefix != prefix {
		s.t.Errorf("Apply(%+v): want database shop of prefix %s", topic, prefix)
	}
	if s.write != nil {
		c.err = s.write(ctx, topic.Name, changes)
	}
	c.finish = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active[topic.Name] = false
	s.calls = append(s.calls, c)
	var re *sink.RejectedError
	if c.err != nil && !errors.As(c.err, &re) {
		return c.err
	}
	if s.ack[topic.Name] == nil {
		s.ack[topic.Name] = map[int64]bool{}
	}
	for i, ch := range changes {
		if re == nil || !slices.ContainsFunc(re.Rejections, func(r sink.Rejection) bool { return r.Index == i }) {
			s.ack[topic.Name][ch.Offset] = true
		}
	}
	return c.err
}

// acked reports whether the sink acknowledged offset of topic.
func (s *fakeSink) acked(topic string, offset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ack[topic][offset]
}

// callsOf returns the Apply calls of topic, in order.
func (s *fakeSink) callsOf(topic string) []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []call
	for _, c := range s.calls {
		if c.topic == topic {
			out = append(out, c)
		}
	}
	return out
}
