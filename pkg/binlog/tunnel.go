package binlog

// The SSH tunnel to the database (source.ssh): every connection the producer
// makes to the source — the binlog stream, queries, snapshots, checks — is a
// channel of one SSH connection to the bastion, made on first use and made
// again on the next dial after it dropped. A dropped tunnel ends the
// database connections in it like a network failure would, and the reader
// reconnects as it does after any lost connection.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// tunnel dials through the bastion of source.ssh.
type tunnel struct {
	cfg     *SSHConfig
	addr    string // the bastion's host:port
	hostKey ssh.HostKeyCallback
	signer  ssh.Signer // from key_file; nil with an agent only
	log     *slog.Logger

	mu     sync.Mutex
	client *ssh.Client // nil until the first dial and after a drop
	closed bool
	wg     sync.WaitGroup
}

// newTunnel reads the key and the known_hosts file; it connects on the
// first dial.
func newTunnel(cfg *SSHConfig, log *slog.Logger) (*tunnel, error) {
	t := &tunnel{cfg: cfg, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), log: log}
	if cfg.InsecureIgnoreHostKey {
		log.Warn("INSECURE: source.ssh.insecure_ignore_host_key is set: the bastion's host key is not verified, "+
			"so anyone on the path can impersonate it and read the database traffic; set source.ssh.known_hosts_file instead",
			"bastion", t.addr)
		t.hostKey = ssh.InsecureIgnoreHostKey()
	} else {
		known, err := knownhosts.New(cfg.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("source.ssh.known_hosts_file: %w", err)
		}
		t.hostKey = func(host string, remote net.Addr, key ssh.PublicKey) error {
			return hostKeyError(known(host, remote, key), host, key, cfg.KnownHostsFile)
		}
	}
	if cfg.KeyFile != "" {
		var err error
		if t.signer, err = loadKey(cfg); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// loadKey reads source.ssh.key_file, decrypting it with the passphrase.
func loadKey(cfg *SSHConfig) (ssh.Signer, error) {
	pem, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("source.ssh.key_file: %w", err)
	}
	pass := cfg.Passphrase
	if cfg.PassphraseFile != "" {
		b, err := os.ReadFile(cfg.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("source.ssh.passphrase_file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	if pass == "" {
		signer, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("source.ssh.key_file %s is encrypted: set STRAIT_SOURCE_SSH_PASSPHRASE or source.ssh.passphrase_file", cfg.KeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("source.ssh.key_file %s: %w", cfg.KeyFile, err)
		}
		return signer, nil
	}
	signer, err := ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
	if err != nil {
		// The error never carries the passphrase.
		return nil, fmt.Errorf("source.ssh.key_file %s with the configured passphrase: %w", cfg.KeyFile, err)
	}
	return signer, nil
}

// hostKeyError explains a failed host-key check, naming the host and the
// known_hosts file.
func hostKeyError(err error, host string, key ssh.PublicKey, file string) error {
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	fp := key.Type() + " " + ssh.FingerprintSHA256(key)
	if len(ke.Want) > 0 {
		return fmt.Errorf("ssh bastion %s: host key %s does not match the one in known_hosts file %s (line %d): "+
			"someone may be impersonating the bastion; if its key really changed, replace that line",
			host, fp, file, ke.Want[0].Line)
	}
	return fmt.Errorf("ssh bastion %s: not in known_hosts file %s (it offered host key %s); "+
		"add its key after checking the fingerprint, e.g. ssh-keyscan -p PORT HOST >> %s", host, file, fp, file)
}

// DialContext opens a connection to addr as seen from the bastion. A
// tunnel that dropped since the last dial is made again first.
func (t *tunnel) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := t.connected(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := c.DialContext(ctx, network, addr)
	if err != nil && ctx.Err() == nil {
		// The SSH connection may be dead without having noticed yet (no
		// keepalive since): one more try on a new one.
		t.drop(c, err)
		if c, err = t.connected(ctx); err != nil {
			return nil, err
		}
		conn, err = c.DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("through ssh bastion %s: %w", t.addr, err)
	}
	return &tunnelConn{Conn: conn}, nil
}

// connected returns the SSH connection, making it when there is none.
func (t *tunnel) connected(ctx context.Context) (*ssh.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("ssh bastion %s: tunnel closed", t.addr)
	}
	if t.client != nil {
		return t.client, nil
	}
	timeout := t.cfg.Timeout
	if timeout <= 0 { // a configuration without Defaults
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tcp, err := (&net.Dialer{}).DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("ssh bastion %s: %w", t.addr, err)
	}
	// The handshake takes no context: a deadline, and ctx closes the
	// connection when it ends first.
	deadline, _ := ctx.Deadline()
	tcp.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	auth, closeAgent, err := t.auth()
	if err != nil {
		stop()
		tcp.Close()
		return nil, err
	}
	conn, chans, reqs, err := ssh.NewClientConn(tcp, t.addr, &ssh.ClientConfig{
		User: t.cfg.User, Auth: auth, HostKeyCallback: t.hostKey, Timeout: timeout,
	})
	closeAgent()
	if !stop() || err != nil {
		tcp.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("ssh bastion %s as %s: %w", t.addr, t.cfg.User, err)
	}
	tcp.SetDeadline(time.Time{})
	c := ssh.NewClient(conn, chans, reqs)
	t.client = c
	t.log.Info("ssh tunnel connected", "bastion", t.addr, "user", t.cfg.User)
	ended := make(chan struct{})
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		err := c.Wait()
		close(ended)
		t.drop(c, err)
	}()
	go func() {
		defer t.wg.Done()
		t.keepalive(c, ended)
	}()
	return c, nil
}

