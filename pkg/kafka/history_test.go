package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-cdc/strait/schemas"
)

// TestSchemaHistoryRoundTrip: what ReadSchemaHistory returns is the last
// committed entry per table — a tombstone erases, an aborted transaction's
// entries never count.
func TestSchemaHistoryRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := startStore(t, "hist").writer(t)
	if _, err := w.ReadCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}

	// The store keeps its owner's bytes (binlog.HistoryCodec's), whatever
	// they are.
	if err := w.PublishSchemas(ctx, schemas.SchemaHistory, []StateEntry{{Key: "shop.orders", Body: []byte("orders v1")},
		{Key: "shop.gone", Body: []byte("gone")}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, testCheckpoint{}); err != nil {
		t.Fatal(err)
	}
	// The table is dropped: a tombstone, committed.
	if err := w.PublishSchemas(ctx, schemas.SchemaHistory, []StateEntry{{Key: "shop.gone"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, testCheckpoint{}); err != nil {
		t.Fatal(err)
	}
	// A later change of orders, never committed.
	if err := w.PublishSchemas(ctx, schemas.SchemaHistory, []StateEntry{{Key: "shop.orders", Body: []byte("orders v2")}}); err != nil {
		t.Fatal(err)
	}
	if err := w.producer.abort(ctx, errors.New("test")); err == nil {
		t.Fatal("abort returned nil")
	}

	got, err := w.ReadSchemaHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys, bodies []string
	for _, r := range got {
		keys, bodies = append(keys, r.Key), append(bodies, string(r.Body))
	}
	if diff := cmp.Diff([][]string{keys, bodies}, [][]string{{"shop.orders"}, {"orders v1"}}); diff != "" {
		t.Errorf("history (-got +want):\n%s", diff)
	}
}

// testCheckpoint is a checkpoint value of the tests: the store keeps its
// owner's bytes, whatever they are.
type testCheckpoint struct{}

func (testCheckpoint) StateSchema() string  { return schemas.Checkpoint }
func (testCheckpoint) StateTime() time.Time { return time.Unix(1700000000, 0) }
func (testCheckpoint) AppendState(b []byte, st Stamp) ([]byte, error) {
	return append(b, st.Source...), nil
}
