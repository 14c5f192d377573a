package binlog

// retention.go: the binlog-retention guardrail. The server keeps a closed
// binlog file for its retention (RDS's 'binlog retention hours' where
// present, else binlog_expire_logs_seconds / expire_logs_days) and may
// purge it after; the oldest file the producer still needs is the one its
// checkpoint points into. The headroom — retention less that file's age —
// is how long the producer may stay stopped or stuck before it can no
// longer resume. WatchRetention reads both every
// source.retention_check_interval into the metrics
// strait_producer_binlog_retention_seconds and
// strait_producer_binlog_retention_headroom_seconds; the alert rules warn
// on the headroom before the purge.
//
// The age of a file is not in SHOW BINARY LOGS. The server purges a file
// by its modification time, which is the moment it was closed: the moment
// the next file was opened, whose first event (the format description) the
// server stamps with that time. A replication dump opened at the next
// file's start, with server_id 0 (which, unlike any other id, cuts no
// replica of the same id off), sends that event first; the producer's
// REPLICATION SLAVE grant is all it needs. A next file opened by a server
// start (its format description carries a creation time) says nothing of
// when the file before it closed: then the file's own first event, an
// earlier time, bounds its age from above.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/service"
)

// retentionOf returns how many seconds the server keeps a closed binlog
// file, and the settings that say so. RDS's 'binlog retention hours' wins
// where present (RDS ignores the expire variables): NULL is 0, RDS purges
// binlogs as soon as it can. Elsewhere binlog_expire_logs_seconds, else
// expire_logs_days; 0 there — or MySQL's binlog_expire_logs_auto_purge=OFF
// — is +Inf: the server never purges by itself (PURGE BINARY LOGS still
// does).
func retentionOf(vars map[string]string, rds bool, rdsHours *string, rdsErr error) (float64, string, error) {
	if rds {
		switch {
		case rdsErr != nil:
			return 0, "", fmt.Errorf("RDS: cannot read binlog retention hours: %w", rdsErr)
		case rdsHours == nil:
			return 0, "RDS binlog retention hours=NULL", nil
		}
		h, err := strconv.ParseUint(*rdsHours, 10, 32)
		if err != nil {
			return 0, "", fmt.Errorf("RDS binlog retention hours=%q: not a number of hours", *rdsHours)
		}
		return float64(h) * 3600, "RDS binlog retention hours=" + *rdsHours, nil
	}
	basis := fmt.Sprintf("binlog_expire_logs_seconds=%s, expire_logs_days=%s", vars["binlog_expire_logs_seconds"], vars["expire_logs_days"])
	if v, ok := vars["binlog_expire_logs_auto_purge"]; ok && !isOn(v) {
		return math.Inf(1), basis + ", binlog_expire_logs_auto_purge=" + v, nil
	}
	secs, err := nonNegative(vars, "binlog_expire_logs_seconds")
	if err == nil && secs == 0 {
		var days float64
		days, err = nonNegative(vars, "expire_logs_days")
		secs = days * 86400
	}
	switch {
	case err != nil:
		return 0, "", err
	case secs == 0:
		return math.Inf(1), basis, nil
	}
	return secs, basis, nil
}

// nonNegative reads the number variable name of vars; an absent one is 0.
func nonNegative(vars map[string]string, name string) (float64, error) {
	v, ok := vars[name]
	if !ok {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%s=%q: not a number of seconds or days", name, v)
	}
	return f, nil
}

// neededFile is what the server says of the binlog file the checkpoint
// points into.
type neededFile int

const (
	fileUnknown neededFile = iota // not known (no checkpoint yet, or another server's)
	fileActive                    // the file the server writes: never purged
	fileClosed                    // closed at closedBy or later
	filePurged                    // no longer on the server
)

// retentionState is one reading of WatchRetention.
type retentionState struct {
	seconds float64    // the retention; +Inf: never purged
	file    neededFile // the needed file's state
	// closedBy: the needed file was closed at this time or later. For the
	// file the server writes, the time of the reading: it may close right
	// after, and the headroom then stays right however long the next
	// reading takes.
	closedBy time.Time
}

// headroom is strait_producer_binlog_retention_headroom_seconds at now:
// how long until the server may purge the needed file, the retention less
// the file's age since it was closed — negative when the server may purge
// it any time (servers purge at rotations), -Inf once purged, NaN when not
// known.
func (s *retentionState) headroom(now time.Time) float64 {
	switch s.file {
	case fileActive, fileClosed:
		return s.seconds - max(0, now.Sub(s.closedBy).Seconds())
	case filePurged:
		return math.Inf(-1)
	}
	return math.NaN()
}

