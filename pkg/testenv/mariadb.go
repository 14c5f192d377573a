// Package testenv starts the real parts that strait's tests and local demo
// talk to: a MariaDB server with the binlog configured as strait needs it, an
// in-process Kafka cluster (kfake) and an in-process Schema Registry
// (srfake). Everything runs on free loopback ports with temporary state, so
// any number of environments may run at once, in one process or in parallel
// test packages.
//
// A missing mariadbd is a failure, never a skip: CI installs Debian's
// mariadb-server (.ci/run), and a developer sees exactly what to install.
package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// MariaDB is a running MariaDB server with its own data directory.
type MariaDB struct {
	Host     string // always 127.0.0.1
	Port     int
	User     string // an administrative user reachable over TCP
	Password string
	ServerID uint32
	Dir      string // data directory, removed by Stop

	cmd    *exec.Cmd
	exited chan struct{}
	logf   string
	tls    *tls.Config // for Conn, when the server has TLS
}

// MariaDBOptions tunes a server. The zero value gives the configuration strait
// expects from a production source (ROW format, FULL image, FULL metadata).
type MariaDBOptions struct {
	// ServerID is the server's server_id; 1 when zero.
	ServerID uint32
	// RowMetadata is binlog_row_metadata; "FULL" when empty.
	RowMetadata string
	// Args are extra mariadbd arguments, e.g. "--read-only=1".
	Args []string
	// TLS, when set, makes the server offer TLS with these certificates
	// (ssl-ca, ssl-cert, ssl-key; see NewCerts). Conn then connects with TLS.
	TLS *Certs
	// RequireSecureTransport refuses TCP connections without TLS
	// (require_secure_transport=ON); needs TLS.
	RequireSecureTransport bool
}

