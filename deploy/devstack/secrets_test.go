package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// secretSetting is one secret a binary takes, and how it is configured:
// the variable holding it, or the configuration key naming a file that
// holds it. Every run of the leak test gives each of its binaries' secrets
// one way or the other.
type secretSetting struct {
	name     string // how the test names it; the key of leakEnv.right and .wrong
	env      string // the variable
	fileKey  string // the key naming a file
	binaries string // "producer", "consumer" or both, space separated
}

// secretSettings are every secret the leak test configures. A new secret is
// one more line here, plus, in startLeakEnv, the server that checks it (the
// SSH passphrase unlocks the key the bastion, a real OpenSSH server, takes).
var secretSettings = []secretSetting{
	{"mysql password", "STRAIT_SOURCE_PASSWORD", "source.password_file", "producer"},
	{"sasl password", "STRAIT_KAFKA_SASL_PASSWORD", "kafka.sasl.password_file", "producer consumer"},
	{"registry password", "STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_PASSWORD", "kafka.schema_registry_auth.password_file", "producer consumer"},
	{"ssh passphrase", "STRAIT_SOURCE_SSH_PASSPHRASE", "source.ssh.passphrase_file", "producer"},
}

// leakEnv is the pipeline with every hop authenticated by a secret the
// test made up: MariaDB's capture user, Kafka over TLS with SCRAM-SHA-512,
// a Schema Registry over TLS with basic authentication, and the local
// BigQuery endpoint. right holds each secret the servers accept, wrong a
// second made-up value of each for the runs that must be refused; both are
// searched for in every byte the binaries print or serve.
type leakEnv struct {
	bin      string
	dir      string
	db       *testenv.MariaDB
	kafka    *kfake.Cluster
	registry string
	certs    *testenv.Certs
	bq       *bqfake.Server
	sshd     *testenv.SSHD // the bastion every producer reaches MariaDB through
	right    map[string]string
	wrong    map[string]string
	other    map[string]string // secrets outside secretSettings (the service-account key), by name
	out      map[string]*testenv.Buffer
}

