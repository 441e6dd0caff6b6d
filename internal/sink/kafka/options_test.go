package kafka

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"kafka.bootstrap.servers": "h1:9092, h2:9093"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name    string
		opts    map[string]string
		queryID string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{name: "defaults", opts: base(), queryID: "abc", check: func(t *testing.T, c *Config) {
			if !slices.Equal(c.Bootstrap, []string{"h1:9092", "h2:9093"}) {
				t.Errorf("Bootstrap = %v", c.Bootstrap)
			}
			if c.Topic != "" || c.CommitTopic != DefaultCommitTopic || c.TransactionalID != "sluice-abc" || c.ClientID != "sluice" {
				t.Errorf("topic %q, commit topic %q, transactional id %q, client id %q", c.Topic, c.CommitTopic, c.TransactionalID, c.ClientID)
			}
			if c.Compression != "none" || c.Linger != 0 || c.BatchMaxBytes != 1_000_000 {
				t.Errorf("compression %q, linger %v, batch bytes %d", c.Compression, c.Linger, c.BatchMaxBytes)
			}
			if c.TransactionTimeout != time.Minute || c.DeliveryTimeout != 2*time.Minute || c.RequestTimeout != 30*time.Second {
				t.Errorf("timeouts: transaction %v, delivery %v, request %v", c.TransactionTimeout, c.DeliveryTimeout, c.RequestTimeout)
			}
			if c.MaxBufferedBytes != 32<<20 || c.MaxBufferedRecords != 10_000 || !c.AutoCreateTopics || c.RecoveryTimeout != 90*time.Second {
				t.Errorf("buffer %d B / %d records, auto-create %v, recovery %v", c.MaxBufferedBytes, c.MaxBufferedRecords, c.AutoCreateTopics, c.RecoveryTimeout)
			}
		}},
		{name: "producer settings", queryID: "q", opts: base(
			"Topic", "events", "kafka.linger.ms", "25", "kafka.batch.size", "65536", "kafka.compression.type", "ZSTD",
			"kafka.client.id", "me", "kafka.request.timeout.ms", "5000", "kafka.transaction.timeout.ms", "90000",
			"kafka.buffer.memory", "1048576", "sluice.maxBufferedRecords", "500", "kafka.transactional.id", "custom",
			"sluice.commitTopic", "commits", "kafka.acks", "-1", "kafka.enable.idempotence", "true",
			"kafka.allow.auto.create.topics", "false", "sluice.recoveryTimeout", "10s",
		), check: func(t *testing.T, c *Config) {
			if c.Topic != "events" || c.Linger != 25*time.Millisecond || c.BatchMaxBytes != 65536 || c.Compression != "zstd" || c.ClientID != "me" {
				t.Errorf("topic %q linger %v batch %d compression %q client %q", c.Topic, c.Linger, c.BatchMaxBytes, c.Compression, c.ClientID)
			}
			if c.RequestTimeout != 5*time.Second || c.TransactionTimeout != 90*time.Second || c.MaxBufferedBytes != 1<<20 || c.MaxBufferedRecords != 500 {
				t.Errorf("request %v transaction %v buffer %d/%d", c.RequestTimeout, c.TransactionTimeout, c.MaxBufferedBytes, c.MaxBufferedRecords)
			}
			if c.TransactionalID != "custom" || c.CommitTopic != "commits" || c.AutoCreateTopics || c.RecoveryTimeout != 10*time.Second {
				t.Errorf("transactional id %q commit topic %q auto-create %v recovery %v", c.TransactionalID, c.CommitTopic, c.AutoCreateTopics, c.RecoveryTimeout)
			}
		}},
		{name: "security options go to kafkaauth, unknown kafka options are listed", queryID: "q", opts: base(
			"kafka.security.protocol", "SASL_PLAINTEXT", "kafka.sasl.mechanism", "PLAIN",
			"kafka.sasl.jaas.config", `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`,
			"kafka.max.block.ms", "1"),
			check: func(t *testing.T, c *Config) {
				if c.Security.Protocol != "SASL_PLAINTEXT" || c.Security.Mechanism != "PLAIN" || c.Security.User != "u" {
					t.Errorf("Security = %s", c.Security)
				}
				if !slices.Equal(c.Ignored, []string{"kafka.max.block.ms"}) {
					t.Errorf("Ignored = %v", c.Ignored)
				}
			}},
		{name: "plaintext by default", queryID: "q", opts: base(), check: func(t *testing.T, c *Config) {
			if c.Security == nil || c.Security.Protocol != "PLAINTEXT" || c.Security.TLS != nil {
				t.Errorf("Security = %v", c.Security)
			}
		}},
		{name: "bad security protocol", queryID: "q", opts: base("kafka.security.protocol", "KERBEROS"), wantErr: "kafka.security.protocol"},
		{name: "SASL credentials without SASL", queryID: "q", opts: base("kafka.sasl.username", "u"), wantErr: "kafka.sasl.username"},
		{name: "no query id", opts: base(), wantErr: "query id"},
		{name: "no bootstrap", queryID: "q", opts: map[string]string{"topic": "t"}, wantErr: "kafka.bootstrap.servers"},
		{name: "blank bootstrap", queryID: "q", opts: map[string]string{"kafka.bootstrap.servers": " , "}, wantErr: "kafka.bootstrap.servers"},
		{name: "unknown option", queryID: "q", opts: base("topc", "t"), wantErr: `did you mean "topic"`},
		{name: "bad topic name", queryID: "q", opts: base("topic", "a b"), wantErr: `"topic"`},
		{name: "bad commit topic", queryID: "q", opts: base("sluice.commitTopic", ""), wantErr: "sluice.commitTopic"},
		{name: "bad compression", queryID: "q", opts: base("kafka.compression.type", "brotli"), wantErr: "none, gzip, snappy, lz4, zstd"},
		{name: "negative linger", queryID: "q", opts: base("kafka.linger.ms", "-1"), wantErr: "kafka.linger.ms"},
		{name: "tiny batch", queryID: "q", opts: base("kafka.batch.size", "10"), wantErr: "kafka.batch.size"},
		{name: "huge batch", queryID: "q", opts: base("kafka.batch.size", "4294967296"), wantErr: "kafka.batch.size"},
		{name: "acks 1", queryID: "q", opts: base("kafka.acks", "1"), wantErr: "kafka.acks"},
		{name: "idempotence off", queryID: "q", opts: base("kafka.enable.idempotence", "false"), wantErr: "kafka.enable.idempotence"},
		{name: "serializer", queryID: "q", opts: base("kafka.value.serializer", "x"), wantErr: "kafka.value.serializer"},
		{name: "partitioner class", queryID: "q", opts: base("kafka.partitioner.class", "x"), wantErr: "partition"},
		{name: "short transaction timeout", queryID: "q", opts: base("kafka.transaction.timeout.ms", "10"), wantErr: "kafka.transaction.timeout.ms"},
		{name: "bad recovery timeout", queryID: "q", opts: base("sluice.recoveryTimeout", "soon"), wantErr: "sluice.recoveryTimeout"},
		{name: "bad auto create", queryID: "q", opts: base("kafka.allow.auto.create.topics", "maybe"), wantErr: "kafka.allow.auto.create.topics"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.opts, tc.queryID)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseConfig = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			tc.check(t, c)
		})
	}
}

