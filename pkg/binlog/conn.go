package binlog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// addr returns "host:port" of the source.
func (c *Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// dialer opens every connection to the source: directly or through the
// SSH tunnel (source.ssh), encrypted as source.tls says. The binlog stream
// (the BinlogSyncer) dials through it too (syncerConfig).
type dialer struct {
	cfg    *Config
	log    *slog.Logger
	tunnel *tunnel     // nil without source.ssh.host
	tls    *tls.Config // nil with source.tls.mode disabled
	// plain is set once a server asked for TLS in mode preferred offered
	// none: later connections do not try again.
	plain atomic.Bool
}

// newDialer prepares the tunnel and TLS of cfg; nothing connects yet.
func newDialer(cfg *Config, log *slog.Logger) (*dialer, error) {
	d := &dialer{cfg: cfg, log: log}
	var err error
	if d.tls, err = cfg.TLS.tlsConfig(cfg.Host); err != nil {
		return nil, err
	}
	if cfg.SSH.Host != "" {
		if d.tunnel, err = newTunnel(&cfg.SSH, log); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Close closes the tunnel, if any, and the connections in it.
func (d *dialer) Close() {
	if d.tunnel != nil {
		d.tunnel.Close()
	}
}

// dialContext opens the network connection under a MySQL connection.
func (d *dialer) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.tunnel != nil {
		return d.tunnel.DialContext(ctx, network, addr)
	}
	return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
}

// tlsConfig is the TLS configuration of the next connection; nil for none.
func (d *dialer) tlsConfig() *tls.Config {
	if d.plain.Load() {
		return nil
	}
	return d.tls
}

// syncerConfig makes the binlog stream connect as dial does; heard is told
// whenever bytes arrive on it.
func (d *dialer) syncerConfig(c *replication.BinlogSyncerConfig, heard func(time.Time)) {
	c.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.dialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &heardConn{Conn: conn, heard: heard, slack: c.ReadTimeout / 16}, nil
	}
	c.TLSConfig = d.tlsConfig()
}

// heardConn tells when bytes arrive on a replication connection: it is
// alive as long as they do, since even an idle source sends a heartbeat
// every source.heartbeat_period (strait_producer_source_silence_seconds).
// Measured here rather than where the reader takes events: a snapshot of
// an idle source publishes chunk after chunk without taking any.
type heardConn struct {
	net.Conn
	heard func(time.Time)
	slack time.Duration // source.read_timeout / 16

	mu       sync.Mutex // go-mysql moves the deadline from its reader and from Close
	deadline time.Time  // the read deadline set on Conn; zero: none
}

// Read reads from the connection and tells of the bytes.
func (c *heardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.heard(time.Now())
	}
	return n, err
}

// SetReadDeadline moves the read deadline, but only when t is earlier than
// the deadline set, or later by slack or more: go-mysql asks for now +
// source.read_timeout before every packet, and each move costs a timer
// update in the runtime, about a tenth of the producer's CPU per row. A
// silent connection therefore times out between 15/16 of read_timeout and
// read_timeout; an earlier deadline (go-mysql's, to unblock a read when it
// closes) applies at once.
func (c *heardConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.IsZero() && !c.deadline.IsZero() && !t.Before(c.deadline) && t.Sub(c.deadline) < c.slack {
		return nil
	}
	err := c.Conn.SetReadDeadline(t)
	if err == nil { // a transport refusing deadlines is asked again each time
		c.deadline = t
	}
	return err
}

// SetDeadline sets both deadlines, as net.Conn's does.
func (c *heardConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.Conn.SetDeadline(t)
	if err == nil {
		c.deadline = t
	}
	return err
}

// errNoTLS is go-mysql's error when the server offers no TLS but the
// client has a TLS configuration (client/auth.go; the text is all there is).
const errNoTLS = "does not support TLS"

// dial opens a query connection to the source (schema reads, snapshots,
// checks). The binlog stream itself is opened by the BinlogSyncer.
func (d *dialer) dial(ctx context.Context, db string) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	connect := func(tc *tls.Config) (*client.Conn, error) {
		return client.ConnectWithDialer(ctx, "tcp", d.cfg.addr(), d.cfg.User, d.cfg.Password, db, d.dialContext,
			func(c *client.Conn) error { c.SetTLSConfig(tc); return nil })
	}
	tc := d.tlsConfig()
	conn, err := connect(tc)
	if err != nil && tc != nil && d.cfg.TLS.mode(d.cfg.Host) == TLSPreferred && strings.Contains(err.Error(), errNoTLS) {
		d.log.Warn("the source offers no TLS: connecting unencrypted (source.tls.mode preferred; set required or verify-ca to refuse)", "source", d.cfg.addr())
		d.plain.Store(true)
		conn, err = connect(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s%s: %w%s", d.cfg.addr(), d.cfg.User, d.via(), err, tlsHint(err, d.cfg.TLS.mode(d.cfg.Host), d.tlsConfig() != nil))
	}
	return conn, nil
}

// via names the tunnel in errors and in `producer check`.
func (d *dialer) via() string {
	switch {
	case d.tunnel == nil:
		return ""
	case d.cfg.SSH.InsecureIgnoreHostKey:
		return " through ssh bastion " + d.tunnel.addr + " (its host key NOT verified: source.ssh.insecure_ignore_host_key)"
	}
	return " through ssh bastion " + d.tunnel.addr + " (host key verified against " + d.cfg.SSH.KnownHostsFile + ")"
}