// Addr returns "host:port".
func (m *MariaDB) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// FindMariaDB returns the path of the server binary or an error saying what to
// install.
func FindMariaDB() (string, error) {
	for _, name := range []string{"mariadbd", "mysqld"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		if p := "/usr/sbin/" + name; fileExists(p) {
			return p, nil
		}
	}
	return "", errors.New("testenv: mariadbd not found: install the MariaDB server (Debian: apt-get install mariadb-server) — strait's integration tests need a real server")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// templateDir holds one initialised data directory per process; each server
// copies it instead of running mariadb-install-db again (saves seconds).
var template struct {
	once sync.Once
	dir  string
	err  error
}

// StartMariaDB starts a server on a free port with a fresh data directory and
// waits until it accepts connections. Stop it with Stop.
func StartMariaDB(ctx context.Context, opts MariaDBOptions) (*MariaDB, error) {
	bin, err := FindMariaDB()
	if err != nil {
		return nil, err
	}
	template.once.Do(func() { template.dir, template.err = installTemplate(ctx, bin) })
	if template.err != nil {
		return nil, template.err
	}
	dir, err := os.MkdirTemp("", "strait-mariadb-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.CommandContext(ctx, "cp", "-a", template.dir, data).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: copy data directory: %v: %s", err, out)
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	if opts.RowMetadata == "" {
		opts.RowMetadata = "FULL"
	}
	m := &MariaDB{Host: "127.0.0.1", User: "root", ServerID: opts.ServerID, Dir: dir, logf: filepath.Join(dir, "error.log")}
	if opts.TLS != nil {
		m.tls = opts.TLS.ClientConfig()
		m.tls.ServerName = m.Host
	}
	// A port picked by the kernel may be taken again before mariadbd binds
	// it; retry a few times rather than fail the test.
	for attempt := 0; ; attempt++ {
		m.Port, err = freePort()
		if err == nil {
			err = m.start(ctx, bin, data, opts)
		}
		if err == nil {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := m.bootstrap(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

func (m *MariaDB) start(ctx context.Context, bin, data string, opts MariaDBOptions) error {
	// A temporary directory of its own: a server starting deletes the
	// #sql* files it finds in its tmpdir, /tmp by default — the live
	// temporary tables of every other server on the machine, whose queries
	// then fail ("Error on delete of '/tmp/#sql-temptable-…'").
	tmp := filepath.Join(m.Dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + data,
		"--tmpdir=" + tmp,
		"--socket=" + m.socket(),
		"--pid-file=" + filepath.Join(m.Dir, "mariadbd.pid"),
		"--log-error=" + m.logf,
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(m.Port),
		"--server-id=" + strconv.FormatUint(uint64(opts.ServerID), 10),
		"--log-bin=" + filepath.Join(data, "mysql-bin"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--binlog-row-metadata=" + opts.RowMetadata,
		"--log-slave-updates=ON",
		"--gtid-strict-mode=ON",
		"--binlog-annotate-row-events=ON",
		"--innodb-buffer-pool-size=128M",
		"--innodb-log-file-size=64M",
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
		"--skip-name-resolve",
		"--max-connections=500",
		"--max-allowed-packet=256M",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if opts.TLS != nil {
		args = append(args, "--ssl-ca="+opts.TLS.CAFile, "--ssl-cert="+opts.TLS.ServerCertFile, "--ssl-key="+opts.TLS.ServerKeyFile)
	}
	if opts.RequireSecureTransport {
		args = append(args, "--require-secure-transport=ON")
	}
	args = append(args, opts.Args...)
	m.cmd = exec.Command(bin, args...)
	m.exited = make(chan struct{})
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start %s: %w", bin, err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := client.ConnectWithContext(ctx, m.socket(), "root", "", "", time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-m.exited:
			return fmt.Errorf("testenv: mariadbd exited during start-up: %s", m.tailLog())
		case <-ctx.Done():
			m.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // poll interval while waiting for the socket
		}
		if time.Now().After(deadline) {
			m.kill()
			return fmt.Errorf("testenv: mariadbd not ready after 60s: %v: %s", err, m.tailLog())
		}
	}
}

// bootstrap creates an administrative user reachable over TCP; the template
// only has root@localhost over the socket.
func (m *MariaDB) bootstrap(ctx context.Context) error {
	c, err := client.ConnectWithContext(ctx, m.socket(), "root", "", "", 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, q := range []string{
		"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ''",
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION",
	} {
		if _, err := c.Execute(q); err != nil {
			return fmt.Errorf("testenv: %s: %w", q, err)
		}
	}
	return nil
}

func (m *MariaDB) socket() string { return filepath.Join(m.Dir, "mysqld.sock") }

func (m *MariaDB) tailLog() string {
	b, _ := os.ReadFile(m.logf)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(string(b))
}

func (m *MariaDB) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		<-m.exited
	}
}

// Stop shuts the server down and removes its data directory.
func (m *MariaDB) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.exited:
		case <-time.After(20 * time.Second):
			m.kill()
		}
	}
	os.RemoveAll(m.Dir)
}

// Conn opens an administrative connection to database db ("" for none).
func (m *MariaDB) Conn(ctx context.Context, db string) (*client.Conn, error) {
	return client.ConnectWithContext(ctx, m.Addr(), m.User, m.Password, db, 10*time.Second,
		func(c *client.Conn) error { c.SetTLSConfig(m.tls); return nil })
}

// Exec runs statements on a new connection to db, stopping at the first error.
func (m *MariaDB) Exec(ctx context.Context, db string, stmts ...string) error {
	c, err := m.Conn(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, s := range stmts {
		if _, err := c.Execute(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// Query runs one statement and returns its rows as strings; NULL is
// returned as nil.
func (m *MariaDB) Query(ctx context.Context, db, q string, args ...any) ([][]*string, error) {
	c, err := m.Conn(ctx, db)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := c.Execute(q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer r.Close()
	return rowsAsStrings(r.Resultset), nil
}

func rowsAsStrings(rs *mysql.Resultset) [][]*string {
	if rs == nil {
		return nil
	}
	out := make([][]*string, len(rs.Values))
	for i, row := range rs.Values {
		out[i] = make([]*string, len(row))
		for j, v := range row {
			if v.Type == mysql.FieldValueTypeNull {
				continue
			}
			s := fmt.Sprint(v.Value())
			if b, ok := v.Value().([]byte); ok {
				s = string(b)
			}
			out[i][j] = &s
		}
	}
	return out
}

func installTemplate(ctx context.Context, bin string) (string, error) {
	dir, err := os.MkdirTemp("", "strait-mariadb-template-")
	if err != nil {
		return "", err
	}
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		install, err = exec.LookPath("mysql_install_db")
	}
	if err != nil {
		return "", errors.New("testenv: mariadb-install-db not found: install the MariaDB server (Debian: apt-get install mariadb-server)")
	}
	// The bootstrap's temporary tables go to a directory of its own, not
	// the shared /tmp: two test binaries installing at once (go test -p 2,
	// or by hand) failed there ("Could not remove temporary table").
	tmp, err := os.MkdirTemp("", "strait-mariadb-install-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	args := []string{"--no-defaults", "--datadir=" + dir, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--basedir=/usr", "--innodb-log-file-size=64M", "--tmpdir=" + tmp}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, install, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: %s: %v: %s", install, err, out)
	}
	return dir, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
