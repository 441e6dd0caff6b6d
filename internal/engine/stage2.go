package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/state"
)

// statefulRun is one batch of a stateful query between its tasks and its
// commit: the sink messages, the task measurements and the open state
// stores (committed after the sink, aborted on failure).
type statefulRun struct {
	messages []sink.Message
	stage1   []TaskInfo
	stage2   []TaskInfo
	stores   [][]state.Store // per partition, per operator
	metrics  [][]OperatorMetrics
	peak     int64 // the exchange's peak buffered bytes
	// walWait is how long stage 2 waited for offsets/N, written while
	// stage 1 ran (stagedOutput): walCommit time, not addBatch.
	walWait time.Duration

	mu      sync.Mutex
	aborted bool
}

// size sums the stores' keys and entry bytes (state.Sizer) before their
// commit; false when a store cannot tell.
func (r *statefulRun) size() (bytes, rows int64, ok bool) {
	for _, ss := range r.stores {
		for _, s := range ss {
			sz, ok := s.(state.Sizer)
			if !ok {
				return 0, 0, false
			}
			k, b := sz.Size()
			rows += k
			bytes += b
		}
	}
	return bytes, rows, true
}

// abort discards the batch's state writes.
func (r *statefulRun) abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.aborted {
		return
	}
	r.aborted = true
	for _, ss := range r.stores {
		for _, s := range ss {
			s.Abort()
		}
	}
}

