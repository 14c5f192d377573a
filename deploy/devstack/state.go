package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// resetDemo makes a demo directory used by an earlier run fit for a new
// one, and says so in one line.
//
// Why reset rather than reuse: the demo's MariaDB lives in a temporary data
// directory that ends with its run, and so do the registry and the local
// BigQuery, while Kafka's topics and the producer's checkpoint are kept
// under -dir. Reused, that checkpoint names a GTID of the earlier server,
// which the new server's binlog never had ("the source no longer has the
// binlog to continue from gtid …"). So every piece starts afresh together.
func resetDemo(dir string, out io.Writer) error {
	stopped := stopLeftovers(dir)
	var found []string
	for _, name := range []string{"kafka", "producer.log", "consumer.log", "producer.yaml", "consumer.yaml", "pids"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return nil
	}
	why := "its Kafka topics and checkpoint belong to an earlier run's MariaDB, which ended with that run"
	if stopped > 0 {
		why += fmt.Sprintf("; stopped %d processes it left running", stopped)
	}
	fmt.Fprintf(out, "resetting %s: %s\n", dir, why)
	for _, name := range found {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("reset %s: %w", dir, err)
		}
	}
	return nil
}

// stopLeftovers stops the processes an interrupted run noted in <dir>/pids
// that are still running (what make demo-down does), and returns how many.
// It signals only processes that are one of the demo's programs: a pid
// may have been reused by something else since.
func stopLeftovers(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		return 0
	}
	var alive []int
	var dataDirs []string
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || !isDemoProcess(pid) {
			continue
		}
		if d := mariadbTempDir(pid); d != "" {
			dataDirs = append(dataDirs, d)
		}
		if syscall.Kill(pid, syscall.SIGTERM) == nil {
			alive = append(alive, pid)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range alive {
		for isDemoProcess(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // polling for an exit we caused: no event to wait on for a non-child
		}
		if isDemoProcess(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, d := range dataDirs {
		os.RemoveAll(d) // what the server's Stop would have removed
	}
	return len(alive)
}

// mariadbTempDir returns the temporary directory of the demo's MariaDB
// running as pid (testenv starts it with --datadir=<tmp>/strait-mariadb-*/data),
// or "".
func mariadbTempDir(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	for _, arg := range strings.Split(string(b), "\x00") {
		if data, ok := strings.CutPrefix(arg, "--datadir="); ok {
			if d := filepath.Dir(data); strings.HasPrefix(filepath.Base(d), "strait-mariadb-") {
				return d
			}
		}
	}
	return ""
}

// isDemoProcess reports whether pid runs one of the demo's programs.
func isDemoProcess(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	switch strings.TrimSpace(string(b)) {
	case "mariadbd", "mysqld", "producer", "consumer":
		return true
	}
	return false
}
