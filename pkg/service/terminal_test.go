package service

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The status line stays under the log: a log line clears it, is written,
// and the line is drawn again; the line is redrawn at most every
// statusEvery, removed with "", and cut to the terminal's width.
func TestStatusLineUnderTheLog(t *testing.T) {
	var out bytes.Buffer
	s := &statusLine{w: &out, width: 20}
	at := time.Unix(1700000000, 0)
	step := func(what string, do func(), want string) {
		t.Helper()
		out.Reset()
		do()
		if diff := cmp.Diff(out.String(), want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", what, diff)
		}
	}
	logLine := func(line string) func() { return func() { s.Write([]byte(line)) } }
	step("a log line without status", logLine("a\n"), "a\n")
	step("a status", func() { s.set("10%", at) }, "\r\x1b[K10%")
	step("a log line under it", logLine("b\n"), "\r\x1b[Kb\n10%")
	step("a status too soon", func() { s.set("11%", at.Add(statusEvery/2)) }, "")
	step("a status later", func() { s.set("12%", at.Add(statusEvery)) }, "\r\x1b[K12%")
	step("a long status", func() { s.set(strings.Repeat("é", 30), at.Add(2*statusEvery)) }, "\r\x1b[K"+strings.Repeat("é", 19))
	step("no status", func() { s.set("", at.Add(2*statusEvery)) }, "\r\x1b[K")
	step("a log line after it", logLine("c\n"), "c\n")
}

// Progress writes nothing to a log that is not a terminal.
func TestNoProgressWithoutATerminal(t *testing.T) {
	var out bytes.Buffer
	p, err := Start("127.0.0.1:0", "info", "text", false, &out)
	if err != nil {
		t.Fatal(err)
	}
	p.Progress("snapshot: 10%")
	p.Close()
	if strings.Contains(out.String(), "snapshot: 10%") || strings.Contains(out.String(), "\r") {
		t.Errorf("a progress line written to a log that is not a terminal:\n%q", out.String())
	}
}
