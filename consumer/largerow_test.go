package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/kafka"
)

// TestLargeRowsEndEqual: with records of at most 1 MiB, a 600 KB row's
// update goes out with its before image reduced to the key
// (source.before_key_only), a 1.5 MB row's insert goes to the dead-letter
// topic and its delete, reduced too, still reaches the consumer: BigQuery
// ends holding exactly what the source holds.
func TestLargeRowsEndEqual(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "largerows"
	cfg := &kafka.Config{}
	cfg.Defaults()
	cfg.Brokers, cfg.RegistryURL, cfg.TopicPrefix, cfg.MaxRecordBytes = env.kafka.ListenAddrs(), env.registry.URL(), prefix, 1<<20
	w, err := kafka.NewWriter(cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), kafka.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pub := &publisher{t: t, w: w}
	docs := &cdc.Table{Database: "shop", Name: "docs", PrimaryKey: []int{0}, Columns: []cdc.Column{
		{Name: "id", Type: cdc.TypeInt64}, {Name: "body", Type: cdc.TypeBytes, Nullable: true}}}
	row := func(id int64, c string, n int) []cdc.Value {
		return []cdc.Value{cdc.Int(id), cdc.Str(strings.Repeat(c, n))}
	}
	pub.publish(ctx, ins(docs, row(1, "a", 600_000)...))
	pub.publish(ctx, upd(docs, row(1, "a", 600_000), row(1, "b", 600_000)))
	pub.publish(ctx, ins(docs, row(2, "c", 1_500_000)...))
	pub.publish(ctx, del(docs, row(2, "c", 1_500_000)...))
	if d := w.Diverged(); len(d) != 0 {
		t.Errorf("diverged after the delete: %v", d)
	}
	startConsumer(t, consumerArgs(prefix, "g1", "large"))
	waitRows(t, ctx, "large", "shop_docs", []map[string]any{{"id": int64(1), "body": []byte(strings.Repeat("b", 600_000))}})
}
