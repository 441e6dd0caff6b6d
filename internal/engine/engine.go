// Package engine runs one streaming query: the micro-batch loop that plans
// a batch (what the source reports, sized by package admission's planner),
// logs it to the checkpoint before running it, runs one task per source
// range on a bounded worker pool (read → transform → sink writer), commits
// the sink, then logs the commit. On restart a batch that was logged but
// not committed is re-run with exactly its logged ranges, timestamp and
// watermark.
//
// A stateful query (Config.Stateful) runs each batch in two stages joined
// by an in-process exchange (stateful.go, exchange.go): stage-1 tasks send
// their rows to spark.sql.shuffle.partitions shuffle partitions through a
// buffer bounded by a share of the memory budget, and one stage-2 task per
// shuffle partition runs the stateful operator against that partition's
// state store (statestore.go) and writes the sink. Event-time watermarks
// (watermark.go) are computed after each batch, logged with the next one,
// and trigger no-data batches when they move.
//
// Its tests run without a broker, on the fakes in source/sourcetest,
// sink/sinktest and trigger/triggertest.
//
// The loop produces a BatchInfo of raw measurements after every batch;
// turning those into Spark-shaped progress, lag and metrics is the job of
// the observers registered in Config.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/diagnose"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/internal/watermark"
)

// Transform turns a source batch into the rows written to the sink.
// Apply is called concurrently by tasks.
type Transform interface {
	// Schema is the output schema.
	Schema() batch.Schema
	// Apply transforms one chunk; batchTime is the batch's logged timestamp
	// (what current_timestamp() returns). Rows it could not process are
	// returned as dead letters (only when the query has a dead-letter sink;
	// otherwise such a row is an error).
	Apply(b *batch.Batch, batchTime time.Time) (*batch.Batch, []DeadLetter, error)
}

// Config describes a query.
type Config struct {
	Name      string
	Source    source.Source
	Transform Transform // nil = identity
	Sink      sink.Sink
	// DeadLetter receives rows the transform could not process (nil: such
	// rows fail the batch). Its commit precedes the main sink's.
	DeadLetter    sink.Sink
	Trigger       trigger.Trigger
	CheckpointDir string
	// Storage resolves CheckpointDir when it is an object-store URI (nil:
	// the environment's credentials only).
	Storage *storage.Resolver
	// Workers bounds concurrently running tasks; 0 = runtime.NumCPU().
	Workers int
	// MinBatchesToRetain: offsets/commits kept in the checkpoint (default 100).
	MinBatchesToRetain int
	// Conf is recorded in every offsets/N file (Spark's pinned confs).
	Conf   map[string]string
	Logger *slog.Logger
	Clock  trigger.Clock
	// Observers receive lifecycle events and every batch's measurements.
	Observers []Observer
	// BeforeCommit, when set, runs after the sink committed batch N and
	// before commits/N is written. Tests use it to simulate a crash there.
	BeforeCommit func(batchID int64) error
	// BeforeCommitLog, when set, runs where commits/N is written — in the
	// background while the next batch is planned and logged, when the
	// commit is pipelined (commitLater) — just before it is. An error
	// leaves commits/N unwritten and fails the query. Tests use it to
	// simulate a crash while offsets/N+1 is being written.
	BeforeCommitLog func(batchID int64) error
	// BeforeOffsetsLog, when set, runs just before offsets/N is written
	// (in the background while the batch's tasks run, when the sinks are
	// staged: see startOffsetsLog), or before the write waits for batch
	// N−1's state commit when that runs in the background. An error
	// leaves offsets/N unwritten and fails the batch before its sink
	// commits. Tests use it to hold or fail the write.
	BeforeOffsetsLog func(batchID int64) error
	// BeforeStateCommit, when set, runs where a stateful batch's state
	// commit starts, after its sink committed (in the background beside
	// the next batch when the commit overlaps it: startStateCommit). An
	// error fails the commit, leaving the state version and commits/N
	// unwritten. Tests use it to hold or fail the commit.
	BeforeStateCommit func(batchID int64) error
	// BeforeSourceInitialLog, when set, runs just before a new
	// checkpoint's sources/0/0 (the initial offsets) is written — in the
	// background while the first batch is planned and its tasks run (see
	// startInitialLog). An error leaves sources/0/0 unwritten and fails
	// the first batch before offsets/0 is written. Tests use it to hold or
	// fail the write.
	BeforeSourceInitialLog func() error
	// BeforePurge, when set, runs in the purge goroutine before each purge
	// of old batches from the logs. Tests use it to hold a purge.
	BeforePurge func()
	// Limits are the initial admission settings. Zero Max/Min are filled
	// from the source's own options (maxOffsetsPerTrigger...); an empty
	// Mode is static; TriggerInterval comes from Trigger.
	Limits admission.Limits
	// LagSeconds, when set, reports the query's current time lag for
	// adaptive admission's maxLagSeconds.
	LagSeconds func() float64
	// RequiredColumns are the source columns the query reads (nil = all);
	// sources that can prune skip building the others.
	RequiredColumns []string
	// NoDataProgressInterval is how often an idle query reports it is idle
	// (spark.sql.streaming.noDataProgressEventInterval); 0 = 10 s.
	NoDataProgressInterval time.Duration
	// LatestSampleEvery is how often the latest offsets of a source that
	// reports them (source.LatestReporter) are sampled between batches:
	// 0 = DefaultLatestSampleEvery, negative = only at the end of each
	// batch (tests on a fake clock). Once and availableNow queries do not
	// sample: their lag is measured against the snapshot they drain.
	LatestSampleEvery time.Duration
	// Stateful is the stateful half of the physical plan (nil: a stateless
	// query, run as stage 1 alone with no exchange).
	Stateful Stateful
	// Watermarks are the query's withWatermark nodes (nil: none).
	Watermarks Watermarks
	// AsyncProgress, when set, writes the offsets and commit logs in the
	// background and only every Interval (Spark's
	// asyncProgressTrackingEnabled): at-least-once instead of exactly
	// once. See AsyncProgress.
	AsyncProgress *AsyncProgress
}

// TaskInfo measures one task.
type TaskInfo struct {
	Task    string
	Rows    int64 // rows read from the source
	Bytes   int64 // bytes read (batch.ByteSize of the source chunks)
	OutRows int64 // rows written to the sink
	// DeadLetters counts rows routed to the dead-letter sink.
	DeadLetters int64
	Duration    time.Duration
	// Where the task's time went: waiting for the source, evaluating
	// expressions, writing to the sink (Write and Close), and opening the
	// writer.
	Fetch, Transform, Sink, Setup time.Duration
	// Store is the part of Sink spent waiting for the sink's storage
	// (uploads to an object store, disk writes), for sinks that measure it
	// (sink.StoreTimer).
	Store time.Duration
}

// BatchInfo is what one executed batch measured.
type BatchInfo struct {
	BatchID      int64
	Replayed     bool
	TriggerStart time.Time
	// IntendedStart is when the trigger wanted the batch to start
	// (scheduling delay = TriggerStart − IntendedStart).
	IntendedStart time.Time
	// TriggerInterval is the processingTime interval (0 otherwise).
	TriggerInterval time.Duration
	// BatchTimestamp is the logged batch time (current_timestamp()).
	BatchTimestamp time.Time
	Start, End     source.Offset // End also = offsets/N
	// Latest is the latest offset the batch was planned against (progress
	// latestOffset, as in Spark).
	Latest source.Offset
	// LatestAfter is the latest offset sampled right after the batch
	// committed (nil when the source reports none or did not answer in
	// time), and LatestAfterAt when it was asked: the lag the batch left.
	LatestAfter   source.Offset
	LatestAfterAt time.Time
	NumInputRows  int64
	InputBytes    int64
	NumOutputRows int64
	// NumDeadLetters counts rows routed to the dead-letter sink.
	NumDeadLetters int64
	Durations      map[string]time.Duration // Spark's durationMs keys
	Tasks          []TaskInfo
	Workers        int
	SourceMetrics  map[string]string
	// Admission is how the batch's size was decided (package admission).
	Admission admission.Decision
	// Diagnosis names what limited the batch.
	Diagnosis diagnose.Result

	// NoData marks a batch run without new input because the watermark
	// moved (Spark's no-data batch).
	NoData bool
	// WatermarkMs is the event-time watermark the batch used (offsets/N
	// batchWatermarkMs); NextWatermarkMs the one computed after it
	// (commits/N nextBatchWatermarkMs).
	WatermarkMs, NextWatermarkMs int64
	// EventTime is set when the query has a watermark.
	EventTime *EventTimeInfo
	// StateOperators are the stateful operators' figures, downstream first
	// (Spark's order).
	StateOperators []StateOperatorInfo
	// ShuffleTasks measure the stage-2 tasks (one per shuffle partition)
	// of a stateful query; Tasks are then the stage-1 tasks.
	ShuffleTasks []TaskInfo
	// Group is the consumer-group member that ran the batch and the
	// partitions it owned when the batch was planned (group mode; nil
	// otherwise).
	Group *source.GroupMember
}

