// Package kafka is sluice's Kafka source: Spark's Kafka source options and
// fixed schema on top of one long-lived franz-go client per query.
//
// The checkpoint owns the offsets, as in Spark: partitions are assigned
// directly (no consumer group) and each batch reads exactly the planned
// [start, end) per partition. One fetch goroutine keeps reading while
// batches transform and commit: records past a batch's end are carried to
// the next batch (a bounded prefetch, see reader.go), and the default
// trigger waits on it instead of polling (WaitForData).
//
// The same source reads Azure Event Hubs through its Kafka endpoint
// (NewEventHubs); TLS and SASL come from package kafkaauth. While the
// brokers are unreachable the source retries for up to
// sluice.reconnect.timeout and reports it through Waiting.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// Offsets is a Kafka source position: the next offset to read per partition.
type Offsets map[partition.ID]int64

// JSON renders Spark's {"topic":{"0":123}} form.
func (o Offsets) JSON() string { return FormatOffsetsJSON(o) }

// Partitions implements source.PartitionedOffset.
func (o Offsets) Partitions() partition.Offsets { return partition.Offsets(o) }

// Schema returns Spark's fixed Kafka source schema.
func Schema(includeHeaders bool) batch.Schema {
	s := batch.Schema{Fields: []batch.Field{
		{Name: "key", Type: batch.Binary, Nullable: true},
		{Name: "value", Type: batch.Binary, Nullable: true},
		{Name: "topic", Type: batch.String, Nullable: true},
		{Name: "partition", Type: batch.Int, Nullable: true},
		{Name: "offset", Type: batch.Long, Nullable: true},
		{Name: "timestamp", Type: batch.Timestamp, Nullable: true},
		{Name: "timestampType", Type: batch.Int, Nullable: true},
	}}
	if includeHeaders {
		s.Fields = append(s.Fields, batch.Field{Name: "headers", Type: batch.Headers, Nullable: true})
	}
	return s
}

// DataLossError reports offsets that disappeared before they were read
// (retention, topic deletion) while failOnDataLoss is true.
type DataLossError struct {
	Topic     string
	Partition int32
	Expected  int64
	Earliest  int64
}

func (e *DataLossError) Error() string {
	return fmt.Sprintf("data loss: topic %s partition %d: expected to read from offset %d but the earliest available offset is %d "+
		"(records were deleted by retention or the topic was recreated); "+
		"set failOnDataLoss=false to skip the %d missing offsets and continue",
		e.Topic, e.Partition, e.Expected, e.Earliest, e.Earliest-e.Expected)
}

