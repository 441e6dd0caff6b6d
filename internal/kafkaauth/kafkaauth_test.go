package kafkaauth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/kafkaauth/authtest"
	"github.com/sluice-stream/sluice/internal/options"
)

const plainJAAS = `org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s";`
const scramJAAS = `org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";`

func parse(m map[string]string) (*kafkaauth.Settings, error) {
	return kafkaauth.Parse(options.New(m))
}

func TestParseSettings(t *testing.T) {
	const pw = "Pa55-word+secret"
	cases := []struct {
		name      string
		opts      map[string]string
		protocol  string
		mechanism string
		user      string
		tls       bool
	}{
		{"default plaintext", map[string]string{}, "PLAINTEXT", "", "", false},
		{"ssl", map[string]string{"kafka.security.protocol": "ssl"}, "SSL", "", "", true},
		{"plain mechanism inferred from module", map[string]string{"kafka.security.protocol": "SASL_SSL",
			"kafka.sasl.jaas.config": fmt.Sprintf(plainJAAS, "alice", pw)}, "SASL_SSL", "PLAIN", "alice", true},
		{"scram 512", map[string]string{"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "scram-sha-512",
			"kafka.sasl.jaas.config": fmt.Sprintf(scramJAAS, "bob", pw)}, "SASL_PLAINTEXT", "SCRAM-SHA-512", "bob", false},
		{"shaded module", map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "PLAIN",
			"kafka.sasl.jaas.config": "kafkashaded." + fmt.Sprintf(plainJAAS, "$ConnectionString", pw)}, "SASL_SSL", "PLAIN", "$ConnectionString", true},
		{"librdkafka user and password", map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "SCRAM-SHA-256",
			"kafka.sasl.username": "carol", "kafka.sasl.password": pw}, "SASL_SSL", "SCRAM-SHA-256", "carol", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := parse(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if s.Protocol != c.protocol || s.Mechanism != c.mechanism || s.User != c.user || (s.TLS != nil) != c.tls {
				t.Fatalf("got %s %q %q tls=%v, want %s %q %q tls=%v", s.Protocol, s.Mechanism, s.User, s.TLS != nil, c.protocol, c.mechanism, c.user, c.tls)
			}
			if strings.Contains(s.String(), pw) || strings.Contains(fmt.Sprintf("%+v %#v", s, s), pw) {
				t.Errorf("settings print the password: %s / %+v", s, s)
			}
			if c.mechanism != "" && (len(s.Secrets()) == 0 || s.ScrubText("x "+pw+" y") != "x [redacted] y") {
				t.Errorf("password not registered for scrubbing: %q", s.ScrubText("x "+pw+" y"))
			}
		})
	}
}

