package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-cdc/strait/pkg/service"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// records reads n raw records of topic (read_committed) or fails at the
// deadline.
func records(t *testing.T, ctx context.Context, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: got %d of %d records before the deadline", topic, len(out), n)
		}
		out = append(out, fetches.Records()...)
	}
	return out
}

func mustClientOf(t *testing.T, brokers []string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// A schema the registry refuses and a record too large for Kafka are poison:
// each goes to the dead-letter topic with its reason, and every other change
// of every table is published; the producer keeps running.
func TestPoisonRecordsGoToDeadLetterTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE bad",
		"CREATE TABLE bad.ok (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE bad.refused (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE bad.big (id INT PRIMARY KEY, doc MEDIUMTEXT)",
	); err != nil {
		t.Fatal(err)
	}
	// The registry answers as Confluent's does for an incompatible schema.
	interceptRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/subjects/b1.bad.refused-value/versions") {
			return false
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(map[string]any{"error_code": 409,
			"message": "Schema being registered is incompatible with an earlier schema for subject \"b1.bad.refused-value\""})
		return true
	})

	startProducer(t, producerArgs(t, ctx, "b1", "bad.*", "-kafka.max_record_bytes", "16384"))
	huge := strings.Repeat("x", 40000)
	if err := env.db.Exec(ctx, "bad",
		"BEGIN", "INSERT INTO ok VALUES (1, 'one')", "INSERT INTO refused VALUES (7, 'seven')", "COMMIT",
		"BEGIN", "INSERT INTO big VALUES (1, 'small')", "INSERT INTO big VALUES (2, '"+huge+"')", "COMMIT",
		"INSERT INTO ok VALUES (2, 'two')",
		"INSERT INTO big VALUES (3, 'small too')",
	); err != nil {
		t.Fatal(err)
	}

	brokers := env.kafka.ListenAddrs()
	// Records of different keys may sit in different partitions: compare
	// them as sets.
	var okRows, bigIDs []string
	for _, c := range consume(t, ctx, 2, "b1.bad.ok") {
		okRows = append(okRows, fmt.Sprint(c.Key["id"], " ", unwrap(row(c.Value, "after")["v"])))
	}
	for _, c := range consume(t, ctx, 2, "b1.bad.big") {
		bigIDs = append(bigIDs, fmt.Sprint(c.Key["id"]))
	}
	sort.Strings(okRows)
	sort.Strings(bigIDs)
	if diff := cmp.Diff(okRows, []string{"1 one", "2 two"}); diff != "" {
		t.Errorf("bad.ok, including the change after the poison ones (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(bigIDs, []string{"1", "3"}); diff != "" {
		t.Errorf("bad.big ids (row 2 is dead-lettered) (-got +want):\n%s", diff)
	}

	dead := records(t, ctx, brokers, "b1._dead_letter", 2)
	byReason := map[string]*kgo.Record{}
	for _, r := range dead {
		byReason[header(r, "strait.reason")] = r
	}
	refused := byReason["schema_rejected"]
	if refused == nil {
		t.Fatalf("no schema_rejected dead letter among %d", len(dead))
	}
	if got := header(refused, "strait.table"); got != "bad.refused" {
		t.Errorf("dead letter table = %q", got)
	}
	if e := header(refused, "strait.error"); !strings.Contains(e, "bad.refused at mysql-bin.") || !strings.Contains(e, "incompatible") {
		t.Errorf("dead letter error %q does not name the table, position and cause", e)
	}
	// The change itself travels with its schema: nothing is lost.
	codec, err := goavro.NewCodec(header(refused, "strait.value.schema"))
	if err != nil {
		t.Fatalf("value schema header: %v", err)
	}
	v, _, err := codec.NativeFromBinary(refused.Value)
	if err != nil {
		t.Fatalf("decode dead-lettered value: %v", err)
	}
	if after := row(v.(map[string]any), "after"); unwrap(after["v"]) != "seven" || unwrap(after["id"]) != int32(7) {
		t.Errorf("dead-lettered row = %v, want id 7, v seven", after)
	}

	tooBig := byReason["record_too_large"]
	if tooBig == nil {
		t.Fatalf("no record_too_large dead letter among %d", len(dead))
	}
	if e := header(tooBig, "strait.error"); !strings.Contains(e, "bad.big") || !strings.Contains(e, "max_record_bytes=16384") {
		t.Errorf("dead letter error %q does not name the table and the limit", e)
	}
	if tooBig.Value != nil || !strings.Contains(header(tooBig, "strait.value.omitted"), "bytes") {
		t.Errorf("too-large dead letter carries %d value bytes, want none and strait.value.omitted", len(tooBig.Value))
	}
	keyCodec, err := goavro.NewCodec(header(tooBig, "strait.key.schema"))
	if err != nil {
		t.Fatalf("key schema header: %v", err)
	}
	k, _, err := keyCodec.NativeFromBinary(tooBig.Key)
	if err != nil || k.(map[string]any)["id"] != int32(2) {
		t.Errorf("dead-lettered key = %v (%v), want id 2", k, err)
	}
}

// A broker that refuses a produce stops the producer with an error naming
// the topic and the broker's reason; what was published before stays.
func TestBrokerRefusalStopsWithClearError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := testenv.StartKafka()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	// Produce v13 names topics by id: create the refused topic up front to
	// learn it (the producer then finds it existing).
	adm := kadm.NewClient(mustClientOf(t, cluster.ListenAddrs()))
	created, err := adm.CreateTopic(ctx, 3, -1, nil, "b2.refusal.denied")
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	refuse := func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		hit := false
		for _, tp := range pr.Topics {
			hit = hit || tp.Topic == "b2.refusal.denied" || tp.TopicID == created.ID
		}
		if !hit {
			return nil, nil, false
		}
		return testenv.ProduceError(pr, kerr.TopicAuthorizationFailed.Code), nil, true
	}
	cluster.ControlKey(int16(kmsg.Produce), refuse)

	if err := env.db.Exec(ctx, "", "CREATE DATABASE refusal",
		"CREATE TABLE refusal.allowed (id INT PRIMARY KEY)",
		"CREATE TABLE refusal.denied (id INT PRIMARY KEY)",
	); err != nil {
		t.Fatal(err)
	}
	p := startProducer(t, producerArgs(t, ctx, "b2", "refusal.*", "-kafka.brokers", strings.Join(cluster.ListenAddrs(), ",")))
	if err := env.db.Exec(ctx, "refusal", "INSERT INTO allowed VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	if got := records(t, ctx, cluster.ListenAddrs(), "b2.refusal.allowed", 2); len(got) != 2 {
		t.Fatalf("allowed: %d records", len(got))
	}
	if err := env.db.Exec(ctx, "refusal", "INSERT INTO denied VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	err = p.wait(t, ctx)
	if err == nil || !strings.Contains(err.Error(), "b2.refusal.denied") || !strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("producer ended with %v, want an error naming the topic and the broker's reason", err)
	}
	if service.ExitCode(err) == 0 {
		t.Error("exit code 0 after a refused produce")
	}
	// The records published before the refusal are intact.
	if got := records(t, ctx, cluster.ListenAddrs(), "b2.refusal.allowed", 2); len(got) != 2 {
		t.Errorf("allowed: %d records after the refusal, want 2", len(got))
	}
}