// Source is the Kafka source. Create it with New (or NewEventHubs); it is
// safe for the engine's usage pattern (one batch at a time, tasks in
// parallel).
type Source struct {
	cfg    *Config
	cl     *kgo.Client
	adm    *kadm.Client
	log    *slog.Logger
	schema batch.Schema

	// availableNow, when set, caps Available (Trigger.AvailableNow).
	// Set once before the first batch, under fmu; read-only after.
	availableNow Offsets
	// gone holds partitions that vanished (failOnDataLoss=false), kept at
	// their position until they come back. Touched by Available only (one
	// planning at a time).
	gone map[partition.ID]bool
	// ahead is the latest-offsets listing sent for the next capped plan
	// (ahead.go), touched by planning only (and Close after it);
	// aheadWG waits for the listings' goroutines.
	ahead   *aheadListing
	aheadWG sync.WaitGroup
	// checkedAt is when a listing last showed the partitions of
	// checkedSet, and nothing for Available to act on (ahead.go:
	// fromFetched plans within aheadMaxAge of it). Touched by planning
	// only.
	checkedAt  time.Time
	checkedSet map[partition.ID]bool

	// Fetch state (reader.go), guarded by fmu: written by Open, Close,
	// WaitForData, unassign and the fetch goroutine.
	fmu   sync.Mutex
	fcond *sync.Cond
	// cur is the open batch's reader (nil between batches).
	cur *reader
	// assigned partitions are in the client's consume set; paused ones
	// are paused by adjustPauses.
	assigned map[partition.ID]bool
	paused   map[partition.ID]bool
	// pos is where the client's cursor is: the offset after the last
	// record we received (carry included); absent while unknown.
	pos map[partition.ID]int64
	// carry holds records received past a batch's end or between batches
	// (the prefetch); carryFrom is the offset the carry logically starts
	// at. carryBytes, carryTotalBytes and carryTotalRecs measure it;
	// carryBefore[tp][i] is what the partition's carry had counted
	// (recordBytes) before carry[tp][i] was appended, so that a batch
	// taking the carry's head counts what it took without reading each
	// record again (Open).
	carry           map[partition.ID][]*kgo.Record
	carryBefore     map[partition.ID][]int64
	carryFrom       map[partition.ID]int64
	carryBytes      map[partition.ID]int64
	carryTotalBytes int64
	carryTotalRecs  int64
	// hwm is each partition's high watermark from the last fetch
	// response that carried it; hwmAt is when that response was routed
	// (the mark was the broker's then, or later: fromFetched).
	hwm   map[partition.ID]int64
	hwmAt map[partition.ID]time.Time
	// The fetch goroutine: its stop and end, the poll in flight, parking.
	fetchStop  context.CancelFunc
	fetchDone  chan struct{}
	fetchEnded bool
	pollCancel context.CancelFunc
	parkReq    int
	parked     bool
	closed     bool
	// held is the partition of the last record of the response fetchLoop
	// is taking, which adjustPausesFor leaves running until that record
	// is taken; nil: none. heldFull: adjustPausesFor found it must be
	// paused then (fetchLoop pauses it as soon as the record is taken).
	held     *partition.ID
	heldFull bool
	// dataCh is signalled when records or a higher watermark arrive
	// (WaitForData).
	dataCh chan struct{}
	// idleWaiting pauses every partition while the waker long-polls for
	// an idle query (waker.go); idleTimedOut says the last wait for data
	// found none, so the next one hands over to the waker at once.
	idleWaiting  bool
	idleTimedOut bool
	// waker is the idle long-poll client (waker.go), created on first
	// use, guarded by wmu.
	wmu         sync.Mutex
	waker       *kgo.Client
	wakerPos    Offsets // what the waker consumes from (nil: nothing)
	wakerClosed bool
	// prefetchBytes bounds the carry; workers is the engine's worker
	// count (coalescing, SetParallelism).
	prefetchBytes atomic.Int64
	// prefetchRecs bounds the carry's records (carryTarget): the
	// admission limit of the last planned batch (SetPrefetchLimit),
	// maxOffsetsPerTrigger before the first; 0 = no bound beyond the
	// bytes.
	prefetchRecs atomic.Int64
	// fetchCap is the most a fetch may hold (fetch.max.bytes, or half
	// the budget's buffer share); fetchSet what the client was last told
	// (sizeFetches, under fmu). wireRecs and wireBytes count the records
	// fetched so far and their bytes on the wire (compressed), for the
	// average size a fetch's byte limit applies to (wireHook).
	fetchCap          atomic.Int64
	fetchSet, partSet int64
	// spread is how many partitions the last opened batch read (Open):
	// a fetch's bytes are shared among them (sizeFetches).
	spread              atomic.Int64
	wireRecs, wireBytes atomic.Int64
	// wireBatchMax is the largest record batch fetched so far (bytes on
	// the wire): a partition's share of a fetch is never smaller, since
	// a broker returns a partition's batch whole or, past the first
	// partition of a response, not at all.
	wireBatchMax atomic.Int64
	workers      int

	skipped atomic.Int64 // offsets skipped with failOnDataLoss=false
	// budget is the query's memory budget (0 = none): no single record may
	// be larger.
	budget atomic.Int64

	health health

	// need[i] says whether schema column i is read by the query (pruning,
	// see prune.go); nil = all. Set once before the first batch.
	need []bool

	// grp is group mode's state (sluice.group; group.go), nil otherwise.
	grp *groupState
}

// New connects a Kafka source. The client is created once and lives until
// Close. Nothing is sent to the brokers until the engine asks for offsets.
func New(opts map[string]string, logger *slog.Logger) (*Source, error) {
	cfg, err := ParseConfig(opts)
	if err != nil {
		return nil, err
	}
	return newSource(cfg, logger)
}

func newSource(cfg *Config, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if len(cfg.Ignored) > 0 {
		logger.Warn("kafka source: ignoring Kafka client settings it does not use", "options", cfg.Ignored)
	}
	s := &Source{
		cfg:         cfg,
		log:         logger,
		schema:      Schema(cfg.IncludeHeaders),
		assigned:    map[partition.ID]bool{},
		paused:      map[partition.ID]bool{},
		pos:         map[partition.ID]int64{},
		carry:       map[partition.ID][]*kgo.Record{},
		carryBefore: map[partition.ID][]int64{},
		carryFrom:   map[partition.ID]int64{},
		carryBytes:  map[partition.ID]int64{},
		hwm:         map[partition.ID]int64{},
		hwmAt:       map[partition.ID]time.Time{},
		dataCh:      make(chan struct{}, 1),
	}
	s.fcond = sync.NewCond(&s.fmu)
	s.prefetchBytes.Store(int64(cfg.FetchMaxBytes))
	s.prefetchRecs.Store(cfg.MaxOffsetsPerTrigger)
	s.fetchCap.Store(int64(cfg.FetchMaxBytes))
	kopts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.ClientID(cfg.ClientID),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(cfg.FetchPartitionMax),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
		kgo.FetchMinBytes(cfg.FetchMinBytes),
		kgo.KeepControlRecords(),
		kgo.WithHooks(connHook{s}, wireHook{s}),
		// Every fetch request names each partition with the current
		// share (sizeFetches). In a fetch session (KIP-227) a broker
		// keeps a partition's share from when it last named it, and the
		// client names again only partitions whose position moved: a
		// partition that got nothing under a smaller share — its producer
		// batch larger than the share, or a first batch sized before any
		// record was seen — kept that share and got nothing until
		// something else moved it. A request costs a few bytes more per
		// partition.
		kgo.DisableFetchSessions(),
	}
	kopts = append(kopts, cfg.Security.Opts()...)
	if cfg.MaxConcurrentFetch > 0 {
		kopts = append(kopts, kgo.MaxConcurrentFetches(cfg.MaxConcurrentFetch))
	}
	if cfg.ReadCommitted {
		kopts = append(kopts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if cfg.Group != "" {
		// Group mode: the consuming client joins the group when the
		// query first needs it (connectGroup), after the query's wiring
		// had its say (UseGroupTransactions); listings go through a
		// client of their own, outside the group.
		s.grp = newGroupState(cfg, kopts)
		adm, err := kgo.NewClient(kopts...)
		if err != nil {
			return nil, fmt.Errorf("kafka source: create client: %w", cfg.Security.Scrub(err))
		}
		s.grp.admCl = adm
		s.adm = kadm.NewClient(adm)
		return s, nil
	}
	kopts = append(kopts, kgo.ConsumeResetOffset(kgo.NoResetOffset()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{}))
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: create client: %w", cfg.Security.Scrub(err))
	}
	s.cl = cl
	s.adm = kadm.NewClient(cl)
	return s, nil
}