func TestParseSettingsErrors(t *testing.T) {
	const pw = "Pa55-word+secret"
	dir := t.TempDir()
	jks := authtest.WriteFile(t, dir, "store.jks", []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2})
	ca := authtest.NewCA(t)
	caFile := authtest.WriteFile(t, dir, "ca.pem", ca.CertPEM())
	cert, key := ca.Issue(t, true, "client")
	certFile := authtest.WriteFile(t, dir, "c.pem", cert)
	keyFile := authtest.WriteFile(t, dir, "k.pem", key)
	cases := []struct {
		name string
		opts map[string]string
		want []string
	}{
		{"bad protocol", map[string]string{"kafka.security.protocol": "TLS"}, []string{`"kafka.security.protocol"`, "SASL_SSL"}},
		{"credentials without SASL protocol", map[string]string{"kafka.sasl.jaas.config": fmt.Sprintf(plainJAAS, "a", pw)},
			[]string{`"kafka.sasl.jaas.config"`, "SASL_SSL or SASL_PLAINTEXT", "would not be sent"}},
		{"SASL without credentials", map[string]string{"kafka.security.protocol": "SASL_SSL"}, []string{"needs credentials", "kafka.sasl.jaas.config"}},
		{"unsupported mechanism", map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "GSSAPI",
			"kafka.sasl.jaas.config": fmt.Sprintf(plainJAAS, "a", pw)}, []string{`"GSSAPI"`, "not supported", "SCRAM-SHA-512"}},
		{"scram module needs mechanism", map[string]string{"kafka.security.protocol": "SASL_SSL",
			"kafka.sasl.jaas.config": fmt.Sprintf(scramJAAS, "a", pw)}, []string{`"kafka.sasl.mechanism"`, "SCRAM-SHA-256 or SCRAM-SHA-512"}},
		{"mechanism does not match module", map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "SCRAM-SHA-256",
			"kafka.sasl.jaas.config": fmt.Sprintf(plainJAAS, "a", pw)}, []string{"does not match", "PlainLoginModule"}},
		{"unsupported module", map[string]string{"kafka.security.protocol": "SASL_SSL",
			"kafka.sasl.jaas.config": `com.sun.security.auth.module.Krb5LoginModule required password="` + pw + `";`}, []string{"Krb5LoginModule", "not supported"}},
		{"malformed JAAS", map[string]string{"kafka.security.protocol": "SASL_SSL",
			"kafka.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="` + pw}, []string{`"kafka.sasl.jaas.config"`, "not closed"}},
		{"JAAS without password", map[string]string{"kafka.security.protocol": "SASL_SSL",
			"kafka.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="a";`}, []string{`password="..."`}},
		{"JAAS and username", map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.sasl.username": "a", "kafka.sasl.password": pw,
			"kafka.sasl.jaas.config": fmt.Sprintf(plainJAAS, "a", pw)}, []string{"either"}},
		{"TLS option with PLAINTEXT", map[string]string{"kafka.ssl.ca.location": caFile}, []string{`"kafka.ssl.ca.location"`, "SSL or SASL_SSL"}},
		{"missing CA file", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.ca.location": dir + "/nope.pem"}, []string{`"kafka.ssl.ca.location"`, "no such file"}},
		{"JKS trust store", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.truststore.location": jks},
			[]string{`"kafka.ssl.truststore.location"`, "JKS", "convert it to PEM"}},
		{"CA file is not PEM", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.ca.location": jks}, []string{"no PEM certificate"}},
		{"two CA sources", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.ca.location": caFile, "kafka.ssl.truststore.certificates": string(ca.CertPEM())},
			[]string{"set only one of"}},
		{"key without certificate", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.key.location": keyFile}, []string{"needs its certificate"}},
		{"certificate without key", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.certificate.location": certFile}, []string{"needs its private key"}},
		{"encrypted key", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.certificate.location": certFile,
			"kafka.ssl.key.pem": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"}, []string{"encrypted"}},
		{"bad identification algorithm", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.endpoint.identification.algorithm": "dns"}, []string{`"https"`}},
		{"old TLS version", map[string]string{"kafka.security.protocol": "SSL", "kafka.ssl.enabled.protocols": "TLSv1.1"}, []string{"TLSv1.2, TLSv1.3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error %q contains the password", err)
			}
			var oe *options.Error
			if !errors.As(err, &oe) {
				t.Errorf("error %T is not an *options.Error", err)
			}
		})
	}
}

// cluster starts a kfake cluster with opts and a topic "t" of 2 partitions.
func cluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(2, "t")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// listEnds connects with the settings built from opts and lists the end
// offsets of "t", returning the explained error.
func listEnds(t *testing.T, addr string, opts map[string]string) (time.Duration, error) {
	t.Helper()
	s, err := parse(opts)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, s.Opts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "t")
	if err == nil {
		err = ends.Error()
	}
	if err == nil && len(ends["t"]) != 2 {
		err = fmt.Errorf("listed %d partitions, want 2", len(ends["t"]))
	}
	return time.Since(start), s.Explain(err)
}

func TestSASLAgainstBroker(t *testing.T) {
	const pw = "correct-Horse+battery"
	c := cluster(t, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", pw),
		kfake.Superuser("SCRAM-SHA-256", "bob", pw),
		kfake.Superuser("SCRAM-SHA-512", "carol", pw))
	addr := c.ListenAddrs()[0]
	cases := []struct {
		mech, user, jaas string
	}{
		{"PLAIN", "alice", plainJAAS},
		{"SCRAM-SHA-256", "bob", scramJAAS},
		{"SCRAM-SHA-512", "carol", scramJAAS},
	}
	for _, c := range cases {
		t.Run(c.mech, func(t *testing.T) {
			t.Parallel()
			opts := func(pass string) map[string]string {
				return map[string]string{"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": c.mech,
					"kafka.sasl.jaas.config": fmt.Sprintf(c.jaas, c.user, pass)}
			}
			if _, err := listEnds(t, addr, opts(pw)); err != nil {
				t.Fatalf("right password: %v", err)
			}
			const wrong = "wrong-Password-42"
			took, err := listEnds(t, addr, opts(wrong))
			if err == nil {
				t.Fatal("wrong password: no error")
			}
			t.Logf("wrong password after %v: %v", took, err)
			var ae *kafkaauth.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("wrong password: error %v (%T) is not an AuthError", err, err)
			}
			if !kafkaauth.Fatal(err) {
				t.Error("an authentication failure must not be retried")
			}
			for _, w := range []string{"SASL authentication failed", c.mech, `user "` + c.user + `"`} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pw) {
				t.Errorf("error %q shows a password", err)
			}
			if took > 10*time.Second {
				t.Errorf("wrong password took %v to fail; want a few seconds, not a retry storm", took)
			}
		})
	}
}

