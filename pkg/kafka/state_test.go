package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/testenv"
	"github.com/strait-cdc/strait/schemas"
)

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
	cluster, err := testenv.StartKafka()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := testenv.StartRegistry()
	defer reg.Close()
	cfg := &Config{}
	cfg.Defaults()
	cfg.Brokers, cfg.RegistryURL, cfg.TopicPrefix = cluster.ListenAddrs(), reg.URL(), "last"
	open := func() *Writer {
		w, err := NewWriter(cfg, "test", slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := open()
	defer w.Close()
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

	r := open()
	defer r.Close()
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
