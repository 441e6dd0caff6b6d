package kafkaauth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sluice-stream/sluice/internal/options"
)

// TLS option names. The librdkafka names (ssl.ca.location, ...) take PEM
// files; the Java names (ssl.truststore.*, ssl.keystore.*) are accepted
// with type PEM, as Kafka ≥ 2.7 clients do. JKS and PKCS12 stores are not
// supported: convert them to PEM.
const (
	optCALocation      = "kafka.ssl.ca.location"
	optCAPEM           = "kafka.ssl.ca.pem"
	optCertLocation    = "kafka.ssl.certificate.location"
	optCertPEM         = "kafka.ssl.certificate.pem"
	optKeyLocation     = "kafka.ssl.key.location"
	optKeyPEM          = "kafka.ssl.key.pem"
	optKeyPassword     = "kafka.ssl.key.password"
	optTrustType       = "kafka.ssl.truststore.type"
	optTrustLocation   = "kafka.ssl.truststore.location"
	optTrustCerts      = "kafka.ssl.truststore.certificates"
	optTrustPassword   = "kafka.ssl.truststore.password"
	optKeystoreType    = "kafka.ssl.keystore.type"
	optKeystoreLoc     = "kafka.ssl.keystore.location"
	optKeystoreChain   = "kafka.ssl.keystore.certificate.chain"
	optKeystoreKey     = "kafka.ssl.keystore.key"
	optKeystorePass    = "kafka.ssl.keystore.password"
	optEndpointIdent   = "kafka.ssl.endpoint.identification.algorithm"
	optVerifyCerts     = "kafka.enable.ssl.certificate.verification"
	optTLSServerName   = "kafka.ssl.server.name"
	optTLSMinVersion   = "kafka.ssl.protocol"
	optEnabledProtocol = "kafka.ssl.enabled.protocols"
)

// tlsOptionNames are every TLS option; setting one without an SSL protocol
// is an error.
var tlsOptionNames = []string{
	optCALocation, optCAPEM, optCertLocation, optCertPEM, optKeyLocation, optKeyPEM, optKeyPassword,
	optTrustType, optTrustLocation, optTrustCerts, optTrustPassword,
	optKeystoreType, optKeystoreLoc, optKeystoreChain, optKeystoreKey, optKeystorePass,
	optEndpointIdent, optVerifyCerts, optTLSServerName, optTLSMinVersion, optEnabledProtocol,
}

// buildTLS builds the client TLS configuration from the options.
func buildTLS(o options.Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}

	// Trusted CAs.
	var caPEM []byte
	var caFrom string
	addCA := func(name string, b []byte) error {
		if caFrom != "" {
			return &options.Error{Option: name, Allowed: fmt.Sprintf("set only one of %q and %q", caFrom, name)}
		}
		caPEM, caFrom = b, name
		return nil
	}
	if p, ok := nonEmpty(o, optCALocation); ok {
		b, err := readFile(optCALocation, p)
		if err != nil {
			return nil, err
		}
		if err := addCA(optCALocation, b); err != nil {
			return nil, err
		}
	}
	if v, ok := nonEmpty(o, optCAPEM); ok {
		if err := addCA(optCAPEM, []byte(v)); err != nil {
			return nil, err
		}
	}
	trustType := strings.ToUpper(strings.TrimSpace(o.String(optTrustType, "")))
	if p, ok := nonEmpty(o, optTrustLocation); ok {
		b, err := readFile(optTrustLocation, p)
		if err != nil {
			return nil, err
		}
		if err := checkStoreType(optTrustLocation, optTrustType, trustType, b); err != nil {
			return nil, err
		}
		if err := addCA(optTrustLocation, b); err != nil {
			return nil, err
		}
	}
	if v, ok := nonEmpty(o, optTrustCerts); ok {
		if err := addCA(optTrustCerts, []byte(v)); err != nil {
			return nil, err
		}
	}
	if caPEM != nil {
		pool := x509.NewCertPool()
		certs, err := parseCerts(caPEM)
		if err != nil || len(certs) == 0 {
			return nil, &options.Error{Option: caFrom, Allowed: "holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)"}
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		cfg.RootCAs = pool
	}

	// Client certificate (mutual TLS).
	cert, err := clientCert(o)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}

	if v, ok := nonEmpty(o, optTLSServerName); ok {
		cfg.ServerName = v
	}
	for _, name := range []string{optTLSMinVersion, optEnabledProtocol} {
		v, ok := nonEmpty(o, name)
		if !ok {
			continue
		}
		minV := uint16(0)
		for _, p := range strings.Split(v, ",") {
			var ver uint16
			switch strings.ToUpper(strings.TrimSpace(p)) {
			case "TLSV1.2", "TLS":
				ver = tls.VersionTLS12
			case "TLSV1.3":
				ver = tls.VersionTLS13
			default:
				return nil, &options.Error{Option: name, Value: v, Allowed: "allowed: TLSv1.2, TLSv1.3 (older versions are not supported)"}
			}
			if minV == 0 || ver < minV {
				minV = ver
			}
		}
		if minV > cfg.MinVersion {
			cfg.MinVersion = minV
		}
	}

	verify, err := o.Bool(optVerifyCerts, true)
	if err != nil {
		return nil, err
	}
	ident := "https"
	if v, ok := o.Get(optEndpointIdent); ok {
		ident = strings.ToLower(strings.TrimSpace(v))
	}
	switch {
	case !verify:
		// librdkafka's enable.ssl.certificate.verification=false: trust
		// anything. For tests and emergencies only.
		cfg.InsecureSkipVerify = true
	case ident == "https":
		// The standard verification: chain and host name.
	case ident == "" || ident == "none":
		// Kafka's empty endpoint identification: verify the chain but
		// not the host name.
		cfg.InsecureSkipVerify = true
		roots := cfg.RootCAs
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChainOnly(cs, roots)
		}
	default:
		return nil, &options.Error{Option: optEndpointIdent, Value: ident, Allowed: `allowed: "https" (verify the host name, the default) or "" (do not)`}
	}
	return cfg, nil
}

