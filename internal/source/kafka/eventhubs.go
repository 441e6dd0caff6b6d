package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/options"
)

// eventsPerPartition is the Event Hubs connector's default
// maxEventsPerTrigger per partition.
const eventsPerPartition = 1000

// NewEventHubs connects a source of format "eventhubs": Azure Event Hubs
// through its Kafka endpoint, configured with the options of Azure's Spark
// connector:
//
//   - eventhubs.connectionString (required): Endpoint=sb://NS.servicebus.windows.net/;
//     SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=HUB. The source
//     connects to NS.servicebus.windows.net:9093 with SASL_SSL and PLAIN,
//     user "$ConnectionString", password the whole string; the topic is
//     EntityPath, or eventhubs.name for a namespace-level string.
//   - maxEventsPerTrigger: records per batch; default 1000 × partitions, as
//     the connector does. minOffsetsPerTrigger / maxTriggerDelay and the
//     other Kafka source options apply as for Kafka.
//   - eventhubs.startingPosition: the connector's JSON,
//     {"offset":"-1","seqNo":-1,"enqueuedTime":null,"isInclusive":true}.
//     Set exactly one of offset ("-1" = start of stream, "@latest" = end),
//     seqNo (a sequence number, which is the Kafka offset) or enqueuedTime
//     (RFC 3339 time or epoch milliseconds); isInclusive=false starts after
//     it. Default: start of stream.
//   - eventhubs.consumerGroup: a consumer group the batches' end offsets are
//     committed to after each batch, so that lag tools see progress.
//     Offsets are never read from it (the checkpoint is the truth); unset,
//     nothing is committed.
//   - eventhubs.endpoint (host:port), eventhubs.tls.caFile,
//     eventhubs.tls.insecureSkipVerify: for tests against a local broker.
//
// The description is EventHubs[HUB]; no message ever shows the key.
func NewEventHubs(opts map[string]string, logger *slog.Logger) (*Source, error) {
	cfg, err := ParseEventHubsConfig(opts)
	if err != nil {
		return nil, err
	}
	return newSource(cfg, logger)
}

// ParseEventHubsConfig validates the options of format "eventhubs" and
// returns the equivalent Kafka source configuration, without connecting.
func ParseEventHubsConfig(m map[string]string) (*Config, error) {
	v, err := EventHubsSpec.Read(m)
	if err != nil {
		return nil, err
	}
	return parseEventHubsConfig(v)
}

// parseEventHubsConfig reads options checked against EventHubsSpec.
func parseEventHubsConfig(o options.Values) (*Config, error) {
	raw, ok := o.Get("eventhubs.connectionString")
	if !ok || strings.TrimSpace(raw) == "" {
		return nil, &options.Error{Option: "eventhubs.connectionString", Allowed: "required: Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=<hub>"}
	}
	conn, err := kafkaauth.ParseEventHubsConnectionString(strings.TrimSpace(raw))
	if err != nil {
		return nil, &options.Error{Option: "eventhubs.connectionString", Allowed: err.Error()}
	}
	hub := conn.EntityPath
	if name, ok := o.Get("eventhubs.name"); ok && strings.TrimSpace(name) != "" {
		name = strings.TrimSpace(name)
		if hub != "" && hub != name {
			return nil, &options.Error{Option: "eventhubs.name", Value: name, Allowed: fmt.Sprintf("differs from the connection string's EntityPath %q; drop one of them", hub)}
		}
		hub = name
	}
	if hub == "" {
		return nil, &options.Error{Option: "eventhubs.connectionString", Allowed: "has no EntityPath: add ;EntityPath=<event hub> or set eventhubs.name"}
	}

	km := conn.KafkaOptions()
	km["subscribe"] = hub
	if ep, ok := o.Get("eventhubs.endpoint"); ok && strings.TrimSpace(ep) != "" {
		km["kafka.bootstrap.servers"] = strings.TrimSpace(ep)
	}
	if ca, ok := o.Get("eventhubs.tls.caFile"); ok && strings.TrimSpace(ca) != "" {
		km["kafka.ssl.ca.location"] = strings.TrimSpace(ca)
	}
	if o.Bool("eventhubs.tls.insecureSkipVerify") {
		km["kafka.enable.ssl.certificate.verification"] = "false"
	}
	if v, ok := o.Get("maxEventsPerTrigger"); ok {
		km["maxOffsetsPerTrigger"] = v
	}
	// The Kafka source options that apply unchanged.
	for _, f := range slices.Concat(readFields, eventHubsClientFields()) {
		if v, ok := o.Get(f.Name); ok {
			km[f.Name] = v
		}
	}
	if g := strings.TrimSpace(o.String("eventhubs.consumerGroup")); g != "" {
		km["sluice.commitGroup"] = g
	}
	km["startingOffsets"] = "earliest"
	pos, err := parseStartingPosition(o)
	if err != nil {
		return nil, err
	}
	switch {
	case pos.latest:
		km["startingOffsets"] = "latest"
	case pos.timeMs >= 0:
		km["startingTimestamp"] = strconv.FormatInt(pos.timeMs, 10)
		// A time after the last event starts at the end, as the
		// connector does.
		km["startingOffsetsByTimestampStrategy"] = StrategyLatest
	}

	cfg, err := ParseConfig(km)
	if err != nil {
		// Errors name options we built; map them back to the user's.
		return nil, renameOptionError(err)
	}
	cfg.StartingEvery = pos.seqNo
	cfg.Security.CredentialsFrom = "eventhubs.connectionString (its SharedAccessKey, and that the policy may Listen)"
	if cfg.MaxOffsetsPerTrigger == 0 {
		cfg.DefaultMaxPerPartition = eventsPerPartition
	}
	cfg.Describe = fmt.Sprintf("EventHubs[%s]", hub)
	return cfg, nil
}

