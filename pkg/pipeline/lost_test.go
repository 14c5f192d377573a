package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/binlog"
)

func TestChangedSince(t *testing.T) {
	since := time.Unix(1_000_000, 0)
	before, at := since.Add(-time.Second), since
	for _, tc := range []struct {
		name string
		tt   binlog.TableTimes
		ok   bool
		want string // a word of the reason; "" when provably unchanged
	}{
		{"unchanged", binlog.TableTimes{Engine: "InnoDB", Created: before, Updated: before}, true, ""},
		{"engine name in any case", binlog.TableTimes{Engine: "innodb", Created: before, Updated: before}, true, ""},
		{"changed at the very second", binlog.TableTimes{Engine: "InnoDB", Created: before, Updated: at}, true, "changed since"},
		{"no update time", binlog.TableTimes{Engine: "InnoDB", Created: before}, true, "NULL"},
		{"altered", binlog.TableTimes{Engine: "InnoDB", Created: at, Updated: before}, true, "altered"},
		{"no create time", binlog.TableTimes{Engine: "InnoDB", Updated: before}, true, "altered"},
		{"MyISAM", binlog.TableTimes{Engine: "MyISAM", Created: before, Updated: before}, true, "engine MyISAM"},
		{"partitioned", binlog.TableTimes{Engine: "InnoDB", Partitioned: true, Created: before, Updated: before}, true, "partitioned"},
		{"not listed", binlog.TableTimes{}, false, "not listed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := changedSince(tc.tt, tc.ok, since)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("changedSince = %q, want %q", got, tc.want)
			}
		})
	}
}

// After a purge on the checkpoint's own MariaDB server, up since before
// the checkpoint, only the tables that may have changed are snapshotted
// again, from the start of the oldest binlog; any missing proof makes it
// every table, from the current position.
func TestAfterLoss(t *testing.T) {
	cpTime := time.Unix(2_000_000, 0)
	old := cpTime.Add(-time.Hour)
	margin := 5 * time.Minute
	captured := []string{"crm.c", "shop.a", "shop.b", "shop.d", "shop.e"}
	times := func() *binlog.ChangeTimes {
		return &binlog.ChangeTimes{Oldest: "bin.000007", MariaDB: true, Started: cpTime.Add(-24 * time.Hour),
			Tables: map[string]binlog.TableTimes{
				"crm.c":  {Engine: "InnoDB", Created: old, Updated: old},                      // captured since the checkpoint
				"shop.a": {Engine: "InnoDB", Created: old, Updated: old},                      // its snapshot was in progress
				"shop.b": {Engine: "InnoDB", Created: old, Updated: old},                      // unchanged
				"shop.d": {Engine: "InnoDB", Created: old, Updated: cpTime.Add(time.Minute)},  // changed
				"shop.e": {Engine: "InnoDB", Created: old, Updated: cpTime.Add(-time.Minute)}, // within the margin
			}}
	}
	partial := &Plan{Case: Lost, Start: binlog.Start{File: "bin.000007", Pos: 4, Epoch: 3}, Erase: []string{"crm.c", "shop.a", "shop.b"},
		Snapshot: binlog.SnapshotState{Tables: []string{"crm.c", "shop.a", "shop.d", "shop.e"}, Requests: 3}}
	all := &Plan{Case: Lost, Start: binlog.Start{Epoch: 3}, Erase: []string{"crm.c", "shop.a", "shop.b"},
		Snapshot: binlog.SnapshotState{Tables: captured, Requests: 3}}
	for _, tc := range []struct {
		name   string
		change func(ct *binlog.ChangeTimes, cp *Checkpoint)
		want   *Plan
		why    string // in the log
	}{
		{"the changed tables", func(*binlog.ChangeTimes, *Checkpoint) {}, partial, `changed since the checkpoint (UPDATE_TIME)" tables="[shop.d shop.e]"`},
		{"server restarted since", func(ct *binlog.ChangeTimes, _ *Checkpoint) { ct.Started = cpTime.Add(-time.Minute) }, all, "InnoDB keeps tables' change times in memory only"},
		{"MySQL", func(ct *binlog.ChangeTimes, _ *Checkpoint) { ct.MariaDB = false }, all, "MariaDB only"},
		{"no commit time", func(_ *binlog.ChangeTimes, cp *Checkpoint) { cp.SourceTime = time.Time{} }, all, "no source commit time"},
		{"checkpoint's file still listed", func(ct *binlog.ChangeTimes, _ *Checkpoint) { ct.Oldest = "bin.000003" }, all, "not a purge"},
		{"another naming", func(ct *binlog.ChangeTimes, _ *Checkpoint) { ct.Oldest = "other.000009" }, all, "not a purge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := checkpointOf("0-1-41")
			cp.SourceTime = cpTime
			ct := times()
			tc.change(ct, cp)
			r := &replica{id: 1, gone: true, tables: captured, times: ct}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			got, err := Decide(context.Background(), r, Facts{Checkpoint: cp, History: history()},
				Policy{Snapshot: binlog.SnapshotWhenNeeded, Transactional: true, LostClockMargin: margin}, log)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("plan (-got +want):\n%s", diff)
			}
			if !strings.Contains(logs.String(), tc.why) {
				t.Errorf("the log does not say %q:\n%s", tc.why, logs.String())
			}
		})
	}
}
