package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// make demo twice in the same directory without make demo-down in
// between: the second run says what it does with the first run's state and
// still ends with every table matching (it failed with "the source no
// longer has the binlog to continue from gtid …": the Kafka checkpoint was
// kept under -dir while MariaDB started from a fresh data directory).
func TestDemoRunsAgainInTheSameDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin := buildBinaries(t, ctx)
	dir := t.TempDir()
	args := []string{"-dir", dir, "-bin", bin, "-duration", "2s", "-rate", "50"}
	for i, want := range []string{"", "resetting " + dir} {
		var out bytes.Buffer
		err := run(ctx, args, func(string) string { return "" }, &out)
		t.Logf("run %d output:\n%s", i+1, out.String())
		if err != nil {
			for _, name := range []string{"producer", "consumer"} {
				b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
				t.Logf("%s log:\n%s", name, b)
			}
			t.Fatalf("run %d: %v", i+1, err)
		}
		if !strings.Contains(out.String(), "every table matches") {
			t.Errorf("run %d does not end with every table matching", i+1)
		}
		if want != "" && !strings.Contains(out.String(), want) {
			t.Errorf("run %d does not say %q", i+1, want)
		}
	}
}

// A binary that stops while starting is reported at once with its log,
// not after waitReady's minute (the second make demo used to sit silent
// for that minute before saying why).
func TestWaitReadyReportsAnExitAtOnce(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "producer.log")
	if err := os.WriteFile(logPath, []byte("producer: the source no longer has the binlog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	close(exited)
	start := time.Now()
	err := waitReady(context.Background(), freeAddr(), logPath, exited)
	if err == nil || !strings.Contains(err.Error(), "no longer has the binlog") {
		t.Errorf("waitReady = %v; want the log's last lines", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("waitReady took %s for a binary that had ended", d)
	}
}
