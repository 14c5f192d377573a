package testenv

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is a running OpenSSH server (Debian's openssh-server) on a loopback
// port: a bastion for the producer's SSH tunnel. It lets the current user
// log in with a key the test generated, and forwards TCP connections.
type SSHD struct {
	Host string // always 127.0.0.1
	Port int
	User string // the current user, allowed to log in
	// KeyFile is the private key allowed to log in, encrypted with
	// SSHDOptions.Passphrase when one was given.
	KeyFile string
	// KnownHostsFile names the server's host key for Host:Port.
	KnownHostsFile string
	HostKey        ssh.PublicKey
	Dir            string // configuration, keys and log

	cmd    *exec.Cmd
	exited chan struct{}
	logf   string
}

// SSHDOptions tunes the server.
type SSHDOptions struct {
	// Passphrase encrypts KeyFile; none when empty.
	Passphrase string
}

// FindSSHD returns the path of the OpenSSH server or an error saying what
// to install.
func FindSSHD() (string, error) {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p, nil
	}
	if p := "/usr/sbin/sshd"; fileExists(p) {
		return p, nil
	}
	return "", errors.New("testenv: sshd not found: install the OpenSSH server (Debian: apt-get install openssh-server) — the SSH tunnel tests need a real one")
}

// StartSSHD starts sshd as the current user with its own configuration,
// host key and authorized key in dir (e.g. t.TempDir()), on a free loopback
// port, and waits until it answers. Stop it with Stop.
func StartSSHD(ctx context.Context, dir string, opts SSHDOptions) (*SSHD, error) {
	bin, err := FindSSHD()
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	s := &SSHD{Host: "127.0.0.1", User: u.Username, Dir: dir, logf: filepath.Join(dir, "sshd.log"),
		KeyFile: filepath.Join(dir, "id_ed25519"), KnownHostsFile: filepath.Join(dir, "known_hosts")}
	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	if s.HostKey, err = writeKey(hostKeyFile, ""); err != nil {
		return nil, err
	}
	clientKey, err := writeKey(s.KeyFile, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(clientKey), 0o600); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// sshd running as root needs its privilege separation directory,
		// which Debian creates only at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err == nil {
			err = s.start(ctx, bin, hostKeyFile, authorized)
		}
		if err == nil {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			return nil, err
		}
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey)
	if err := os.WriteFile(s.KnownHostsFile, []byte(line+"\n"), 0o600); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// writeKey writes a new ed25519 private key in OpenSSH format to path and
// returns its public key.
func writeKey(path, passphrase string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "strait test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "strait test", []byte(passphrase))
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// Addr returns "host:port".
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

func (s *SSHD) start(ctx context.Context, bin, hostKey, authorized string) error {
	conf := filepath.Join(s.Dir, "sshd_config")
	lines := []string{
		"Port " + strconv.Itoa(s.Port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + authorized,
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes",
		"UsePAM no",
		"LogLevel VERBOSE",
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(s.logf)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin, "-f", conf, "-D", "-e")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.exited = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start %s: %w", bin, err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if s.answers() {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("testenv: sshd exited during start-up: %s", s.tailLog())
		case <-ctx.Done():
			s.kill()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // poll interval while waiting for the port
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("testenv: sshd not answering after 30s: %s", s.tailLog())
		}
	}
}

// answers reports whether the server sends its SSH banner.
func (s *SSHD) answers() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// DropConnections kills the server's processes serving connections (the
// listener stays): every SSH connection to it ends at once, as when a
// bastion or the network fails. It returns how many processes it killed.
func (s *SSHD) DropConnections() (int, error) {
	kids, err := descendants(s.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(kids), nil
}

// Freeze stops (SIGSTOP) the processes serving connections: the
// connections stay open but nothing answers, as behind a network that
// silently drops packets. New connections are served; DropConnections or
// Stop ends the frozen ones.
func (s *SSHD) Freeze() (int, error) {
	kids, err := descendants(s.cmd.Process.Pid)
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	return len(kids), err
}

// descendants returns the processes below pid, from /proc.
func descendants(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[0] != "Z" && fields[0] != "X" { // not killed already, awaiting its parent
			parent[p], _ = strconv.Atoi(fields[1])
		}
	}
	var out []int
	var walk func(int)
	walk = func(of int) {
		for p, pp := range parent {
			if pp == of {
				out = append(out, p)
				walk(p)
			}
		}
	}
	walk(pid)
	return out, nil
}

// Log returns the server's log.
func (s *SSHD) Log() string {
	b, _ := os.ReadFile(s.logf)
	return string(b)
}

func (s *SSHD) tailLog() string {
	b := s.Log()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(b)
}

func (s *SSHD) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Stop ends the server and the connections it serves.
func (s *SSHD) Stop() {
	s.DropConnections()
	s.kill()
}