// TestSecretsNeverLeak runs bin/producer and bin/consumer as processes with
// every secret they take set to a made-up value — through the environment
// in some runs, through files in others — and searches everything they
// print (stdout, stderr, debug logs, goroutine dumps) and serve (/metrics,
// /status, /healthz, /readyz, /debug/*) for each secret, as is and in
// base64 and hex. The runs, all at log level debug: the whole pipeline
// until the rows reach BigQuery, its endpoints, then SIGQUIT (Go's
// goroutine dump), once with the secrets in variables and once in files;
// -print-config; producer check, producer snapshot, consumer tail and
// consumer reset; a wrong MySQL password, a wrong SASL
// password, a registry refusing the password or the bearer token; a secret
// given as a flag and in the YAML file (both refused); and the consumer
// signing with a service-account key file, and failing on a corrupt one.
func TestSecretsNeverLeak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := startLeakEnv(t, ctx)
	defer func() {
		if t.Failed() {
			for _, name := range sortedKeys(e.out) {
				t.Logf("--- %s:\n%s", name, tail(e.out[name].String(), 60))
			}
		}
	}()

	// The whole pipeline, twice: the secrets from the environment, then
	// from files (a fresh prefix and group: snapshot and stream again).
	for i, tc := range []struct{ how, prefix string }{{"env", "sec"}, {"file", "secf"}} {
		t.Run("pipeline, secrets from "+tc.how, func(t *testing.T) {
			paddr, caddr := freeAddr(), freeAddr()
			p := e.start(t, "pipeline: producer, secrets from "+tc.how, "producer", e.producerArgs(tc.prefix, paddr), e.secrets("producer", tc.how, ""))
			c := e.start(t, "pipeline: consumer, secrets from "+tc.how, "consumer", e.consumerArgs(tc.prefix, caddr), e.secrets("consumer", tc.how, ""))
			for _, addr := range []string{paddr, caddr} {
				if err := waitReady(ctx, addr, os.DevNull, nil); err != nil {
					t.Fatal(err)
				}
			}
			// Statements setting other accounts' passwords reach the
			// producer through the binlog (before the rows waited for).
			user := fmt.Sprintf("other%d@'%%'", i)
			var accounts []string
			for _, stmt := range []string{"CREATE USER %s IDENTIFIED BY '%s'", "ALTER USER %s IDENTIFIED BY '%s'",
				"SET PASSWORD FOR %s = PASSWORD('%s')", "GRANT SELECT ON secretsdb.* TO %s IDENTIFIED BY '%s'"} {
				pass := randomSecret(t)
				e.other[fmt.Sprintf("password of %s (%s)", user, strings.Fields(stmt)[0])] = pass
				accounts = append(accounts, fmt.Sprintf(stmt, user, pass))
			}
			if err := e.db.Exec(ctx, "secretsdb", append(accounts, "DROP USER "+user)...); err != nil {
				t.Fatal(err)
			}
			id := 3 + 2*i
			if err := e.db.Exec(ctx, "secretsdb", fmt.Sprintf("INSERT INTO items VALUES (%d, 'c'), (%d, 'd')", id, id+1)); err != nil {
				t.Fatal(err)
			}
			e.waitRows(t, ctx, tc.prefix, "secretsdb_items", id+1)
			for _, addr := range []string{paddr, caddr} {
				e.get(t, addr, "/metrics", "/status", "/healthz", "/readyz", "/debug/pprof/", "/debug/vars", "/debug/pprof/goroutine?debug=2")
			}
			// The lines most likely to carry a secret were written: go-mysql's
			// dump of its replication settings, franz-go's SASL exchange.
			for _, w := range []struct {
				p    *proc
				line string
			}{{p, "create BinlogSyncer"}, {p, "beginning sasl authentication"}, {c, "beginning sasl authentication"}} {
				if !strings.Contains(w.p.out.String(), w.line) {
					t.Errorf("%s did not log %q: not at log level debug?", w.p.name, w.line)
				}
			}
			for _, pr := range []*proc{p, c} {
				pr.cmd.Process.Signal(syscall.SIGQUIT)
				pr.wait(t, ctx)
				if !strings.Contains(pr.out.String(), "goroutine ") {
					t.Errorf("%s: no goroutine dump after SIGQUIT", pr.name)
				}
			}
		})
	}

	t.Run("print-config", func(t *testing.T) {
		for _, b := range []string{"producer", "consumer"} {
			args := e.producerArgs("sec", "127.0.0.1:0")
			if b == "consumer" {
				args = e.consumerArgs("sec", "127.0.0.1:0")
			}
			for _, how := range []string{"env", "file"} {
				p := e.start(t, b+" -print-config, secrets from "+how, b, append(args, "-print-config"), e.secrets(b, how, ""))
				want := "kafka.sasl.password: <redacted>"
				if how == "file" { // the files are read after the dump
					want = "kafka.sasl.password_file: " + e.dir
				}
				if err := p.wait(t, ctx); err != nil || !strings.Contains(p.out.String(), want) {
					t.Errorf("%s: %v, want the configuration with %q", p.name, err, want)
				}
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		p := e.start(t, "producer check, secrets from files", "producer", checkArgs(e.producerArgs("sec", "")), e.secrets("producer", "file", ""))
		p.wait(t, ctx)
		if !strings.Contains(p.out.String(), "PASS") {
			t.Errorf("producer check printed no PASS line")
		}
	})

	t.Run("other commands", func(t *testing.T) {
		for _, tc := range []struct {
			binary string
			args   []string
			want   string
		}{
			{"producer", append(command("snapshot", e.producerArgs("sec", "")), "-tables", "secretsdb.items"), "snapshot"},
			{"consumer", append(command("tail", e.consumerArgs("sec", "127.0.0.1:0")), "-topics", "secretsdb.items", "-from-beginning", "-n", "4"), "secretsdb"},
			{"consumer", append(command("reset", e.consumerArgs("sec", "127.0.0.1:0")), "-to-earliest", "-dry-run",
				"-kafka.group_id", "strait-sec-reset"), "sec.secretsdb.items"}, // strait-sec's SIGQUIT member is not gone yet
		} {
			p := e.start(t, tc.binary+" "+tc.args[0], tc.binary, tc.args, e.secrets(tc.binary, "env", ""))
			if err := p.wait(t, ctx); err != nil || !strings.Contains(p.out.String(), tc.want) {
				t.Errorf("%s: %v, want success and %q in the output", p.name, err, tc.want)
			}
		}
	})

	for _, tc := range []struct {
		name, binary, wrong, how string
		check                    bool   // producer check instead of run
		want                     string // in the output
	}{
		{"wrong mysql password", "producer", "mysql password", "env", false, "Access denied"},
		{"wrong mysql password", "producer", "mysql password", "file", true, "Access denied"},
		{"wrong sasl password", "producer", "sasl password", "env", false, "SASL"},
		{"wrong sasl password", "consumer", "sasl password", "file", false, "SASL"},
		{"registry refuses", "producer", "registry password", "env", false, "schema registry refused this client"},
		{"registry refuses", "producer", "registry password", "file", true, "FAIL schema registry"},
		{"wrong ssh passphrase", "producer", "ssh passphrase", "env", false, "with the configured passphrase"},
		{"wrong ssh passphrase", "producer", "ssh passphrase", "file", true, "with the configured passphrase"},
	} {
		name := fmt.Sprintf("%s: %s, from %s", tc.name, tc.binary, tc.how)
		t.Run(name, func(t *testing.T) {
			prefix := fmt.Sprintf("bad%d", len(e.out)) // a fresh start: snapshots, registers schemas
			args := e.producerArgs(prefix, "127.0.0.1:0")
			switch {
			case tc.binary == "consumer":
				args = e.consumerArgs("sec", "127.0.0.1:0")
			case tc.check:
				args = checkArgs(args)
			}
			p := e.start(t, name, tc.binary, args, e.secrets(tc.binary, tc.how, tc.wrong))
			err := p.wait(t, ctx)
			if err == nil || !strings.Contains(p.out.String(), tc.want) {
				t.Errorf("%s: %v, want a failure saying %q", name, err, tc.want)
			}
		})
	}

	t.Run("registry bearer token", func(t *testing.T) {
		token := randomSecret(t)
		e.other["registry token"], e.other["wrong registry token"] = token, randomSecret(t)
		_, srv := testenv.StartTLSRegistry(e.certs, srfake.WithAuth("Bearer "+token))
		t.Cleanup(srv.Close)
		args := slicesDelete(checkArgs(e.producerArgs("sec", "")), "-kafka.schema_registry_auth.username", "strait-sr")
		args = append(args, "-kafka.schema_registry_url", srv.URL)
		for _, tc := range []struct{ which, want string }{{"registry token", "PASS schema registry"}, {"wrong registry token", "FAIL schema registry"}} {
			env := []string{"STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_TOKEN=" + e.other[tc.which]}
			for _, s := range e.secrets("producer", "env", "") {
				if !strings.HasPrefix(s, "STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_PASSWORD=") { // a token instead
					env = append(env, s)
				}
			}
			p := e.start(t, "producer check, "+tc.which, "producer", args, env)
			p.wait(t, ctx)
			if !strings.Contains(p.out.String(), tc.want) {
				t.Errorf("producer check with the %s: want %q", tc.which, tc.want)
			}
		}
	})

	t.Run("secret as a flag or in the YAML file", func(t *testing.T) {
		p := e.start(t, "producer -source.password", "producer", append(e.producerArgs("sec", ""), "-source.password="+e.right["mysql password"]), nil)
		if err := p.wait(t, ctx); err == nil || !strings.Contains(p.out.String(), "-source.password: secrets are not taken as flags") {
			t.Errorf("a password given as a flag: %v, want it refused", err)
		}
		yaml := filepath.Join(e.dir, "secret.yaml")
		body := fmt.Sprintf("source:\n  password: %s\nkafka:\n  sasl:\n    password: %s\n", e.right["mysql password"], e.right["sasl password"])
		if err := os.WriteFile(yaml, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		p = e.start(t, "producer, passwords in the YAML file", "producer", []string{"run", "-config", yaml}, nil)
		for _, key := range []string{"source.password", "kafka.sasl.password"} {
			want := key + ": secrets are not read from the configuration file"
			if err := p.wait(t, ctx); err == nil || !strings.Contains(p.out.String(), want) {
				t.Errorf("passwords in the YAML file: %v, want an error saying %q", err, want)
			}
		}
	})

	t.Run("bigquery credentials file", func(t *testing.T) {
		for _, tc := range []struct {
			name, want string
			corrupt    bool
		}{
			// The key signs the token request, which the token endpoint refuses.
			{"service-account key", "cannot fetch token", false},
			{"corrupt service-account key", "private key", true},
		} {
			args := e.consumerArgs("sec", "127.0.0.1:0")
			args = slicesDelete(args, "-bigquery.insecure=true")
			args = append(args, "-bigquery.credentials_file", e.credentialsFile(t, tc.name, tc.corrupt), "-kafka.group_id", "strait-sec-creds")
			p := e.start(t, "consumer with a "+tc.name, "consumer", args, e.secrets("consumer", "env", ""))
			if err := p.wait(t, ctx); err == nil || !strings.Contains(p.out.String(), tc.want) {
				t.Errorf("%s: %v, want a failure saying %q", p.name, err, tc.want)
			}
		}
	})

	// The search: every secret, in every form, in every output.
	all := map[string]string{}
	for name, v := range e.right {
		all[name] = v
	}
	for name, v := range e.wrong {
		all["wrong "+name] = v
	}
	for name, v := range e.other {
		all[name] = v
	}
	checked := 0
	for _, out := range sortedKeys(e.out) {
		text := e.out[out].String()
		checked += len(text)
		for _, name := range sortedKeys(all) {
			for _, f := range leakForms(all[name]) {
				if i := strings.Index(text, f); i >= 0 {
					t.Errorf("%s leaks the %s (as %q): ...%s...", out, name, f, text[max(0, i-120):min(len(text), i+len(f)+40)])
				}
			}
		}
	}
	t.Logf("searched %d outputs, %d bytes, for %d secrets", len(e.out), checked, len(all))
}

// startLeakEnv starts the servers, each accepting only its right secret,
// builds the binaries, and creates the table secretsdb.items with two rows
// (snapshotted by each producer's first start).
func startLeakEnv(t *testing.T, ctx context.Context) *leakEnv {
	t.Helper()
	e := &leakEnv{bin: buildBinaries(t, ctx), dir: t.TempDir(), right: map[string]string{}, wrong: map[string]string{},
		other: map[string]string{}, out: map[string]*testenv.Buffer{}}
	for _, s := range secretSettings {
		e.right[s.name], e.wrong[s.name] = randomSecret(t), randomSecret(t)
	}
	var err error
	if e.db, err = testenv.StartMariaDB(ctx, testenv.MariaDBOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.db.Stop)
	if err := e.db.Exec(ctx, "",
		"CREATE USER capture@'%' IDENTIFIED BY '"+e.right["mysql password"]+"'",
		"GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO capture@'%'",
		"CREATE DATABASE secretsdb", "CREATE TABLE secretsdb.items (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO secretsdb.items VALUES (1, 'a'), (2, 'b')"); err != nil {
		t.Fatal(err)
	}
	if e.sshd, err = testenv.StartSSHD(ctx, t.TempDir(), testenv.SSHDOptions{Passphrase: e.right["ssh passphrase"]}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.sshd.Stop)
	if e.certs, err = testenv.NewCerts(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(e.certs.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	e.other["Kafka TLS client key"] = pemSecret(block.Bytes)
	if e.kafka, err = testenv.StartKafka(kfake.TLS(e.certs.ServerConfig(true)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "strait", e.right["sasl password"])); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.kafka.Close)
	_, srv := testenv.StartTLSRegistry(e.certs,
		srfake.WithAuth("Basic "+base64.StdEncoding.EncodeToString([]byte("strait-sr:"+e.right["registry password"]))))
	t.Cleanup(srv.Close)
	e.registry = srv.URL
	if e.bq, err = bqfake.New(bqfake.WithSchemaDelay(0), bqfake.WithRecreateDelay(0)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.bq.Close() })
	return e
}

// kafkaArgs are the flags both binaries reach Kafka and the registry with
// (the passwords come from secrets).
func (e *leakEnv) kafkaArgs(prefix string) []string {
	return []string{
		"-kafka.brokers", strings.Join(e.kafka.ListenAddrs(), ","), "-kafka.topic_prefix", prefix,
		"-kafka.schema_registry_url", e.registry,
		"-kafka.tls.enabled=true", "-kafka.tls.ca_file", e.certs.CAFile,
		"-kafka.tls.cert_file", e.certs.ClientCertFile, "-kafka.tls.key_file", e.certs.ClientKeyFile,
		"-kafka.sasl.mechanism", "scram-sha-512", "-kafka.sasl.username", "strait",
		"-kafka.schema_registry_tls.enabled=true", "-kafka.schema_registry_tls.ca_file", e.certs.CAFile,
		"-kafka.schema_registry_auth.username", "strait-sr",
		"-log_level", "debug", "-log_format", "text",
	}
}

// producerArgs are `producer run`'s arguments for topic prefix, serving
// HTTP on addr ("": the default).
func (e *leakEnv) producerArgs(prefix, addr string) []string {
	args := append([]string{"run",
		"-source.host", e.db.Host, "-source.port", fmt.Sprint(e.db.Port), "-source.user", "capture",
		"-source.include", "secretsdb.*", "-source.heartbeat_period", "1s",
		"-source.ssh.host", e.sshd.Host, "-source.ssh.port", fmt.Sprint(e.sshd.Port), "-source.ssh.user", e.sshd.User,
		"-source.ssh.key_file", e.sshd.KeyFile, "-source.ssh.known_hosts_file", e.sshd.KnownHostsFile,
	}, e.kafkaArgs(prefix)...)
	if addr != "" {
		args = append(args, "-http_addr", addr)
	}
	return args
}

// consumerArgs are `consumer run`'s arguments for topic prefix (into the
// dataset ds_<prefix>), serving HTTP on addr.
func (e *leakEnv) consumerArgs(prefix, addr string) []string {
	return append([]string{"run",
		"-kafka.group_id", "strait-" + prefix, "-kafka.topic_refresh", "1s",
		"-bigquery.project", "demo", "-bigquery.dataset", "ds_" + prefix, "-bigquery.max_staleness", "0s",
		"-bigquery.endpoint", e.bq.RESTURL(), "-bigquery.write_endpoint", e.bq.GRPCAddr(), "-bigquery.insecure=true",
		"-http_addr", addr,
	}, e.kafkaArgs(prefix)...)
}

// checkArgs turns `producer run` arguments into `producer check`'s.
func checkArgs(run []string) []string { return command("check", run) }

// command turns `run` arguments into those of another subcommand.
func command(name string, run []string) []string { return append([]string{name}, run[1:]...) }

// secrets configures binary's secrets: how is "env" (variables) or "file"
// (files named by flags); the one named wrong gets its wrong value. It
// returns the variables and the flags, the latter prefixed with "-".
func (e *leakEnv) secrets(binary, how, wrong string) []string {
	var out []string
	for _, s := range secretSettings {
		if !strings.Contains(s.binaries, binary) {
			continue
		}
		v := e.right[s.name]
		if s.name == wrong {
			v = e.wrong[s.name]
		}
		if how == "env" {
			out = append(out, s.env+"="+v)
			continue
		}
		f, err := os.CreateTemp(e.dir, "secret-")
		if err == nil {
			_, err = f.WriteString(v + "\n")
			f.Close()
		}
		if err != nil {
			panic(err) // the test's own temporary directory
		}
		out = append(out, "-"+s.fileKey+"="+f.Name())
	}
	return out
}

// credentialsFile writes a service-account key file with a new private
// key (a line of its PEM body is the secret name; corrupt: its DER is
// damaged) and a token endpoint that refuses every request, and returns
// its path.
func (e *leakEnv) credentialsFile(t *testing.T, name string, corrupt bool) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if corrupt {
		der[len(der)/2] ^= 0xff
		der = der[:len(der)-8]
	}
	e.other[name] = pemSecret(der)
	e.other[name+" id"] = randomSecret(t)
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	}))
	t.Cleanup(tokens.Close)
	js, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "demo", "private_key_id": e.other[name+" id"],
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "strait@demo.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokens.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, strings.ReplaceAll(name, " ", "-")+".json")
	if err := os.WriteFile(p, js, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a started binary whose stdout and stderr go to out.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
	err  error
}