// Observer receives the query's events. Methods are called from the query
// goroutine and must not block for long.
type Observer interface {
	QueryStarted(q *Query)
	// OffsetsObserved is called after every trigger's look at the source's
	// latest offsets, batch or not, and for every sample of the
	// latest-offset sampler (about once a second and at every batch end):
	// lag, arrival rate and drain ETA rest on these. Samples are taken
	// from the sampler's own goroutine, concurrently with the other
	// methods, and may arrive out of time order.
	OffsetsObserved(q *Query, latest source.Offset, at time.Time)
	BatchCompleted(q *Query, info *BatchInfo)
	// Idle is called after a trigger that ran no batch, at most once per
	// Config.NoDataProgressInterval: after the first such trigger of the
	// run, then every interval while the query stays idle (an executed
	// batch restarts the interval), as Spark reports idleness.
	Idle(q *Query, info *IdleInfo)
	QueryTerminated(q *Query, err error)
}

// NopObserver is an Observer that ignores every event. Embed it in an
// observer that cares about a few events and define only those methods.
type NopObserver struct{}

func (NopObserver) QueryStarted(*Query)                              {}
func (NopObserver) OffsetsObserved(*Query, source.Offset, time.Time) {}
func (NopObserver) BatchCompleted(*Query, *BatchInfo)                {}
func (NopObserver) Idle(*Query, *IdleInfo)                           {}
func (NopObserver) QueryTerminated(*Query, error)                    {}

// IdleInfo describes a trigger that found nothing to run, for an idle
// progress report (Spark's no-execution progress).
type IdleInfo struct {
	TriggerStart time.Time
	// Durations has Spark's keys of an idle trigger: latestOffset and
	// triggerExecution.
	Durations map[string]time.Duration
	// Position is where the query stands (the trigger's start and end
	// offset); Latest what the source reported.
	Position, Latest source.Offset
	// LastBatchID is the last executed batch, -1 for none.
	LastBatchID int64
	// First is true for the first idle report of a run that has executed
	// no batch yet: Spark records it as progress but posts no idle event.
	First bool
}

// Status is the query's current activity, Spark's StreamingQueryStatus.
type Status struct {
	Message         string `json:"message"`
	IsDataAvailable bool   `json:"isDataAvailable"`
	IsTriggerActive bool   `json:"isTriggerActive"`
}

// Query is a running query.
type Query struct {
	cfg   Config
	log   *slog.Logger
	cp    *checkpoint.Checkpoint
	runID string

	// cancel ends everything, the running batch included (Stop, or the
	// end of StopGracefully's wait); soft only stops admission: no new
	// trigger starts, a planned batch is not run, a running one finishes
	// (StopGracefully). hardCtx is what a logged batch runs under.
	cancel  context.CancelFunc
	soft    context.CancelFunc
	hardCtx context.Context
	done    chan struct{}
	err     error
	// failed is the error of a batch that failed on its own while a
	// graceful stop was under way (the trigger loop treats errors after
	// a stop request as the stop).
	failed error
	// running is the id of the batch being executed, -1 between batches.
	running atomic.Int64
	// stopRequested is set by StopGracefully.
	stopRequested atomic.Bool

	sampler *sampler // nil: the source does not report latest offsets alone

	mu     sync.Mutex
	status Status

	// Loop state, owned by the query goroutine.
	attempt    attempt // the last trigger that planned without running
	nextBatch  int64
	start      source.Offset
	replay     bool
	lastLatest source.Offset
	intended   time.Time
	history    admission.History

	limits admission.Limits // guarded by mu
	// sinkReserve is the memory the sinks hold back from the budget for
	// their own buffers (sink.Budgeted).
	sinkReserve int64
	// stateReserve is the memory a stateful query's state stores and
	// exchange hold back from the budget (stateReservation).
	stateReserve int64
	// stateBytes and stateRows are the memory state stores' size after the
	// last committed batch (stateMeasured: one committed in this run).
	stateBytes, stateRows int64
	stateMeasured         bool
	// stateGrowth is what the last batch's state may have added while its
	// commit runs in the background (startStateCommit): admission counts it
	// until the commit's measurement is applied. stateCommit is that
	// commit (nil: none in flight). Owned by the query goroutine.
	stateGrowth int64
	stateCommit *stateCommitJob

	// Stateful queries: the conf pinned by the checkpoint, the watermark
	// tracker, the watermark the last executed batch used, and the state
	// stores.
	conf       map[string]string
	settings   settings
	tracker    *watermark.Tracker
	lastUsedWm int64
	ranBatch   bool
	states     *stateStores
	// From the checkpoint at start.
	pinned      map[string]string
	hasPinned   bool
	recoveredWm int64

	batchesDone atomic.Int64

	// progressAt is the last sign of progress (UnixNano, engine clock): a
	// status change or rows read; see Activity.
	progressAt atomic.Int64
	// caughtUp: the last look at the source found nothing new to read.
	caughtUp atomic.Bool
	// limitsChanged is signalled by SetLimits: an event-driven wait for
	// data ends, so a new trigger interval applies at once.
	limitsChanged chan struct{}
	// waitingForData is true while the default trigger waits on the
	// source (waitForData); the sampler skips its ticks then.
	waitingForData atomic.Bool
	// ended: the query has stopped running batches (it is shutting down or
	// has terminated).
	ended atomic.Bool
	// pending is the executed batch whose commits/N is being written while
	// the next batch is planned and logged (pipelined commit, see
	// commitLater); nil otherwise. Owned by the query goroutine.
	pending *pendingCommit
	// wal is the running batch's offsets/N write when it overlaps the
	// batch's tasks (startOffsetsLog); nil otherwise. Owned by the query
	// goroutine.
	wal *offsetsWrite
	// initial is a new checkpoint's sources/0/0 write (startInitialLog);
	// nil when the file existed or was written before the query started.
	// Set before the query goroutine starts, read-only afterwards.
	initial *initialLog
	// purger deletes old batches from the logs in the background.
	purger *purger
	// async is the asynchronous progress tracking state (nil: off).
	async *asyncState
	// sinkJumpTo is the batch id the query continues at after a replay
	// when a crash under asynchronous progress tracking left the sink
	// ahead of the logs: one past the sink's last committed batch (0: no
	// jump).
	sinkJumpTo int64
}

// attempt is what a trigger that ran no batch measured.
type attempt struct {
	start  time.Time
	asked  time.Duration
	latest source.Offset
}

// DefaultNoDataProgressInterval is Spark's
// spark.sql.streaming.noDataProgressEventInterval.
const DefaultNoDataProgressInterval = 10 * time.Second

// Activity is what the query is doing right now, for a watchdog that tells
// a busy query from a stuck one (the monitor's health).
type Activity struct {
	// Active: a trigger attempt is in progress (planning or running a
	// batch); false between triggers and after termination.
	Active bool
	// Step is the engine's status message, e.g. "Getting offsets from
	// KafkaV2[Subscribe[orders]]".
	Step string
	// Waiting is the source's explanation when it is waiting for something
	// outside the query (unreachable brokers), else "".
	Waiting string
	// Since is the last sign of progress: the start of the current step of
	// the attempt, or the last rows read.
	Since time.Time
	// CaughtUp reports that the last look at the source found its latest
	// position equal to where the query stands: nothing to read.
	CaughtUp bool
	// Ended reports that the query has stopped running batches: it is
	// shutting down or has terminated.
	Ended bool
	// WaitingForData reports that the default trigger waits on the
	// source for data to arrive (the query is caught up and idle).
	WaitingForData bool
}

// Activity returns what the query is doing now. It is safe to call from
// any goroutine.
func (q *Query) Activity() Activity {
	q.mu.Lock()
	st := q.status
	q.mu.Unlock()
	a := Activity{Active: st.IsTriggerActive, Step: st.Message, Since: time.Unix(0, q.progressAt.Load()),
		CaughtUp: q.caughtUp.Load(), Ended: q.ended.Load(), WaitingForData: q.waitingForData.Load()}
	if w, ok := q.cfg.Source.(source.Waiter); ok && a.Active {
		a.Waiting = w.Waiting()
	}
	return a
}

// Logger is the query's logger (its records carry the query id).
func (q *Query) Logger() *slog.Logger { return q.log }

// ID is the query id stored in the checkpoint (stable across restarts).
func (q *Query) ID() string { return q.cp.ID() }

// RunID is new for every start.
func (q *Query) RunID() string { return q.runID }

// Name is the query name ("" if unset).
func (q *Query) Name() string { return q.cfg.Name }

// Config returns the query's configuration.
func (q *Query) Config() *Config { return &q.cfg }

// Checkpoint returns the query's checkpoint.
func (q *Query) Checkpoint() *checkpoint.Checkpoint { return q.cp }

