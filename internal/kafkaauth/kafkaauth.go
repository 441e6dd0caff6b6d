// Package kafkaauth turns Kafka client security options, as Spark users
// write them (kafka.security.protocol, kafka.sasl.mechanism,
// kafka.sasl.jaas.config, kafka.ssl.*), into franz-go client options, and
// keeps the secrets they carry out of every message sluice prints.
//
// Supported: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL; SASL mechanisms
// PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 with credentials from a JAAS
// configuration (PlainLoginModule / ScramLoginModule, shaded prefixes such
// as "kafkashaded." allowed) or from librdkafka's kafka.sasl.username /
// kafka.sasl.password; TLS trust and client certificates as PEM (librdkafka's
// kafka.ssl.ca.location, kafka.ssl.certificate.location,
// kafka.ssl.key.location, or Java's trust/key store options with type PEM);
// kafka.ssl.endpoint.identification.algorithm="" to skip host name checks.
// The Kafka source and sink share it, and it parses Azure Event Hubs
// connection strings.
package kafkaauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluice-stream/sluice/internal/options"
)

// Security protocols (kafka.security.protocol).
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// SASL mechanisms (kafka.sasl.mechanism).
const (
	MechanismPlain    = "PLAIN"
	MechanismScram256 = "SCRAM-SHA-256"
	MechanismScram512 = "SCRAM-SHA-512"
)

const (
	optProtocol     = "kafka.security.protocol"
	optMechanism    = "kafka.sasl.mechanism"
	optJAAS         = "kafka.sasl.jaas.config"
	optSASLUser     = "kafka.sasl.username"
	optSASLPassword = "kafka.sasl.password"
)

// Settings is a parsed security configuration. The password is kept
// unexported; String and every error are redacted.
type Settings struct {
	// Protocol is one of Plaintext, SSL, SASLPlaintext, SASLSSL.
	Protocol string
	// Mechanism is the SASL mechanism, "" without SASL.
	Mechanism string
	// User is the SASL user name (not a secret).
	User string
	// TLS is the client TLS configuration, nil without TLS.
	TLS *tls.Config
	// CredentialsFrom names where the credentials came from, for
	// authentication errors; empty means the kafka.sasl.* options.
	CredentialsFrom string

	password string
	token    bool // SCRAM delegation token (tokenauth=true)
	scrub    scrubber

	// Authentication failures seen by the client hook.
	mu       sync.Mutex
	authErr  error
	authAt   time.Time
	tlsErr   error
	lastGood time.Time
}