// Config returns the parsed options.
func (s *Source) Config() *Config { return s.cfg }

// Description implements source.Source.
func (s *Source) Description() string { return s.cfg.description() }

// Schema implements source.Source.
func (s *Source) Schema() batch.Schema { return s.schema }

// DefaultReadLimit maps maxOffsetsPerTrigger / minOffsetsPerTrigger /
// maxTriggerDelay to a read limit, as Spark's getDefaultReadLimit does,
// plus DefaultMaxPerPartition (Event Hubs' maxEventsPerTrigger default),
// which the planner multiplies by the partitions it sees at each batch.
func (s *Source) DefaultReadLimit() source.ReadLimit {
	return source.ReadLimit{MaxRows: s.cfg.MaxOffsetsPerTrigger, MinRows: s.cfg.MinOffsetsPerTrigger, MaxTriggerDelay: s.cfg.MaxTriggerDelay,
		MaxRowsPerPartition: s.cfg.DefaultMaxPerPartition}
}

// ParseOffset implements source.Source.
func (s *Source) ParseOffset(js string) (source.Offset, error) {
	m, err := ParseOffsetsJSON(js)
	if err != nil {
		return nil, err
	}
	return Offsets(m), nil
}

// topics resolves the subscription to topic names.
func (s *Source) topics(ctx context.Context) ([]string, error) {
	switch {
	case s.cfg.Assign != nil:
		var ts []string
		for t := range s.cfg.Assign {
			ts = append(ts, t)
		}
		return ts, nil
	case s.cfg.Pattern != nil:
		all, err := s.adm.ListTopics(ctx)
		if err != nil {
			return nil, fmt.Errorf("list topics: %w", err)
		}
		var ts []string
		for _, t := range all.Names() {
			if s.cfg.Pattern.MatchString(t) {
				ts = append(ts, t)
			}
		}
		return ts, nil
	}
	return s.cfg.Topics, nil
}

func (s *Source) wanted(tp partition.ID) bool {
	if s.cfg.Assign == nil {
		return true
	}
	for _, p := range s.cfg.Assign[tp.Topic] {
		if p == tp.Partition {
			return true
		}
	}
	return false
}

// listOffsets lists start (earliest) or end (latest) offsets of the
// subscribed partitions, retrying while the brokers are unreachable.
func (s *Source) listOffsets(ctx context.Context, end bool) (Offsets, error) {
	step := "list earliest offsets"
	if end {
		step = "list latest offsets"
	}
	var out Offsets
	err := s.withRetry(ctx, step, func(ctx context.Context) error {
		var err error
		out, err = s.listOffsetsOnce(ctx, end, -1)
		return err
	})
	return out, err
}

// listOffsetsOnce lists start (end=false, ts<0), end (end=true) or
// by-timestamp (ts ≥ 0) offsets once. For timestamps, partitions without a
// record at or after ts are listed in noMatch form: offset -1.
func (s *Source) listOffsetsOnce(ctx context.Context, end bool, ts int64) (Offsets, error) {
	topics, err := s.topics(ctx)
	if err != nil {
		return nil, err
	}
	out := Offsets{}
	if len(topics) == 0 {
		return out, nil
	}
	var listed kadm.ListedOffsets
	switch {
	case ts >= 0:
		listed, err = s.adm.ListOffsetsAfterMilli(ctx, ts, topics...)
	case end && s.cfg.ReadCommitted:
		listed, err = s.adm.ListCommittedOffsets(ctx, topics...)
	case end:
		listed, err = s.adm.ListEndOffsets(ctx, topics...)
	default:
		listed, err = s.adm.ListStartOffsets(ctx, topics...)
	}
	if err != nil {
		return nil, err
	}
	var firstErr error
	listed.Each(func(lo kadm.ListedOffset) {
		if lo.Err != nil {
			if errors.Is(lo.Err, kerr.UnknownTopicOrPartition) {
				return // not created yet: no data
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("list offsets of %s-%d: %w", lo.Topic, lo.Partition, lo.Err)
			}
			return
		}
		tp := partition.ID{Topic: lo.Topic, Partition: lo.Partition}
		if !s.wanted(tp) {
			return
		}
		off := lo.Offset
		if ts >= 0 && (lo.Timestamp < ts) {
			off = -1 // no record at or after ts: the client fell back to the end
		}
		out[tp] = off
	})
	return out, firstErr
}

