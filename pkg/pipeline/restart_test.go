package pipeline

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strait-cdc/strait/pkg/kafka"
)

// transient is an error kafka.Transient passes by.
var transient = &kafka.RegistryUnavailableError{Subject: "shop.a-value", Err: errors.New("connection refused")}

func TestRestartWaitsOutTransientErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Runs end transiently at once, but the fifth lasts two minutes:
		// the waits double up to 30s and start over after it.
		var waits []time.Duration
		runs, last := 0, time.Now()
		lasting := []time.Duration{0, 0, 0, 0, 2 * time.Minute, 0, 0, 0, 0, 0, 0}
		run := func(ctx context.Context) error {
			waits = append(waits, time.Since(last))
			time.Sleep(lasting[runs])
			runs++
			last = time.Now()
			if runs == len(lasting) {
				return nil
			}
			return transient
		}
		m := NewMetrics(prometheus.NewRegistry())
		if err := Restart(context.Background(), run, m, quiet); err != nil {
			t.Fatal(err)
		}
		s := time.Second
		want := []time.Duration{0, s, 2 * s, 4 * s, 8 * s, s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s}
		if diff := cmp.Diff(waits, want); diff != "" {
			t.Errorf("waits before each run (-got +want):\n%s", diff)
		}
		if n := testutil.ToFloat64(m.restarts); n != 10 {
			t.Errorf("strait_producer_restarts_total %v, want 10", n)
		}
	})
}

func TestRestartStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Another error ends at once, with that error.
		fatal := errors.New("binlog purged")
		runs := 0
		err := Restart(context.Background(), func(context.Context) error { runs++; return fatal }, NewMetrics(prometheus.NewRegistry()), quiet)
		if !errors.Is(err, fatal) || runs != 1 {
			t.Errorf("a lasting error: %v after %d runs, want it after 1", err, runs)
		}
		// So does fencing, which kafka.Transient does not pass by.
		runs = 0
		err = Restart(context.Background(), func(context.Context) error { runs++; return kafka.ErrFenced }, NewMetrics(prometheus.NewRegistry()), quiet)
		if !errors.Is(err, kafka.ErrFenced) || runs != 1 {
			t.Errorf("fenced: %v after %d runs, want it after 1", err, runs)
		}
		// A stop while waiting ends without error.
		ctx, stop := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, stop)
		began := time.Now()
		err = Restart(ctx, func(context.Context) error { return transient }, NewMetrics(prometheus.NewRegistry()), quiet)
		if err != nil || time.Since(began) != 500*time.Millisecond {
			t.Errorf("stopped while waiting: %v after %s, want nil at once", err, time.Since(began))
		}
	})
}
