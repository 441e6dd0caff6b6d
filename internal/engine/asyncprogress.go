package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// AsyncProgress is Spark's asynchronous progress tracking
// (asyncProgressTrackingEnabled): the offsets and commit logs are written
// in the background, and only for a batch that starts at least Interval
// (asyncProgressTrackingCheckpointIntervalMs) after the last logged one —
// and for the first batch of a run. A batch waits for no log write: it is
// reported as soon as its sink committed.
//
// The guarantee is at-least-once, as in Spark: after a crash the query
// restarts from the newest logged batch, so the batches run since then
// are read and written again (with a batch-id-idempotent sink, under new
// batch ids: see lastCommitter). Only stateless queries, outside group
// mode, with the default or processingTime trigger may use it; the query
// layer also limits the sinks, as Spark does.
type AsyncProgress struct {
	// Interval is the least time between two logged batches; 0 logs
	// every batch (still without waiting for the writes).
	Interval time.Duration
}

// lastCommitter is a sink that knows the last batch id it committed (the
// Kafka sink's commit markers). With asynchronous progress tracking a
// crash can leave the sink ahead of the logs; the restarted query then
// numbers its new batches after the sink's last, so that a sink that skips
// batch ids it has committed (its exactly-once replay rule) does not skip
// data the logs never recorded.
type lastCommitter interface {
	LastCommittedBatch(ctx context.Context) (int64, error)
}

// asyncLog writes the checkpoint's logs in the background, in order, on
// one goroutine (so commits/N is durable only after offsets/N). At most
// two writes wait (an offsets and a commit write, as Spark's queue); a
// third waits for room. The first failure is kept and fails the query at
// its next batch.
type asyncLog struct {
	jobs chan func() error
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

func startAsyncLog() *asyncLog {
	a := &asyncLog{jobs: make(chan func() error, 2)}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for job := range a.jobs {
			if a.failed() != nil {
				continue // the query fails; later writes would be out of order
			}
			if err := job(); err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
			}
		}
	}()
	return a
}