// transport describes the encryption of conn for `producer check`.
func (d *dialer) transport(conn *client.Conn) string {
	tc, ok := conn.Conn.Conn.(*tls.Conn)
	if !ok {
		return "unencrypted (source.tls.mode " + d.cfg.TLS.mode(d.cfg.Host) + ")"
	}
	return tls.VersionName(tc.ConnectionState().Version) + " (source.tls.mode " + d.cfg.TLS.mode(d.cfg.Host) + ")"
}

// tlsHint adds the fix to a connection refused for its transport.
// MariaDB refuses a connection without TLS under require_secure_transport
// as "Access denied" (MySQL says "insecure transport").
func tlsHint(err error, mode string, encrypted bool) string {
	var me *mysql.MyError
	switch {
	case errors.As(err, &me) && strings.Contains(strings.ToLower(me.Message), "insecure transport"):
		return fmt.Sprintf(" (the server requires TLS, source.tls.mode is %s: set it to verify-ca or verify-identity with source.tls.ca_file)", mode)
	case errors.As(err, &me) && me.Code == mysql.ER_ACCESS_DENIED_ERROR && !encrypted:
		return fmt.Sprintf(" (without TLS: source.tls.mode is %s; if the server requires TLS (require_secure_transport, or a user created REQUIRE SSL), set source.tls.mode to verify-ca or verify-identity with source.tls.ca_file)", mode)
	case mode == TLSVerifyIdentity && strings.Contains(err.Error(), "x509:"):
		return " (source.tls.mode verify-identity, the default for a remote source, could not verify the server's certificate: " +
			"for RDS set source.tls.ca_file to Amazon's bundle, https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem; " +
			"a server reached by another name than its certificate's needs source.tls.server_name; " +
			"source.tls.mode: preferred encrypts without verifying, and says so)"
	case strings.Contains(err.Error(), errNoTLS):
		return fmt.Sprintf(" (source.tls.mode %s needs TLS, which the server does not offer: configure TLS on the server or lower source.tls.mode)", mode)
	}
	return ""
}

// text returns a cell of a query result as a string of its own. go-mysql's
// GetString returns a view of the result's buffer, which the next query on
// the connection reuses: a schema built from such a string would change
// under our feet.
func text(r *mysql.Result, row, col int) string {
	s, _ := r.GetString(row, col)
	return strings.Clone(s)
}

// queries is the Reader's query connection to the source, beside the
// binlog stream: the server's position, its server_id, schemas and row
// estimates. The stream, the schema catalog and the snapshotter all ask
// through it, from the goroutine calling ReadTx.
type queries struct {
	conn   *client.Conn // replaced when lost (live)
	dialer *dialer
	log    *slog.Logger
	flavor string
}

// live makes the query connection again when it was lost (a dropped SSH
// tunnel or network failure, the server's wait_timeout): the binlog stream
// reconnects by itself, and the schema reads it leads to must too. Called
// before those reads, which are rare (a table's first rows without full row
// metadata, a DDL): a ping each.
func (q *queries) live(ctx context.Context) error {
	if err := q.conn.Ping(); err == nil {
		return nil
	}
	conn, err := q.dialer.dial(ctx, "")
	if err != nil {
		return fmt.Errorf("query connection lost; again: %w", err)
	}
	q.conn.Close()
	q.conn = conn
	q.log.Info("query connection to the source made again")
	return nil
}

// current returns the server's current binlog position (Reader.Current).
func (q *queries) current(ctx context.Context) (Start, error) {
	if err := q.live(ctx); err != nil { // snapshots ask at every chunk window
		return Start{}, err
	}
	res, err := q.conn.Execute("SHOW MASTER STATUS")
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_PARSE_ERROR {
		res, err = q.conn.Execute("SHOW BINARY LOG STATUS") // MySQL 8.4 removed the old name
	}
	if err != nil {
		return Start{}, fmt.Errorf("read current binlog position (needs REPLICATION CLIENT / BINLOG MONITOR): %w", err)
	}
	defer res.Close()
	if res.RowNumber() == 0 {
		return Start{}, errors.New("SHOW MASTER STATUS is empty: the binlog is off (set log_bin)")
	}
	file := text(res, 0, 0)
	pos, _ := res.GetUint(0, 1)
	s := Start{File: file, Pos: pos}
	if q.flavor == mysql.MySQLFlavor && res.ColumnNumber() >= 5 {
		s.GTID = strings.ReplaceAll(text(res, 0, 4), "\n", "") // Executed_Gtid_Set at file:pos
	}
	return s, nil
}

// serverID returns the source server's server_id.
func (q *queries) serverID() (uint32, error) {
	res, err := q.conn.Execute("SELECT @@server_id")
	if err != nil {
		return 0, fmt.Errorf("read server_id: %w", err)
	}
	defer res.Close()
	id, _ := res.GetUint(0, 0)
	return uint32(id), nil
}

// estimate is information_schema's row estimate of a table (for progress).
func (q *queries) estimate(db, table string) int64 {
	res, err := q.conn.Execute("SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, table)
	if err != nil {
		return 0
	}
	defer res.Close()
	n, _ := res.GetInt(0, 0)
	return n
}
