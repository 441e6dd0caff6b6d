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
	"github.com/sluice-stream/sluice/internal/kafkaconf"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
)

// DefaultCommitTopic is the topic that holds the commit markers when the
// option "sluice.commitTopic" is not set.
const DefaultCommitTopic = "__sluice_sink_commits"

// producerFields are the producer settings the sink understands. Any
// other Kafka client setting under "kafka." is ignored with a warning,
// since the Java producer settings it could name are many and mostly
// harmless; a name that is no client setting is an error (see package
// kafkaconf).
var producerFields = []options.Field{
	{Name: "kafka.bootstrap.servers", Type: options.List, Required: true, Doc: "Comma-separated host:port list of brokers."},
	{Name: "kafka.client.id", Type: options.String, Default: "sluice", Doc: "Client id sent to the brokers."},
	{Name: "kafka.linger.ms", Type: options.Int, Min: 0, Default: "0", Doc: "How long the producer waits to fill a batch, in milliseconds (0: franz-go's default)."},
	{Name: "kafka.batch.size", Type: options.Int, Min: 1024, Default: "1000000", Doc: "Bytes of one produce batch per partition (at most 2147483647)."},
	{Name: "kafka.compression.type", Type: options.Enum, Default: "none", Allowed: []string{"none", "gzip", "snappy", "lz4", "zstd"}, Doc: "Compression of produced batches."},
	{Name: "kafka.request.timeout.ms", Type: options.Int, Min: 1, Default: "30000", Doc: "Timeout of one produce request, in milliseconds."},
	{Name: "kafka.delivery.timeout.ms", Type: options.Int, Min: 1, Default: "120000", Doc: "How long a record may take to be acknowledged before the batch fails, in milliseconds."},
	{Name: "kafka.transaction.timeout.ms", Type: options.Int, Min: 1000, Default: "60000", Doc: "Transaction timeout the broker enforces, in milliseconds."},
	{Name: "kafka.buffer.memory", Type: options.Int, Min: 1024, Default: "33554432", Doc: "Bytes of records buffered before produce calls block (32 MiB)."},
	{Name: "kafka.transactional.id", Type: options.String, DefaultDoc: "sluice-<query id>", Doc: "Transactional id; one per query, stable across restarts so a zombie writer is fenced. In group mode (source option sluice.group) each member appends -<member name>."},
	{Name: "kafka.allow.auto.create.topics", Type: options.Bool, Default: "true", Doc: "Lets the broker create a missing topic on first produce."},
	{Name: "kafka.acks", Type: options.String, Default: "all", Allowed: []string{"all", "-1"}, Doc: "Only all (-1): a transactional producer needs every in-sync replica's acknowledgement."},
	{Name: "kafka.enable.idempotence", Type: options.Bool, Default: "true", Hint: "allowed: true; the exactly-once sink needs an idempotent producer",
		Doc: "Only true: the exactly-once sink needs an idempotent producer."},
	{Name: "kafka.key.serializer", Unsupported: "keys are written as the bytes of the key column (string or binary)", Doc: "Java only."},
	{Name: "kafka.value.serializer", Unsupported: "values are written as the bytes of the value column (string or binary)", Doc: "Java only."},
	{Name: "kafka.partitioner.class", Unsupported: "custom partitioner classes are not supported; add a \"partition\" column to choose partitions", Doc: "Java only."},
	{Name: "kafka.interceptor.classes", Unsupported: "interceptors are not supported", Doc: "Java only."},
}

// Spec describes the Kafka sink's options.
var Spec = &options.Spec{
	What: "kafka sink",
	Fields: slices.Concat([]options.Field{
		{Name: "topic", Type: options.String, Doc: "Topic every row goes to; unset, each row names its topic in a `topic` column."},
		{Name: "sluice.commitTopic", Type: options.String, Default: DefaultCommitTopic,
			Doc: "Topic of the commit markers written in each batch's transaction; a restarted query reads them to skip batches already written."},
		{Name: "sluice.maxBufferedRecords", Type: options.Int, Min: 1, Default: "10000", Doc: "Records buffered in the producer before writes wait."},
		{Name: "sluice.recoveryTimeout", Type: options.Duration, DefaultDoc: "kafka.transaction.timeout.ms + 30 s",
			Doc: "How long reading the commit markers at start waits for other writers' open transactions."},
	}, producerFields, kafkaauth.Fields),
	Prefixes: []options.Prefix{kafkaconf.Prefix("producer")},
}

