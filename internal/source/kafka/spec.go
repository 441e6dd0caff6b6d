package kafka

import (
	"slices"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/kafkaconf"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/source"
)

// clientFields are the Kafka client settings the source reads; other
// Kafka client settings under "kafka." are accepted and ignored with a
// warning (Spark passes them to the Java consumer), any other "kafka."
// name is an error (see package kafkaconf).
var clientFields = []options.Field{
	{Name: "kafka.bootstrap.servers", Type: options.List, Required: true, Doc: "Comma-separated host:port list of brokers."},
	{Name: "kafka.client.id", Type: options.String, Default: "sluice", Doc: "Client id sent to the brokers."},
	{Name: "kafka.fetch.max.bytes", Type: options.Int, Min: 1, Default: "52428800", Doc: "Bytes one fetch response may hold (50 MiB; at most 1 GiB); bounds fetch memory."},
	{Name: "kafka.max.partition.fetch.bytes", Type: options.Int, Min: 1, Default: "1048576", Doc: "Bytes per partition in one fetch (1 MiB; at most 1 GiB)."},
	{Name: "kafka.fetch.max.wait.ms", Type: options.Int, Min: 1, Default: "200", Doc: "How long the broker may wait to fill a fetch, in milliseconds."},
	{Name: "kafka.fetch.min.bytes", Type: options.Int, Min: 1, Default: "1", Doc: "Bytes the broker waits for before answering a fetch."},
	{Name: "kafka.isolation.level", Type: options.Enum, Default: "read_uncommitted", Allowed: []string{"read_uncommitted", "read_committed"},
		Doc: "read_committed skips aborted transactions (use it to read the Kafka sink's output)."},
	{Name: "kafka.request.timeout.ms", Type: options.Int, Min: 1, Default: "30000", Doc: "Timeout of one request to a broker, in milliseconds."},
	{Name: "kafka.auto.offset.reset", Unsupported: `use the option "startingOffsets" instead`, Doc: "Owned by the engine.",
		Spark: "Kafka option 'auto.offset.reset' is not supported. Instead set the source option 'startingoffsets' to 'earliest' or 'latest' to specify where to start. " +
			"Structured Streaming manages which offsets are consumed internally, rather than relying on the kafkaConsumer to do it. " +
			"This will ensure that no data is missed when new topics/partitions are dynamically subscribed. " +
			"Note that 'startingoffsets' only applies when a new Streaming query is started, and that resuming will always pick up from where the query left off. " +
			"See the docs for more details."},
	{Name: "kafka.key.deserializer", Unsupported: "keys are always read as bytes; use CAST(key AS STRING)", Doc: "Owned by the engine.",
		Spark: "Kafka option 'key.deserializer' is not supported as keys are deserialized as byte arrays with ByteArrayDeserializer. Use DataFrame operations to explicitly deserialize the keys."},
	{Name: "kafka.value.deserializer", Unsupported: "values are always read as bytes; use CAST(value AS STRING) or from_json", Doc: "Owned by the engine.",
		Spark: "Kafka option 'value.deserializer' is not supported as values are deserialized as byte arrays with ByteArrayDeserializer. Use DataFrame operations to explicitly deserialize the values."},
	{Name: "kafka.enable.auto.commit", Unsupported: "the checkpoint owns the offsets", Doc: "Owned by the engine.", Spark: "Kafka option 'enable.auto.commit' is not supported"},
	{Name: "kafka.interceptor.classes", Unsupported: "interceptors are not supported", Doc: "Java only.", Spark: "Kafka option 'interceptor.classes' is not supported"},
	{Name: "kafka.key.serializer", Unsupported: "not a consumer setting", Doc: "Producer setting."},
	{Name: "kafka.value.serializer", Unsupported: "not a consumer setting", Doc: "Producer setting."},
	{Name: "kafka.partition.assignment", Unsupported: "partitions are assigned by the engine", Doc: "Owned by the engine."},
}

// readFields are the source options shared with the "eventhubs" format,
// which reads through the Event Hubs Kafka endpoint.
var readFields = []options.Field{
	{Name: "minOffsetsPerTrigger", Type: options.Int, Min: 1,
		Doc: "Delays a batch until this many records are available (or maxTriggerDelay has passed). At most maxOffsetsPerTrigger."},
	{Name: "maxTriggerDelay", Type: options.Duration, Default: "15m", Doc: "Longest delay minOffsetsPerTrigger may cause."},
	{Name: "failOnDataLoss", Type: options.Bool, Default: "true",
		Doc: "Offsets deleted by retention before they were read fail the query (naming topic, partition, expected and earliest offset); false logs, counts them (dataLoss metric) and continues."},
	{Name: "includeHeaders", Type: options.Bool, Default: "false", Doc: "Adds the `headers` column."},
	{Name: "minPartitions", Type: options.Int, Min: 1, Spark: "minPartitions must be positive", Doc: "Splits large partition ranges so a batch has at least this many tasks (at most 1048576)."},
	{Name: "maxRecordsPerPartition", Type: options.Int, Min: 1, Spark: "maxrecordsperpartition must be positive", Doc: "Splits partition ranges into tasks of at most this many records."},
	{Name: "sluice.fetch.maxConcurrent", Type: options.Int, Min: 0, Default: "0", Doc: "Concurrent fetch requests (franz-go MaxConcurrentFetches); 0 = unlimited."},
	{Name: "sluice.fetch.idleLongPoll", Type: options.Duration, Default: "5s", Doc: "While the default trigger waits for data on a caught-up query, a second small client long-polls the partitions with this fetch wait and wakes the query when a record arrives, so an idle query sends one fetch per interval instead of one per kafka.fetch.max.wait.ms; 0 disables it."},
	{Name: "sluice.reconnect.timeout", Type: options.Duration, Default: "10m", Doc: "How long planning or reading keeps retrying while the brokers are unreachable before the query fails."},
}

