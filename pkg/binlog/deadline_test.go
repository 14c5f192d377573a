package binlog

import (
	"net"
	"testing"
	"time"
)

// deadlines is a net.Conn recording the read deadlines set on it.
type deadlines struct {
	net.Conn
	set []time.Time
}

func (d *deadlines) SetReadDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return nil
}

// go-mysql asks for now + read_timeout before every packet of the binlog
// stream: the replication connection moves its deadline only when asked
// for an earlier one, or one at least read_timeout/16 later (a silent
// connection times out between 15/16 of read_timeout and read_timeout).
func TestReadDeadlineCoalesced(t *testing.T) {
	d := &deadlines{}
	timeout := 16 * time.Second
	c := &heardConn{Conn: d, heard: func(time.Time) {}, slack: timeout / 16}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 1000 { // a packet every millisecond for a second
		c.SetReadDeadline(now.Add(time.Duration(i)*time.Millisecond + timeout))
	}
	c.SetReadDeadline(now.Add(time.Second + timeout)) // a second on: the slack
	closing := now.Add(1100*time.Millisecond + 100*time.Millisecond)
	c.SetReadDeadline(closing) // go-mysql's Close unblocks the reader
	want := []time.Time{now.Add(timeout), now.Add(time.Second + timeout), closing}
	if len(d.set) != len(want) {
		t.Fatalf("deadlines set %v, want %v", d.set, want)
	}
	for i := range want {
		if !d.set[i].Equal(want[i]) {
			t.Fatalf("deadlines set %v, want %v", d.set, want)
		}
	}
	c.SetReadDeadline(time.Time{}) // none
	if last := d.set[len(d.set)-1]; !last.IsZero() {
		t.Fatalf("no deadline asked, %v set", last)
	}
}