// InitialOffset resolves the starting position with Spark's precedence:
// startingTimestamp, then startingOffsetsByTimestamp, then startingOffsets.
func (s *Source) InitialOffset(ctx context.Context) (source.Offset, error) {
	if s.grp != nil {
		// Group mode: where each partition starts is the group's
		// business, resolved when the partition is assigned.
		if err := s.connectGroup(); err != nil {
			return nil, err
		}
		return Offsets{}, nil
	}
	switch {
	case s.cfg.StartingTimestamp >= 0:
		return s.timestampOffsets(ctx, "startingTimestamp", func(partition.ID) (int64, bool) { return s.cfg.StartingTimestamp, true })
	case s.cfg.StartingByTimestamp != nil:
		return s.timestampOffsets(ctx, "startingOffsetsByTimestamp", func(tp partition.ID) (int64, bool) {
			ts, ok := s.cfg.StartingByTimestamp[tp]
			return ts, ok
		})
	case s.cfg.StartingEvery >= 0:
		return s.everyOffsets(ctx)
	case s.cfg.Starting == "earliest":
		return s.listOffsets(ctx, false)
	case s.cfg.Starting == "latest":
		return s.listOffsets(ctx, true)
	}
	earliest, err := s.listOffsets(ctx, false)
	if err != nil {
		return nil, err
	}
	latest, err := s.listOffsets(ctx, true)
	if err != nil {
		return nil, err
	}
	out := Offsets{}
	for _, tp := range partition.Offsets(latest).Sorted() { // errors name the first partition missing
		off, ok := s.cfg.StartingJSON[tp]
		if whole, all := s.cfg.StartingTopics[tp.Topic]; all {
			off, ok = whole, true
		}
		if !ok {
			return nil, fmt.Errorf("kafka source: option \"startingOffsets\" does not specify partition %s-%d; specific offsets must list every assigned partition (use -2 for earliest, -1 for latest)", tp.Topic, tp.Partition)
		}
		switch off {
		case sparktext.KafkaEarliest:
			out[tp] = earliest[tp]
		case sparktext.KafkaLatest:
			out[tp] = latest[tp]
		default:
			out[tp] = off
		}
	}
	for tp := range s.cfg.StartingJSON {
		if _, ok := latest[tp]; !ok {
			return nil, fmt.Errorf("kafka source: option \"startingOffsets\" names partition %s-%d, which does not exist", tp.Topic, tp.Partition)
		}
	}
	for topic := range s.cfg.StartingTopics {
		found := false
		for tp := range latest {
			found = found || tp.Topic == topic
		}
		if !found {
			return nil, fmt.Errorf("kafka source: option \"startingOffsets\" names topic %q, which does not exist or is not subscribed", topic)
		}
	}
	return out, nil
}

