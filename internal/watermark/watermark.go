// Package watermark computes event-time watermarks exactly as Spark does:
// every withWatermark node of a query tracks the event times of the rows it
// sees in a batch (Stats), a Tracker turns the nodes' values into the one
// global watermark with the min or max policy, and the global value only
// moves forward.
//
// Timing (Spark's): the watermark computed after batch N is logged in
// commits/N (nextBatchWatermarkMs) and offsets/N+1 (batchWatermarkMs) and is
// the one batch N+1 uses to drop late rows and evict state. All values are
// milliseconds since the Unix epoch, as Spark keeps them.
package watermark

import (
	"fmt"
	"math"
	"strings"
	"sync"
)

// Policy chooses the global watermark from the nodes' values
// (spark.sql.streaming.multipleWatermarkPolicy).
type Policy string

// The policies.
const (
	Min Policy = "min" // the slowest stream decides (Spark's default, safe)
	Max Policy = "max" // the fastest stream decides (drops more late data)
)

// ParsePolicy parses a policy name, ignoring case. The error is Spark's.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "min":
		return Min, nil
	case "max":
		return Max, nil
	}
	return "", fmt.Errorf("%q: valid values are 'min' and 'max'", s)
}

// Stats are the event times one withWatermark node saw in a batch, in
// milliseconds (Spark's EventTimeStats): maximum, minimum, running average
// and count. The zero value is empty (Count 0).
type Stats struct {
	Max, Min int64
	Avg      float64
	Count    int64
}

// Add folds in one event time.
func (s *Stats) Add(ms int64) {
	if s.Count == 0 {
		*s = Stats{Max: ms, Min: ms, Avg: float64(ms), Count: 1}
		return
	}
	s.Max = max(s.Max, ms)
	s.Min = min(s.Min, ms)
	s.Count++
	s.Avg += (float64(ms) - s.Avg) / float64(s.Count)
}

// Merge folds in another node-local Stats (a task's), weighting the
// averages by their counts without overflowing on large values.
func (s *Stats) Merge(o Stats) {
	switch {
	case o.Count == 0:
		return
	case s.Count == 0:
		*s = o
		return
	}
	s.Max = max(s.Max, o.Max)
	s.Min = min(s.Min, o.Min)
	total := s.Count + o.Count
	s.Avg += (o.Avg - s.Avg) * float64(o.Count) / float64(total)
	s.Count = total
}

// Collector gathers one node's Stats from concurrent tasks. Tasks merge
// their chunk-local Stats (one lock per chunk, not per row); the engine
// takes the batch's total when the batch ends.
type Collector struct {
	mu sync.Mutex
	s  Stats
}

// Merge adds a task's Stats.
func (c *Collector) Merge(s Stats) {
	if s.Count == 0 {
		return
	}
	c.mu.Lock()
	c.s.Merge(s)
	c.mu.Unlock()
}

// Take returns what was gathered since the last Take and starts afresh.
func (c *Collector) Take() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	c.s = Stats{}
	return s
}

// Tracker keeps the per-node watermarks and the global watermark of one
// query run. Per-node values live in memory only: after a restart they
// start empty again and the global value comes back from the checkpoint
// (SetGlobal), as in Spark.
type Tracker struct {
	policy Policy
	nodes  map[int]int64
	global int64
}

// NewTracker returns a tracker with a global watermark of 0.
func NewTracker(p Policy) *Tracker {
	if p == "" {
		p = Min
	}
	return &Tracker{policy: p, nodes: map[int]int64{}}
}

// Policy returns the tracker's policy.
func (t *Tracker) Policy() Policy { return t.policy }

// SetGlobal sets the global watermark (recovery from the checkpoint).
func (t *Tracker) SetGlobal(ms int64) { t.global = ms }

// Global is the current global watermark.
func (t *Tracker) Global() int64 { return t.global }

// Update folds in one batch: stats[i] is what node i saw and delays[i] its
// delay in milliseconds. A node with rows moves to max(event time) − delay
// if that is above its previous value (it may be negative); a node that has
// never seen a row counts as 0. The global value becomes the policy's
// choice if that is above it. Update returns the new global value.
func (t *Tracker) Update(stats []Stats, delays []int64) int64 {
	if len(stats) == 0 {
		return t.global
	}
	for i, s := range stats {
		if s.Count > 0 {
			wm := s.Max - delays[i]
			if prev, ok := t.nodes[i]; !ok || wm > prev {
				t.nodes[i] = wm
			}
		} else if _, ok := t.nodes[i]; !ok {
			t.nodes[i] = 0
		}
	}
	chosen := int64(math.MaxInt64)
	if t.policy == Max {
		chosen = math.MinInt64
	}
	for i := range stats {
		v := t.nodes[i]
		if t.policy == Max {
			chosen = max(chosen, v)
		} else {
			chosen = min(chosen, v)
		}
	}
	if chosen > t.global {
		t.global = chosen
	}
	return t.global
}
