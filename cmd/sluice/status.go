package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/groupstatus"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/progress"
)

// runStatus prints a query's per-partition lag, like
// kafka-consumer-groups --describe: the offsets of the last committed batch
// from the checkpoint against the broker's latest offsets. The checkpoint
// is opened read-only, without its lock, so the query may be running or
// stopped. With --group it describes a consumer group instead (the members
// of a group-mode query, or any group): see runGroupStatus.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	dir := fs.String("checkpoint", "", "the query's checkpoint directory (required without --group)")
	group := fs.String("group", "", "a consumer group to describe instead of a checkpoint: the sluice.group of a group-mode query, or any group")
	bootstrap := fs.String("bootstrap", "", "Kafka bootstrap servers, comma-separated (required, unless --eventhubs-connection-string-env names one)")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the broker")
	kafkaOpts := kvFlags{}
	fs.Var(kafkaOpts, "kafka-option", "with --group: client security option KEY=VALUE as for the kafka source, e.g. kafka.security.protocol=SASL_SSL (repeatable)")
	ehEnv := fs.String("eventhubs-connection-string-env", "", "with --group: the environment variable holding an Azure Event Hubs connection string; sets the bootstrap servers, SASL_SSL and PLAIN as the eventhubs source does")
	format := fs.String("format", "table", "with --group: output format, table or json")
	samples := fs.Int("samples", 1, "with --group: snapshots of the group to judge the status over (STALL and WARN need 2 or more)")
	interval := fs.Duration("interval", 2*time.Second, "with --group: time between snapshots; (samples-1) × interval should exceed the members' commit interval (their trigger)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice status --checkpoint DIR --bootstrap HOST:PORT[,HOST:PORT]\n       sluice status --group NAME --bootstrap HOST:PORT[,HOST:PORT] [--format table|json] [--kafka-option KEY=VALUE]…")
		printFlags(stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *group != "" {
		if *dir != "" {
			return &exitError{code: 2, err: errors.New("--checkpoint and --group are exclusive: a checkpoint belongs to one process, a group's offsets are in Kafka")}
		}
		return runGroupStatus(ctx, groupStatusArgs{
			group: *group, bootstrap: *bootstrap, timeout: *timeout, kafkaOpts: kafkaOpts, eventHubsEnv: *ehEnv,
			format: *format, samples: *samples, interval: *interval,
		}, stdout)
	}
	for _, name := range []string{"kafka-option", "eventhubs-connection-string-env", "format", "samples", "interval"} {
		if set[name] {
			return &exitError{code: 2, err: fmt.Errorf("--%s is only used with --group", name)}
		}
	}
	if *dir == "" || *bootstrap == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--checkpoint and --bootstrap are required (or --group and --bootstrap for a consumer group)")}
	}
	st, err := readCheckpointState(*dir)
	if err != nil {
		return err
	}
	committed, err := kafka.ParseOffsetsJSON(st.Offsets)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", *dir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	latest, earliest, err := brokerOffsets(ctx, strings.Split(*bootstrap, ","), topicsOf(committed))
	if err != nil {
		return err
	}
	rows := lagRows(committed, latest, earliest)
	printStatus(stdout, *dir, st, rows)
	return nil
}

// checkpointState is what status needs from a checkpoint directory.
type checkpointState struct {
	// ID is the query id from the metadata file ("" if absent).
	ID string
	// Committed is the last committed batch; -1 when none is.
	Committed int64
	// CommittedAt is the committed batch's logged timestamp.
	CommittedAt time.Time
	// Planned is the newest batch in the offsets log (> Committed when a
	// batch is in flight or was cut short); -1 when there is none.
	Planned int64
	// Offsets is the committed batch's source offsets JSON, or the query's
	// starting offsets when no batch is committed yet.
	Offsets string
	// FromStart is true when Offsets are the starting offsets.
	FromStart bool
}

