package kafka

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// Subscription kinds, named as in Spark's source description.
const (
	subscribeKind        = "Subscribe"
	subscribePatternKind = "SubscribePattern"
	assignKind           = "Assign"
)

// knownOptions are the Spark Kafka source options sluice accepts. Options
// starting with "kafka." are client settings (see clientOpts).
var knownOptions = []string{
	"subscribe", "subscribePattern", "assign",
	"startingOffsets", "startingOffsetsByTimestamp", "startingTimestamp", "startingOffsetsByTimestampStrategy",
	"endingOffsets", "endingOffsetsByTimestamp", "endingTimestamp",
	"maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay",
	"failOnDataLoss", "includeHeaders", "minPartitions", "maxRecordsPerPartition",
	"kafkaConsumer.pollTimeoutMs", "fetchOffset.numRetries", "fetchOffset.retryIntervalMs", "groupIdPrefix",
	"sluice.fetch.maxConcurrent", "sluice.reconnect.timeout", "sluice.commitGroup",
}

// Timestamp strategies (startingOffsetsByTimestampStrategy).
const (
	StrategyError  = "error"
	StrategyLatest = "latest"
)

// forbiddenKafka are consumer settings Spark rejects because the engine owns them.
var forbiddenKafka = map[string]string{
	"kafka.auto.offset.reset":    "use the option \"startingOffsets\" instead",
	"kafka.key.deserializer":     "keys are always read as bytes; use CAST(key AS STRING)",
	"kafka.value.deserializer":   "values are always read as bytes; use CAST(value AS STRING) or from_json",
	"kafka.enable.auto.commit":   "the checkpoint owns the offsets",
	"kafka.interceptor.classes":  "interceptors are not supported",
	"kafka.key.serializer":       "not a consumer setting",
	"kafka.value.serializer":     "not a consumer setting",
	"kafka.partition.assignment": "partitions are assigned by the engine",
}

// Config is the parsed, validated source configuration.
type Config struct {
	Bootstrap []string
	// Exactly one of Topics, Pattern, Assign is set.
	Topics  []string
	Pattern *regexp.Regexp
	Assign  map[string][]int32

	// Starting is "earliest", "latest" or "" when StartingJSON is set.
	Starting     string
	StartingJSON map[partition.ID]int64
	// StartingTimestamp (ms, -1 = unset) starts every partition at its
	// first record with a timestamp ≥ it; it wins over StartingByTimestamp,
	// which wins over Starting / StartingJSON / StartingEvery (Spark's
	// precedence).
	StartingTimestamp   int64
	StartingByTimestamp map[partition.ID]int64
	// TimestampStrategy is what a timestamp without a matching record
	// does: StrategyError fails, StrategyLatest starts at the end.
	TimestampStrategy string
	// StartingEvery (≥ 0, -1 = unset) starts every partition at this
	// offset (Event Hubs startingPosition with a sequence number).
	StartingEvery int64

	// MinPartitions and MaxRecordsPerPartition split big partition ranges
	// into several tasks (0 = unset).
	MinPartitions          int
	MaxRecordsPerPartition int64
	// DefaultMaxPerPartition, when > 0 and MaxOffsetsPerTrigger is unset,
	// makes the default limit partitions × this (Event Hubs'
	// maxEventsPerTrigger default).
	DefaultMaxPerPartition int64

	// Security holds TLS and SASL settings; never nil after ParseConfig.
	Security *kafkaauth.Settings
	// CommitGroup, if set, is a consumer group the source commits each
	// batch's end offsets to (a hint for lag tools; the checkpoint stays the
	// truth).
	CommitGroup string
	// ReconnectTimeout bounds how long one planning or reading step keeps
	// retrying while the brokers are unreachable (sluice.reconnect.timeout).
	ReconnectTimeout time.Duration
	// Describe overrides the progress description (Event Hubs).
	Describe string

	MaxOffsetsPerTrigger int64
	MinOffsetsPerTrigger int64
	MaxTriggerDelay      time.Duration
	FailOnDataLoss       bool
	IncludeHeaders       bool

	ClientID           string
	FetchMaxBytes      int32
	FetchPartitionMax  int32
	FetchMaxWait       time.Duration
	FetchMinBytes      int32
	MaxConcurrentFetch int
	ReadCommitted      bool
	RequestTimeout     time.Duration
}

func (c *Config) subscriptionKind() string {
	switch {
	case c.Pattern != nil:
		return subscribePatternKind
	case c.Assign != nil:
		return assignKind
	}
	return subscribeKind
}

