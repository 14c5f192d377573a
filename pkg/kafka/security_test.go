package kafka

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/strait-cdc/strait/pkg/config"
	"github.com/strait-cdc/strait/pkg/testenv"
)

func TestSecurityValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    Security
		want []string // substrings of the error, in order; none: valid
	}{
		{"zero value: plaintext", Security{}, nil},
		{"tls with CA and client certificate", Security{TLS: TLS{Enabled: true, CAFile: "ca", CertFile: "c", KeyFile: "k"}}, nil},
		{"tls keys without enabled", Security{TLS: TLS{CAFile: "ca"}}, []string{"kafka.tls.enabled: false, but other kafka.tls keys are set"}},
		{"certificate without key", Security{RegistryTLS: TLS{Enabled: true, CertFile: "c"}},
			[]string{"kafka.schema_registry_tls.cert_file and kafka.schema_registry_tls.key_file: set both or neither"}},
		{"scram", Security{SASL: SASL{Mechanism: MechanismScramSHA512, Username: "u", Password: "p"}}, nil},
		{"scram with a password file", Security{SASL: SASL{Mechanism: MechanismScramSHA256, Username: "u", PasswordFile: "f"}}, nil},
		{"plain without user and password", Security{SASL: SASL{Mechanism: MechanismPlain}},
			[]string{"kafka.sasl.username: required by mechanism plain", "kafka.sasl.password: required by mechanism plain"}},
		{"unknown mechanism", Security{SASL: SASL{Mechanism: "SCRAM"}}, []string{`kafka.sasl.mechanism: "SCRAM", want plain`}},
		{"credentials without mechanism", Security{SASL: SASL{Username: "u"}}, []string{"kafka.sasl.mechanism: required when SASL credentials are set"}},
		{"oauthbearer without token", Security{SASL: SASL{Mechanism: MechanismOAuthBearer}}, []string{"kafka.sasl.token: required by mechanism oauthbearer"}},
		{"oauthbearer with a token file", Security{SASL: SASL{Mechanism: MechanismOAuthBearer, TokenFile: "f"}}, nil},
		{"aws-msk-iam without credentials", Security{SASL: SASL{Mechanism: MechanismAWSMSKIAM}}, []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set"}},
		{"aws-msk-iam", Security{SASL: SASL{Mechanism: MechanismAWSMSKIAM, AWS: AWSCredentials{AccessKeyID: "a", SecretAccessKey: "s"}}}, nil},
		{"registry basic auth", Security{RegistryAuth: RegistryAuth{Username: "u", Password: "p"}}, nil},
		{"registry password without user", Security{RegistryAuth: RegistryAuth{PasswordFile: "f"}}, []string{"kafka.schema_registry_auth.username: required with a password"}},
		{"registry user without password", Security{RegistryAuth: RegistryAuth{Username: "u"}}, []string{"kafka.schema_registry_auth.password: required with a username"}},
		{"registry basic and bearer", Security{RegistryAuth: RegistryAuth{Username: "u", Password: "p", Token: "t"}}, []string{"set a username and password or a token, not both"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tt.want)
			}
			rest := err.Error()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("Validate: %v, want %q (in order %q)", err, w, tt.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestSecurityConfigKeys: the security keys sit under kafka. in YAML, in
// STRAIT_* variables and as flags; passwords and tokens are not YAML keys.
func TestSecurityConfigKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	yaml := "kafka:\n  tls:\n    enabled: true\n    ca_file: /ca.pem\n  sasl:\n    mechanism: scram-sha-512\n    username: u\n  schema_registry_auth:\n    username: sr\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Kafka Config `yaml:"kafka"`
	}
	cfg.Kafka.Defaults()
	env := map[string]string{"STRAIT_KAFKA_SASL_PASSWORD": "pw", "STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_PASSWORD": "srpw"}
	if err := config.Load(&cfg, file, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	want := Security{TLS: TLS{Enabled: true, CAFile: "/ca.pem"}, SASL: SASL{Mechanism: "scram-sha-512", Username: "u", Password: "pw"},
		RegistryAuth: RegistryAuth{Username: "sr", Password: "srpw"}}
	if diff := cmp.Diff(cfg.Kafka.Security, want); diff != "" {
		t.Errorf("loaded security (-got +want):\n%s", diff)
	}
	dump := config.Dump(&cfg)
	for _, line := range []string{"kafka.sasl.password: <redacted>", "kafka.schema_registry_auth.password: <redacted>", "kafka.tls.ca_file: /ca.pem"} {
		if !strings.Contains(dump, line+"\n") {
			t.Errorf("Dump lacks %q:\n%s", line, dump)
		}
	}
	if strings.Contains(dump, "pw\n") {
		t.Errorf("Dump shows a password:\n%s", dump)
	}
	if err := os.WriteFile(file, []byte("kafka:\n  sasl:\n    password: pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := config.Load(&cfg, file, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("a password in the YAML file: %v, want an error", err)
	}
}

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := Security{
		SASL:         SASL{Mechanism: MechanismAWSMSKIAM},
		RegistryAuth: RegistryAuth{Username: "u", PasswordFile: write("srpw", "sr secret\n")},
	}
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret", "AWS_SESSION_TOKEN": "session"}
	if err := s.LoadSecrets(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if s.RegistryAuth.Password != "sr secret" {
		t.Errorf("registry password %q, want the file's first line", s.RegistryAuth.Password)
	}
	if want := (AWSCredentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "aws-secret", SessionToken: "session"}); s.SASL.AWS != want {
		t.Errorf("AWS credentials %v, want %v", s.SASL.AWS, want)
	}
	if str := fmt.Sprint(s.SASL.AWS); strings.Contains(str, "aws-secret") || strings.Contains(str, "session") {
		t.Errorf("AWS credentials print their secrets: %s", str)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate after LoadSecrets: %v", err)
	}

	both := Security{SASL: SASL{Mechanism: MechanismPlain, Username: "u", Password: "env", PasswordFile: write("pw", "file")}}
	if err := both.LoadSecrets(os.Getenv); err == nil || !strings.Contains(err.Error(), "kafka.sasl.password_file: the secret is also set in the environment") {
		t.Errorf("password in the environment and a file: %v, want an error naming kafka.sasl.password_file", err)
	}
	missing := Security{SASL: SASL{Mechanism: MechanismOAuthBearer, TokenFile: filepath.Join(dir, "none")}}
	if err := missing.LoadSecrets(os.Getenv); err == nil || !strings.Contains(err.Error(), "kafka.sasl.token_file") {
		t.Errorf("missing token file: %v, want an error naming kafka.sasl.token_file", err)
	}
	empty := Security{RegistryAuth: RegistryAuth{Username: "u", PasswordFile: write("empty", "\n")}}
	if err := empty.LoadSecrets(os.Getenv); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty password file: %v, want an error", err)
	}
}

// mechanismOf returns the SASL mechanism Opts configures, from a client
// built with them.
func mechanismOf(t *testing.T, s *Security) sasl.Mechanism {
	t.Helper()
	opts, err := s.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers("127.0.0.1:1"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ms, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
	if len(ms) != 1 {
		t.Fatalf("client SASL mechanisms %v, want one", cl.OptValue(kgo.SASL))
	}
	return ms[0]
}

func TestOptsMechanisms(t *testing.T) {
	for _, tt := range []struct {
		mechanism, want string
	}{
		{MechanismPlain, "PLAIN"},
		{MechanismScramSHA256, "SCRAM-SHA-256"},
		{MechanismScramSHA512, "SCRAM-SHA-512"},
		{MechanismOAuthBearer, "OAUTHBEARER"},
		{MechanismAWSMSKIAM, "AWS_MSK_IAM"},
	} {
		s := &Security{SASL: SASL{Mechanism: tt.mechanism, Username: "u", Password: "p", Token: "tok",
			AWS: AWSCredentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}}}
		if got := mechanismOf(t, s).Name(); got != tt.want {
			t.Errorf("mechanism %s: client speaks %s, want %s", tt.mechanism, got, tt.want)
		}
	}
	if opts, err := (&Security{}).Opts(); err != nil || len(opts) != 0 {
		t.Errorf("zero Security: %d options, %v; want none", len(opts), err)
	}
}

// TestOAuthBearerTokenFile: the token file is read at each authentication,
// so a token refreshed by another process is used by the next connection.
func TestOAuthBearerTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	m := mechanismOf(t, &Security{SASL: SASL{Mechanism: MechanismOAuthBearer, TokenFile: file}})
	for _, tok := range []string{"first-token", "second-token"} {
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, msg, err := m.Authenticate(context.Background(), "broker:9092")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(msg), "auth=Bearer "+tok+"\x01") {
			t.Errorf("first message %q, want the token %s", msg, tok)
		}
	}
}

