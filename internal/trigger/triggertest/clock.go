// Package triggertest provides a fake trigger.Clock for deterministic tests
// of anything that schedules on one (the trigger executor, the engine).
package triggertest

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is a virtual clock. Time moves only when the code under test
// sleeps — Sleep advances it by the requested duration at once, so a
// processingTime schedule or an idle back-off runs without real waiting —
// or when the test calls Advance. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// onSleep runs inside Sleep (in the sleeping goroutine) before the
	// clock advances.
	onSleep func(d time.Duration)
}

// New returns a clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now implements trigger.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep implements trigger.Clock: it records d, calls the OnSleep hook,
// advances the clock by d (if positive) and returns ctx's error, if any.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	hook := c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	if d > 0 {
		c.Advance(d)
	}
	return ctx.Err()
}

// Advance moves the clock forward by d (a batch "taking time").
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Sleeps returns every duration slept so far.
func (c *Clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// OnSleep sets a hook run at the start of every Sleep, in the sleeping
// goroutine: between two triggers of a query, so a test can append data,
// change limits or stop the query at an exact point of the schedule
// without racing it.
func (c *Clock) OnSleep(f func(d time.Duration)) {
	c.mu.Lock()
	c.onSleep = f
	c.mu.Unlock()
}