// Status returns the current status. While the source waits on something
// outside the query (e.g. unreachable brokers) the message says so.
func (q *Query) Status() Status {
	q.mu.Lock()
	st := q.status
	q.mu.Unlock()
	if w, ok := q.cfg.Source.(source.Waiter); ok && st.IsTriggerActive {
		if msg := w.Waiting(); msg != "" {
			st.Message = msg
		}
	}
	return st
}

func (q *Query) setStatus(msg string, dataAvailable, active bool) {
	q.progressAt.Store(q.cfg.Clock.Now().UnixNano())
	q.mu.Lock()
	q.status = Status{Message: msg, IsDataAvailable: dataAvailable, IsTriggerActive: active}
	q.mu.Unlock()
}

// loggerSetter is implemented by sinks that log (file, Delta).
type loggerSetter interface{ SetLogger(*slog.Logger) }

// Start opens the checkpoint, recovers the position and runs the query in a
// goroutine until ctx is cancelled, Stop is called, a once/availableNow
// trigger finishes, or a batch fails.
func Start(ctx context.Context, cfg Config) (*Query, error) {
	if cfg.Source == nil || cfg.Sink == nil {
		return nil, errors.New("engine: a query needs a source and a sink")
	}
	_, partitioned := cfg.Source.(source.Partitioned)
	_, limited := cfg.Source.(source.Limited)
	if !partitioned && !limited {
		return nil, fmt.Errorf("engine: source %s implements neither source.Partitioned nor source.Limited", cfg.Source.Description())
	}
	if cfg.CheckpointDir == "" {
		return nil, errors.New(`engine: option "checkpointLocation" is required`)
	}
	if g, ok := source.AsGroup(cfg.Source); ok && cfg.Stateful != nil {
		return nil, fmt.Errorf("engine: stateful queries (aggregations, deduplication, joins with state) are not supported in group mode yet (source option \"sluice.group\" = %q): run the query in one process, without sluice.group", g.GroupMember().Group)
	}
	if err := asyncRefusal(&cfg); err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.MinBatchesToRetain <= 0 {
		cfg.MinBatchesToRetain = checkpoint.DefaultMinBatchesToRetain
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = trigger.RealClock
	}
	if cfg.Trigger.Kind == trigger.ProcessingTime {
		if err := trigger.CheckInterval(cfg.Trigger.Interval); err != nil {
			return nil, fmt.Errorf("trigger processingTime: %w", err)
		}
	}
	cp, err := checkpoint.Open(cfg.CheckpointDir, checkpoint.WithResolver(cfg.Storage))
	if err != nil {
		return nil, err
	}
	q := &Query{cfg: cfg, cp: cp, runID: storage.NewUUID(), done: make(chan struct{}), limitsChanged: make(chan struct{}, 1)}
	if cfg.AsyncProgress != nil {
		q.async = &asyncState{cfg: *cfg.AsyncProgress, logged: -1}
	}
	var defaults source.ReadLimit
	if d, ok := cfg.Source.(source.LimitDefaults); ok {
		defaults = d.DefaultReadLimit()
	}
	q.limits = cfg.Limits.WithSourceDefaults(defaults)
	if cfg.Trigger.Kind == trigger.ProcessingTime {
		q.limits.TriggerInterval = cfg.Trigger.Interval
	}
	if p, ok := cfg.Source.(source.Pruner); ok && cfg.RequiredColumns != nil && cfg.DeadLetter == nil {
		p.SetRequiredColumns(cfg.RequiredColumns) // dead letters carry whole input rows: no pruning then
	}
	if b, ok := cfg.Source.(source.Budgeted); ok && q.limits.MemoryBudget > 0 {
		b.SetMemoryBudget(q.limits.MemoryBudget, admission.BufferShare(q.limits.MemoryBudget))
	}
	if p, ok := cfg.Source.(source.Parallel); ok {
		p.SetParallelism(cfg.Workers) // many small partition ranges share tasks
	}
	if q.limits.MemoryBudget > 0 {
		for _, sk := range []sink.Sink{cfg.Sink, cfg.DeadLetter} {
			if b, ok := sk.(sink.Budgeted); ok {
				q.sinkReserve += b.SetMemoryBudget(q.limits.MemoryBudget)
			}
		}
	}
	q.log = cfg.Logger.With("query", q.ID())
	for _, s := range []any{cfg.Sink, cfg.DeadLetter} {
		if l, ok := s.(loggerSetter); ok {
			l.SetLogger(q.log) // sinks log with the query id, where the query logs
		}
	}
	q.setStatus("Initializing sources", false, false)
	if err := q.recover(ctx); err != nil {
		q.awaitInitialLog()
		cp.Close()
		return nil, err
	}
	if err := q.initStateful(); err != nil {
		q.awaitInitialLog()
		cp.Close()
		return nil, err
	}
	for _, o := range cfg.Observers {
		o.QueryStarted(q)
	}
	hctx, cancel := context.WithCancel(ctx)
	sctx, soft := context.WithCancel(hctx)
	q.hardCtx, q.cancel, q.soft = hctx, cancel, soft
	q.running.Store(-1)
	q.purger = startPurger(cp, cfg.MinBatchesToRetain, cfg.BeforePurge, func(err error) { q.log.Warn("purging old checkpoint batches", "err", err) })
	if q.async != nil {
		q.async.log = startAsyncLog()
	}
	if q.sampler = newSampler(q); q.sampler != nil {
		q.sampler.start(sctx)
	}
	go q.run(sctx)
	return q, nil
}

// recover reads the checkpoint: where the next batch starts and whether the
// last logged batch must be re-run.
func (q *Query) recover(ctx context.Context) error {
	var (
		next, prev int64
		replay     bool
		err        error
	)
	if q.async != nil {
		next, replay, prev, err = q.cp.RecoverGaps()
	} else {
		next, replay, err = q.cp.Recover()
		prev = next - 1
	}
	if errors.Is(err, checkpoint.ErrCommitLag) {
		q.log.Warn(err.Error())
		err = nil
	}
	if err != nil {
		return fmt.Errorf("recover checkpoint %s: %w", q.cp.Dir(), err)
	}
	q.nextBatch, q.replay = next, replay
	if _, grouped := source.AsGroup(q.cfg.Source); grouped {
		// Group mode: the group's committed offsets say where each
		// partition starts; a batch this member logged but did not commit
		// may since belong to another member. Never replayed; its
		// offsets/N is written once, so the next batch takes the next id
		// (as after a batch a rebalance abandoned).
		if q.replay {
			q.log.Info("group mode: the last logged batch was not committed; it is not replayed (the group's offsets say where each partition starts)", "batch", q.nextBatch)
			q.nextBatch++
		}
		q.replay = false
	}
	var initial string
	ok := false
	if _, owner := q.cfg.Source.(source.MetadataOwner); !owner {
		if initial, ok, err = q.cp.ReadSourceInitial(0); err != nil {
			return err
		}
	}
	var initOff source.Offset
	if ok {
		if initOff, err = q.cfg.Source.ParseOffset(initial); err != nil {
			return fmt.Errorf("checkpoint %s: source initial offsets: %w", q.cp.Dir(), err)
		}
	} else {
		if initOff, err = q.cfg.Source.InitialOffset(ctx); err != nil {
			return fmt.Errorf("resolve starting offsets: %w", err)
		}
		if _, owner := q.cfg.Source.(source.MetadataOwner); !owner {
			if next == 0 && !replay && q.async == nil {
				q.startInitialLog(initOff.JSON())
			} else if err := q.cp.WriteSourceInitial(0, initOff.JSON()); err != nil {
				return err
			}
		}
	}
	// The conf pinned by the checkpoint: the newest offsets file's.
	if latest, ok, err := q.cp.LatestOffsets(); err != nil {
		return err
	} else if ok {
		meta, _, err := q.cp.ReadOffsets(latest)
		if err != nil {
			return err
		}
		q.pinned = meta.Conf
		q.hasPinned = true
	}
	if err := q.asyncJump(ctx); err != nil {
		return err
	}
	// The start of the next batch is the end of the one before it (with
	// asynchronous progress tracking: the one logged before it).
	if prev < 0 {
		q.start = initOff
		return nil
	}
	prevMeta, offs, err := q.cp.ReadOffsets(prev)
	if err != nil {
		return err
	}
	// The watermark: what the last batch used, raised to what its commit
	// computed (Spark's populateStartOffsets).
	q.recoveredWm, q.lastUsedWm, q.ranBatch = prevMeta.WatermarkMs, prevMeta.WatermarkMs, true
	if q.cp.HasCommit(prev) {
		next, err := q.cp.ReadCommit(prev)
		if err != nil {
			return err
		}
		q.recoveredWm = max(q.recoveredWm, next)
	}
	if len(offs) != 1 {
		return fmt.Errorf("checkpoint %s: offsets/%d has %d source lines, this query has 1 source", q.cp.Dir(), prev, len(offs))
	}
	if q.start, err = q.cfg.Source.ParseOffset(offs[0]); err != nil {
		return fmt.Errorf("checkpoint %s: offsets/%d: %w", q.cp.Dir(), prev, err)
	}
	return nil
}