// enqueue adds a write, waiting for room while two are queued.
func (a *asyncLog) enqueue(ctx context.Context, job func() error) error {
	select {
	case a.jobs <- job:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failed returns the first failed write's error.
func (a *asyncLog) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// close waits for the queued writes and ends the goroutine.
func (a *asyncLog) close() error {
	close(a.jobs)
	a.wg.Wait()
	return a.failed()
}

// asyncState is the query's asynchronous progress tracking state, owned
// by the query goroutine.
type asyncState struct {
	cfg AsyncProgress
	log *asyncLog
	// lastLogged is when the last logged batch was planned; zero: none
	// in this run yet (the first batch of a run is always logged).
	lastLogged time.Time
	// logged is the id of the running batch when its offsets are logged
	// (queued or, for a replay, already there), else -1.
	logged int64
	// last is the newest batch reported, and whether its logs were
	// written: a clean stop logs it if not, so that a restart does not
	// read it again.
	last          *BatchInfo
	lastMeta      checkpoint.BatchMetadata
	lastWasLogged bool
	// meta is the running batch's offsets metadata.
	meta checkpoint.BatchMetadata
}

// asyncMarkerConf is the key every offsets/N written with asynchronous
// progress tracking on records ("true"). A run with the option turned off
// reads it from the newest offsets file and still asks the sink where its
// batch ids must start: a Kafka sink that committed batches the logs never
// recorded would otherwise skip the new batches that reuse their ids.
const asyncMarkerConf = "sluice.asyncProgressTracking"

// asyncRefusal says why a query cannot use asynchronous progress tracking
// (nil when it can), in Spark's words where Spark has them.
func asyncRefusal(cfg *Config) error {
	if cfg.AsyncProgress == nil {
		return nil
	}
	switch cfg.Trigger.Kind {
	case trigger.Once:
		return errors.New("Async progress tracking cannot be used with Once trigger")
	case trigger.AvailableNow:
		return errors.New("Async progress tracking cannot be used with AvailableNow trigger")
	}
	if cfg.Stateful != nil {
		return errors.New("Stateful streaming queries does not support async progress tracking at this moment.")
	}
	if g, ok := source.AsGroup(cfg.Source); ok {
		return fmt.Errorf("async progress tracking cannot be used in group mode (source option \"sluice.group\" = %q): the group's committed offsets are the members' progress", g.GroupMember().Group)
	}
	if cfg.AsyncProgress.Interval < 0 {
		return fmt.Errorf("asyncProgressTrackingCheckpointIntervalMs must not be negative, got %d", cfg.AsyncProgress.Interval.Milliseconds())
	}
	return nil
}

// asyncLogOffsets queues offsets/N of a planned batch when the interval
// since the last logged batch has passed (or none was logged in this
// run), and returns whether it did.
func (q *Query) asyncLogOffsets(id int64, meta checkpoint.BatchMetadata, end source.Offset, now time.Time) (bool, error) {
	as := q.async
	as.logged = -1
	if err := as.log.failed(); err != nil {
		return false, err
	}
	if !as.lastLogged.IsZero() && now.Sub(as.lastLogged) < as.cfg.Interval {
		return false, nil
	}
	as.lastLogged = now
	as.logged = id
	js := end.JSON()
	return true, as.log.enqueue(q.hardCtx, func() error {
		if h := q.cfg.BeforeOffsetsLog; h != nil {
			if err := h(id); err != nil {
				return err
			}
		}
		if err := q.cp.WriteOffsets(id, meta, []string{js}); err != nil {
			return fmt.Errorf("batch %d: write offsets log: %w", id, err)
		}
		q.purger.request()
		return nil
	})
}

// asyncFinish completes a batch whose sink committed: it queues commits/N
// (and then the source's commit hint) when offsets/N was logged, and
// reports the batch without waiting for either.
func (q *Query) asyncFinish(ctx context.Context, info *BatchInfo, sinkCommit, stateCommit time.Duration, sample *batchEndSample) error {
	as := q.async
	meta := as.meta
	start := q.cfg.Clock.Now()
	logged := as.logged == info.BatchID
	if logged {
		id, wm, end := info.BatchID, info.NextWatermarkMs, info.End
		err := as.log.enqueue(q.hardCtx, func() error {
			if h := q.cfg.BeforeCommitLog; h != nil {
				if err := h(id); err != nil {
					return err
				}
			}
			if err := q.cp.WriteCommit(id, wm); err != nil {
				return fmt.Errorf("batch %d: write commit log: %w", id, err)
			}
			if err := q.cfg.Source.Commit(ctx, end); err != nil {
				q.log.Warn("source commit hint failed", "batch", id, "err", err)
			}
			return nil
		})
		if err != nil {
			sample.wait()
			return err
		}
	}
	as.last, as.lastMeta, as.lastWasLogged = info, meta, logged
	as.logged = -1
	done := make(chan struct{})
	close(done)
	return q.finishCommit(&pendingCommit{info: info, sinkCommit: sinkCommit, stateCommit: stateCommit, start: start, end: q.cfg.Clock.Now(), done: done, sample: sample}, nil)
}

// asyncClose waits for the queued log writes. After a clean stop it also
// logs the last batch if its logs were skipped, so that a restart resumes
// after it instead of reading it again.
func (q *Query) asyncClose(clean bool) error {
	as := q.async
	if err := as.log.close(); err != nil {
		return err
	}
	if !clean || as.last == nil || as.lastWasLogged {
		return nil
	}
	info := as.last
	if err := q.cp.WriteOffsets(info.BatchID, as.lastMeta, []string{info.End.JSON()}); err != nil {
		return fmt.Errorf("batch %d: write offsets log at stop: %w", info.BatchID, err)
	}
	if err := q.cp.WriteCommit(info.BatchID, info.NextWatermarkMs); err != nil {
		return fmt.Errorf("batch %d: write commit log at stop: %w", info.BatchID, err)
	}
	return nil
}

// asyncJump asks a sink that knows its last committed batch where new
// batch ids must start — past it, when a crash left the sink ahead of the
// logs — with asynchronous progress tracking on, or off while the newest
// offsets file was written with it on.
func (q *Query) asyncJump(ctx context.Context) error {
	if q.async == nil {
		if v, _ := lookupFold(q.pinned, asyncMarkerConf); !q.hasPinned || v != "true" {
			return nil
		}
	}
	lc, ok := q.cfg.Sink.(lastCommitter)
	if !ok {
		return nil
	}
	last, err := lc.LastCommittedBatch(ctx)
	if err != nil {
		return fmt.Errorf("sink %s: last committed batch: %w", q.cfg.Sink.Description(), err)
	}
	if last < q.nextBatch {
		return nil
	}
	if q.replay { // the replay keeps its id; the batches after it jump
		q.sinkJumpTo = last + 1
		return nil
	}
	q.log.Warn("async progress tracking: the sink committed batches the logs do not record; new batches continue after the sink's last", "batch", last+1)
	q.nextBatch = last + 1
	return nil
}