// description renders Spark's KafkaV2[Subscribe[a,b]] style.
func (c *Config) description() string {
	if c.Describe != "" {
		return c.Describe
	}
	var what string
	switch {
	case c.Pattern != nil:
		what = c.Pattern.String()
	case c.Assign != nil:
		var parts []string
		for t, ps := range c.Assign {
			for _, p := range ps {
				parts = append(parts, fmt.Sprintf("%s-%d", t, p))
			}
		}
		sort.Strings(parts)
		what = strings.Join(parts, ", ")
	default:
		what = strings.Join(c.Topics, ",")
	}
	return fmt.Sprintf("KafkaV2[%s[%s]]", c.subscriptionKind(), what)
}

// ParseConfig validates Spark Kafka source options.
func ParseConfig(m map[string]string) (*Config, error) {
	o := options.New(m)
	if err := o.CheckKnown("kafka source", knownOptions, "kafka."); err != nil {
		return nil, err
	}
	for _, name := range o.Names() {
		if why, bad := forbiddenKafka[strings.ToLower(name)]; bad {
			return nil, &options.Error{Option: name, Allowed: "not supported: " + why}
		}
	}
	c := &Config{}
	bs, ok := o.Get("kafka.bootstrap.servers")
	if !ok || strings.TrimSpace(bs) == "" {
		return nil, &options.Error{Option: "kafka.bootstrap.servers", Allowed: "required: a comma-separated list of host:port"}
	}
	for _, b := range strings.Split(bs, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Bootstrap = append(c.Bootstrap, b)
		}
	}

	var set []string
	for _, k := range []string{"subscribe", "subscribePattern", "assign"} {
		if o.Has(k) {
			set = append(set, k)
		}
	}
	if len(set) != 1 {
		got := "none of them"
		if len(set) > 1 {
			got = strings.Join(set, " and ")
		}
		return nil, fmt.Errorf("kafka source needs exactly one of the options \"subscribe\", \"subscribePattern\", \"assign\"; got %s", got)
	}
	switch set[0] {
	case "subscribe":
		v, _ := o.Get("subscribe")
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				c.Topics = append(c.Topics, t)
			}
		}
		if len(c.Topics) == 0 {
			return nil, &options.Error{Option: "subscribe", Value: v, Allowed: "allowed: a comma-separated list of topics"}
		}
	case "subscribePattern":
		v, _ := o.Get("subscribePattern")
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil || strings.TrimSpace(v) == "" {
			return nil, &options.Error{Option: "subscribePattern", Value: v, Allowed: "allowed: a regular expression matching topic names"}
		}
		c.Pattern = re
	case "assign":
		v, _ := o.Get("assign")
		var a map[string][]int32
		if err := json.Unmarshal([]byte(v), &a); err != nil || len(a) == 0 {
			return nil, &options.Error{Option: "assign", Value: v, Allowed: `allowed: JSON like {"topicA":[0,1],"topicB":[2,4]}`}
		}
		c.Assign = a
	}

	if o.Has("endingOffsets") || o.Has("endingOffsetsByTimestamp") || o.Has("endingTimestamp") {
		return nil, &options.Error{Option: "endingOffsets", Allowed: "ending offsets are not valid in streaming queries"}
	}

	so := o.String("startingOffsets", "latest")
	switch strings.ToLower(strings.TrimSpace(so)) {
	case "earliest", "latest":
		c.Starting = strings.ToLower(strings.TrimSpace(so))
	default:
		m, err := ParseOffsetsJSON(so)
		if err != nil {
			return nil, &options.Error{Option: "startingOffsets", Value: so, Allowed: `allowed: "earliest", "latest", or JSON like {"topicA":{"0":23,"1":-2}} (-2 = earliest, -1 = latest)`}
		}
		c.StartingJSON = m
	}
	if err := parseTimestampStart(o, c); err != nil {
		return nil, err
	}
	c.StartingEvery = -1
	mp, err := o.Int64("minPartitions", 0, 1)
	if err != nil {
		return nil, err
	}
	if mp > 1<<20 {
		return nil, &options.Error{Option: "minPartitions", Value: strconv.FormatInt(mp, 10), Allowed: "allowed: at most 1048576"}
	}
	c.MinPartitions = int(mp)
	if c.MaxRecordsPerPartition, err = o.Int64("maxRecordsPerPartition", 0, 1); err != nil {
		return nil, err
	}
	if c.ReconnectTimeout, err = o.Duration("sluice.reconnect.timeout", 10*time.Minute); err != nil {
		return nil, err
	}
	c.CommitGroup = strings.TrimSpace(o.String("sluice.commitGroup", ""))

	if c.MaxOffsetsPerTrigger, err = o.Int64("maxOffsetsPerTrigger", 0, 1); err != nil {
		return nil, err
	}
	if c.MinOffsetsPerTrigger, err = o.Int64("minOffsetsPerTrigger", 0, 1); err != nil {
		return nil, err
	}
	if c.MaxOffsetsPerTrigger > 0 && c.MinOffsetsPerTrigger > c.MaxOffsetsPerTrigger {
		return nil, &options.Error{Option: "minOffsetsPerTrigger", Value: strconv.FormatInt(c.MinOffsetsPerTrigger, 10),
			Allowed: fmt.Sprintf("must not be higher than maxOffsetsPerTrigger (%d)", c.MaxOffsetsPerTrigger)}
	}
	if c.MaxTriggerDelay, err = o.Duration("maxTriggerDelay", 15*time.Minute); err != nil {
		return nil, err
	}
	if c.FailOnDataLoss, err = o.Bool("failOnDataLoss", true); err != nil {
		return nil, err
	}
	if c.IncludeHeaders, err = o.Bool("includeHeaders", false); err != nil {
		return nil, err
	}
	c.ClientID = o.String("kafka.client.id", "sluice")
	fmb, err := o.Int64("kafka.fetch.max.bytes", 50<<20, 1)
	if err != nil {
		return nil, err
	}
	fpb, err := o.Int64("kafka.max.partition.fetch.bytes", 1<<20, 1)
	if err != nil {
		return nil, err
	}
	if fmb > 1<<30 || fpb > 1<<30 {
		return nil, &options.Error{Option: "kafka.fetch.max.bytes", Value: strconv.FormatInt(fmb, 10), Allowed: "allowed: at most 1 GiB"}
	}
	c.FetchMaxBytes, c.FetchPartitionMax = int32(fmb), int32(fpb)
	wait, err := o.Int64("kafka.fetch.max.wait.ms", 200, 1)
	if err != nil {
		return nil, err
	}
	c.FetchMaxWait = time.Duration(wait) * time.Millisecond
	fmin, err := o.Int64("kafka.fetch.min.bytes", 1, 1)
	if err != nil {
		return nil, err
	}
	c.FetchMinBytes = int32(min(fmin, 1<<30))
	mc, err := o.Int64("sluice.fetch.maxConcurrent", 0, 0)
	if err != nil {
		return nil, err
	}
	c.MaxConcurrentFetch = int(mc)
	iso, err := o.Enum("kafka.isolation.level", "read_uncommitted", "read_uncommitted", "read_committed")
	if err != nil {
		return nil, err
	}
	c.ReadCommitted = iso == "read_committed"
	rt, err := o.Int64("kafka.request.timeout.ms", 30000, 1)
	if err != nil {
		return nil, err
	}
	c.RequestTimeout = time.Duration(rt) * time.Millisecond
	if c.Security, err = kafkaauth.Parse(o); err != nil {
		return nil, err
	}
	return c, nil
}