// start runs bin/<binary> with args and secrets (as returned by
// e.secrets: variables, and flags starting with "-"), its output kept
// under name. The process is ended with the test.
func (e *leakEnv) start(t *testing.T, name, binary string, args, secrets []string) *proc {
	t.Helper()
	env := append(os.Environ(), "GOTRACEBACK=all")
	for _, s := range secrets {
		if strings.HasPrefix(s, "-") {
			args = append(args, s)
		} else {
			env = append(env, s)
		}
	}
	p := &proc{name: name, out: &testenv.Buffer{}, done: make(chan struct{})}
	if _, dup := e.out[name]; dup {
		t.Fatalf("two runs named %q", name)
	}
	e.out[name] = p.out
	p.cmd = exec.Command(filepath.Join(e.bin, binary), args...)
	p.cmd.Stdout, p.cmd.Stderr, p.cmd.Env = p.out, p.out, env
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait returns the process's exit error once it has ended; one still
// running after a minute fails the test (and is sent SIGQUIT, whose dump
// is then searched too).
func (p *proc) wait(t *testing.T, ctx context.Context) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		t.Errorf("%s still running after a minute", p.name)
		p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.done
		return p.err
	}
}

// get fetches paths from the HTTP endpoint at addr, each answer (status
// and body) kept as an output.
func (e *leakEnv) get(t *testing.T, addr string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		buf := &testenv.Buffer{}
		e.out["GET http://"+addr+path] = buf
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(buf, "%s\n", resp.Status)
		for k, v := range resp.Header {
			fmt.Fprintf(buf, "%s: %s\n", k, strings.Join(v, ", "))
		}
		io.Copy(buf, resp.Body)
		resp.Body.Close()
	}
}

