package binlog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// tlsConfig builds the client TLS configuration of source.tls for host; nil
// with mode disabled. preferred and required encrypt without checking the
// server's certificate (as MySQL's clients do); verify-ca checks that it
// chains to a CA of ca_file but not the name in it (RDS replicas are often
// reached by another name, e.g. through a tunnel or a CNAME);
// verify-identity checks both.
func (c *TLSConfig) tlsConfig(host string) (*tls.Config, error) {
	if c.mode(host) == TLSDisabled {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("source.tls.cert_file %s / source.tls.key_file %s: %w", c.CertFile, c.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	var roots *x509.CertPool // nil: the system's CAs
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("source.tls.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("source.tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
	}
	switch c.mode(host) {
	case TLSPreferred, TLSRequired:
		cfg.InsecureSkipVerify = true // encryption only, by definition of the mode
	case TLSVerifyCA:
		// Go verifies the chain and the name together; the name check is
		// turned off and the chain verified here.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots, c.CAFile) }
	case TLSVerifyIdentity:
		cfg.RootCAs = roots
		cfg.ServerName = host
		if c.ServerName != "" {
			cfg.ServerName = c.ServerName
		}
	}
	return cfg, nil
}

// mode is Mode, or its default for host: verify-identity, secure by
// default, unless the database is on this machine (loopback: preferred).
// A source reached by another name than its certificate's (an SSH
// tunnel's end is the database's own name, so it verifies) sets
// server_name or verify-ca; an encrypted but unverified connection is
// asked for by naming preferred or required.
func (c *TLSConfig) mode(host string) string {
	if c.Mode != "" {
		return c.Mode
	}
	if host == "localhost" || net.ParseIP(host).IsLoopback() {
		return TLSPreferred
	}
	return TLSVerifyIdentity
}

// verifyChain checks that the server's certificate chains to roots (the
// system's CAs when nil), whatever name it carries.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool, caFile string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("source.tls.mode verify-ca: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		from := "the system's CAs"
		if caFile != "" {
			from = "source.tls.ca_file " + caFile
		}
		return fmt.Errorf("source.tls.mode verify-ca: the server's certificate (subject %q, issuer %q) is not signed by a CA of %s: %w",
			leaf.Subject.String(), leaf.Issuer.String(), from, err)
	}
	return nil
}