// FuzzParseConfig checks that any option values either fail with an error
// naming an option or give a usable configuration.
func FuzzParseConfig(f *testing.F) {
	f.Add("kafka.linger.ms", "5", "t", "none")
	f.Add("kafka.batch.size", "99999999999", "", "zstd")
	f.Add("sluice.recoveryTimeout", "3 minutes", "a.b-c_d", "GZIP")
	f.Add("kafka.buffer.memory", "-5", "..", "x")
	f.Fuzz(func(t *testing.T, name, value, topic, codec string) {
		opts := map[string]string{"kafka.bootstrap.servers": "h:1", "topic": topic, "kafka.compression.type": codec}
		if name != "" {
			opts[name] = value
		}
		c, err := ParseConfig(opts, "q")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if len(c.Bootstrap) == 0 || c.CommitTopic == "" || c.TransactionalID == "" {
			t.Fatalf("incomplete config %+v", c)
		}
		if !slices.Contains([]string{"none", "gzip", "snappy", "lz4", "zstd"}, c.Compression) {
			t.Fatalf("compression %q accepted", c.Compression)
		}
		if c.BatchMaxBytes < 1024 || c.MaxBufferedBytes < 1024 || c.MaxBufferedRecords < 1 || c.TransactionTimeout < time.Second || c.Linger < 0 || c.RecoveryTimeout < 0 {
			t.Fatalf("out-of-range setting accepted: %+v", c)
		}
		if c.Topic != "" && strings.TrimSpace(topic) != c.Topic {
			t.Fatalf("topic %q parsed as %q", topic, c.Topic)
		}
	})
}
