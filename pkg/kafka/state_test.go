package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-cdc/strait/pkg/cdc"

	"github.com/strait-cdc/strait/pkg/testenv"
	"github.com/strait-cdc/strait/schemas"
)

// testStore is a Kafka cluster and registry of a test, and the
// configuration of a writer of prefix to them.
type testStore struct {
	cluster *kfake.Cluster
	cfg     *Config
}

// startStore starts kfake and srfake for the test, closed at its end.
func startStore(t *testing.T, prefix string) *testStore {
	t.Helper()
	cluster, err := testenv.StartKafka()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	reg := testenv.StartRegistry()
	t.Cleanup(reg.Close)
	cfg := &Config{}
	cfg.Defaults()
	cfg.Brokers, cfg.RegistryURL, cfg.TopicPrefix = cluster.ListenAddrs(), reg.URL(), prefix
	return &testStore{cluster: cluster, cfg: cfg}
}

// writer returns a new writer of the store's prefix, closed at the test's
// end (closing it earlier is fine).
func (s *testStore) writer(t *testing.T) *Writer {
	t.Helper()
	w, err := NewWriter(s.cfg, "test", slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// numbered is a checkpoint value of the tests whose body is its number.
type numbered int

func (numbered) StateSchema() string  { return schemas.Checkpoint }
func (numbered) StateTime() time.Time { return time.Unix(1700000000, 0) }
func (n numbered) AppendState(b []byte, st Stamp) ([]byte, error) {
	return strconv.AppendInt(b, int64(n), 10), nil
}

// testPlan is a snapshot plan value of the tests: "plan of <source>".
type testPlan struct{}

func (testPlan) StateSchema() string  { return schemas.SnapshotPlan }
func (testPlan) StateTime() time.Time { return time.Time{} }
func (testPlan) AppendState(b []byte, st Stamp) ([]byte, error) {
	return append(append(b, "plan of "...), st.Source...), nil
}

// TestStartReadsOnlyTheLastCheckpoint: a start finds the last committed
// checkpoint by reading back from the end of <prefix>._checkpoint, not the
// week of checkpoints compaction keeps (one per commit): with 2,000
// committed, it reads a few dozen records. An aborted checkpoint after
// them, and a record another client wrote under another key, do not count;
// the snapshot plan committed long before is found the same way.
func TestStartReadsOnlyTheLastCheckpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := startStore(t, "last")
	cfg := store.cfg
	w := store.writer(t)
	if _, err := w.ReadCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.PublishSnapshotPlan(ctx, testPlan{}); err != nil {
		t.Fatal(err)
	}
	const commits = 2000
	for i := 1; i <= commits; i++ {
		if err := w.Commit(ctx, numbered(i)); err != nil {
			t.Fatal(err)
		}
	}
	// One more, aborted: never read back.
	if err := w.producer.begin(); err != nil {
		t.Fatal(err)
	}
	if err := w.state.putCheckpoint(ctx, numbered(commits+1), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := w.producer.abort(ctx, errors.New("test")); err == nil {
		t.Fatal("abort returned nil")
	}
	// A record under another key, written by someone else.
	other, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.ProduceSync(ctx, &kgo.Record{Topic: "last._checkpoint", Key: []byte("someone-else"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	w.Close()

	r := store.writer(t)
	rec, err := r.ReadCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil || string(rec.Body) != strconv.Itoa(commits) {
		t.Fatalf("last checkpoint %+v, want the body %d", rec, commits)
	}
	if r.state.readBack > 2*lastWindow {
		t.Errorf("the start read back %d records of %d checkpoints to find the last, want at most %d", r.state.readBack, commits, 2*lastWindow)
	}
	plan, err := r.ReadSnapshotPlan(ctx)
	if err != nil || plan == nil || string(plan.Body) != "plan of last" {
		t.Fatalf("snapshot plan %+v, %v; want the one committed first", plan, err)
	}
	t.Logf("read back %d records for the checkpoint and the plan", r.state.readBack)
}

// TestCreateTableTopicsBatched: the topics of 1,200 tables are created in
// three CreateTopics requests (topicBatch to one), compacted like a
// table's first change would create them, and a table's first change then
// asks for none — after a restart too.
func TestCreateTableTopicsBatched(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := startStore(t, "many")
	cluster := store.cluster
	var requests, topics atomic.Int64
	cluster.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		requests.Add(1)
		topics.Add(int64(len(req.(*kmsg.CreateTopicsRequest).Topics)))
		return nil, nil, false
	})
	w := store.writer(t)
	tables := make([]string, 1200)
	for i := range tables {
		tables[i] = fmt.Sprintf("shop.t%04d", i)
	}
	created, err := w.CreateTableTopics(ctx, tables)
	if err != nil || created != len(tables) {
		t.Fatalf("created %d topics (%v), want %d", created, err, len(tables))
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("%d CreateTopics requests for %d topics, want 3", n, len(tables))
	}
	described, err := kadm.NewClient(w.producer.client).DescribeTopicConfigs(ctx, "many.shop.t0000", "many.shop.t1199")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range described {
		policy := ""
		for _, c := range d.Configs {
			if c.Key == "cleanup.policy" {
				policy = c.MaybeValue()
			}
		}
		if d.Err != nil || policy != "compact" {
			t.Errorf("%s: cleanup.policy %q (%v), want compact", d.Name, policy, d.Err)
		}
	}
	// Again: nothing left to create, no request.
	if created, err := w.CreateTableTopics(ctx, tables); err != nil || created != 0 || requests.Load() != 3 {
		t.Errorf("created %d more (%v) in %d requests in all, want none", created, err, requests.Load())
	}
	// A table's first change finds its topic.
	if err := w.Publish(ctx, []cdc.Event{{Op: cdc.OpCreate, Table: &cdc.Table{Database: "shop", Name: "t0007",
		Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt64}}, PrimaryKey: []int{0}}, After: []cdc.Value{cdc.Int(1)}}}); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("a table's first change asked for its topic again (%d requests)", n)
	}
	// Restarted, the producer lists the topics once instead of asking for
	// each again at its table's first change.
	w.Close()
	w2 := store.writer(t)
	if _, err := w2.ReadCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"t0008", "t0009", "t1100"} {
		if err := w2.Publish(ctx, []cdc.Event{{Op: cdc.OpCreate, Table: &cdc.Table{Database: "shop", Name: name,
			Columns: []cdc.Column{{Name: "id", Type: cdc.TypeInt64}}, PrimaryKey: []int{0}}, After: []cdc.Value{cdc.Int(1)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("after a restart, the first changes of three tables asked for topics %d times, want none", n-3)
	}
}
