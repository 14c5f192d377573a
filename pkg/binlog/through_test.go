package binlog_test

import (
	"math"
	"testing"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// TestThrough: a checkpoint's resume point, as a sequence, lies above
// every change of the transactions before it and the snapshot rows
// published at it, and below every change of the transaction it points
// at, a partly published one included.
func TestThrough(t *testing.T) {
	s := binlog.State{File: "mysql-bin.000042", Pos: 1200, Epoch: 3, RowsDone: 5}
	through := s.Through()
	if want := (cdc.Position{Epoch: 3, File: 42, Pos: 1200, Row: math.MaxUint64}); through != want {
		t.Fatalf("Through = %v, want %v", through, want)
	}
	before := []cdc.Position{{Epoch: 3, File: 42, Pos: 1100, Row: 9}, {Epoch: 3, File: 41, Pos: 90000}, {Epoch: 2, File: 99, Pos: 5},
		{Epoch: 3, File: 42, Pos: 1200, Row: 0}, {Epoch: 3, File: 42, Pos: 1200, Row: 4000}} // snapshot rows
	after := []cdc.Position{{Epoch: 3, File: 42, Pos: 1201, Row: 0}, {Epoch: 3, File: 42, Pos: 1300, Row: 5}, {Epoch: 3, File: 43, Pos: 4}, {Epoch: 4}}
	for _, p := range before {
		if !p.Less(through) || p.String() >= through.String() {
			t.Errorf("%v is not below %v", p, through)
		}
	}
	for _, p := range after {
		if p.Less(through) || p.String() < through.String() {
			t.Errorf("%v is below %v", p, through)
		}
	}
}
