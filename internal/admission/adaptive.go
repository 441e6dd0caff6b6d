package admission

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// # Adaptive admission
//
// Spark leaves the batch size to a static maxOffsetsPerTrigger. sluice can
// instead choose each batch's record limit so the batch finishes near a
// target duration, from what recent batches cost.
//
// Model. A batch of n records takes d(n) = f + c·n, where f is the fixed
// cost of a batch (planning, offset and commit logs, task start-up) and c
// the marginal cost of a record. Both are measured, not guessed: f is the
// batch's time outside its tasks' record work (trigger time minus addBatch,
// plus the per-task overhead the engine reports), and c comes from
// exponentially weighted sums over recent batches,
//
//	ĉ = Σ wᵢ·pᵢ / Σ wᵢ·nᵢ,   wᵢ = λ^(age of batch i),  λ = 0.5,
//
// where pᵢ is batch i's processing time (addBatch) and nᵢ its rows. Summing
// before dividing weights each batch by its size, so tiny batches, whose
// per-record cost is dominated by fixed task overhead, cannot drag the
// estimate up and shrink the next batch into a spiral. λ = 0.5 halves a
// batch's weight per batch of age: after a step change in cost the estimate
// is 50 %, 75 %, 87.5 %, 94 % of the way there 1–4 batches later.
//
// Control law. The next limit is the one that would hit the target:
//
//	n* = (T − f̂) / ĉ
//
// then bounded: it may grow at most ×2 per batch (a cheap burst of small
// batches must not licence a huge one), may shrink at once (an overrun is
// corrected in the next batch), and is clamped to [minOffsetsPerTrigger,
// maxOffsetsPerTrigger] and to what the memory budget allows.
//
// Why it is stable. With exact estimates the law is a deadbeat controller:
// one step puts d at T, because d is linear in n and the law inverts it. The
// estimate error after a cost step of factor k decays geometrically (factor
// λ per batch), so the relative batch-duration error also decays by about λ
// per batch with no sign change — it approaches the target from one side and
// does not oscillate. The ×2 growth cap only slows convergence from below;
// it cannot cause overshoot. Measurement noise enters through ĉ, which
// averages over ~1/(1−λ) = 2 batches; that is the price of reacting within
// a few batches.

// BatchStat is what admission needs to know about a finished batch.
type BatchStat struct {
	Rows  int64
	Bytes int64
	// Processing is the time spent reading, transforming and writing the
	// batch's records (Spark's addBatch).
	Processing time.Duration
	// Overhead is the rest of the batch: planning, offset/commit logs.
	Overhead time.Duration
	// Limit is the record limit the batch was admitted under (0 = none).
	Limit int64
}

// AdaptiveConfig bounds the controller.
type AdaptiveConfig struct {
	// Target is the batch duration to aim for.
	Target time.Duration
	// Min and Max bound the limit (minOffsetsPerTrigger,
	// maxOffsetsPerTrigger); 0 = unbounded.
	Min, Max int64
	// Initial is the limit used before any batch has been measured
	// (default 1,000 records, or Max when smaller): small, because nothing is known about the cost yet; the ×2 growth cap then ramps up in a few batches.
	Initial int64
	// MaxLagSeconds, when > 0, lets the controller double the target while
	// the query is more than that far behind: bigger batches amortise the
	// fixed cost and drain faster, at the price of latency.
	MaxLagSeconds float64
}

// DefaultInitialLimit is the first adaptive batch's limit when nothing has
// been measured yet.
const DefaultInitialLimit = 1_000

// Decay is λ, the per-batch weight decay of the cost estimate.
const Decay = 0.5

// AdaptiveDecision is the controller's choice and why it was made.
type AdaptiveDecision struct {
	// Limit is the record limit for the next batch (≥ 1).
	Limit int64
	// Reason names what decided it: "estimate", "initial", "growth cap",
	// "maxOffsetsPerTrigger", "minOffsetsPerTrigger", "memory budget".
	Reason string
	// CostPerRecord and Overhead are the estimates used (0 when unknown).
	CostPerRecord time.Duration
	Overhead      time.Duration
	// Target is the batch duration aimed at (after any lag boost).
	Target time.Duration
}

