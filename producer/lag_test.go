package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/binlog"
)

// scrape returns the value of each unlabelled strait_ series at addr's
// /metrics; nil when the producer does not answer.
func scrape(addr string) map[string]float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "strait_") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// On an idle source the lag stays near zero: the server's heartbeats prove
// the producer has read everything there is. Writes the producer reads
// late show as lag, and the lag falls back once it has caught up.
func TestIdleSourceLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var defaults binlog.Config
	defaults.Defaults()
	period := defaults.HeartbeatPeriod // the test runs with the default
	bound := (2 * period).Seconds()

	if err := env.db.Exec(ctx, "", "CREATE DATABASE idlelag", "CREATE TABLE idlelag.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	args := producerArgs(t, ctx, uniquePrefix("lag"), "idlelag.*")
	p := startProducer(t, args)
	addr := p.httpAddr(t, ctx)
	if err := env.db.Exec(ctx, "idlelag", "INSERT INTO t VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the first row read", func() bool {
		return strings.Contains(metricsText(addr), `strait_producer_rows_read_total{op="c",table="idlelag.t"} 1`)
	})

	// A minute with no writes at all, sampled every 100ms.
	idle := time.Now().Add(time.Minute)
	samples, worst, quietest := 0, 0.0, 0.0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(idle) {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tick.C:
		}
		m := scrape(addr)
		lag, ok := m["strait_producer_source_lag_seconds"]
		if !ok {
			t.Fatalf("no strait_producer_source_lag_seconds in /metrics")
		}
		silence, ok := m["strait_producer_source_silence_seconds"]
		if !ok {
			t.Fatalf("no strait_producer_source_silence_seconds in /metrics")
		}
		samples++
		worst, quietest = max(worst, lag), max(quietest, silence)
		if lag >= bound || silence >= bound {
			t.Fatalf("idle source, sample %d: lag %.1fs, silence %.1fs, want both under %.0fs (twice source.heartbeat_period %s)", samples, lag, silence, bound, period)
		}
	}
	t.Logf("idle for a minute: %d samples, largest lag %.2fs, largest silence %.2fs (heartbeat period %s)", samples, worst, quietest, period)

	// Writes made while the producer is stopped, committed ten minutes ago
	// as far as the binlog says (the session's timestamp), are read late.
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	stmts := []string{"SET TIMESTAMP = UNIX_TIMESTAMP() - 600"}
	for i := 1; i <= 50; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
	}
	if err := env.db.Exec(ctx, "idlelag", stmts...); err != nil {
		t.Fatal(err)
	}
	p = startProducer(t, withoutStart(args)) // from its checkpoint
	addr = p.httpAddr(t, ctx)
	waitFor(t, ctx, "the lag of the writes read late", func() bool {
		lag := scrape(addr)["strait_producer_source_lag_seconds"]
		return lag >= 590 && lag < 700
	})
	waitFor(t, ctx, "the lag to fall back once caught up", func() bool {
		m := metricsText(addr)
		lag := scrape(addr)["strait_producer_source_lag_seconds"]
		return strings.Contains(m, `strait_producer_rows_read_total{op="c",table="idlelag.t"} 50`) && lag < bound
	})
}

// metricsText returns the strait_ lines of addr's /metrics.
func metricsText(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b strings.Builder
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "strait_") {
			fmt.Fprintln(&b, sc.Text())
		}
	}
	return b.String()
}

// A replication connection that goes dead shows: the silence (and the
// lag, no longer proven caught up) grows past what an idle source shows.
func TestDeadSourceConnectionShowsSilence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var defaults binlog.Config
	defaults.Defaults()
	idle := (2 * defaults.HeartbeatPeriod).Seconds()

	if err := env.db.Exec(ctx, "", "CREATE DATABASE deadconn", "CREATE TABLE deadconn.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	px := startFreezer(t, env.db.Addr())
	args := producerArgs(t, ctx, uniquePrefix("dead"), "deadconn.*")
	args[indexOf(args, "-source.port")+1] = px.port
	p := startProducer(t, args)
	addr := p.httpAddr(t, ctx)
	if err := env.db.Exec(ctx, "deadconn", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the row read and a heartbeat after it", func() bool {
		m := scrape(addr)
		return strings.Contains(metricsText(addr), `strait_producer_rows_read_total{op="c",table="deadconn.t"} 1`) &&
			m["strait_producer_source_silence_seconds"] < idle && m["strait_producer_source_lag_seconds"] < idle
	})

	px.freeze() // the source's bytes stop arriving; the connection stays open
	waitFor(t, ctx, "silence and lag past an idle source's", func() bool {
		m := scrape(addr)
		return m["strait_producer_source_silence_seconds"] > 1.5*idle && m["strait_producer_source_lag_seconds"] > 1.5*idle
	})
}

