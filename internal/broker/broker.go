// Package broker runs an embedded, single-node Kafka broker (franz-go's kfake)
// inside the sluice process, for `sluice demo`, `sluice broker`, `sluice bench`
// and tests.
//
// The broker listens on one loopback address, pre-creates the configured
// topics and offers the few administrative actions the demo and the tests need
// (create topics, add partitions, delete records to simulate retention).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultListen is the listen address used when Config.Listen is empty: a
// random free port on the IPv4 loopback interface.
const DefaultListen = "127.0.0.1:0"

// MemorySegmentBytes is the log segment size (log.segment.bytes) of an
// in-memory broker (no DataDir): small, because kfake keeps an in-memory
// segment as one byte slice that doubles, copying all of it, as it grows.
// With kfake's default of 100 MiB, a partition taking a few MB/s had its
// 32 MiB segment copied to a new 64 MiB one in the broker's single request
// loop, and evenly loaded partitions all did it within the same few
// milliseconds: a stall of 0.2–0.5 s for every producer and consumer, once
// per doubling (the latency runs' p99 at 50 % of capacity). A real broker
// appends to a file in the page cache and copies nothing. With 1 MiB
// segments a doubling copies at most 512 KiB. Config.ExtraOpts can set
// another size (kfake.BrokerConfigs).
const MemorySegmentBytes = 1 << 20

// ErrClosed is returned by the administrative methods of a closed Broker.
var ErrClosed = errors.New("broker: closed")

// Config configures an embedded broker.
type Config struct {
	// Listen is the "host:port" to listen on, e.g. "127.0.0.1:9092". A port
	// of 0, or an empty Listen, picks a random free port. An empty host means
	// 127.0.0.1. The host must be a specific address (clients are told to
	// connect to it), so "0.0.0.0" and "::" are rejected.
	Listen string
	// Topics are created when the broker starts. A topic that already exists
	// (because DataDir holds an earlier run's state) is kept, and grown if it
	// has fewer partitions than asked for.
	Topics []TopicSpec
	// DataDir, if set, persists topics, records and group offsets in this
	// directory, so they survive a restart (kfake.DataDir).
	DataDir string
	// AutoCreateTopics lets clients that ask for it create topics by
	// requesting their metadata (kfake.AllowAutoTopicCreation). librdkafka
	// clients such as kcat ask by default; kgo clients only with
	// kgo.AllowAutoTopicCreation.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and of
	// TopicSpecs with Partitions 0. Zero keeps kfake's default of 10.
	DefaultPartitions int
	// Logger receives the broker's log lines. kfake's own messages carry
	// component=kfake; its info and debug levels (group membership chatter)
	// both become slog's debug. Nil discards everything.
	Logger *slog.Logger
	// ExtraOpts are passed to kfake.NewCluster after the options derived from
	// the fields above, so they can add TLS, SASL, broker configs and so on,
	// or override the derived options.
	ExtraOpts []kfake.Opt
	// LibrdkafkaCompat makes the broker advertise Produce and Fetch from
	// version 0, while kfake serves only Produce v3+ and Fetch v4+.
	// librdkafka (and so kcat) derives the compression codecs a broker
	// supports from those minimum versions: without this it sends gzip,
	// snappy and lz4 batches uncompressed (zstd is unaffected). Every client
	// in practice uses the highest common version, so the advertised old
	// versions are never used; a client that did use one would be
	// disconnected. It needs one ApiVersions round trip at start-up through
	// the admin client (see AdminOpts).
	LibrdkafkaCompat bool
	// AdminOpts are extra kgo options for the broker's internal admin client
	// (used by AddPartitions), e.g. TLS and SASL credentials when ExtraOpts
	// turns those on.
	AdminOpts []kgo.Opt
}

// TopicSpec names a topic and its partition count. Partitions 0 means the
// broker's default partition count.
type TopicSpec struct {
	Name       string
	Partitions int32
}

