package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/pipeline"
)

// TestLargeRowsNeverDivergeSilently: a 10 MB row fits a record alone but
// not twice: its update is published with the before image reduced to the
// key (source.before_key_only), not dead-lettered. A 30 MB row fits no
// record: its insert goes to the dead-letter topic and its key is counted
// as diverged (strait_producer_diverged_keys, /status), and its delete —
// which needs only the key — is published, which ends the divergence: the
// topic, replayed, holds what the source holds.
func TestLargeRowsNeverDivergeSilently(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "DROP DATABASE IF EXISTS large", "CREATE DATABASE large",
		"CREATE TABLE large.docs (id INT PRIMARY KEY, v INT, body LONGBLOB)"); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix("large")
	topic := prefix + ".large.docs"
	p := startProducer(t, producerArgs(t, ctx, prefix, "large.*", "-kafka.tombstones=false"))
	addr := p.httpAddr(t, ctx)
	if err := env.db.Exec(ctx, "large", "INSERT INTO docs VALUES (1, 1, REPEAT('a', 10 << 20))", "UPDATE docs SET v = 2 WHERE id = 1",
		"INSERT INTO docs VALUES (2, 1, REPEAT('b', 30 << 20))"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the 30 MB row counted as diverged", func() bool {
		var st pipeline.Status
		return getJSON(addr+"/status", &st) == nil && st.Diverged["large.docs"] == 1
	})
	if m := getText(t, addr+"/metrics"); !strings.Contains(m, `strait_producer_diverged_keys{table="large.docs"} 1`) ||
		!strings.Contains(m, `strait_producer_before_images_reduced_total{table="large.docs"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(m, "large.docs"))
	}
	if err := env.db.Exec(ctx, "large", "DELETE FROM docs WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	got := records(t, ctx, env.kafka.ListenAddrs(), topic, 3) // insert 1, update 1, delete 2
	waitFor(t, ctx, "the divergence ended by the delete", func() bool {
		var st pipeline.Status
		return getJSON(addr+"/status", &st) == nil && st.Diverged["large.docs"] == 0
	})
	var ops []string
	for _, r := range got {
		c := decodeFramed(t, ctx, map[int]codec{}, r.Value)
		src := unwrap(c["source"]).(map[string]any)
		before := row(c, "before")
		summary := fmt.Sprintf("%v before_key_only=%v", c["op"], unwrap(src["before_key_only"]))
		if before != nil {
			summary += fmt.Sprintf(" before.id=%v before.body=%v", unwrap(before["id"]), unwrap(before["body"]) != nil)
		}
		ops = append(ops, summary)
		if len(r.Value) > 16<<20 {
			t.Errorf("record of %d bytes", len(r.Value))
		}
	}
	want := []string{"c before_key_only=<nil>", "u before_key_only=true before.id=1 before.body=false", "d before_key_only=true before.id=2 before.body=false"}
	if strings.Join(ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(want, "\n"))
	}
	dead := records(t, ctx, env.kafka.ListenAddrs(), prefix+"._dead_letter", 1)
	if header(dead[0], "strait.reason") != "record_too_large" || header(dead[0], "strait.table") != "large.docs" {
		t.Errorf("dead letter headers: %v", dead[0].Headers)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
