package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// readmeSection is the README section whose commands the test runs.
const readmeSection = "## Getting started on your own database"

// block is a fenced block of the README: its language and its text.
type block struct {
	lang string
	text string
}

// sectionBlocks returns the fenced blocks of the README section titled
// heading, in order.
func sectionBlocks(readme, heading string) ([]block, error) {
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		return nil, fmt.Errorf("README has no section %q", heading)
	}
	sec := readme[i+len(heading)+2:]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	var blocks []block
	var cur *block
	for _, line := range strings.Split(sec, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{lang: strings.TrimPrefix(line, "```")}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("section %q: a fenced block is not closed", heading)
	}
	return blocks, nil
}

// commands splits a shell block into its commands: one per line, comments
// and blank lines left out, a trailing backslash joining the next line.
func commands(text string) []string {
	var cmds []string
	var cur string
	for _, line := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(line); cur == "" && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s
			continue
		}
		cmds = append(cmds, strings.TrimSpace(cur+line))
		cur = ""
	}
	return cmds
}

// A newcomer's path through the README, run as written: the section
// "Getting started on your own database" against a fresh MariaDB standing
// for the reader's server, whose address is given the way the README asks
// (STRAIT_SOURCE_HOST and STRAIT_SOURCE_PORT; the other exported values
// are used as written). Its SQL runs as the administrator; its shell blocks
// run in order in one bash session, as in a terminal, from a copy of the
// repository's top level (so bin/ and .strait/ are the test's own). A
// command run in the background (&) whose output the README shows is
// waited for until the last line shown appears; verify is run again while
// it fails, for at most 2 minutes, as the README says; the section must end
// with verify's "every table matches".
func TestReadmeGettingStarted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := sectionBlocks(string(readme), readmeSection)
	if err != nil {
		t.Fatal(err)
	}
	db, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	// The reader's database: a table with rows already in it.
	if err := db.Exec(ctx, "", "CREATE DATABASE shop"); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(ctx, "shop",
		"CREATE TABLE shop.customers (id BIGINT PRIMARY KEY, name VARCHAR(60) NOT NULL, email VARCHAR(80), signed_up DATE)",
		"INSERT INTO shop.customers SELECT seq, CONCAT('customer ', seq), IF(seq % 3 = 0, NULL, CONCAT('c', seq, '@example.com')), '2024-01-01' + INTERVAL seq DAY FROM seq_1_to_200",
	); err != nil {
		t.Fatal(err)
	}

	work := repoCopy(t)
	sh := startShell(t, work)
	defer sh.stop(t)

	step := 0
	for i, b := range blocks {
		switch b.lang {
		case "sql":
			for _, stmt := range strings.Split(b.text, ";") {
				if stmt = strings.TrimSpace(stmt); stmt != "" {
					if err := db.Exec(ctx, "", stmt); err != nil {
						t.Fatalf("README SQL %q: %v", stmt, err)
					}
				}
			}
		case "sh":
			cmds := commands(b.text)
			for _, c := range cmds {
				c = yourServer(t, c, db)
				step++
				t.Logf("$ %s", c)
				code := sh.run(ctx, t, step, c)
				// The README says to run verify again while the consumer
				// has not created a table yet: so does the test, for a
				// while.
				for deadline := time.Now().Add(2 * time.Minute); code != 0 && strings.HasPrefix(c, "bin/producer verify") && time.Now().Before(deadline); {
					step++
					t.Logf("$ %s (again)", c)
					code = sh.run(ctx, t, step, c)
				}
				if code != 0 {
					t.Fatalf("%q exited with %d; session:\n%s%s", c, code, sh.out.String(), logs(work))
				}
			}
			// A command left running in the background is ready when the
			// last line of the output the README shows for it appears.
			if last := cmds[len(cmds)-1]; strings.HasSuffix(last, "&") && i+1 < len(blocks) && blocks[i+1].lang == "text" {
				lines := strings.Split(strings.TrimSpace(blocks[i+1].text), "\n")
				want := lines[len(lines)-1]
				if err := sh.waitFor(ctx, want); err != nil {
					t.Fatalf("waiting for %q after %q: %v; session:\n%s%s", want, last, err, sh.out.String(), logs(work))
				}
			}
		}
	}
	t.Logf("session:\n%s", sh.out.String())
	if !strings.Contains(sh.out.String(), "every table matches") {
		t.Fatalf("the section does not end with verify's \"every table matches\"%s", logs(work))
	}
}

