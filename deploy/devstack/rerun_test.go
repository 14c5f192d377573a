package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
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

// A demo killed with -9 leaves MariaDB (and the binaries) running; the
// next run stops what <dir>/pids names and removes the server's
// temporary data directory, as that server's Stop would have.
func TestDemoResetStopsWhatAKilledRunLeft(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	dir := t.TempDir()
	pid, err := os.ReadFile(filepath.Join(db.Dir, "mariadbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	// A pid that is no demo program (this test) is left alone.
	pids := strings.TrimSpace(string(pid)) + "\n" + strconv.Itoa(os.Getpid()) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(pids), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := resetDemo(dir, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "resetting "+dir+": ") || !strings.Contains(out.String(), "stopped 1 processes") {
		t.Errorf("resetDemo said %q", out.String())
	}
	if _, err := db.Query(ctx, "", "SELECT 1"); err == nil {
		t.Error("the left MariaDB still answers")
	}
	if _, err := os.Stat(db.Dir); !os.IsNotExist(err) {
		t.Errorf("its data directory %s: %v; want removed", db.Dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pids")); !os.IsNotExist(err) {
		t.Error("pids kept")
	}
}
