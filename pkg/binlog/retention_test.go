package binlog

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-cdc/strait/pkg/testenv"
)

func TestRetentionOf(t *testing.T) {
	inf := math.Inf(1)
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		rds      bool
		hours    *string
		rdsErr   error
		want     float64
		wantErr  bool
		wantText string // in the basis
	}{
		{name: "seconds", vars: map[string]string{"binlog_expire_logs_seconds": "3600", "expire_logs_days": "0.041667"}, want: 3600},
		{name: "MariaDB days", vars: map[string]string{"binlog_expire_logs_seconds": "0", "expire_logs_days": "0.5"}, want: 43200},
		{name: "MySQL 5.7 days", vars: map[string]string{"expire_logs_days": "3"}, want: 3 * 86400},
		{name: "never", vars: map[string]string{"binlog_expire_logs_seconds": "0", "expire_logs_days": "0.000000"}, want: inf},
		{name: "nothing set", vars: map[string]string{}, want: inf},
		{name: "MySQL auto purge off", vars: map[string]string{"binlog_expire_logs_seconds": "3600", "binlog_expire_logs_auto_purge": "OFF"}, want: inf, wantText: "auto_purge=OFF"},
		{name: "MySQL auto purge on", vars: map[string]string{"binlog_expire_logs_seconds": "3600", "binlog_expire_logs_auto_purge": "ON"}, want: 3600},
		{name: "negative", vars: map[string]string{"binlog_expire_logs_seconds": "-1"}, wantErr: true},
		{name: "not a number", vars: map[string]string{"expire_logs_days": "NaN"}, wantErr: true},
		{name: "RDS hours win", vars: map[string]string{"binlog_expire_logs_seconds": "0"}, rds: true, hours: str("168"), want: 168 * 3600, wantText: "hours=168"},
		{name: "RDS NULL: purged as soon as possible", vars: map[string]string{"binlog_expire_logs_seconds": "2592000"}, rds: true, want: 0, wantText: "NULL"},
		{name: "RDS unreadable", rds: true, rdsErr: errors.New("denied"), wantErr: true},
		{name: "RDS not hours", rds: true, hours: str("-3"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, basis, err := retentionOf(tc.vars, tc.rds, tc.hours, tc.rdsErr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("retention %v, want %v", got, tc.want)
			}
			if !strings.Contains(basis, tc.wantText) {
				t.Errorf("basis %q, want it to say %q", basis, tc.wantText)
			}
		})
	}
}

func TestHeadroom(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		name string
		st   retentionState
		want float64
	}{
		{"the file the server writes, just read", retentionState{seconds: 3600, file: fileActive, closedBy: now}, 3600},
		{"the file the server writes, read 30s ago", retentionState{seconds: 3600, file: fileActive, closedBy: now.Add(-30 * time.Second)}, 3570},
		{"closed an hour ago, a week kept", retentionState{seconds: 7 * 86400, file: fileClosed, closedBy: now.Add(-time.Hour)}, 7*86400 - 3600},
		{"overdue", retentionState{seconds: 3600, file: fileClosed, closedBy: now.Add(-2 * time.Hour)}, -3600},
		{"RDS NULL, closed", retentionState{seconds: 0, file: fileClosed, closedBy: now.Add(-time.Minute)}, -60},
		{"never purged", retentionState{seconds: math.Inf(1), file: fileClosed, closedBy: now.Add(-time.Hour)}, math.Inf(1)},
		{"the server's clock ahead", retentionState{seconds: 3600, file: fileClosed, closedBy: now.Add(time.Minute)}, 3600},
		{"purged", retentionState{seconds: 3600, file: filePurged}, math.Inf(-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.headroom(now); got != tc.want {
				t.Errorf("headroom %v, want %v", got, tc.want)
			}
		})
	}
	if got := (&retentionState{seconds: 3600}).headroom(now); !math.IsNaN(got) {
		t.Errorf("headroom of an unknown file %v, want NaN", got)
	}
}

func TestClosedBy(t *testing.T) {
	own, next := time.Unix(100, 0), time.Unix(500, 0)
	if got := closedBy(fileStart{at: own}, fileStart{at: next}); !got.Equal(next) {
		t.Errorf("next file opened by a rotation: closed by %v, want %v", got, next)
	}
	// The server stopped at an unknown time between: the file's own start
	// is the only time known to be before its close.
	if got := closedBy(fileStart{at: own}, fileStart{at: next, startup: true}); !got.Equal(own) {
		t.Errorf("next file opened by a server start: closed by %v, want %v", got, own)
	}
}

// event builds a dump packet: OK, then an event of type typ at ts.
func event(typ byte, ts uint32, body []byte) []byte {
	p := []byte{0}
	p = binary.LittleEndian.AppendUint32(p, ts)
	p = append(p, typ)
	p = append(p, make([]byte, eventHeaderLen-5)...)
	return append(p, body...)
}

