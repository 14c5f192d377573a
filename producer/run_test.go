package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/strait-cdc/strait/pkg/service"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// env is one MariaDB + Kafka + Schema Registry shared by the package's tests;
// each test uses its own database and topic prefix.
var env struct {
	db       *testenv.MariaDB
	kafka    *kfake.Cluster
	registry *srfake.Registry

	mu           sync.Mutex
	interceptors map[*testing.T]srfake.Interceptor // see interceptRegistry
}

// interceptRegistry lets fn answer the shared registry's requests first
// until t ends; tests running in parallel keep their own interceptors.
func interceptRegistry(t *testing.T, fn srfake.Interceptor) {
	env.mu.Lock()
	env.interceptors[t] = fn
	env.mu.Unlock()
	t.Cleanup(func() {
		env.mu.Lock()
		delete(env.interceptors, t)
		env.mu.Unlock()
	})
}

func dispatch(w http.ResponseWriter, r *http.Request) bool {
	env.mu.Lock()
	fns := make([]srfake.Interceptor, 0, len(env.interceptors))
	for _, fn := range env.interceptors {
		fns = append(fns, fn)
	}
	env.mu.Unlock()
	for _, fn := range fns {
		if fn(w, r) {
			return true
		}
	}
	return false
}

func TestMain(m *testing.M) {
	if os.Getenv("STRAIT_TEST_RUN_MAIN") == "1" { // the test binary as bin/producer
		main()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	env.db, err = testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	cancel()
	if err != nil {
		slog.Error("start MariaDB", "err", err)
		os.Exit(1)
	}
	if env.kafka, err = testenv.StartKafka(); err != nil {
		slog.Error("start kfake", "err", err)
		os.Exit(1)
	}
	env.registry = testenv.StartRegistry()
	env.interceptors = map[*testing.T]srfake.Interceptor{}
	env.registry.Intercept(dispatch)
	code := m.Run()
	env.registry.Close()
	env.kafka.Close()
	env.db.Stop()
	os.Exit(code)
}

// producerArgs returns `producer run` flags for the shared environment.
func producerArgs(t *testing.T, ctx context.Context, prefix, include string, extra ...string) []string {
	t.Helper()
	rows, err := env.db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"run",
		"-source.host", env.db.Host, "-source.port", fmt.Sprint(env.db.Port), "-source.user", env.db.User,
		"-source.include", include, "-source.start_position", *rows[0][0] + ":" + *rows[0][1],
		"-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","), "-kafka.topic_prefix", prefix,
		"-kafka.schema_registry_url", env.registry.URL(), "-kafka.partitions", "3",
		"-http_addr", "127.0.0.1:0", "-log_format", "text",
	}, extra...)
}

// producer is a `producer run` running in the background.
type producer struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned
	err    error         // run's result, once done
	logs   testenv.Buffer
	waited bool // the test looked at err itself
}

// startProducer runs `producer run` in the background until the test ends.
// Unless the test calls stop or wait itself, the producer must end without
// error.
func startProducer(t *testing.T, args []string) *producer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = run(ctx, args, func(string) string { return "" }, io.Discard, &p.logs)
	}()
	t.Cleanup(func() {
		waited := p.waited
		if err := p.stop(); err != nil && !waited {
			t.Errorf("producer: %v", err)
		}
		if t.Failed() {
			t.Logf("producer log:\n%s", p.logs.String())
		}
	})
	return p
}

