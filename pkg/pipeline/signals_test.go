package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// TestRequestRefusesHostileRepairs: a repair signal's writer is not
// trusted; each malformed one asks for nothing (its offset still moves on)
// and says why.
func TestRequestRefusesHostileRepairs(t *testing.T) {
	src := &binlog.Config{Include: []string{"shop.*"}, Exclude: []string{"shop.secret"}}
	many := make([][]string, binlog.MaxRepairKeys+1)
	for i := range many {
		many[i] = []string{"1"}
	}
	for _, tc := range []struct {
		name string
		sig  kafka.Signal
		want string // in CheckRepair's error
	}{
		{"no table", kafka.Signal{Type: kafka.SignalRepair, Keys: [][]string{{"1"}}}, "names 0 tables"},
		{"two tables", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a", "shop.b"}, Keys: [][]string{{"1"}}}, "names 2 tables"},
		{"not captured", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.secret"}, Keys: [][]string{{"1"}}}, "shop.secret is not captured"},
		{"unknown database", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"crm.c"}, Keys: [][]string{{"1"}}}, "crm.c is not captured"},
		{"not database.table", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"nodot"}, Keys: [][]string{{"1"}}}, "want database.table"},
		{"control characters", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a\tb\n"}, Keys: [][]string{{"1"}}}, "want database.table"},
		{"not UTF-8 name", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.\xff"}, Keys: [][]string{{"1"}}}, "want database.table"},
		{"long name", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop." + strings.Repeat("x", 200)}, Keys: [][]string{{"1"}}}, "want database.table"},
		{"no keys", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}}, "no keys"},
		{"too many keys", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: many}, "1001 keys: at most 1000"},
		{"empty key", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{{}}}, "key 1 has 0 values"},
		{"ragged keys", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{{"1", "2"}, {"3"}}}, "key 2 has 1 values, key 1 has 2"},
		{"too many columns", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{make([]string, 33)}}, "key 1 has 33 values"},
		{"long key", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{{strings.Repeat("x", 3073)}}}, "key 1: 3073 bytes, at most 3072"},
		{"not UTF-8", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{{"\xff"}}}, "not UTF-8"},
		{"with a filter", kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{{"1"}}, Filter: "1=1; DROP TABLE a"}, "no filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRepair(tc.sig, src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckRepair: %v, want %q", err, tc.want)
			}
			if diff := cmp.Diff(Request(tc.sig, 8, src, quiet), binlog.SnapshotRequest{Next: 8}); diff != "" {
				t.Errorf("request (-got +want):\n%s", diff)
			}
		})
	}
	sig := kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{{"1", "x"}, {"2", "y"}}}
	want := binlog.SnapshotRequest{Tables: []string{"shop.a"}, Keys: [][]string{{"1", "x"}, {"2", "y"}}, Next: 8}
	if diff := cmp.Diff(Request(sig, 8, src, quiet), want); diff != "" {
		t.Errorf("a valid repair (-got +want):\n%s", diff)
	}
}

// TestRepairSignalsSplit: keys are split into signals of at most
// binlog.MaxRepairKeys keys and maxSignalBytes, none lost or repeated.
func TestRepairSignalsSplit(t *testing.T) {
	src := &binlog.Config{Include: []string{"shop.*"}}
	var keys [][]string
	for i := range 2500 {
		keys = append(keys, []string{fmt.Sprint(i)})
	}
	long := strings.Repeat("ü", 1000) // 2,000 bytes
	for i := range 400 {
		keys = append(keys, []string{fmt.Sprint(long, i)})
	}
	sigs, err := RepairSignals("shop.a", keys, src)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, s := range sigs {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxSignalBytes || len(s.Keys) > binlog.MaxRepairKeys {
			t.Errorf("a signal of %d bytes and %d keys", len(b), len(s.Keys))
		}
		got = append(got, s.Keys...)
	}
	if diff := cmp.Diff(got, keys); diff != "" {
		t.Errorf("keys (-got +want):\n%s", diff)
	}
	if len(sigs) < 4 {
		t.Errorf("%d signals, want at least 4 (3 by count, more by bytes)", len(sigs))
	}
	if _, err := RepairSignals("crm.a", keys[:1], src); err == nil {
		t.Error("a table source.include does not capture is sent")
	}
}

func TestListRequestsRepairsAndBackfills(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cp := &Checkpoint{State: binlog.State{Snapshot: binlog.SnapshotState{Requests: 3,
		Failed: []binlog.SnapshotFailure{{Table: "shop.b", Request: 1, Reason: "backfill: row 2: column v is NOT NULL", At: at}}}}}
	row := []*string{ptr("1")}
	signals := []kafka.SignalRecord{
		{Signal: kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}, Keys: [][]string{{"1"}, {"2"}}}, Offset: 0, Time: at},
		{Signal: kafka.Signal{Type: kafka.SignalBackfill, Tables: []string{"shop.b"}, Columns: []string{"id"}, Rows: [][]*string{row, row}}, Offset: 1, Time: at},
		{Signal: kafka.Signal{Type: kafka.SignalRepair, Tables: []string{"shop.a"}}, Offset: 2, Time: at},
		{Signal: kafka.Signal{Type: kafka.SignalBackfill, Tables: []string{"shop.b"}, Columns: []string{"id"}, Rows: [][]*string{row}}, Offset: 3, Time: at},
	}
	var out strings.Builder
	ListRequests(&out, cp, signals)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"ID WRITTEN TABLE FILTER STATE",
		"0 2026-01-02T03:04:05Z shop.a repair of 2 keys published",
		"1 2026-01-02T03:04:05Z shop.b failed 2026-01-02T03:04:05Z: backfill: row 2: column v is NOT NULL",
		"2 2026-01-02T03:04:05Z shop.a refused: table shop.a: no keys",
		"3 2026-01-02T03:04:05Z shop.b backfill of 1 rows pending: not published by the producer yet",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("listing (-got +want):\n%s", diff)
	}
}
