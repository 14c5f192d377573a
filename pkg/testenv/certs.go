package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Certs is a throwaway certificate authority and two certificates it
// signed, as PEM files in Dir: a server certificate for localhost and
// 127.0.0.1 (plus any extra hosts) and a client certificate (mutual TLS).
// The files are what a binary's configuration points at; ServerConfig is
// what a test server listens with.
type Certs struct {
	Dir            string
	CAFile         string // the CA's certificate
	ServerCertFile string
	ServerKeyFile  string
	ClientCertFile string // CN "strait-client"
	ClientKeyFile  string

	CA     *x509.CertPool  // holds the CA
	Server tls.Certificate // the server's certificate and key
	Client tls.Certificate // the client's certificate and key
	caCert *x509.Certificate
}

// NewCerts creates a CA and its server and client certificates, valid for a
// day, in dir (e.g. t.TempDir()). hosts are extra names or IP addresses
// of the server certificate.
func NewCerts(dir string, hosts ...string) (*Certs, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strait test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	c := &Certs{Dir: dir, CAFile: filepath.Join(dir, "ca.pem"), CA: x509.NewCertPool(), caCert: caCert}
	c.CA.AddCert(caCert)
	if err := writePEM(c.CAFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	server := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	c.ServerCertFile, c.ServerKeyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if c.Server, err = c.sign(server, caKey, c.ServerCertFile, c.ServerKeyFile); err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	client := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "strait-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	c.ClientCertFile, c.ClientKeyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if c.Client, err = c.sign(client, caKey, c.ClientCertFile, c.ClientKeyFile); err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return c, nil
}

// sign completes tmpl, signs it with the CA and writes the certificate and
// its new key to certFile and keyFile.
func (c *Certs) sign(tmpl *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl.NotBefore, tmpl.NotAfter = c.caCert.NotBefore, c.caCert.NotAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return tls.Certificate{}, err
	}
	if err := writePEM(keyFile, "EC PRIVATE KEY", keyDER); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certFile, keyFile)
}

// ServerConfig is a server's TLS configuration with the server
// certificate; with clientCerts it also requires a client certificate
// signed by the CA.
func (c *Certs) ServerConfig(clientCerts bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{c.Server}, MinVersion: tls.VersionTLS12}
	if clientCerts {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, c.CA
	}
	return cfg
}

// ClientConfig is a client's TLS configuration trusting the CA and
// presenting the client certificate.
func (c *Certs) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: c.CA, Certificates: []tls.Certificate{c.Client}, MinVersion: tls.VersionTLS12}
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

// StartTLSRegistry starts an in-process Schema Registry served over TLS
// with c's server certificate (client certificates are not asked for).
// opts are srfake's, e.g. srfake.WithAuth for basic authentication. Its URL
// is srv.URL; close it with srv.Close.
func StartTLSRegistry(c *Certs, opts ...srfake.Option) (reg *srfake.Registry, srv *httptest.Server) {
	reg = srfake.NewRegistry(opts...)
	srv = httptest.NewUnstartedServer(reg.Handler())
	srv.TLS = c.ServerConfig(false)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what tests check
	srv.StartTLS()
	return reg, srv
}

// SecureKafka is a kfake cluster reached only over TLS with a client
// certificate and SASL SCRAM-SHA-512, ACLs enforced, and a Schema Registry
// over TLS with basic authentication: what the security tests of both
// binaries run against.
type SecureKafka struct {
	Certs       *Certs
	Kafka       *kfake.Cluster
	RegistryURL string
	registry    *httptest.Server
}

// The superuser of a SecureKafka, for a test's own clients.
const (
	SecureAdminUser = "admin"
	SecureAdminPass = "admin-secret"
)

// StartSecureKafka starts a SecureKafka with its certificates in dir, the
// SCRAM-SHA-512 user user:pass granted acls, and a registry that takes
// regUser:regPass.
func StartSecureKafka(dir, user, pass, regUser, regPass string, acls ...kfake.ACL) (*SecureKafka, error) {
	certs, err := NewCerts(dir)
	if err != nil {
		return nil, err
	}
	cl, err := StartKafka(kfake.TLS(certs.ServerConfig(true)), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-512", SecureAdminUser, SecureAdminPass),
		kfake.User("SCRAM-SHA-512", user, pass, acls...))
	if err != nil {
		return nil, err
	}
	_, srv := StartTLSRegistry(certs, srfake.WithAuth("Basic "+base64.StdEncoding.EncodeToString([]byte(regUser+":"+regPass))))
	return &SecureKafka{Certs: certs, Kafka: cl, RegistryURL: srv.URL, registry: srv}, nil
}

// Close stops the registry and the cluster.
func (s *SecureKafka) Close() {
	s.registry.Close()
	s.Kafka.Close()
}