// Spec describes the "kafka" source's options: Spark's names, sluice's
// additions under "sluice.", the client settings and the security
// settings of kafkaauth.
var Spec = &options.Spec{
	What: "kafka source",
	Fields: slices.Concat([]options.Field{
		{Name: "subscribe", Type: options.List, Doc: "Topics to read, comma-separated. Exactly one of subscribe, subscribePattern, assign."},
		{Name: "subscribePattern", Type: options.Regex, Doc: "Regular expression of the topics to read; topics created later are picked up."},
		{Name: "assign", Type: options.JSON, Doc: `Partitions to read, as JSON: {"topicA":[0,1],"topicB":[2,4]}.`},
		{Name: "startingOffsets", Type: options.String, Default: "latest", Allowed: []string{"earliest", "latest", "JSON"},
			Doc: `Where a new query starts: earliest, latest, or JSON per partition {"topic":{"0":23,"1":-2}} (-2 = earliest, -1 = latest) or per topic {"t1":"earliest","t2":"latest"} (mixable). A restart resumes from the checkpoint.`},
		{Name: "startingTimestamp", Type: options.Int, Min: 0, Hint: "allowed: milliseconds since the epoch (≥ 0)", Spark: "Expected a single long value, got <value>",
			Doc: "Starts every partition at its first record with a timestamp at or after this (ms since the epoch); wins over startingOffsetsByTimestamp and startingOffsets."},
		{Name: "startingOffsetsByTimestamp", Type: options.JSON, Doc: `Per-partition start timestamps: {"topicA":{"0":1700000000000}}.`},
		{Name: "startingOffsetsByTimestampStrategy", Type: options.Enum, Default: StrategyError, Allowed: []string{StrategyError, StrategyLatest},
			Doc: "What a timestamp with no record at or after it does: fail, or start at the end."},
		{Name: "endingOffsets", Unsupported: "ending offsets are not valid in streaming queries", Doc: "Batch queries only.",
			Spark: "ending offset not valid in streaming queries"},
		{Name: "endingOffsetsByTimestamp", Unsupported: "ending offsets are not valid in streaming queries", Doc: "Batch queries only.",
			Spark: "ending timestamp not valid in streaming queries"},
		{Name: "endingTimestamp", Unsupported: "ending offsets are not valid in streaming queries", Doc: "Batch queries only."},
		{Name: "maxOffsetsPerTrigger", Type: options.Int, Min: 1,
			Doc: "Caps the records of a batch, split over partitions in proportion to backlog with exact rounding: never exceeded. Unset: everything available."},
		{Name: "kafkaConsumer.pollTimeoutMs", Type: options.String, Doc: "Accepted for Spark compatibility; fetches are bounded by sluice.reconnect.timeout."},
		{Name: "fetchOffset.numRetries", Type: options.String, Doc: "Accepted for Spark compatibility; see sluice.reconnect.timeout."},
		{Name: "fetchOffset.retryIntervalMs", Type: options.String, Doc: "Accepted for Spark compatibility; see sluice.reconnect.timeout."},
		{Name: "groupIdPrefix", Type: options.String, Doc: "Accepted for Spark compatibility; sluice assigns partitions itself and uses no consumer group."},
		{Name: "sluice.commitGroup", Type: options.String,
			Doc: "Consumer group the end offsets of every committed batch are committed to, so lag tools (kafka-consumer-groups, Burrow) see progress. Never read back: the checkpoint is the truth. Unset: nothing is committed."},
		{Name: "sluice.group", Type: options.String,
			Doc: "Group mode: every process running the pipeline with the same NAME is a member of consumer group NAME, and Kafka's group protocol (cooperative-sticky) assigns each member its partitions. The group's committed offsets are the truth (the Kafka sink commits them in its transaction). Needs subscribe or subscribePattern; see docs/group-mode.md. Unset: one process owns the query."},
		{Name: "sluice.group.member", Type: options.String, DefaultDoc: "HOSTNAME-PID",
			Doc: "Group mode: this member's name, used for its local log directory (checkpointLocation/members/NAME) and its transactional id; a stable name per member (a StatefulSet pod name) lets a restarted member fence its own unfinished transaction at once."},
		{Name: "kafka.group.instance.id", Type: options.String,
			Doc: "Group mode: static membership (Kafka's group.instance.id, KIP-345). A member restarted under the same id within kafka.session.timeout.ms gets its partitions back without a rebalance; a member that stops does not leave the group, so its partitions wait for it until the session timeout. Give each member its own stable id (e.g. the StatefulSet pod name). Unset: dynamic membership, a stopping member leaves at once."},
		{Name: "kafka.session.timeout.ms", Type: options.Int, Min: 1, Default: "45000",
			Doc: "Group mode: how long the group coordinator waits for a member's heartbeat before it gives the member's partitions to the others."},
		{Name: "kafka.heartbeat.interval.ms", Type: options.Int, Min: 1, Default: "3000",
			Doc: "Group mode: how often a member heartbeats to the group coordinator (well below kafka.session.timeout.ms)."},
		{Name: "kafka.rebalance.timeout.ms", Type: options.Int, Min: 1, Default: "60000",
			Doc: "Group mode: how long the coordinator waits for members to rejoin during a rebalance."},
	}, readFields, clientFields, kafkaauth.Fields),
	Prefixes: []options.Prefix{kafkaconf.Prefix("consumer")},
}

