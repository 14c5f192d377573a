package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/binlog"
	"github.com/strait-cdc/strait/pkg/kafka"
)

func TestRequestKeepsOnlyCapturedTables(t *testing.T) {
	src := &binlog.Config{Include: []string{"shop.*"}, Exclude: []string{"shop.secret"}}
	for _, tc := range []struct {
		name string
		sig  kafka.Signal
		want binlog.SnapshotRequest
	}{
		{"snapshot", kafka.Signal{Type: kafka.SignalSnapshot, Tables: []string{"shop.a", "shop.secret", "crm.c", "nodot"}, Filter: "id > 1"},
			binlog.SnapshotRequest{Tables: []string{"shop.a"}, Filter: "id > 1", Next: 8}},
		{"cancel", kafka.Signal{Type: kafka.SignalCancel, Request: 3, Tables: []string{"shop.a"}},
			binlog.SnapshotRequest{Cancel: true, Request: 3, Next: 8}},
		{"unknown type asks for nothing", kafka.Signal{Type: "drop", Tables: []string{"shop.a"}},
			binlog.SnapshotRequest{Next: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(Request(tc.sig, 8, src, quiet), tc.want); diff != "" {
				t.Errorf("request (-got +want):\n%s", diff)
			}
		})
	}
}
