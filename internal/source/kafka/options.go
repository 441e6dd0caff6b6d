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

// Timestamp strategies (startingOffsetsByTimestampStrategy).
const (
	StrategyError  = "error"
	StrategyLatest = "latest"
)

// Config is the parsed, validated source configuration.
type Config struct {
	Bootstrap []string
	// Exactly one of Topics, Pattern, Assign is set.
	Topics  []string
	Pattern *regexp.Regexp
	Assign  map[string][]int32

	// Starting is "earliest", "latest" or "" when StartingJSON or
	// StartingTopics is set.
	Starting     string
	StartingJSON map[partition.ID]int64
	// StartingTopics holds the topics startingOffsets gives as a whole,
	// {"t1":"earliest","t2":"latest"}: sparktext.KafkaEarliest or
	// KafkaLatest for every partition of the topic (Spark 4.x, SPARK-58774).
	StartingTopics map[string]int64
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
	// Group, when set, is group mode's consumer group (sluice.group):
	// partitions come from the group protocol and the group's committed
	// offsets are the truth (group.go). Member names this member.
	Group  string
	Member string
	// InstanceID is group mode's static membership (kafka.group.instance.id,
	// KIP-345); "" is dynamic membership.
	InstanceID string
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout configure
	// group membership.
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration
	// ReconnectTimeout bounds how long one planning or reading step keeps
	// retrying while the brokers are unreachable (sluice.reconnect.timeout).
	ReconnectTimeout time.Duration
	// IdleLongPoll is the idle long poll's fetch wait
	// (sluice.fetch.idleLongPoll; 0 = off).
	IdleLongPoll time.Duration
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

	// Ignored lists the Kafka client settings given under "kafka." that
	// the source does not use (logged as a warning when it opens).
	Ignored []string
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
	v, err := Spec.Read(m)
	if err != nil {
		return nil, err
	}
	return parseConfig(v)
}

