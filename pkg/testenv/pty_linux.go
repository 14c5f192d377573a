package testenv

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal for a process under test: what it writes to
// TTY collects, as a terminal receives it, until Close.
type PTY struct {
	TTY    *os.File // give this to the process as its stderr
	master *os.File
	out    Buffer
	done   chan struct{} // closed when the copy of master's output ends
}

// OpenPTY opens a pseudo-terminal and starts collecting what is written
// to it.
func OpenPTY() (*PTY, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0) // unlock
	}
	var tty *os.File
	if err == nil {
		tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err != nil {
		master.Close()
		return nil, err
	}
	p := &PTY{TTY: tty, master: master, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		io.Copy(&p.out, master) // until Close
	}()
	return p, nil
}

// String returns what the terminal received so far.
func (p *PTY) String() string { return p.out.String() }

// Close closes the terminal and stops collecting.
func (p *PTY) Close() {
	p.TTY.Close()
	p.master.Close()
	<-p.done
}
