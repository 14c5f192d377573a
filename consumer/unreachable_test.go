package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// TestBigQueryUnreachableAtStart: a consumer started while nothing
// listens on BigQuery's endpoints (before, it said nothing until it was
// killed, and /status answered "starting" forever) warns within seconds,
// naming the endpoint and the error, answers 503 on /readyz with the
// reason and shows the error and since when on /status, and keeps trying:
// once the endpoints listen, every row lands and /readyz answers 200,
// without a restart.
func TestBigQueryUnreachableAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prefix, ds = "unreach", "unreach_ds"
	newPublisher(t, prefix).publish(ctx, ins(users, user(1, "a@x", "1.00")...), ins(users, user(2, "b@x", "2.00")...))

	rest, write := testenv.NewForwarder(t, env.bq.RESTURL()), testenv.NewForwarder(t, env.bq.GRPCAddr())
	args := withBigQuery(consumerArgs(prefix, prefix, ds), "http://"+rest.Addr+"/bigquery/v2/", write.Addr)
	start := time.Now()
	c := startConsumer(t, args)
	line := waitLogLine(t, ctx, c, `level=WARN msg="bigquery unavailable`)
	t.Logf("first warning after %s: %s", time.Since(start).Round(time.Millisecond), line)
	if time.Since(start) > 5*time.Second {
		t.Errorf("first warning after %s, want within 5s", time.Since(start))
	}
	if !strings.Contains(line, rest.Addr) || !strings.Contains(line, "connection refused") {
		t.Errorf("the warning names neither the endpoint %s nor the error: %s", rest.Addr, line)
	}
	addr := httpAddr(t, c)
	code, body := get(t, "http://"+addr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, rest.Addr) || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz while BigQuery is unreachable: %d %q, want 503 naming the endpoint and the error", code, body)
	}
	st := status(t, addr)
	if st.BigQuery.Available || len(st.BigQuery.Unavailable) == 0 {
		t.Fatalf("/status while BigQuery is unreachable: %+v, want it unavailable", st)
	}
	if u := st.BigQuery.Unavailable[0]; !strings.Contains(u.Error, "connection refused") || u.Since.IsZero() || u.Since.Before(start) {
		t.Errorf("/status: %+v, want the error and since when", u)
	}
	select {
	case <-c.done:
		t.Fatalf("the consumer exited while BigQuery was unreachable: %v", c.err)
	default:
	}

	rest.Up(t)
	write.Up(t)
	waitRows(t, ctx, ds, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
	waitReady(t, ctx, addr)
	waitLogLine(t, ctx, c, `msg="bigquery answers again"`)
	if st := status(t, addr); !st.BigQuery.Available || st.State != "consuming" {
		t.Errorf("/status after the outage: %+v, want consuming and BigQuery available", st)
	}
	// Warnings at a bounded rate: the first, then at most one every 30s.
	if n := strings.Count(c.logs.String(), `msg="bigquery unavailable`); n > 2+int(time.Since(start)/(30*time.Second)) {
		t.Errorf("%d warnings in %s:\n%s", n, time.Since(start), c.logs.String())
	}
}

