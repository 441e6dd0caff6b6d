package state

import "time"

// Phases an opTimer measures.
const (
	phaseNone = iota
	phaseUpdate
	phaseRemove
)

// opTimer measures a store's allUpdatesTimeMs and allRemovalsTimeMs the
// way Spark does, as the time of the batch's update and removal loops
// rather than the sum of each call's own duration: a run of reads and
// writes (or of removals) is timed from its first call to the store's next
// call of the other kind, or to Idle. The clock is read where a run starts
// or ends, not twice per key (that was ≈ 3 % of a window count's CPU).
type opTimer struct {
	phase int
	start time.Time
	ns    [3]int64
}

// enter moves to phase, closing the running one.
func (t *opTimer) enter(phase int) {
	if t.phase == phase {
		return
	}
	now := time.Now()
	if t.phase != phaseNone {
		t.ns[t.phase] += int64(now.Sub(t.start))
	}
	t.phase, t.start = phase, now
}

// stop ends the running phase.
func (t *opTimer) stop() { t.enter(phaseNone) }

func (t *opTimer) updateMs() int64 { return time.Duration(t.ns[phaseUpdate]).Milliseconds() }
func (t *opTimer) removeMs() int64 { return time.Duration(t.ns[phaseRemove]).Milliseconds() }

// Idler is implemented by stores that time runs of calls (the memory
// provider's): Idle tells the store that its task stopped using it for
// now (a stage-2 task finished its Process or Finish), so the time until
// its next call is not counted as update or removal time.
type Idler interface {
	Idle()
}
