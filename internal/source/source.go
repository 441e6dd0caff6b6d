// Package source defines what the micro-batch engine needs from a data
// source: offsets it can log and replay, what is available to read, and
// parallel tasks that read one planned range.
//
// Implementations live in the sub-packages (kafka, file, socket, rate);
// each describes itself to the registry (internal/registry) as a Format:
// name, option spec, schema, replayability and constructor.
//
// The engine owns the offsets: a source never decides on its own where a
// batch starts; it is told [start, end) and must read exactly that range,
// again and again if a batch is replayed after a crash.
//
// How much a batch takes is decided by the engine's planner (package
// admission), not by the source. A source reports what is available in one
// of two ways:
//
//   - Partitioned sources (Kafka, Event Hubs), whose offsets are record
//     positions per partition, report each partition's start and latest
//     offset; the planner picks the end offsets itself.
//   - Limited sources, whose offsets are not records per partition (files
//     of a directory, whole seconds of the rate source, lines of a socket),
//     cut their own batch within the read limit the planner decided.
package source

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/partition"
)

// Offset is a source position. JSON is written as one line of the
// checkpoint's offsets/N file and must parse back with Source.ParseOffset.
// For Kafka it is Spark's {"topic":{"0":123}} map.
type Offset interface {
	JSON() string
}

// ReadLimit bounds how far one batch may advance (Spark's ReadLimit). The
// zero value means "all available".
//
// A source's options set one (LimitDefaults), which the planner applies.
// The limit the planner hands a Limited source carries only MaxRows,
// MaxFiles and MaxBytes: the other fields are applied by the planner and
// are zero there.
type ReadLimit struct {
	// MaxRows caps the records (offsets) admitted per batch; 0 = no cap.
	MaxRows int64
	// MinRows with MaxTriggerDelay delays a batch until at least MinRows
	// records are available or MaxTriggerDelay has passed since the last
	// batch (partitioned sources).
	MinRows         int64
	MaxTriggerDelay time.Duration
	// MaxRowsPerPartition, when MaxRows is 0, caps a batch at this many
	// records per partition of a partitioned source (Event Hubs' default).
	MaxRowsPerPartition int64
	// MaxFiles and MaxBytes are file-source limits; 0 = no cap.
	MaxFiles int64
	MaxBytes int64
}

// Task is one unit of parallel work in a batch: for Kafka, one
// topic-partition range. Tasks of a batch run concurrently on the worker pool.
type Task interface {
	// String names the task in logs and diagnostics, e.g. "orders-3[100,200)".
	String() string
	// Size is the planned number of records (an estimate for Kafka: compaction
	// and transaction markers can make the real count lower).
	Size() int64
}

// Emit receives the rows a task produced. The batch is owned by the callee
// once passed (see package batch).
type Emit func(ctx context.Context, b *batch.Batch) error

// Reader reads the tasks of one batch. It is created per batch by
// Source.Open and closed after all tasks have finished or the batch failed.
type Reader interface {
	Tasks() []Task
	// Read reads task t completely, calling emit for each chunk of rows, in
	// source order within the task. Read is called concurrently for
	// different tasks.
	Read(ctx context.Context, t Task, emit Emit) error
	Close() error
}

// Source is a replayable streaming source.
type Source interface {
	// Description is progress's sources[].description, e.g.
	// "KafkaV2[Subscribe[orders]]".
	Description() string
	// Schema is the fixed schema of the rows the source produces.
	Schema() batch.Schema
	// InitialOffset resolves the start position of a new query
	// (startingOffsets and friends). It is called once, when the checkpoint
	// has no batch yet; the engine logs the result.
	InitialOffset(ctx context.Context) (Offset, error)
	// ParseOffset parses what Offset.JSON wrote.
	ParseOffset(s string) (Offset, error)
	// Open prepares reading [start, end) and returns its tasks.
	Open(ctx context.Context, start, end Offset) (Reader, error)
	// Commit tells the source that everything up to end is durably processed
	// (a hint: the checkpoint is the truth).
	Commit(ctx context.Context, end Offset) error
	Close() error
}

// Partitioned is implemented by sources whose offsets are record positions
// per partition (Kafka, Event Hubs). The planner chooses each batch's end
// offsets from what Available reports; such a source never applies a read
// limit itself.
type Partitioned interface {
	Source
	// Available reports, for a batch that starts at start, where it starts
	// on every partition and how far each partition's log reaches (latest;
	// also progress latestOffset and the lag reference). from has every
	// partition of latest: partitions new since start begin at their
	// earliest offset. Checks that need the brokers happen here (data
	// loss, offsets that went backwards, vanished partitions): an error
	// stops the query, a tolerated loss is reflected in from.
	Available(ctx context.Context, start Offset) (from, latest partition.Offsets, err error)
	// PartitionOffset wraps per-partition positions as the source's Offset.
	PartitionOffset(o partition.Offsets) Offset
}

