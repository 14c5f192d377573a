package testenv

// child.go: benchmarks run their fakes (kfake, bqfake) in a child process,
// so that the CPU each side uses can be told apart.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Child is the test binary run again as a helper process that serves
// something (a broker, a BigQuery endpoint) until Stop.
type Child struct {
	Pid   int
	Addrs []string // what the child printed first: the addresses it serves
	cmd   *exec.Cmd
	stdin io.Closer
}

// StartChild runs the test binary again with env added to its environment
// (an init function of the test package sees it and calls ServeChild) and
// no tests or benchmarks, and waits for the addresses it prints.
func StartChild(env ...string) (*Child, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Child{Pid: cmd.Process.Pid, cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("child %v: %w", env, err)
	}
	c.Addrs = strings.Fields(strings.ReplaceAll(strings.TrimSpace(line), ",", " "))
	return c, nil
}

// Stop closes the child's stdin, which ends it, and waits for it.
func (c *Child) Stop() {
	c.stdin.Close()
	c.cmd.Wait()
}

// CPU returns the user and system CPU time the child used so far.
func (c *Child) CPU() time.Duration { return ProcessCPU(strconv.Itoa(c.Pid)) }

// ServeChild is the child's side of StartChild: it prints addrs, serves
// (the caller's servers run on other goroutines) until the parent closes
// stdin, then returns.
func ServeChild(addrs string) {
	fmt.Println(addrs)
	io.Copy(io.Discard, os.Stdin)
}

// ProcessCPU returns the user and system CPU time a process (a pid, or
// "self") used so far, from /proc; 0 when it cannot be read.
func ProcessCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// After the command name (which may hold spaces): utime and stime are
	// fields 14 and 15 of the line, in clock ticks (USER_HZ, 100/s).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}
