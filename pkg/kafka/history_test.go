package kafka

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
	"github.com/strait-cdc/strait/schemas"
)

// TestSchemaHistoryRoundTrip: what ReadSchemaHistory returns is the last
// committed entry per table — a tombstone erases, an aborted transaction's
// entries never count.
func TestSchemaHistoryRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
	cfg.Brokers, cfg.RegistryURL, cfg.TopicPrefix = cluster.ListenAddrs(), reg.URL(), "hist"
	w, err := NewWriter(cfg, "test", slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.ReadCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}

	orders := cdc.TableSchema{Database: "shop", Table: "orders", PrimaryKey: []string{"id"}, ServerID: 1, File: "mysql-bin.000003", Pos: 1234,
		Columns: []cdc.SchemaColumn{
			{Name: "id", ColumnType: "bigint(20) unsigned", DataType: "bigint"},
			{Name: "state", ColumnType: "enum('new','paid')", DataType: "enum", Charset: "utf8mb4", Nullable: true},
		}}
	gone := cdc.TableSchema{Database: "shop", Table: "gone", ServerID: 1, File: "mysql-bin.000003", Pos: 99,
		Columns: []cdc.SchemaColumn{{Name: "x", ColumnType: "int(11)", DataType: "int", Nullable: true}}}
	if err := w.PublishSchemas(ctx, []cdc.TableSchema{orders, gone}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, testCheckpoint{}); err != nil {
		t.Fatal(err)
	}
	// The table is dropped: a tombstone, committed.
	if err := w.PublishSchemas(ctx, []cdc.TableSchema{{Database: "shop", Table: "gone"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, testCheckpoint{}); err != nil {
		t.Fatal(err)
	}
	// A later change of orders, never committed.
	changed := orders
	changed.Columns = orders.Columns[:1]
	if err := w.PublishSchemas(ctx, []cdc.TableSchema{changed}); err != nil {
		t.Fatal(err)
	}
	if err := w.producer.abort(ctx, errors.New("test")); err == nil {
		t.Fatal("abort returned nil")
	}

	got, err := w.ReadSchemaHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]*cdc.TableSchema{"shop.orders": &orders}); diff != "" {
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