// timestampOffsets resolves a timestamp per partition to the offset of the
// first record at or after it. A partition without such a record starts at
// its end (strategy latest) or fails the query (strategy error, Spark's
// default).
func (s *Source) timestampOffsets(ctx context.Context, opt string, tsOf func(partition.ID) (int64, bool)) (source.Offset, error) {
	latest, err := s.listOffsets(ctx, true)
	if err != nil {
		return nil, err
	}
	if opt == "startingOffsetsByTimestamp" {
		for tp := range latest {
			if _, ok := tsOf(tp); !ok {
				return nil, fmt.Errorf("kafka source: option %q does not specify partition %s-%d; it must list every assigned partition", opt, tp.Topic, tp.Partition)
			}
		}
		for tp := range s.cfg.StartingByTimestamp {
			if _, ok := latest[tp]; !ok {
				return nil, fmt.Errorf("kafka source: option %q names partition %s-%d, which does not exist", opt, tp.Topic, tp.Partition)
			}
		}
	}
	// One listing per distinct timestamp.
	byTS := map[int64][]partition.ID{}
	for tp := range latest {
		ts, _ := tsOf(tp)
		byTS[ts] = append(byTS[ts], tp)
	}
	out := Offsets{}
	for ts, tps := range byTS {
		var listed Offsets
		err := s.withRetry(ctx, "list offsets by timestamp", func(ctx context.Context) error {
			var err error
			listed, err = s.listOffsetsOnce(ctx, false, ts)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, tp := range tps {
			off, ok := listed[tp]
			if !ok || off < 0 {
				if s.cfg.TimestampStrategy == StrategyError {
					return nil, fmt.Errorf("kafka source: no record at or after timestamp %d (%s) in partition %s-%d for option %q; "+
						"set startingOffsetsByTimestampStrategy=latest to start such partitions at their end",
						ts, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), tp.Topic, tp.Partition, opt)
				}
				off = latest[tp]
			}
			out[tp] = off
		}
	}
	return out, nil
}

// everyOffsets starts every partition at StartingEvery, clamped to the
// partition's available range.
func (s *Source) everyOffsets(ctx context.Context) (source.Offset, error) {
	earliest, err := s.listOffsets(ctx, false)
	if err != nil {
		return nil, err
	}
	latest, err := s.listOffsets(ctx, true)
	if err != nil {
		return nil, err
	}
	out := Offsets{}
	for tp, l := range latest {
		out[tp] = min(max(s.cfg.StartingEvery, earliest[tp]), l)
	}
	return out, nil
}

// PrepareAvailableNow snapshots the latest offsets; later batches never go
// past them (Available reports the snapshot as latest). A subscribed or
// assigned topic that does not exist fails the query (with
// failOnDataLoss=false it is logged as a warning): Spark reads nothing from
// it and stops with success, which makes a misspelled topic look like an
// empty one.
func (s *Source) PrepareAvailableNow(ctx context.Context) error {
	latest, err := s.listOffsets(ctx, true)
	if err != nil {
		return err
	}
	if err := s.checkTopicsExist(ctx, latest); err != nil {
		if s.cfg.FailOnDataLoss {
			return err
		}
		s.log.Warn(err.Error())
	}
	// Under the fetch lock: adjustPauses reads the snapshot from the
	// fetch goroutine and, in group mode, from the group's assignment
	// callback. The map is never changed after this.
	s.fmu.Lock()
	s.availableNow = latest
	s.fmu.Unlock()
	return nil
}

// checkTopicsExist reports the named topics (subscribe, assign) that have
// no partition in latest, suggesting the closest existing topic name.
func (s *Source) checkTopicsExist(ctx context.Context, latest Offsets) error {
	if s.cfg.Pattern != nil {
		return nil // a pattern may match nothing yet; it names no topic
	}
	named, err := s.topics(ctx)
	if err != nil {
		return err
	}
	found := map[string]bool{}
	for tp := range latest {
		found[tp.Topic] = true
	}
	var missing []string
	for _, t := range named {
		if !found[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	var existing []string
	if all, err := s.adm.ListTopics(ctx); err == nil {
		for _, td := range all {
			if td.Err == nil { // a missing topic is listed too, with an error
				existing = append(existing, td.Topic)
			}
		}
	}
	var errs []string
	for _, t := range missing {
		msg := fmt.Sprintf("kafka source: topic %q does not exist", t)
		if sug := options.Suggest(t, existing); sug != "" {
			msg += fmt.Sprintf("; did you mean %q?", sug)
		}
		errs = append(errs, msg+" (availableNow would read nothing and stop; set failOnDataLoss=false to warn instead)")
	}
	return errors.New(strings.Join(errs, "\n"))
}

// Available implements source.Partitioned: the first half of Spark's
// latestOffset(start, limit) — the latest offsets, where new partitions
// start, and the data-loss checks. The read limit is the planner's.
//
// A partition that vanished (its topic deleted, or no longer matched by
// subscribePattern) fails the query under failOnDataLoss; otherwise it is
// kept at its last position (start and latest both there), so the offsets
// logged never lose it — a query whose only topic was deleted never logs
// an empty {} — and when it comes back (the topic recreated), it is read
// from its earliest offset, as a partition whose offset went backwards is:
// one batch moves its position to the earliest offset, the next reads from
// there. Spark skips a recreated topic's records up to its latest offset
// instead.
//
// Under Trigger.AvailableNow the snapshot taken at start is the latest, and
// each call checks it against the brokers as Spark does: partitions lost
// since, or a latest offset below the snapshot's, fail the query whatever
// failOnDataLoss says.
func (s *Source) Available(ctx context.Context, startOff source.Offset) (from, latest partition.Offsets, err error) {
	if s.grp != nil {
		return s.groupAvailable(ctx)
	}
	start, _ := startOff.(Offsets)
	s.checkedAt, s.checkedSet = time.Time{}, nil
	listedAt := time.Now()
	if s.availableNow != nil {
		if err := s.verifyAvailableNow(ctx); err != nil {
			return nil, nil, err
		}
		latest = maps.Clone(partition.Offsets(s.availableNow))
	} else {
		l, err := s.listOffsets(ctx, true)
		if err != nil {
			return nil, nil, err
		}
		latest = partition.Offsets(l)
	}
	// Partitions not in start: new since the last batch. Spark reads them
	// from their earliest offset and reports data loss when that is not 0.
	// Partitions that came back after vanishing, or whose offset went
	// backwards, are read from their earliest offset too.
	effStart := make(partition.Offsets, len(latest))
	var newParts, fromEarliest []partition.ID
	for tp := range latest {
		off, ok := start[tp]
		switch {
		case !ok:
			newParts = append(newParts, tp)
		case s.gone[tp]:
			delete(s.gone, tp)
			msg := fmt.Sprintf("partition %s-%d is back (topic recreated?)", tp.Topic, tp.Partition)
			if s.cfg.FailOnDataLoss {
				return nil, nil, fmt.Errorf("kafka source: %s; some data may have been missed; set failOnDataLoss=false to continue", msg)
			}
			s.log.Warn("kafka source: " + msg + "; reading it from its earliest offset")
			fromEarliest = append(fromEarliest, tp)
		case latest[tp] < off:
			msg := fmt.Sprintf("partition %s-%d offset was changed from %d to %d (topic recreated?)", tp.Topic, tp.Partition, off, latest[tp])
			if s.cfg.FailOnDataLoss {
				return nil, nil, fmt.Errorf("kafka source: %s; some data may have been missed; set failOnDataLoss=false to continue", msg)
			}
			s.log.Warn("kafka source: " + msg + "; reading it from its earliest offset")
			fromEarliest = append(fromEarliest, tp)
		default:
			effStart[tp] = off
		}
	}
	if len(newParts) > 0 || len(fromEarliest) > 0 {
		earliest, err := s.listOffsets(ctx, false)
		if err != nil {
			return nil, nil, err
		}
		for _, tp := range newParts {
			e := earliest[tp]
			if e != 0 {
				msg := fmt.Sprintf("added partition %s-%d starts from offset %d instead of 0; some data may have been missed", tp.Topic, tp.Partition, e)
				if s.cfg.FailOnDataLoss {
					return nil, nil, fmt.Errorf("kafka source: %s (set failOnDataLoss=false to continue)", msg)
				}
				s.log.Warn("kafka source: " + msg)
			}
			effStart[tp] = e
			s.log.Info("kafka source: new partition discovered", "topic", tp.Topic, "partition", tp.Partition, "from", e)
		}
		// A partition to re-read from its earliest offset first moves
		// there, admitting nothing from it in this batch: the batch logs
		// the jump (its end below its start reads nothing), and the next
		// batch reads from the earliest offset. Logged that way, a replay
		// of either batch reads exactly what the first run read.
		for _, tp := range fromEarliest {
			effStart[tp], latest[tp] = earliest[tp], earliest[tp]
			s.unassign(tp)
		}
	}
	for tp, off := range start {
		if _, ok := latest[tp]; ok {
			continue
		}
		// Vanished (topic deleted): keep its position, with nothing to read.
		msg := fmt.Sprintf("partition %s-%d is gone (topic deleted?)", tp.Topic, tp.Partition)
		if s.cfg.FailOnDataLoss {
			return nil, nil, fmt.Errorf("kafka source: %s; set failOnDataLoss=false to continue without it", msg)
		}
		if !s.gone[tp] {
			if s.gone == nil {
				s.gone = map[partition.ID]bool{}
			}
			s.gone[tp] = true
			s.log.Warn("kafka source: " + msg + "; keeping its position until it comes back")
		}
		effStart[tp], latest[tp] = off, off
	}
	if s.availableNow == nil && len(newParts) == 0 && len(fromEarliest) == 0 && len(s.gone) == 0 {
		// Nothing acted on: the next plans may use the fetch responses'
		// marks for a while (fromFetched).
		s.noteChecked(listedAt, latest)
	}
	return effStart, latest, nil
}

// unassign drops everything the client and the source hold of the topic
// of a partition whose log was replaced (the topic recreated), so the next
// batch assigns its partitions afresh: a client still holding the old
// topic (its id, its fetch positions) would wait for records forever.
func (s *Source) unassign(tp partition.ID) {
	// Park the fetch goroutine: no poll of the old topic is in flight
	// while the client forgets it, and nothing of it reaches the carry
	// afterwards.
	s.park()
	defer s.unpark()
	s.cl.PurgeTopicsFromConsuming(tp.Topic)
	for p := range s.assigned {
		if p.Topic == tp.Topic {
			delete(s.assigned, p)
			delete(s.paused, p)
			delete(s.hwm, p)
			delete(s.hwmAt, p)
			s.forget(p)
		}
	}
	delete(s.hwm, tp)
	delete(s.hwmAt, tp)
	s.forget(tp)
}

// verifyAvailableNow checks the availableNow snapshot against the brokers'
// latest offsets, as Spark's KafkaMicroBatchStream does before every batch
// of a Trigger.AvailableNow query, with Spark's error conditions.
func (s *Source) verifyAvailableNow(ctx context.Context) error {
	now, err := s.listOffsets(ctx, true)
	if err != nil {
		return err
	}
	for tp := range s.availableNow {
		if _, ok := now[tp]; !ok {
			return fmt.Errorf("kafka source: [LOST_TOPIC_PARTITIONS_IN_END_OFFSET_WITH_TRIGGER_AVAILABLENOW] Some of partitions in Kafka topic(s) have been lost "+
				"during running query with Trigger.AvailableNow. The error could be transient - restart your query, and report if you still see the same issue.\n"+
				"topic-partitions for latest offset: %s, topic-partitions for end offset: %s", scalaSet(now), scalaSet(s.availableNow))
		}
	}
	for tp, end := range s.availableNow {
		if now[tp] < end {
			return fmt.Errorf("kafka source: [END_OFFSET_HAS_GREATER_OFFSET_FOR_TOPIC_PARTITION_THAN_LATEST_WITH_TRIGGER_AVAILABLENOW] Some of partitions in Kafka topic(s) "+
				"report available offset which is less than end offset during running query with Trigger.AvailableNow. The error could be transient - restart your query, "+
				"and report if you still see the same issue.\nlatest offset: %s, end offset: %s", scalaMap(now), scalaMap(s.availableNow))
		}
	}
	return nil
}

// scalaSet renders partitions as Spark's messages do: Set(t-0, t-1).
func scalaSet(o Offsets) string {
	var parts []string
	for _, tp := range partition.Offsets(o).Sorted() {
		parts = append(parts, tp.String())
	}
	return "Set(" + strings.Join(parts, ", ") + ")"
}

// scalaMap renders offsets as Spark's messages do: Map(t-0 -> 10, t-1 -> 4).
func scalaMap(o Offsets) string {
	var parts []string
	for _, tp := range partition.Offsets(o).Sorted() {
		parts = append(parts, fmt.Sprintf("%s -> %d", tp, o[tp]))
	}
	return "Map(" + strings.Join(parts, ", ") + ")"
}

// LatestOffsets implements source.LatestReporter: the subscribed
// partitions' latest offsets (the last stable offsets with
// isolation.level=read_committed) in one listing, tried once — the
// engine's sampler calls it about once a second and lives with a missed
// sample. A source draining an availableNow snapshot reports the snapshot.
func (s *Source) LatestOffsets(ctx context.Context) (partition.Offsets, error) {
	if s.availableNow != nil {
		return partition.Offsets(s.availableNow), nil
	}
	l, err := s.listOffsetsOnce(ctx, true, -1)
	if err != nil {
		return nil, s.cfg.Security.Scrub(err)
	}
	if s.grp != nil {
		s.ownedOnly(l) // lag is measured on the partitions this member owns
	}
	return partition.Offsets(l), nil
}

// PartitionOffset implements source.Partitioned.
func (s *Source) PartitionOffset(o partition.Offsets) source.Offset { return Offsets(o) }

// Commit implements source.Source. The checkpoint holds the truth; with
// sluice.commitGroup (or eventhubs.consumerGroup) set, the batch's end
// offsets are also committed to that consumer group so that lag tools see
// the query's progress. Nothing is ever read back from the group.
func (s *Source) Commit(ctx context.Context, end source.Offset) error {
	if s.grp != nil {
		e, _ := end.(Offsets)
		return s.groupCommit(ctx, e)
	}
	if s.cfg.CommitGroup == "" {
		return nil
	}
	e, _ := end.(Offsets)
	if len(e) == 0 {
		return nil
	}
	offs := kadm.Offsets{}
	for tp, off := range e {
		offs.Add(kadm.Offset{Topic: tp.Topic, Partition: tp.Partition, At: off, LeaderEpoch: -1, Metadata: "sluice"})
	}
	resp, err := s.adm.CommitOffsets(ctx, s.cfg.CommitGroup, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka source: commit offsets to group %q: %w", s.cfg.CommitGroup, s.cfg.Security.Explain(err))
	}
	return nil
}

// Metrics reports Spark's offsets-behind-latest metrics plus skipped offsets.
func (s *Source) Metrics(consumed, latest source.Offset) map[string]string {
	c, _ := consumed.(Offsets)
	l, _ := latest.(Offsets)
	m := map[string]string{}
	if len(c) == 0 || len(l) == 0 {
		return m
	}
	var sum, mx, mn int64
	first := true
	for tp, lat := range l {
		behind := lat - c[tp]
		if behind < 0 {
			behind = 0
		}
		sum += behind
		if first || behind > mx {
			mx = behind
		}
		if first || behind < mn {
			mn = behind
		}
		first = false
	}
	m["avgOffsetsBehindLatest"] = fmt.Sprintf("%.1f", float64(sum)/float64(len(l)))
	m["maxOffsetsBehindLatest"] = fmt.Sprint(mx)
	m["minOffsetsBehindLatest"] = fmt.Sprint(mn)
	if n := s.skipped.Load(); n > 0 {
		m["dataLoss"] = fmt.Sprint(n)
	}
	return m
}

// SetMemoryBudget implements source.Budgeted: the share of the budget
// admission holds back for source buffers (buffers) is split between the
// client's fetch buffers (at least 64 KiB, a partition's fetch at a
// quarter of that) and the carry of prefetched records; a record larger
// than the whole budget fails the batch.
func (s *Source) SetMemoryBudget(budget, buffers int64) {
	s.budget.Store(budget)
	if budget <= 0 {
		return
	}
	// Half of the buffer share for the client's fetch buffers, half for
	// the carry (the prefetch of the next batch).
	s.fetchCap.Store(min(int64(s.cfg.FetchMaxBytes), max(buffers/2, 64<<10)))
	s.prefetchBytes.Store(max(buffers/2, 64<<10))
	s.sizeFetches()
}

// wireHook counts the records the client fetches and their bytes on the
// wire (kgo.HookFetchBatchRead).
type wireHook struct{ s *Source }

func (h wireHook) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.s.wireRecs.Add(int64(m.NumRecords))
	h.s.wireBytes.Add(int64(m.CompressedBytes))
	// The batch as the broker measures it against a partition's fetch
	// limit: its records and its header.
	for n := int64(m.CompressedBytes + recordBatchHeader); ; {
		old := h.s.wireBatchMax.Load()
		if n <= old || h.s.wireBatchMax.CompareAndSwap(old, n) {
			break
		}
	}
}

var _ kgo.HookFetchBatchRead = wireHook{}

// recordBatchHeader is the size of a record batch's header (magic 2):
// FetchBatchMetrics.CompressedBytes counts the records only, while a
// broker compares the whole batch with a partition's fetch limit — a
// share of exactly the records' size let a response carry that batch for
// its first partition only.
const recordBatchHeader = 61

// defaultRecordBytes is the record size assumed before any was fetched
// (sizeFetches): small, so a first fetch is rather too small (one more
// round trip) than far larger than the first batch.
const defaultRecordBytes = 256

// sizeFetches sizes the client's fetches to what a batch takes: the
// prefetch limit (admission's records per batch) times the average record
// size on the wire, at least 64 KiB, at most fetchCap; a partition's share is
// that divided among the partitions the last batch read (a quarter before
// the first batch, and in group mode, where it is not measured yet), at least 16 KiB and the largest record batch fetched
// so far, at most max.partition.fetch.bytes.
// Without it a batch of 10,000 records waited for the first fetch of the
// whole backlog (up to fetch.max.bytes or half the budget's buffer share)
// before it could finish; and with a fixed quarter per partition, a first
// batch over 200 partitions (a few hundred records from each) waited until
// every partition had been fetched once at a quarter of the limit — the
// whole backlog of a topic with a few megabytes per partition. The client
// is told only when a size moves by a quarter or more.
func (s *Source) sizeFetches() {
	limit := s.fetchCap.Load()
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if recs := s.prefetchRecs.Load(); recs > 0 {
		avg := int64(defaultRecordBytes)
		if n := s.wireRecs.Load(); n > 0 {
			avg = max(s.wireBytes.Load()/n, 1)
		}
		limit = min(limit, max(recs*avg, 64<<10))
	}
	parts := s.spread.Load()
	if parts <= 0 {
		parts = 4
	}
	// Never below the largest producer batch (with an eighth to spare
	// for the next, larger one): a broker sends a batch over a
	// partition's limit for a response's first partition only.
	batchMax := s.wireBatchMax.Load()
	partMax := min(int64(s.cfg.FetchPartitionMax), max(limit/parts, 16<<10, batchMax+batchMax/8))
	if s.spread.Load() > 0 {
		// Room for every partition's share in one response: a request
		// names only the partitions whose carry is short (adjustPauses),
		// and a producer batch larger than limit/parts (a broker sends
		// batches whole) would otherwise let a response serve a partition
		// or two, and a batch wait a round trip for each of the others.
		// Twice that: the embedded broker (kfake) charges a partition's
		// next batch, which it then leaves out, against the response's
		// limit. A Kafka broker sends at most a share a partition either
		// way, so the response stays within parts × partMax, itself
		// within fetchCap whenever the doubled limit is.
		limit = min(s.fetchCap.Load(), max(limit, 2*parts*partMax))
	}
	near := func(v, set int64) bool { d := v - set; return set > 0 && d < set/4 && -d < set/4 }
	if near(limit, s.fetchSet) && near(partMax, s.partSet) && (s.partSet >= batchMax || s.partSet >= int64(s.cfg.FetchPartitionMax)) {
		return
	}
	if s.cl == nil {
		return // group mode before joining: connectGroup applies fetchSet
	}
	s.fetchSet, s.partSet = limit, partMax
	s.cl.UpdateFetchMaxBytes(int32(min(limit, 1<<30)), int32(partMax))
}

// SetPrefetchLimit implements source.Prefetcher: records is what the next
// batch may admit; each partition's carry holds its share of two such
// batches and a producer batch (carryTarget; records ≤ 0: bounded by bytes
// only). The client's fetches are sized to it too (sizeFetches).
func (s *Source) SetPrefetchLimit(records int64) {
	s.prefetchRecs.Store(max(records, 0))
	s.sizeFetches()
}

// SetParallelism implements source.Parallel: with many more partition
// ranges than workers, small ranges share tasks (coalesceRanges).
func (s *Source) SetParallelism(workers int) { s.workers = workers }

// RecordTooLargeError reports a record that cannot fit in the memory budget.
type RecordTooLargeError struct {
	Topic     string
	Partition int32
	Offset    int64
	Size      int64
	Budget    int64
}

func (e *RecordTooLargeError) Error() string {
	return fmt.Sprintf("record at topic %s partition %d offset %d is %d bytes, larger than the memory budget of %d bytes (sluice.memory.budget); raise the budget or route such records elsewhere",
		e.Topic, e.Partition, e.Offset, e.Size, e.Budget)
}

// SkippedOffsets returns how many offsets were skipped because they were
// deleted before being read (failOnDataLoss=false).
func (s *Source) SkippedOffsets() int64 { return s.skipped.Load() }

// BufferedBytes is what the client holds in fetched-but-unread buffers
// plus the carry (records fetched for later batches).
func (s *Source) BufferedBytes() int64 {
	s.fmu.Lock()
	carry, cl := s.carryTotalBytes, s.cl
	s.fmu.Unlock()
	if cl == nil {
		return carry
	}
	return cl.BufferedFetchBytes() + carry
}

// Client exposes the underlying client (tests, consumer-group commits; in
// group mode the group's client, nil before the query first needs it).
func (s *Source) Client() *kgo.Client {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.cl
}

// Close implements source.Source. In group mode closing the client leaves
// the group, so the other members take the partitions over at once.
func (s *Source) Close() error {
	s.stopFetching()
	s.stopAhead()
	s.closeWaker()
	if s.grp != nil {
		s.closeGroup()
		return nil
	}
	s.cl.Close()
	return nil
}

var (
	_ source.Partitioned       = (*Source)(nil)
	_ source.LatestReporter    = (*Source)(nil)
	_ source.PartitionedOffset = Offsets(nil)
	_ source.DataNotifier      = (*Source)(nil)
	_ source.Parallel          = (*Source)(nil)
	_ source.Prefetcher        = (*Source)(nil)
	_ source.CappedPlanner     = (*Source)(nil)
	_ source.FetchedPlanner    = (*Source)(nil)
)