// Parse reads the security options. Errors name the option at fault and
// never contain a secret value.
func Parse(o options.Options) (*Settings, error) {
	s := &Settings{}
	proto, err := o.Enum(optProtocol, Plaintext, Plaintext, SSL, SASLPlaintext, SASLSSL)
	if err != nil {
		return nil, err
	}
	s.Protocol = proto
	useTLS := proto == SSL || proto == SASLSSL
	useSASL := proto == SASLPlaintext || proto == SASLSSL

	if !useTLS {
		for _, n := range tlsOptionNames {
			if _, ok := nonEmpty(o, n); ok && n != optEndpointIdent {
				return nil, &options.Error{Option: n, Allowed: fmt.Sprintf("TLS settings need %s=SSL or SASL_SSL (it is %s)", optProtocol, proto)}
			}
		}
	}
	if useTLS {
		if s.TLS, err = buildTLS(o); err != nil {
			return nil, err
		}
	}

	_, hasJAAS := o.Get(optJAAS)
	_, hasUser := o.Get(optSASLUser)
	_, hasPass := o.Get(optSASLPassword)
	mechSet := o.Has(optMechanism)
	if !useSASL {
		for _, n := range []string{optJAAS, optSASLUser, optSASLPassword} {
			if o.Has(n) {
				return nil, &options.Error{Option: n, Allowed: fmt.Sprintf("SASL credentials need %s=SASL_SSL or SASL_PLAINTEXT (it is %s; credentials would not be sent)", optProtocol, proto)}
			}
		}
		if mechSet {
			return nil, &options.Error{Option: optMechanism, Allowed: fmt.Sprintf("a SASL mechanism needs %s=SASL_SSL or SASL_PLAINTEXT (it is %s)", optProtocol, proto)}
		}
		s.scrub = newScrubber()
		return s, nil
	}

	mech := ""
	if mechSet {
		v, _ := o.Get(optMechanism)
		switch strings.ToUpper(strings.TrimSpace(v)) {
		case MechanismPlain, MechanismScram256, MechanismScram512:
			mech = strings.ToUpper(strings.TrimSpace(v))
		case "GSSAPI", "OAUTHBEARER", "AWS_MSK_IAM":
			return nil, &options.Error{Option: optMechanism, Value: v, Allowed: "not supported by sluice; allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"}
		default:
			return nil, &options.Error{Option: optMechanism, Value: v, Allowed: "allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"}
		}
	}

	switch {
	case hasJAAS && (hasUser || hasPass):
		return nil, &options.Error{Option: optJAAS, Allowed: fmt.Sprintf("set either %s or %s / %s, not both", optJAAS, optSASLUser, optSASLPassword)}
	case hasJAAS:
		raw, _ := o.Get(optJAAS)
		j, err := ParseJAAS(raw)
		if err != nil {
			return nil, &options.Error{Option: optJAAS, Allowed: err.Error()}
		}
		family := j.Mechanism()
		switch {
		case family == "":
			return nil, &options.Error{Option: optJAAS, Allowed: fmt.Sprintf("login module %s is not supported; use %s or %s", safeClass(j.Module), PlainLoginModule, ScramLoginModule)}
		case mech == "" && family == MechanismPlain:
			mech = MechanismPlain
		case mech == "":
			return nil, &options.Error{Option: optMechanism, Allowed: "required with ScramLoginModule: SCRAM-SHA-256 or SCRAM-SHA-512"}
		case family == MechanismPlain && mech != MechanismPlain, family == "SCRAM" && !strings.HasPrefix(mech, "SCRAM-"):
			return nil, &options.Error{Option: optMechanism, Value: mech, Allowed: fmt.Sprintf("does not match the login module in %s (%s)", optJAAS, safeClass(j.Module))}
		}
		user, okU := j.Options["username"]
		pass, okP := j.Options["password"]
		if !okU || !okP {
			return nil, &options.Error{Option: optJAAS, Allowed: `needs username="..." and password="..."`}
		}
		s.User, s.password = user, pass
		s.token = strings.EqualFold(j.Options["tokenauth"], "true")
	case hasUser || hasPass:
		if !hasUser || !hasPass {
			return nil, &options.Error{Option: optSASLUser, Allowed: fmt.Sprintf("set both %s and %s", optSASLUser, optSASLPassword)}
		}
		s.User, _ = o.Get(optSASLUser)
		s.password, _ = o.Get(optSASLPassword)
		if mech == "" {
			mech = MechanismPlain
		}
	default:
		return nil, &options.Error{Option: optJAAS, Allowed: fmt.Sprintf("%s=%s needs credentials: set %s (e.g. %s required username=\"...\" password=\"...\";) or %s and %s",
			optProtocol, proto, optJAAS, PlainLoginModule, optSASLUser, optSASLPassword)}
	}
	if s.User == "" {
		return nil, &options.Error{Option: optJAAS, Allowed: "the SASL user name is empty"}
	}
	s.Mechanism = mech
	s.scrub = newScrubber(s.password, jaasIfAny(o))
	return s, nil
}

func jaasIfAny(o options.Options) string {
	v, _ := o.Get(optJAAS)
	return v
}

// safeClass shows a login module class name (already validated as a Java
// class name by the parser).
func safeClass(c string) string {
	if len(c) > 200 {
		return c[:200] + "…"
	}
	return c
}

// ClientOpts parses the security options and returns the franz-go options
// that apply them.
func ClientOpts(o options.Options) ([]kgo.Opt, error) {
	s, err := Parse(o)
	if err != nil {
		return nil, err
	}
	return s.Opts(), nil
}

// String describes the settings without secrets, e.g.
// `SASL_SSL (PLAIN, user "$ConnectionString")`.
func (s *Settings) String() string {
	if s.Mechanism == "" {
		return s.Protocol
	}
	return fmt.Sprintf("%s (%s, user %q)", s.Protocol, s.Mechanism, s.scrub.Text(s.User))
}

// GoString is String, so that %#v does not show the password either.
func (s *Settings) GoString() string { return s.String() }

// Opts returns the franz-go options for these settings: TLS dialing, the
// SASL mechanism, and a hook that records authentication and TLS failures
// so that Explain can name them.
func (s *Settings) Opts() []kgo.Opt {
	var opts []kgo.Opt
	if s.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(s.TLS.Clone()))
	}
	if m := s.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	opts = append(opts, kgo.WithHooks(hook{s}))
	return opts
}

func (s *Settings) mechanism() sasl.Mechanism {
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: s.User, Pass: s.password}.AsMechanism()
	case MechanismScram256:
		return scram.Auth{User: s.User, Pass: s.password, IsToken: s.token}.AsSha256Mechanism()
	case MechanismScram512:
		return scram.Auth{User: s.User, Pass: s.password, IsToken: s.token}.AsSha512Mechanism()
	}
	return nil
}

