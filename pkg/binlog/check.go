package binlog

// The source half of `producer check`: Check reads everything it needs from
// the server once (inspectSource), then each check is a small function of
// what was read, so one missing privilege or variable never hides the others.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/strait-cdc/strait/pkg/cdc"
)

// Check connects to the source and reports, one result per line of
// `producer check`, whether the server is set up the way strait needs it:
// binlog settings, GTIDs, retention, timeouts, privileges, version and
// server_id. It runs every check even when some fail; only when it cannot
// connect it returns the single FAIL result "connect".
func Check(ctx context.Context, cfg *Config) []cdc.CheckResult {
	c := *cfg
	c.Defaults()
	d, err := newDialer(&c, slog.New(slog.DiscardHandler))
	if err != nil {
		return []cdc.CheckResult{connectFail(err)}
	}
	defer d.Close()
	conn, err := d.dial(ctx, "")
	if err != nil {
		return []cdc.CheckResult{connectFail(err)}
	}
	defer conn.Close()
	// go-mysql queries take no context: a cancelled ctx closes the connection.
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	s, err := inspectSource(conn)
	if err != nil {
		return []cdc.CheckResult{connectFail(err)}
	}
	res := []cdc.CheckResult{{Name: "connect", Status: cdc.Pass,
		Detail: fmt.Sprintf("%s as %s%s, %s", c.addr(), s.user, d.via(), d.transport(conn))}}
	for _, st := range checkSettings {
		res = append(res, s.checkSetting(st))
	}
	res = append(res, s.checkRowValueOptions(), s.checkGTID(), s.checkReplicaUpdates(), s.checkRetention())
	for _, m := range checkMinimums {
		res = append(res, s.checkMinimum(m.name, m.min))
	}
	res = append(res, s.checkReadOnly())
	res = append(res, s.checkPrivileges(&c)...)
	res = append(res, s.checkCaptured(&c), s.checkColumnTypes(conn, &c))
	if len(c.Columns) > 0 {
		res = append(res, checkColumns(conn, &c, strings.EqualFold(s.vars["binlog_row_metadata"], "FULL")))
	}
	res = append(res, s.checkChecksum(), s.checkVersion(c.Flavor), s.checkServerID(c.ServerID), s.checkReplicas(c.ServerID))
	return res
}