// Stop stops the query at once, abandoning the running batch, and waits
// for it. A batch cut short is re-run on the next start with exactly its
// logged offsets.
func (q *Query) Stop() error {
	q.cancel()
	<-q.done
	return q.err
}

// ErrBatchAbandoned is returned (wrapped) by StopGracefully when its
// deadline passed before the running batch committed: the batch was
// abandoned and re-runs from the checkpoint on the next start.
var ErrBatchAbandoned = errors.New("the running batch was abandoned; it re-runs from the checkpoint on the next start")

// StopGracefully stops admitting — no new trigger starts, and a batch
// planned but not yet logged is dropped — lets the running batch finish
// and commit, and waits for the query to end. If ctx ends first, the batch
// is abandoned as Stop does and the error wraps ErrBatchAbandoned. What
// happened is logged. It returns the query's own failure otherwise (nil
// for a clean stop).
func (q *Query) StopGracefully(ctx context.Context) error {
	if !q.stopRequested.Swap(true) {
		if id := q.running.Load(); id >= 0 {
			q.log.Info("stop requested: no new batches; finishing the running batch", "batch", id)
		} else {
			q.log.Info("stop requested: no new batches")
		}
	}
	q.soft()
	select {
	case <-q.done:
		if q.err == nil {
			q.log.Info("stopped", "lastCommittedBatch", q.nextBatch-1)
		}
		return q.err
	case <-ctx.Done():
	}
	id := q.running.Load()
	q.cancel()
	<-q.done
	if id < 0 {
		return q.err
	}
	q.log.Warn("stop timed out while a batch was running: abandoned it; it re-runs from the checkpoint on the next start",
		"batch", id, "cause", context.Cause(ctx))
	return fmt.Errorf("batch %d: %w", id, ErrBatchAbandoned)
}

// Done is closed when the query has terminated.
func (q *Query) Done() <-chan struct{} { return q.done }

// AwaitTermination waits until the query terminates and returns its error
// (nil for a requested stop or a finished once/availableNow query).
func (q *Query) AwaitTermination(ctx context.Context) error {
	select {
	case <-q.done:
		return q.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exception returns the error the query terminated with, if any.
func (q *Query) Exception() error {
	select {
	case <-q.done:
		return q.err
	default:
		return nil
	}
}

// BatchesCompleted counts batches completed by this run.
func (q *Query) BatchesCompleted() int64 { return q.batchesDone.Load() }

func (q *Query) run(ctx context.Context) {
	defer close(q.done)
	err := q.loop(ctx)
	// A batch whose commit log was still in flight is completed and
	// reported, whatever ended the loop.
	if perr := q.finishPending(nil); err == nil {
		err = perr
	}
	// A new checkpoint's sources/0/0 is on disk before the checkpoint
	// closes, also when no batch ran.
	if ierr := q.awaitInitialLog(); err == nil {
		err = ierr
	}
	if err == nil && q.failed != nil {
		err = q.failed
	}
	if q.async != nil {
		if aerr := q.asyncClose(err == nil); err == nil {
			err = aerr
		}
	}
	q.sampler.stopAndWait()
	q.ended.Store(true)
	if err != nil {
		q.log.Error("query terminated with error", "err", err)
		q.setStatus("Terminated with exception: "+err.Error(), false, false)
	} else {
		q.setStatus("Stopped", false, false)
	}
	q.err = err
	_, grouped := source.AsGroup(q.cfg.Source)
	if grouped {
		// Group mode: the sink may produce through the source's group
		// client; it ends its transaction before the source leaves the
		// group.
		if cerr := q.cfg.Sink.Close(); cerr != nil && q.err == nil {
			q.err = fmt.Errorf("close sink: %w", cerr)
		}
	}
	if cerr := q.cfg.Source.Close(); cerr != nil && err == nil {
		q.log.Warn("closing source", "err", cerr)
	}
	if cerr := q.cfg.Sink.Close(); !grouped && cerr != nil && q.err == nil {
		q.err = fmt.Errorf("close sink: %w", cerr)
	}
	if q.cfg.DeadLetter != nil {
		if cerr := q.cfg.DeadLetter.Close(); cerr != nil && q.err == nil {
			q.err = fmt.Errorf("close dead-letter sink: %w", cerr)
		}
	}
	if q.states != nil {
		if cerr := q.states.close(); cerr != nil && q.err == nil {
			q.err = fmt.Errorf("close state stores: %w", cerr)
		}
	}
	q.purger.stop()
	q.cp.Close()
	for _, o := range q.cfg.Observers {
		o.QueryTerminated(q, q.err)
	}
}

func (q *Query) loop(ctx context.Context) error {
	t := q.cfg.Trigger
	if t.Kind == trigger.AvailableNow {
		if an, ok := q.cfg.Source.(source.AvailableNow); ok {
			if err := an.PrepareAvailableNow(ctx); err != nil {
				return fmt.Errorf("prepare availableNow: %w", err)
			}
		} else {
			q.log.Warn(fmt.Sprintf("source [%s] does not support Trigger.AvailableNow. Falling back to single batch execution.", q.cfg.Source.Description()))
			t = trigger.Trigger{Kind: trigger.Once}
		}
	}
	once := t.Kind == trigger.Once
	if l := q.Limits(); once && (l.MaxOffsetsPerTrigger > 0 || l.MinOffsetsPerTrigger > 0) {
		q.log.Warn("The read limit is ignored when Trigger.Once is used.")
	}
	current := q.currentTrigger
	if t.Kind != q.cfg.Trigger.Kind {
		current = func() trigger.Trigger { return t }
	}
	every := q.cfg.NoDataProgressInterval
	if every <= 0 {
		every = DefaultNoDataProgressInterval
	}
	var lastIdle time.Time // zero: no idle report and no batch in this run yet
	notifier, _ := q.cfg.Source.(source.DataNotifier)
	// wokeEmpty: a wait said data had arrived but the next plan found
	// none to run; the trigger polls with back-off until a batch runs
	// again, so a source that keeps saying so cannot spin the loop.
	wokeEmpty, woke := false, false
	return trigger.RunDynamic(ctx, current, q.cfg.Clock, q.log, func(ctx context.Context, intended time.Time) (trigger.Result, error) {
		q.intended = intended
		if q.replay {
			q.replay = false
			if err := q.runBatch(q.hardCtx, q.nextBatch, true); err != nil {
				q.noteFailure(err)
				return trigger.Result{}, err
			}
			if q.sinkJumpTo > q.nextBatch {
				q.log.Warn("async progress tracking: the sink committed batches the logs do not record; new batches continue after the sink's last", "batch", q.sinkJumpTo)
				q.nextBatch = q.sinkJumpTo
			}
			lastIdle = q.cfg.Clock.Now()
			// Once re-runs only the uncommitted batch, as Spark does.
			return trigger.Result{Ran: true, Done: t.Kind == trigger.Once}, nil
		}
		ran, err := q.planAndRun(ctx, once)
		if err != nil {
			return trigger.Result{}, err
		}
		if k := current().Kind; k != trigger.Default && k != trigger.AvailableNow {
			// The next trigger does not follow at once (the trigger
			// changed, or Once): report the batch now.
			if err := q.finishPending(nil); err != nil {
				return trigger.Result{}, err
			}
		}
		if ran {
			wokeEmpty = false
		} else if woke {
			wokeEmpty = true
		}
		woke = false
		now := q.cfg.Clock.Now()
		switch {
		case ran:
			lastIdle = now
		case ctx.Err() == nil && (lastIdle.IsZero() || now.Sub(lastIdle) >= every):
			info := &IdleInfo{TriggerStart: q.attempt.start, Position: q.start, Latest: q.attempt.latest, LastBatchID: q.nextBatch - 1,
				First: lastIdle.IsZero(), Durations: map[string]time.Duration{"latestOffset": q.attempt.asked, "triggerExecution": now.Sub(q.attempt.start)}}
			lastIdle = now
			for _, o := range q.cfg.Observers {
				o.Idle(q, info)
			}
		}
		if !ran && notifier != nil && !wokeEmpty && q.caughtUp.Load() && ctx.Err() == nil && q.currentTrigger().Kind == trigger.Default {
			// Event-driven default trigger: wait until the source has
			// data past the position, at most until the next idle report
			// is due; a limits change (a trigger interval) ends the wait.
			wait := every
			if !lastIdle.IsZero() {
				wait = every - q.cfg.Clock.Now().Sub(lastIdle)
			}
			woke = q.waitForData(ctx, notifier, max(wait, trigger.IdleMinPoll))
			return trigger.Result{Waited: true}, nil
		}
		return trigger.Result{Ran: ran}, nil
	})
}

// waitForData blocks until notifier has data past the query's position,
// maxWait passes, ctx ends or the limits change (SetLimits).
func (q *Query) waitForData(ctx context.Context, notifier source.DataNotifier, maxWait time.Duration) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-q.limitsChanged:
			cancel()
		case <-wctx.Done():
		}
	}()
	q.setStatus("Waiting for data to arrive", false, false)
	q.waitingForData.Store(true)
	defer q.waitingForData.Store(false)
	return notifier.WaitForData(wctx, q.start, maxWait)
}