// String formats the spec the way ParseTopicSpec reads it.
func (s TopicSpec) String() string {
	if s.Partitions == 0 {
		return s.Name
	}
	return s.Name + ":" + strconv.FormatInt(int64(s.Partitions), 10)
}

// maxTopicNameLen is Kafka's limit on topic name length.
const maxTopicNameLen = 249

// maxPartitions bounds a parsed partition count; an in-memory single-node
// broker has no use for more, and a typo such as "orders:40000" should fail.
const maxPartitions = 10000

// ParseTopicSpec parses "name" or "name:partitions", e.g. "orders:4". The
// name must be a valid Kafka topic name (letters, digits, '.', '_', '-', at
// most 249 characters, not "." or ".."); the partition count, if given, must
// be a whole number from 1 to 10000. Without a count, Partitions is 0 (the
// broker's default).
func ParseTopicSpec(s string) (TopicSpec, error) {
	name, count, hasCount := strings.Cut(strings.TrimSpace(s), ":")
	if err := ValidateTopicName(name); err != nil {
		return TopicSpec{}, fmt.Errorf("topic spec %q: %w", s, err)
	}
	spec := TopicSpec{Name: name}
	if !hasCount {
		return spec, nil
	}
	n, err := strconv.ParseInt(count, 10, 32)
	if err != nil {
		return TopicSpec{}, fmt.Errorf("topic spec %q: partition count %q is not a whole number", s, count)
	}
	if n < 1 || n > maxPartitions {
		return TopicSpec{}, fmt.Errorf("topic spec %q: partition count %d is out of range [1, %d]", s, n, maxPartitions)
	}
	spec.Partitions = int32(n)
	return spec, nil
}

// ParseTopicSpecs parses a comma-separated list of topic specs, e.g.
// "orders:4,payments". Empty elements are errors, as are duplicate names.
func ParseTopicSpecs(s string) ([]TopicSpec, error) {
	var specs []TopicSpec
	seen := make(map[string]bool)
	for part := range strings.SplitSeq(s, ",") {
		spec, err := ParseTopicSpec(part)
		if err != nil {
			return nil, err
		}
		if seen[spec.Name] {
			return nil, fmt.Errorf("topic specs %q: topic %q is listed twice", s, spec.Name)
		}
		seen[spec.Name] = true
		specs = append(specs, spec)
	}
	return specs, nil
}

// ValidateTopicName reports whether name is a legal Kafka topic name.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("topic name is %d characters long, the limit is %d", len(name), maxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("topic name %q has the character %q; only letters, digits, '.', '_' and '-' are allowed", name, rune(c))
		}
	}
	return nil
}

// Broker is a running embedded broker. Its methods are safe for concurrent
// use; after Close they return ErrClosed.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	logger  *slog.Logger
	client  *kgo.Client
	admin   *kadm.Client

	// mu makes Close wait for administrative calls in flight: kfake's admin
	// calls block forever on a closed cluster.
	mu     sync.RWMutex
	closed bool

	// stopWatch ends the session watch (sessions.go); watchDone is closed
	// when it has.
	stopWatch context.CancelFunc
	watchDone <-chan struct{}
}