// runStateful runs a stateful batch's two stages. reader and tasks are nil
// for a no-data batch, which runs stage 2 alone.
func (q *Query) runStateful(ctx context.Context, info *BatchInfo, reader source.Reader, tasks []source.Task) (*statefulRun, error) {
	id := info.BatchID
	st := q.cfg.Stateful
	n := q.settings.partitions
	if err := q.states.writeMetadata(); err != nil {
		return nil, fmt.Errorf("batch %d: %w", id, err)
	}
	run := &statefulRun{stores: make([][]state.Store, n)}
	// The last batch's state may still be committing (startStateCommit):
	// the stores open the version it makes once it is done — a stage-1
	// producer that finds the exchange full waits here.
	prev := q.stateCommit
	var storesMu sync.Mutex
	x := newExchange(n, q.settings.shuffleSize, func(p int) (Stage2, error) {
		if err := prev.wait(); err != nil {
			return nil, err
		}
		stores, err := q.states.open(p, id)
		if err != nil {
			return nil, err
		}
		storesMu.Lock()
		run.stores[p] = stores
		storesMu.Unlock()
		return st.NewStage2(Stage2Env{BatchID: id, Partition: p, Partitions: n, WatermarkMs: info.WatermarkMs,
			BatchTime: info.BatchTimestamp, Stores: stores})
	})
	// The stores of p were set by open, under p's lock, which idle runs
	// under too.
	x.idle = func(p int) {
		for _, s := range run.stores[p] {
			if i, ok := s.(state.Idler); ok {
				i.Idle()
			}
		}
	}

	// Stage 1: the source tasks, ending in the exchange; the stores' delta
	// files are created beside it (and beside the wait for offsets/N).
	var prep *deltaPrep
	if len(tasks) > 0 {
		prep = q.states.prepareDeltas(id, prev.wait)
		defer prep.stop()
		newWriter := func(ctx context.Context, _ int64, _ int, _ batch.Schema) (sink.Writer, error) {
			return &shuffleWriter{w: st.NewShuffleWriter(ShuffleEnv{Partitions: n, BatchTime: info.BatchTimestamp,
				Send: func(p int, b *batch.Batch) error { return x.send(ctx, p, b) }})}, nil
		}
		_, tinfos, err := q.runTasks(ctx, id, reader, tasks, info.BatchTimestamp, newWriter, q.outputSchema())
		if err != nil {
			return run, err
		}
		run.stage1 = tinfos
	}

	// Stage 2 writes the state files and the sink's output: with staged
	// sinks stage 1 ran while offsets/N was written (stagedOutput), and
	// stage 2 starts once it is durable.
	if q.wal != nil {
		t0 := q.cfg.Clock.Now()
		if err := q.awaitOffsetsLog(info); err != nil {
			return run, err
		}
		run.walWait = q.cfg.Clock.Now().Sub(t0)
	}
	prep.stop()

	// Stage 2: one task per shuffle partition, fullest first.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return x.parts[order[a]].qbytes > x.parts[order[b]].qbytes })
	writers := make([]sink.Writer, n)
	msgs := make([]sink.Message, n)
	infos := make([]TaskInfo, n)
	schema := st.Schema()
	err := q.pool(ctx, order, func(ctx context.Context, p int) error {
		start := time.Now()
		ti := &infos[p]
		ti.Task = fmt.Sprintf("shuffle-%d", p)
		emit := func(b *batch.Batch) error {
			if writers[p] == nil {
				t0 := time.Now()
				w, err := q.cfg.Sink.NewWriter(ctx, id, p, schema)
				if err != nil {
					return fmt.Errorf("open sink writer: %w", err)
				}
				writers[p] = w
				ti.Setup += time.Since(t0)
			}
			t0 := time.Now()
			ti.OutRows += int64(b.N)
			err := writers[p].Write(ctx, b)
			ti.Sink += time.Since(t0)
			return err
		}
		if err := x.finish(p, emit); err != nil {
			return fmt.Errorf("batch %d shuffle partition %d: %w", id, p, err)
		}
		if w := writers[p]; w != nil {
			t0 := time.Now()
			msg, err := w.Close(ctx)
			writers[p] = nil
			if err != nil {
				return fmt.Errorf("batch %d shuffle partition %d: close sink writer: %w", id, p, err)
			}
			msgs[p] = msg
			ti.Sink += time.Since(t0)
		}
		ti.Duration = time.Since(start)
		return nil
	})
	for p, w := range writers {
		if w != nil {
			w.Abort(ctx)
			writers[p] = nil
		}
	}
	for p, part := range x.parts {
		infos[p].Rows = part.rows
		infos[p].Transform = part.busy
	}
	run.stage2 = infos
	run.peak = x.peak.Load()
	// The last batch's state maintenance ran beside this batch's stages;
	// its failure fails this batch before the sink commits it.
	if merr := q.states.awaitMaintenance(); merr != nil && err == nil {
		err = fmt.Errorf("batch %d: state maintenance after batch %d: %w", id, id-1, merr)
	}
	if err != nil {
		return run, err
	}
	for p, part := range x.parts {
		if part.stage2 != nil {
			run.metrics = append(run.metrics, part.stage2.Metrics())
		} else {
			run.metrics = append(run.metrics, nil)
		}
		if msgs[p] != nil {
			run.messages = append(run.messages, msgs[p])
		}
	}
	return run, nil
}

// shuffleWriter adapts a ShuffleWriter to the sink.Writer a stage-1 task
// writes to.
type shuffleWriter struct{ w ShuffleWriter }

func (s *shuffleWriter) Write(_ context.Context, b *batch.Batch) error { return s.w.Write(b) }
func (s *shuffleWriter) Close(context.Context) (sink.Message, error)   { return nil, s.w.Flush() }
func (s *shuffleWriter) Abort(context.Context)                         {}

// pool runs fn for each item on the worker pool; the first error cancels
// the rest.
func (q *Query) pool(ctx context.Context, items []int, fn func(ctx context.Context, item int) error) error {
	return runPool(ctx, q.cfg.Workers, items, fn)
}

