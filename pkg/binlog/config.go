package binlog

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// Config is where and how the binlog is read.
type Config struct {
	// Host of the MySQL/MariaDB server (an RDS read replica in production).
	Host string `yaml:"host" help:"database host name or address"`
	// Port of the server; default 3306.
	Port int `yaml:"port" help:"database port"`
	// User the producer logs in as; needs REPLICATION SLAVE, REPLICATION CLIENT and SELECT.
	User string `yaml:"user" help:"database user (needs REPLICATION SLAVE, REPLICATION CLIENT, SELECT)"`
	// Password of User. Only from the environment (STRAIT_SOURCE_PASSWORD) or PasswordFile.
	Password string `yaml:"-" secret:"true" help:"database password (environment only)"`
	// PasswordFile names a file holding the password.
	PasswordFile string `yaml:"password_file" help:"file holding the database password"`
	// ServerID is the replica server_id the producer registers with; it must
	// be unique among the source's replicas. Default: derived from
	// kafka.topic_prefix (DefaultServerID), so that two pipelines do not
	// share one by accident.
	ServerID uint32 `yaml:"server_id" help:"unique server_id the producer registers as a replica (default: derived from kafka.topic_prefix)"`
	// Flavor is "mysql" or "mariadb"; detected from the server when empty.
	Flavor string `yaml:"flavor" help:"mysql or mariadb (detected when empty)"`
	// StartGTID is a GTID set to start from when there is no checkpoint.
	StartGTID string `yaml:"start_gtid" help:"GTID set to start from (default: the current position)"`
	// StartPosition is "file:pos" to start from when there is no checkpoint.
	StartPosition string `yaml:"start_position" help:"binlog file:pos to start from (default: the current position)"`
	// Include lists "database.table" patterns (path.Match syntax) to capture;
	// empty captures every table outside the system schemas.
	Include []string `yaml:"include" help:"database.table patterns to capture (e.g. shop.*)"`
	// Exclude lists "database.table" patterns never captured; wins over Include.
	Exclude []string `yaml:"exclude" help:"database.table patterns to skip"`
	// Columns leaves columns out of what is published and masks others,
	// per table pattern (columns.go; README "Keeping columns out of the
	// warehouse"). Empty: every column is published as it is.
	Columns ColumnRules `yaml:"columns" help:"per table pattern, columns to include or exclude and to mask (hash or null); JSON in the environment and flags"`
	// ColumnHash is the secret key of the columns' hash mask.
	ColumnHash ColumnHashConfig `yaml:"column_hash"`
	// HeartbeatPeriod asks the server for a heartbeat after this long with
	// nothing to send; default 5s. A heartbeat proves the producer has read
	// everything the source has: on an idle source
	// strait_producer_source_lag_seconds stays below about this period.
	// Must be shorter than ReadTimeout.
	HeartbeatPeriod time.Duration `yaml:"heartbeat_period" help:"server heartbeat interval when the binlog is idle; bounds the reported lag of an idle source"`
	// ReadTimeout fails a silent connection after this long; default 60s.
	ReadTimeout time.Duration `yaml:"read_timeout" help:"give up on a silent connection after this long"`
	// IncludeQuery writes the SQL statement that made each change (from the
	// server's annotate / rows-query events) into source.query. Off by
	// default, as in Debezium: statements can carry sensitive values and
	// make every record larger.
	IncludeQuery bool `yaml:"include_query" help:"write the SQL statement of each change into source.query (may contain sensitive values)"`
	// ChunkRows bounds memory: a source transaction with more row changes
	// is handed over in parts of about this many. Default 10,000.
	ChunkRows int `yaml:"chunk_rows" help:"row changes of one source transaction held at once; larger transactions are published in parts"`
	// Snapshot is when the captured tables' existing rows are backfilled
	// (op r) alongside the stream: "initial" (default) on a start with no
	// checkpoint and no configured start position; "when_needed" then too,
	// and also when the binlog the checkpoint points into is gone (purged,
	// or a failover to a server without GTIDs): the stream restarts at the
	// server's current position and every captured table is snapshotted
	// again; or "never".
	Snapshot string `yaml:"snapshot" help:"backfill existing rows: initial (first start without a checkpoint), when_needed (also after the checkpoint's binlog is lost) or never"`
	// SnapshotKeys names, for tables without a primary key, a unique key
	// of NOT NULL columns to snapshot them by, in chunks matched against
	// the stream like a primary key's: "database.table:column" or
	// "database.table:col1+col2". Such a table not listed is read whole.
	SnapshotKeys []string `yaml:"snapshot_keys" help:"unique keys to snapshot tables without a primary key by: database.table:col1+col2, ..."`
	// SnapshotChunkRows is how many rows a snapshot reads per query, in
	// primary-key order; default 4096 (up to three chunks are held while
	// they are read ahead: 8192 ran no faster and held a third more
	// memory, README "Performance").
	SnapshotChunkRows int `yaml:"snapshot_chunk_rows" help:"rows per snapshot query (primary-key chunks)"`
	// SnapshotChunkBytes bounds a snapshot chunk by the bytes of its values
	// as well: a chunk ends at this size whatever its row count (the next
	// queries read fewer rows until they fit), and a table without a key
	// is handed over in pieces of it. Default 8 MiB: the snapshot holds at
	// most three chunks (BenchmarkSnapshotKeylessMemory: with
	// kafka.transaction_max_bytes at 8 MiB, a 1 GiB table snapshots in
	// about 200 MiB of RSS; at 32 MiB each, 300).
	SnapshotChunkBytes int `yaml:"snapshot_chunk_bytes" help:"bytes of values per snapshot chunk at most (wide rows make smaller chunks)"`
	// ChunkBytes bounds a part of a large source transaction by bytes as
	// chunk_rows does by rows; default 16 MiB.
	ChunkBytes int `yaml:"chunk_bytes" help:"bytes of row changes of one source transaction held at once; larger transactions are published in parts"`
	// SnapshotQueryTimeout ends any snapshot query running longer (the
	// server's max_statement_time / max_execution_time on the snapshot's
	// session); default 30m: a chunk takes milliseconds, a table without a
	// key is read in one query.
	SnapshotQueryTimeout time.Duration `yaml:"snapshot_query_timeout" help:"longest a snapshot query may run on the source"`
	// SnapshotStallWarning is how long a snapshot may publish nothing
	// while rows remain before it is reported: a warning naming the
	// table, the last key, the chunk query and what it waits for, and
	// strait_producer_snapshot_stalls_total. Default 5m (a chunk takes
	// milliseconds; catching up after a restart far behind may take
	// minutes).
	SnapshotStallWarning time.Duration `yaml:"snapshot_stall_warning" help:"warn when a snapshot publishes nothing for this long while rows remain"`
	// SnapshotProgressInterval is how often a running snapshot logs its
	// progress: the table, the rows published of information_schema's
	// estimate, the rate and the time left at that rate. Default 10s.
	SnapshotProgressInterval time.Duration `yaml:"snapshot_progress_interval" help:"how often a running snapshot logs its progress (table, rows done of the estimate, rows/s, time left)"`
	// RetentionInterval is how often the running producer reads the
	// server's binlog retention and the age of the binlog file its
	// checkpoint points into (strait_producer_binlog_retention_seconds,
	// strait_producer_binlog_retention_headroom_seconds); default 1m.
	RetentionInterval time.Duration `yaml:"retention_interval" help:"how often to read the server's binlog retention and the age of the binlog the checkpoint needs (headroom metric)"`
	// LostClockMargin is how much older than the checkpoint's last
	// transaction a table's last change on the server (information_schema
	// UPDATE_TIME) must be for source.snapshot=when_needed to leave the
	// table out of the snapshot after the checkpoint's binlog is lost; it
	// covers the server's clock stepping back and, on a replica, the
	// primary's clock (which stamps the binlog) running ahead of the
	// replica's (which stamps UPDATE_TIME). Default 5m.
	LostClockMargin time.Duration `yaml:"lost_clock_margin" help:"after a lost binlog (snapshot: when_needed), a table is snapshotted again unless its last change is older than the checkpoint by more than this (clock steps, primary/replica clock skew)"`
	// SSH, when SSH.Host is set, carries every connection to the database
	// through an SSH bastion (tunnel.go).
	SSH SSHConfig `yaml:"ssh"`
	// TLS is how connections to the database are encrypted (tls.go).
	TLS TLSConfig `yaml:"tls"`
}

