package binlog

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// A bastion that stops answering without closing the connection is found
// by the keepalive: the tunnel is closed (the connections in it fail
// instead of waiting for source.read_timeout) and the next dial makes a
// new one.
func TestTunnelKeepaliveReplacesSilentBastion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sshd, err := testenv.StartSSHD(ctx, t.TempDir(), testenv.SSHDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	cfg := sourceConfig(server)
	cfg.SSH = SSHConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile,
		KnownHostsFile: sshd.KnownHostsFile, KeepaliveInterval: 200 * time.Millisecond}
	cfg.Defaults()
	var logs testenv.Buffer
	d, conn := dialThrough(t, ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if n, err := sshd.Freeze(); err != nil || n == 0 {
		t.Fatalf("froze %d sshd processes: %v", n, err)
	}
	failed := make(chan error, 1)
	go func() { _, err := conn.Execute("SELECT 1"); failed <- err }()
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("a query through the frozen bastion succeeded")
		}
	case <-ctx.Done():
		t.Fatalf("a query through the frozen bastion still waits; log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "ssh tunnel keepalive unanswered; closing the tunnel") {
		t.Errorf("no keepalive warning in the log:\n%s", logs.String())
	}
	again, err := d.dial(ctx, "")
	if err != nil {
		t.Fatalf("dial after the tunnel was closed: %v", err)
	}
	defer again.Close()
	if _, err := again.Execute("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "ssh tunnel connected"); got != 2 {
		t.Errorf("tunnel made %d times, want 2:\n%s", got, logs.String())
	}
}