// schemaDoc describes the Kafka schema, shared by "kafka" and "eventhubs".
const schemaDoc = "fixed (Spark's): `key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp, timestampType int`, plus `headers array<struct<key:string,value:binary>>` with includeHeaders"

// Format registers "kafka".
var Format = source.Format{
	Name:       "kafka",
	Summary:    "records of Kafka topics, one task per partition range; replayable",
	Options:    Spec,
	SchemaDoc:  schemaDoc,
	Replayable: true,
	Schema: func(v options.Values, _ source.Env) (batch.Schema, error) {
		cfg, err := parseConfig(v)
		if err != nil {
			return batch.Schema{}, err
		}
		return Schema(cfg.IncludeHeaders), nil
	},
	Open: func(v options.Values, env source.Env) (source.Source, error) {
		cfg, err := parseConfig(v)
		if err != nil {
			return nil, err
		}
		return newSource(cfg, env.Logger)
	},
}

// EventHubsSpec describes the "eventhubs" source's options: the Azure
// Spark connector's names, then the Kafka source options that apply
// unchanged.
var EventHubsSpec = &options.Spec{
	What: "eventhubs source",
	Fields: slices.Concat([]options.Field{
		{Name: "eventhubs.connectionString", Type: options.String, Required: true, Secret: true,
			Doc: "Endpoint=sb://NS.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=HUB. The source connects to NS.servicebus.windows.net:9093 with SASL_SSL; never shown in messages."},
		{Name: "eventhubs.name", Type: options.String, Doc: "The event hub, for a namespace-level connection string without EntityPath."},
		{Name: "eventhubs.consumerGroup", Type: options.String, Doc: "Consumer group the batches' end offsets are committed to, for lag tools (never read back)."},
		{Name: "eventhubs.startingPosition", Type: options.JSON, DefaultDoc: "start of stream",
			Doc: `The connector's EventPosition JSON, {"offset":"-1","seqNo":-1,"enqueuedTime":null,"isInclusive":true}, with exactly one of offset ("-1" = start, "@latest" = end), seqNo or enqueuedTime (RFC 3339 or epoch ms).`},
		{Name: "maxEventsPerTrigger", Type: options.Int, Min: 1, DefaultDoc: "1000 × partitions", Doc: "Caps the events of a batch (the connector's default is 1000 per partition)."},
		{Name: "eventhubs.endpoint", Type: options.String, Doc: "host:port to connect to instead of the namespace (tests against a local broker)."},
		{Name: "eventhubs.tls.caFile", Type: options.Path, Doc: "PEM CA file to trust (tests)."},
		{Name: "eventhubs.tls.insecureSkipVerify", Type: options.Bool, Default: "false", Doc: "Trusts any certificate (tests only)."},
	}, readFields, eventHubsClientFields()),
}

// eventHubsClientFields are the client settings "eventhubs" passes
// through; security comes from the connection string.
func eventHubsClientFields() []options.Field {
	var out []options.Field
	for _, f := range clientFields {
		if f.Unsupported == "" && f.Name != "kafka.bootstrap.servers" {
			out = append(out, f)
		}
	}
	return out
}

// EventHubsFormat registers "eventhubs".
var EventHubsFormat = source.Format{
	Name:       "eventhubs",
	Summary:    "Azure Event Hubs through its Kafka endpoint, configured with the Azure Spark connector's options",
	Options:    EventHubsSpec,
	SchemaDoc:  schemaDoc,
	Replayable: true,
	Schema: func(v options.Values, _ source.Env) (batch.Schema, error) {
		cfg, err := parseEventHubsConfig(v)
		if err != nil {
			return batch.Schema{}, err
		}
		return Schema(cfg.IncludeHeaders), nil
	},
	Open: func(v options.Values, env source.Env) (source.Source, error) {
		cfg, err := parseEventHubsConfig(v)
		if err != nil {
			return nil, err
		}
		return newSource(cfg, env.Logger)
	},
}
