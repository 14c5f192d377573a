package binlog

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Validate names the key of every problem of source.ssh and source.tls, and
// all of them at once.
func TestValidateSSHAndTLS(t *testing.T) {
	valid := func(edit func(c *Config)) *Config {
		c := &Config{Host: "db", User: "strait"}
		c.Defaults()
		edit(c)
		return c
	}
	tunnel := func(c *Config) {
		c.SSH = SSHConfig{Host: "bastion", User: "ec2-user", KeyFile: "id_ed25519", KnownHostsFile: "known_hosts"}
	}
	tests := []struct {
		name string
		cfg  *Config
		want []string // one line of the joined error each; none: valid
	}{
		{name: "defaults: direct, TLS preferred", cfg: valid(func(*Config) {})},
		{name: "tunnel", cfg: valid(func(c *Config) { tunnel(c); c.Defaults() })},
		{name: "tunnel with an agent only", cfg: valid(func(c *Config) {
			tunnel(c)
			c.SSH.KeyFile, c.SSH.AgentSocket = "", "/run/agent.sock"
			c.Defaults()
		})},
		{name: "tunnel without host key check, on purpose", cfg: valid(func(c *Config) {
			tunnel(c)
			c.SSH.KnownHostsFile, c.SSH.InsecureIgnoreHostKey = "", true
			c.Defaults()
		})},
		{name: "tunnel keys without a bastion", cfg: valid(func(c *Config) {
			tunnel(c)
			c.SSH.Host = ""
		}), want: []string{
			"source.ssh.user: set, but source.ssh.host is empty (no tunnel)",
			"source.ssh.key_file: set, but source.ssh.host is empty (no tunnel)",
			"source.ssh.known_hosts_file: set, but source.ssh.host is empty (no tunnel)",
		}},
		{name: "tunnel missing everything", cfg: valid(func(c *Config) {
			c.SSH = SSHConfig{Host: "bastion", Port: 70000, KeepaliveInterval: -time.Second, Timeout: -time.Second}
		}), want: []string{
			"source.ssh.port: 70000 is not a TCP port",
			"source.ssh.user: required with source.ssh.host",
			"source.ssh.key_file: required with source.ssh.host (or an ssh-agent: source.ssh.agent_socket / SSH_AUTH_SOCK)",
			"source.ssh.known_hosts_file: required with source.ssh.host: the bastion's host key is always verified (e.g. ssh-keyscan -p PORT HOST > known_hosts, then check the fingerprint)",
			"source.ssh.keepalive_interval: -1s is negative",
			"source.ssh.timeout: -1s is negative",
		}},
		{name: "two passphrases", cfg: valid(func(c *Config) {
			tunnel(c)
			c.SSH.Passphrase, c.SSH.PassphraseFile = "secret", "passphrase"
			c.Defaults()
		}), want: []string{"source.ssh.passphrase and source.ssh.passphrase_file: set at most one"}},
		{name: "a passphrase without a key", cfg: valid(func(c *Config) {
			tunnel(c)
			c.SSH.KeyFile, c.SSH.AgentSocket, c.SSH.Passphrase = "", "/run/agent.sock", "secret"
			c.Defaults()
		}), want: []string{"source.ssh.passphrase: set, but source.ssh.key_file is empty"}},
		{name: "known hosts and the opt-out", cfg: valid(func(c *Config) {
			tunnel(c)
			c.SSH.InsecureIgnoreHostKey = true
			c.Defaults()
		}), want: []string{"source.ssh.insecure_ignore_host_key: set together with source.ssh.known_hosts_file; choose one"}},
		{name: "verify-ca with a bundle and a client certificate", cfg: valid(func(c *Config) {
			c.TLS = TLSConfig{Mode: "verify-ca", CAFile: "rds-global-bundle.pem", CertFile: "client.pem", KeyFile: "client-key.pem"}
		})},
		{name: "verify-identity with a server name", cfg: valid(func(c *Config) {
			c.TLS = TLSConfig{Mode: "verify-identity", ServerName: "db.internal"}
		})},
		{name: "unknown mode", cfg: valid(func(c *Config) { c.TLS.Mode = "VERIFY_CA" }), want: []string{
			`source.tls.mode: "VERIFY_CA", want disabled, preferred, required, verify-ca or verify-identity`,
		}},
		{name: "TLS keys the mode does not use", cfg: valid(func(c *Config) {
			c.TLS = TLSConfig{Mode: "disabled", CAFile: "ca.pem", ServerName: "db", CertFile: "client.pem"}
		}), want: []string{
			"source.tls.ca_file: used only by source.tls.mode verify-ca or verify-identity, not disabled",
			"source.tls.server_name: used only by source.tls.mode verify-identity, not disabled",
			"source.tls.cert_file and source.tls.key_file: set both or neither",
			"source.tls.cert_file: set, but source.tls.mode is disabled",
		}},
		{name: "ca_file with required", cfg: valid(func(c *Config) { c.TLS = TLSConfig{Mode: "required", CAFile: "ca.pem"} }), want: []string{
			"source.tls.ca_file: used only by source.tls.mode verify-ca or verify-identity, not required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := tt.cfg.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Validate (-got +want):\n%s", diff)
			}
		})
	}
}

// The defaults of the keys added for secure connectivity.
func TestSecureDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	got := []any{c.SSH.Port, c.SSH.KeepaliveInterval, c.SSH.Timeout,
		c.TLS.mode("replica.abc.eu-west-1.rds.amazonaws.com"), c.TLS.mode("10.0.0.7"), c.TLS.mode("127.0.0.1"), c.TLS.mode("localhost"), c.TLS.mode("::1")}
	// Secure by default: the certificate and its name are verified unless
	// the database is on this machine.
	want := []any{22, 15 * time.Second, 15 * time.Second, "verify-identity", "verify-identity", "preferred", "preferred", "preferred"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("defaults (-got +want):\n%s", diff)
	}
	c.TLS.Mode = TLSPreferred
	if got := c.TLS.mode("replica.abc.eu-west-1.rds.amazonaws.com"); got != TLSPreferred {
		t.Errorf("preferred when named: got %s", got)
	}
}

// The guardrail's keys: defaults, and Validate naming each below its floor.
func TestValidateRetentionKeys(t *testing.T) {
	c := &Config{Host: "db", User: "strait"}
	c.Defaults()
	if c.RetentionInterval != time.Minute || c.LostClockMargin != 5*time.Minute {
		t.Errorf("defaults: retention_interval %s, lost_clock_margin %s; want 1m and 5m", c.RetentionInterval, c.LostClockMargin)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.RetentionInterval, c.LostClockMargin = 500*time.Millisecond, -time.Second
	err := c.Validate()
	for _, key := range []string{"source.retention_interval", "source.lost_clock_margin"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() = %v, want it to name %s", err, key)
		}
	}
}