// fileStart is the first event of a binlog file: when it was opened, and
// whether by a server start (its format description has a creation time;
// a rotation leaves it 0).
type fileStart struct {
	at      time.Time
	startup bool
}

// closedBy returns the earliest time the file before next may have been
// closed: when next was opened by a rotation; when next was opened by a
// server start, the file's own opening (it was written until the server
// stopped, at an unknown time in between).
func closedBy(own, next fileStart) time.Time {
	if next.startup {
		return own.at
	}
	return next.at
}

// Needed names the binlog file the producer still needs: the one its last
// committed checkpoint points into, on the server with serverID. An empty
// file: not known yet.
type Needed func() (serverID uint32, file string)

// WatchRetention reads the server's binlog retention and the age of the
// file needed() names every cfg.RetentionInterval, into m, until ctx ends.
// It opens its own connections (a failed read is logged once and tried
// again at the next interval) and is independent of the stream: it goes
// on while a run waits out a Kafka outage.
func WatchRetention(ctx context.Context, cfg *Config, m *Metrics, needed Needed, log *slog.Logger) {
	var d *dialer
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	var failing string
	tick := time.NewTicker(cfg.RetentionInterval)
	defer tick.Stop()
	for {
		var err error
		if d == nil {
			// Its connections (an SSH tunnel of its own) are no state
			// change of the producer's: their INFO lines go to DEBUG,
			// warnings stay.
			d, err = newDialer(cfg, service.LibraryLog(log))
		}
		if err == nil {
			var st *retentionState
			if st, err = readRetention(ctx, d, cfg, needed); err == nil {
				m.observeRetention(st)
			}
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && err.Error() != failing:
			log.Warn("binlog retention: cannot read it; strait_producer_binlog_retention_headroom_seconds keeps its last value", "err", err)
			failing = err.Error()
		case err == nil && failing != "":
			log.Info("binlog retention: read again")
			failing = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readRetention reads the retention and the state of the needed file.
func readRetention(ctx context.Context, d *dialer, cfg *Config, needed Needed) (*retentionState, error) {
	conn, err := d.dial(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	vars, err := globals(conn, "binlog_expire_logs_seconds", "expire_logs_days", "binlog_expire_logs_auto_purge", "basedir", "server_id")
	if err != nil {
		return nil, err
	}
	rds, hours, rdsErr := rdsRetention(conn, vars)
	st := &retentionState{}
	if st.seconds, _, err = retentionOf(vars, rds, hours, rdsErr); err != nil {
		return nil, err
	}
	id, file := needed()
	if file == "" || vars["server_id"] != strconv.FormatUint(uint64(id), 10) {
		return st, nil // fileUnknown
	}
	files, err := binaryLogs(conn)
	if err != nil {
		return nil, err
	}
	switch at := indexOf(files, file); {
	case at < 0:
		st.file = filePurged
	case at == len(files)-1:
		st.file, st.closedBy = fileActive, time.Now()
	default:
		next, err := readFileStart(ctx, d, cfg, files[at+1])
		if err != nil {
			return nil, err
		}
		own := next
		if next.startup {
			if own, err = readFileStart(ctx, d, cfg, file); err != nil {
				return nil, err
			}
		}
		st.file, st.closedBy = fileClosed, closedBy(own, next)
	}
	return st, nil
}

// globals reads the global variables names, by lower-case name.
func globals(conn *client.Conn, names ...string) (map[string]string, error) {
	rows, err := checkQuery(conn, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('"+strings.Join(names, "','")+"')")
	if err != nil {
		return nil, fmt.Errorf("read global variables: %w", err)
	}
	vars := make(map[string]string, len(rows))
	for _, r := range rows {
		vars[strings.ToLower(r["Variable_name"])] = r["Value"]
	}
	return vars, nil
}

// rdsRetention reports whether the server is RDS and, if so, its 'binlog
// retention hours' (nil: NULL). RDS's binaries live under /rdsdbbin/, and
// it has the procedure mysql.rds_show_configuration.
func rdsRetention(conn *client.Conn, vars map[string]string) (rds bool, hours *string, err error) {
	rds = strings.Contains(vars["basedir"], "/rdsdbbin/")
	if rows, err := checkQuery(conn, "SELECT COUNT(*) AS n FROM information_schema.ROUTINES "+
		"WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME = 'rds_show_configuration'"); err == nil && len(rows) == 1 && rows[0]["n"] != "0" {
		rds = true
	}
	if !rds {
		return false, nil, nil
	}
	hours, err = rdsRetentionHours(conn)
	return true, hours, err
}

// binaryLogs returns the server's binlog files, oldest first (SHOW BINARY
// LOGS: REPLICATION CLIENT / BINLOG MONITOR).
func binaryLogs(conn *client.Conn) ([]string, error) {
	rows, err := checkQuery(conn, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("list the binlog files (needs REPLICATION CLIENT / BINLOG MONITOR): %w", err)
	}
	files := make([]string, 0, len(rows))
	for _, r := range rows {
		files = append(files, r["Log_name"])
	}
	return files, nil
}

func indexOf(files []string, file string) int {
	for i, f := range files {
		if f == file {
			return i
		}
	}
	return -1
}

// Sizes in the replication protocol (MySQL's binlog event layout).
const (
	eventHeaderLen    = 19     // timestamp 4, type 1, server_id 4, size 4, log_pos 4, flags 2
	formatDescription = 15     // FORMAT_DESCRIPTION_EVENT
	fdeCreatedAt      = 2 + 50 // binlog_version, server_version, then create_timestamp
	probeEvents       = 4      // the events read at most before the format description
)

// readFileStart reads the first event of the binlog file: a replication
// dump at its start, as server_id 0, closed after the format description
// event (a fake rotate event comes before it).
func readFileStart(ctx context.Context, d *dialer, cfg *Config, file string) (fileStart, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ReadTimeout)
	defer cancel()
	conn, err := d.dial(ctx, "")
	if err != nil {
		return fileStart{}, err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	// Replicas announce that they read checksums (else the server refuses
	// the dump); MySQL 8.0.26+ also knows the variable's new name.
	if _, err := conn.Execute("SET @master_binlog_checksum = @@global.binlog_checksum, @source_binlog_checksum = @@global.binlog_checksum"); err != nil {
		return fileStart{}, fmt.Errorf("read the start of binlog %s: %w", file, err)
	}
	conn.ResetSequence()
	req := make([]byte, 4, 4+11+len(file)) // 4 bytes for the packet header, filled in by WritePacket
	req = append(req, mysql.COM_BINLOG_DUMP)
	req = binary.LittleEndian.AppendUint32(req, 4) // the position after the file's magic number
	req = binary.LittleEndian.AppendUint16(req, 0) // flags
	req = binary.LittleEndian.AppendUint32(req, 0) // server_id 0: no replica of ours is cut off
	req = append(req, file...)
	if err := conn.WritePacket(req); err != nil {
		return fileStart{}, fmt.Errorf("read the start of binlog %s: %w", file, err)
	}
	for range probeEvents {
		p, err := conn.ReadPacket()
		if err != nil {
			return fileStart{}, fmt.Errorf("read the start of binlog %s: %w", file, err)
		}
		st, done, err := parseFileStart(p)
		if err != nil {
			return fileStart{}, fmt.Errorf("read the start of binlog %s: %w", file, err)
		}
		if done {
			return st, nil
		}
	}
	return fileStart{}, fmt.Errorf("read the start of binlog %s: no format description among its first %d events", file, probeEvents)
}

// parseFileStart reads one packet of a binlog dump: done with the file's
// start when it holds the format description event.
func parseFileStart(p []byte) (fileStart, bool, error) {
	switch {
	case len(p) == 0:
		return fileStart{}, false, errors.New("an empty packet")
	case p[0] == mysql.ERR_HEADER:
		msg := p[1:]
		if len(msg) >= 2 {
			msg = msg[2:] // the error code
		}
		if len(msg) > 0 && msg[0] == '#' && len(msg) >= 6 {
			msg = msg[6:] // the SQL state
		}
		return fileStart{}, false, fmt.Errorf("the server refused: %q", msg)
	case p[0] != mysql.OK_HEADER:
		return fileStart{}, false, fmt.Errorf("packet type 0x%02x, want an event", p[0])
	}
	ev := p[1:]
	if len(ev) < eventHeaderLen {
		return fileStart{}, false, fmt.Errorf("an event of %d bytes, shorter than its header", len(ev))
	}
	if ev[4] != formatDescription {
		return fileStart{}, false, nil
	}
	body := ev[eventHeaderLen:]
	if len(body) < fdeCreatedAt+4 {
		return fileStart{}, false, fmt.Errorf("a format description of %d bytes", len(body))
	}
	at := binary.LittleEndian.Uint32(ev)
	if at == 0 {
		return fileStart{}, false, errors.New("a format description without a timestamp")
	}
	created := binary.LittleEndian.Uint32(body[fdeCreatedAt:])
	return fileStart{at: time.Unix(int64(at), 0), startup: created != 0}, true, nil
}