// parseTimestampStart reads startingTimestamp, startingOffsetsByTimestamp
// and startingOffsetsByTimestampStrategy.
func parseTimestampStart(o options.Options, c *Config) error {
	c.StartingTimestamp = -1
	if v, ok := o.Get("startingTimestamp"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return &options.Error{Option: "startingTimestamp", Value: v, Allowed: "allowed: milliseconds since the epoch (≥ 0)"}
		}
		c.StartingTimestamp = n
	}
	if v, ok := o.Get("startingOffsetsByTimestamp"); ok {
		m, err := ParseOffsetsJSON(v)
		bad := err != nil || len(m) == 0
		for _, ts := range m {
			bad = bad || ts < 0
		}
		if bad {
			return &options.Error{Option: "startingOffsetsByTimestamp", Value: v, Allowed: `allowed: JSON like {"topicA":{"0":1700000000000,"1":1700000000000}} (milliseconds since the epoch, every assigned partition)`}
		}
		c.StartingByTimestamp = m
	}
	var err error
	c.TimestampStrategy, err = o.Enum("startingOffsetsByTimestampStrategy", StrategyError, StrategyError, StrategyLatest)
	return err
}

// ParseOffsetsJSON parses Spark's {"topic":{"0":123}} offsets JSON (see
// sparktext.ParseKafkaOffsets).
func ParseOffsetsJSON(s string) (map[partition.ID]int64, error) {
	offs, err := sparktext.ParseKafkaOffsets(s)
	if err != nil {
		return nil, err
	}
	out := make(map[partition.ID]int64, len(offs))
	for _, o := range offs {
		out[partition.ID{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	}
	return out, nil
}

// FormatOffsetsJSON writes offsets as Spark does: topics sorted by name,
// partitions in numeric order (see sparktext.AppendKafkaOffsets).
func FormatOffsetsJSON(o map[partition.ID]int64) string {
	offs := make([]sparktext.PartitionOffset, 0, len(o))
	for tp, off := range o {
		offs = append(offs, sparktext.PartitionOffset{ID: tp, Offset: off})
	}
	return string(sparktext.AppendKafkaOffsets(nil, offs))
}
