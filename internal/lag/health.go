package lag

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
)

// Status is a Burrow-style lag status. Values are ordered by severity, so
// the worse of two statuses is the larger: OK < ERR < WARN < STALL < STOP <
// REWIND. ERR means "cannot tell" (no samples), which must neither hide a
// real problem nor raise an alarm on its own, hence its low rank.
type Status int

// Statuses, from best to worst.
const (
	StatusOK     Status = iota // keeping up, or lag is shrinking
	StatusErr                  // unknown: nothing to evaluate
	StatusWarn                 // offsets advance but lag has not decreased over the window
	StatusStall                // consumed offset not moving while lag > 0
	StatusStop                 // no commit for too long while lag > 0
	StatusRewind               // consumed offset moved backwards
)

var statusNames = [...]string{"OK", "ERR", "WARN", "STALL", "STOP", "REWIND"}

// String returns the status name, e.g. "WARN".
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// MarshalText writes the status name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status name.
func (s *Status) UnmarshalText(b []byte) error {
	i := slices.Index(statusNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("lag: unknown status %q", b)
	}
	*s = Status(i)
	return nil
}

// Sample is one partition's position after one committed batch.
type Sample struct {
	// Batch is the batch id, used in reasons.
	Batch int64
	// Time is when the batch committed.
	Time time.Time
	// Offset is the consumed offset after the batch: the next offset to
	// read.
	Offset int64
	// Latest is the log end offset the batch was planned against: what
	// the batch could have taken. Latest − Offset > 0 means the read limit
	// (or minOffsetsPerTrigger) left records behind.
	Latest int64
	// Head is the log end sampled right after the batch committed, which
	// also counts the records that arrived while the batch ran: the real
	// lag it left. 0 means not sampled (Latest stands in).
	Head int64
}

// Lag is the records the plan left behind: Latest − Offset, at least 0.
func (s Sample) Lag() int64 { return max(0, s.Latest-s.Offset) }

// Behind is the records behind when the batch committed: max(Head,
// Latest) − Offset, at least 0.
func (s Sample) Behind() int64 { return max(0, max(s.Head, s.Latest)-s.Offset) }

// DefaultWindow is the default number of recent batches evaluated
// (Burrow's intervals).
const DefaultWindow = 10

// Config tunes Evaluate.
type Config struct {
	// Window is how many of the newest samples are evaluated; <= 0 means
	// DefaultWindow.
	Window int
	// StopAfter is how long without a commit, while behind, makes STOP.
	// 0 uses Burrow's rule: longer than the window's span from first to
	// last commit (no STOP with a single sample).
	StopAfter time.Duration
	// StallAfter is how long a query may be busy without progress (a
	// source that does not answer, a batch that reads nothing) before it is
	// STALL; see Stalled. 0 leaves the choice to the caller (the monitor
	// uses max(3 × trigger interval, 10 s)).
	StallAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	return c
}

// Health is the outcome of an evaluation.
type Health struct {
	Status Status `json:"status"`
	// Reason explains the status in words and numbers.
	Reason string `json:"reason"`
	// Lag is the records behind at the newest sample (for a query: the
	// sum over partitions).
	Lag int64 `json:"lag"`
	// Samples is how many samples were evaluated.
	Samples int `json:"samples"`
	// Complete is Samples / Window (for a query: the lowest partition's):
	// below 1 the verdict rests on less history than configured.
	Complete float64 `json:"complete"`
}