// verifyChainOnly verifies the peer chain against roots (nil = system
// roots) without checking the host name.
func verifyChainOnly(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the broker sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	if err != nil {
		return fmt.Errorf("tls: verify broker certificate (host name not checked): %w", err)
	}
	return nil
}

// clientCert loads the client certificate and key, if configured.
func clientCert(o options.Options) (*tls.Certificate, error) {
	var certPEM, keyPEM []byte
	var certFrom, keyFrom string
	set := func(dst *[]byte, from *string, name string, b []byte) error {
		if *from != "" {
			return &options.Error{Option: name, Allowed: fmt.Sprintf("set only one of %q and %q", *from, name)}
		}
		*dst, *from = b, name
		return nil
	}
	if p, ok := nonEmpty(o, optCertLocation); ok {
		b, err := readFile(optCertLocation, p)
		if err != nil {
			return nil, err
		}
		if err := set(&certPEM, &certFrom, optCertLocation, b); err != nil {
			return nil, err
		}
	}
	if v, ok := nonEmpty(o, optCertPEM); ok {
		if err := set(&certPEM, &certFrom, optCertPEM, []byte(v)); err != nil {
			return nil, err
		}
	}
	if p, ok := nonEmpty(o, optKeyLocation); ok {
		b, err := readFile(optKeyLocation, p)
		if err != nil {
			return nil, err
		}
		if err := set(&keyPEM, &keyFrom, optKeyLocation, b); err != nil {
			return nil, err
		}
	}
	if v, ok := nonEmpty(o, optKeyPEM); ok {
		if err := set(&keyPEM, &keyFrom, optKeyPEM, []byte(v)); err != nil {
			return nil, err
		}
	}
	ksType := strings.ToUpper(strings.TrimSpace(o.String(optKeystoreType, "")))
	if p, ok := nonEmpty(o, optKeystoreLoc); ok {
		// A PEM key store file holds the private key and the chain.
		b, err := readFile(optKeystoreLoc, p)
		if err != nil {
			return nil, err
		}
		if err := checkStoreType(optKeystoreLoc, optKeystoreType, ksType, b); err != nil {
			return nil, err
		}
		if err := set(&certPEM, &certFrom, optKeystoreLoc, b); err != nil {
			return nil, err
		}
		if err := set(&keyPEM, &keyFrom, optKeystoreLoc, b); err != nil {
			return nil, err
		}
	}
	if v, ok := nonEmpty(o, optKeystoreChain); ok {
		if err := set(&certPEM, &certFrom, optKeystoreChain, []byte(v)); err != nil {
			return nil, err
		}
	}
	if v, ok := nonEmpty(o, optKeystoreKey); ok {
		if err := set(&keyPEM, &keyFrom, optKeystoreKey, []byte(v)); err != nil {
			return nil, err
		}
	}
	switch {
	case certPEM == nil && keyPEM == nil:
		return nil, nil
	case certPEM == nil:
		return nil, &options.Error{Option: keyFrom, Allowed: "a client key needs its certificate: set " + optCertLocation + " (or " + optKeystoreChain + ")"}
	case keyPEM == nil:
		return nil, &options.Error{Option: certFrom, Allowed: "a client certificate needs its private key: set " + optKeyLocation + " (or " + optKeystoreKey + ")"}
	}
	if encryptedKey(keyPEM) {
		return nil, &options.Error{Option: keyFrom, Allowed: "the private key is encrypted, which sluice does not support; decrypt it (openssl pkey -in key.pem -out plain.pem) and protect the file instead"}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The tls package's messages describe structure, not content.
		return nil, &options.Error{Option: keyFrom, Allowed: "the client certificate and key do not load: " + err.Error()}
	}
	return &cert, nil
}

// encryptedKey reports whether a PEM key is password-protected.
func encryptedKey(b []byte) bool {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return false
		}
		if blk.Type == "ENCRYPTED PRIVATE KEY" || (strings.HasSuffix(blk.Type, "PRIVATE KEY") && blk.Headers["Proc-Type"] != "") {
			return true
		}
	}
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// checkStoreType accepts PEM stores only; JKS and PKCS12 get a conversion hint.
func checkStoreType(locOpt, typeOpt, typ string, content []byte) error {
	isPEM := bytes.Contains(content, []byte("-----BEGIN "))
	switch {
	case typ == "PEM" && isPEM, typ == "" && isPEM:
		return nil
	case typ == "PEM":
		return &options.Error{Option: locOpt, Allowed: fmt.Sprintf("%s is PEM but the file holds no PEM block", typeOpt)}
	}
	if typ == "" {
		typ = "JKS (the Java default)"
	}
	return &options.Error{Option: locOpt, Allowed: fmt.Sprintf("the store is %s, which sluice cannot read; convert it to PEM "+
		"(keytool -importkeystore -deststoretype PKCS12, then openssl pkcs12 -nodes) and set %s=PEM, or use %s / %s / %s",
		typ, typeOpt, optCALocation, optCertLocation, optKeyLocation)}
}

func nonEmpty(o options.Options, name string) (string, bool) {
	v, ok := o.Get(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func readFile(opt, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &options.Error{Option: opt, Allowed: "cannot read the file: " + err.Error()}
	}
	return b, nil
}
