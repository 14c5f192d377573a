package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

var txnUsers = &cdc.Table{Database: "shop", Name: "users", PrimaryKey: []int{0}, Columns: []cdc.Column{
	{Name: "id", Type: cdc.TypeInt64},
	{Name: "email", Type: cdc.TypeString, Nullable: true},
}}

// TestFreshWriterShortTransactions: fresh writers, one after the other,
// each run a few short Kafka transactions (one source transaction, then its
// checkpoint), as the producer does with kafka.transaction_max_records 1.
//
// The second transaction of a fresh writer used to fail now and then with
// INVALID_TXN_STATE on its checkpoint (awaitPartitions says why). The gap
// opens only when the client's metadata goroutine loses its CPU at the
// wrong moment: on an idle machine this test passes without the fix too.
// To see it fail without awaitPartitions, crowd the threads onto one core:
//
//	go test -race -c ./pkg/kafka && GOMAXPROCS=8 taskset -c 0 ./kafka.test -test.run TestFreshWriterShortTransactions -test.count=10
//
// (Measured: 1 to 3 failed runs of 10 without the fix, none of 50 with it.)
func TestFreshWriterShortTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := testenv.StartKafka()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := testenv.StartRegistry()
	defer reg.Close()
	for i := range 40 {
		func() {
			var clientLog testenv.Buffer
			cfg := &Config{}
			cfg.Defaults()
			cfg.Brokers, cfg.RegistryURL, cfg.TopicPrefix, cfg.Partitions = cluster.ListenAddrs(), reg.URL(), fmt.Sprintf("fresh%d", i), 3
			log := slog.New(slog.NewTextHandler(&clientLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
			w, err := NewWriter(cfg, "test", log, NewMetrics(prometheus.NewRegistry()))
			if err != nil {
				t.Error(err)
				return
			}
			defer w.Close()
			for n := range 3 {
				ev := cdc.Event{Table: txnUsers, Op: cdc.OpCreate, After: []cdc.Value{cdc.Int(int64(n)), cdc.Str("x")},
					Position: cdc.Position{Epoch: 1, File: 1, Pos: uint64(100 * (n + 1))}, CommitTime: time.Unix(1700000000, 0)}
				err := w.Publish(ctx, []cdc.Event{ev})
				if err == nil {
					err = w.Commit(ctx, testCheckpoint{})
				}
				if err != nil {
					t.Errorf("writer %d, transaction %d: %v\nclient log:\n%s", i, n+1, err, clientLog.String())
					return
				}
			}
		}()
	}
}