// parseConfig reads options checked against Spec.
func parseConfig(o options.Values) (*Config, error) {
	c := &Config{Ignored: Spec.PassedThrough(o.Options().Names())}
	bs, ok := o.Get("kafka.bootstrap.servers")
	if !ok || strings.TrimSpace(bs) == "" {
		return nil, &options.Error{Option: "kafka.bootstrap.servers", Allowed: "required: a comma-separated list of host:port",
			Spark: "Option 'kafka.bootstrap.servers' must be specified for configuring Kafka consumer"}
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
		// Spark's texts (its option names lower-cased).
		if len(set) == 0 {
			return nil, fmt.Errorf("One of the following options must be specified for Kafka source: subscribe, subscribepattern, assign. " +
				"See the docs for more details. (sluice: the kafka source needs exactly one of the options \"subscribe\", \"subscribePattern\", \"assign\"; got none of them)")
		}
		return nil, &options.Error{Option: set[1], Allowed: fmt.Sprintf(`the kafka source needs exactly one of the options "subscribe", "subscribePattern", "assign"; got %s`, strings.Join(set, " and ")),
			Spark: "Only one of the following options can be specified for Kafka source: subscribe, subscribepattern, assign. See the docs for more details."}
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
			return nil, &options.Error{Option: "subscribe", Value: v, Allowed: "allowed: a comma-separated list of topics",
				Spark: fmt.Sprintf("No topics to subscribe to as specified value for option 'subscribe' is '%s'", v)}
		}
	case "subscribePattern":
		v, _ := o.Get("subscribePattern")
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil || strings.TrimSpace(v) == "" {
			oe := &options.Error{Option: "subscribePattern", Value: v, Allowed: "allowed: a regular expression matching topic names"}
			if strings.TrimSpace(v) == "" {
				oe.Spark = fmt.Sprintf("Pattern to subscribe is empty as specified value for option 'subscribePattern' is '%s'", v)
			}
			return nil, oe
		}
		c.Pattern = re
	case "assign":
		v, _ := o.Get("assign")
		var a map[string][]int32
		if err := json.Unmarshal([]byte(v), &a); err != nil || len(a) == 0 {
			oe := &options.Error{Option: "assign", Value: v, Allowed: `allowed: JSON like {"topicA":[0,1],"topicB":[2,4]}`}
			if !strings.HasPrefix(strings.TrimSpace(v), "{") {
				oe.Spark = fmt.Sprintf("No topicpartitions to assign as specified value for option 'assign' is '%s'", v)
			}
			return nil, oe
		}
		c.Assign = a
	}

	so := o.String("startingOffsets")
	switch strings.ToLower(strings.TrimSpace(so)) {
	case "earliest", "latest":
		c.Starting = strings.ToLower(strings.TrimSpace(so))
	default:
		parts, topics, err := parseStartingJSON(so)
		if err != nil {
			return nil, &options.Error{Option: "startingOffsets", Value: so,
				Allowed: `allowed: "earliest", "latest", or JSON like {"topicA":{"0":23,"1":-2}} (-2 = earliest, -1 = latest) or {"topicA":"earliest","topicB":"latest"}, per partition or per topic`,
				Spark:   fmt.Sprintf(`Expected e.g. {"topicA":{"0":23,"1":-1},"topicB":{"0":-2}}, got %s`, so)}
		}
		c.StartingJSON, c.StartingTopics = parts, topics
	}
	if err := parseTimestampStart(o, c); err != nil {
		return nil, err
	}
	c.StartingEvery = -1
	if mp := o.Int64("minPartitions"); mp > 1<<20 {
		return nil, &options.Error{Option: "minPartitions", Value: strconv.FormatInt(mp, 10), Allowed: "allowed: at most 1048576"}
	}
	c.MinPartitions = int(o.Int64("minPartitions"))
	c.MaxRecordsPerPartition = o.Int64("maxRecordsPerPartition")
	c.ReconnectTimeout = o.Duration("sluice.reconnect.timeout")
	c.IdleLongPoll = o.Duration("sluice.fetch.idleLongPoll")
	c.CommitGroup = strings.TrimSpace(o.String("sluice.commitGroup"))

	c.MaxOffsetsPerTrigger = o.Int64("maxOffsetsPerTrigger")
	c.MinOffsetsPerTrigger = o.Int64("minOffsetsPerTrigger")
	if c.MaxOffsetsPerTrigger > 0 && c.MinOffsetsPerTrigger > c.MaxOffsetsPerTrigger {
		return nil, &options.Error{Option: "minOffsetsPerTrigger", Value: strconv.FormatInt(c.MinOffsetsPerTrigger, 10),
			Allowed: fmt.Sprintf("must not be higher than maxOffsetsPerTrigger (%d)", c.MaxOffsetsPerTrigger),
			Spark:   fmt.Sprintf("The value of minOffsetPerTrigger(%d) is higher than the maxOffsetsPerTrigger(%d).", c.MinOffsetsPerTrigger, c.MaxOffsetsPerTrigger)}
	}
	c.MaxTriggerDelay = o.Duration("maxTriggerDelay")
	c.FailOnDataLoss = o.Bool("failOnDataLoss")
	c.IncludeHeaders = o.Bool("includeHeaders")
	c.ClientID = o.String("kafka.client.id")
	fmb, fpb := o.Int64("kafka.fetch.max.bytes"), o.Int64("kafka.max.partition.fetch.bytes")
	if fmb > 1<<30 || fpb > 1<<30 {
		return nil, &options.Error{Option: "kafka.fetch.max.bytes", Value: strconv.FormatInt(fmb, 10), Allowed: "allowed: at most 1 GiB"}
	}
	c.FetchMaxBytes, c.FetchPartitionMax = int32(fmb), int32(fpb)
	c.FetchMaxWait = time.Duration(o.Int64("kafka.fetch.max.wait.ms")) * time.Millisecond
	c.FetchMinBytes = int32(min(o.Int64("kafka.fetch.min.bytes"), 1<<30))
	c.MaxConcurrentFetch = int(o.Int64("sluice.fetch.maxConcurrent"))
	c.ReadCommitted = o.Enum("kafka.isolation.level") == "read_committed"
	c.RequestTimeout = time.Duration(o.Int64("kafka.request.timeout.ms")) * time.Millisecond
	var err error
	if c.Security, err = kafkaauth.Parse(o.Options()); err != nil {
		return nil, err
	}
	if err := parseGroup(o, c); err != nil {
		return nil, err
	}
	return c, nil
}

// parseStartingJSON reads startingOffsets JSON: per partition,
// {"t":{"0":23,"1":-2}}, per topic, {"t1":"earliest","t2":"latest"}, or a
// mix of both.
func parseStartingJSON(s string) (map[partition.ID]int64, map[string]int64, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil || len(raw) == 0 {
		return nil, nil, fmt.Errorf("not a JSON object of topics")
	}
	var topics map[string]int64
	perPartition := map[string]json.RawMessage{}
	for t, v := range raw {
		var word string
		if json.Unmarshal(v, &word) != nil {
			perPartition[t] = v
			continue
		}
		if topics == nil {
			topics = map[string]int64{}
		}
		switch strings.ToLower(word) {
		case "earliest":
			topics[t] = sparktext.KafkaEarliest
		case "latest":
			topics[t] = sparktext.KafkaLatest
		default:
			return nil, nil, fmt.Errorf("topic %q: %q is neither earliest nor latest", t, word)
		}
	}
	parts := map[partition.ID]int64{}
	if len(perPartition) > 0 {
		b, _ := json.Marshal(perPartition) // raw messages re-marshal as they were
		m, err := ParseOffsetsJSON(string(b))
		if err != nil {
			return nil, nil, err
		}
		parts = m
	}
	return parts, topics, nil
}

// parseTimestampStart reads startingTimestamp, startingOffsetsByTimestamp
// and startingOffsetsByTimestampStrategy.
func parseTimestampStart(o options.Values, c *Config) error {
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
	c.TimestampStrategy = o.Enum("startingOffsetsByTimestampStrategy")
	return nil
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
