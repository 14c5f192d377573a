package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

func TestListRequestsStates(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cp := &Checkpoint{State: binlog.State{Snapshot: binlog.SnapshotState{
		Tables: []string{"shop.a", "shop.b"}, Requests: 4,
		Origins: map[string]int64{"shop.a": 1, "shop.b": 1},
		Failed: []binlog.SnapshotFailure{
			{Table: "shop.x", Request: -1, Reason: "no key", At: at},
			{Table: "shop.c", Request: 2, Reason: "cancelled by the request at offset 3", At: at},
			{Table: "shop.d", Request: 0, Reason: "denied", At: at},
		},
	}}}
	signals := []kafka.SignalRecord{
		{Signal: kafka.Signal{Type: kafka.SignalSnapshot, Tables: []string{"shop.d", "shop.e"}}, Offset: 0, Time: at},
		{Signal: kafka.Signal{Type: kafka.SignalSnapshot, Tables: []string{"shop.a", "shop.b"}, Filter: "id > 1"}, Offset: 1, Time: at},
		{Signal: kafka.Signal{Type: kafka.SignalSnapshot, Tables: []string{"shop.c"}}, Offset: 2, Time: at},
		{Signal: kafka.Signal{Type: kafka.SignalCancel, Request: 2}, Offset: 3, Time: at},
		{Signal: kafka.Signal{Type: kafka.SignalSnapshot, Tables: []string{"shop.f"}}, Offset: 4, Time: at},
		{Signal: kafka.Signal{Type: "drop"}, Offset: 5, Time: at},
	}
	var out strings.Builder
	ListRequests(&out, cp, signals)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"ID WRITTEN TABLE FILTER STATE",
		"initial shop.x failed 2026-01-02T03:04:05Z: no key",
		"0 2026-01-02T03:04:05Z shop.d failed 2026-01-02T03:04:05Z: denied",
		"0 2026-01-02T03:04:05Z shop.e done",
		"1 2026-01-02T03:04:05Z shop.a id > 1 reading",
		"1 2026-01-02T03:04:05Z shop.b id > 1 queued",
		"2 2026-01-02T03:04:05Z shop.c cancelled 2026-01-02T03:04:05Z",
		"3 2026-01-02T03:04:05Z cancels request 2",
		"4 2026-01-02T03:04:05Z shop.f pending: not taken by the producer yet",
		"5 2026-01-02T03:04:05Z not a request (skipped)",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("listing (-got +want):\n%s", diff)
	}
}

// fakeSignals replays its signals from offset from on, as the signal topic
// would, then ends with err.
type fakeSignals struct {
	signals []kafka.Signal
	err     error
}

func (f fakeSignals) WatchSignals(ctx context.Context, from int64, fn func(s kafka.Signal, next int64) error) error {
	for i := from; i < int64(len(f.signals)); i++ {
		if err := fn(f.signals[i], i+1); err != nil {
			return err
		}
	}
	return f.err
}

type requests []binlog.SnapshotRequest

func (r *requests) RequestSnapshot(_ context.Context, req binlog.SnapshotRequest) error {
	*r = append(*r, req)
	return nil
}

func TestWatchSignalsHandsRequestsOn(t *testing.T) {
	src := &binlog.Config{Include: []string{"shop.*"}}
	signals := fakeSignals{signals: []kafka.Signal{
		{Type: kafka.SignalSnapshot, Tables: []string{"shop.a"}},
		{Type: kafka.SignalSnapshot, Tables: []string{"shop.b", "crm.c"}},
		{Type: kafka.SignalCancel, Request: 1},
	}, err: errors.New("topic gone")}
	var got requests
	WatchSignals(context.Background(), signals, &got, 1, src, quiet)
	want := requests{{Tables: []string{"shop.b"}, Next: 2}, {Cancel: true, Request: 1, Next: 3}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("requests (-got +want):\n%s", diff)
	}
}