// Start starts a broker and creates cfg.Topics. The broker runs until Close;
// ctx bounds only the start-up work.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, port, err := parseListen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("sluice"),
		// kfake always asks to listen on 127.0.0.1; bind the requested
		// host instead, keeping the port kfake chose.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
		kfake.WithLogger(slogLogger{logger}),
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if cfg.DefaultPartitions < 0 {
		return nil, fmt.Errorf("broker: default partitions %d is negative", cfg.DefaultPartitions)
	}
	if cfg.DefaultPartitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(cfg.DefaultPartitions))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	} else {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(MemorySegmentBytes)}))
	}
	opts = append(opts, cfg.ExtraOpts...)

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start on %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	addrs := cluster.ListenAddrs()
	if len(addrs) == 0 {
		cluster.Close()
		return nil, errors.New("broker: kfake started without a listener")
	}
	b := &Broker{cluster: cluster, addr: addrs[0], logger: logger}
	clientOpts := append([]kgo.Opt{kgo.SeedBrokers(b.addr)}, cfg.AdminOpts...)
	b.client, err = kgo.NewClient(clientOpts...)
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("broker: admin client: %w", err)
	}
	b.admin = kadm.NewClient(b.client)

	b.declineTelemetry()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	b.stopWatch, b.watchDone = stopWatch, b.watchSessions(watchCtx)
	if cfg.LibrdkafkaCompat {
		if err := b.advertiseOldProduceFetch(ctx); err != nil {
			b.Close()
			return nil, err
		}
	}
	for _, spec := range cfg.Topics {
		if err := b.ensureTopic(ctx, spec); err != nil {
			b.Close()
			return nil, err
		}
	}
	logger.Info("embedded kafka broker started", "addr", b.addr, "topics", len(cfg.Topics), "data_dir", cfg.DataDir)
	return b, nil
}

// telemetryRecheck is how often a client asks the embedded broker again
// for a telemetry subscription it declined.
const telemetryRecheck = 10 * time.Minute

// declineTelemetry answers KIP-714 GetTelemetrySubscriptions with an empty
// subscription: kfake on its own subscribes every client to all its
// metrics every 30 s, which the embedded broker has nowhere to send, and
// each push costs an idle client a compression and a round trip.
func (b *Broker) declineTelemetry() {
	c := b.cluster
	c.ControlKey(kmsg.GetTelemetrySubscriptions.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req, ok := r.(*kmsg.GetTelemetrySubscriptionsRequest)
		if !ok {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.GetTelemetrySubscriptionsResponse)
		resp.ClientInstanceID = req.ClientInstanceID
		if resp.ClientInstanceID == [16]byte{} {
			resp.ClientInstanceID = [16]byte(uuid.New())
		}
		resp.SubscriptionID = 0
		resp.PushIntervalMillis = int32(telemetryRecheck / time.Millisecond)
		resp.RequestedMetrics = nil // none: the client pushes nothing
		return resp, nil, true
	})
}

// advertiseOldProduceFetch installs a kfake control function that answers
// ApiVersions with kfake's own answer, except that Produce and Fetch start at
// version 0. See Config.LibrdkafkaCompat.
func (b *Broker) advertiseOldProduceFetch(ctx context.Context) error {
	// kfake's answer is the same for every request of a version, so fetch
	// it once at the highest version and serve copies of it.
	snap, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, b.client)
	if err == nil {
		err = kerr.ErrorForCode(snap.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("broker: librdkafka compat: read kfake's ApiVersions: %w", err)
	}
	keys := slices.Clone(snap.ApiKeys)
	for i := range keys {
		if keys[i].ApiKey == kmsg.Produce.Int16() || keys[i].ApiKey == kmsg.Fetch.Int16() {
			keys[i].MinVersion = 0
		}
	}
	c := b.cluster
	c.ControlKey(kmsg.ApiVersions.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req, ok := r.(*kmsg.ApiVersionsRequest)
		if !ok || req.Version > snap.Version {
			// Let kfake answer (it downgrades unknown versions).
			return nil, nil, false
		}
		resp := *snap
		resp.Version = req.Version
		resp.ApiKeys = slices.Clone(keys)
		resp.SupportedFeatures = slices.Clone(snap.SupportedFeatures)
		resp.FinalizedFeatures = slices.Clone(snap.FinalizedFeatures)
		return &resp, nil, true
	})
	return nil
}

