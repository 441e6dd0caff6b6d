package checkpoint

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrCommitLag is matched (errors.Is) by the *LagWarning Recover returns
// when the commit log trails the offsets log by more than one batch.
var ErrCommitLag = errors.New("checkpoint: commit log trails offsets log by more than one batch")

// LagWarning reports a commit log that trails the offsets log by more than
// one batch. Spark logs this as a warning and carries on; Recover returns it
// as a non-fatal error alongside a valid plan.
type LagWarning struct {
	LatestOffsets int64
	// LatestCommit is -1 when the commit log is empty.
	LatestCommit int64
}

func (w *LagWarning) Error() string {
	c := "none"
	if w.LatestCommit >= 0 {
		c = strconv.FormatInt(w.LatestCommit, 10)
	}
	return fmt.Sprintf("checkpoint: latest commit is batch %s, which does not trail latest offsets batch %d by one; replaying batch %d",
		c, w.LatestOffsets, w.LatestOffsets)
}

// Is makes errors.Is(w, ErrCommitLag) true.
func (w *LagWarning) Is(target error) bool { return target == ErrCommitLag }

// Recover decides where a (re)started query continues, following Spark's
// MicroBatchExecution.populateStartOffsets:
//
//   - no offsets: next=0, replay=false (a new query);
//   - latest offsets N with commits/N: next=N+1, replay=false;
//   - offsets/N without commits/N: next=N, replay=true — re-run batch N
//     with exactly the offsets logged in offsets/N, starting from the end
//     offsets in offsets/N-1.
//
// When replaying and the commit log trails by more than one batch, next and
// replay are valid and err is a *LagWarning (errors.Is(err, ErrCommitLag));
// callers log it and go on. Any other error is fatal: a missing
// offsets/N-1 needed for a replay, or a commit log ahead of the offsets log.
func (c *Checkpoint) Recover() (next int64, replay bool, err error) {
	next, replay, _, err = c.recover(false)
	return next, replay, err
}

// RecoverGaps is Recover for a query that runs with asynchronous progress
// tracking (Spark's asyncProgressTrackingEnabled), whose offsets log may
// skip batches: a batch to replay starts from the end of the newest batch
// logged before it, prev (Spark's getPrevBatchFromStorage), -1 when there
// is none. Without a replay prev is next−1.
func (c *Checkpoint) RecoverGaps() (next int64, replay bool, prev int64, err error) {
	return c.recover(true)
}

func (c *Checkpoint) recover(gaps bool) (next int64, replay bool, prev int64, err error) {
	next, replay, err = c.recoverLocked(gaps, &prev)
	return next, replay, prev, err
}

func (c *Checkpoint) recoverLocked(gaps bool, prev *int64) (next int64, replay bool, err error) {
	*prev = -1
	if err := c.begin(); err != nil {
		return 0, false, err
	}
	defer c.mu.Unlock()
	offIDs, err := c.batchIDs(offsetsDir)
	if err != nil {
		return 0, false, err
	}
	hasOff := len(offIDs) > 0
	var lastOff int64
	if hasOff {
		lastOff = offIDs[len(offIDs)-1]
	}
	lastCommit, hasCommit, err := c.latestCommit()
	if err != nil {
		return 0, false, fmt.Errorf("checkpoint %s: %w", c.dir, err)
	}
	if !hasOff {
		if hasCommit {
			return 0, false, fmt.Errorf("checkpoint %s: commit log has batch %d but offsets log is empty: checkpoint is damaged", c.dir, lastCommit)
		}
		return 0, false, nil
	}
	if hasCommit && lastCommit == lastOff {
		*prev = lastOff
		return lastOff + 1, false, nil
	}
	if hasCommit && lastCommit > lastOff {
		return 0, false, fmt.Errorf("checkpoint %s: commit log (batch %d) is ahead of offsets log (batch %d): checkpoint is damaged", c.dir, lastCommit, lastOff)
	}
	if gaps {
		// The newest batch logged before lastOff is its start (none: the
		// source's initial offsets); the commit log may trail, as batches
		// whose offsets were not logged wrote no commit either.
		if len(offIDs) > 1 {
			*prev = offIDs[len(offIDs)-2]
		}
		return lastOff, true, nil
	}
	if lastOff > 0 && !slices.Contains(offIDs, lastOff-1) {
		return 0, false, fmt.Errorf("checkpoint %s: batch %d must be replayed but offsets of batch %d (its start) do not exist"+
			" (a query that ran with asyncProgressTrackingEnabled logs only some batches: run it with asyncProgressTrackingEnabled=true"+
			" and asyncProgressTrackingCheckpointIntervalMs=0 until two batches have completed before turning the option off)", c.dir, lastOff, lastOff-1)
	}
	*prev = lastOff - 1
	if lastOff > 0 && (!hasCommit || lastCommit < lastOff-1) {
		lc := int64(-1)
		if hasCommit {
			lc = lastCommit
		}
		return lastOff, true, &LagWarning{LatestOffsets: lastOff, LatestCommit: lc}
	}
	return lastOff, true, nil
}
