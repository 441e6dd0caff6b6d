package kafka

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/options"
)

// DefaultCommitTopic is the topic that holds the commit markers when the
// option "sluice.commitTopic" is not set.
const DefaultCommitTopic = "__sluice_sink_commits"

// KnownOptions are the sink's own options besides the "kafka."-prefixed
// client settings, which ParseConfig sorts out itself (supported ones, TLS
// and SASL through kafkaauth, the rest ignored with a warning).
var KnownOptions = []string{"topic", "sluice.commitTopic", "sluice.maxBufferedRecords", "sluice.recoveryTimeout"}

// kafkaOptions are the producer settings the sink understands. Any other
// "kafka." option is ignored with a warning, since the Java producer
// settings it could name are many and mostly harmless.
var kafkaOptions = []string{
	"kafka.bootstrap.servers", "kafka.client.id", "kafka.linger.ms", "kafka.batch.size",
	"kafka.compression.type", "kafka.request.timeout.ms", "kafka.delivery.timeout.ms",
	"kafka.transaction.timeout.ms", "kafka.buffer.memory", "kafka.transactional.id",
	"kafka.allow.auto.create.topics", "kafka.acks", "kafka.enable.idempotence",
}

// forbiddenKafka are producer settings that cannot work with this sink.
var forbiddenKafka = map[string]string{
	"kafka.key.serializer":      "keys are written as the bytes of the key column (string or binary)",
	"kafka.value.serializer":    "values are written as the bytes of the value column (string or binary)",
	"kafka.partitioner.class":   "custom partitioner classes are not supported; add a \"partition\" column to choose partitions",
	"kafka.interceptor.classes": "interceptors are not supported",
}

// Config is the parsed, validated sink configuration.
type Config struct {
	Bootstrap []string
	// Topic is the option "topic"; empty means every row names its topic
	// in a "topic" column.
	Topic string
	// CommitTopic holds the commit markers ("sluice.commitTopic").
	CommitTopic     string
	TransactionalID string
	ClientID        string

	// Linger is zero when unset (franz-go's default applies).
	Linger             time.Duration
	BatchMaxBytes      int32
	Compression        string
	RequestTimeout     time.Duration
	DeliveryTimeout    time.Duration
	TransactionTimeout time.Duration
	MaxBufferedBytes   int64
	MaxBufferedRecords int
	AutoCreateTopics   bool
	// RecoveryTimeout bounds the wait for other writers' open transactions
	// on the commit topic when the sink reads its markers.
	RecoveryTimeout time.Duration
	// Security holds the TLS and SASL settings ("kafka.security.protocol",
	// "kafka.sasl.*", "kafka.ssl.*"); never nil after ParseConfig.
	Security *kafkaauth.Settings
	// Ignored lists "kafka." options that were given but have no effect.
	Ignored []string
}

