package kafka

// security.go is how both binaries reach a secured cluster and registry:
// TLS (custom CA, client certificate) and SASL for the brokers, TLS and
// basic or bearer authentication for the Schema Registry. Secrets come from
// the environment or from files, never from the YAML file or a flag.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
)

// Security is how the brokers and the Schema Registry are reached: shared
// by the producer (Config) and the consumer (GroupConfig), whose keys it
// adds under kafka.: kafka.tls.*, kafka.sasl.*, kafka.schema_registry_tls.*
// and kafka.schema_registry_auth.*. The zero value is plaintext without
// authentication.
type Security struct {
	// TLS encrypts the connections to the brokers.
	TLS TLS `yaml:"tls"`
	// SASL authenticates this client to the brokers.
	SASL SASL `yaml:"sasl"`
	// RegistryTLS is the TLS of an https:// Schema Registry URL: a custom CA
	// and a client certificate (the system's CAs are used without it).
	RegistryTLS TLS `yaml:"schema_registry_tls"`
	// RegistryAuth authenticates this client to the Schema Registry.
	RegistryAuth RegistryAuth `yaml:"schema_registry_auth"`
}

// TLS is how a connection is encrypted and who is trusted.
type TLS struct {
	// Enabled turns TLS on; the other keys need it. Default false.
	Enabled bool `yaml:"enabled" help:"use TLS"`
	// CAFile is a PEM file of the CAs that sign the server's certificate;
	// default the system's CAs.
	CAFile string `yaml:"ca_file" help:"PEM file of the CAs trusted (default: the system's)"`
	// CertFile and KeyFile are this client's PEM certificate and key, for
	// servers that require client certificates (mutual TLS).
	CertFile string `yaml:"cert_file" help:"PEM client certificate (mutual TLS)"`
	KeyFile  string `yaml:"key_file" help:"PEM key of the client certificate"`
	// ServerName is the name the server's certificate must carry; default
	// the host being dialled.
	ServerName string `yaml:"server_name" help:"name the server certificate must carry (default: the host dialled)"`
	// InsecureSkipVerify accepts any server certificate: for tests only;
	// anyone on the path can then read and change the data. Logged as a
	// warning at startup.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" help:"accept any server certificate (tests only; logged as a warning)"`
}

// The SASL mechanisms of kafka.sasl.mechanism.
const (
	MechanismPlain       = "plain"
	MechanismScramSHA256 = "scram-sha-256"
	MechanismScramSHA512 = "scram-sha-512"
	MechanismOAuthBearer = "oauthbearer"
	MechanismAWSMSKIAM   = "aws-msk-iam"
)

// SASL is how this client authenticates to the brokers.
type SASL struct {
	// Mechanism is plain, scram-sha-256, scram-sha-512, oauthbearer or
	// aws-msk-iam; empty (the default) is no SASL. plain sends the password
	// as is: use it with TLS only.
	Mechanism string `yaml:"mechanism" help:"plain, scram-sha-256, scram-sha-512, oauthbearer or aws-msk-iam (empty: no SASL)"`
	// Username of plain and scram-*.
	Username string `yaml:"username" help:"SASL user (plain, scram-*)"`
	// Password of plain and scram-*: STRAIT_KAFKA_SASL_PASSWORD or
	// PasswordFile.
	Password     string `yaml:"-" secret:"true" help:"SASL password (environment only)"`
	PasswordFile string `yaml:"password_file" help:"file holding the SASL password"`
	// Token is the oauthbearer token: STRAIT_KAFKA_SASL_TOKEN or TokenFile.
	// TokenFile is read again at each authentication, so an outside
	// process may refresh it.
	Token     string `yaml:"-" secret:"true" help:"OAUTHBEARER token (environment only)"`
	TokenFile string `yaml:"token_file" help:"file holding the OAUTHBEARER token, read at each authentication"`
	// AWS is aws-msk-iam's credentials, from the standard variables
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (see
	// LoadSecrets). Not a configuration key.
	AWS AWSCredentials `yaml:"-"`
}

// AWSCredentials are an AWS access key for MSK IAM authentication.
type AWSCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // temporary credentials only
}

// String hides the secrets (and keeps them out of logs).
func (c AWSCredentials) String() string { return "AWSCredentials{" + c.AccessKeyID + ", <redacted>}" }

