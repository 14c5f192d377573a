package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// servicesRun is one start of `devstack -services` in the background.
type servicesRun struct {
	out    *testenv.Buffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned, with err
	err    error
}

func startServices(t *testing.T, ctx context.Context, args ...string) *servicesRun {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	s := &servicesRun{out: &testenv.Buffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		s.err = run(ctx, append([]string{"-services"}, args...), func(string) string { return "" }, s.out)
		close(s.done)
	}()
	t.Cleanup(func() { cancel(); <-s.done }) // also after a failure: the state directory is removed next
	deadline := time.After(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(s.out.String(), "services ready") {
		select {
		case <-s.done:
			t.Fatalf("-services ended while starting: %v\n%s", s.err, s.out.String())
		case <-deadline:
			t.Fatalf("-services not ready within a minute:\n%s", s.out.String())
		case <-tick.C:
		}
	}
	return s
}

func (s *servicesRun) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	<-s.done
	if s.err != nil {
		t.Fatalf("-services: %v", s.err)
	}
}

// field returns the value printed after a label of -services' output.
func (s *servicesRun) field(t *testing.T, label string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + label + ` +(\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("-services printed no %q:\n%s", label, s.out.String())
	}
	return m[1]
}

// The configuration -services writes names the user's server as given by
// the environment, without its password.
func TestServicesWriteConfigsForYourServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	env := map[string]string{"STRAIT_SOURCE_HOST": "db.example.internal", "STRAIT_SOURCE_PORT": "3307", "STRAIT_SOURCE_USER": "cdc",
		"STRAIT_SOURCE_PASSWORD": "secret-pw"}
	out := &testenv.Buffer{}
	ctx2, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx2, []string{"-services", "-dir", dir, "-include", "shop.*, crm.accounts"}, func(k string) string { return env[k] }, out)
	}()
	for !strings.Contains(out.String(), "services ready") {
		select {
		case err := <-done:
			t.Fatalf("ended: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("not ready:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "producer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host: db.example.internal", "port: 3307", "user: cdc", `include: ["shop.*", "crm.accounts"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("producer.yaml lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "secret-pw") || strings.Contains(out.String(), "secret-pw") {
		t.Error("the password was written or printed")
	}
	if _, err := os.Stat(filepath.Join(dir, "consumer.yaml")); err != nil {
		t.Error(err)
	}
}

// A restart of -services in the same -dir keeps the topics and the
// registered schemas (under their ids: records name their schema by id),
// says so, and gives the consumer a new group for the empty local
// BigQuery.
func TestServicesRestartKeepsTopicsAndSchemas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	const topic = "strait.shop.customers"
	schemas := []string{`{"type":"string"}`, `{"type":"record","name":"k","fields":[{"name":"id","type":"long"}]}`}

	first := startServices(t, ctx, "-dir", dir)
	if strings.Contains(first.out.String(), "reusing") {
		t.Errorf("a first start says it reuses:\n%s", first.out.String())
	}
	reg, err := sr.NewClient(sr.URLs(first.field(t, "Schema Registry")))
	if err != nil {
		t.Fatal(err)
	}
	// A schema of another subject first, so that ids are not just 1.
	if _, err := reg.CreateSchema(ctx, "other-value", sr.Schema{Schema: `{"type":"int"}`}); err != nil {
		t.Fatal(err)
	}
	ids := map[int]string{}
	for i, s := range schemas {
		ss, err := reg.CreateSchema(ctx, []string{topic + "-value", topic + "-key"}[i], sr.Schema{Schema: s})
		if err != nil {
			t.Fatal(err)
		}
		ids[ss.ID] = s
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(first.field(t, "Kafka")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(kc).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	kc.Close()
	group1, _ := os.ReadFile(filepath.Join(dir, "consumer.yaml"))
	first.stop(t)

	second := startServices(t, ctx, "-dir", dir)
	if !strings.Contains(second.out.String(), "reusing "+dir+" from an earlier run") {
		t.Errorf("a restart does not say it reuses %s:\n%s", dir, second.out.String())
	}
	reg, err = sr.NewClient(sr.URLs(second.field(t, "Schema Registry")))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range ids {
		got, err := reg.SchemaByID(ctx, id)
		if err != nil || got.Schema != want {
			t.Errorf("schema %d after the restart: %q, %v; want %q", id, got.Schema, err, want)
		}
	}
	kc, err = kgo.NewClient(kgo.SeedBrokers(second.field(t, "Kafka")), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	fetches := kc.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	if recs := fetches.Records(); len(recs) != 1 || string(recs[0].Value) != "kept" {
		t.Errorf("topic after the restart: %d records, want the one written before", len(recs))
	}
	group2, _ := os.ReadFile(filepath.Join(dir, "consumer.yaml"))
	g := regexp.MustCompile(`group_id: (\S+)`)
	if a, b := g.FindSubmatch(group1), g.FindSubmatch(group2); a == nil || b == nil || string(a[1]) == string(b[1]) {
		t.Errorf("consumer group before and after the restart: %q, %q; want two different ones", a, b)
	}
	second.stop(t)
}

func TestServicesFlags(t *testing.T) {
	none := func(string) string { return "" }
	o, err := parse([]string{"-services"}, none)
	if err != nil || o.dir != ".strait" || o.source.host != "127.0.0.1" || o.source.port != 3306 || o.source.user != "strait" {
		t.Errorf("-services defaults: %+v, %v", o, err)
	}
	if o, err := parse([]string{"-services", "-dir", "x", "-source-port", "3307"}, none); err != nil || o.dir != "x" || o.source.port != 3307 {
		t.Errorf("-services -dir x -source-port 3307: %+v, %v", o, err)
	}
	if _, err := parse([]string{"-services"}, func(k string) string { return map[string]string{"STRAIT_SOURCE_PORT": "3o6"}[k] }); err == nil {
		t.Error("STRAIT_SOURCE_PORT=3o6 accepted")
	}
}