// lostEverything reports an end offset with no partitions after a start
// with some (every topic deleted): such a batch reads nothing and must not
// be logged, since an empty offset would lose the positions.
func lostEverything(start, end source.Offset) bool {
	st, ok1 := start.(source.PartitionedOffset)
	en, ok2 := end.(source.PartitionedOffset)
	return ok1 && ok2 && len(en.Partitions()) == 0 && len(st.Partitions()) > 0
}

// noteFailure keeps the error of a logged batch that failed on its own
// (not by a hard stop) after a graceful stop was requested, which the
// trigger loop would otherwise take for the stop. Planning errors are not
// kept: planning runs under the context a graceful stop cancels.
func (q *Query) noteFailure(err error) {
	if q.stopRequested.Load() && q.hardCtx.Err() == nil {
		q.failed = err
	}
}

// planAndRun plans the next batch and runs it; false when there is no new
// data. ctx ends when admission stops (StopGracefully): a batch planned
// then is dropped before it is logged. A logged batch runs under the
// query's hard context, so a graceful stop lets it finish.
func (q *Query) planAndRun(ctx context.Context, once bool) (bool, error) {
	triggerStart := q.cfg.Clock.Now()
	q.setStatus(fmt.Sprintf("Getting offsets from %s", q.cfg.Source.Description()), false, true)
	end, latest, ainfo, asked, listedAt, err := q.plan(ctx, once)
	if err != nil {
		return false, errors.Join(fmt.Errorf("batch %d: get latest offsets: %w", q.nextBatch, err), q.finishPending(nil))
	}
	planning := q.cfg.Clock.Now().Sub(triggerStart) - asked
	q.attempt = attempt{start: triggerStart, asked: asked, latest: latest}
	q.lastLatest = latest
	q.caughtUp.Store(latest.JSON() == q.start.JSON())
	// observed is when the latest offsets were asked for: the trigger's
	// start, or earlier when the plan used a listing sent while the
	// previous batch ran (source.CappedPlanner).
	observed := triggerStart
	if !listedAt.IsZero() && listedAt.Before(triggerStart) {
		observed = listedAt
	}
	for _, o := range q.cfg.Observers {
		o.OffsetsObserved(q, latest, observed)
	}
	// A batch left in flight (commitLater) has committed its sink: the
	// latest offsets just listed are the lag it left (its progress's
	// LatestAfter), so no batch-end sample is taken for it.
	afterPrev := &attempt{start: observed, latest: latest}
	noData := false
	if end.JSON() == q.start.JSON() || lostEverything(q.start, end) {
		if once || end.JSON() != q.start.JSON() || !q.needsNoDataBatch() {
			if err := q.finishPending(afterPrev); err != nil {
				return false, err
			}
			q.setStatus("Waiting for data to arrive", false, false)
			return false, nil
		}
		noData = true // the watermark moved: evict and emit without new input
	}
	if ctx.Err() != nil { // stopping: admit nothing more
		return false, q.finishPending(afterPrev)
	}
	id := q.nextBatch
	q.running.Store(id) // in flight from its log entry on
	q.setStatus("Writing offsets to log", true, true)
	walStart := q.cfg.Clock.Now()
	conf := ainfo.Conf()
	for k, v := range q.conf {
		conf[k] = v
	}
	if q.async != nil {
		// Marks the logs as written by asynchronous progress tracking, so
		// that a run with it turned off still checks for a sink ahead of them.
		conf[asyncMarkerConf] = "true"
	}
	meta := checkpoint.BatchMetadata{TimestampMs: walStart.UnixMilli(), Conf: conf, WatermarkMs: q.tracker.Global()}
	info := &BatchInfo{
		BatchID: id, TriggerStart: triggerStart, BatchTimestamp: time.UnixMilli(meta.TimestampMs),
		Start: q.start, End: end, Latest: latest, Admission: ainfo, NoData: noData, WatermarkMs: meta.WatermarkMs,
		Durations: map[string]time.Duration{"latestOffset": asked, "queryPlanning": planning},
	}
	if q.async != nil {
		// Asynchronous progress tracking: offsets/N is queued (or not
		// written at all) and the batch does not wait for it.
		q.async.meta = meta
		if _, err := q.asyncLogOffsets(id, meta, end, walStart); err != nil {
			q.running.Store(-1)
			return false, err
		}
		info.Durations["walCommit"] = q.cfg.Clock.Now().Sub(walStart)
		if err := q.execute(q.hardCtx, info, false); err != nil {
			q.noteFailure(err)
			return false, err
		}
		return true, nil
	}
	// offsets/N is written while commits/N-1 may still be in flight
	// (commitLater), and with staged sinks while batch N's tasks run
	// (startOffsetsLog); batch N's sink commits only after both are
	// durable.
	q.startOffsetsLog(id, meta, end, walStart, afterPrev)
	if !q.stagedOutput() {
		if err := q.awaitOffsetsLog(info); err != nil {
			q.running.Store(-1)
			return false, err
		}
	} else {
		// The write goroutine would otherwise wait on this P's run queue
		// until the batch's tasks end (runTasks' helper worker takes its
		// place as the next to run), and only then start the log write
		// the batch then waits for: tasks, a scheduling delay and the
		// write one after the other. Yielding lets it reach its first
		// fsync at once; this goroutine goes on on the other P (woken) or
		// on this one once the write blocks in the kernel.
		runtime.Gosched()
	}
	if g, ok := source.AsGroup(q.cfg.Source); ok {
		m := g.GroupMember()
		info.Group = &m
	}
	err = q.execute(q.hardCtx, info, q.canPipeline(ctx, info))
	if werr := q.awaitOffsetsLog(info); werr != nil { // when execute failed before waiting
		err = errors.Join(err, werr)
	}
	if err != nil {
		if _, grouped := source.AsGroup(q.cfg.Source); grouped && errors.Is(err, source.ErrRevoked) && q.hardCtx.Err() == nil {
			// A rebalance overtook the batch: nothing of it was
			// committed; the partitions' owners go on from the group's
			// offsets. The next batch has the next id (offsets/N is
			// written once).
			q.log.Info("batch abandoned: a consumer-group rebalance took some of its partitions", "batch", id, "cause", err)
			q.cfg.Source.(source.Grouped).Abandoned()
			q.nextBatch = id + 1
			q.setStatus("Waiting for next trigger", false, false)
			return false, nil
		}
		q.noteFailure(err)
		return false, err
	}
	return true, nil
}

// runBatch re-runs a logged batch (after a crash) with its logged offsets
// and timestamp.
func (q *Query) runBatch(ctx context.Context, id int64, replay bool) error {
	triggerStart := q.cfg.Clock.Now()
	meta, offs, err := q.cp.ReadOffsets(id)
	if err != nil {
		return err
	}
	if len(offs) != 1 {
		return fmt.Errorf("checkpoint: offsets/%d has %d source lines, this query has 1 source", id, len(offs))
	}
	end, err := q.cfg.Source.ParseOffset(offs[0])
	if err != nil {
		return fmt.Errorf("checkpoint: offsets/%d: %w", id, err)
	}
	q.log.Info("re-running the last batch, which was logged but not committed", "batch", id)
	ainfo := admission.Replayed(meta.Conf, q.Limits())
	// The batch runs with the watermark it was logged with.
	q.tracker.SetGlobal(meta.WatermarkMs)
	info := &BatchInfo{
		BatchID: id, Replayed: replay, TriggerStart: triggerStart, BatchTimestamp: time.UnixMilli(meta.TimestampMs),
		Start: q.start, End: end, Latest: end, Admission: ainfo, WatermarkMs: meta.WatermarkMs,
		NoData: end.JSON() == q.start.JSON(),
		// Nothing was asked, planned or logged: the batch comes from its
		// offsets/N file.
		Durations: map[string]time.Duration{"latestOffset": 0, "queryPlanning": 0, "walCommit": 0},
	}
	if q.async != nil { // its offsets are logged: its commit is written
		q.async.logged, q.async.meta = id, meta
	}
	return q.execute(ctx, info, false)
}