// CappedPlanner is implemented by partitioned sources that can plan a
// batch capped by a record count (maxOffsetsPerTrigger) without a round
// trip to the brokers. AvailableCapped answers as Available does, for a
// batch that will take at most need records: when the source knows of at
// least need records past start on the partitions of start (and nothing
// else changed: no partition added, gone or moved backwards), it answers
// from latest offsets it listed earlier, in the background while the
// previous batch ran; otherwise it calls Available. listedAt is when the
// latest offsets were asked for (the lag reference's time). need ≤ 0 is
// Available.
type CappedPlanner interface {
	Partitioned
	AvailableCapped(ctx context.Context, start Offset, need int64) (from, latest partition.Offsets, listedAt time.Time, err error)
	// ListedSince returns the latest offsets of the listing sent for the
	// next capped plan if it was sent at or after t and has its answer
	// already (it never waits): a look at the source taken after a batch
	// committed, for that batch's lag left behind.
	ListedSince(t time.Time) (latest partition.Offsets, at time.Time, ok bool)
}

// FetchedPlanner is implemented by partitioned sources that read ahead
// and can plan an uncapped batch of the default trigger from the latest
// offsets their fetches brought (Kafka: the high watermarks every fetch
// response carries) instead of asking the brokers again. AvailableFetched
// answers as Available does: from those latest offsets when every
// partition of start has one and a listing within a bounded age (Kafka: a
// second) showed nothing Available would act on (no partition added, gone
// or moved backwards); otherwise it calls Available.
// listedAt is when the oldest latest offset it used was seen.
type FetchedPlanner interface {
	Partitioned
	AvailableFetched(ctx context.Context, start Offset) (from, latest partition.Offsets, listedAt time.Time, err error)
}

// LatestReporter is implemented by partitioned sources that can report
// their partitions' latest offsets on their own: one cheap request (Kafka:
// one ListOffsets), no data-loss checks, no retries, nothing logged. The
// engine's latest-offset sampler calls it about once a second and at the
// end of every batch, concurrently with a running batch, so that lag,
// arrival rate and drain ETA rest on samples taken independently of
// planning. ctx carries the sample's deadline.
type LatestReporter interface {
	LatestOffsets(ctx context.Context) (partition.Offsets, error)
}

// Limited is implemented by sources whose offsets are not records per
// partition, so only they know where a batch can end: the file source
// (whole files, under maxFilesPerTrigger / maxBytesPerTrigger), the rate
// source (whole seconds) and the socket source (lines).
type Limited interface {
	Source
	// Latest returns the end offset of the next batch given where the
	// previous batch ended and the planner's limit (MaxRows, MaxFiles,
	// MaxBytes), plus the true latest offset. When there is nothing new,
	// end equals start.
	Latest(ctx context.Context, start Offset, limit ReadLimit) (end, latest Offset, err error)
}

// AvailableNow is implemented by sources that support Trigger.AvailableNow:
// PrepareAvailableNow snapshots the latest position once at start; Latest
// never returns beyond it afterwards.
type AvailableNow interface {
	PrepareAvailableNow(ctx context.Context) error
}

// Metrics is implemented by sources that report per-batch facts in
// progress sources[].metrics (Kafka: offsets behind latest, skipped offsets).
type Metrics interface {
	Metrics(consumed, latest Offset) map[string]string
}

// PartitionedOffset is implemented by offsets made of per-partition
// positions (Kafka: topic-partition → next offset), which is what per-partition
// lag needs.
type PartitionedOffset interface {
	Partitions() partition.Offsets
}

// Buffered is implemented by sources that hold fetched-but-unread data
// (bytes), reported as a memory symptom.
type Buffered interface {
	BufferedBytes() int64
}

// Budgeted is implemented by sources that bound their own buffers to a
// share of the query's memory budget and refuse records larger than it.
type Budgeted interface {
	// SetMemoryBudget is called once, before the first batch: the
	// source's buffers (fetch buffers, received lines) must stay within
	// buffers bytes, the share of the budget admission holds back for them
	// (admission.BufferShare), and no record may be larger than budget.
	SetMemoryBudget(budget, buffers int64)
}

// Pruner is implemented by sources that can skip building columns no
// transform reads (projection pruning, as Spark's optimizer does). Columns
// left out are present in each batch with their type and length but no
// data; nothing downstream may read them.
type Pruner interface {
	// SetRequiredColumns is called once, before the first batch, with the
	// names the query reads; nil means all.
	SetRequiredColumns(names []string)
}