func TestTLSAgainstBroker(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t)
	other := authtest.NewCA(t)
	caFile := authtest.WriteFile(t, dir, "ca.pem", ca.CertPEM())
	otherFile := authtest.WriteFile(t, dir, "other.pem", other.CertPEM())
	cert, key := ca.Issue(t, true, "client")
	certFile := authtest.WriteFile(t, dir, "client.pem", cert)
	keyFile := authtest.WriteFile(t, dir, "client.key", key)
	keystore := authtest.WriteFile(t, dir, "keystore.pem", append(append([]byte{}, key...), cert...))

	// Certificates name 127.0.0.1; "localhost-only" names a host we do not dial.
	ipBroker := cluster(t, kfake.TLS(ca.ServerTLS(t, false, "127.0.0.1"))).ListenAddrs()[0]
	nameBroker := cluster(t, kfake.TLS(ca.ServerTLS(t, false, "broker.example"))).ListenAddrs()[0]
	mtlsBroker := cluster(t, kfake.TLS(ca.ServerTLS(t, true, "127.0.0.1"))).ListenAddrs()[0]
	saslTLSBroker := cluster(t, kfake.TLS(ca.ServerTLS(t, false, "127.0.0.1")), kfake.EnableSASL(), kfake.Superuser("PLAIN", "u", "pw-pw-pw")).ListenAddrs()[0]

	ssl := func(kv ...string) map[string]string {
		m := map[string]string{"kafka.security.protocol": "SSL"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name    string
		addr    string
		opts    map[string]string
		wantTLS bool // want a TLSError; otherwise success
	}{
		{"ca.location", ipBroker, ssl("kafka.ssl.ca.location", caFile), false},
		{"truststore PEM file", ipBroker, ssl("kafka.ssl.truststore.type", "PEM", "kafka.ssl.truststore.location", caFile), false},
		{"truststore inline certificates", ipBroker, ssl("kafka.ssl.truststore.type", "PEM", "kafka.ssl.truststore.certificates", string(ca.CertPEM())), false},
		{"unknown CA", ipBroker, ssl("kafka.ssl.ca.location", otherFile), true},
		{"system roots do not know the test CA", ipBroker, ssl(), true},
		{"host name mismatch", nameBroker, ssl("kafka.ssl.ca.location", caFile), true},
		{"host name check off", nameBroker, ssl("kafka.ssl.ca.location", caFile, "kafka.ssl.endpoint.identification.algorithm", ""), false},
		{"host name check off still verifies the chain", nameBroker, ssl("kafka.ssl.ca.location", otherFile, "kafka.ssl.endpoint.identification.algorithm", ""), true},
		{"verification off", nameBroker, ssl("kafka.enable.ssl.certificate.verification", "false"), false},
		{"mutual TLS with librdkafka files", mtlsBroker, ssl("kafka.ssl.ca.location", caFile, "kafka.ssl.certificate.location", certFile, "kafka.ssl.key.location", keyFile), false},
		{"mutual TLS with a PEM key store", mtlsBroker, ssl("kafka.ssl.ca.location", caFile, "kafka.ssl.keystore.type", "PEM", "kafka.ssl.keystore.location", keystore), false},
		{"mutual TLS with inline PEM", mtlsBroker, ssl("kafka.ssl.ca.location", caFile, "kafka.ssl.keystore.type", "PEM",
			"kafka.ssl.keystore.certificate.chain", string(cert), "kafka.ssl.keystore.key", string(key)), false},
		{"SASL_SSL", saslTLSBroker, map[string]string{"kafka.security.protocol": "SASL_SSL", "kafka.ssl.ca.location": caFile,
			"kafka.sasl.jaas.config": fmt.Sprintf(plainJAAS, "u", "pw-pw-pw")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			took, err := listEnds(t, c.addr, c.opts)
			if !c.wantTLS {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Logf("after %v: %v", took, err)
			if !kafkaauth.IsTLSError(err) {
				t.Fatalf("error %v (%T) is not a TLSError", err, err)
			}
			if took > 15*time.Second {
				t.Errorf("TLS failure took %v", took)
			}
		})
	}
	// The client without a certificate is refused by the mTLS broker.
	t.Run("mutual TLS without a client certificate", func(t *testing.T) {
		_, err := listEnds(t, mtlsBroker, ssl("kafka.ssl.ca.location", caFile))
		if err == nil {
			t.Fatal("no error")
		}
	})
}
