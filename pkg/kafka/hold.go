package kafka

// hold.go: the offsets where reading of a held topic starts again.

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// holds is, by topic, where reading starts again in each partition of a
// topic whose polled batches were not applied (Group.Hold). Safe from any
// goroutine.
type holds struct {
	mu   sync.Mutex
	held map[string]map[int32]kgo.EpochOffset
}

// hold remembers the first offset of each partition of tb, unless one is
// held already.
func (h *holds) hold(tb *TopicBatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := h.held[tb.Topic]
	if ps == nil {
		ps = map[int32]kgo.EpochOffset{}
		h.held[tb.Topic] = ps
	}
	for _, r := range tb.polled {
		if _, ok := ps[r.Partition]; !ok {
			ps[r.Partition] = kgo.EpochOffset{Epoch: -1, Offset: r.Offset}
		}
	}
}

// take returns and forgets the held offsets of topic.
func (h *holds) take(topic string) map[int32]kgo.EpochOffset {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := h.held[topic]
	delete(h.held, topic)
	return ps
}

// forget drops the held offsets of partitions this member no longer reads.
func (h *holds) forget(lost map[string][]int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			delete(h.held[topic], p)
		}
	}
}
