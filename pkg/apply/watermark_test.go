package apply

import (
	"testing"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// TestHighestReached: a cut counts once every partition's committed
// offset reaches its end; a partition never committed holds back every
// cut where it has records; the highest cut reached wins and those above
// it stay.
func TestHighestReached(t *testing.T) {
	a0, a1, b0 := kafka.TopicPartition{Topic: "s.d.a", Partition: 0}, kafka.TopicPartition{Topic: "s.d.a", Partition: 1}, kafka.TopicPartition{Topic: "s.d.b", Partition: 0}
	cuts := []cut{
		{through: cdc.Position{Pos: 10}, ends: map[kafka.TopicPartition]int64{a0: 5, a1: 0, b0: 3}},
		{through: cdc.Position{Pos: 20}, ends: map[kafka.TopicPartition]int64{a0: 9, a1: 2, b0: 3}},
		{through: cdc.Position{Pos: 30}, ends: map[kafka.TopicPartition]int64{a0: 12, a1: 2, b0: 8}},
	}
	tests := []struct {
		name      string
		committed map[kafka.TopicPartition]int64
		want      uint64 // Pos of the cut reached; 0: none
		left      int
	}{
		{"nothing committed", nil, 0, 3},
		{"an empty partition needs no commit", map[kafka.TopicPartition]int64{a0: 5, b0: 3}, 10, 2},
		{"one partition behind", map[kafka.TopicPartition]int64{a0: 12, a1: 1, b0: 8}, 10, 2},
		{"a partition never committed", map[kafka.TopicPartition]int64{a0: 12, a1: 2}, 0, 3},
		{"past the ends", map[kafka.TopicPartition]int64{a0: 20, a1: 2, b0: 9}, 30, 0},
		{"the middle one", map[kafka.TopicPartition]int64{a0: 11, a1: 2, b0: 8}, 20, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			best, rest := highestReached(cuts, tt.committed)
			got := uint64(0)
			if best != nil {
				got = best.through.Pos
			}
			if got != tt.want || len(rest) != tt.left {
				t.Errorf("reached %d with %d left, want %d with %d left", got, len(rest), tt.want, tt.left)
			}
		})
	}
}

// TestAddCut: the waiting cuts are bounded; a full list keeps its oldest
// and takes the newest in place of the last.
func TestAddCut(t *testing.T) {
	var cuts []cut
	for i := range uint64(maxCuts + 10) {
		cuts = addCut(cuts, cut{through: cdc.Position{Pos: i}})
	}
	if len(cuts) != maxCuts || cuts[0].through.Pos != 0 || cuts[maxCuts-2].through.Pos != maxCuts-2 || cuts[maxCuts-1].through.Pos != maxCuts+9 {
		t.Errorf("%d cuts from %d, next to last %d, last %d; want %d from 0, %d, %d",
			len(cuts), cuts[0].through.Pos, cuts[len(cuts)-2].through.Pos, cuts[len(cuts)-1].through.Pos, maxCuts, maxCuts-2, maxCuts+9)
	}
}
