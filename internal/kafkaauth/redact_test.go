package kafkaauth_test

import (
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/kafkaauth"
)

func TestRedact(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{`org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3c\"ret";`,
			`org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="[redacted]";`},
		{`ScramLoginModule required username=bob password=hunter2;`, `ScramLoginModule required username=bob password=[redacted];`},
		{`Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=abc+/def=;EntityPath=hub`,
			`Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=[redacted];EntityPath=hub`},
		{`SharedAccessSignature=SharedAccessSignature sr=x&sig=AbC%2F&se=1;EntityPath=h`, `SharedAccessSignature=[redacted];EntityPath=h`},
		{`url?sr=x&sig=AbC%2F&se=1`, `url?sr=x&sig=[redacted]&se=1`},
		{"key:\n-----BEGIN PRIVATE KEY-----\nMIGH\nAAA=\n-----END PRIVATE KEY-----\nrest", "key:\n[redacted private key]\nrest"},
		{`ssl.key.password: abc`, `ssl.key.password: [redacted]`},
		{`nothing secret here, user=alice`, `nothing secret here, user=alice`},
	}
	for _, c := range cases {
		if got := kafkaauth.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestSecretOptions(t *testing.T) {
	secret := []string{"kafka.sasl.jaas.config", "KAFKA.SASL.PASSWORD", "eventhubs.connectionString", "kafka.ssl.key.password",
		"kafka.ssl.keystore.key", "kafka.ssl.key.pem", "kafka.ssl.truststore.password", "kafka.sasl.oauthbearer.client.secret"}
	plain := []string{"kafka.bootstrap.servers", "subscribe", "kafka.sasl.username", "kafka.ssl.ca.location", "kafka.sasl.mechanism", "eventhubs.name"}
	for _, n := range secret {
		if !kafkaauth.IsSecretOption(n) {
			t.Errorf("%s should be secret", n)
		}
	}
	for _, n := range plain {
		if kafkaauth.IsSecretOption(n) {
			t.Errorf("%s should not be secret", n)
		}
	}
	got := kafkaauth.RedactOptions(map[string]string{
		"kafka.sasl.jaas.config": "x password=\"p1p1p1\"", "subscribe": "t", "note": "password=zzz",
	})
	if got["kafka.sasl.jaas.config"] != "[redacted]" || got["subscribe"] != "t" || strings.Contains(got["note"], "zzz") {
		t.Errorf("RedactOptions = %v", got)
	}
}
