//go:build linux

package service

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// On a terminal the process keeps its progress line under the log.
func TestProgressOnATerminal(t *testing.T) {
	pty, err := testenv.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	p, err := Start("127.0.0.1:0", "info", "text", false, pty.TTY)
	if err != nil {
		t.Fatal(err)
	}
	p.Progress("snapshot: 10%")
	p.Log.Info("a state change")
	p.Close()
	// The line; the log line written over it and the line again under
	// it; the line removed at Close.
	want := regexp.MustCompile(`\r\x1b\[Ksnapshot: 10%\r\x1b\[Ktime=\S+ level=INFO msg="a state change"\r\nsnapshot: 10%\r\x1b\[K$`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !want.MatchString(pty.String()) {
		select {
		case <-ctx.Done():
			t.Fatalf("the terminal got %q, want it to match %q", pty.String(), want)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n := strings.Count(pty.String(), "snapshot: 10%"); n != 2 {
		t.Errorf("the line drawn %d times, want 2: %q", n, pty.String())
	}
}
