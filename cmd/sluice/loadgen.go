package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/loadgen"
	"github.com/sluice-stream/sluice/internal/options"
)

// kvFlags collects repeated KEY=VALUE flags.
type kvFlags map[string]string

func (k kvFlags) String() string {
	var s []string
	for key := range k {
		s = append(s, key+"=…")
	}
	return strings.Join(s, ",")
}

func (k kvFlags) Set(v string) error {
	key, val, ok := strings.Cut(v, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q: want KEY=VALUE", v)
	}
	k[key] = val
	return nil
}

// loadgenHugeHeap is how much heap `sluice loadgen` prepares for huge
// pages: its records in flight (--max-buffered) and the client's buffers.
const loadgenHugeHeap = 256 << 20

// profileFlags are loadgen's flags.
type profileFlags struct {
	kind, csv, shape, bootstrap, topic         *string
	log                                        logFlags
	rate, factor, amplitude, zipf              *float64
	at, spikeFor, period, duration, linger     *time.Duration
	recordBytes, keys, maxBuffered, partitions *int
	seed                                       *int64
	jsonOut, quiet                             *bool
	compression                                string
	kafkaOptions                               kvFlags
}

func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("loadgen", stderr)
	f := profileFlags{kafkaOptions: kvFlags{}}
	f.bootstrap = fs.String("bootstrap", "", "Kafka bootstrap servers (default: start an embedded broker and print its address)")
	f.topic = fs.String("topic", "loadgen", "topic to produce to (created if missing)")
	f.partitions = fs.Int("partitions", 8, "partitions to spread records over (and to create the topic with)")
	f.duration = fs.Duration("duration", time.Minute, "how long to produce")
	f.kind = fs.String("profile", "steady", "rate profile: steady, step, spike, sine, csv")
	f.rate = fs.Float64("rate", 1000, "base rate, records per second")
	f.factor = fs.Float64("factor", 10, "step/spike: rate multiplier")
	f.at = fs.Duration("at", 10*time.Second, "step/spike: when it starts")
	f.spikeFor = fs.Duration("for", 20*time.Second, "spike: how long it lasts")
	f.period = fs.Duration("period", time.Minute, "sine: period")
	f.amplitude = fs.Float64("amplitude", -1, "sine: amplitude in records per second (default: half the rate)")
	f.csv = fs.String("csv", "", "csv: file of \"seconds,rate\" rows (each rate holds until the next row)")
	f.shape = fs.String("shape", loadgen.ShapeOrders, "record shape: "+strings.Join(loadgen.Shapes, ", "))
	f.recordBytes = fs.Int("record-bytes", 0, "value size: random's size (default 200), minimum size of JSON shapes (padded)")
	f.keys = fs.Int("keys", loadgen.DefaultKeys, "distinct keys; record partition = key mod partitions")
	f.zipf = fs.Float64("zipf", 0, "Zipf exponent (> 1) of the key distribution; 0 = uniform")
	f.seed = fs.Int64("seed", 1, "random seed")
	f.maxBuffered = fs.Int("max-buffered", loadgen.DefaultMaxBuffered, "records buffered in the producer at most")
	fs.StringVar(&f.compression, "compression", "none", "producer compression: none, gzip, snappy, lz4, zstd")
	f.linger = fs.Duration("linger", loadgen.DefaultLinger, "producer linger: how long a partition's batch waits for more records before it is sent (0: sent at once, as Kafka's end-to-end latency tool's producer)")
	fs.Var(f.kafkaOptions, "kafka-option", "client security option KEY=VALUE as for the source, e.g. kafka.security.protocol=SASL_SSL (repeatable)")
	f.jsonOut = fs.Bool("json", false, "print the final result as JSON on stdout")
	f.quiet = fs.Bool("quiet", false, "do not print the per-second lines")
	hugePages := fs.Bool("huge-pages", false, "prepare the first 256 MiB of heap (at most a quarter of the memory limit) for transparent huge pages: fewer page faults for the records in flight (off by default, as for sluice broker)")
	f.log = addLogFlags(fs, "warn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	prof, err := buildProfile(f, set)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	size := *f.recordBytes
	if *f.shape == loadgen.ShapeRandom && size == 0 {
		size = 200
	}
	shape, err := loadgen.NewShape(*f.shape, size, *f.seed)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	keys := loadgen.Keys{Count: *f.keys, Zipf: *f.zipf}
	if err := keys.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if *f.partitions < 1 || *f.partitions > 10000 {
		return &exitError{code: 2, err: fmt.Errorf("--partitions %d out of range [1, 10000]", *f.partitions)}
	}
	clientOpts, err := kafkaClientOpts(f.kafkaOptions, f.compression)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *f.linger < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--linger %s: must be ≥ 0", *f.linger)}
	}
	clientOpts = append(clientOpts, kgo.ProducerLinger(*f.linger))
	log, err := f.log.logger(stderr)
	if err != nil {
		return err
	}

	if *hugePages {
		prepareHugeHeap(loadgenHugeHeap, log)
	}
	addr := *f.bootstrap
	if addr == "" {
		b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", Logger: log,
			Topics: []broker.TopicSpec{{Name: *f.topic, Partitions: int32(*f.partitions)}}})
		if err != nil {
			return err
		}
		defer b.Close()
		addr = b.Addr()
		fmt.Fprintf(stderr, "embedded broker listening on %s (topic %s, %d partitions; it stops with loadgen)\n", addr, *f.topic, *f.partitions)
	} else if err := ensureTopic(ctx, addr, clientOpts, *f.topic, int32(*f.partitions)); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "producing %s for %s: %s records, %s, %d partitions\n", prof, *f.duration, shape.Name(), keys, *f.partitions)
	cfg := loadgen.Config{
		Brokers: strings.Split(addr, ","), ClientOpts: clientOpts,
		Topic: *f.topic, Partitions: int32(*f.partitions),
		Profile: prof, Duration: *f.duration, Shape: shape, Keys: keys, Seed: *f.seed,
		MaxBuffered: *f.maxBuffered, Logger: log,
	}
	if !*f.quiet {
		cfg.OnSecond = func(s loadgen.Second) { fmt.Fprintln(stderr, s.String()) }
	}
	res, err := loadgen.Run(ctx, cfg)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if *f.jsonOut {
		enc := json.NewEncoder(stdout)
		if jerr := enc.Encode(loadgenJSON(res)); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintln(stdout, res.String())
		if res.Throttled() {
			fmt.Fprintln(stdout, "the broker did not keep up: the producer slowed down to what it took (see the lines marked \"broker not keeping up\")")
		}
	}
	return err
}