func TestParseFileStart(t *testing.T) {
	fde := func(created uint32) []byte {
		body := make([]byte, fdeCreatedAt, 100)
		return binary.LittleEndian.AppendUint32(body, created)
	}
	for _, tc := range []struct {
		name    string
		p       []byte
		want    fileStart
		done    bool
		wantErr bool
	}{
		{name: "the fake rotate first", p: event(4, 0, []byte("mysql-bin.000002"))},
		{name: "opened by a rotation", p: event(formatDescription, 1000, fde(0)), want: fileStart{at: time.Unix(1000, 0)}, done: true},
		{name: "opened by a server start", p: event(formatDescription, 1000, fde(1000)), want: fileStart{at: time.Unix(1000, 0), startup: true}, done: true},
		{name: "refused", p: append([]byte{0xff, 0xc4, 0x04}, "#HY000Could not find first log file name in binary log index file"...), wantErr: true},
		{name: "empty", p: nil, wantErr: true},
		{name: "short header", p: []byte{0, 1, 2, 3}, wantErr: true},
		{name: "short description", p: event(formatDescription, 1000, []byte{4, 0}), wantErr: true},
		{name: "no timestamp", p: event(formatDescription, 0, fde(0)), wantErr: true},
		{name: "not an event", p: []byte{0xfe, 0, 0}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, done, err := parseFileStart(tc.p)
			if (err != nil) != tc.wantErr || done != tc.done || got != tc.want {
				t.Errorf("parseFileStart = %v, %v, %v; want %v, %v, error %v", got, done, err, tc.want, tc.done, tc.wantErr)
			}
		})
	}
}

func TestRetentionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	for _, name := range []string{"strait_producer_binlog_retention_seconds", "strait_producer_binlog_retention_headroom_seconds"} {
		if v := gauge(t, reg, name); !math.IsNaN(v) {
			t.Errorf("%s before a reading: %v, want NaN", name, v)
		}
	}
	m.observeRetention(&retentionState{seconds: 7200, file: fileClosed, closedBy: time.Now().Add(-time.Hour)})
	if v := gauge(t, reg, "strait_producer_binlog_retention_seconds"); v != 7200 {
		t.Errorf("retention %v, want 7200", v)
	}
	if v := gauge(t, reg, "strait_producer_binlog_retention_headroom_seconds"); v > 3600 || v < 3590 {
		t.Errorf("headroom %v, want about 3600", v)
	}
}

// gauge returns the value of the gauge name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// On a real server: the retention as set, the file the server writes, a
// closed file's close time from its successor's first event, a purged
// file, RDS's setting winning over the expire variables — and the probes
// cut no replica off.
func TestRetentionReadsTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	cfg := sourceConfig(db, "ret.*")
	must := func(stmts ...string) {
		t.Helper()
		if err := db.Exec(ctx, "", stmts...); err != nil {
			t.Fatal(err)
		}
	}
	one := func(q string) string {
		t.Helper()
		rows, err := db.Query(ctx, "", q)
		if err != nil || len(rows) == 0 || rows[0][0] == nil {
			t.Fatalf("%s: %v %v", q, rows, err)
		}
		return *rows[0][0]
	}
	must("CREATE DATABASE ret", "CREATE TABLE ret.t (id INT PRIMARY KEY)", "SET GLOBAL binlog_expire_logs_seconds = 7200")
	r := openAtCurrent(t, ctx, cfg) // a replica streaming, server_id 100
	d, err := newDialer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	file := one("SHOW MASTER STATUS")
	needed := func() (uint32, string) { return db.ServerID, file }
	read := func() *retentionState {
		t.Helper()
		st, err := readRetention(ctx, d, cfg, needed)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	if st := read(); st.seconds != 7200 || st.file != fileActive {
		t.Errorf("the file the server writes: %+v, want 7200 s and active", st)
	}
	before, _ := strconv.ParseInt(one("SELECT UNIX_TIMESTAMP()"), 10, 64)
	must("FLUSH BINARY LOGS")
	after, _ := strconv.ParseInt(one("SELECT UNIX_TIMESTAMP()"), 10, 64)
	st := read()
	if st.file != fileClosed || st.closedBy.Unix() < before || st.closedBy.Unix() > after {
		t.Errorf("a closed file: %+v, want closed between %d and %d", st, before, after)
	}
	if h := st.headroom(time.Now()); h > 7200 || h < 7200-float64(time.Now().Unix()-before)-1 {
		t.Errorf("headroom %v, want 7200 less the file's age", h)
	}
	if st, err := readRetention(ctx, d, cfg, func() (uint32, string) { return db.ServerID + 1, file }); err != nil || st.file != fileUnknown {
		t.Errorf("another server's file: %+v, %v; want unknown", st, err)
	}

	// The probes cut the streaming replica off? It still reads.
	must("INSERT INTO ret.t VALUES (1)")
	readEvents(t, ctx, r, 1)

	// RDS: its retention setting wins; NULL is 0.
	must("CREATE TABLE mysql.rds_configuration (name VARCHAR(100) PRIMARY KEY, value VARCHAR(100))",
		"INSERT INTO mysql.rds_configuration VALUES ('binlog retention hours', NULL)",
		"CREATE PROCEDURE mysql.rds_show_configuration() SELECT name, value FROM mysql.rds_configuration")
	if st := read(); st.seconds != 0 || st.headroom(time.Now()) >= 0 {
		t.Errorf("RDS with NULL hours: %+v, headroom %v; want 0 and negative", st, st.headroom(time.Now()))
	}
	must("UPDATE mysql.rds_configuration SET value = '24'")
	if st := read(); st.seconds != 86400 {
		t.Errorf("RDS 24 hours: %+v, want 86400 s", st)
	}
	must("DROP PROCEDURE mysql.rds_show_configuration", "DROP TABLE mysql.rds_configuration")

	current := one("SHOW MASTER STATUS")
	waitPurged(t, ctx, db, current)
	if st := read(); st.file != filePurged || !math.IsInf(st.headroom(time.Now()), -1) {
		t.Errorf("a purged file: %+v, want purged and -Inf", st)
	}
}