// SSHConfig is the SSH tunnel to the database through a bastion host. The
// database's host and port are then resolved and dialled by the bastion.
type SSHConfig struct {
	// Host of the bastion; empty connects to the database directly.
	Host string `yaml:"host" help:"SSH bastion host; every database connection goes through it (empty: connect directly)"`
	// Port of the bastion's SSH server; default 22.
	Port int `yaml:"port" help:"SSH bastion port"`
	// User logged in on the bastion.
	User string `yaml:"user" help:"SSH user on the bastion"`
	// KeyFile is the private key (OpenSSH or PEM format) to log in with.
	KeyFile string `yaml:"key_file" help:"SSH private key file (or use ssh-agent via source.ssh.agent_socket)"`
	// Passphrase decrypts KeyFile. Only from the environment
	// (STRAIT_SOURCE_SSH_PASSPHRASE) or PassphraseFile.
	Passphrase string `yaml:"-" secret:"true" help:"passphrase of the SSH private key (environment only)"`
	// PassphraseFile names a file holding the passphrase.
	PassphraseFile string `yaml:"passphrase_file" help:"file holding the passphrase of the SSH private key"`
	// AgentSocket is an ssh-agent's socket whose keys are offered (after
	// KeyFile's); default $SSH_AUTH_SOCK.
	AgentSocket string `yaml:"agent_socket" help:"ssh-agent socket offering keys (default $SSH_AUTH_SOCK)"`
	// KnownHostsFile holds the bastion's host key (OpenSSH known_hosts
	// format); required: the host key is always verified unless
	// InsecureIgnoreHostKey.
	KnownHostsFile string `yaml:"known_hosts_file" help:"known_hosts file holding the bastion's host key (required)"`
	// InsecureIgnoreHostKey accepts any host key: anyone on the path can
	// then read the database traffic. For tests only; logged at warn level.
	InsecureIgnoreHostKey bool `yaml:"insecure_ignore_host_key" help:"accept any bastion host key (INSECURE: anyone on the path can read the traffic)"`
	// KeepaliveInterval is how often the bastion is asked for a sign of
	// life; an unanswered one drops the tunnel, which is then made again.
	// Default 15s.
	KeepaliveInterval time.Duration `yaml:"keepalive_interval" help:"SSH keepalive interval; an unanswered keepalive drops and remakes the tunnel"`
	// Timeout bounds connecting and logging in to the bastion; default 15s.
	Timeout time.Duration `yaml:"timeout" help:"SSH connect and login timeout"`
}

