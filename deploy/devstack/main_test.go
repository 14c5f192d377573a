package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// make demo, end to end and sized for the test suite: a real MariaDB with
// rows already in its tables, bin/producer and bin/consumer as processes,
// Kafka, the registry and the local BigQuery endpoint; a few seconds of
// writes; then every BigQuery table equals its source table, all columns.
func TestDemoEndsWithEveryTableMatching(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildBinaries(t, ctx)
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(ctx, []string{"-dir", dir, "-bin", bin, "-duration", "3s", "-rate", "50"}, func(string) string { return "" }, &out)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		for _, name := range []string{"producer", "consumer"} {
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			t.Logf("%s log:\n%s", name, b)
		}
		t.Fatal(err)
	}
	for _, want := range []string{"customers", "orders", "order_items", "every table matches"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "DIFFERS") {
		t.Error("a table differs")
	}
	if _, err := os.Stat(filepath.Join(dir, "pids")); !os.IsNotExist(err) {
		t.Errorf("%s/pids left behind after a clean end (make demo-down would kill reused pids)", dir)
	}
}

func TestDemoFlags(t *testing.T) {
	if _, err := parse([]string{"-rate", "0"}, func(string) string { return "" }); err == nil {
		t.Error("-rate 0 accepted")
	}
	o, err := parse(nil, func(k string) string {
		return map[string]string{"STRAIT_BIGQUERY_PROJECT": "p"}[k]
	})
	if err != nil || o.project != "p" || o.dataset != "strait_demo" || o.dir != ".demo" {
		t.Errorf("defaults with STRAIT_BIGQUERY_PROJECT=p: %+v, %v", o, err)
	}
}

// buildBinaries builds bin/producer and bin/consumer into a temporary
// directory and returns it.
func buildBinaries(t testing.TB, ctx context.Context) string {
	t.Helper()
	bin := t.TempDir()
	for _, name := range []string{"producer", "consumer"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, name), "./"+name)
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", name, err, out)
		}
	}
	return bin
}