// auth returns the login methods: the key file's key, then the agent's
// keys. closeAgent ends the agent connection once logged in.
func (t *tunnel) auth() (methods []ssh.AuthMethod, closeAgent func(), err error) {
	var signers []ssh.Signer
	if t.signer != nil {
		signers = append(signers, t.signer)
	}
	closeAgent = func() {}
	if t.cfg.AgentSocket != "" {
		keys, sock, err := agentKeys(t.cfg.AgentSocket)
		switch {
		case err != nil && t.signer == nil:
			return nil, nil, err
		case err != nil: // the key file's key may do
			t.log.Warn("ssh-agent not usable; logging in with source.ssh.key_file only", "err", err)
		default:
			signers = append(signers, keys...)
			closeAgent = func() { sock.Close() }
		}
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closeAgent, nil
}

// agentKeys returns the keys of the ssh-agent at socket and the connection
// to it, which signs with them until closed.
func agentKeys(socket string) ([]ssh.Signer, net.Conn, error) {
	sock, err := net.Dial("unix", socket)
	if err != nil {
		return nil, nil, fmt.Errorf("source.ssh.agent_socket %s: %w", socket, err)
	}
	keys, err := agent.NewClient(sock).Signers()
	if err != nil {
		sock.Close()
		return nil, nil, fmt.Errorf("source.ssh.agent_socket %s: %w", socket, err)
	}
	return keys, sock, nil
}

// keepalive asks the bastion for an answer every interval until the
// connection ends; one not answered within the interval closes it (a
// silent network would otherwise leave the stream waiting for
// source.read_timeout).
func (t *tunnel) keepalive(c *ssh.Client, ended <-chan struct{}) {
	every := t.cfg.KeepaliveInterval
	if every <= 0 { // a configuration without Defaults
		every = 15 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ended:
			return
		case <-tick.C:
		}
		answered := make(chan error, 1)
		go func() { // ends when answered or when c is closed
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-ended:
			return
		case err := <-answered:
			if err == nil {
				continue
			}
			t.log.Warn("ssh tunnel keepalive failed; closing the tunnel", "bastion", t.addr, "err", err)
		case <-time.After(every):
			t.log.Warn("ssh tunnel keepalive unanswered; closing the tunnel", "bastion", t.addr, "after", every.String())
		}
		c.Close()
		return
	}
}

// drop forgets c, when it is still the tunnel's connection, so that the
// next dial makes a new one.
func (t *tunnel) drop(c *ssh.Client, why error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client != c {
		return
	}
	t.client = nil
	c.Close()
	t.log.Warn("ssh tunnel dropped; the next connection makes it again", "bastion", t.addr, "err", why)
}

// Close closes the tunnel and every connection in it.
func (t *tunnel) Close() {
	t.mu.Lock()
	c := t.client
	t.client, t.closed = nil, true
	t.mu.Unlock()
	if c != nil {
		c.Close()
	}
	t.wg.Wait()
}

// tunnelConn is a connection through the tunnel. SSH channels have no
// deadlines; go-mysql sets a read deadline before each packet of the
// binlog stream (source.read_timeout) and abandons the connection when it
// passes. So a read deadline that passes closes the channel: the pending
// Read fails with os.ErrDeadlineExceeded, as on TCP, and the connection is
// not used again. Write deadlines are not supported (go-mysql sets none).
type tunnelConn struct {
	net.Conn
	mu      sync.Mutex
	timer   *time.Timer
	expired atomic.Bool
}

func (c *tunnelConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.expired.Load() {
		err = fmt.Errorf("read through the ssh tunnel: %w", os.ErrDeadlineExceeded)
	}
	return n, err
}

// SetDeadline sets the read deadline (see tunnelConn).
func (c *tunnelConn) SetDeadline(d time.Time) error { return c.SetReadDeadline(d) }

// SetReadDeadline arms the timer that closes the connection at d; a zero d
// disarms it.
func (c *tunnelConn) SetReadDeadline(d time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	if d.IsZero() {
		return nil
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(time.Until(d), func() {
			c.expired.Store(true)
			c.Conn.Close()
		})
		return nil
	}
	c.timer.Reset(time.Until(d))
	return nil
}

// SetWriteDeadline is accepted and ignored (see tunnelConn).
func (c *tunnelConn) SetWriteDeadline(time.Time) error { return nil }

// Close disarms the deadline and closes the channel.
func (c *tunnelConn) Close() error {
	c.SetReadDeadline(time.Time{})
	return c.Conn.Close()
}