// TLSConfig is how connections to the database are encrypted.
type TLSConfig struct {
	// Mode is disabled; preferred (TLS when the server offers it,
	// certificate not verified); required (TLS, certificate not verified);
	// verify-ca (the certificate chains to CAFile); verify-identity (also
	// names the host, or ServerName). Default: verify-identity, or
	// preferred for a database on this machine (loopback).
	Mode string `yaml:"mode" help:"disabled, preferred, required, verify-ca or verify-identity (default: verify-identity; preferred on loopback)"`
	// CAFile is a PEM file of CA certificates (e.g. the RDS bundle with
	// many); the system's CAs when empty. Used by verify-ca and
	// verify-identity.
	CAFile string `yaml:"ca_file" help:"PEM file of CA certificates for verify-ca/verify-identity (e.g. the RDS bundle; default: system CAs)"`
	// CertFile and KeyFile are a client certificate and its key (PEM), for
	// servers that require one.
	CertFile string `yaml:"cert_file" help:"client certificate (PEM)"`
	KeyFile  string `yaml:"key_file" help:"client certificate's private key (PEM)"`
	// ServerName is the name verify-identity expects in the server's
	// certificate; default source.host.
	ServerName string `yaml:"server_name" help:"name verify-identity expects in the server certificate (default source.host)"`
}

// The values of source.snapshot.
const (
	SnapshotInitial    = "initial"     // snapshot on a first start
	SnapshotWhenNeeded = "when_needed" // and when the checkpoint's binlog is gone
	SnapshotNever      = "never"
)

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.Port == 0 {
		c.Port = 3306
	}
	if c.ServerID == 0 {
		c.ServerID = DefaultServerID("strait") // kafka.topic_prefix's default; the producer derives it from the prefix it is given
	}
	if c.HeartbeatPeriod == 0 {
		c.HeartbeatPeriod = 5 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.ChunkRows == 0 {
		c.ChunkRows = 10000
	}
	if c.Snapshot == "" {
		c.Snapshot = SnapshotInitial
	}
	if c.SnapshotChunkRows == 0 {
		c.SnapshotChunkRows = 4096
	}
	if c.SnapshotChunkBytes == 0 {
		c.SnapshotChunkBytes = 8 << 20
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = 16 << 20
	}
	if c.SnapshotQueryTimeout == 0 {
		c.SnapshotQueryTimeout = 30 * time.Minute
	}
	if c.SnapshotStallWarning == 0 {
		c.SnapshotStallWarning = 5 * time.Minute
	}
	if c.SnapshotProgressInterval == 0 {
		c.SnapshotProgressInterval = 10 * time.Second
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Minute
	}
	if c.LostClockMargin == 0 {
		c.LostClockMargin = 5 * time.Minute
	}
	if c.SSH.Port == 0 {
		c.SSH.Port = 22
	}
	if c.SSH.KeepaliveInterval == 0 {
		c.SSH.KeepaliveInterval = 15 * time.Second
	}
	if c.SSH.Timeout == 0 {
		c.SSH.Timeout = 15 * time.Second
	}
}