// TestAWSMSKIAM: the MSK IAM first message is signed with the configured
// access key for the broker's region and does not carry the secret key.
func TestAWSMSKIAM(t *testing.T) {
	m := mechanismOf(t, &Security{SASL: SASL{Mechanism: MechanismAWSMSKIAM,
		AWS: AWSCredentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "aws-secret-key", SessionToken: "sess"}}})
	_, msg, err := m.Authenticate(context.Background(), "b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098")
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]string
	if err := json.Unmarshal(msg, &fields); err != nil {
		t.Fatalf("first message %q: %v", msg, err)
	}
	if cred := fields["x-amz-credential"]; !strings.HasPrefix(cred, "AKIDEXAMPLE/") || !strings.Contains(cred, "/eu-west-1/kafka-cluster/") {
		t.Errorf("x-amz-credential %q, want the access key and the region eu-west-1", cred)
	}
	if fields["x-amz-security-token"] != "sess" || fields["x-amz-signature"] == "" {
		t.Errorf("first message %v: want the session token and a signature", fields)
	}
	if strings.Contains(string(msg), "aws-secret-key") {
		t.Errorf("first message carries the secret key: %s", msg)
	}
}

// TestSecurityAgainstKafka connects with Opts to a cluster that requires
// TLS with client certificates and SASL, for each mechanism kfake speaks.
func TestSecurityAgainstKafka(t *testing.T) {
	certs, err := testenv.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := testenv.StartKafka(kfake.TLS(certs.ServerConfig(true)), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plain-user", "plain-pw"),
		kfake.Superuser("SCRAM-SHA-256", "scram256-user", "scram256-pw"),
		kfake.Superuser("SCRAM-SHA-512", "scram512-user", "scram512-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tls := TLS{Enabled: true, CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}
	ping := func(s *Security) error {
		opts, err := s.Opts()
		if err != nil {
			return err
		}
		c, err := kgo.NewClient(append(opts, kgo.SeedBrokers(cl.ListenAddrs()...), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second), kgo.DialTimeout(2*time.Second))...)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Ping(ctx)
	}
	for _, tt := range []struct{ mechanism, user, pass string }{
		{MechanismPlain, "plain-user", "plain-pw"},
		{MechanismScramSHA256, "scram256-user", "scram256-pw"},
		{MechanismScramSHA512, "scram512-user", "scram512-pw"},
	} {
		t.Run(tt.mechanism, func(t *testing.T) {
			s := &Security{TLS: tls, SASL: SASL{Mechanism: tt.mechanism, Username: tt.user, Password: tt.pass}}
			if err := ping(s); err != nil {
				t.Fatalf("ping: %v", err)
			}
			s.SASL.Password = "wrong"
			if err := ping(s); err == nil {
				t.Error("ping with a wrong password succeeded")
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		s := &Security{TLS: TLS{Enabled: true, CAFile: certs.CAFile}, SASL: SASL{Mechanism: MechanismPlain, Username: "plain-user", Password: "plain-pw"}}
		if err := ping(s); err == nil {
			t.Error("ping without the client certificate succeeded")
		}
	})
	t.Run("untrusted server", func(t *testing.T) {
		s := &Security{TLS: TLS{Enabled: true, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile},
			SASL: SASL{Mechanism: MechanismPlain, Username: "plain-user", Password: "plain-pw"}}
		if err := ping(s); err == nil {
			t.Error("ping trusting only the system's CAs succeeded")
		}
	})
	t.Run("bad files", func(t *testing.T) {
		s := &Security{TLS: TLS{Enabled: true, CAFile: certs.ClientKeyFile}}
		if _, err := s.Opts(); err == nil || !strings.Contains(err.Error(), "kafka.tls.ca_file: no PEM certificate") {
			t.Errorf("a key as CA file: %v, want an error naming kafka.tls.ca_file", err)
		}
		s = &Security{TLS: TLS{Enabled: true, CertFile: certs.ClientCertFile, KeyFile: certs.ServerKeyFile}}
		if _, err := s.Opts(); err == nil || !strings.Contains(err.Error(), "kafka.tls.cert_file and kafka.tls.key_file") {
			t.Errorf("a mismatched key: %v, want an error naming kafka.tls.cert_file", err)
		}
	})
}

// TestRegistrySecurity registers a schema through a registry served over
// TLS that requires basic authentication, then a bearer token.
func TestRegistrySecurity(t *testing.T) {
	certs, err := testenv.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	register := func(url string, s *Security) error {
		opts, err := s.RegistryOpts()
		if err != nil {
			return err
		}
		r, err := NewRegistry(url, opts...)
		if err != nil {
			return err
		}
		_, err = r.Register(ctx, "t-value", `{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}`)
		return err
	}
	_, basic := testenv.StartTLSRegistry(certs, srfake.WithAuth("Basic "+base64.StdEncoding.EncodeToString([]byte("sr-user:sr-pw"))))
	defer basic.Close()
	tls := TLS{Enabled: true, CAFile: certs.CAFile}
	if err := register(basic.URL, &Security{RegistryTLS: tls, RegistryAuth: RegistryAuth{Username: "sr-user", Password: "sr-pw"}}); err != nil {
		t.Errorf("basic auth: %v", err)
	}
	for _, tt := range []struct {
		auth RegistryAuth
		want string
	}{
		{RegistryAuth{Username: "sr-user", Password: "wrong"}, "schema registry refused this client (HTTP 403; check kafka.schema_registry_auth.*"},
		{RegistryAuth{}, "schema registry refused this client (HTTP 401; check kafka.schema_registry_auth.*"},
	} {
		if err := register(basic.URL, &Security{RegistryTLS: tls, RegistryAuth: tt.auth}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("credentials %+v: %v, want an error containing %q", tt.auth.Username, err, tt.want)
		}
	}
	if err := register(basic.URL, &Security{RegistryAuth: RegistryAuth{Username: "sr-user", Password: "sr-pw"}}); err == nil {
		t.Error("a registry with an untrusted certificate registered")
	}
	_, bearer := testenv.StartTLSRegistry(certs, srfake.WithAuth("Bearer sr-token"))
	defer bearer.Close()
	if err := register(bearer.URL, &Security{RegistryTLS: tls, RegistryAuth: RegistryAuth{Token: "sr-token"}}); err != nil {
		t.Errorf("bearer token: %v", err)
	}
}

func TestAuthorizationError(t *testing.T) {
	a := access{topic: "strait.shop.orders", topicOp: "WRITE", txnID: "strait-strait", txnOp: "WRITE", clusterOp: "IDEMPOTENT_WRITE"}
	for _, tt := range []struct {
		err       error
		principal string
		want      string
	}{
		{kerr.TopicAuthorizationFailed, "User:strait-producer", "kafka: not authorized to WRITE topic strait.shop.orders (ACL missing for User:strait-producer)"},
		{fmt.Errorf("init: %w", kerr.TransactionalIDAuthorizationFailed), "User:p", "kafka: not authorized to WRITE transactional id strait-strait (ACL missing for User:p)"},
		{kerr.ClusterAuthorizationFailed, "", "kafka: not authorized to WRITE topic strait.shop.orders (ACL missing)"},
	} {
		err := authorization(tt.err, tt.principal, a)
		var ae *AuthorizationError
		if !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), tt.want+": ") || !errors.Is(err, tt.err) {
			t.Errorf("authorization(%v) = %v, want an *AuthorizationError starting %q and wrapping the broker's error", tt.err, err, tt.want)
		}
	}
	g := authorization(kerr.GroupAuthorizationFailed, "User:c", access{group: "strait-bigquery", groupOp: "READ"})
	if want := "kafka: not authorized to READ group strait-bigquery (ACL missing for User:c)"; !strings.HasPrefix(g.Error(), want) {
		t.Errorf("group: %v, want %q", g, want)
	}
	if c := authorization(kerr.ClusterAuthorizationFailed, "", access{clusterOp: "CREATE"}); !strings.HasPrefix(c.Error(), "kafka: not authorized to CREATE cluster (ACL missing)") {
		t.Errorf("cluster: %v", c)
	}
	other := errors.New("broker down")
	if got := authorization(other, "User:p", a); got != other {
		t.Errorf("a non-authorization error became %v", got)
	}
}

// TestInsecureSettingsWarn: insecure_skip_verify and PLAIN without TLS are
// logged as warnings by the writer.
func TestInsecureSettingsWarn(t *testing.T) {
	var logs strings.Builder
	cfg := &Config{}
	cfg.Defaults()
	cfg.Brokers, cfg.RegistryURL = []string{"127.0.0.1:1"}, "http://127.0.0.1:1"
	cfg.Security = Security{TLS: TLS{Enabled: true, InsecureSkipVerify: true}}
	w, err := NewWriter(cfg, "test", slog.New(slog.NewTextHandler(&logs, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "kafka.tls.insecure_skip_verify is on") {
		t.Errorf("log %q, want a warning about kafka.tls.insecure_skip_verify", logs.String())
	}
	s := Security{SASL: SASL{Mechanism: MechanismPlain}}
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "clear text") {
		t.Errorf("PLAIN without TLS: warnings %q", w)
	}
}
