package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRegistryOutageWaitedOut: while the Schema Registry answers 503, a
// consumer that meets a schema id it has not looked up yet does not exit
// (before, it did within milliseconds, and crash-looped for as long as the
// outage lasted): it warns once, tries again with backoff, and once the
// registry answers every row lands, none skipped. /readyz answers 503
// while it waits.
func TestRegistryOutageWaitedOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prefix = "regout"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...), ins(users, user(2, "b@x", "2.00")...))

	target, err := url.Parse(env.registry.URL())
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var refused atomic.Int64
	down.Store(true)
	proxy := httputil.NewSingleHostReverseProxy(target)
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			refused.Add(1)
			http.Error(w, `{"error_code":50001,"message":"down for maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer registry.Close()
	args := consumerArgs(prefix, "regout", "regout")
	for i := range args {
		if args[i] == "-kafka.schema_registry_url" {
			args[i+1] = registry.URL
		}
	}

	c := startConsumer(t, args)
	for refused.Load() < 4 { // tries against the registry while it is down
		select {
		case <-ctx.Done():
			t.Fatalf("the consumer tried the registry %d times, want 4", refused.Load())
		case <-c.done:
			t.Fatalf("the consumer exited during the outage: %v", c.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if code := readyz(t, httpAddr(t, c)); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz answers %d during the outage, want 503", code)
	}
	down.Store(false)
	waitRows(t, ctx, "regout", "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
	if code := readyz(t, httpAddr(t, c)); code != http.StatusOK {
		t.Errorf("/readyz answers %d after the outage, want 200", code)
	}
	logs := c.logs.String()
	if n := strings.Count(logs, `level=WARN msg="schema registry unavailable`); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "schema registry answers again") {
		t.Errorf("the end of the outage is not logged:\n%s", logs)
	}
}

// readyz returns the status code of GET /readyz at addr.
func readyz(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