// waitRows waits until BigQuery's table of topic prefix holds n rows.
func (e *leakEnv) waitRows(t *testing.T, ctx context.Context, prefix, table string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		rows, _ := e.bq.Rows("demo", "ds_"+prefix, table)
		if len(rows) == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("BigQuery table %s holds %d rows, want %d", table, len(rows), n)
		case <-tick.C:
		}
	}
}

// pemSecret is the second line of the PEM body of der: found in any
// output that holds the PEM text, its JSON string, or der in base64.
func pemSecret(der []byte) string {
	return base64.StdEncoding.EncodeToString(der)[64:128]
}

// randomSecret is 24 random letters and digits.
func randomSecret(t *testing.T) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// leakForms are the strings whose presence in an output shows the secret
// s: s itself, its hex, and the part of its base64 (standard and URL
// alphabets) that depends on s alone, at each of the three alignments s
// can have inside a longer encoded text (as in a basic-auth header's
// base64("user:password")).
func leakForms(s string) []string {
	forms := []string{s, hex.EncodeToString([]byte(s))}
	for pad := 0; pad < 3; pad++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", pad) + s))
		from, to := 0, 4*((pad+len(s))/3) // whole groups only: the last one may hold what follows s
		if pad > 0 {
			from = 4 // the first group holds what precedes s
		}
		if to-from >= 8 {
			part := enc[from:to]
			forms = append(forms, part, strings.NewReplacer("+", "-", "/", "_").Replace(part))
		}
	}
	return forms
}

func TestLeakFormsFindEmbeddedSecrets(t *testing.T) {
	const secret = "Zq8LmP3vX0aTr5Kw9yB2nC7d"
	for _, text := range []string{
		"password=" + secret,
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("strait-sr:"+secret)),
		"auth " + base64.StdEncoding.EncodeToString([]byte("\x00strait\x00"+secret)),
		base64.URLEncoding.EncodeToString([]byte("ab" + secret + "tail")),
		"bytes " + hex.EncodeToString([]byte(secret)),
	} {
		found := false
		for _, f := range leakForms(secret) {
			found = found || strings.Contains(text, f)
		}
		if !found {
			t.Errorf("leakForms misses the secret in %q", text)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// slicesDelete returns args without the arguments del, each removed
// once, in order: a flag and then its value.
func slicesDelete(args []string, del ...string) []string {
	var out []string
	for _, x := range args {
		if len(del) > 0 && x == del[0] {
			del = del[1:]
			continue
		}
		out = append(out, x)
	}
	return out
}