// Evaluate judges one partition from its recent samples (oldest first; only
// the newest cfg.Window are used) at time now. "Behind" is the lag when a
// batch committed (Sample.Behind, from the sampled head); the "planned"
// lag is what the batch's plan left (Sample.Lag). Rules, first match wins:
//
//  1. ERR — no samples.
//  2. REWIND — the consumed offset decreased between two samples. Checked
//     first so that a rewind is seen even when the lag is now zero
//     (Burrow #716).
//  3. OK — nothing behind at the newest sample.
//  4. STOP — now − last commit exceeds the threshold (cfg.StopAfter, or the
//     window's span) while behind.
//  5. WARN — the lag grew: behind increased at each of the last k ≥ 2
//     batches while offsets advanced, and either the plan left records
//     behind and the growth exceeds what a batch read, or (no read limit
//     holding the query back) k ≥ 3 and behind at least doubled. Checked
//     before the escapes below, so a caught-up batch just before a spike
//     does not hide it.
//  6. OK — the newest batch took everything its plan saw (what is behind
//     arrived while it ran), or the plan left nothing behind at some
//     sample of the window: the query caught up recently.
//  7. OK — a single sample: no trend yet.
//  8. STALL — the consumed offset did not move across the window while
//     behind.
//  9. WARN — offsets advanced but the planned lag never decreased from
//     one sample to the next: the query keeps pace at best and is not
//     catching up.
//  10. OK — the lag decreased at least once.
//
// This is Burrow's evaluator with three changes: REWIND is checked before
// the zero-lag escape, STOP and lag growth before the "zero lag somewhere
// in the window" escape (a query that stops, or falls behind, right after
// a burst is still reported), and lag is measured both against the plan
// and against a head sampled independently of it.
//
// To evaluate between batches (e.g. for a UI while a batch runs), pass a
// copy of the window whose newest sample has Head raised to the newest
// known latest offset, so that data arriving at a stuck query counts.
func Evaluate(window []Sample, now time.Time, cfg Config) Health {
	cfg = cfg.withDefaults()
	if len(window) > cfg.Window {
		window = window[len(window)-cfg.Window:]
	}
	n := len(window)
	h := Health{Samples: n, Complete: float64(n) / float64(cfg.Window)}
	if n == 0 {
		h.Status, h.Reason = StatusErr, "no committed batch observed yet"
		return h
	}
	first, last := window[0], window[n-1]
	h.Lag = last.Behind()
	for i := n - 1; i > 0; i-- {
		if prev, cur := window[i-1], window[i]; cur.Offset < prev.Offset {
			h.Status = StatusRewind
			h.Reason = fmt.Sprintf("consumed offset moved backwards from %d to %d between batch %d and batch %d",
				prev.Offset, cur.Offset, prev.Batch, cur.Batch)
			return h
		}
	}
	if h.Lag == 0 {
		h.Status, h.Reason = StatusOK, fmt.Sprintf("caught up at offset %d", last.Offset)
		return h
	}
	threshold := cfg.StopAfter
	if threshold <= 0 {
		threshold = last.Time.Sub(first.Time)
	}
	if idle := now.Sub(last.Time); threshold > 0 && idle > threshold {
		h.Status = StatusStop
		h.Reason = fmt.Sprintf("no commit for %s (threshold %s) since batch %d, while %d records behind",
			idle.Round(time.Millisecond), threshold.Round(time.Millisecond), last.Batch, h.Lag)
		return h
	}
	if from, ok := grew(window); ok {
		f := window[from]
		h.Status = StatusWarn
		h.Reason = fmt.Sprintf("lag grew from %d to %d records over the last %d batches while offsets advanced from %d to %d",
			f.Behind(), h.Lag, n-from, f.Offset, last.Offset)
		return h
	}
	if last.Lag() == 0 {
		h.Status = StatusOK
		h.Reason = fmt.Sprintf("%d records arrived while batch %d ran; it took all its plan saw", h.Lag, last.Batch)
		return h
	}
	for i := n - 2; i >= 0; i-- {
		if window[i].Lag() == 0 {
			h.Status = StatusOK
			h.Reason = fmt.Sprintf("lag %d records, but caught up at batch %d, %d batches ago", h.Lag, window[i].Batch, n-1-i)
			return h
		}
	}
	if n == 1 {
		h.Status, h.Reason = StatusOK, fmt.Sprintf("lag %d records; one batch observed, no trend yet", h.Lag)
		return h
	}
	if first.Offset == last.Offset {
		h.Status = StatusStall
		h.Reason = fmt.Sprintf("consumed offset stuck at %d for the last %d batches while %d records behind",
			last.Offset, n, h.Lag)
		return h
	}
	decreased := false
	for i := 1; i < n; i++ {
		if window[i].Lag() < window[i-1].Lag() {
			decreased = true
			break
		}
	}
	if !decreased {
		h.Status = StatusWarn
		if last.Lag() > first.Lag() {
			h.Reason = fmt.Sprintf("lag grew from %d to %d records over the last %d batches while offsets advanced from %d to %d",
				first.Lag(), last.Lag(), n, first.Offset, last.Offset)
		} else {
			h.Reason = fmt.Sprintf("lag stayed at %d records over the last %d batches while offsets advanced from %d to %d",
				last.Lag(), n, first.Offset, last.Offset)
		}
		return h
	}
	h.Status = StatusOK
	h.Reason = fmt.Sprintf("lag went from %d to %d records over the last %d batches, decreasing at least once",
		first.Behind(), h.Lag, n)
	return h
}

// grew finds the run of newest samples over which the lag grew (rule 5 of
// Evaluate) and returns the index where it starts.
func grew(w []Sample) (from int, ok bool) {
	n := len(w)
	from = n - 1
	for from > 0 && w[from].Behind() > w[from-1].Behind() && w[from].Offset > w[from-1].Offset {
		from--
	}
	steps := n - 1 - from
	if steps < 2 {
		return 0, false
	}
	first, last := w[from], w[n-1]
	growth := last.Behind() - first.Behind()
	if last.Lag() > 0 {
		var read int64 // the most one batch of the run advanced
		for i := from + 1; i < n; i++ {
			read = max(read, w[i].Offset-w[i-1].Offset)
		}
		if growth > read {
			return from, true
		}
	}
	return from, steps >= 3 && first.Behind() > 0 && last.Behind() >= 2*first.Behind()
}