// A snapshot of an idle source publishes chunk after chunk without
// reading the stream: each chunk's high watermark, reached by the stream,
// proves the producer caught up when it was read, and the connection
// keeps receiving heartbeats. Neither lag nor silence climbs.
func TestIdleSourceSnapshotLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const period = 2 * time.Second // shorter than the default: the snapshot need not last long
	bound := (2 * period).Seconds()

	const rows = 30000
	if err := env.db.Exec(ctx, "", "CREATE DATABASE idlesnap", "USE idlesnap", "CREATE TABLE t (id INT PRIMARY KEY)",
		fmt.Sprintf("INSERT INTO t SELECT seq FROM seq_1_to_%d", rows)); err != nil {
		t.Fatal(err)
	}
	// No start position: the first start snapshots the table, one row a
	// chunk so that it lasts longer than a heartbeat period or two.
	p := startProducer(t, withoutStart(producerArgs(t, ctx, uniquePrefix("idlesnap"), "idlesnap.*",
		"-source.snapshot_chunk_rows", "1", "-source.heartbeat_period", period.String())))
	addr := p.httpAddr(t, ctx)
	done := fmt.Sprintf(`strait_producer_snapshot_rows_total{table="idlesnap.t"} %d`, rows)
	began := time.Now()
	samples, worst, quietest := 0, 0.0, 0.0
	waitFor(t, ctx, "the snapshot", func() bool {
		m := scrape(addr)
		lag, silence := m["strait_producer_source_lag_seconds"], m["strait_producer_source_silence_seconds"]
		samples++
		worst, quietest = max(worst, lag), max(quietest, silence)
		if lag >= bound || silence >= bound {
			t.Fatalf("snapshot of an idle source, %s in: lag %.1fs, silence %.1fs, want both under %.0fs (twice source.heartbeat_period)",
				time.Since(began).Round(time.Second), lag, silence, bound)
		}
		return strings.Contains(metricsText(addr), done)
	})
	took := time.Since(began)
	t.Logf("snapshot of %d rows in %s: %d samples, largest lag %.2fs, largest silence %.2fs", rows, took.Round(time.Second), samples, worst, quietest)
	if took.Seconds() < bound {
		t.Errorf("the snapshot took %s, too short to show the lag stays small; snapshot more rows", took)
	}
}

// freezer is a TCP proxy to a server whose connections can be frozen: the
// server's bytes stop reaching the client while both stay connected, as
// on a dead network path. Connections made after the freeze flow.
type freezer struct {
	port   string
	mu     sync.Mutex
	frozen chan struct{} // closed when thawed; nil when not frozen
	conns  []net.Conn
}

// startFreezer listens on a free local port, forwarding to addr, until
// the test ends.
func startFreezer(t *testing.T, addr string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	f := &freezer{port: port}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, s)
			before := f.frozen == nil // made before the freeze: subject to it
			f.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(gated{c, f, before}, s); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.frozen != nil {
			close(f.frozen)
		}
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

// freeze stops the server's bytes on every connection open now.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = make(chan struct{})
}

// gated writes to the client unless its connection is frozen, then waits
// for the end of the test.
type gated struct {
	net.Conn
	f      *freezer
	before bool // made before the freeze: subject to it
}

func (g gated) Write(b []byte) (int, error) {
	g.f.mu.Lock()
	frozen := g.f.frozen
	g.f.mu.Unlock()
	if g.before && frozen != nil {
		<-frozen
		return 0, net.ErrClosed
	}
	return g.Conn.Write(b)
}
