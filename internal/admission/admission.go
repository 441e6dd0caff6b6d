// Package admission is the engine's planner: it decides how much of the
// available backlog each micro-batch may take, and why. Everything that
// bounds a batch lives here — the source's default limits (Spark's
// getDefaultReadLimit, Event Hubs' per-partition default),
// maxOffsetsPerTrigger, minOffsetsPerTrigger with maxTriggerDelay,
// adaptive admission, the memory budget and the share of it left to
// source buffers, and the split of a record cap over partitions — behind
// one pure function, Plan. Sources only report what is available
// (source.Partitioned) or, when their offsets are not records per
// partition, cut their batch within the limit Plan chose (source.Limited).
//
// Every function here is pure: the same offsets, limits, history, clock
// reading and batch id give the same decision, so table tests can pin
// both Spark's formulas and sluice's stricter ones, and a replayed batch
// can be re-planned identically.
//
// # Splitting maxOffsetsPerTrigger over partitions
//
// Spark (KafkaMicroBatchStream.rateLimit) gives each partition
// limit × backlog/total, rounding shares below 1 up and the rest down. The
// admitted total therefore drifts from the limit: it can exceed it (ten
// partitions each rounding 0.1 up to 1) or fall short (floors lose up to one
// offset per partition). SparkSplit reproduces that formula as a reference.
//
// Split is what sluice uses. It never admits more than the limit and, when
// the backlog exceeds the limit, admits exactly the limit:
//
//  1. the limit is split in proportion to each partition's backlog with
//     largest-remainder rounding (Hamilton's method), computed in exact
//     128-bit integer arithmetic; ties go to the larger backlog, then to a
//     rotation order that moves with the batch id;
//  2. no partition with backlog starves: one whose share rounded to zero
//     takes one offset from the partition with the largest grant, so a small
//     partition next to a huge one still progresses every batch;
//  3. when the limit is smaller than the number of partitions with backlog,
//     single offsets go to a window of partitions that rotates with the batch
//     id, so each is served within ⌈n/limit⌉ batches.
//
// A sum of backlogs that overflows 64 bits admits everything (no realistic
// limit is that large).
package admission

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/sluice-stream/sluice/internal/partition"
)

type backlog struct {
	tp        partition.ID
	size      int64
	rem       uint64 // remainder of the proportional share (same denominator for all)
	grant     int64
	rotateKey int
}

// Split returns the end offsets for one batch that starts at start when
// latest is available, admitting at most limit offsets in total (see the
// package doc). limit ≤ 0 admits everything. Every partition of latest
// appears in the result; a partition absent from start must be resolved by
// the caller first (Spark starts new partitions at their earliest offset).
// batchID only rotates who gets the single offsets when limit is smaller than
// the number of partitions with backlog.
func Split(limit int64, start, latest partition.Offsets, batchID int64) partition.Offsets {
	end := make(partition.Offsets, len(latest))
	var parts []*backlog
	var total uint64
	overflow := false
	for _, tp := range latest.Sorted() {
		s, ok := start[tp]
		l := latest[tp]
		if !ok || l <= s {
			end[tp] = l
			if ok && l < s {
				end[tp] = l // offsets moved backwards: the caller reports it
			}
			continue
		}
		end[tp] = s
		parts = append(parts, &backlog{tp: tp, size: l - s})
		t := total + uint64(l-s)
		overflow = overflow || t < total
		total = t
	}
	if limit <= 0 || total <= uint64(limit) || overflow {
		for _, b := range parts {
			end[b.tp] = start[b.tp] + b.size
		}
		return end
	}
	n := int64(len(parts))
	rot := int(((batchID % n) + n) % n)
	for i, b := range parts {
		b.rotateKey = (i - rot + len(parts)) % len(parts)
	}
	if limit < n {
		// Not enough for one offset each: serve a rotating window.
		for _, b := range parts {
			if int64(b.rotateKey) < limit {
				end[b.tp] = start[b.tp] + 1
			}
		}
		return end
	}
	// Proportional shares, floored, in exact 128-bit arithmetic.
	var granted uint64
	for _, b := range parts {
		hi, lo := bits.Mul64(uint64(limit), uint64(b.size))
		q, r := bits.Div64(hi, lo, total) // hi < total because limit < total
		b.grant = int64(q)
		b.rem = r
		granted += q
	}
	// Largest remainders take the offsets the floors lost.
	order := slices.Clone(parts)
	slices.SortFunc(order, func(a, b *backlog) int {
		if c := cmp.Compare(b.rem, a.rem); c != 0 {
			return c
		}
		if c := cmp.Compare(b.size, a.size); c != 0 {
			return c
		}
		return cmp.Compare(a.rotateKey, b.rotateKey)
	})
	for left, i := uint64(limit)-granted, 0; left > 0; i++ {
		b := order[i%len(order)]
		if b.grant < b.size {
			b.grant++
			left--
		}
	}
	// No starvation: a partition whose share rounded to 0 takes one offset
	// from the partition with the largest grant (which has at least 2,
	// since the grants sum to limit ≥ n).
	for _, b := range parts {
		if b.grant > 0 {
			continue
		}
		donor := slices.MaxFunc(parts, func(x, y *backlog) int {
			if c := cmp.Compare(x.grant, y.grant); c != 0 {
				return c
			}
			return cmp.Compare(y.rotateKey, x.rotateKey)
		})
		donor.grant--
		b.grant = 1
	}
	for _, b := range parts {
		end[b.tp] = start[b.tp] + b.grant
	}
	return end
}

// SparkSplit is Spark's KafkaMicroBatchStream.rateLimit, kept as the
// reference the tests compare Split against: each partition with backlog
// gets limit × size/total, rounded up below 1 and down above it, capped at
// latest. The total can exceed or fall short of the limit.
func SparkSplit(limit int64, start, latest partition.Offsets) partition.Offsets {
	end := make(partition.Offsets, len(latest))
	var total float64
	for tp, l := range latest {
		if s, ok := start[tp]; ok && l > s {
			total += float64(l - s)
		}
	}
	if total < 1 {
		for tp, l := range latest {
			end[tp] = l
		}
		return end
	}
	for tp, l := range latest {
		s, ok := start[tp]
		if !ok || l <= s {
			end[tp] = l
			continue
		}
		prorate := float64(limit) * (float64(l-s) / total)
		var n float64
		if prorate < 1 {
			n = math.Ceil(prorate)
		} else {
			n = math.Floor(prorate)
		}
		off := float64(s) + n
		if off > float64(math.MaxInt64) || s+int64(n) < s {
			end[tp] = l
			continue
		}
		end[tp] = min(l, s+int64(n))
	}
	return end
}