// readCheckpointState reads a checkpoint directory without the lock a
// running query holds (checkpoint.OpenReadOnly): the highest commits/N,
// the source offsets of offsets/N, the query id, and the newest
// offsets/M. A commit whose offsets file was purged between listing and
// reading is retried.
func readCheckpointState(dir string) (*checkpointState, error) {
	c, err := checkpoint.OpenReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := &checkpointState{ID: c.ID(), Committed: -1, Planned: -1}
	planned, ok, err := c.LatestOffsets()
	if err != nil {
		return nil, err
	}
	if ok {
		st.Planned = planned
	}
	var missing error
	for attempt := 0; attempt < 3; attempt++ {
		id, ok, err := c.LatestCommit()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		meta, sources, err := c.ReadOffsets(id)
		if errors.Is(err, fs.ErrNotExist) {
			missing = fmt.Errorf("checkpoint %s: batch %d is committed but its offsets file is missing: %w", dir, id, err)
			continue // purged between listing and reading, or damaged
		}
		if err != nil {
			return nil, err
		}
		if len(sources) == 0 || sources[0] == "" {
			return nil, fmt.Errorf("checkpoint %s: offsets of batch %d: the source has no offset", dir, id)
		}
		st.Committed, st.CommittedAt, st.Offsets = id, time.UnixMilli(meta.TimestampMs), sources[0]
		st.Planned = max(st.Planned, id)
		return st, nil
	}
	if missing != nil {
		return nil, missing
	}
	offs, ok, err := c.ReadSourceInitial(0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: no committed batch and no starting offsets: the query has not started on this directory", dir)
	}
	st.Offsets, st.FromStart = offs, true
	return st, nil
}

func topicsOf(o map[partition.ID]int64) []string {
	var out []string
	for tp := range o {
		if !slices.Contains(out, tp.Topic) {
			out = append(out, tp.Topic)
		}
	}
	slices.Sort(out)
	return out
}

// brokerOffsets lists the latest (end) and earliest offsets of topics.
func brokerOffsets(ctx context.Context, seeds, topics []string) (latest, earliest map[partition.ID]int64, err error) {
	latest, earliest = map[partition.ID]int64{}, map[partition.ID]int64{}
	if len(topics) == 0 {
		return latest, earliest, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client for %s: %w", strings.Join(seeds, ","), err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, l := range []struct {
		into map[partition.ID]int64
		list func(context.Context, ...string) (kadm.ListedOffsets, error)
		what string
	}{{latest, adm.ListEndOffsets, "latest"}, {earliest, adm.ListStartOffsets, "earliest"}} {
		listed, err := l.list(ctx, topics...)
		if err != nil {
			return nil, nil, fmt.Errorf("list %s offsets of %s from %s: %w", l.what, strings.Join(topics, ","), strings.Join(seeds, ","), err)
		}
		listed.Each(func(lo kadm.ListedOffset) {
			if lo.Err == nil {
				l.into[partition.ID{Topic: lo.Topic, Partition: lo.Partition}] = lo.Offset
			}
		})
	}
	return latest, earliest, nil
}

// lagRow is one line of the status table. A negative offset is unknown.
type lagRow struct {
	tp                partition.ID
	committed, latest int64
	lag               int64 // -1 when unknown
}

// lagRows joins the committed and latest offsets per partition. A partition
// the broker has but the checkpoint lacks (added since) has no committed
// offset; the query will read it from its earliest offset, so that is what
// its lag counts from. A partition the broker no longer has has no latest
// offset and no lag.
func lagRows(committed, latest, earliest map[partition.ID]int64) []lagRow {
	keys := map[partition.ID]bool{}
	for tp := range committed {
		keys[tp] = true
	}
	for tp := range latest {
		keys[tp] = true
	}
	var rows []lagRow
	for tp := range keys {
		r := lagRow{tp: tp, committed: -1, latest: -1, lag: -1}
		c, hasC := committed[tp]
		l, hasL := latest[tp]
		if hasC {
			r.committed = c
		}
		if hasL {
			r.latest = l
		}
		switch {
		case hasC && hasL:
			r.lag = max(0, l-c)
		case hasL:
			r.lag = max(0, l-earliest[tp])
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b lagRow) int { return a.tp.Compare(b.tp) })
	return rows
}