// Preflight is the verdict of Check that `producer run` applies before it
// streams, so that check and run never disagree: every FAIL stops it, with
// its detail and fix, but two that run handles in its own way — a server_id
// another replica uses (the server itself cuts one of the two off, and run
// names the collision then: a producer restarted while its predecessor's
// connection lingers must not refuse to start), and tables with a column
// strait cannot read (run leaves those tables out, each named in its log;
// see Reader.Refused).
func Preflight(ctx context.Context, cfg *Config) error {
	var failed []cdc.CheckResult
	for _, r := range Check(ctx, cfg) {
		if r.Status == cdc.Fail && r.Name != checkReplicasName && r.Name != checkTypesName {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &PreflightError{Failed: failed}
}

// PreflightError is the FAIL results of Check that stop `producer run`.
type PreflightError struct{ Failed []cdc.CheckResult }

func (e *PreflightError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the source is not set up for exact capture (producer check says the same): ")
	for i, r := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s — fix: %s", r.Name, r.Detail, r.Fix)
	}
	return b.String()
}

func connectFail(err error) cdc.CheckResult {
	return cdc.CheckResult{Name: "connect", Status: cdc.Fail, Detail: err.Error(),
		Fix: "check source.host, source.port, source.user and the password (STRAIT_SOURCE_PASSWORD or source.password_file); " +
			"check that the network (security group, firewall, VPC routing) lets this host reach the port, " +
			"and the SSH bastion settings when the source is reached through one"}
}

// settingCheck is a global variable that must have exactly one value.
type settingCheck struct {
	name    string
	want    string
	status  cdc.Status // the result when the value differs
	why     string     // what goes wrong otherwise
	fix     string
	missing string // the fix when the server does not know the variable
}

var checkSettings = []settingCheck{
	{name: "log_bin", want: "ON", status: cdc.Fail, why: "without a binary log there is nothing to stream",
		fix: "RDS: set the backup retention period to 7 days (automated backups turn the binlog on; a read replica needs its own automated backups); " +
			"self-managed: add log_bin=mysql-bin to my.cnf and restart"},
	{name: "binlog_format", want: "ROW", status: cdc.Fail, why: "only row events carry the changed rows",
		fix: paramFix("binlog_format", "ROW", true)},
	{name: "binlog_row_image", want: "FULL", status: cdc.Fail, why: "updates and deletes must carry every column",
		fix: paramFix("binlog_row_image", "FULL", true)},
	{name: "binlog_row_metadata", want: "FULL", status: cdc.Warn,
		why:     "column names and keys come from information_schema instead of the binlog, which a concurrent DDL can mislead",
		fix:     paramFix("binlog_row_metadata", "FULL", true),
		missing: "upgrade to MySQL >= 8.0.1 or MariaDB >= 10.5, which have binlog_row_metadata=FULL"},
}

// checkMinimums are the timeouts of the original RDS parameter group: below them
// long snapshot reads and idle binlog connections are cut by the server.
var checkMinimums = []struct {
	name string
	min  int64
}{
	{"net_read_timeout", 3600},
	{"net_write_timeout", 3600},
	{"wait_timeout", 86400},
}

// paramFix is the fix for a global variable on RDS and on a self-managed server.
func paramFix(name, value string, reboot bool) string {
	then, quoted := " (dynamic: no reboot)", value
	if reboot {
		then = " and reboot"
	}
	if _, err := strconv.Atoi(value); err != nil {
		quoted = "'" + value + "'"
	}
	return fmt.Sprintf("RDS: set %s=%s in the DB parameter group%s; self-managed: SET GLOBAL %s=%s and add %s=%s to my.cnf",
		name, value, then, name, quoted, name, value)
}

// sourceFacts is what Check read from the server.
type sourceFacts struct {
	vars         map[string]string // global variables by name
	mariadb      bool
	major, minor int
	user         string   // CURRENT_USER(): user@host
	grants       []string // SHOW GRANTS, with the grants of active roles
	grantsErr    error
	databases    []string // SHOW DATABASES: the ones the user can see
	replicaOf    string   // host:port of the server's own source, "" when it replicates from nothing
	replicaErr   error    // why the replica status is unknown
	rds          bool
	rdsRetention *string // RDS 'binlog retention hours'; nil is NULL
	rdsErr       error
	tables       []string // "db.table" of the base tables the user can see, outside the system schemas
	tablesErr    error
	replicas     []map[string]string // SHOW SLAVE HOSTS
	replicasErr  error
}

// inspectSource reads what the checks need. Only a failure to read the global
// variables is an error; other failures are kept for the check they affect.
func inspectSource(conn *client.Conn) (*sourceFacts, error) {
	names := []string{"binlog_row_value_options", "gtid_mode", "enforce_gtid_consistency", "gtid_current_pos", "gtid_strict_mode",
		"log_slave_updates", "log_replica_updates", "binlog_expire_logs_seconds", "expire_logs_days",
		"binlog_expire_logs_auto_purge", "read_only", "binlog_checksum", "server_id", "version", "version_comment", "basedir"}
	for _, st := range checkSettings {
		names = append(names, st.name)
	}
	for _, m := range checkMinimums {
		names = append(names, m.name)
	}
	rows, err := checkQuery(conn, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('"+strings.Join(names, "','")+"')")
	if err != nil {
		return nil, fmt.Errorf("read global variables: %w", err)
	}
	s := &sourceFacts{vars: make(map[string]string)}
	for _, r := range rows {
		s.vars[strings.ToLower(r["Variable_name"])] = r["Value"]
	}
	s.mariadb, s.major, s.minor = parseServerVersion(s.vars["version"])

	if rows, err := checkQuery(conn, "SELECT CURRENT_USER() AS u"); err == nil && len(rows) == 1 {
		s.user = rows[0]["u"]
	}
	s.grants, s.grantsErr = showGrants(conn, s.mariadb, s.major)
	if rows, err := checkQuery(conn, "SHOW DATABASES"); err == nil {
		for _, r := range rows {
			s.databases = append(s.databases, r["Database"])
		}
	}
	s.replicaOf, s.replicaErr = replicaSource(conn)
	if rows, err := checkQuery(conn, `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS t FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1`); err == nil {
		for _, r := range rows {
			s.tables = append(s.tables, r["t"])
		}
	} else {
		s.tablesErr = err
	}
	s.replicas, s.replicasErr = checkQuery(conn, "SHOW SLAVE HOSTS") // MySQL 8.4 knows only SHOW REPLICAS
	if s.replicasErr != nil {
		s.replicas, s.replicasErr = checkQuery(conn, "SHOW REPLICAS")
	}

	// RDS keeps binlogs as long as 'binlog retention hours' says and ignores
	// the expire variables.
	s.rds, s.rdsRetention, s.rdsErr = rdsRetention(conn, s.vars)
	return s, nil
}

// checkQuery runs q and returns the rows of its first result set as column
// name → value; a NULL column is absent. It also reads the several results
// of a CALL.
func checkQuery(conn *client.Conn, q string) ([]map[string]string, error) {
	var rows []map[string]string
	var qerr error
	_, err := conn.ExecuteMultiple(q, func(r *mysql.Result, err error) {
		if err != nil {
			qerr = err
			return
		}
		if rows != nil || r == nil || r.Resultset == nil || len(r.Fields) == 0 {
			return
		}
		rows = make([]map[string]string, 0, len(r.Values))
		for _, vals := range r.Values {
			row := make(map[string]string, len(vals))
			for i, v := range vals {
				switch v.Type {
				case mysql.FieldValueTypeNull:
				case mysql.FieldValueTypeString:
					row[string(r.Fields[i].Name)] = string(v.AsString())
				default:
					row[string(r.Fields[i].Name)] = fmt.Sprint(v.Value())
				}
			}
			rows = append(rows, row)
		}
	})
	if err == nil {
		err = qerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	return rows, nil
}

// parseServerVersion reads flavor and major.minor from @@version, e.g.
// "10.11.19-MariaDB-0+deb12u1-log" or "8.0.35".
func parseServerVersion(v string) (mariadb bool, major, minor int) {
	mariadb = strings.Contains(strings.ToLower(v), "mariadb")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	}
	return mariadb, major, minor
}

// atLeast reports whether the server version is at least major.minor.
func (s *sourceFacts) atLeast(major, minor int) bool {
	return s.major > major || s.major == major && s.minor >= minor
}

// showGrants returns the grants in effect for this session. MariaDB's SHOW
// GRANTS includes the active role's grants; MySQL 8 needs USING to expand them.
func showGrants(conn *client.Conn, mariadb bool, major int) ([]string, error) {
	q := "SHOW GRANTS"
	if !mariadb && major >= 8 {
		if rows, err := checkQuery(conn, "SELECT CURRENT_ROLE() AS r"); err == nil && len(rows) == 1 && rows[0]["r"] != "NONE" && rows[0]["r"] != "" {
			q = "SHOW GRANTS FOR CURRENT_USER() USING " + rows[0]["r"]
		}
	}
	rows, err := checkQuery(conn, q)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, r := range rows {
		for _, v := range r { // one column, named "Grants for user@host"
			lines = append(lines, v)
		}
	}
	return lines, nil
}

// replicaSource returns the host:port the server replicates from, or "".
func replicaSource(conn *client.Conn) (string, error) {
	rows, err := checkQuery(conn, "SHOW REPLICA STATUS") // MySQL >= 8.0.22, MariaDB >= 10.5.1
	if err != nil {
		rows, err = checkQuery(conn, "SHOW SLAVE STATUS")
	}
	if err != nil || len(rows) == 0 {
		return "", err
	}
	host, port := rows[0]["Source_Host"], rows[0]["Source_Port"]
	if host == "" {
		host, port = rows[0]["Master_Host"], rows[0]["Master_Port"]
	}
	return net.JoinHostPort(host, port), nil
}

// rdsRetentionHours reads RDS's 'binlog retention hours'; nil is NULL. It
// reads the table behind mysql.rds_show_configuration first: a CALL needs
// CLIENT_MULTI_RESULTS on the connection (else ERROR 1312) and EXECUTE on it.
func rdsRetentionHours(conn *client.Conn) (*string, error) {
	rows, err := checkQuery(conn, "SELECT name, value FROM mysql.rds_configuration")
	if err != nil {
		var callErr error
		if rows, callErr = checkQuery(conn, "CALL mysql.rds_show_configuration"); callErr != nil {
			return nil, errors.Join(err, callErr)
		}
	}
	for _, r := range rows {
		if strings.EqualFold(r["name"], "binlog retention hours") {
			if v, ok := r["value"]; ok {
				return &v, nil
			}
			return nil, nil
		}
	}
	return nil, nil
}

// isOn reports whether a boolean variable is on.
func isOn(v string) bool { return strings.EqualFold(v, "ON") || v == "1" }

func (s *sourceFacts) checkSetting(st settingCheck) cdc.CheckResult {
	r := cdc.CheckResult{Name: st.name}
	v, ok := s.vars[st.name]
	switch {
	case !ok:
		r.Status, r.Detail, r.Fix = st.status, st.name+" is unknown to this server: "+st.why, st.missing
		if r.Fix == "" {
			r.Fix = st.fix
		}
	case strings.EqualFold(v, st.want) || st.want == "ON" && isOn(v):
		r.Status, r.Detail = cdc.Pass, st.name+"="+v
	default:
		r.Status, r.Detail, r.Fix = st.status, st.name+"="+v+": "+st.why, st.fix
	}
	return r
}

func (s *sourceFacts) checkMinimum(name string, min int64) cdc.CheckResult {
	r := cdc.CheckResult{Name: name, Status: cdc.Pass, Detail: name + "=" + s.vars[name]}
	if n, err := strconv.ParseInt(s.vars[name], 10, 64); err != nil || n < min {
		r.Status = cdc.Warn
		r.Detail += fmt.Sprintf(" (below %d of the original RDS parameter group: long snapshots and idle binlog connections get cut)", min)
		r.Fix = paramFix(name, strconv.FormatInt(min, 10), false)
	}
	return r
}

// checkRowValueOptions fails MySQL 8's PARTIAL_JSON: an update of a JSON
// column then logs a diff, not the new document, which the reader refuses.
func (s *sourceFacts) checkRowValueOptions() cdc.CheckResult {
	v, ok := s.vars["binlog_row_value_options"]
	r := cdc.CheckResult{Name: "binlog_row_value_options", Status: cdc.Pass, Detail: "binlog_row_value_options=" + v}
	switch {
	case !ok:
		r.Detail = "binlog_row_value_options is MySQL 8's; this server logs whole JSON values"
	case strings.Contains(strings.ToUpper(v), "PARTIAL_JSON"):
		r.Status = cdc.Fail
		r.Detail += ": updates of JSON columns carry a diff, not the new document"
		r.Fix = paramFix("binlog_row_value_options", "", false)
	}
	return r
}

func (s *sourceFacts) checkGTID() cdc.CheckResult {
	r := cdc.CheckResult{Name: "gtid", Status: cdc.Pass}
	if s.mariadb {
		pos := s.vars["gtid_current_pos"]
		if pos == "" {
			pos = "(empty)"
		}
		r.Detail = fmt.Sprintf("MariaDB GTIDs are always on: gtid_current_pos=%s, gtid_strict_mode=%s", pos, s.vars["gtid_strict_mode"])
		return r
	}
	mode, enforce := s.vars["gtid_mode"], s.vars["enforce_gtid_consistency"]
	r.Detail = fmt.Sprintf("gtid_mode=%s, enforce_gtid_consistency=%s", mode, enforce)
	if !isOn(mode) || !isOn(enforce) {
		r.Status = cdc.Warn
		r.Detail += ": file/position mode works, but after a failover to another server the position is lost"
		r.Fix = "RDS: set gtid-mode=ON and enforce_gtid_consistency=ON in the DB parameter group and reboot; " +
			"self-managed: SET GLOBAL enforce_gtid_consistency=ON, step gtid_mode through OFF_PERMISSIVE and ON_PERMISSIVE to ON, and persist both in my.cnf"
	}
	return r
}

func (s *sourceFacts) checkReplicaUpdates() cdc.CheckResult {
	name := "log_slave_updates"
	if _, ok := s.vars["log_replica_updates"]; ok { // MySQL >= 8.0.26
		name = "log_replica_updates"
	}
	v := s.vars[name]
	r := cdc.CheckResult{Name: name, Status: cdc.Pass, Detail: name + "=" + v}
	fix := "RDS: enable automated backups on the read replica (RDS then logs replicated changes); " +
		"self-managed: add " + name + "=ON to my.cnf and restart"
	switch {
	case isOn(v) && s.replicaOf != "":
		r.Detail += " on a replica of " + s.replicaOf
	case isOn(v):
	case s.replicaOf != "":
		r.Status, r.Fix = cdc.Fail, fix
		r.Detail += " on a replica of " + s.replicaOf + ": replicated changes never reach this server's binlog"
	case s.replicaErr != nil:
		r.Status, r.Fix = cdc.Warn, fix
		r.Detail += fmt.Sprintf(": cannot tell whether the server is a replica (%v); a replica needs it ON", s.replicaErr)
	default:
		r.Detail += ": not a replica, so every change is written to this server's binlog"
	}
	return r
}

// wantRetentionHours is 7 days: the backup retention of the original setup, and
// how long the producer may be stopped without a new snapshot.
const wantRetentionHours = 7 * 24

func (s *sourceFacts) checkRetention() cdc.CheckResult {
	r := cdc.CheckResult{Name: "binlog retention", Status: cdc.Pass}
	secs, basis, err := retentionOf(s.vars, s.rds, s.rdsRetention, s.rdsErr)
	r.Detail = basis
	switch {
	case err != nil:
		r.Status, r.Detail = cdc.Warn, err.Error()
	case math.IsInf(secs, 1):
		r.Detail += ": binlogs never expire"
	case s.rds && s.rdsRetention == nil:
		r.Status = cdc.Warn
		r.Detail += ": RDS purges binlogs as soon as it can"
	case secs < wantRetentionHours*3600:
		r.Status = cdc.Warn
		r.Detail += fmt.Sprintf(": binlogs expire after %.4g hours; a producer stopped longer than that must snapshot again (want >= %d hours)", secs/3600, wantRetentionHours)
	}
	switch {
	case r.Status == cdc.Pass:
	case s.rds:
		r.Fix = fmt.Sprintf("CALL mysql.rds_set_configuration('binlog retention hours', %d)", wantRetentionHours)
	case s.vars["binlog_expire_logs_seconds"] != "":
		r.Fix = paramFix("binlog_expire_logs_seconds", strconv.Itoa(wantRetentionHours*3600), false)
	default:
		r.Fix = paramFix("expire_logs_days", "7", false)
	}
	return r
}

func (s *sourceFacts) checkReadOnly() cdc.CheckResult {
	v := s.vars["read_only"]
	r := cdc.CheckResult{Name: "read_only", Status: cdc.Pass, Detail: "read_only=" + v + ": read replica: snapshots never write"}
	if strings.EqualFold(v, "OFF") || v == "0" {
		r.Detail = "read_only=" + v + ": source is writable (primary?) — strait never writes to it"
	}
	return r
}

func (s *sourceFacts) checkChecksum() cdc.CheckResult {
	v := s.vars["binlog_checksum"]
	r := cdc.CheckResult{Name: "binlog_checksum", Status: cdc.Pass, Detail: "binlog_checksum=" + v}
	if !strings.EqualFold(v, "CRC32") && !strings.EqualFold(v, "NONE") {
		r.Status = cdc.Warn
		r.Detail += ": unknown checksum algorithm"
		r.Fix = paramFix("binlog_checksum", "CRC32", true)
	}
	return r
}

func (s *sourceFacts) checkVersion(flavor string) cdc.CheckResult {
	got := "mysql"
	if s.mariadb {
		got = "mariadb"
	}
	r := cdc.CheckResult{Name: "version", Status: cdc.Pass,
		Detail: strings.TrimSpace(fmt.Sprintf("%s %s %s", got, s.vars["version"], s.vars["version_comment"]))}
	switch {
	case flavor != "" && !strings.EqualFold(flavor, got):
		r.Status = cdc.Fail
		r.Detail = fmt.Sprintf("source.flavor is %s but the server is %s", flavor, r.Detail)
		r.Fix = "set source.flavor: " + got + " (or leave it empty to detect it)"
	case s.mariadb && !s.atLeast(10, 5), !s.mariadb && !s.atLeast(5, 7):
		r.Status = cdc.Warn
		r.Detail += ": not supported (MySQL 5.7/8.x and MariaDB >= 10.5 are)"
		r.Fix = "upgrade the source to MySQL 8.0 or MariaDB 10.11"
	case !s.mariadb && s.major > 8:
		r.Status = cdc.Warn
		r.Detail += ": not tested (MySQL 5.7/8.x and MariaDB >= 10.5 are)"
	}
	return r
}

// checkReplicasName and checkTypesName are the checks Preflight leaves to
// run (see there).
const (
	checkReplicasName = "server_id in use"
	checkTypesName    = "column types"
)

// checkReplicas finds another replica registered with our server_id: two
// replicas with one server_id cut each other off (MariaDB error 4052, MySQL
// 1236), so two pipelines must not share one (the default is derived from
// kafka.topic_prefix).
func (s *sourceFacts) checkReplicas(own uint32) cdc.CheckResult {
	r := cdc.CheckResult{Name: checkReplicasName, Status: cdc.Pass, Detail: fmt.Sprintf("no replica is registered with server_id %d", own)}
	if s.replicasErr != nil {
		r.Status = cdc.Warn
		r.Detail = fmt.Sprintf("cannot list the replicas to compare server_ids: %v", s.replicasErr)
		r.Fix = "MariaDB >= 10.5: GRANT REPLICATION MASTER ADMIN ON *.* TO the producer's user (for SHOW SLAVE HOSTS), or make sure by hand that no other replica uses source.server_id"
		return r
	}
	for _, rep := range s.replicas {
		id := rep["Server_id"]
		if id == "" {
			id = rep["Server_Id"]
		}
		if id != strconv.FormatUint(uint64(own), 10) {
			continue
		}
		host := rep["Host"]
		if host == "" {
			host = "(no host reported)"
		}
		r.Status = cdc.Fail
		r.Detail = fmt.Sprintf("a replica from %s:%s is registered with server_id %d: another strait producer or a real replica (or this producer itself, if it runs now); two replicas with one server_id cut each other off", host, rep["Port"], own)
		r.Fix = "give each producer its own source.server_id (the default is derived from kafka.topic_prefix, so two pipelines with different prefixes differ)"
		return r
	}
	return r
}

// checkCaptured lists the tables source.include and source.exclude
// capture, and fails when there are none and no included database exists
// either: a producer capturing nothing would run and publish nothing,
// silently. (An included database without tables yet is a warning: the
// tables created in it later are captured.) A database named without a
// wildcard that the user sees none of is named.
func (s *sourceFacts) checkCaptured(cfg *Config) cdc.CheckResult {
	r := cdc.CheckResult{Name: "captured tables", Status: cdc.Pass}
	if s.tablesErr != nil {
		r.Status, r.Detail = cdc.Warn, fmt.Sprintf("cannot list the tables: %v", s.tablesErr)
		r.Fix = "GRANT SELECT on the captured databases to the producer's user"
		return r
	}
	var captured []string
	for _, t := range s.tables {
		db, name, _ := strings.Cut(t, ".")
		if Captures(cfg.Include, cfg.Exclude, db, name) {
			captured = append(captured, t)
		}
	}
	var missing, existing []string
	include := cfg.Include
	if len(include) == 0 {
		include = []string{"*.*"}
	}
	for _, p := range include {
		pattern, _, _ := strings.Cut(p, ".")
		if !strings.ContainsAny(pattern, `*?[\`) && !slices.Contains(s.databases, pattern) {
			missing = append(missing, pattern)
		}
		for _, db := range s.databases {
			if ok, _ := path.Match(pattern, db); ok && !systemSchemas[db] && !slices.Contains(existing, db) {
				existing = append(existing, db)
			}
		}
	}
	if len(missing) > 0 {
		r.Detail = fmt.Sprintf("database %s named in source.include does not exist (or %s has no privilege on it); ", strings.Join(missing, ", "), s.user)
	}
	if len(captured) == 0 && len(existing) > 0 {
		r.Status = cdc.Warn
		r.Detail += fmt.Sprintf("no table captured yet in %s: tables created there later are captured (and need no snapshot)", strings.Join(existing, ", "))
		r.Fix = "name the tables to capture in source.include, if they exist elsewhere"
		return r
	}
	if len(captured) == 0 {
		r.Status = cdc.Fail
		r.Detail += fmt.Sprintf("source.include %q and source.exclude %q capture no table the user sees", cfg.Include, cfg.Exclude)
		r.Fix = "name existing tables in source.include (database.table patterns, e.g. shop.*) and GRANT SELECT on them"
		return r
	}
	shown := captured[:min(len(captured), 10)]
	r.Detail += fmt.Sprintf("%d tables: %s", len(captured), strings.Join(shown, ", "))
	if len(captured) > len(shown) {
		r.Detail += ", ..."
	}
	if len(missing) > 0 {
		r.Status, r.Fix = cdc.Warn, "remove the database from source.include, or create it / grant SELECT on it"
	}
	return r
}

// checkColumnTypes reads the schema of every captured table as a snapshot
// does: a table with a column strait cannot read is named with the column,
// and `producer run` leaves exactly these tables out (Reader.Refused).
func (s *sourceFacts) checkColumnTypes(conn *client.Conn, cfg *Config) cdc.CheckResult {
	r := cdc.CheckResult{Name: checkTypesName, Status: cdc.Pass}
	bad, n, err := unreadableTables(conn, cfg, strings.EqualFold(s.vars["binlog_row_metadata"], "FULL"))
	switch {
	case err != nil:
		r.Status, r.Detail, r.Fix = cdc.Warn, fmt.Sprintf("cannot read the captured tables' columns: %v", err), "GRANT SELECT on the captured databases to the producer's user"
	case len(bad) == 0:
		r.Detail = fmt.Sprintf("every column of the %d captured tables has a mapping", n)
	default:
		r.Status = cdc.Fail
		var lines, ids []string
		for _, id := range slices.Sorted(maps.Keys(bad)) {
			lines, ids = append(lines, bad[id].Error()), append(ids, id)
		}
		r.Detail = strings.Join(lines, "; ") + "; producer run leaves these tables out"
		r.Fix = "exclude them: source.exclude: " + strings.Join(ids, ",")
	}
	return r
}

func (s *sourceFacts) checkServerID(own uint32) cdc.CheckResult {
	v := s.vars["server_id"]
	r := cdc.CheckResult{Name: "server_id", Status: cdc.Pass,
		Detail: fmt.Sprintf("server_id=%s; strait registers as source.server_id=%d", v, own)}
	switch v {
	case "0", "":
		r.Status = cdc.Fail
		r.Detail = "server_id=" + v + ": the server refuses replicas"
		r.Fix = "self-managed: set server_id to a unique nonzero value in my.cnf and restart (RDS sets it itself)"
	case strconv.FormatUint(uint64(own), 10):
		r.Status = cdc.Fail
		r.Detail = fmt.Sprintf("source.server_id=%d equals the server's own server_id", own)
		r.Fix = "choose another source.server_id, unique among the source and all its replicas"
	}
	return r
}

// grantLine is one line of SHOW GRANTS that grants privileges on an object.
type grantLine struct {
	privs  map[string]bool // upper case: "SELECT", "REPLICATION SLAVE", "ALL PRIVILEGES"
	global bool            // ON *.*
	db     string          // a LIKE pattern (_ and %) when table is ""
	table  string          // "" for every table of db
}

// parseGrants reads the GRANT ... ON ... lines of SHOW GRANTS. Role grants
// (GRANT `r` TO ...), routine grants and column privileges are skipped:
// none of them gives what strait needs.
func parseGrants(lines []string) []grantLine {
	var out []grantLine
	for _, line := range lines {
		if !strings.HasPrefix(strings.ToUpper(line), "GRANT ") {
			continue
		}
		privs, obj, ok := strings.Cut(line[len("GRANT "):], " ON ")
		if !ok {
			continue
		}
		obj = strings.TrimSpace(obj)
		upper := strings.ToUpper(obj)
		if strings.HasPrefix(upper, "PROCEDURE ") || strings.HasPrefix(upper, "FUNCTION ") || strings.HasPrefix(upper, "PACKAGE ") {
			continue
		}
		obj = strings.TrimPrefix(obj, "TABLE ")
		g := grantLine{privs: make(map[string]bool)}
		db, dbQuoted, rest := cutGrantIdent(obj)
		table, tableQuoted := "*", false
		if strings.HasPrefix(rest, ".") {
			table, tableQuoted, _ = cutGrantIdent(rest[1:])
		}
		g.global = db == "*" && !dbQuoted && table == "*" && !tableQuoted
		g.db = db
		if table != "*" || tableQuoted {
			g.table = table
		}
		depth, start := 0, 0
		for i := 0; i <= len(privs); i++ {
			if i < len(privs) {
				switch privs[i] {
				case '(':
					depth++
				case ')':
					depth--
				}
				if privs[i] != ',' || depth > 0 {
					continue
				}
			}
			p := strings.ToUpper(strings.TrimSpace(privs[start:i]))
			start = i + 1
			if !strings.Contains(p, "(") { // "SELECT (`id`)" is a column privilege
				g.privs[p] = true
			}
		}
		out = append(out, g)
	}
	return out
}

// cutGrantIdent reads one identifier, `quoted` (or "quoted" under
// ANSI_QUOTES) or bare, from the front of s.
func cutGrantIdent(s string) (name string, quoted bool, rest string) {
	if s != "" && (s[0] == '`' || s[0] == '"') {
		q := s[0]
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] != q {
				b.WriteByte(s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i++
				continue
			}
			return b.String(), true, s[i+1:]
		}
		return b.String(), true, ""
	}
	end := strings.IndexAny(s, ". ")
	if end < 0 {
		end = len(s)
	}
	return s[:end], false, s[end:]
}

// grantsAllow reports whether the grants give one of privs on db.table; db ""
// asks for a global privilege, table "" for every table of db.
func grantsAllow(gs []grantLine, db, table string, privs ...string) bool {
	for _, g := range gs {
		has := g.privs["ALL PRIVILEGES"] || g.privs["ALL"]
		for _, p := range privs {
			has = has || g.privs[p]
		}
		switch {
		case !has:
		case g.global:
			return true
		case db == "":
		case g.table == "" && matchGrantDB(g.db, db):
			return true
		case g.db == db && g.table == table && table != "":
			return true
		}
	}
	return false
}

// matchGrantDB matches s against a database name pattern of GRANT: % is any
// sequence, _ any one character, \ escapes.
func matchGrantDB(p, s string) bool {
	for p != "" {
		switch p[0] {
		case '%':
			for i := 0; i <= len(s); i++ {
				if matchGrantDB(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '_':
			if s == "" {
				return false
			}
			_, n := utf8.DecodeRuneInString(s)
			p, s = p[1:], s[n:]
			continue
		case '\\':
			if len(p) > 1 {
				p = p[1:]
			}
		}
		if s == "" || p[0] != s[0] {
			return false
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

// capturedObject is a database, or one table of it, that the producer reads.
type capturedObject struct{ db, table string } // table "" for every table

func (o capturedObject) String() string {
	if o.table == "" {
		return o.db
	}
	return o.db + "." + o.table
}

// capturedObjects returns what Include (minus Exclude) captures. A pattern
// with a wildcard in the database part is matched against the databases the
// user can see; a wildcard in the table part asks for the whole database
// (new tables are snapshotted when they appear).
func capturedObjects(cfg *Config, databases []string) []capturedObject {
	include := cfg.Include
	if len(include) == 0 {
		include = []string{"*.*"}
	}
	hasMeta := func(s string) bool { return s == "" || strings.ContainsAny(s, `*?[\`) }
	excluded := func(o capturedObject) bool {
		for _, x := range cfg.Exclude {
			xdb, xtable, _ := strings.Cut(x, ".")
			if ok, _ := path.Match(x, o.String()); ok && o.table != "" {
				return true
			}
			if ok, _ := path.Match(xdb, o.db); ok && xtable == "*" {
				return true
			}
		}
		return false
	}
	var out []capturedObject
	seen := make(map[capturedObject]bool)
	add := func(o capturedObject) {
		if !seen[o] && !excluded(o) {
			seen[o] = true
			out = append(out, o)
		}
	}
	for _, p := range include {
		db, table, _ := strings.Cut(p, ".")
		if hasMeta(table) {
			table = ""
		}
		if !hasMeta(db) {
			add(capturedObject{db, table})
			continue
		}
		for _, d := range databases {
			if ok, _ := path.Match(db, d); ok && !systemSchemas[d] {
				add(capturedObject{d, table})
			}
		}
	}
	return out
}

func (s *sourceFacts) checkPrivileges(cfg *Config) []cdc.CheckResult {
	if s.grantsErr != nil {
		return []cdc.CheckResult{{Name: "privileges", Status: cdc.Warn,
			Detail: fmt.Sprintf("cannot read the grants of %s: %v", s.user, s.grantsErr),
			Fix:    "run SHOW GRANTS as this user and compare with REPLICATION SLAVE, REPLICATION CLIENT (MariaDB >= 10.5: BINLOG MONITOR) and SELECT"}}
	}
	gs := parseGrants(s.grants)
	account := s.user
	if i := strings.LastIndex(s.user, "@"); i >= 0 {
		account = grantString(s.user[:i]) + "@" + grantString(s.user[i+1:])
	}
	// MariaDB 10.5 split REPLICATION CLIENT into BINLOG MONITOR (SHOW BINARY
	// LOGS, SHOW MASTER STATUS) and others; REPLICATION CLIENT is now an alias
	// of BINLOG MONITOR. SUPER still implies it before 11.0.
	clientPriv, clientAlso := "REPLICATION CLIENT", []string{"SUPER"}
	if s.mariadb && s.atLeast(10, 5) {
		clientPriv, clientAlso = "BINLOG MONITOR", []string{"REPLICATION CLIENT"}
		if !s.atLeast(11, 0) {
			clientAlso = append(clientAlso, "SUPER")
		}
	}
	global := func(priv, why string, also ...string) cdc.CheckResult {
		r := cdc.CheckResult{Name: "privilege " + priv, Status: cdc.Pass, Detail: priv + " granted to " + s.user}
		if !grantsAllow(gs, "", "", append(also, priv)...) {
			r.Status = cdc.Fail
			r.Detail = fmt.Sprintf("%s lacks %s, needed %s", s.user, priv, why)
			r.Fix = fmt.Sprintf("GRANT %s ON *.* TO %s", priv, account)
		}
		return r
	}
	res := []cdc.CheckResult{
		global("REPLICATION SLAVE", "to read the binlog", "REPLICATION REPLICA"),
		global(clientPriv, "for SHOW BINARY LOGS and SHOW MASTER STATUS", clientAlso...),
	}

	r := cdc.CheckResult{Name: "privilege SELECT", Status: cdc.Pass}
	objs := capturedObjects(cfg, s.databases)
	if grantsAllow(gs, "", "", "SELECT", "SHOW DATABASES") {
		// Every database is visible: one that is not does not exist
		// (checkCaptured names it), no grant would help.
		objs = slices.DeleteFunc(objs, func(o capturedObject) bool { return !slices.Contains(s.databases, o.db) })
	}
	var missing, fixes, names []string
	for _, o := range objs {
		names = append(names, o.String())
		if grantsAllow(gs, o.db, o.table, "SELECT") {
			continue
		}
		missing = append(missing, o.String())
		if o.table == "" {
			// _ and % are wildcards in a database-level GRANT: escape them.
			fixes = append(fixes, fmt.Sprintf("GRANT SELECT ON %s.* TO %s", grantIdent(strings.NewReplacer("_", `\_`, "%", `\%`).Replace(o.db)), account))
		} else {
			fixes = append(fixes, fmt.Sprintf("GRANT SELECT ON %s.%s TO %s", grantIdent(o.db), grantIdent(o.table), account))
		}
	}
	switch {
	case len(missing) > 0:
		r.Status = cdc.Fail
		r.Detail = fmt.Sprintf("%s lacks SELECT on %s, needed for snapshots and table schemas", s.user, strings.Join(missing, ", "))
		r.Fix = strings.Join(fixes, "; ")
	case grantsAllow(gs, "", "", "SELECT"):
		r.Detail = "SELECT ON *.* granted to " + s.user
	case len(objs) == 0:
		r.Status = cdc.Warn
		r.Detail = s.user + " sees no database to capture"
		r.Fix = "set source.include, and GRANT SELECT ON `db`.* TO " + account + " for each captured database"
	default:
		r.Detail = fmt.Sprintf("SELECT on %s granted to %s", strings.Join(names, ", "), s.user)
	}
	return append(res, r)
}

func grantString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func grantIdent(s string) string  { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