// execute runs the tasks of a planned batch, commits the sink and the
// checkpoint, and reports. With later, the batch's commits/N is left in
// flight and the batch is reported once the next trigger has logged its
// offsets (commitLater); otherwise before execute returns.
func (q *Query) execute(ctx context.Context, info *BatchInfo, later bool) error {
	id := info.BatchID
	q.running.Store(id)
	defer q.running.Store(-1)
	if info.NoData {
		q.setStatus("Processing no-data batch (watermark moved)", false, true)
	} else {
		q.setStatus("Processing new data", true, true)
	}
	if q.cfg.Watermarks != nil {
		q.cfg.Watermarks.Collect() // start the batch's event-time figures afresh
	}
	var (
		msgs   []sink.Message
		tinfos []TaskInfo
		run    *statefulRun
		err    error
	)
	openStart := q.cfg.Clock.Now()
	addStart := openStart
	if info.NoData {
		info.Durations["getBatch"] = 0
		if q.cfg.Stateful != nil {
			run, err = q.runStateful(ctx, info, nil, nil)
		}
	} else {
		reader, oerr := q.cfg.Source.Open(ctx, info.Start, info.End)
		if oerr != nil {
			return fmt.Errorf("batch %d: open source: %w", id, oerr)
		}
		addStart = q.cfg.Clock.Now()
		info.Durations["getBatch"] = addStart.Sub(openStart)
		tasks := reader.Tasks()
		if q.cfg.Stateful != nil {
			run, err = q.runStateful(ctx, info, reader, tasks)
		} else {
			msgs, tinfos, err = q.runTasks(ctx, id, reader, tasks, info.BatchTimestamp, q.cfg.Sink.NewWriter, q.outputSchema())
		}
		if cerr := reader.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("batch %d: close source reader: %w", id, cerr)
		}
	}
	if run != nil {
		msgs, tinfos = run.messages, run.stage1
		addStart = addStart.Add(run.walWait)
	}
	// The sink commits only once offsets/N is durable; the wait counts as
	// walCommit, not addBatch.
	waitStart, overlapped := q.cfg.Clock.Now(), q.wal != nil
	if werr := q.awaitOffsetsLog(info); werr != nil {
		err = errors.Join(err, werr)
	}
	if overlapped {
		addStart = addStart.Add(q.cfg.Clock.Now().Sub(waitStart))
	}
	if err != nil {
		if run != nil {
			run.abort()
		}
		return q.stateMemoryError(err)
	}
	sinkCommitStart := q.cfg.Clock.Now()
	if err := q.cfg.Sink.Commit(ctx, id, msgs); err != nil {
		if run != nil {
			run.abort()
		}
		return fmt.Errorf("batch %d: commit sink %s: %w", id, q.cfg.Sink.Description(), err)
	}
	sinkCommit := q.cfg.Clock.Now().Sub(sinkCommitStart)
	var stateCommit time.Duration
	var bgState *stateCommitJob
	if run != nil && later && overlapStateCommit && q.cfg.BeforeCommit == nil {
		// The state commits in the background, beside the next batch's
		// planning and stage 1 (startStateCommit); commits/N waits for it.
		bgState = q.startStateCommit(context.WithoutCancel(ctx), run, info)
		q.stateCommit = bgState
	} else if run != nil {
		stateCommitStart := q.cfg.Clock.Now()
		// State versions follow the sink's commit and precede commits/N.
		// Once the sink has committed, a stop request no longer abandons
		// the batch: finishing it costs a few fsyncs, re-running it would
		// repeat the output of sinks that are not idempotent (console).
		if err := q.commitState(context.WithoutCancel(ctx), run, info); err != nil {
			return fmt.Errorf("batch %d: commit state: %w", id, err)
		}
		stateCommit = q.cfg.Clock.Now().Sub(stateCommitStart)
	}
	info.Durations["addBatch"] = q.cfg.Clock.Now().Sub(addStart)
	q.updateWatermark(info)
	if q.cfg.BeforeCommit != nil {
		if err := q.cfg.BeforeCommit(id); err != nil {
			return err
		}
	}
	info.Tasks = tinfos
	info.Workers = q.cfg.Workers
	info.IntendedStart = q.intended
	if t := q.currentTrigger(); t.Kind == trigger.ProcessingTime {
		info.TriggerInterval = t.Interval
	}
	for _, t := range tinfos {
		info.NumInputRows += t.Rows
		info.InputBytes += t.Bytes
		info.NumOutputRows += t.OutRows
		info.NumDeadLetters += t.DeadLetters
	}
	if run != nil {
		info.ShuffleTasks = run.stage2
		info.NumOutputRows = 0
		for _, t := range run.stage2 {
			info.NumOutputRows += t.OutRows
		}
	}
	if m, ok := q.cfg.Source.(source.Metrics); ok {
		latest := info.Latest
		if q.lastLatest != nil && !info.Replayed {
			latest = q.lastLatest
		}
		info.SourceMetrics = m.Metrics(info.End, latest)
	}
	// The lag the batch left: sampled now, while the commit log is
	// written, unless the next trigger's look at the source serves (a
	// pipelined commit, see commitLater).
	//
	// Or, for a source whose plans read the latest offsets its fetches
	// brought (reportAtNextPlan), by the next trigger's look even when
	// the commit is not left in flight: the batch's commits/N is waited
	// for here as before, and its report follows the next plan, which
	// comes at once — no ListOffsets request per batch for the sample.
	atNext := !later && q.async == nil && q.reportAtNextPlan()
	var sample *batchEndSample
	if !later && !atNext {
		sample = q.sampler.sampleAsync(q.hardCtx)
	}
	if q.async != nil {
		return q.asyncFinish(ctx, info, sinkCommit, stateCommit, sample)
	}
	p := q.commitBatch(ctx, info, sinkCommit, stateCommit, bgState)
	p.sample = sample
	if later {
		q.commitLater(p, p.start)
		return nil
	}
	if atNext {
		<-p.done
		if p.err != nil {
			return p.err
		}
		q.commitLater(p, p.end)
		return nil
	}
	return q.finishCommit(p, nil)
}

// offsetsWrite is a batch's offsets/N write in flight.
type offsetsWrite struct {
	id         int64
	start, end time.Time
	after      *attempt // the trigger's look at the latest offsets, for finishPending
	done       chan struct{}
	err        error
}

// stagedOutput reports whether a batch's tasks may run while its
// offsets/N is being written: a query outside group mode whose sinks show
// nothing before their commit (sink.Staged). Spark logs offsets/N before
// any processing so that whatever a batch's tasks make visible belongs to
// a logged batch; with staged sinks nothing is visible before the commit,
// which waits for offsets/N. A stateful query runs only its stage 1
// meanwhile, filling the in-memory exchange; its stage 2 waits for
// offsets/N (runStateful). Rows a full exchange hands to their stores
// during stage 1 go into the delta of a version nothing has committed: a
// crash leaves it as it leaves a failed batch's, and the next run's Open
// ignores and rewrites it.
func (q *Query) stagedOutput() bool {
	if _, grouped := source.AsGroup(q.cfg.Source); grouped {
		return false // group mode's per-member sink logs keep Spark's order
	}
	return sink.IsStaged(q.cfg.Sink) && (q.cfg.DeadLetter == nil || sink.IsStaged(q.cfg.DeadLetter))
}

// startOffsetsLog starts writing offsets/N in the background;
// awaitOffsetsLog waits for it.
func (q *Query) startOffsetsLog(id int64, meta checkpoint.BatchMetadata, end source.Offset, start time.Time, after *attempt) {
	w := &offsetsWrite{id: id, start: start, after: after, done: make(chan struct{})}
	q.wal = w
	state := q.stateCommit // the last batch's, when it commits in the background
	go func() {
		defer close(w.done)
		if w.err = q.awaitInitialLog(); w.err != nil {
			return
		}
		if h := q.cfg.BeforeOffsetsLog; h != nil {
			if w.err = h(id); w.err != nil {
				return
			}
		}
		// offsets/N+1 follows batch N's state commit, as it follows its
		// sink's: a crash leaving offsets/N+1 without commits/N re-runs
		// only N+1 (commitLater).
		if w.err = state.wait(); w.err != nil {
			return
		}
		if err := q.cp.WriteOffsets(id, meta, []string{end.JSON()}); err != nil {
			w.err = fmt.Errorf("batch %d: write offsets log: %w", id, err)
			return
		}
		w.end = q.cfg.Clock.Now()
	}()
}

// initialLog is a new checkpoint's sources/0/0 write in flight.
type initialLog struct {
	done chan struct{}
	err  error
}

// startInitialLog writes sources/0/0 (the initial offsets a new
// checkpoint resolved) in the background, so that the first batch is
// planned, its fetches start and its tasks run while the file is fsynced
// instead of after. Spark's order holds: offsets/0's write waits for it
// (awaitInitialLog in startOffsetsLog), and nothing shows in a sink before
// offsets/0 is durable, so no batch is logged, nor any output made,
// against initial offsets that are not on disk. A crash before the file is
// durable leaves a checkpoint without sources/0/0 and without offsets/0:
// the next run resolves the starting offsets again, as before.
func (q *Query) startInitialLog(js string) {
	w := &initialLog{done: make(chan struct{})}
	q.initial = w
	go func() {
		defer close(w.done)
		if h := q.cfg.BeforeSourceInitialLog; h != nil {
			if w.err = h(); w.err != nil {
				return
			}
		}
		if err := q.cp.WriteSourceInitial(0, js); err != nil {
			w.err = fmt.Errorf("write initial offsets (sources/0/0): %w", err)
		}
	}()
}

