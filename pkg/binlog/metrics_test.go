package binlog

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The source lag follows the last thing the reader learnt: a transaction
// read (as far behind as its commit) or a heartbeat proving it has read
// everything (as far behind as the time since). The silence counts from
// the last event or heartbeat, whatever it was.
func TestLagAndSilence(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		read     float64 // when a transaction was read (-1: none)
		commit   float64 // its commit time
		caughtUp float64 // when a heartbeat proved nothing pending (-1: none)
	}
	for _, tc := range []struct {
		name        string
		steps       []step
		now         float64
		lag, silent float64
	}{
		{name: "nothing yet", now: 100, lag: 0, silent: 0},
		{name: "behind: commit of the last transaction read", steps: []step{{read: 10, commit: -590, caughtUp: -1}}, now: 12, lag: 602, silent: 2},
		{name: "caught up since: time since the heartbeat", steps: []step{{read: 10, commit: -590, caughtUp: -1}, {read: -1, caughtUp: 15}}, now: 17, lag: 2, silent: 2},
		{name: "idle for an hour with heartbeats", steps: []step{{read: 10, commit: 10, caughtUp: -1}, {read: -1, caughtUp: 3600}}, now: 3604, lag: 4, silent: 4},
		{name: "a transaction read after the heartbeat", steps: []step{{read: -1, caughtUp: 15}, {read: 20, commit: 19, caughtUp: -1}}, now: 21, lag: 2, silent: 1},
		{name: "dead connection after catching up", steps: []step{{read: -1, caughtUp: 15}}, now: 315, lag: 300, silent: 300},
		{name: "an older proof after a newer one", steps: []step{{read: -1, caughtUp: 15}, {read: -1, caughtUp: 12}}, now: 16, lag: 1, silent: 4},
		{name: "source clock ahead", steps: []step{{read: 10, commit: 12, caughtUp: -1}}, now: 11, lag: 0, silent: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			for _, s := range tc.steps {
				if s.read >= 0 {
					m.observeHeard(at(s.read))
					m.observePosition(1, 4, at(s.commit), at(s.read))
				}
				if s.caughtUp >= 0 {
					m.observeHeard(at(s.caughtUp))
					m.observeCaughtUp(at(s.caughtUp))
				}
			}
			if got := m.lag(at(tc.now)); got != tc.lag {
				t.Errorf("lag = %v, want %v", got, tc.lag)
			}
			if got := m.silence(at(tc.now)); got != tc.silent {
				t.Errorf("silence = %v, want %v", got, tc.silent)
			}
		})
	}
}
