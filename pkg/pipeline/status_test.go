package pipeline

import (
	"testing"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/cdc"
)

// GET /status shows the snapshot's last key values only with status_keys.
func TestStatusKeysOnlyWhenAsked(t *testing.T) {
	cp := &Checkpoint{State: binlog.State{Snapshot: binlog.SnapshotState{Tables: []string{"shop.users"}, After: []cdc.Value{cdc.Str("alice@x.test")}}}}
	if got := StatusOf(cp, false).Snapshot; got == nil || got.AfterKey != nil || got.Table != "shop.users" {
		t.Errorf("without status_keys: %+v, want the table and no key", got)
	}
	if got := StatusOf(cp, true).Snapshot; got == nil || len(got.AfterKey) != 1 || got.AfterKey[0] != "alice@x.test" {
		t.Errorf("with status_keys: %+v", got)
	}
}