func printStatus(w io.Writer, dir string, st *checkpointState, rows []lagRow) {
	id := st.ID
	if id == "" {
		id = "(unknown)"
	}
	fmt.Fprintf(w, "Query %s, checkpoint %s\n", id, dir)
	switch {
	case st.FromStart:
		fmt.Fprintln(w, "No batch committed yet: COMMITTED-OFFSET shows the starting offsets.")
	default:
		fmt.Fprintf(w, "Last committed batch %d at %s.\n", st.Committed, progress.FormatTime(st.CommittedAt))
	}
	if st.Planned > st.Committed {
		fmt.Fprintf(w, "Batch %d is planned but not committed (running, or cut short and re-run on restart).\n", st.Planned)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED-OFFSET\tLATEST-OFFSET\tLAG")
	num := func(v int64) string {
		if v < 0 {
			return "-"
		}
		return strconv.FormatInt(v, 10)
	}
	var tc, tl, tlag int64
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.tp.Topic, r.tp.Partition, num(r.committed), num(r.latest), num(r.lag))
		tc += max(r.committed, 0)
		tl += max(r.latest, 0)
		tlag += max(r.lag, 0)
	}
	fmt.Fprintf(tw, "TOTAL\t-\t%d\t%d\t%d\n", tc, tl, tlag)
	tw.Flush()
}

// groupStatusArgs are the flags of sluice status --group.
type groupStatusArgs struct {
	group, bootstrap string
	timeout          time.Duration
	kafkaOpts        map[string]string
	eventHubsEnv     string
	format           string
	samples          int
	interval         time.Duration
}

// runGroupStatus prints a consumer group's members, partitions, offsets,
// lag in records and seconds and status (package groupstatus), with the
// kafka source's client security options.
func runGroupStatus(ctx context.Context, a groupStatusArgs, stdout io.Writer) error {
	if a.format != "table" && a.format != "json" {
		return &exitError{code: 2, err: fmt.Errorf("--format %q: allowed: table, json", a.format)}
	}
	if a.samples < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--samples %d: must be at least 1", a.samples)}
	}
	if a.samples > 1 && a.interval <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--interval %s: must be positive", a.interval)}
	}
	kv := maps.Clone(a.kafkaOpts)
	if a.eventHubsEnv != "" {
		raw := strings.TrimSpace(os.Getenv(a.eventHubsEnv))
		if raw == "" {
			return &exitError{code: 2, err: fmt.Errorf("--eventhubs-connection-string-env: environment variable %s is empty or unset", a.eventHubsEnv)}
		}
		conn, err := kafkaauth.ParseEventHubsConnectionString(raw)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--eventhubs-connection-string-env %s: %w", a.eventHubsEnv, err)}
		}
		for k, v := range conn.KafkaOptions() {
			if _, given := kv[k]; !given {
				kv[k] = v
			}
		}
	}
	bootstrap := a.bootstrap
	if b, ok := kv["kafka.bootstrap.servers"]; ok {
		if bootstrap == "" {
			bootstrap = b
		}
		delete(kv, "kafka.bootstrap.servers")
	}
	if bootstrap == "" {
		return &exitError{code: 2, err: errors.New("--group needs --bootstrap (or --eventhubs-connection-string-env)")}
	}
	sec, err := kafkaauth.Parse(options.New(kv))
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--kafka-option: %w", err)}
	}
	clientOpts := append([]kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...)}, sec.Opts()...)
	cl, err := kgo.NewClient(clientOpts...)
	if err != nil {
		return sec.Scrub(fmt.Errorf("kafka client for %s: %w", bootstrap, err))
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, a.timeout+time.Duration(a.samples-1)*a.interval)
	defer cancel()
	rep, err := groupstatus.Describe(ctx, kadm.NewClient(cl), a.group, groupstatus.Options{
		Samples: a.samples, Interval: a.interval, ClientOpts: clientOpts,
	})
	if err != nil {
		return sec.Scrub(sec.Explain(fmt.Errorf("%s: %w", bootstrap, err)))
	}
	if a.format == "json" {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}