// awaitInitialLog waits for startInitialLog's write, if one was started,
// and returns its error (every call returns it).
func (q *Query) awaitInitialLog() error {
	w := q.initial
	if w == nil {
		return nil
	}
	<-w.done
	return w.err
}

// awaitOffsetsLog waits for the running batch's offsets/N, completes the
// previous batch if its commit was left in flight, and purges old batches
// from the logs. It is a no-op when called again. The batch's walCommit
// is the time it waited here, so that durationMs's parts still add up to
// at most triggerExecution when the write overlapped the tasks (Spark
// writes the log before the tasks: there, the wait is the write).
func (q *Query) awaitOffsetsLog(info *BatchInfo) error {
	w := q.wal
	if w == nil {
		return nil
	}
	q.wal = nil
	t0 := q.cfg.Clock.Now()
	// The previous batch is reported before the wait, not after it: its
	// commits/N started before this batch was planned, so it is usually
	// durable before offsets/N, and its report (diagnosis, observers,
	// progress) then runs while offsets/N is written instead of after.
	// Reports keep their order and content; the sink still commits only
	// once offsets/N is durable.
	perr := q.finishPending(w.after)
	<-w.done
	if w.err != nil || perr != nil {
		return errors.Join(w.err, perr)
	}
	info.Durations["walCommit"] = q.cfg.Clock.Now().Sub(t0)
	q.purger.request() // in the background: nothing the batch needs
	return nil
}

// pendingCommit is an executed batch (its sink and state committed) whose
// commits/N is being written.
type pendingCommit struct {
	info                    *BatchInfo
	sinkCommit, stateCommit time.Duration
	start                   time.Time
	remembered              bool // admission's history has the batch already
	done                    chan struct{}
	end                     time.Time // when commits/N was durable
	err                     error
	// sample is the batch's end sample taken during the commit (nil:
	// none; the next trigger's look, or a sample taken when reported).
	sample *batchEndSample
	// state is the batch's state commit when it runs in the background
	// (startStateCommit), which commits/N waits for; nil otherwise.
	// logStart is when commits/N's write started (after state).
	state    *stateCommitJob
	logStart time.Time
}

// commitBatch starts writing commits/N (then the source's commit hint) in
// the background, after state, the batch's state commit when it runs in
// the background too (nil: it is done).
func (q *Query) commitBatch(ctx context.Context, info *BatchInfo, sinkCommit, stateCommit time.Duration, state *stateCommitJob) *pendingCommit {
	p := &pendingCommit{info: info, sinkCommit: sinkCommit, stateCommit: stateCommit, start: q.cfg.Clock.Now(), done: make(chan struct{}), state: state}
	go func() {
		defer close(p.done)
		p.logStart = p.start
		if state != nil {
			if p.err = state.wait(); p.err != nil {
				return
			}
			p.stateCommit = state.dur
			p.logStart = q.cfg.Clock.Now()
		}
		if h := q.cfg.BeforeCommitLog; h != nil {
			if err := h(info.BatchID); err != nil {
				p.err = err
				return
			}
		}
		if err := q.cp.WriteCommit(info.BatchID, info.NextWatermarkMs); err != nil {
			p.err = fmt.Errorf("batch %d: write commit log: %w", info.BatchID, err)
			return
		}
		p.end = q.cfg.Clock.Now()
		if err := q.cfg.Source.Commit(ctx, info.End); err != nil {
			q.log.Warn("source commit hint failed", "batch", info.BatchID, "err", err)
		}
	}()
	return p
}

// canPipeline reports whether the batch about to run may leave its
// commits/N in flight while the next trigger plans and logs its offsets
// (commitLater): only when the next trigger follows at once (the default
// trigger and availableNow) and no stop was requested, and not in group
// mode, where the source's commit says where a partition starts and
// completes before anything else. And only when admission left data
// waiting (a backlog, drained batch after batch): a query that keeps up
// gains little from overlapping the two log writes, while each batch's
// commits/N, fsynced beside the next batch's offsets on the same journal,
// could end later — and a batch's end is what its records' latency is
// measured to.
func (q *Query) canPipeline(ctx context.Context, info *BatchInfo) bool {
	if q.async != nil || ctx.Err() != nil || q.stopRequested.Load() || !info.Admission.Bound {
		return false
	}
	if _, grouped := source.AsGroup(q.cfg.Source); grouped {
		return false
	}
	k := q.currentTrigger().Kind
	return k == trigger.Default || k == trigger.AvailableNow
}

// commitLater leaves p's commits/N in flight: the query goes on to plan
// the next batch and write offsets/N+1 at once, and finishPending
// completes p (waits for commits/N, reports the batch) before batch N+1
// runs — so the two log writes and the planning overlap.
//
// A crash in between is safe: offsets/N+1 is written only after batch N's
// sink (and state) committed, and batch N+1 runs only after commits/N is
// durable. The worst a crash leaves is offsets/N+1 present and commits/N
// missing; recovery then follows Spark's rule for a commit log trailing by
// more than one batch (checkpoint.Recover): re-run batch N+1 from
// offsets/N's end. Batch N's output is in the sink already, N+1's never
// reached it: nothing is lost or repeated.
//
// until is when the batch's time ends for admission's history: the
// commit log's start when the write is left in flight; its end when
// execute waited for it and only the report follows the next plan
// (reportAtNextPlan).
func (q *Query) commitLater(p *pendingCommit, until time.Time) {
	info := p.info
	// Admission plans the next batch before this one is reported: give it
	// the batch now, timed up to until (the commit log's start when it
	// overlaps the next batch's planning).
	info.Durations["triggerExecution"] = until.Sub(info.TriggerStart)
	q.remember(info)
	p.remembered = true
	q.start = info.End
	q.nextBatch = info.BatchID + 1
	q.lastUsedWm, q.ranBatch = info.WatermarkMs, true
	q.pending = p
}

// finishPending completes the batch commitLater left in flight, if any.
// after, when set, is the next trigger's look at the source's latest
// offsets, taken after that batch's sink committed: the batch's
// LatestAfter (else they are sampled now).
func (q *Query) finishPending(after *attempt) error {
	p := q.pending
	if p == nil {
		return nil
	}
	q.pending = nil
	return q.finishCommit(p, after)
}

// finishCommit waits for p's commits/N and reports the batch.
func (q *Query) finishCommit(p *pendingCommit, after *attempt) error {
	info := p.info
	<-p.done
	p.sample.wait()
	if p.state != nil && q.stateCommit == p.state {
		q.stateCommit = nil
	}
	if p.err != nil {
		return p.err
	}
	q.applyStateCommit(p.state)
	info.Durations["commitOffsets"] = p.end.Sub(p.logStart)
	info.Durations["triggerExecution"] = p.end.Sub(info.TriggerStart)
	info.Diagnosis = q.diagnose(info, p.sinkCommit, p.stateCommit)
	if q.sampler != nil {
		switch {
		case after != nil && after.latest != nil:
			info.LatestAfterAt, info.LatestAfter = after.start, after.latest
			if cp, ok := q.cfg.Source.(source.CappedPlanner); ok && after.start.Before(p.start) {
				// The next plan used a listing sent before this batch
				// committed (source.CappedPlanner); the one that plan
				// sent, after the commit, is the lag the batch left
				// when it has its answer already.
				if l, at, ok := cp.ListedSince(p.start); ok {
					info.LatestAfterAt, info.LatestAfter = at, q.sampler.part.PartitionOffset(l)
				}
			}
		case p.sample != nil:
			info.LatestAfterAt = p.sample.at
			if p.sample.latest != nil {
				info.LatestAfter = q.sampler.part.PartitionOffset(p.sample.latest)
			}
		default:
			info.LatestAfterAt = q.cfg.Clock.Now()
			if latest := q.sampler.sampleNow(q.hardCtx); latest != nil {
				info.LatestAfter = q.sampler.part.PartitionOffset(latest)
			}
		}
	}
	if !p.remembered {
		q.remember(info)
		q.start = info.End
		q.nextBatch = info.BatchID + 1
		q.lastUsedWm, q.ranBatch = info.WatermarkMs, true
	}
	q.batchesDone.Add(1)
	if r := q.running.Load(); r < 0 || r == info.BatchID { // not when the next batch is under way
		q.setStatus("Waiting for next trigger", false, false)
	}
	for _, o := range q.cfg.Observers {
		o.BatchCompleted(q, info)
	}
	return nil
}

type taskResult struct {
	msg   sink.Message
	dlMsg sink.Message // the dead-letter writer's, nil when it had nothing
	info  TaskInfo
}