// LoadSecrets reads the password from source.password_file, which may not
// be set together with STRAIT_SOURCE_PASSWORD, and takes the ssh-agent of
// getenv's SSH_AUTH_SOCK when source.ssh.agent_socket names none. Call it
// once the configuration is loaded, before Validate.
func (c *Config) LoadSecrets(getenv func(string) string) error {
	if c.PasswordFile != "" {
		if c.Password != "" {
			return errors.New("source.password_file and STRAIT_SOURCE_PASSWORD are both set: keep one")
		}
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return fmt.Errorf("source.password_file: %w", err)
		}
		if c.Password = strings.TrimRight(string(b), "\r\n"); c.Password == "" {
			return fmt.Errorf("source.password_file %s is empty", c.PasswordFile)
		}
	}
	if c.SSH.AgentSocket == "" {
		c.SSH.AgentSocket = getenv("SSH_AUTH_SOCK")
	}
	return nil
}

// DefaultServerID is the server_id of a producer whose configuration names
// none: 2^30 plus the FNV-1a hash of its topic prefix modulo 2^30, far from
// the small ids servers are given, and different for two pipelines with
// different prefixes (a shared server_id makes the source cut one replica
// off whenever the other connects).
func DefaultServerID(topicPrefix string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(topicPrefix))
	return 1<<30 | h.Sum32()&(1<<30-1)
}

// Validate reports every problem of the configuration, naming the key.
func (c *Config) Validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("source.host: required"))
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("source.port: %d is not a TCP port", c.Port))
	}
	if c.User == "" {
		errs = append(errs, errors.New("source.user: required"))
	}

	if c.Flavor != "" && c.Flavor != "mysql" && c.Flavor != "mariadb" {
		errs = append(errs, fmt.Errorf("source.flavor: %q is neither mysql nor mariadb", c.Flavor))
	}
	if c.StartGTID != "" && c.StartPosition != "" {
		errs = append(errs, errors.New("source.start_gtid and source.start_position: set at most one"))
	}
	if c.StartPosition != "" {
		if _, err := parseFilePos(c.StartPosition); err != nil {
			errs = append(errs, fmt.Errorf("source.start_position: %w", err))
		}
	}
	switch c.Snapshot {
	case SnapshotInitial, SnapshotWhenNeeded, SnapshotNever:
	default:
		errs = append(errs, fmt.Errorf("source.snapshot: %q, want initial, when_needed or never", c.Snapshot))
	}
	if c.SnapshotChunkRows < 1 {
		errs = append(errs, fmt.Errorf("source.snapshot_chunk_rows: %d, want at least 1", c.SnapshotChunkRows))
	}
	if c.SnapshotChunkBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("source.snapshot_chunk_bytes: %d, want at least 1024", c.SnapshotChunkBytes))
	}
	if c.ChunkBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("source.chunk_bytes: %d, want at least 1024", c.ChunkBytes))
	}
	if c.HeartbeatPeriod < time.Millisecond || c.HeartbeatPeriod >= c.ReadTimeout {
		errs = append(errs, fmt.Errorf("source.heartbeat_period: %s, want at least 1ms and less than source.read_timeout (%s), or an idle connection times out", c.HeartbeatPeriod, c.ReadTimeout))
	}
	if c.SnapshotStallWarning < 0 {
		errs = append(errs, fmt.Errorf("source.snapshot_stall_warning: %s, want a positive duration", c.SnapshotStallWarning))
	}
	if c.SnapshotProgressInterval < 0 {
		errs = append(errs, fmt.Errorf("source.snapshot_progress_interval: %s, want a positive duration", c.SnapshotProgressInterval))
	}
	if c.RetentionInterval < time.Second {
		errs = append(errs, fmt.Errorf("source.retention_interval: %s, want at least 1s", c.RetentionInterval))
	}
	if c.LostClockMargin < time.Second {
		errs = append(errs, fmt.Errorf("source.lost_clock_margin: %s, want at least 1s (binlog and update times count whole seconds)", c.LostClockMargin))
	}
	if _, err := snapshotKeys(c.SnapshotKeys); err != nil {
		errs = append(errs, err)
	}
	for _, p := range append(append([]string{}, c.Include...), c.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("source.include/exclude: pattern %q: %w", p, err))
		}
	}
	errs = append(errs, c.validateColumns(), c.SSH.validate(), c.TLS.validate())
	return errors.Join(errs...)
}

