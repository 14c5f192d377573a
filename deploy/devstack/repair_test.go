package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The demo's pipeline under a write workload (the demo's, and updates of
// shop.accounts); rows of the BigQuery table of shop.accounts deleted,
// changed and added behind the consumer's back, in the local endpoint.
// producer verify -repair names them and asks the running producer to
// publish them again; afterwards verify reports no difference, and the
// keys the source changed after the repair was asked for hold their
// newest values (no repair overwrote a newer change). Then producer
// backfill loads historical rows from a file: a key the table does not
// hold appears, a live row and a row deleted moments ago stay as they are.
func TestRepairUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin := buildBinaries(t, ctx)
	var out bytes.Buffer
	o := &options{dir: t.TempDir(), bin: bin, dataset: "strait_demo"}
	st, err := startStack(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if err := loadSchema(ctx, st.db); err != nil {
		t.Fatal(err)
	}
	if err := st.db.Exec(ctx, "shop", "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, note VARCHAR(40))",
		"SET SESSION max_recursive_iterations = 1000",
		"INSERT INTO accounts WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < 200) SELECT k, 100, 'start' FROM seq"); err != nil {
		t.Fatal(err)
	}
	if err := st.startBinaries(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			for _, name := range []string{"producer", "consumer"} {
				b, _ := os.ReadFile(filepath.Join(o.dir, name+".log"))
				t.Logf("%s log (tail):\n%s", name, tail(string(b), 40))
			}
			t.Logf("output:\n%s", out.String())
		}
	}()
	if ok, err := st.verify(ctx, 2*time.Minute); err != nil || !ok {
		t.Fatalf("verify after the initial snapshot: %v, %v", ok, err)
	}

	// The load: the demo's workload, and updates of accounts 20 to 200.
	load, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }() // before the logs are shown: the workload writes to out
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- st.workload(load, 5*time.Minute, 30)
	}()
	go func() {
		defer wg.Done()
		errs <- updateAccounts(load, st, 20, 200)
	}()

	// The damage: accounts 10 and 11 deleted, 12 and 13 changed, 1000
	// added, as DML in BigQuery would.
	const project, table = "demo", "shop_accounts"
	rows, err := st.bq.Rows(project, o.dataset, table)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]map[string]any{}
	for _, r := range rows {
		byID[r["id"].(int64)] = r
	}
	for _, id := range []int64{10, 11} {
		if err := st.bq.DeleteRow(project, o.dataset, table, map[string]any{"id": id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{12, 13} {
		r := maps.Clone(byID[id])
		r["note"] = "damaged"
		if err := st.bq.PutRow(project, o.dataset, table, r); err != nil {
			t.Fatal(err)
		}
	}
	extra := maps.Clone(byID[1])
	extra["id"] = int64(1000)
	if err := st.bq.PutRow(project, o.dataset, table, extra); err != nil {
		t.Fatal(err)
	}

	repaired, err := st.verifyRepair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"shop.accounts: missing (id=10)", "shop.accounts: missing (id=11)",
		"shop.accounts: different (id=12): note: source start, BigQuery damaged",
		"shop.accounts: extra (id=1000)",
		"shop.accounts: repair of ",
		"producer snapshot -list shows them",
	} {
		if !strings.Contains(repaired, want) {
			t.Errorf("verify -repair output lacks %q:\n%s", want, repaired)
		}
	}
	// Account 13 changes at the source after the repair was asked for,
	// again and again while the producer takes the request: its newest
	// change stays.
	for i := range 20 {
		if err := st.db.Exec(ctx, "shop", fmt.Sprintf("UPDATE accounts SET note = 'newest %d' WHERE id = 13", i)); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	if ok, err := st.verify(ctx, 2*time.Minute); err != nil || !ok {
		t.Fatalf("verify after the repair: %v, %v, want every table to match", ok, err)
	}
	rows, err = st.bq.Rows(project, o.dataset, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r["id"].(int64) == 13 && r["note"] != "newest 19" {
			t.Errorf("account 13 in BigQuery: %v, want its newest note", r["note"])
		}
	}

	// Backfill: 5000 and 5001 are gaps, 50 is live, 150 was deleted at
	// the source a moment ago.
	if err := st.db.Exec(ctx, "shop", "DELETE FROM accounts WHERE id = 150"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(o.dir, "history.jsonl")
	history := `{"id": 5000, "balance": 7, "note": "from 2019"}
{"id": 5001, "balance": 8, "note": null}
{"id": 50, "balance": 0, "note": "from 2019"}
{"id": 150, "balance": 0, "note": "from 2019"}
`
	if err := os.WriteFile(file, []byte(history), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := st.producer(ctx, "backfill", "-tables", "shop.accounts", "-from", file); err != nil || !strings.Contains(out, "backfill of 4 rows of shop.accounts requested") {
		t.Fatalf("producer backfill: %v\n%s", err, out)
	}
	// And from an archive table outside the captured ones: 6000 is a gap,
	// 51 is live.
	if err := st.db.Exec(ctx, "", "CREATE DATABASE archive", "CREATE TABLE archive.accounts LIKE shop.accounts",
		"INSERT INTO archive.accounts VALUES (6000, 9, 'archived'), (51, 0, 'archived')"); err != nil {
		t.Fatal(err)
	}
	if out, err := st.producer(ctx, "backfill", "-tables", "shop.accounts", "-query", "SELECT * FROM archive.accounts"); err != nil || !strings.Contains(out, "backfill of 2 rows of shop.accounts requested") {
		t.Fatalf("producer backfill -query: %v\n%s", err, out)
	}
	if out, err := st.producer(ctx, "backfill", "-tables", "shop.accounts", "-query", "SELECT * FROM archive.accounts; DROP TABLE archive.accounts"); err == nil || !strings.Contains(out, "holds a ';'") {
		t.Errorf("producer backfill -query with a second statement: %v\n%s", err, out)
	}
	var got map[int64]map[string]any
	for deadline := time.Now().Add(time.Minute); ; {
		rows, err := st.bq.Rows(project, o.dataset, table)
		if err != nil {
			t.Fatal(err)
		}
		got = map[int64]map[string]any{}
		for _, r := range rows {
			got[r["id"].(int64)] = r
		}
		// 150's delete may reach BigQuery after its backfilled row (the
		// producer may take the request before it streams the delete);
		// a backfilled row that came back after the delete stays.
		if got[5000] != nil && got[5001] != nil && got[6000] != nil && got[150] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: backfilled rows 5000 %v, 5001 %v, 6000 %v; account 150, deleted at the source: %v", got[5000], got[5001], got[6000], got[150])
		}
		time.Sleep(100 * time.Millisecond) // polling the endpoint's state; the deadline bounds it
	}
	if got[5000]["note"] != "from 2019" || got[5000]["balance"] != int64(7) || got[5001]["note"] != nil {
		t.Errorf("backfilled rows: %v, %v", got[5000], got[5001])
	}
	if got[50]["note"] == "from 2019" || got[51]["note"] == "archived" {
		t.Errorf("the backfill overwrote live accounts 50 or 51: %v, %v", got[50], got[51])
	}
	if got[6000]["note"] != "archived" {
		t.Errorf("account 6000 from the archive: %v", got[6000])
	}
}

// producer runs bin/producer with args and the demo's configuration.
func (st *stack) producer(ctx context.Context, args ...string) (string, error) {
	args = append(args[:1:1], append([]string{"-config", filepath.Join(st.o.dir, "producer.yaml")}, args[1:]...)...)
	cmd := exec.CommandContext(ctx, filepath.Join(st.o.bin, "producer"), args...)
	cmd.Env = append(os.Environ(), "STRAIT_SOURCE_PASSWORD="+st.db.Password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// verifyRepair runs `bin/producer verify -repair` until it has asked for
// a repair of shop.accounts, and returns its output. Keys changed shortly
// before are pending while BigQuery applies them (max_staleness 10s), and
// re-checked for 15s.
func (st *stack) verifyRepair(ctx context.Context) (string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cmd := exec.CommandContext(ctx, filepath.Join(st.o.bin, "producer"), "verify", "-config", filepath.Join(st.o.dir, "producer.yaml"),
			"-repair", "-tables", "shop.accounts", "-max-wait", "30s", "-margin", "5s", "-recheck", "1s")
		cmd.Env = append(os.Environ(), "STRAIT_SOURCE_PASSWORD="+st.db.Password)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return "", fmt.Errorf("producer verify -repair: %w", err)
		}
		if strings.Contains(out.String(), "repair of ") {
			return out.String(), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("producer verify -repair asked for no repair:\n%s%s", out.String(), errOut.String())
		}
	}
}

// updateAccounts updates random accounts from lo to hi at the source until
// ctx ends.
func updateAccounts(ctx context.Context, st *stack, lo, hi int) error {
	c, err := st.db.Conn(ctx, "shop")
	if err != nil {
		return err
	}
	defer c.Close()
	rnd := rand.New(rand.NewPCG(3, 4))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		id := lo + rnd.IntN(hi-lo+1)
		if _, err := c.Execute(fmt.Sprintf("UPDATE accounts SET balance = balance + 1, note = 'update %d' WHERE id = %d", rnd.IntN(1000), id)); err != nil {
			return err
		}
	}
}