// waitPurged purges every binlog before current, retrying until the server
// has (it purges a file only once its transactions are durable).
func waitPurged(t *testing.T, ctx context.Context, db *testenv.MariaDB, current string) {
	t.Helper()
	for {
		if err := db.Exec(ctx, "", "PURGE BINARY LOGS TO '"+current+"'"); err != nil {
			t.Fatal(err)
		}
		logs, err := db.Query(ctx, "", "SHOW BINARY LOGS")
		if err == nil && len(logs) == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("binlogs before %s not purged: %v", current, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The change times of the captured tables as the server has them: NULL
// for a table not written since the start, the commit's second for one
// written, CREATE_TIME moved by an ALTER, and the engine.
func TestChangeTimesReadsTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := server.Exec(ctx, "", "CREATE DATABASE ctimes", "CREATE TABLE ctimes.idle (id INT PRIMARY KEY)",
		"CREATE TABLE ctimes.written (id INT PRIMARY KEY)", "CREATE TABLE ctimes.other (id INT PRIMARY KEY) ENGINE=MyISAM",
		"INSERT INTO ctimes.written VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, sourceConfig(server, "ctimes.*"), slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ct, err := r.ChangeTimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Started is a second late at most (the server's uptime counts whole
	// seconds): a server started less than a second ago may say so.
	now := time.Now()
	if !ct.MariaDB || ct.Oldest == "" || ct.Started.After(now.Add(time.Second)) || ct.Started.Before(now.Add(-time.Hour)) {
		t.Errorf("server facts %+v, want MariaDB, a binlog and a start within the hour", ct)
	}
	if len(ct.Tables) != 3 {
		t.Errorf("tables %v, want the 3 captured", ct.Tables)
	}
	idle, written, other := ct.Tables["ctimes.idle"], ct.Tables["ctimes.written"], ct.Tables["ctimes.other"]
	if !idle.Updated.IsZero() || idle.Created.IsZero() || idle.Engine != "InnoDB" {
		t.Errorf("a table never written: %+v, want no update time", idle)
	}
	if written.Updated.Before(written.Created) || now.Sub(written.Updated) > time.Minute {
		t.Errorf("a written table: %+v, want its update time now", written)
	}
	if other.Engine != "MyISAM" {
		t.Errorf("a MyISAM table: %+v", other)
	}

	// What the resume policy relies on: an ALTER — INSTANT too, which
	// rewrites no row — and a RENAME move CREATE_TIME (times count whole
	// seconds: the server's clock is let pass one first).
	waitClockPast(t, ctx, idle.Created)
	if err := server.Exec(ctx, "", "ALTER TABLE ctimes.idle ADD COLUMN w INT, ALGORITHM=INSTANT", "RENAME TABLE ctimes.written TO ctimes.renamed"); err != nil {
		t.Fatal(err)
	}
	if ct, err = r.ChangeTimes(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ct.Tables["ctimes.idle"].Created; !got.After(idle.Created) {
		t.Errorf("an instant ALTER left CREATE_TIME at %v (was %v)", got, idle.Created)
	}
	if got := ct.Tables["ctimes.renamed"].Created; !got.After(written.Created) {
		t.Errorf("a RENAME left CREATE_TIME at %v (was %v)", got, written.Created)
	}
}

// waitClockPast waits until the server's clock is past t.
func waitClockPast(t *testing.T, ctx context.Context, at time.Time) {
	t.Helper()
	for {
		rows, err := server.Query(ctx, "", "SELECT UNIX_TIMESTAMP()")
		if err != nil {
			t.Fatal(err)
		}
		if now, _ := strconv.ParseInt(*rows[0][0], 10, 64); now > at.Unix() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the server's clock never passed %v", at)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