func (c *SSHConfig) validate() error {
	var errs []error
	if c.Host == "" {
		for _, k := range []struct{ key, v string }{{"user", c.User}, {"key_file", c.KeyFile}, {"passphrase_file", c.PassphraseFile}, {"known_hosts_file", c.KnownHostsFile}} {
			if k.v != "" {
				errs = append(errs, fmt.Errorf("source.ssh.%s: set, but source.ssh.host is empty (no tunnel)", k.key))
			}
		}
		return errors.Join(errs...)
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("source.ssh.port: %d is not a TCP port", c.Port))
	}
	if c.User == "" {
		errs = append(errs, errors.New("source.ssh.user: required with source.ssh.host"))
	}
	if c.KeyFile == "" && c.AgentSocket == "" {
		errs = append(errs, errors.New("source.ssh.key_file: required with source.ssh.host (or an ssh-agent: source.ssh.agent_socket / SSH_AUTH_SOCK)"))
	}
	if c.Passphrase != "" && c.PassphraseFile != "" {
		errs = append(errs, errors.New("source.ssh.passphrase and source.ssh.passphrase_file: set at most one"))
	}
	if (c.Passphrase != "" || c.PassphraseFile != "") && c.KeyFile == "" {
		errs = append(errs, errors.New("source.ssh.passphrase: set, but source.ssh.key_file is empty"))
	}
	if c.KnownHostsFile == "" && !c.InsecureIgnoreHostKey {
		errs = append(errs, errors.New("source.ssh.known_hosts_file: required with source.ssh.host: the bastion's host key is always verified (e.g. ssh-keyscan -p PORT HOST > known_hosts, then check the fingerprint)"))
	}
	if c.KnownHostsFile != "" && c.InsecureIgnoreHostKey {
		errs = append(errs, errors.New("source.ssh.insecure_ignore_host_key: set together with source.ssh.known_hosts_file; choose one"))
	}
	if c.KeepaliveInterval < 0 {
		errs = append(errs, fmt.Errorf("source.ssh.keepalive_interval: %s is negative", c.KeepaliveInterval))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("source.ssh.timeout: %s is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// The TLS modes of source.tls.mode, as MySQL's client names them.
const (
	TLSDisabled       = "disabled"
	TLSPreferred      = "preferred"
	TLSRequired       = "required"
	TLSVerifyCA       = "verify-ca"
	TLSVerifyIdentity = "verify-identity"
)

func (c *TLSConfig) validate() error {
	var errs []error
	verifies := c.Mode == "" || c.Mode == TLSVerifyCA || c.Mode == TLSVerifyIdentity // "": verify-identity off loopback
	switch c.Mode {
	case "", TLSDisabled, TLSPreferred, TLSRequired, TLSVerifyCA, TLSVerifyIdentity:
	default:
		errs = append(errs, fmt.Errorf("source.tls.mode: %q, want disabled, preferred, required, verify-ca or verify-identity", c.Mode))
	}
	if c.CAFile != "" && !verifies {
		errs = append(errs, fmt.Errorf("source.tls.ca_file: used only by source.tls.mode verify-ca or verify-identity, not %s", c.Mode))
	}
	if c.ServerName != "" && c.Mode != "" && c.Mode != TLSVerifyIdentity {
		errs = append(errs, fmt.Errorf("source.tls.server_name: used only by source.tls.mode verify-identity, not %s", c.Mode))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("source.tls.cert_file and source.tls.key_file: set both or neither"))
	}
	if c.CertFile != "" && c.Mode == TLSDisabled {
		errs = append(errs, errors.New("source.tls.cert_file: set, but source.tls.mode is disabled"))
	}
	return errors.Join(errs...)
}

// snapshotKeys parses source.snapshot_keys into the key columns by
// "database.table".
func snapshotKeys(list []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, e := range list {
		id, cols, ok := strings.Cut(e, ":")
		db, table, dot := strings.Cut(id, ".")
		names := strings.Split(cols, "+")
		if !ok || !dot || db == "" || table == "" || slices.Contains(names, "") {
			return nil, fmt.Errorf("source.snapshot_keys: %q, want database.table:column or database.table:col1+col2", e)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("source.snapshot_keys: %s named twice", id)
		}
		out[id] = names
	}
	return out, nil
}