func runPool(ctx context.Context, workers int, items []int, fn func(ctx context.Context, item int) error) error {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for w := 0; w < min(workers, len(items)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(tctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, i := range items {
		select {
		case work <- i:
		case <-tctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// commitIOParallelism bounds the goroutines committing state versions.
// Each commit waits on fsyncs (its delta file's and its directory's): with
// all of a batch's stores committing at once the file system groups them
// into a few journal commits, where a smaller pool queues them behind one
// another (200 shuffle partitions: 400 fsyncs a batch).
const commitIOParallelism = 256

// stagedStore is a state store whose commit can run in steps before
// Commit (the memory provider's).
type stagedStore interface {
	WriteOut() error
	Sync() error
}

// commitStores commits every partition's stores (version = batch id + 1),
// starts their maintenance in the background (maintainInBackground), sums
// the figures into info.StateOperators and returns the state's size.
func (q *Query) commitStores(ctx context.Context, run *statefulRun, info *BatchInfo) (bytes, rows int64, err error) {
	if h := q.cfg.BeforeStateCommit; h != nil {
		if err := h(info.BatchID); err != nil {
			run.abort()
			return 0, 0, err
		}
	}
	n := len(run.stores)
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	workers := max(q.cfg.Workers, min(n, commitIOParallelism))
	// Stores that can commit in steps take each step together: every delta
	// file written, then every one fsynced, then each moved into place and
	// its directory fsynced (Commit). The file system groups each step's
	// updates into a few journal commits; interleaved per store they queue
	// behind one another. Writing each delta at the end of its stage-2 task
	// instead (while the other worker computes) took WriteOut off the
	// critical path but cost 10-20 % more CPU on this project's journal-less
	// ext4 VM: creates spread among stage-2 work paid ~30 % more in openat
	// than a burst of them (helper report notes8/statecommit.md).
	step := func(do func(stagedStore) error) error {
		return runPool(ctx, workers, items, func(_ context.Context, p int) error {
			for _, s := range run.stores[p] {
				if ss, ok := s.(stagedStore); ok {
					if err := do(ss); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	err = step(stagedStore.WriteOut)
	if err == nil {
		err = step(stagedStore.Sync)
	}
	if err == nil {
		err = runPool(ctx, workers, items, func(_ context.Context, p int) error {
			for _, s := range run.stores[p] {
				if _, err := s.Commit(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		run.abort()
		return 0, 0, err
	}
	// The next batch opens the version just committed: its base leaves
	// memory now, before that batch's records arrive (they may be arriving
	// already, beside a background commit).
	q.states.retire(info.BatchID + 1)
	// Snapshots and retention run in the background, beside the next
	// batch (which awaits them before its sink commit).
	if err := q.states.awaitMaintenance(); err != nil {
		return 0, 0, err
	}
	q.states.maintainInBackground(n, q.cfg.Workers)
	ops := q.cfg.Stateful.Operators()
	out := make([]StateOperatorInfo, len(ops))
	for i, op := range ops {
		o := &out[i]
		o.OperatorName = op.Name
		o.NumShufflePartitions = int64(n)
		o.CustomMetrics = map[string]int64{}
		o.Partitions = make([]PartitionState, n)
		for p := 0; p < n; p++ {
			if i >= len(run.stores[p]) {
				continue
			}
			m := run.stores[p][i].Metrics()
			o.NumStateStoreInstances++
			o.NumRowsTotal += m.NumKeys
			o.NumRowsUpdated += m.NumRowsUpdated
			o.NumRowsRemoved += m.NumRowsRemoved
			o.AllUpdatesTimeMs += m.AllUpdatesTimeMs
			o.AllRemovalsTimeMs += m.AllRemovalsTimeMs
			o.CommitTimeMs += m.CommitTimeMs
			o.MemoryUsedBytes += m.MemoryUsedBytes
			o.Partitions[p] = PartitionState{Keys: m.NumKeys, MemoryBytes: m.MemoryUsedBytes}
			for k, v := range m.Custom {
				o.CustomMetrics[k] += v
			}
			if p < len(run.metrics) && i < len(run.metrics[p]) {
				om := run.metrics[p][i]
				o.NumRowsDroppedByWatermark += om.DroppedByWatermark
				for k, v := range om.Custom {
					o.CustomMetrics[k] += v
				}
			}
		}
	}
	// Spark lists the downstream operator first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	info.StateOperators = out
	for _, o := range out {
		bytes += o.MemoryUsedBytes
		rows += o.NumRowsTotal
	}
	return bytes, rows, nil
}

// commitState commits the batch's state (commitStores) and takes the
// state's new size for admission.
func (q *Query) commitState(ctx context.Context, run *statefulRun, info *BatchInfo) error {
	bytes, rows, err := q.commitStores(ctx, run, info)
	if err != nil {
		return err
	}
	q.stateBytes, q.stateRows, q.stateMeasured = bytes, rows, true
	return nil
}

// overlapStateCommit lets a batch whose commits/N is left in flight
// (commitLater) commit its state in the background too, beside the next
// batch's planning and stage 1 (startStateCommit). Tests turn it off to
// check what it changes.
var overlapStateCommit = true

// stateCommitJob is a batch's state commit running in the background
// (startStateCommit) while the next batch is planned and runs its stage 1.
// Everything that needs the committed version waits for it: the batch's
// commits/N (commitBatch), the next batch's offsets/N+1 (startOffsetsLog),
// and the next batch's state stores, which open that version (runStateful:
// a stage-1 producer that finds the exchange full waits there, so the
// buffered rows stay within the exchange's bound).
type stateCommitJob struct {
	done chan struct{}
	err  error
	// dur is how long the commit took; bytes and rows are the state's size
	// after it (set before done is closed).
	dur         time.Duration
	bytes, rows int64
}

// wait waits for the commit and returns its error; a nil c is no commit.
func (c *stateCommitJob) wait() error {
	if c == nil {
		return nil
	}
	<-c.done
	return c.err
}

// startStateCommit starts committing the batch's state in the background
// and returns at once. The state is measured first, for admission to plan
// the next batch with (state.Sizer); stores that cannot tell are measured
// by the commit, and until the query applies that (applyStateCommit)
// admission counts, on top of the state measured before, one state entry
// per row the batch's stage 2 took, the allowance the batch itself was
// admitted with.
func (q *Query) startStateCommit(ctx context.Context, run *statefulRun, info *BatchInfo) *stateCommitJob {
	c := &stateCommitJob{done: make(chan struct{})}
	if bytes, rows, ok := run.size(); ok {
		// Measured now: the commit does not change what the stores hold.
		q.stateBytes, q.stateRows, q.stateMeasured = bytes, rows, true
	} else {
		var rows int64
		for _, t := range run.stage2 {
			rows += t.Rows
		}
		_, perRecord := q.stateReservation()
		q.stateGrowth = rows * perRecord
	}
	start := q.cfg.Clock.Now()
	go func() {
		defer close(c.done)
		c.bytes, c.rows, c.err = q.commitStores(ctx, run, info)
		if c.err != nil {
			c.err = fmt.Errorf("batch %d: commit state: %w", info.BatchID, c.err)
		}
		c.dur = q.cfg.Clock.Now().Sub(start)
	}()
	return c
}

// applyStateCommit takes a finished background commit's measurement for
// admission (on the query goroutine).
func (q *Query) applyStateCommit(c *stateCommitJob) {
	if c == nil || c.err != nil {
		return
	}
	q.stateBytes, q.stateRows, q.stateMeasured = c.bytes, c.rows, true
	q.stateGrowth = 0
}

// stateMemoryError names the stateful operator in an error of a state
// store that would pass its memory share: the query stops there, before
// the process runs out of memory, and says what to do.
func (q *Query) stateMemoryError(err error) error {
	var me *state.MemoryExceededError
	if !errors.As(err, &me) {
		return err
	}
	ops := q.cfg.Stateful.Operators()
	name := ""
	if me.Operator < len(ops) {
		name = ops[me.Operator].Name
	}
	q.log.Error("state memory exceeded: stopping the query", "operator", me.Operator, "operatorName", name,
		"partition", me.Partition, "stateBytes", me.StoreBytes, "limit", me.Limit)
	return fmt.Errorf("stateful operator %d (%s) stopped the query: %w", me.Operator, name, err)
}
