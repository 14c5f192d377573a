package binlog

import (
	"strings"
	"testing"
	"time"
)

// source.heartbeat_period must be set and shorter than source.read_timeout:
// without heartbeats the lag of an idle source cannot be known, and one
// sent less often than the read timeout drops every idle connection.
func TestHeartbeatPeriodValidated(t *testing.T) {
	for _, tc := range []struct {
		period, timeout time.Duration
		ok              bool
	}{
		{period: 5 * time.Second, timeout: time.Minute, ok: true},
		{period: 0, timeout: time.Minute},
		{period: time.Minute, timeout: time.Minute},
		{period: 2 * time.Minute, timeout: time.Minute},
	} {
		c := &Config{Host: "db", User: "strait"}
		c.Defaults()
		c.HeartbeatPeriod, c.ReadTimeout = tc.period, tc.timeout
		err := c.Validate()
		if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "source.heartbeat_period") {
			t.Errorf("heartbeat_period %s, read_timeout %s: %v, want ok %v", tc.period, tc.timeout, err, tc.ok)
		}
	}
	var c Config
	c.Defaults()
	if c.HeartbeatPeriod != 5*time.Second {
		t.Errorf("default heartbeat_period %s, want 5s", c.HeartbeatPeriod)
	}
}