// loadgenResult is what `sluice loadgen --json` prints.
type loadgenResult struct {
	DurationSec     float64 `json:"duration_sec"`
	Asked           int64   `json:"asked"`
	Acked           int64   `json:"acked"`
	Failed          int64   `json:"failed"`
	Skipped         int64   `json:"skipped"`
	AskedPerSec     float64 `json:"asked_per_sec"`
	AchievedPerSec  float64 `json:"achieved_per_sec"`
	Throttled       bool    `json:"throttled"`
	PartitionCounts []int64 `json:"partition_counts"`
}

func loadgenJSON(r loadgen.Result) loadgenResult {
	return loadgenResult{
		DurationSec: r.Duration.Seconds(), Asked: r.Asked, Acked: r.Acked, Failed: r.Failed, Skipped: r.Skipped,
		AskedPerSec: r.AskedRate(), AchievedPerSec: r.AchievedRate(), Throttled: r.Throttled(), PartitionCounts: r.PartitionCounts,
	}
}

// buildProfile turns the profile flags into a Profile; set names the flags
// given on the command line.
func buildProfile(f profileFlags, set map[string]bool) (loadgen.Profile, error) {
	var p loadgen.Profile
	switch *f.kind {
	case "steady":
		p = loadgen.Steady{Rate: *f.rate}
	case "step":
		p = loadgen.Step{Base: *f.rate, Factor: *f.factor, At: *f.at}
	case "spike":
		p = loadgen.Spike{Base: *f.rate, Factor: *f.factor, At: *f.at, For: *f.spikeFor}
	case "sine":
		amp := *f.amplitude
		if amp < 0 {
			amp = *f.rate / 2
		}
		p = loadgen.Sine{Base: *f.rate, Amplitude: amp, Period: *f.period}
	case "csv":
		if *f.csv == "" {
			return nil, errors.New("--profile csv needs --csv FILE")
		}
		file, err := os.Open(*f.csv)
		if err != nil {
			return nil, fmt.Errorf("--csv: %w", err)
		}
		defer file.Close()
		pw, err := loadgen.ParseCSV(*f.csv, file)
		if err != nil {
			return nil, err
		}
		p = pw
	default:
		return nil, fmt.Errorf("--profile %q: allowed: steady, step, spike, sine, csv", *f.kind)
	}
	if set["csv"] && *f.kind != "csv" {
		return nil, fmt.Errorf("--csv is only used with --profile csv (profile is %s)", *f.kind)
	}
	if *f.duration <= 0 {
		return nil, fmt.Errorf("--duration %s must be positive", *f.duration)
	}
	return p, loadgen.Validate(p)
}

// kafkaClientOpts turns --kafka-option security settings and a compression
// name into client options.
func kafkaClientOpts(kv map[string]string, compression string) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if len(kv) > 0 {
		sec, err := kafkaauth.ClientOpts(options.New(kv))
		if err != nil {
			return nil, fmt.Errorf("--kafka-option: %w", err)
		}
		opts = append(opts, sec...)
	}
	var codec kgo.CompressionCodec
	switch compression {
	case "none":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("--compression %q: allowed: none, gzip, snappy, lz4, zstd", compression)
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}

// ensureTopic creates topic with partitions on a real cluster if it does
// not exist (broker-default replication).
func ensureTopic(ctx context.Context, addr string, opts []kgo.Opt, topic string, partitions int32) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(addr, ",")...)}, opts...)...)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	return nil
}
