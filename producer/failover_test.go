package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// With GTIDs, a producer restarted against another replica of the same
// primary (a failover) continues from the checkpoint's GTID set without
// loss or duplicates, and the sequence epoch rises so that every change's
// sequence stays above the ones published before.
func TestFailoverToAnotherReplicaByGTID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// env.db is the primary; replica replicates it from now on.
	replica, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{ServerID: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Stop()
	pos, err := env.db.Query(ctx, "", "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.Exec(ctx, "", "RESET MASTER", "SET GLOBAL gtid_slave_pos = '"+*pos[0][0]+"'",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos",
			env.db.Host, env.db.Port, env.db.User, env.db.Password),
		"START SLAVE"); err != nil {
		t.Fatal(err)
	}
	if err := env.db.Exec(ctx, "", "CREATE DATABASE fo", "CREATE TABLE fo.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	args := producerArgs(t, ctx, "fo1", "fo.*")
	p := startProducer(t, args)
	insert := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if err := env.db.Exec(ctx, "fo", fmt.Sprintf("INSERT INTO t VALUES (%d)", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(0, 50)
	consume(t, ctx, 50, "fo1.fo.t")
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	insert(50, 100) // while no producer runs
	waitFor(t, ctx, "the replica caught up", func() bool {
		rows, err := replica.Query(ctx, "", "SELECT COUNT(*) FROM fo.t")
		return err == nil && len(rows) == 1 && rows[0][0] != nil && *rows[0][0] == "100"
	})

	// The producer moves to the replica.
	onReplica := withoutStart(args)
	onReplica[indexOf(onReplica, "-source.port")+1] = fmt.Sprint(replica.Port)
	p = startProducer(t, onReplica)
	waitEachOnce(t, ctx, "fo1.fo.t", 0, 100)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range readToEnd(t, ctx, "fo1.fo.t") {
		id := c.Key["id"].(int32)
		seq := unwrap(c.Value["source"].(map[string]any)["sequence"]).(string)
		if epoch := strings.Split(seq, "/")[0]; (id < 50) != (epoch == "0000000000000000") {
			t.Errorf("row %d has sequence %s: want epoch 0 from the primary (rows 0..49), 1 from the replica", id, seq)
		}
	}
}