// RegistryAuth is how this client authenticates to the Schema Registry:
// basic authentication (Username and a password) or a bearer token, or
// nothing (the default).
type RegistryAuth struct {
	// Username of basic authentication; its password is
	// STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_PASSWORD or PasswordFile.
	Username     string `yaml:"username" help:"Schema Registry basic-auth user"`
	Password     string `yaml:"-" secret:"true" help:"Schema Registry basic-auth password (environment only)"`
	PasswordFile string `yaml:"password_file" help:"file holding the Schema Registry password"`
	// Token is a bearer token: STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_TOKEN or
	// TokenFile.
	Token     string `yaml:"-" secret:"true" help:"Schema Registry bearer token (environment only)"`
	TokenFile string `yaml:"token_file" help:"file holding the Schema Registry bearer token"`
}

// Validate reports every problem of the security settings, naming the key.
func (s *Security) Validate() error {
	errs := append(s.TLS.validate("kafka.tls"), s.RegistryTLS.validate("kafka.schema_registry_tls")...)
	a := &s.SASL
	switch a.Mechanism {
	case "":
		if a.Username != "" || a.Password != "" || a.PasswordFile != "" || a.Token != "" || a.TokenFile != "" {
			errs = append(errs, errors.New("kafka.sasl.mechanism: required when SASL credentials are set (plain, scram-sha-256, scram-sha-512, oauthbearer or aws-msk-iam)"))
		}
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if a.Username == "" {
			errs = append(errs, fmt.Errorf("kafka.sasl.username: required by mechanism %s", a.Mechanism))
		}
		if a.Password == "" && a.PasswordFile == "" {
			errs = append(errs, fmt.Errorf("kafka.sasl.password: required by mechanism %s (STRAIT_KAFKA_SASL_PASSWORD or kafka.sasl.password_file)", a.Mechanism))
		}
	case MechanismOAuthBearer:
		if a.Token == "" && a.TokenFile == "" {
			errs = append(errs, errors.New("kafka.sasl.token: required by mechanism oauthbearer (STRAIT_KAFKA_SASL_TOKEN or kafka.sasl.token_file)"))
		}
	case MechanismAWSMSKIAM:
		if a.AWS.AccessKeyID == "" || a.AWS.SecretAccessKey == "" {
			errs = append(errs, errors.New("kafka.sasl.mechanism aws-msk-iam: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set"))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: %q, want plain, scram-sha-256, scram-sha-512, oauthbearer or aws-msk-iam", a.Mechanism))
	}
	r := &s.RegistryAuth
	basic := r.Username != "" || r.Password != "" || r.PasswordFile != ""
	bearer := r.Token != "" || r.TokenFile != ""
	switch {
	case basic && bearer:
		errs = append(errs, errors.New("kafka.schema_registry_auth: set a username and password or a token, not both"))
	case basic && r.Username == "":
		errs = append(errs, errors.New("kafka.schema_registry_auth.username: required with a password"))
	case basic && r.Password == "" && r.PasswordFile == "":
		errs = append(errs, errors.New("kafka.schema_registry_auth.password: required with a username (STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_PASSWORD or kafka.schema_registry_auth.password_file)"))
	}
	return errors.Join(errs...)
}

// registryURLPassword refuses a Schema Registry URL holding a password
// (https://user:password@host): the URL is logged and printed, the
// password belongs in kafka.schema_registry_auth. The error does not echo
// the URL.
func registryURLPassword(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return nil
	}
	if _, ok := u.User.Password(); !ok {
		return nil
	}
	return errors.New("kafka.schema_registry_url: holds a password, which would be logged with the URL; move it to kafka.schema_registry_auth " +
		"(username, and STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_PASSWORD or kafka.schema_registry_auth.password_file)")
}

func (t *TLS) validate(key string) []error {
	var errs []error
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		errs = append(errs, fmt.Errorf("%s.enabled: false, but other %s keys are set; set it to true", key, key))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s.cert_file and %s.key_file: set both or neither", key, key))
	}
	return errs
}