// runTasks runs every task on the worker pool; the first failure cancels
// the rest and aborts their writers.
func (q *Query) runTasks(ctx context.Context, id int64, reader source.Reader, tasks []source.Task, batchTime time.Time, newWriter newWriterFunc, outSchema batch.Schema) ([]sink.Message, []TaskInfo, error) {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]taskResult, len(tasks))
	// Largest tasks first: with fewer workers than tasks this shortens the
	// batch (longest-processing-time-first scheduling).
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return tasks[order[a]].Size() > tasks[order[b]].Size() })
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	// Workers claim tasks in order; the calling goroutine is one of them.
	// The batch waits only for the tasks claimed, never for a helper
	// goroutine to be scheduled: with tasks shorter than a scheduling
	// delay (small batches on a busy machine) a helper that has not run
	// yet finds nothing left to claim and exits, and handing each task
	// over a channel and waiting for every worker to see it closed cost a
	// batch of ten thousand records more than its tasks did.
	var (
		mu      sync.Mutex
		next    int
		claimed sync.WaitGroup // tasks claimed and not finished
	)
	claim := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= len(order) || tctx.Err() != nil {
			return 0, false
		}
		i := order[next]
		next++
		claimed.Add(1)
		return i, true
	}
	work := func() {
		for {
			i, ok := claim()
			if !ok {
				return
			}
			r, err := q.runTask(tctx, id, i, reader, tasks[i], outSchema, batchTime, newWriter)
			if err != nil {
				fail(err)
			} else {
				results[i] = r
			}
			claimed.Done()
		}
	}
	workers := min(q.cfg.Workers, len(tasks))
	for w := 1; w < workers; w++ {
		startWorker(work) // returns once nothing is left to claim
	}
	work()
	claimed.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, nil, firstErr
	}
	msgs := make([]sink.Message, len(tasks))
	infos := make([]TaskInfo, len(tasks))
	var dlMsgs []sink.Message
	for i, r := range results {
		msgs[i] = r.msg
		infos[i] = r.info
		if r.dlMsg != nil {
			dlMsgs = append(dlMsgs, r.dlMsg)
		}
	}
	if q.cfg.DeadLetter != nil {
		if err := q.cfg.DeadLetter.Commit(ctx, id, dlMsgs); err != nil {
			return nil, nil, fmt.Errorf("batch %d: commit dead-letter sink %s: %w", id, q.cfg.DeadLetter.Description(), err)
		}
	}
	return msgs, infos, nil
}

// startWorker starts one of runTasks' helper workers (tests delay them).
var startWorker = func(work func()) { go work() }

// newWriterFunc opens a task's writer: the sink's, or the exchange's for
// stage 1 of a stateful query.
type newWriterFunc func(ctx context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error)

// outputSchema is the schema of stage 1's output.
func (q *Query) outputSchema() batch.Schema {
	if q.cfg.Transform != nil {
		return q.cfg.Transform.Schema()
	}
	return q.cfg.Source.Schema()
}

func (q *Query) runTask(ctx context.Context, id int64, idx int, reader source.Reader, t source.Task, schema batch.Schema, batchTime time.Time, newWriter newWriterFunc) (taskResult, error) {
	start := time.Now()
	w, err := newWriter(ctx, id, idx, schema)
	if err != nil {
		return taskResult{}, fmt.Errorf("batch %d task %s: open sink writer: %w", id, t, err)
	}
	var res taskResult
	res.info.Setup = time.Since(start)
	var dlw sink.Writer // opened on the first dead letter
	abortDL := func() {
		if dlw != nil {
			dlw.Abort(ctx)
		}
	}
	// deadLetters routes rows to the dead-letter sink, or fails the task
	// with the first reason when the query has none.
	deadLetters := func(ctx context.Context, dls []DeadLetter) error {
		if len(dls) == 0 {
			return nil
		}
		if q.cfg.DeadLetter == nil {
			return errors.New(dls[0].Reason)
		}
		if dlw == nil {
			var derr error
			if dlw, derr = q.cfg.DeadLetter.NewWriter(ctx, id, idx, DeadLetterSchema); derr != nil {
				return fmt.Errorf("open dead-letter writer: %w", derr)
			}
		}
		if derr := dlw.Write(ctx, deadLetterBatch(dls, id)); derr != nil {
			return fmt.Errorf("write dead letters: %w", derr)
		}
		res.info.DeadLetters += int64(len(dls))
		return nil
	}
	// Rows the source could not convert (source.Reject) take the same way.
	ctx = source.WithReject(ctx, func(ctx context.Context, rows *batch.Batch, reasons []string) error {
		dls := make([]DeadLetter, 0, len(reasons))
		for i, r := range reasons {
			dls = append(dls, DeadLetter{Reason: r, Input: rows, Row: i})
		}
		if err := deadLetters(ctx, dls); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		return nil
	})
	var inEmit time.Duration
	readStart := time.Now()
	err = reader.Read(ctx, t, func(ctx context.Context, b *batch.Batch) error {
		t0 := time.Now()
		defer func() { inEmit += time.Since(t0) }()
		q.progressAt.Store(q.cfg.Clock.Now().UnixNano())
		res.info.Rows += int64(b.N)
		res.info.Bytes += b.ByteSize()
		out := b
		if q.cfg.Transform != nil {
			var dls []DeadLetter
			var terr error
			if out, dls, terr = q.cfg.Transform.Apply(b, batchTime); terr != nil {
				return fmt.Errorf("transform: %w", terr)
			}
			if err := deadLetters(ctx, dls); err != nil {
				return fmt.Errorf("transform: %w", err)
			}
		}
		t1 := time.Now()
		res.info.Transform += t1.Sub(t0)
		res.info.OutRows += int64(out.N)
		err := w.Write(ctx, out)
		res.info.Sink += time.Since(t1)
		return err
	})
	res.info.Fetch = time.Since(readStart) - inEmit
	if err != nil {
		w.Abort(ctx)
		abortDL()
		return taskResult{}, fmt.Errorf("batch %d task %s: %w", id, t, err)
	}
	if dlw != nil {
		if res.dlMsg, err = dlw.Close(ctx); err != nil {
			w.Abort(ctx)
			return taskResult{}, fmt.Errorf("batch %d task %s: close dead-letter writer: %w", id, t, err)
		}
		if st, ok := dlw.(sink.StoreTimer); ok {
			res.info.Store += st.StoreTime()
		}
	}
	closeStart := time.Now()
	msg, err := w.Close(ctx)
	if err != nil {
		return taskResult{}, fmt.Errorf("batch %d task %s: close sink writer: %w", id, t, err)
	}
	res.info.Sink += time.Since(closeStart)
	if st, ok := w.(sink.StoreTimer); ok {
		res.info.Store += st.StoreTime()
	}
	res.msg = msg
	res.info.Task = t.String()
	res.info.Duration = time.Since(start)
	return res, nil
}

// diagnose runs the bottleneck analysis on a finished batch.
func (q *Query) diagnose(info *BatchInfo, sinkCommit, stateCommit time.Duration) diagnose.Result {
	db := diagnose.Batch{
		Duration:   info.Durations["triggerExecution"],
		Checkpoint: info.Durations["walCommit"] + info.Durations["commitOffsets"],
		Planning:   info.Durations["latestOffset"] + info.Durations["queryPlanning"],
		SinkCommit: sinkCommit,
		Workers:    info.Workers,
		// The interval the batch ran under (set before diagnose is called).
		TriggerInterval: info.TriggerInterval,
	}
	for _, t := range info.Tasks {
		db.Tasks = append(db.Tasks, diagnose.Task{Name: t.Task, Rows: t.Rows, Fetch: t.Fetch, Transform: t.Transform, Sink: t.Sink, Store: t.Store, Overhead: t.Setup, Total: t.Duration})
	}
	for _, t := range info.ShuffleTasks {
		db.Shuffle = append(db.Shuffle, diagnose.Task{Name: t.Task, Rows: t.Rows, Transform: t.Transform, Sink: t.Sink, Store: t.Store, Overhead: t.Setup, Total: t.Duration})
	}
	db.StateCommit = stateCommit
	for i, so := range info.StateOperators {
		msd := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
		db.Operators = append(db.Operators, diagnose.Operator{ID: len(info.StateOperators) - 1 - i, Name: so.OperatorName,
			Update: msd(so.AllUpdatesTimeMs), Removal: msd(so.AllRemovalsTimeMs), Commit: msd(so.CommitTimeMs),
			Rows: so.NumRowsTotal, Stores: so.NumStateStoreInstances})
	}
	// Backlog per partition at planning: latest − start.
	if st, ok := info.Start.(source.PartitionedOffset); ok {
		if lt, ok := info.Latest.(source.PartitionedOffset); ok {
			db.Backlog = map[string]int64{}
			starts := st.Partitions()
			for tp, l := range lt.Partitions() {
				if b := l - starts[tp]; b > 0 {
					db.Backlog[fmt.Sprintf("%s-%d", tp.Topic, tp.Partition)] = b
				}
			}
		}
	}
	return diagnose.Analyze(db)
}