// Waiter is implemented by sources that can be waiting on something outside
// the query (brokers unreachable, retrying): a non-empty Waiting() is shown
// as the query's status message.
type Waiter interface {
	Waiting() string
}

// RecordOverhead is implemented by sources whose records cost memory
// beyond the bytes of the columns built from them (the Kafka client's
// record structs and fetch buffers): the memory budget charges it per row.
type RecordOverhead interface {
	MemoryPerRecord() int64
}

// MetadataOwner is implemented by sources that keep their own metadata in
// the checkpoint's sources/<i> directory from file 0 on (the file source's
// seen-files log, in Spark's layout). The engine then keeps no copy of the
// initial offset there: InitialOffset must return the same offset on every
// start.
type MetadataOwner interface {
	OwnsMetadataDir()
}

// LimitDefaults is implemented by sources whose options set a default read
// limit (maxOffsetsPerTrigger...), which the planner applies. Sources
// without it read all available.
type LimitDefaults interface {
	DefaultReadLimit() ReadLimit
}

// RejectFunc receives rows a source read but could not turn into valid
// rows — a Kafka record whose timestamp is out of range, say — each with
// its reason. The rows have the source's schema; the value that could not
// be represented is null. An error fails the task.
type RejectFunc func(ctx context.Context, rows *batch.Batch, reasons []string) error

type rejectKey struct{}

// WithReject returns a context under which Reject hands rows to f. The
// engine sets it on every task's context: with a dead-letter sink the rows
// go there, otherwise the first reason fails the batch.
func WithReject(ctx context.Context, f RejectFunc) context.Context {
	return context.WithValue(ctx, rejectKey{}, f)
}

// Reject is how a Reader hands over rows it could not convert (see
// RejectFunc), from the goroutine running Read. Without a RejectFunc in
// ctx it returns an error with the first reason.
func Reject(ctx context.Context, rows *batch.Batch, reasons []string) error {
	if len(reasons) == 0 {
		return nil
	}
	if f, ok := ctx.Value(rejectKey{}).(RejectFunc); ok && f != nil {
		return f(ctx, rows, reasons)
	}
	return errors.New(reasons[0])
}

// DataNotifier is implemented by sources that can say when data arrives
// without being polled: the default trigger waits on it while the query is
// caught up, so an idle query costs (almost) nothing and the first record
// after a quiet spell starts a batch within a fetch round trip.
type DataNotifier interface {
	// WaitForData blocks until the source holds or knows of data past
	// pos (the next batch's start), and returns true then; false when
	// maxWait passed or ctx ended first.
	WaitForData(ctx context.Context, pos Offset, maxWait time.Duration) bool
}

// Parallel is implemented by sources that size their tasks to the worker
// pool; the engine tells them the pool's size before the first batch.
type Parallel interface {
	SetParallelism(workers int)
}

// Prefetcher is implemented by sources that read ahead of the batch being
// processed (the Kafka source keeps fetching the next range while a batch
// transforms and commits). The engine tells them, after planning each
// batch, how many records a batch may admit (admission's limit; 0 = no
// limit): a source keeps no more than that read ahead, besides its share
// of the memory budget (Budgeted).
type Prefetcher interface {
	SetPrefetchLimit(records int64)
}

// ErrRevoked is wrapped by the errors of a batch that lost a partition to
// a consumer-group rebalance while it ran (group mode): the batch is
// abandoned without output and the partition's new owner starts from the
// group's committed offsets. The engine plans the next batch instead of
// failing the query.
var ErrRevoked = errors.New("partitions revoked by a consumer-group rebalance; the batch is abandoned")

// GroupMember describes a member of a consumer group running one query
// over many processes (group mode).
type GroupMember struct {
	// Group is the consumer group (the source option sluice.group).
	Group string
	// Name is the member's name (sluice.group.member); MemberID is the id
	// the group coordinator gave it ("" before it joined).
	Name, MemberID string
	// Partitions are the partitions the member owns now, sorted.
	Partitions []partition.ID
}

// AsGroup returns src as a Grouped source when it runs in group mode.
func AsGroup(src Source) (Grouped, bool) {
	g, ok := src.(Grouped)
	if !ok || !g.InGroup() {
		return nil, false
	}
	return g, true
}

// Grouped is implemented by sources whose partitions are assigned by a
// consumer group (group mode). The engine then never replays a batch from
// its local checkpoint: where each partition starts is what Available
// reports (the group's committed offsets), and a batch failing with
// ErrRevoked is abandoned rather than fatal.
type Grouped interface {
	// InGroup reports whether the source runs in group mode (a source
	// type may run either way).
	InGroup() bool
	GroupMember() GroupMember
	// Abandoned is called after a batch was abandoned (ErrRevoked): where
	// the owned partitions start must be read again.
	Abandoned()
}
