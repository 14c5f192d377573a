package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// sshArgs are the flags of a tunnel through sshd.
func sshArgs(sshd *testenv.SSHD, extra ...string) []string {
	return append([]string{"-source.ssh.host", sshd.Host, "-source.ssh.port", fmt.Sprint(sshd.Port),
		"-source.ssh.user", sshd.User, "-source.ssh.key_file", sshd.KeyFile,
		"-source.ssh.known_hosts_file", sshd.KnownHostsFile, "-source.ssh.keepalive_interval", "2s"}, extra...)
}

// topicOffsets sums the last stable offsets of topic's partitions: it
// grows with every commit.
func topicOffsets(t *testing.T, ctx context.Context, topic string) int64 {
	adm := kadm.NewClient(mustClientOf(t, env.kafka.ListenAddrs()))
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// The producer reads the binlog through a real OpenSSH bastion, with an
// encrypted key whose passphrase comes from a file. The bastion drops every
// connection while rows stream in — first with the stream read by binlog
// position, then, restarted from its checkpoint, by GTID with transactions
// of several rows — and the producer makes the tunnel again each time:
// every row written before, during and after arrives exactly once.
func TestStreamsThroughSSHTunnelAcrossDrops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	sshd, err := testenv.StartSSHD(ctx, dir, testenv.SSHDOptions{Passphrase: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	passFile := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(passFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.db.Exec(ctx, "", "CREATE DATABASE tunnel", "CREATE TABLE tunnel.t (id INT PRIMARY KEY, v VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	const topic = "ssh1.tunnel.t"
	args := producerArgs(t, ctx, "ssh1", "tunnel.*", sshArgs(sshd, "-source.ssh.passphrase_file", passFile)...)

	// streamAcrossDrops runs a producer with args while a writer inserts
	// rows from id on, perTx in each transaction, and drops the tunnel
	// drops times, each once rows went through the tunnel made after the
	// previous drop. It returns the next id.
	streamAcrossDrops := func(args []string, id, perTx, drops int) int {
		p := startProducer(t, args)
		var next atomic.Int64
		next.Store(int64(id))
		stop, done := make(chan struct{}), make(chan error, 1)
		go func() {
			conn, err := env.db.Conn(ctx, "tunnel")
			if err != nil {
				done <- err
				return
			}
			defer conn.Close()
			for i := id; ; i += perTx {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				stmts := []string{"BEGIN"}
				for j := i; j < i+perTx; j++ {
					stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, 'row %d')", j, j))
				}
				for _, q := range append(stmts, "COMMIT") {
					if _, err := conn.Execute(q); err != nil {
						done <- err
						return
					}
				}
				next.Store(int64(i + perTx))
			}
		}()
		for drop := range drops + 1 {
			// The producer's log says when the tunnel is up (again): the
			// bastion's processes of a dropped connection may linger.
			waitFor(t, ctx, fmt.Sprintf("the tunnel before drop %d", drop+1), func() bool {
				return strings.Count(p.logs.String(), "ssh tunnel connected") > drop
			})
			base := topicOffsets(t, ctx, topic)
			waitFor(t, ctx, fmt.Sprintf("rows through the tunnel before drop %d", drop+1), func() bool {
				return topicOffsets(t, ctx, topic) > base+100
			})
			if drop == drops {
				break // rows went through after the last drop
			}
			killed, err := sshd.DropConnections()
			if err != nil {
				t.Fatal(err)
			}
			if killed == 0 {
				t.Fatalf("drop %d: the bastion serves no connection: the producer does not go through the tunnel", drop+1)
			}
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		waitEachOnce(t, ctx, topic, 0, int(next.Load()))
		if err := p.stop(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(p.logs.String(), "ssh tunnel connected"); got < drops+1 {
			t.Errorf("the tunnel was made %d times, want at least %d (once, then after each drop)", got, drops+1)
		}
		return int(next.Load())
	}
	n := streamAcrossDrops(args, 0, 1, 3)
	n = streamAcrossDrops(withoutStart(args), n, 7, 6)
	t.Logf("%d rows exactly once across 9 dropped tunnels", n)
}

// The bastion's host key is verified against the known_hosts file: a
// different key, or no entry for the bastion, is refused by `producer run`
// and `producer check` with an error naming the bastion and the file; the
// right one works. The key's passphrase comes from the environment.
func TestTunnelRefusesWrongHostKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	sshd, err := testenv.StartSSHD(ctx, dir, testenv.SSHDOptions{Passphrase: "from the environment"})
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	getenv := func(k string) string {
		if k == "STRAIT_SOURCE_SSH_PASSPHRASE" {
			return "from the environment"
		}
		return ""
	}
	// Another server's key under the bastion's address.
	other, err := testenv.StartSSHD(ctx, t.TempDir(), testenv.SSHDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other.Stop()
	otherKey, err := os.ReadFile(other.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "known_hosts_wrong")
	line := strings.Replace(string(otherKey), fmt.Sprint(other.Port), fmt.Sprint(sshd.Port), 1)
	if err := os.WriteFile(wrong, []byte("# another key for the bastion\n"+line), 0o600); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "known_hosts_unknown")
	if err := os.WriteFile(unknown, otherKey, 0o600); err != nil { // only the other server's port
		t.Fatal(err)
	}
	check := func(knownHosts string) (string, error) {
		args := append([]string{"check",
			"-source.host", env.db.Host, "-source.port", fmt.Sprint(env.db.Port), "-source.user", env.db.User,
			"-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","), "-kafka.schema_registry_url", env.registry.URL(),
		}, sshArgs(sshd, "-source.ssh.known_hosts_file", knownHosts)...)
		var out bytes.Buffer
		err := run(ctx, args, getenv, &out, io.Discard)
		return out.String(), err
	}

	out, err := check(sshd.KnownHostsFile)
	if err != nil {
		t.Fatalf("check through the tunnel: %v\n%s", err, out)
	}
	if want := "PASS connect: " + env.db.Addr() + " as root@127.0.0.1 through ssh bastion " + sshd.Addr() + " (host key verified against " + sshd.KnownHostsFile + ")"; !strings.Contains(out, want) {
		t.Errorf("check output lacks %q:\n%s", want, out)
	}

	for _, tt := range []struct{ file, want string }{
		{wrong, "ssh bastion " + sshd.Addr() + ": host key ssh-ed25519 SHA256:"},
		{unknown, "ssh bastion " + sshd.Addr() + ": not in known_hosts file " + unknown},
	} {
		out, err := check(tt.file)
		if err == nil || !strings.Contains(out, "FAIL connect: ") || !strings.Contains(out, tt.want) {
			t.Errorf("check with %s: err %v, want a FAIL connect line with %q:\n%s", filepath.Base(tt.file), err, tt.want, out)
		}
		if tt.file == wrong && !strings.Contains(out, "does not match the one in known_hosts file "+wrong+" (line 2)") {
			t.Errorf("check with another host key does not name the file and line:\n%s", out)
		}
		args := append(producerArgs(t, ctx, "ssh2", "nothing.*"), sshArgs(sshd, "-source.ssh.known_hosts_file", tt.file)...)
		var logs bytes.Buffer
		err = run(ctx, args, getenv, io.Discard, &logs)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run with %s: %v, want an error with %q", filepath.Base(tt.file), err, tt.want)
		}
	}
	if strings.Contains(sshd.Log(), "Accepted publickey") && strings.Count(sshd.Log(), "Accepted publickey") > 1 {
		t.Errorf("a client that refused the host key logged in:\n%s", sshd.Log())
	}
}

// MariaDB requiring TLS (require_secure_transport): verify-ca (with the
// server's CA alone or in a bundle of several) and verify-identity connect
// and stream, a client certificate is presented; another CA, a wrong
// server name, a missing client certificate and mode disabled fail with
// errors saying why.
func TestTLSRequiredByServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files, err := testenv.NewCerts(t.TempDir(), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testenv.NewCerts(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// A bundle of several CAs, as AWS publishes for RDS.
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	var pems []byte
	for _, f := range []string{otherCA.CAFile, files.CAFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pems = append(pems, b...)
	}
	if err := os.WriteFile(bundle, pems, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{ServerID: 7, TLS: files, RequireSecureTransport: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	if err := db.Exec(ctx, "", "CREATE USER cert@'%' REQUIRE X509", "GRANT SELECT, REPLICATION CLIENT ON *.* TO cert@'%'"); err != nil {
		t.Fatal(err)
	}
	source := func(extra ...string) []string {
		return append([]string{"-source.host", db.Host, "-source.port", fmt.Sprint(db.Port), "-source.user", db.User,
			"-kafka.brokers", strings.Join(env.kafka.ListenAddrs(), ","), "-kafka.schema_registry_url", env.registry.URL()}, extra...)
	}
	check := func(extra ...string) string {
		var out bytes.Buffer
		run(ctx, append([]string{"check"}, source(extra...)...), func(string) string { return "" }, &out, io.Discard)
		return out.String()
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"verify-ca", []string{"-source.tls.mode", "verify-ca", "-source.tls.ca_file", files.CAFile}, "PASS connect: " + db.Addr() + " as root@127.0.0.1, TLS 1.3 (source.tls.mode verify-ca)"},
		{"client certificate", []string{"-source.user", "cert", "-source.tls.mode", "verify-ca", "-source.tls.ca_file", files.CAFile,
			"-source.tls.cert_file", files.ClientCertFile, "-source.tls.key_file", files.ClientKeyFile}, "PASS connect: " + db.Addr() + " as cert@%, TLS 1.3"},
		{"no client certificate", []string{"-source.user", "cert", "-source.tls.mode", "verify-ca", "-source.tls.ca_file", files.CAFile},
			"FAIL connect: connect to " + db.Addr() + " as cert: "},
		{"verify-identity", []string{"-source.tls.mode", "verify-identity", "-source.tls.ca_file", files.CAFile}, "PASS connect: "},
		{"verify-ca with a bundle", []string{"-source.tls.mode", "verify-ca", "-source.tls.ca_file", bundle}, "PASS connect: "},
		{"required", []string{"-source.tls.mode", "required"}, "PASS connect: "},
		{"another CA", []string{"-source.tls.mode", "verify-ca", "-source.tls.ca_file", otherCA.CAFile},
			"source.tls.mode verify-ca: the server's certificate (subject \"CN=127.0.0.1\", issuer \"CN=strait test CA"},
		{"another CA names the file", []string{"-source.tls.mode", "verify-ca", "-source.tls.ca_file", otherCA.CAFile},
			"is not signed by a CA of source.tls.ca_file " + otherCA.CAFile},
		{"wrong server name", []string{"-source.tls.mode", "verify-identity", "-source.tls.ca_file", files.CAFile, "-source.tls.server_name", "db.example"},
			"certificate is valid for localhost, not db.example"},
		{"disabled", []string{"-source.tls.mode", "disabled"}, "FAIL connect: connect to " + db.Addr() + " as root: "},
		{"disabled says why", []string{"-source.tls.mode", "disabled"}, "(without TLS: source.tls.mode is disabled; if the server requires TLS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if out := check(tt.args...); !strings.Contains(out, tt.want) {
				t.Errorf("check output lacks %q:\n%s", tt.want, out)
			}
		})
	}

	// The stream itself, verify-ca with the bundle.
	if err := db.Exec(ctx, "", "CREATE DATABASE tls", "CREATE TABLE tls.t (id INT PRIMARY KEY, v VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"run", "-source.include", "tls.*", "-source.start_position", *rows[0][0] + ":" + *rows[0][1],
		"-kafka.topic_prefix", "tls1", "-kafka.partitions", "3", "-http_addr", "127.0.0.1:0", "-log_format", "text"},
		source("-source.tls.mode", "verify-ca", "-source.tls.ca_file", bundle)...)
	p := startProducer(t, args)
	var stmts []string
	for i := range 50 {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, 'row %d')", i, i))
	}
	if err := db.Exec(ctx, "tls", stmts...); err != nil {
		t.Fatal(err)
	}
	waitEachOnce(t, ctx, "tls1.tls.t", 0, 50)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

// The SSH key's passphrase is a secret: taken from the environment, never
// from a flag or the YAML file, and redacted when the configuration is
// printed.
func TestSSHPassphraseIsSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	getenv := func(k string) string {
		if k == "STRAIT_SOURCE_SSH_PASSPHRASE" {
			return "hunter2-ssh"
		}
		return ""
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"run", "-print-config"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "source.ssh.passphrase: <redacted>\n") || strings.Contains(out.String(), "hunter2-ssh") {
		t.Errorf("printed configuration does not redact the passphrase:\n%s", out.String())
	}
	if err := run(ctx, []string{"run", "-source.ssh.passphrase", "x"}, getenv, io.Discard, io.Discard); err == nil {
		t.Error("the passphrase was accepted as a flag")
	}
	file := filepath.Join(t.TempDir(), "strait.yaml")
	if err := os.WriteFile(file, []byte("source:\n  ssh:\n    passphrase: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"run", "-config", file}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("the passphrase in the YAML file: %v, want an error naming it", err)
	}
}