// Secrets returns the secret values these settings hold, for callers that
// must scrub text of their own.
func (s *Settings) Secrets() []string { return s.scrub.Secrets() }

// Scrub returns err with every secret value and recognisable secret
// pattern (Redact) removed from its message; errors.Is and errors.As still
// see the original chain.
func (s *Settings) Scrub(err error) error { return s.scrub.Err(err) }

// ScrubText removes secrets from text.
func (s *Settings) ScrubText(t string) string { return s.scrub.Text(t) }

// AddSecret registers one more value to scrub (e.g. a whole connection
// string used as a password).
func (s *Settings) AddSecret(v string) {
	s.scrub = s.scrub.With(v)
}

// AuthError reports that the brokers refused the client's credentials.
type AuthError struct {
	Mechanism string
	User      string
	// Check says which options hold the credentials.
	Check string
	Err   error // scrubbed
}

func (e *AuthError) Error() string {
	check := e.Check
	if check == "" {
		check = fmt.Sprintf("the user name and password in %s (or %s / %s) and %s", optJAAS, optSASLUser, optSASLPassword, optMechanism)
	}
	return fmt.Sprintf("SASL authentication failed (mechanism %s, user %q): the broker rejected the credentials or closed the connection during authentication; check %s: %v",
		e.Mechanism, e.User, check, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// TLSError reports a failed TLS handshake with the brokers.
type TLSError struct {
	Err error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS handshake with the broker failed: %v; check %s (PLAINTEXT brokers need no TLS), the trusted CA (%s) "+
		"and the host name (%s=\"\" skips the host name check)", e.Err, optProtocol, optCALocation, optEndpointIdent)
}

func (e *TLSError) Unwrap() error { return e.Err }

// Explain classifies an error from a client built with Opts: a credential
// failure becomes an *AuthError, a TLS failure a *TLSError; every error is
// scrubbed of secrets. A nil error stays nil.
func (s *Settings) Explain(err error) error {
	if err == nil {
		return nil
	}
	err = s.Scrub(err)
	if IsAuthError(err) || IsTLSError(err) {
		return err
	}
	s.mu.Lock()
	authErr, authAt, tlsErr, lastGood := s.authErr, s.authAt, s.tlsErr, s.lastGood
	s.mu.Unlock()
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return &AuthError{Mechanism: s.Mechanism, User: s.User, Check: s.CredentialsFrom, Err: err}
	case authErr != nil && authAt.After(lastGood):
		if authErr.Error() != err.Error() {
			err = s.Scrub(fmt.Errorf("%w (during authentication: %v)", err, authErr))
		}
		return &AuthError{Mechanism: s.Mechanism, User: s.User, Check: s.CredentialsFrom, Err: err}
	case tlsErr != nil:
		return &TLSError{Err: s.Scrub(tlsErr)}
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var rh tls.RecordHeaderError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &rh) {
		return &TLSError{Err: err}
	}
	return err
}

// IsAuthError reports whether err is or wraps an *AuthError.
func IsAuthError(err error) bool {
	var a *AuthError
	return errors.As(err, &a)
}

// IsTLSError reports whether err is or wraps a *TLSError.
func IsTLSError(err error) bool {
	var t *TLSError
	return errors.As(err, &t)
}

// Fatal reports whether err is a configuration failure that retrying
// cannot fix (authentication, TLS).
func Fatal(err error) bool { return IsAuthError(err) || IsTLSError(err) }

// hook watches connection set-up for authentication and TLS failures.
type hook struct{ s *Settings }

var (
	_ kgo.HookBrokerRead    = hook{}
	_ kgo.HookBrokerConnect = hook{}
)

// OnBrokerRead implements kgo.HookBrokerRead: a failed read of a SASL
// response is a refused authentication (brokers close the connection on
// bad credentials; some first send SASL_AUTHENTICATION_FAILED).
func (h hook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if key != kmsg.SASLAuthenticate.Int16() && key != kmsg.SASLHandshake.Int16() && key != kmsg.ApiVersions.Int16() {
			s.lastGood = time.Now()
		}
		return
	}
	if (key == kmsg.SASLAuthenticate.Int16() || key == kmsg.SASLHandshake.Int16()) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
		s.authErr = s.scrub.Err(err)
		s.authAt = time.Now()
	}
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h hook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.tlsErr = nil
		return
	}
	if errors.Is(err, kerr.SaslAuthenticationFailed) {
		s.authErr = s.scrub.Err(err)
		s.authAt = time.Now()
		return
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &rh) || errors.As(err, &ae) {
		s.tlsErr = s.scrub.Err(err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}