// LoadSecrets reads the secrets kept in files (kafka.sasl.password_file,
// ...) and, for aws-msk-iam, the AWS credentials from getenv. A secret set
// both in the environment and as a file is an error. Call it once the
// configuration is loaded, before Validate.
func (s *Security) LoadSecrets(getenv func(string) string) error {
	var errs []error
	read := func(key, path string, into *string) {
		if path == "" {
			return
		}
		if *into != "" {
			errs = append(errs, fmt.Errorf("%s: the secret is also set in the environment; set one", key))
			return
		}
		v, err := readSecret(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		*into = v
	}
	read("kafka.sasl.password_file", s.SASL.PasswordFile, &s.SASL.Password)
	read("kafka.schema_registry_auth.password_file", s.RegistryAuth.PasswordFile, &s.RegistryAuth.Password)
	read("kafka.schema_registry_auth.token_file", s.RegistryAuth.TokenFile, &s.RegistryAuth.Token)
	if s.SASL.TokenFile != "" { // read at each authentication; fail early when unreadable
		tok := s.SASL.Token
		read("kafka.sasl.token_file", s.SASL.TokenFile, &tok)
	}
	if s.SASL.Mechanism == MechanismAWSMSKIAM {
		s.SASL.AWS = AWSCredentials{AccessKeyID: getenv("AWS_ACCESS_KEY_ID"),
			SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"), SessionToken: getenv("AWS_SESSION_TOKEN")}
	}
	return errors.Join(errs...)
}

// readSecret returns the file's content without its final line break.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// Opts returns the client options of the brokers' TLS and SASL: added to
// every Kafka client of both binaries.
func (s *Security) Opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.TLS.Enabled {
		cfg, err := s.TLS.config("kafka.tls")
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s.SASL.Mechanism != "" {
		m, err := s.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// mechanism is the franz-go SASL mechanism of the configuration.
func (a *SASL) mechanism() (sasl.Mechanism, error) {
	switch a.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: a.Username, Pass: a.Password}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: a.Username, Pass: a.Password}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: a.Username, Pass: a.Password}.AsSha512Mechanism(), nil
	case MechanismOAuthBearer:
		if a.TokenFile == "" {
			return oauth.Auth{Token: a.Token}.AsMechanism(), nil
		}
		path := a.TokenFile
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := readSecret(path)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("kafka.sasl.token_file: %w", err)
			}
			return oauth.Auth{Token: tok}, nil
		}), nil
	case MechanismAWSMSKIAM:
		return aws.Auth{AccessKey: a.AWS.AccessKeyID, SecretKey: a.AWS.SecretAccessKey,
			SessionToken: a.AWS.SessionToken, UserAgent: "strait"}.AsManagedStreamingIAMMechanism(), nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: %q, want plain, scram-sha-256, scram-sha-512, oauthbearer or aws-msk-iam", a.Mechanism)
}

// Principal is the Kafka principal the brokers know this client as, for
// error messages: User:<username>, or "" when unknown (TLS principals,
// tokens and IAM roles are mapped by the broker).
func (s *Security) Principal() string {
	switch s.SASL.Mechanism {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		return "User:" + s.SASL.Username
	}
	return ""
}

// RegistryOpts returns the Schema Registry client options of the TLS and
// authentication settings.
func (s *Security) RegistryOpts() ([]sr.ClientOpt, error) {
	var opts []sr.ClientOpt
	if s.RegistryTLS.Enabled {
		cfg, err := s.RegistryTLS.config("kafka.schema_registry_tls")
		if err != nil {
			return nil, err
		}
		opts = append(opts, sr.DialTLSConfig(cfg))
	}
	switch a := &s.RegistryAuth; {
	case a.Token != "":
		opts = append(opts, sr.BearerToken(a.Token))
	case a.Username != "":
		opts = append(opts, sr.BasicAuth(a.Username, a.Password))
	}
	return opts, nil
}

// Warnings are the settings that weaken security, for the log at startup.
func (s *Security) Warnings() []string {
	var out []string
	if s.TLS.Enabled && s.TLS.InsecureSkipVerify {
		out = append(out, "kafka.tls.insecure_skip_verify is on: the brokers' certificates are not verified, anyone on the network path can read and change the data")
	}
	if s.RegistryTLS.Enabled && s.RegistryTLS.InsecureSkipVerify {
		out = append(out, "kafka.schema_registry_tls.insecure_skip_verify is on: the Schema Registry's certificate is not verified, anyone on the network path can read and change the schemas")
	}
	if s.SASL.Mechanism == MechanismPlain && !s.TLS.Enabled {
		out = append(out, "kafka.sasl.mechanism plain without kafka.tls.enabled: the password crosses the network in clear text")
	}
	return out
}