// renameOptionError rewrites the Kafka option names the Event Hubs options
// were translated to.
func renameOptionError(err error) error {
	oe, ok := err.(*options.Error)
	if !ok {
		return err
	}
	switch oe.Option {
	case "maxOffsetsPerTrigger":
		c := *oe
		c.Option = "maxEventsPerTrigger"
		return &c
	case "kafka.bootstrap.servers":
		c := *oe
		c.Option = "eventhubs.endpoint"
		return &c
	case "kafka.ssl.ca.location":
		c := *oe
		c.Option = "eventhubs.tls.caFile"
		return &c
	}
	return err
}

// startingPosition is a resolved eventhubs.startingPosition.
type startingPosition struct {
	latest bool
	seqNo  int64 // -1 = unset
	timeMs int64 // -1 = unset
}

// parseStartingPosition reads the connector's EventPosition JSON.
func parseStartingPosition(o options.Values) (startingPosition, error) {
	pos := startingPosition{seqNo: -1, timeMs: -1}
	v, ok := o.Get("eventhubs.startingPosition")
	if !ok || strings.TrimSpace(v) == "" {
		return pos, nil
	}
	bad := func(why string) error {
		return &options.Error{Option: "eventhubs.startingPosition", Value: v,
			Allowed: why + `; allowed: JSON like {"offset":"-1","seqNo":-1,"enqueuedTime":null,"isInclusive":true} with exactly one of offset ("-1" = start of stream, "@latest" = end of stream), seqNo (≥ 0) or enqueuedTime (RFC 3339 or epoch milliseconds)`}
	}
	var raw struct {
		Offset       *json.RawMessage `json:"offset"`
		SeqNo        *int64           `json:"seqNo"`
		EnqueuedTime *json.RawMessage `json:"enqueuedTime"`
		IsInclusive  *bool            `json:"isInclusive"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return pos, bad("not valid JSON")
	}
	inclusive := raw.IsInclusive == nil || *raw.IsInclusive
	var offset string
	hasOffset := false
	if raw.Offset != nil && string(*raw.Offset) != "null" {
		if err := json.Unmarshal(*raw.Offset, &offset); err != nil {
			var n int64
			if json.Unmarshal(*raw.Offset, &n) != nil {
				return pos, bad("offset is not a string")
			}
			offset = strconv.FormatInt(n, 10)
		}
		hasOffset = true
	}
	hasSeq := raw.SeqNo != nil && *raw.SeqNo >= 0
	hasTime := raw.EnqueuedTime != nil && string(*raw.EnqueuedTime) != "null"
	set := 0
	for _, b := range []bool{hasOffset, hasSeq, hasTime} {
		if b {
			set++
		}
	}
	if set != 1 {
		return pos, bad(fmt.Sprintf("%d of offset, seqNo and enqueuedTime are set", set))
	}
	switch {
	case hasOffset:
		switch strings.TrimSpace(offset) {
		case "-1":
			// Start of stream: earliest, the default.
		case "@latest":
			pos.latest = true
		default:
			return pos, bad("offset other than \"-1\" and \"@latest\" is an AMQP byte offset, which the Kafka endpoint cannot seek to; use seqNo")
		}
	case hasSeq:
		pos.seqNo = *raw.SeqNo
		if !inclusive {
			pos.seqNo++
		}
	case hasTime:
		var ms int64
		var s string
		if err := json.Unmarshal(*raw.EnqueuedTime, &s); err == nil {
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
			if err != nil {
				return pos, bad("enqueuedTime is not an RFC 3339 time")
			}
			ms = t.UnixMilli()
		} else if err := json.Unmarshal(*raw.EnqueuedTime, &ms); err != nil || ms < 0 {
			return pos, bad("enqueuedTime is neither a time string nor epoch milliseconds")
		}
		if !inclusive {
			ms++
		}
		pos.timeMs = ms
	}
	return pos, nil
}
