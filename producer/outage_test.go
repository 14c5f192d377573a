package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRegistryOutageWaitedOut: while the Schema Registry answers 503 (or
// cannot be reached), a producer that must register a new table's schema
// does not exit: it restarts from its checkpoint with backoff (one warning,
// then debug lines; strait_producer_restarts_total), and once the registry
// is back every row is published once. The error says the registry is
// unavailable, not that the schema is incompatible.
func TestRegistryOutageWaitedOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS regout", "CREATE DATABASE regout", "CREATE TABLE regout.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	down.Store(true)
	interceptRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !down.Load() || r.Method != http.MethodPost {
			return false
		}
		http.Error(w, `{"error_code":50001,"message":"down for maintenance"}`, http.StatusServiceUnavailable)
		return true
	})
	prefix := uniquePrefix("regout")
	p := startProducer(t, producerArgs(t, ctx, prefix, "regout.*"))
	addr := p.httpAddr(t, ctx)
	for i := range 20 {
		if err := env.db.Exec(ctx, "regout", fmt.Sprintf("INSERT INTO t VALUES (%d)", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "restarts while the registry is down", func() bool {
		return strings.Contains(getText(t, addr+"/metrics"), "strait_producer_restarts_total 3")
	})
	select {
	case <-p.done:
		t.Fatalf("the producer exited during the outage: %v", p.err)
	default:
	}
	down.Store(false)
	waitEachOnce(t, ctx, prefix+".regout.t", 0, 20)
	if err := p.stop(); err != nil {
		t.Fatalf("producer: %v", err)
	}
	logs := p.logs.String()
	if n := strings.Count(logs, "level=WARN msg=\"waiting out a transient error"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "schema registry unavailable") || strings.Contains(logs, "compatib") {
		t.Errorf("the log does not name the registry outage plainly:\n%s", logs)
	}
}

// TestSIGTERMDuringBrokerOutageExits: with every produce refused (the
// brokers unavailable), SIGTERM ends the producer within shutdown_timeout
// instead of waiting for the brokers until SIGKILL; nothing uncommitted is
// visible, and the next start resumes at the checkpoint.
func TestSIGTERMDuringBrokerOutageExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS brkout", "CREATE DATABASE brkout", "CREATE TABLE brkout.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("brkout")
	p := startProducer(t, producerArgs(t, ctx, prefix, "brkout.*", "-shutdown_timeout", "2s"))
	if err := env.db.Exec(ctx, "brkout", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	waitEachOnce(t, ctx, prefix+".brkout.t", 1, 1)
	var down atomic.Bool
	var refused atomic.Int32
	down.Store(true)
	t.Cleanup(func() { down.Store(false) })
	env.kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !down.Load() {
			env.kafka.DropControl()
			return nil, nil, false
		}
		env.kafka.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		if len(r.Topics) == 0 || !strings.HasPrefix(r.Topics[0].Topic, prefix) {
			return nil, nil, false
		}
		refused.Add(1)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, part := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = part.Partition, kerr.NotEnoughReplicas.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	if err := env.db.Exec(ctx, "brkout", "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the produce of row 2 refused", func() bool { return refused.Load() > 0 })
	stopped := make(chan error, 1)
	began := time.Now()
	go func() { stopped <- p.stop() }()
	select {
	case err := <-stopped:
		t.Logf("stopped %s after SIGTERM: %v", time.Since(began).Round(time.Millisecond), err)
	case <-ctx.Done():
		t.Fatal("the producer still waits for the brokers after SIGTERM")
	}
	down.Store(false)
	p = startProducer(t, withoutStart(producerArgs(t, ctx, prefix, "brkout.*")))
	waitEachOnce(t, ctx, prefix+".brkout.t", 1, 2)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestSIGTERMWhileStartingIsClean: a stop that lands while the producer is
// still starting (preflight, reading its checkpoint: nothing published yet)
// exits cleanly, as a stop mid-stream does (before, the step it cut short
// returned its "context canceled" as the run's error, and
// TestKilledTwentyTimesExactlyOnce failed when its last stop came early).
func TestSIGTERMWhileStartingIsClean(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS early", "CREATE DATABASE early", "CREATE TABLE early.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	p := startProducer(t, producerArgs(t, ctx, uniquePrefix("early"), "early.*"))
	if err := p.stop(); err != nil {
		t.Fatalf("stopped while starting: %v, want a clean exit\n%s", err, p.logs.String())
	}
}