// newClient builds a franz-go client with base's options, then the
// security ones, then opts, and logs the insecure settings. It returns the
// security options too (for the caller's other clients) and the Schema
// Registry client's.
func (s *Security) newClient(log *slog.Logger, base []kgo.Opt, opts ...kgo.Opt) (*kgo.Client, []kgo.Opt, []sr.ClientOpt, error) {
	sec, err := s.Opts()
	if err != nil {
		return nil, nil, nil, err
	}
	regOpts, err := s.RegistryOpts()
	if err != nil {
		return nil, nil, nil, err
	}
	s.LogWarnings(log)
	client, err := kgo.NewClient(append(append(base, sec...), opts...)...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	return client, sec, regOpts, nil
}

// LogWarnings logs each of Warnings at level WARN.
func (s *Security) LogWarnings(log *slog.Logger) {
	for _, w := range s.Warnings() {
		log.Warn("insecure setting: " + w)
	}
}

// config builds the tls.Config, naming key in errors.
func (t *TLS) config(key string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the operator's explicit choice, logged as a warning
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: no PEM certificate in %s", key, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file and %s.key_file: %w", key, key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// AuthorizationError is a broker refusing an operation because an ACL is
// missing: it names the operation, the resource and the principal, e.g.
// "kafka: not authorized to WRITE topic strait.shop.orders (ACL missing for
// User:strait-producer)". Find it with errors.As; it unwraps to the
// broker's error (kerr.TopicAuthorizationFailed, ...).
type AuthorizationError struct {
	Operation string // the ACL operation: READ, WRITE, CREATE, DESCRIBE, IDEMPOTENT_WRITE
	Resource  string // topic, group, transactional id or cluster
	Name      string // the topic, group or transactional id; empty for the cluster
	Principal string // User:<name>; empty when the broker maps it (TLS, tokens, IAM)
	Err       error
}

// Error names what is missing.
func (e *AuthorizationError) Error() string {
	what := e.Resource
	if e.Name != "" {
		what += " " + e.Name
	}
	who := "ACL missing"
	if e.Principal != "" {
		who += " for " + e.Principal
	}
	return fmt.Sprintf("kafka: not authorized to %s %s (%s): %v", e.Operation, what, who, e.Err)
}

// Unwrap returns the broker's error.
func (e *AuthorizationError) Unwrap() error { return e.Err }

// access is what a request needs, to name the ACL a refusal lacks: the
// operation on each resource it touches.
type access struct {
	topic, topicOp string
	group, groupOp string
	txnID, txnOp   string
	clusterOp      string
}

// authorization returns err as an *AuthorizationError when it is a broker's
// authorization refusal (naming what a needs of the refused resource),
// else err unchanged.
func authorization(err error, principal string, a access) error {
	var e *AuthorizationError
	if err == nil || errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		e = &AuthorizationError{Operation: a.topicOp, Resource: "topic", Name: a.topic}
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		e = &AuthorizationError{Operation: a.groupOp, Resource: "group", Name: a.group}
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		e = &AuthorizationError{Operation: a.txnOp, Resource: "transactional id", Name: a.txnID}
	case errors.Is(err, kerr.ClusterAuthorizationFailed) && a.clusterOp == "IDEMPOTENT_WRITE" && a.topic != "" && a.topicOp == "WRITE":
		// An idempotent producer's id needs IDEMPOTENT_WRITE on the
		// cluster or, since Kafka 2.8, WRITE on any topic: the topic
		// being written is the narrower grant.
		e = &AuthorizationError{Operation: a.topicOp, Resource: "topic", Name: a.topic}
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		e = &AuthorizationError{Operation: a.clusterOp, Resource: "cluster"}
	default:
		return err
	}
	if e.Operation == "" {
		e.Operation = "use"
	}
	e.Principal, e.Err = principal, err
	return e
}

// registryDenied explains the Schema Registry refusing this client (HTTP
// 401 or 403); other errors are returned unchanged.
func registryDenied(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("schema registry refused this client (HTTP %d; check kafka.schema_registry_auth.* and the registry's permissions): %w", re.StatusCode, err)
	}
	return err
}

// warnPlainHTTP warns when registry credentials would travel over plain
// http to url: anyone on the path reads them.
func (s *Security) warnPlainHTTP(log *slog.Logger, url string) {
	r := &s.RegistryAuth
	if (r.Username != "" || r.Token != "") && strings.HasPrefix(strings.ToLower(url), "http://") {
		log.Warn("Schema Registry credentials are sent over plain http: use an https:// kafka.schema_registry_url", "url", url)
	}
}