// An encrypted key needs its passphrase, and the error says where to put
// it; a wrong passphrase fails without showing it.
func TestTunnelKeyPassphrase(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("right one"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(passFile, []byte("right one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  SSHConfig
		want string // "" for success
	}{
		{"from the environment", SSHConfig{KeyFile: key, Passphrase: "right one"}, ""},
		{"from a file", SSHConfig{KeyFile: key, PassphraseFile: passFile}, ""},
		{"none", SSHConfig{KeyFile: key}, "source.ssh.key_file " + key + " is encrypted: set STRAIT_SOURCE_SSH_PASSPHRASE or source.ssh.passphrase_file"},
		{"wrong", SSHConfig{KeyFile: key, Passphrase: "wrong one"}, "source.ssh.key_file " + key + " with the configured passphrase: "},
		{"missing file", SSHConfig{KeyFile: key, PassphraseFile: filepath.Join(dir, "nope")}, "source.ssh.passphrase_file: open " + filepath.Join(dir, "nope")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadKey(&tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			case err != nil && (strings.Contains(err.Error(), "right one") || strings.Contains(err.Error(), "wrong one")):
				t.Errorf("the error shows the passphrase: %v", err)
			}
		})
	}
}

// With no key file, the keys of an ssh-agent (OpenSSH's own) log in; the
// agent's socket is source.ssh.agent_socket.
func TestTunnelLogsInWithAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	sshd, err := testenv.StartSSHD(ctx, dir, testenv.SSHDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	sock := filepath.Join(dir, "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatalf("start ssh-agent (Debian: openssh-client): %v", err)
	}
	defer func() { agentCmd.Process.Kill(); agentCmd.Wait() }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, err := os.Stat(sock); err != nil; _, err = os.Stat(sock) {
		select {
		case <-ctx.Done():
			t.Fatal("ssh-agent never made its socket")
		case <-tick.C:
		}
	}
	add := exec.CommandContext(ctx, "ssh-add", sshd.KeyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	cfg := sourceConfig(server)
	cfg.SSH = SSHConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, AgentSocket: sock, KnownHostsFile: sshd.KnownHostsFile}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	dialThrough(t, ctx, cfg, slog.New(slog.DiscardHandler))
	if !strings.Contains(sshd.Log(), "Accepted publickey for "+sshd.User) {
		t.Errorf("sshd logged no key login:\n%s", sshd.Log())
	}
}

// Without full row metadata the reader reads a table's columns from
// information_schema when its first rows come: after the tunnel dropped,
// both the binlog stream and that query connection are made again through
// a new tunnel, and the rows of a table created after the drop decode.
func TestReaderContinuesAfterTunnelDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	minimal, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{RowMetadata: "MINIMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer minimal.Stop()
	sshd, err := testenv.StartSSHD(ctx, t.TempDir(), testenv.SSHDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	if err := minimal.Exec(ctx, "", "CREATE DATABASE drop_db", "CREATE TABLE drop_db.a (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(minimal, "drop_db.*")
	cfg.SSH = SSHConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, KnownHostsFile: sshd.KnownHostsFile}
	cfg.Defaults()
	r := openAtCurrent(t, ctx, cfg)
	if err := minimal.Exec(ctx, "drop_db", "INSERT INTO a VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if evs := readEvents(t, ctx, r, 1); evs[0].Table.Name != "a" {
		t.Fatalf("first event of table %s, want a", evs[0].Table.Name)
	}
	if n, err := sshd.DropConnections(); err != nil || n == 0 {
		t.Fatalf("dropped %d sshd processes: %v", n, err)
	}
	if err := minimal.Exec(ctx, "drop_db", "CREATE TABLE b (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO b VALUES (2, 'two')", "INSERT INTO a VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range readEvents(t, ctx, r, 2) {
		got = append(got, fmt.Sprintf("%s %v", ev.Table.Name, ev.After))
	}
	want := []string{fmt.Sprintf("b %v", []cdc.Value{cdc.Int(2), cdc.Str("two")}), fmt.Sprintf("a %v", []cdc.Value{cdc.Int(3)})}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events after the drop (-got +want):\n%s", diff)
	}
}

// Turning the host-key check off works, and is logged at warn level.
func TestTunnelInsecureIgnoreHostKeyWarns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sshd, err := testenv.StartSSHD(ctx, t.TempDir(), testenv.SSHDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	cfg := sourceConfig(server)
	cfg.SSH = SSHConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, InsecureIgnoreHostKey: true}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	dialThrough(t, ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if want := "level=WARN msg=\"INSECURE: source.ssh.insecure_ignore_host_key is set"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}

// A stream read by GTID that loses its connection inside a large
// transaction, handed out in parts, is sent that transaction again from
// its start by the server: each row change is still handed out once, in
// order.
func TestTunnelDropInsideLargeTransactionByGTID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sshd, err := testenv.StartSSHD(ctx, t.TempDir(), testenv.SSHDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	if err := server.Exec(ctx, "", "CREATE DATABASE big_drop", "CREATE TABLE big_drop.t (id INT PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	pos, err := server.Query(ctx, "", "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sourceConfig(server, "big_drop.*")
	cfg.SSH = SSHConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, KnownHostsFile: sshd.KnownHostsFile}
	cfg.ChunkRows = 100
	cfg.Defaults()
	var logs testenv.Buffer
	r, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Start(ctx, Start{GTID: *pos[0][0]}); err != nil {
		t.Fatal(err)
	}
	// About 10 MB of rows in one transaction: more than the tunnel, the
	// sockets and go-mysql's event cache hold, so the drop comes inside it.
	const rows = 10000
	if err := server.Exec(ctx, "big_drop", fmt.Sprintf("INSERT INTO t SELECT seq, REPEAT('x', 1000) FROM seq_0_to_%d", rows-1)); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for dropped := false; len(got) < rows; {
		var tx Tx
		if err := r.ReadTx(ctx, &tx); err != nil {
			t.Fatalf("after %d rows: %v", len(got), err)
		}
		for _, ev := range tx.Events {
			got = append(got, ev.After[0].Int)
		}
		if !dropped && len(got) > 0 {
			if n, err := sshd.DropConnections(); err != nil || n == 0 {
				t.Fatalf("dropped %d sshd processes: %v", n, err)
			}
			dropped = true
		}
	}
	for i, id := range got {
		if id != int64(i) {
			t.Fatalf("row change %d has id %d, want %d (each once, in order)", i, id, i)
		}
	}
	if !strings.Contains(logs.String(), "the binlog stream reconnected inside a transaction") {
		t.Errorf("the drop did not come inside the transaction:\n%s", logs.String())
	}
}

// BenchmarkTunnel reads the same binlog (rows of about 200 bytes, one
// transaction each 100) directly and through an SSH tunnel to a local
// sshd, and reports the tunnel's throughput as a ratio of the direct one's
// measured in the same run.
func BenchmarkTunnel(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sshd, err := testenv.StartSSHD(ctx, b.TempDir(), testenv.SSHDOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sshd.Stop()
	pos, err := server.Query(ctx, "", "SHOW MASTER STATUS")
	if err != nil {
		b.Fatal(err)
	}
	start := Start{File: *pos[0][0]}
	start.Pos, _ = strconv.ParseUint(*pos[0][1], 10, 64)
	const rows, perTx = 200000, 100
	if err := server.Exec(ctx, "", "CREATE DATABASE bench_tunnel", "CREATE TABLE bench_tunnel.t (id INT PRIMARY KEY, v VARCHAR(200))"); err != nil {
		b.Fatal(err)
	}
	var stmts []string
	for lo := 0; lo < rows; lo += perTx {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t SELECT seq, REPEAT('x', 200) FROM seq_%d_to_%d", lo, lo+perTx-1))
	}
	if err := server.Exec(ctx, "bench_tunnel", stmts...); err != nil {
		b.Fatal(err)
	}
	read := func(cfg *Config) time.Duration {
		r, err := Open(ctx, cfg, slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()))
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		began := time.Now()
		if err := r.Start(ctx, start); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < rows; {
			var tx Tx
			if err := r.ReadTx(ctx, &tx); err != nil {
				b.Fatal(err)
			}
			n += len(tx.Events)
		}
		return time.Since(began)
	}
	direct := sourceConfig(server, "bench_tunnel.*")
	tunneled := sourceConfig(server, "bench_tunnel.*")
	tunneled.SSH = SSHConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, KnownHostsFile: sshd.KnownHostsFile}
	tunneled.Defaults()
	var d, tu time.Duration
	for b.Loop() {
		d += read(direct)
		tu += read(tunneled)
	}
	b.ReportMetric(float64(rows*b.N)/d.Seconds(), "direct_rows/s")
	b.ReportMetric(float64(rows*b.N)/tu.Seconds(), "tunnel_rows/s")
	b.ReportMetric(d.Seconds()/tu.Seconds(), "tunnel/direct")
}

// dialThrough opens a query connection as cfg says (through its tunnel)
// and runs a statement on it; both are closed when the test ends.
func dialThrough(t *testing.T, ctx context.Context, cfg *Config, log *slog.Logger) (*dialer, *client.Conn) {
	t.Helper()
	d, err := newDialer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	conn, err := d.dial(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Execute("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	return d, conn
}
