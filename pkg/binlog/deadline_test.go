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
// for an earlier one, or one at least deadlineSlack later.
func TestReadDeadlineCoalesced(t *testing.T) {
	d := &deadlines{}
	c := &heardConn{Conn: d, heard: func(time.Time) {}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	timeout := time.Minute
	for i := range 1000 { // a packet every millisecond for a second
		c.SetReadDeadline(now.Add(time.Duration(i)*time.Millisecond + timeout))
	}
	c.SetReadDeadline(now.Add(1500*time.Millisecond + timeout)) // a second and a half on
	closing := now.Add(1600*time.Millisecond + 100*time.Millisecond)
	c.SetReadDeadline(closing) // go-mysql's Close unblocks the reader
	want := []time.Time{now.Add(timeout), now.Add(1500*time.Millisecond + timeout), closing}
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