// parseListen splits a listen address into a host to bind and a port (0 for
// random).
func parseListen(listen string) (string, int, error) {
	if listen == "" {
		listen = DefaultListen
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("broker: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("broker: listen address %q: port %q is not a number from 0 to 65535", listen, portStr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "", 0, fmt.Errorf("broker: listen address %q: the host must be a specific address (e.g. 127.0.0.1), because clients are told to connect to it", listen)
	}
	return host, port, nil
}

// ensureTopic creates spec, or grows an existing topic to spec.Partitions.
func (b *Broker) ensureTopic(ctx context.Context, spec TopicSpec) error {
	err := b.CreateTopic(ctx, spec)
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	have := int32(len(b.cluster.PartitionInfos(spec.Name)))
	if spec.Partitions > have {
		b.logger.Info("growing existing topic", "topic", spec.Name, "from", have, "to", spec.Partitions)
		return b.AddPartitions(ctx, spec.Name, int(spec.Partitions-have))
	}
	b.logger.Debug("topic already exists", "topic", spec.Name, "partitions", have)
	return nil
}

// Addr returns the bootstrap address, "host:port".
func (b *Broker) Addr() string { return b.addr }

// Cluster returns the underlying kfake cluster, for fault injection and
// inspection (PartitionInfo, Control, ...). Do not Close it directly.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// CreateTopic creates a topic. Creating a topic that exists returns an error
// matching kerr.TopicAlreadyExists with errors.Is.
func (b *Broker) CreateTopic(ctx context.Context, spec TopicSpec) error {
	if err := ValidateTopicName(spec.Name); err != nil {
		return fmt.Errorf("broker: create topic: %w", err)
	}
	if spec.Partitions < 0 {
		return fmt.Errorf("broker: create topic %q: partition count %d is negative", spec.Name, spec.Partitions)
	}
	return b.do(ctx, func() error {
		if err := b.cluster.CreateTopic(spec.Name, spec.Partitions, nil); err != nil {
			return fmt.Errorf("broker: create topic %q: %w", spec.Name, err)
		}
		b.logger.Debug("created topic", "topic", spec.Name, "partitions", len(b.cluster.PartitionInfos(spec.Name)))
		return nil
	})
}

// AddPartitions adds n (> 0) partitions to an existing topic.
func (b *Broker) AddPartitions(ctx context.Context, topic string, n int) error {
	if n <= 0 {
		return fmt.Errorf("broker: add partitions to %q: count %d must be positive", topic, n)
	}
	return b.do(ctx, func() error {
		resp, err := b.admin.CreatePartitions(ctx, n, topic)
		if err == nil {
			var r kadm.CreatePartitionsResponse
			if r, err = resp.On(topic, nil); err == nil {
				err = r.Err
			}
		}
		if err != nil {
			return fmt.Errorf("broker: add %d partitions to %q: %w", n, topic, err)
		}
		return nil
	})
}

// DeleteRecords deletes the records of a partition below offset before, as
// retention would: the partition's start offset becomes before. An offset of
// -1 deletes everything up to the high watermark.
func (b *Broker) DeleteRecords(ctx context.Context, topic string, partition int32, before int64) error {
	return b.do(ctx, func() error {
		if err := b.cluster.DeleteRecords(topic, partition, before); err != nil {
			return fmt.Errorf("broker: delete records of %s/%d before offset %d: %w", topic, partition, before, err)
		}
		return nil
	})
}

// do runs fn unless the broker is closed or ctx is done, holding Close off
// while fn runs.
func (b *Broker) do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	return fn()
}

// Close stops the broker and, with a DataDir, saves its state. It waits for
// administrative calls in flight. Close is idempotent.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	if b.stopWatch != nil {
		b.stopWatch()
		<-b.watchDone
	}
	b.client.Close()
	b.cluster.Close()
	b.logger.Info("embedded kafka broker stopped", "addr", b.addr)
}

// slogLogger adapts a slog.Logger to kfake.Logger. kfake's info level is
// chatty (group joins and leaves), so it becomes slog's debug.
type slogLogger struct{ l *slog.Logger }

// Logf implements kfake.Logger.
func (s slogLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo, kfake.LogLevelDebug:
		lvl = slog.LevelDebug
	default:
		return
	}
	ctx := context.Background()
	if !s.l.Enabled(ctx, lvl) {
		return
	}
	s.l.Log(ctx, lvl, fmt.Sprintf(format, args...), "component", "kfake", "kfake_level", level.String())
}
