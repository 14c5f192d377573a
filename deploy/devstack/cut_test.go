package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConsistentCutEndToEnd: the whole pipeline — a real MariaDB, a
// 3-broker kfake cluster, bin/producer and two bin/consumer replicas of
// one group in append mode — while transfers move money between two account tables, each in one
// source transaction (now and then closing an account, a delete, or
// opening one), from before the snapshot of the accounts is done. Read
// again and again meanwhile, the two tables' views as of the group's
// watermark always hold the total the accounts started with; the
// watermark advances with the transfers and at the end stands at the
// binlog's end.
func TestConsistentCutEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildBinaries(t, ctx)
	var out bytes.Buffer
	o := &options{dir: t.TempDir(), bin: bin, brokers: 3, dataset: "strait_cut"}
	st, err := startStack(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	defer func() {
		if t.Failed() {
			for _, name := range []string{"producer", "consumer"} {
				b, _ := os.ReadFile(filepath.Join(o.dir, name+".log"))
				t.Logf("%s log:\n%s", name, tail(string(b), 80))
			}
		}
	}()

	// 300 accounts in each table, 100 each, there before the producer
	// starts: they arrive by the snapshot, in chunks of 5 rows, while the
	// transfers run.
	const accounts, total = 300, 60000
	bal := [2]map[int]int{{}, {}}
	stmts := []string{"CREATE DATABASE shop",
		"CREATE TABLE shop.acct_a (id INT PRIMARY KEY, bal BIGINT NOT NULL)",
		"CREATE TABLE shop.acct_b (id INT PRIMARY KEY, bal BIGINT NOT NULL)"}
	var values []string
	for id := range accounts {
		bal[0][id], bal[1][id] = 100, 100
		values = append(values, fmt.Sprintf("(%d, 100)", id))
	}
	stmts = append(stmts, "INSERT INTO shop.acct_a VALUES "+strings.Join(values, ", "), "INSERT INTO shop.acct_b VALUES "+strings.Join(values, ", "))
	if err := st.db.Exec(ctx, "", stmts...); err != nil {
		t.Fatal(err)
	}
	if err := st.writeConfigs(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.spawn("producer", "-http_addr", "127.0.0.1:0", "-source.snapshot_chunk_rows", "5"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := st.spawn("consumer", "-http_addr", "127.0.0.1:0", "-bigquery.mode", "append", "-watermark_interval", "100ms"); err != nil {
			t.Fatal(err)
		}
	}

	const project = "demo"
	watermark := func() string {
		wms, err := st.bq.Rows(project, o.dataset, "_strait_watermark")
		if err != nil || len(wms) == 0 {
			return ""
		}
		return fmt.Sprint(wms[0]["sequence"])
	}
	// sample checks the total of both as-of views, read at once; "" before
	// the first watermark, when they are empty.
	sample := func() string {
		wm := watermark()
		if wm == "" {
			return ""
		}
		views, err := st.bq.ViewRows(project, o.dataset, "shop_acct_a_as_of_watermark", "shop_acct_b_as_of_watermark")
		if err != nil {
			t.Fatal(err)
		}
		sum := int64(0)
		var state []string
		for i, rows := range views {
			for _, r := range rows {
				sum += r["bal"].(int64)
				state = append(state, fmt.Sprintf("%c.%d=%d", 'a'+i, r["id"], r["bal"]))
			}
		}
		if sum != total {
			slices.Sort(state)
			t.Fatalf("as of the watermark (at least %s) the accounts hold %d, want %d: %s", wm, sum, total, strings.Join(state, " "))
		}
		return wm
	}

	// The transfers, in rounds; after each the workload waits for the
	// watermark to move.
	const rounds, perRound = 6, 25
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			c, err := st.db.Conn(ctx, "shop")
			if err != nil {
				return err
			}
			defer c.Close()
			r := rand.New(rand.NewPCG(3, 4))
			tables := [2]string{"acct_a", "acct_b"}
			for range rounds {
				before := watermark()
				for range perRound {
					from := r.IntN(2)
					to := 1 - from
					id, dst := r.IntN(accounts), r.IntN(accounts)
					if _, ok := bal[to][dst]; !ok {
						dst = slices.Sorted(maps.Keys(bal[to]))[0]
					}
					old, exists := bal[from][id]
					var tx []string
					switch {
					case !exists: // open the account with money from the other table
						x := min(bal[to][dst], 1+r.IntN(20))
						bal[from][id], bal[to][dst] = x, bal[to][dst]-x
						tx = []string{fmt.Sprintf("UPDATE %s SET bal = bal - %d WHERE id = %d", tables[to], x, dst),
							fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", tables[from], id, x)}
					case r.IntN(10) == 0 && len(bal[from]) > 1: // close it
						delete(bal[from], id)
						bal[to][dst] += old
						tx = []string{fmt.Sprintf("DELETE FROM %s WHERE id = %d", tables[from], id),
							fmt.Sprintf("UPDATE %s SET bal = bal + %d WHERE id = %d", tables[to], old, dst)}
					default:
						x := min(old, 1+r.IntN(20))
						bal[from][id], bal[to][dst] = old-x, bal[to][dst]+x
						tx = []string{fmt.Sprintf("UPDATE %s SET bal = bal - %d WHERE id = %d", tables[from], x, id),
							fmt.Sprintf("UPDATE %s SET bal = bal + %d WHERE id = %d", tables[to], x, dst)}
					}
					for _, s := range append(append([]string{"BEGIN"}, tx...), "COMMIT") {
						if _, err := c.Execute(s); err != nil {
							return fmt.Errorf("%s: %w", s, err)
						}
					}
				}
				for watermark() == before {
					select {
					case <-ctx.Done():
						return fmt.Errorf("watermark still %q at the deadline", before)
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
			return nil
		}()
	}()
	seen := map[string]bool{}
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		case <-ctx.Done():
			t.Fatal("the workload did not finish at the deadline")
		case <-time.After(10 * time.Millisecond):
		}
		if wm := sample(); wm != "" {
			seen[wm] = true
		}
	}
	if len(seen) < rounds {
		t.Errorf("the watermark took %d values while the transfers ran, want at least one a round (%d)", len(seen), rounds)
	}

	// At the end the watermark stands at the binlog's end: every
	// transfer is below it.
	status, err := st.db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil || len(status) != 1 || status[0][0] == nil || status[0][1] == nil {
		t.Fatalf("SHOW MASTER STATUS: %v %v", status, err)
	}
	file, pos := *status[0][0], *status[0][1]
	n, _ := strconv.ParseUint(file[strings.LastIndexByte(file, '.')+1:], 10, 64)
	p, _ := strconv.ParseUint(pos, 10, 64)
	end := fmt.Sprintf("/%016X/%016X/FFFFFFFFFFFFFFFF", n, p)
	for last := ""; !strings.HasSuffix(last, end); last = sample() {
		select {
		case <-ctx.Done():
			t.Fatalf("watermark %q at the deadline, want the binlog's end %s:%s (…%s)", last, file, pos, end)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("%d transfers; %d watermarks seen while they ran", rounds*perRound, len(seen))
}