// TestBigQueryOutageMidRun: BigQuery goes away while the consumer runs
// (its endpoints stop listening, the open connections break); the
// consumer warns within seconds, /readyz answers 503, and the changes
// published meanwhile land once BigQuery is back.
func TestBigQueryOutageMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prefix, ds = "midout", "midout_ds"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	rest, write := testenv.NewForwarder(t, env.bq.RESTURL()), testenv.NewForwarder(t, env.bq.GRPCAddr())
	rest.Up(t)
	write.Up(t)
	c := startConsumer(t, withBigQuery(consumerArgs(prefix, prefix, ds), "http://"+rest.Addr+"/bigquery/v2/", write.Addr))
	waitRows(t, ctx, ds, "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})
	addr := httpAddr(t, c)
	waitReady(t, ctx, addr)

	write.Down()
	rest.Down()
	start := time.Now()
	pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))
	line := waitLogLine(t, ctx, c, `level=WARN msg="bigquery unavailable`)
	t.Logf("first warning after %s: %s", time.Since(start).Round(time.Millisecond), line)
	if time.Since(start) > 5*time.Second {
		t.Errorf("first warning after %s, want within 5s", time.Since(start))
	}
	// The first call to fail names its endpoint: the Storage Write API's
	// for the change, or the REST API's when the watermark table's
	// creation (every watermark_interval) comes first.
	named := func(s string) bool { return strings.Contains(s, write.Addr) || strings.Contains(s, rest.Addr) }
	if !named(line) {
		t.Errorf("the warning names neither endpoint (%s, %s): %s", write.Addr, rest.Addr, line)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable || !named(body) {
		t.Errorf("/readyz during the outage: %d %q, want 503 naming %s or %s", code, body, write.Addr, rest.Addr)
	}

	rest.Up(t)
	write.Up(t)
	waitRows(t, ctx, ds, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
	waitReady(t, ctx, addr)
	waitLogLine(t, ctx, c, `msg="bigquery answers again"`)
}

// TestStopDuringBigQueryOutage: SIGTERM while BigQuery is down and an
// append waits for it ends the consumer within the shutdown timeout,
// without committing what was not applied (before, closing the writer
// waited for BigQuery forever).
func TestStopDuringBigQueryOutage(t *testing.T) {
	stopDuringOutage(t, "stopout")
}

// TestStopDuringBigQueryOutageRecordingWatermarks: the same, with the
// watermark recorded every 20ms, so that the stop comes while the
// watermark table's stream is being opened: the opening retried until
// BigQuery came back, ignoring the stop (3 of 8 runs under load hung;
// seen in CI).
func TestStopDuringBigQueryOutageRecordingWatermarks(t *testing.T) {
	stopDuringOutage(t, "stopwm", "-watermark_interval", "20ms")
}

// stopDuringOutage runs a consumer of prefix with extra flags, takes
// BigQuery down while a change waits, and stops the consumer: it must end
// within the shutdown timeout, committing nothing it did not apply.
func stopDuringOutage(t *testing.T, prefix string, extra ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ds := prefix + "_ds"
	topic := prefix + ".shop.users"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	rest, write := testenv.NewForwarder(t, env.bq.RESTURL()), testenv.NewForwarder(t, env.bq.GRPCAddr())
	rest.Up(t)
	write.Up(t)
	args := append(withBigQuery(consumerArgs(prefix, prefix, ds), "http://"+rest.Addr+"/bigquery/v2/", write.Addr), "-shutdown_timeout", "1s")
	c := startConsumer(t, append(args, extra...))
	waitRows(t, ctx, ds, "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})
	waitCommitted(t, ctx, prefix, topic)
	committed := committedOffsets(t, ctx, prefix)

	write.Down()
	rest.Down()
	pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))
	waitLogLine(t, ctx, c, `level=WARN msg="bigquery unavailable`)
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- c.stop() }()
	select {
	case err := <-stopped:
		t.Logf("stopped after %s", time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Errorf("stop during the outage: %v", err)
		}
	case <-time.After(15 * time.Second):
		rest.Up(t) // so that the consumer can end and the test with it
		write.Up(t)
		<-stopped
		t.Fatalf("the consumer did not stop within 15s of SIGTERM (shutdown_timeout 1s) while BigQuery was down")
	}
	if diff := cmp.Diff(committedOffsets(t, ctx, prefix), committed); diff != "" {
		t.Errorf("changes not applied were committed (-got +want):\n%s", diff)
	}
}

// TestBigQueryHangs: endpoints that accept connections and never answer
// count as unavailable after bigquery.request_timeout: the REST API while
// the consumer starts, the Storage Write API while it runs. Each is
// warned about, and once they answer the rows land.
func TestBigQueryHangs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prefix, ds = "bqhang", "bqhang_ds"
	pub := newPublisher(t, prefix)
	pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	rest, write := testenv.NewForwarder(t, env.bq.RESTURL()), testenv.NewForwarder(t, env.bq.GRPCAddr())
	rest.Hang(t)
	write.Up(t)
	args := append(withBigQuery(consumerArgs(prefix, prefix, ds), "http://"+rest.Addr+"/bigquery/v2/", write.Addr), "-bigquery.request_timeout", "1s")
	start := time.Now()
	c := startConsumer(t, args)
	line := waitLogLine(t, ctx, c, `level=WARN msg="bigquery unavailable`)
	t.Logf("REST: first warning after %s: %s", time.Since(start).Round(time.Millisecond), line)
	if time.Since(start) > 5*time.Second || !strings.Contains(line, rest.Addr) || !strings.Contains(line, "timeout") {
		t.Errorf("want a warning naming %s and a timeout within 5s, got after %s: %s", rest.Addr, time.Since(start), line)
	}
	addr := httpAddr(t, c)
	if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, rest.Addr) {
		t.Errorf("/readyz while the REST API hangs: %d %q", code, body)
	}
	rest.Down()
	rest.Up(t)
	waitRows(t, ctx, ds, "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})
	waitReady(t, ctx, addr)

	write.Down()
	write.Hang(t)
	start = time.Now()
	pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))
	line = waitLogLine(t, ctx, c, `level=WARN msg="bigquery unavailable: trying again with backoff; the changes wait in Kafka" endpoint=`+write.Addr)
	t.Logf("Storage Write API: first warning after %s: %s", time.Since(start).Round(time.Millisecond), line)
	if time.Since(start) > 5*time.Second {
		t.Errorf("first warning about the Storage Write API after %s, want within 5s", time.Since(start))
	}
	write.Down()
	write.Up(t)
	waitRows(t, ctx, ds, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
	waitReady(t, ctx, addr)
}