// ParseConfig validates the sink options for the query queryID.
func ParseConfig(m map[string]string, queryID string) (*Config, error) {
	if strings.TrimSpace(queryID) == "" {
		return nil, fmt.Errorf("kafka sink: a query id is required (it names the transactional id and the commit markers)")
	}
	o := options.New(m)
	if err := o.CheckKnown("kafka sink", KnownOptions, "kafka."); err != nil {
		return nil, err
	}
	c := &Config{}
	for _, name := range o.Names() {
		ln := strings.ToLower(name)
		if why, bad := forbiddenKafka[ln]; bad {
			return nil, &options.Error{Option: name, Allowed: "not supported: " + why}
		}
		if !strings.HasPrefix(ln, "kafka.") {
			continue
		}
		security := strings.HasPrefix(ln, "kafka.ssl.") || strings.HasPrefix(ln, "kafka.sasl.") || ln == "kafka.security.protocol"
		if !security && !slices.Contains(kafkaOptions, ln) {
			c.Ignored = append(c.Ignored, name)
		}
	}

	bs, ok := o.Get("kafka.bootstrap.servers")
	for _, b := range strings.Split(bs, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Bootstrap = append(c.Bootstrap, b)
		}
	}
	if !ok || len(c.Bootstrap) == 0 {
		return nil, &options.Error{Option: "kafka.bootstrap.servers", Allowed: "required: a comma-separated list of host:port"}
	}
	if v, ok := o.Get("topic"); ok {
		c.Topic = strings.TrimSpace(v)
		if err := broker.ValidateTopicName(c.Topic); err != nil {
			return nil, &options.Error{Option: "topic", Value: v, Allowed: err.Error()}
		}
	}
	c.CommitTopic = strings.TrimSpace(o.String("sluice.commitTopic", DefaultCommitTopic))
	if err := broker.ValidateTopicName(c.CommitTopic); err != nil {
		return nil, &options.Error{Option: "sluice.commitTopic", Value: c.CommitTopic, Allowed: err.Error()}
	}
	c.TransactionalID = strings.TrimSpace(o.String("kafka.transactional.id", "sluice-"+queryID))
	if c.TransactionalID == "" {
		return nil, &options.Error{Option: "kafka.transactional.id", Allowed: "must not be empty"}
	}
	c.ClientID = o.String("kafka.client.id", "sluice")

	var err error
	if c.Security, err = kafkaauth.Parse(o); err != nil {
		return nil, err
	}
	if c.Linger, err = millis(o, "kafka.linger.ms", 0, 0); err != nil {
		return nil, err
	}
	bsz, err := o.Int64("kafka.batch.size", 1_000_000, 1024)
	if err != nil {
		return nil, err
	}
	if bsz > math.MaxInt32 {
		return nil, &options.Error{Option: "kafka.batch.size", Value: fmt.Sprint(bsz), Allowed: "allowed: at most 2147483647"}
	}
	c.BatchMaxBytes = int32(bsz)
	if c.Compression, err = o.Enum("kafka.compression.type", "none", "none", "gzip", "snappy", "lz4", "zstd"); err != nil {
		return nil, err
	}
	if c.RequestTimeout, err = millis(o, "kafka.request.timeout.ms", 30_000, 1); err != nil {
		return nil, err
	}
	if c.DeliveryTimeout, err = millis(o, "kafka.delivery.timeout.ms", 120_000, 1); err != nil {
		return nil, err
	}
	if c.TransactionTimeout, err = millis(o, "kafka.transaction.timeout.ms", 60_000, 1000); err != nil {
		return nil, err
	}
	if c.MaxBufferedBytes, err = o.Int64("kafka.buffer.memory", 32<<20, 1024); err != nil {
		return nil, err
	}
	mbr, err := o.Int64("sluice.maxBufferedRecords", 10_000, 1)
	if err != nil {
		return nil, err
	}
	c.MaxBufferedRecords = int(min(mbr, math.MaxInt32))
	if c.AutoCreateTopics, err = o.Bool("kafka.allow.auto.create.topics", true); err != nil {
		return nil, err
	}
	if c.RecoveryTimeout, err = o.Duration("sluice.recoveryTimeout", c.TransactionTimeout+30*time.Second); err != nil {
		return nil, err
	}
	if _, err := o.Enum("kafka.acks", "all", "all", "-1"); err != nil {
		return nil, &options.Error{Option: "kafka.acks", Value: o.String("kafka.acks", ""), Allowed: "allowed: all (-1); a transactional producer needs every in-sync replica's acknowledgement"}
	}
	if idem, err := o.Bool("kafka.enable.idempotence", true); err != nil || !idem {
		return nil, &options.Error{Option: "kafka.enable.idempotence", Value: o.String("kafka.enable.idempotence", ""), Allowed: "allowed: true; the exactly-once sink needs an idempotent producer"}
	}
	return c, nil
}

// millis reads a whole number of milliseconds ≥ min.
func millis(o options.Options, name string, def, min int64) (time.Duration, error) {
	n, err := o.Int64(name, def, min)
	if err != nil {
		return 0, err
	}
	return time.Duration(n) * time.Millisecond, nil
}

// compressionCodec maps kafka.compression.type to franz-go's codec.
func compressionCodec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}