// httpAddr returns the address the producer serves /metrics, /healthz
// and /status on (its -http_addr 127.0.0.1:0 picks a free port), from its
// log line.
func (p *producer) httpAddr(t *testing.T, ctx context.Context) string {
	t.Helper()
	served := regexp.MustCompile(`msg="serving metrics and health" addr=(\S+)`)
	var addr string
	waitFor(t, ctx, "the producer's HTTP address", func() bool {
		if m := served.FindStringSubmatch(p.logs.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

// runs numbers the uses of uniquePrefix in this process.
var runs atomic.Int64

// uniquePrefix returns a topic prefix made of base and a number no other
// call in this process returns: a test run again (go test -count=N) must
// not find the topics, and so the checkpoint, of the run before in the
// shared kfake.
func uniquePrefix(base string) string { return fmt.Sprintf("%s%d", base, runs.Add(1)) }

// stop cancels the producer (as SIGTERM does) and returns run's error.
func (p *producer) stop() error {
	p.cancel()
	<-p.done
	p.waited = true
	return p.err
}

// wait returns run's error once the producer ends by itself, or fails the
// test at the deadline.
func (p *producer) wait(t *testing.T, ctx context.Context) error {
	t.Helper()
	select {
	case <-p.done:
		p.waited = true
		return p.err
	case <-ctx.Done():
		t.Fatal("producer still running at the deadline")
		return nil
	}
}

// change is a consumed record, decoded.
type change struct {
	Topic     string
	Partition int32
	Key       map[string]any // nil for keyless tables
	Value     map[string]any // nil for tombstones
}

// consume reads topics (read_committed) until n records arrived or the
// deadline passes, decoding key and value through the registry.
func consume(t *testing.T, ctx context.Context, n int, topics ...string) []change {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codecs := map[int]codec{}
	dec := func(b []byte) map[string]any { return decodeFramed(t, ctx, codecs, b) }
	var out []change
	for len(out) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before the deadline", len(out), n)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			out = append(out, change{Topic: r.Topic, Partition: r.Partition, Key: dec(r.Key), Value: dec(r.Value)})
		})
	}
	return out
}

type codec = *goavro.Codec

// decodeFramed decodes a Confluent-framed Avro record (nil for a nil
// record), fetching its schema from the registry into codecs.
func decodeFramed(t *testing.T, ctx context.Context, codecs map[int]codec, b []byte) map[string]any {
	t.Helper()
	if b == nil {
		return nil
	}
	if b[0] != 0 {
		t.Fatalf("magic byte %d", b[0])
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	c := codecs[id]
	if c == nil {
		reg, err := sr.NewClient(sr.URLs(env.registry.URL()))
		if err != nil {
			t.Fatal(err)
		}
		s, err := reg.SchemaByID(ctx, id)
		if err != nil {
			t.Fatalf("schema %d: %v", id, err)
		}
		if c, err = goavro.NewCodec(s.Schema); err != nil {
			t.Fatal(err)
		}
		codecs[id] = c
	}
	v, _, err := c.NativeFromBinary(b[5:])
	if err != nil {
		t.Fatalf("decode with schema %d: %v", id, err)
	}
	return v.(map[string]any)
}

// row returns the named image of an envelope, unwrapped from its union.
func row(v map[string]any, image string) map[string]any {
	u, _ := v[image].(map[string]any)
	for _, r := range u {
		return r.(map[string]any)
	}
	return nil
}

func unwrap(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, x := range m {
			return x
		}
	}
	return v
}

func TestStreamsChangesToTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE shop",
		"CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(50), tier ENUM('free','pro'))",
		"CREATE TABLE shop.orders (id BIGINT UNSIGNED, line INT, amount DECIMAL(12,2), PRIMARY KEY (id, line))",
		"CREATE TABLE shop.audit (msg TEXT)", // no primary key
		"CREATE TABLE shop.skipped (id INT PRIMARY KEY)",
	); err != nil {
		t.Fatal(err)
	}
	startProducer(t, producerArgs(t, ctx, "s1", "shop.*", "-source.exclude", "shop.skipped"))
	if err := env.db.Exec(ctx, "shop",
		"INSERT INTO customers VALUES (1, 'Ada', 'pro'), (2, 'Bob', 'free'), (3, 'Cy', NULL)", // multi-row
		"BEGIN",
		"INSERT INTO orders VALUES (18446744073709551615, 1, 10.50), (18446744073709551615, 2, -0.01)",
		"UPDATE customers SET name = 'Ada L.' WHERE id = 1",
		"INSERT INTO audit VALUES ('first'), ('second')",
		"COMMIT", // multi-table transaction
		"INSERT INTO skipped VALUES (1)",
		"UPDATE customers SET tier = 'pro'", // updates 2 rows that change, one unchanged
		"DELETE FROM customers WHERE id = 2",
		"UPDATE customers SET id = 4 WHERE id = 3", // a key change: delete + tombstone of 3, insert of 4
	); err != nil {
		t.Fatal(err)
	}
	got := consume(t, ctx, 15, "s1.shop.customers", "s1.shop.orders", "s1.shop.audit", "s1.shop.skipped")
	byTopic := map[string][]change{}
	for _, c := range got {
		byTopic[c.Topic] = append(byTopic[c.Topic], c)
	}
	if n := len(byTopic["s1.shop.skipped"]); n != 0 {
		t.Errorf("excluded table published %d records", n)
	}

	// customers: 3 inserts, 1 update, 2 updates (Bob, Cy), 1 delete +
	// tombstone, a key change as delete + tombstone + insert, in per-key
	// order.
	type op struct {
		ID   int32
		Op   string
		Name any
	}
	var ops []op
	for _, c := range byTopic["s1.shop.customers"] {
		id := c.Key["id"].(int32)
		if c.Value == nil {
			ops = append(ops, op{ID: id, Op: "tombstone"})
			continue
		}
		img := row(c.Value, "after")
		if c.Value["op"] == "d" {
			img = row(c.Value, "before")
		}
		ops = append(ops, op{ID: id, Op: c.Value["op"].(string), Name: unwrap(img["name"])})
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	want := []op{
		{1, "c", "Ada"}, {1, "u", "Ada L."},
		{2, "c", "Bob"}, {2, "u", "Bob"}, {2, "d", "Bob"}, {2, "tombstone", nil},
		{3, "c", "Cy"}, {3, "u", "Cy"}, {3, "d", "Cy"}, {3, "tombstone", nil},
		{4, "c", "Cy"},
	}
	if diff := cmp.Diff(ops, want); diff != "" {
		t.Errorf("customers changes in per-key order (-got +want):\n%s", diff)
	}

	// orders: the composite key, unsigned BIGINT max and decimals exact;
	// both rows of one key prefix in one partition only if the keys hash so —
	// but each key's changes are in one partition.
	orders := byTopic["s1.shop.orders"]
	if len(orders) != 2 {
		t.Fatalf("orders: %d records, want 2", len(orders))
	}
	for _, c := range orders {
		after := row(c.Value, "after")
		line := unwrap(after["line"]).(int32)
		amount := unwrap(after["amount"])
		wantAmount := map[int32]string{1: "21/2", 2: "-1/100"}[line]
		if fmt.Sprint(amount) != wantAmount {
			t.Errorf("order line %d amount = %v, want %s", line, amount, wantAmount)
		}
		if id := fmt.Sprint(unwrap(after["id"])); id != "18446744073709551615/1" {
			t.Errorf("order id = %s, want 18446744073709551615 exactly", id)
		}
		src := c.Value["source"].(map[string]any)
		if unwrap(src["table"]) != "orders" || src["db"] != "shop" || unwrap(src["gtid"]) == nil || src["query"] != nil {
			t.Errorf("source block = %v", src)
		}
	}

	// audit has no key: no key record, everything on partition 0, in order.
	var msgs []string
	for _, c := range byTopic["s1.shop.audit"] {
		if c.Key != nil || c.Partition != 0 {
			t.Errorf("keyless record: key %v partition %d, want no key on partition 0", c.Key, c.Partition)
		}
		msgs = append(msgs, unwrap(row(c.Value, "after")["msg"]).(string))
	}
	if diff := cmp.Diff(msgs, []string{"first", "second"}); diff != "" {
		t.Errorf("audit (-got +want):\n%s", diff)
	}

	// The change sequence increases in commit order within each topic
	// partition; a key change's delete and insert share the update's.
	last, lastOp := map[string]string{}, map[string]any{}
	for _, c := range got {
		if c.Value == nil {
			continue
		}
		seq := unwrap(c.Value["source"].(map[string]any)["sequence"]).(string)
		k := fmt.Sprint(c.Topic, c.Partition)
		if seq < last[k] || seq == last[k] && !(lastOp[k] == "d" && c.Value["op"] == "c") {
			t.Errorf("%s: sequence %s after %s", k, seq, last[k])
		}
		last[k], lastOp[k] = seq, c.Value["op"]
	}

	// Topics were created as configured; subjects registered.
	adm := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs()))
	details, err := adm.ListTopics(ctx, "s1.shop.customers")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details["s1.shop.customers"].Partitions); n != 3 {
		t.Errorf("partitions = %d, want 3", n)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "s1.shop.customers")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs[0].Configs {
		if c.Key == "cleanup.policy" && c.MaybeValue() != "compact" {
			t.Errorf("cleanup.policy = %s, want compact", c.MaybeValue())
		}
	}
	for _, s := range []string{"s1.shop.customers-key", "s1.shop.customers-value", "s1.shop.audit-value"} {
		if !env.registry.SubjectExists(s) {
			t.Errorf("subject %s not registered", s)
		}
	}
	if env.registry.SubjectExists("s1.shop.audit-key") {
		t.Error("keyless table got a key subject")
	}
}

func TestCheckReportsEachSettingAndFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := func(registryURL string) (string, error) {
		args := []string{"check",
			"-source.host", env.db.Host, "-source.port", fmt.Sprint(env.db.Port), "-source.user", env.db.User,
			"-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","),
			"-kafka.schema_registry_url", registryURL,
		}
		var out bytes.Buffer
		err := run(ctx, args, func(string) string { return "" }, &out, io.Discard)
		return out.String(), err
	}

	out, err := check(env.registry.URL())
	if err != nil {
		t.Fatalf("check against a good setup: %v\n%s", err, out)
	}
	for _, line := range []string{
		"PASS log_bin: log_bin=ON", "PASS binlog_format: binlog_format=ROW", "PASS binlog_row_image: binlog_row_image=FULL",
		"PASS binlog_row_metadata: binlog_row_metadata=FULL", "PASS gtid:", "PASS log_slave_updates:", "binlog retention:",
		"WARN net_read_timeout: net_read_timeout=30", "fix: RDS: set net_read_timeout=3600", "net_write_timeout:", "wait_timeout:",
		"read_only:", "PASS privilege REPLICATION SLAVE", "PASS privilege SELECT", "PASS kafka:", "PASS schema registry:",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("check output lacks %q:\n%s", line, out)
		}
	}

	// A registry nobody answers at: a FAIL line with the fix, non-zero exit.
	out, err = check("http://127.0.0.1:1")
	if !errors.Is(err, errChecksFailed) || service.ExitCode(err) == 0 {
		t.Errorf("check with a dead registry: err %v, want errChecksFailed and a non-zero exit", err)
	}
	if !strings.Contains(out, "FAIL schema registry: ") || !strings.Contains(out, "fix: ") {
		t.Errorf("check output lacks the registry FAIL line with its fix:\n%s", out)
	}
}
