package testenv

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Forwarder relays TCP connections from a loopback port of its own to
// another address while up; while down nothing listens on the port, so
// connecting to it is refused, and the connections it relayed are cut.
type Forwarder struct {
	Addr string // its port, fixed for the test
	to   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// NewForwarder returns a forwarder to the host:port of to (an address or
// a URL), down; it is stopped at the end of the test.
func NewForwarder(t testing.TB, to string) *Forwarder {
	t.Helper()
	if u, err := url.Parse(to); err == nil && u.Host != "" {
		to = u.Host
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{Addr: ln.Addr().String(), to: to, conns: map[net.Conn]bool{}}
	ln.Close()
	t.Cleanup(f.Down)
	return f
}

// Up listens on the forwarder's port and relays what connects.
func (f *Forwarder) Up(t testing.TB) {
	t.Helper()
	f.listen(t, true)
}

// Hang listens on the forwarder's port and holds what connects without
// an answer, as an endpoint that hangs does.
func (f *Forwarder) Hang(t testing.TB) {
	t.Helper()
	f.listen(t, false)
}

// listen accepts connections on the forwarder's port and, with relay,
// relays them.
func (f *Forwarder) listen(t testing.TB, relay bool) {
	t.Helper()
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		t.Fatalf("forwarder: %v", err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			if !relay {
				if !f.track(in) {
					return
				}
				continue
			}
			out, err := net.Dial("tcp", f.to)
			if err != nil {
				in.Close()
				continue
			}
			if !f.track(in, out) {
				return
			}
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
}

// track remembers a relayed connection's two ends, or closes them and
// returns false when the forwarder went down meanwhile.
func (f *Forwarder) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		f.conns[c] = true
	}
	return true
}

// Down stops listening and cuts every relayed connection.
func (f *Forwarder) Down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
}