// PartitionHealth is one partition's evaluation.
type PartitionHealth struct {
	Partition partition.ID
	Health
}

// QueryHealth combines partition evaluations into the query's: the status
// of the worst partition (ties broken by larger lag, then topic and
// partition order), a reason naming it and how many partitions share that
// status, the total lag and the lowest Complete. No partitions is ERR.
func QueryHealth(parts []PartitionHealth) Health {
	if len(parts) == 0 {
		return Health{Status: StatusErr, Reason: "no partitions"}
	}
	worst := parts[0]
	h := Health{Complete: parts[0].Complete, Samples: parts[0].Samples}
	for _, p := range parts {
		h.Lag += p.Lag
		h.Complete = min(h.Complete, p.Complete)
		h.Samples = min(h.Samples, p.Samples)
		switch {
		case p.Status > worst.Status,
			p.Status == worst.Status && p.Lag > worst.Lag,
			p.Status == worst.Status && p.Lag == worst.Lag && p.Partition.Compare(worst.Partition) < 0:
			worst = p
		}
	}
	same := 0
	for _, p := range parts {
		if p.Status == worst.Status {
			same++
		}
	}
	h.Status = worst.Status
	if worst.Status == StatusOK {
		h.Reason = fmt.Sprintf("all %d partitions OK, %d records behind in total", len(parts), h.Lag)
	} else {
		h.Reason = fmt.Sprintf("%s: %s (%d of %d partitions %s)", worst.Partition, worst.Reason, same, len(parts), worst.Status)
	}
	return h
}

// Tracker keeps each partition's window of recent samples for Evaluate. It
// is safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	cfg     Config
	windows map[partition.ID][]Sample
}

// NewTracker returns a Tracker evaluating with cfg.
func NewTracker(cfg Config) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), windows: make(map[partition.ID][]Sample)}
}

// Add appends a committed batch's sample for p, keeping the newest
// cfg.Window samples.
func (t *Tracker) Add(p partition.ID, s Sample) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := append(t.windows[p], s)
	if len(w) > t.cfg.Window {
		w = append(w[:0], w[len(w)-t.cfg.Window:]...)
	}
	t.windows[p] = w
}

// Window returns a copy of p's samples, oldest first.
func (t *Tracker) Window(p partition.ID) []Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.windows[p])
}

// Forget drops p's samples.
func (t *Tracker) Forget(p partition.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.windows, p)
}

// Evaluate evaluates every tracked partition at now (sorted by topic and
// partition) and the query. heads, if not nil, gives newer latest offsets
// learned since the last commit; each raises the Head of its partition's
// newest sample for this evaluation only (see Evaluate).
func (t *Tracker) Evaluate(now time.Time, heads map[partition.ID]int64) ([]PartitionHealth, Health) {
	t.mu.Lock()
	parts := make([]PartitionHealth, 0, len(t.windows))
	for p, w := range t.windows {
		if head, ok := heads[p]; ok && len(w) > 0 && head > max(w[len(w)-1].Head, w[len(w)-1].Latest) {
			w = slices.Clone(w)
			w[len(w)-1].Head = head
		}
		parts = append(parts, PartitionHealth{Partition: p, Health: Evaluate(w, now, t.cfg)})
	}
	t.mu.Unlock()
	slices.SortFunc(parts, func(a, b PartitionHealth) int { return a.Partition.Compare(b.Partition) })
	return parts, QueryHealth(parts)
}

// Busy is what a query is doing between two committed batches, as its
// engine reports it; Stalled judges it.
type Busy struct {
	// Active: an attempt (planning a batch or running one) is in progress.
	Active bool
	// Since is the last sign of progress (the start of the current step,
	// or the last rows read).
	Since time.Time
	// Step is what the query is doing, e.g. "Getting offsets from …".
	Step string
	// Waiting is the source's explanation of what it waits for, or "".
	Waiting string
}

// Stalled reports a query that has been busy without progress for longer
// than after: the source does not answer (a broker outage or hang) or a
// batch reads nothing. The lag-based evaluation cannot see this: a query
// that was caught up before its source went silent still has no lag.
func Stalled(b Busy, now time.Time, after time.Duration) (Health, bool) {
	if !b.Active || b.Since.IsZero() || after <= 0 {
		return Health{}, false
	}
	idle := now.Sub(b.Since)
	if idle <= after {
		return Health{}, false
	}
	reason := fmt.Sprintf("no progress for %s (threshold %s), still at: %s", idle.Round(10*time.Millisecond), after, b.Step)
	if b.Waiting != "" {
		reason += "; " + b.Waiting
	}
	return Health{Status: StatusStall, Reason: reason}, true
}
