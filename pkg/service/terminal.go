package service

import (
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// A process whose stderr is a terminal (someone runs it by hand) shows its
// progress — a snapshot's — as one line under the log, overwritten in
// place. The log keeps going to the same terminal, in its format (text or
// JSON): each log record clears the line, is written, and the line is drawn
// again below it, so the log reads as it would without the line. Anywhere
// else (a pipe, a file, a container's log) there is no such line: the log's
// own progress records are the account.

// clearLine moves to the start of the terminal's line and erases it.
const clearLine = "\r\x1b[K"

// statusEvery is how often the status line is redrawn at most.
const statusEvery = 100 * time.Millisecond

// statusLine is the writer of the log on a terminal, keeping one status
// line under what is written through it. Safe for concurrent use.
type statusLine struct {
	w     io.Writer
	width int // of the terminal, in columns: a longer line would wrap, and \r not go back far enough

	mu    sync.Mutex
	line  string    // shown now; "" none
	drawn time.Time // when line was drawn
}

// terminalOf returns the status line writing to w when w is a terminal,
// else nil.
func terminalOf(w io.Writer) *statusLine {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	return &statusLine{w: w, width: width}
}

// Write writes p (a log record) in place of the status line, then draws
// the line again under it.
func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line == "" {
		return s.w.Write(p)
	}
	b := make([]byte, 0, len(clearLine)+len(p)+len(s.line))
	b = append(append(append(b, clearLine...), p...), s.line...)
	if _, err := s.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// set shows line as the status line ("" removes it), cut to the
// terminal's width. A line comes at most every statusEvery: one sooner is
// dropped (the next one shows the news).
func (s *statusLine) set(line string, now time.Time) {
	if r := []rune(line); len(r) >= s.width {
		line = string(r[:s.width-1])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if line == s.line || line != "" && s.line != "" && now.Sub(s.drawn) < statusEvery {
		return
	}
	io.WriteString(s.w, clearLine+line)
	s.line, s.drawn = line, now
}

// Progress shows line under the log when the log goes to a terminal, in
// place of the one shown before; "" removes it. Elsewhere it does nothing.
func (p *Process) Progress(line string) {
	if p.term != nil {
		p.term.set(line, time.Now())
	}
}