// yourServer gives an export of the README that names the reader's server
// the test's MariaDB instead; any other command is run as written.
func yourServer(t *testing.T, cmd string, db *testenv.MariaDB) string {
	t.Helper()
	rest, ok := strings.CutPrefix(cmd, "export ")
	if !ok {
		return cmd
	}
	var out []string
	for _, a := range strings.Fields(rest) {
		name, _, ok := strings.Cut(a, "=")
		if !ok {
			t.Fatalf("README export %q: not NAME=value", a)
		}
		switch name {
		case "STRAIT_SOURCE_HOST":
			a = name + "=" + db.Host
		case "STRAIT_SOURCE_PORT":
			a = name + "=" + strconv.Itoa(db.Port)
		}
		out = append(out, a)
	}
	return "export " + strings.Join(out, " ")
}

// repoCopy returns a directory holding the repository's top-level entries
// as symbolic links, except its build output and local state, so that the
// README's relative paths (bin/, .strait/) are the test's own.
func repoCopy(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, e := range entries {
		switch e.Name() {
		case ".git", "bin", ".demo", ".strait":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

// logs returns the binaries' logs the README's commands write, for a
// failure's message.
func logs(work string) string {
	var b strings.Builder
	for _, name := range []string{"producer.log", "consumer.log"} {
		if l, err := os.ReadFile(filepath.Join(work, ".strait", name)); err == nil {
			fmt.Fprintf(&b, "\n.strait/%s:\n%s", name, l)
		}
	}
	return b.String()
}

// shell is one bash session fed command by command, like a terminal: the
// variables it exports and the jobs it starts in the background stay.
type shell struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *testenv.Buffer // stdout and stderr of the session and its jobs
}

func startShell(t *testing.T, dir string) *shell {
	t.Helper()
	sh := &shell{out: &testenv.Buffer{}}
	sh.cmd = exec.Command("bash", "--noprofile", "--norc")
	sh.cmd.Dir = dir
	sh.cmd.Stdout, sh.cmd.Stderr = sh.out, sh.out
	// Its own process group: the jobs it leaves running are stopped with it.
	sh.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRAIT_") {
			sh.cmd.Env = append(sh.cmd.Env, kv)
		}
	}
	var err error
	if sh.in, err = sh.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sh.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return sh
}

// run runs one command and returns its exit status.
func (sh *shell) run(ctx context.Context, t *testing.T, step int, cmd string) int {
	t.Helper()
	marker := fmt.Sprintf("@@ step %d exit ", step)
	if _, err := fmt.Fprintf(sh.in, "%s\necho \"%s$?\"\n", cmd, marker); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if err := sh.waitFor(ctx, marker); err != nil {
		t.Fatalf("%q: %v; session:\n%s", cmd, err, sh.out.String())
	}
	s := sh.out.String()
	s = s[strings.Index(s, marker)+len(marker):]
	code, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(s, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("%q: exit status: %v", cmd, err)
	}
	return code
}

// waitFor waits until the session's output holds s, at most 4 minutes
// (go run compiles the devstack first).
func (sh *shell) waitFor(ctx context.Context, s string) error {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(sh.out.String(), s) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// stop ends the session and every job it left running: SIGTERM to its
// process group (the binaries drain and commit), SIGKILL after 30 s.
func (sh *shell) stop(t *testing.T) {
	sh.in.Close()
	pgid := sh.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { sh.cmd.Wait(); close(done) }()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-deadline:
			t.Errorf("the session's jobs did not stop within 30 s of SIGTERM; killed")
			syscall.Kill(-pgid, syscall.SIGKILL)
		case <-tick.C:
		}
	}
	<-done
}