func (d AdaptiveDecision) String() string {
	return fmt.Sprintf("limit %d (%s; target %s, cost %s/record, overhead %s)",
		d.Limit, d.Reason, d.Target, d.CostPerRecord, d.Overhead)
}

// Adaptive chooses the next batch's record limit from recent batch history
// (oldest first). lagSeconds is the current time lag (NaN or 0 if unknown).
// It is a pure function.
func Adaptive(cfg AdaptiveConfig, history []BatchStat, lagSeconds float64) AdaptiveDecision {
	target := cfg.Target
	if target <= 0 {
		target = time.Second
	}
	if cfg.MaxLagSeconds > 0 && lagSeconds > cfg.MaxLagSeconds {
		target *= 2
	}
	d := AdaptiveDecision{Target: target}
	// Weighted sums over batches with rows, newest weighted 1; the fixed
	// cost is the median of the last few batches' overheads, so one slow
	// fsync does not shrink the next batches.
	var sp, sn float64
	var overheads []time.Duration
	var last *BatchStat
	w := 1.0
	for i := len(history) - 1; i >= 0 && w > 1e-3; i-- {
		h := history[i]
		if h.Rows <= 0 {
			continue
		}
		if last == nil {
			last = &history[i]
		}
		sp += w * float64(h.Processing)
		sn += w * float64(h.Rows)
		if len(overheads) < 5 {
			overheads = append(overheads, h.Overhead)
		}
		w *= Decay
	}
	var limit float64
	if last == nil || sn == 0 || sp <= 0 {
		d.Reason = "initial"
		limit = float64(cfg.Initial)
		if limit <= 0 {
			limit = DefaultInitialLimit
		}
	} else {
		c := sp / sn // ns per record
		slices.Sort(overheads)
		f := float64(overheads[len(overheads)/2]) // ns per batch
		d.CostPerRecord = time.Duration(c)
		d.Overhead = time.Duration(f)
		budget := float64(target) - f
		if budget < float64(target)/10 {
			// Fixed cost eats the target: keep batches meaningful anyway.
			budget = float64(target) / 10
		}
		limit = budget / c
		d.Reason = "estimate"
		prev := float64(last.Limit)
		if prev <= 0 {
			prev = float64(last.Rows)
		}
		if limit > 2*prev {
			limit = 2 * prev
			d.Reason = "growth cap"
		}
	}
	if limit > math.MaxInt64/2 {
		limit = math.MaxInt64 / 2
	}
	d.Limit = int64(limit)
	if cfg.Max > 0 && d.Limit > cfg.Max {
		d.Limit, d.Reason = cfg.Max, "maxOffsetsPerTrigger"
	}
	if cfg.Min > 0 && d.Limit < cfg.Min {
		d.Limit, d.Reason = cfg.Min, "minOffsetsPerTrigger"
	}
	if d.Limit < 1 {
		d.Limit = 1
	}
	return d
}

// BudgetLimit returns how many records fit in budget bytes given the
// in-memory bytes per record measured on recent batches (history, oldest
// first), or -1 when nothing is known yet. reserve is subtracted from the
// budget first (fetch buffers, sink buffers).
func BudgetLimit(budget, reserve int64, history []BatchStat) int64 {
	if budget <= 0 {
		return -1
	}
	var bytes, rows int64
	for i := len(history) - 1; i >= 0 && i >= len(history)-8; i-- {
		bytes += history[i].Bytes
		rows += history[i].Rows
	}
	if rows == 0 || bytes == 0 {
		return -1
	}
	per := float64(bytes) / float64(rows)
	room := budget - reserve
	if room < budget/10 {
		room = budget / 10
	}
	n := int64(float64(room) / per)
	return max(n, 1)
}