// TestBigQueryAnswersErrors: a REST endpoint that answers 503 is warned
// about within seconds, with the status, and reflected in /readyz; once it
// answers again the rows land.
func TestBigQueryAnswersErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prefix, ds = "bqerr", "bqerr_ds"
	newPublisher(t, prefix).publish(ctx, ins(users, user(1, "a@x", "1.00")...))
	target, err := url.Parse(env.bq.RESTURL())
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	down.Store(true)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"error":{"code":503,"message":"backend unavailable"}}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer rest.Close()

	start := time.Now()
	c := startConsumer(t, withBigQuery(consumerArgs(prefix, prefix, ds), rest.URL+"/bigquery/v2/", env.bq.GRPCAddr()))
	line := waitLogLine(t, ctx, c, `level=WARN msg="bigquery unavailable`)
	t.Logf("first warning after %s: %s", time.Since(start).Round(time.Millisecond), line)
	if time.Since(start) > 5*time.Second {
		t.Errorf("first warning after %s, want within 5s", time.Since(start))
	}
	if !strings.Contains(line, "503") {
		t.Errorf("the warning does not name the answer: %s", line)
	}
	addr := httpAddr(t, c)
	if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "503") {
		t.Errorf("/readyz while BigQuery answers 503: %d %q", code, body)
	}
	down.Store(false)
	waitRows(t, ctx, ds, "shop_users", []map[string]any{userRow(1, "a@x", "1.00")})
	waitReady(t, ctx, addr)
}

// TestBigQueryCredentialsRefused: credentials BigQuery's token endpoint
// refuses are no outage to wait out: the consumer exits with the error,
// as before.
func TestBigQueryCredentialsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	}))
	defer tokens.Close()
	js, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": "1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "strait@proj.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokens.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(file, js, 0o600); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, a := range consumerArgs("creds", "creds", "creds_ds") {
		if a != "-bigquery.insecure=true" {
			args = append(args, a)
		}
	}
	var logs testenv.Buffer
	err = run(ctx, append(args, "-bigquery.credentials_file", file), func(string) string { return "" }, io.Discard, &logs)
	if err == nil || !strings.Contains(err.Error(), "cannot fetch token") {
		t.Errorf("run with refused credentials: %v, want an error saying cannot fetch token\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), "bigquery unavailable") {
		t.Errorf("refused credentials taken for an outage:\n%s", logs.String())
	}
}

// withBigQuery points `consumer run` flags at other BigQuery endpoints.
func withBigQuery(args []string, rest, write string) []string {
	args = append([]string{}, args...)
	for i := range args {
		switch args[i] {
		case "-bigquery.endpoint":
			args[i+1] = rest
		case "-bigquery.write_endpoint":
			args[i+1] = write
		}
	}
	return args
}

// waitLogLine waits until the consumer's log has a line containing s and
// returns the line.
func waitLogLine(t *testing.T, ctx context.Context, c *consumerProc, s string) string {
	t.Helper()
	for {
		for _, line := range strings.Split(c.logs.String(), "\n") {
			if strings.Contains(line, s) {
				return line
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no log line with %q at the deadline:\n%s", s, c.logs.String())
		case <-c.done:
			t.Fatalf("the consumer exited (%v) without a log line with %q", c.err, s)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitReady waits until /readyz at addr answers 200.
func waitReady(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	for {
		code, body := get(t, "http://"+addr+"/readyz")
		if code == http.StatusOK {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/readyz answers %d %q at the deadline", code, body)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get returns the status code and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// consumerStatus is what the consumer's /status answers.
type consumerStatus struct {
	State    string `json:"state"`
	BigQuery struct {
		Available   bool `json:"available"`
		Unavailable []struct {
			Endpoint string    `json:"endpoint"`
			Error    string    `json:"error"`
			Since    time.Time `json:"since"`
		} `json:"unavailable"`
	} `json:"bigquery"`
}

// status reads /status at addr.
func status(t *testing.T, addr string) consumerStatus {
	t.Helper()
	code, body := get(t, "http://"+addr+"/status")
	var st consumerStatus
	if code != http.StatusOK {
		t.Fatalf("/status: %d %q", code, body)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v: %q", err, body)
	}
	return st
}