// Format registers "kafka" as a sink.
var Format = sink.Format{
	Name:        "kafka",
	Summary:     "records to Kafka topics (key, value, headers, partition columns), one transaction per batch with a commit marker: exactly-once",
	Options:     Spec,
	OutputModes: sink.OutputModes(),
	Idempotent:  true, NeedsCheckpoint: true,
	Validate: func(v options.Values) error {
		_, err := parseConfig(v, "validate")
		return err
	},
	Open: func(v options.Values, env sink.Env) (sink.Sink, error) {
		cfg, err := parseConfig(v, env.QueryID)
		if err != nil {
			return nil, err
		}
		s := build(cfg, env.QueryID, env.Logger)
		if env.DeadLetter {
			return DeadLetters(s), nil
		}
		return s, nil
	},
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
	v, err := Spec.Read(m, sink.QueryOptions)
	if err != nil {
		return nil, err
	}
	return parseConfig(v, queryID)
}

// parseConfig reads options checked against Spec.
func parseConfig(o options.Values, queryID string) (*Config, error) {
	if strings.TrimSpace(queryID) == "" {
		return nil, fmt.Errorf("kafka sink: a query id is required (it names the transactional id and the commit markers)")
	}
	c := &Config{Ignored: Spec.PassedThrough(o.Options().Names())}

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
	c.CommitTopic = strings.TrimSpace(o.String("sluice.commitTopic"))
	if err := broker.ValidateTopicName(c.CommitTopic); err != nil {
		return nil, &options.Error{Option: "sluice.commitTopic", Value: c.CommitTopic, Allowed: err.Error()}
	}
	c.TransactionalID = strings.TrimSpace(o.String("kafka.transactional.id"))
	if !o.Has("kafka.transactional.id") {
		c.TransactionalID = "sluice-" + queryID
	}
	if c.TransactionalID == "" {
		return nil, &options.Error{Option: "kafka.transactional.id", Allowed: "must not be empty"}
	}
	c.ClientID = o.String("kafka.client.id")

	var err error
	if c.Security, err = kafkaauth.Parse(o.Options()); err != nil {
		return nil, err
	}
	c.Linger = millis(o, "kafka.linger.ms")
	bsz := o.Int64("kafka.batch.size")
	if bsz > math.MaxInt32 {
		return nil, &options.Error{Option: "kafka.batch.size", Value: fmt.Sprint(bsz), Allowed: "allowed: at most 2147483647"}
	}
	c.BatchMaxBytes = int32(bsz)
	c.Compression = o.Enum("kafka.compression.type")
	c.RequestTimeout = millis(o, "kafka.request.timeout.ms")
	c.DeliveryTimeout = millis(o, "kafka.delivery.timeout.ms")
	c.TransactionTimeout = millis(o, "kafka.transaction.timeout.ms")
	c.MaxBufferedBytes = o.Int64("kafka.buffer.memory")
	c.MaxBufferedRecords = int(min(o.Int64("sluice.maxBufferedRecords"), math.MaxInt32))
	c.AutoCreateTopics = o.Bool("kafka.allow.auto.create.topics")
	c.RecoveryTimeout = c.TransactionTimeout + 30*time.Second
	if o.Has("sluice.recoveryTimeout") {
		c.RecoveryTimeout = o.Duration("sluice.recoveryTimeout")
	}
	if acks := strings.TrimSpace(o.String("kafka.acks")); acks != "all" && acks != "-1" && !strings.EqualFold(acks, "all") {
		return nil, &options.Error{Option: "kafka.acks", Value: o.String("kafka.acks"), Allowed: "allowed: all (-1); a transactional producer needs every in-sync replica's acknowledgement"}
	}
	if !o.Bool("kafka.enable.idempotence") {
		return nil, &options.Error{Option: "kafka.enable.idempotence", Value: o.String("kafka.enable.idempotence"), Allowed: "allowed: true; the exactly-once sink needs an idempotent producer"}
	}
	return c, nil
}

// millis reads a whole number of milliseconds.
func millis(o options.Values, name string) time.Duration {
	return time.Duration(o.Int64(name)) * time.Millisecond
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
