// Package trigger decides when micro-batches run: Spark's default trigger
// (next batch as soon as the previous one ends), processingTime (batches
// aligned to multiples of the interval since the Unix epoch), once and
// availableNow.
//
// An executor only schedules. It calls a RunFunc that executes at most one
// batch and reports whether it found data and whether the query should go
// on; the engine owns everything else.
package trigger

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Kind is the trigger type.
type Kind int

// Trigger kinds.
const (
	Default Kind = iota
	ProcessingTime
	Once
	AvailableNow
)

func (k Kind) String() string {
	switch k {
	case ProcessingTime:
		return "ProcessingTime"
	case Once:
		return "Once"
	case AvailableNow:
		return "AvailableNow"
	}
	return "Default"
}

// Trigger is a trigger kind with its interval (ProcessingTime only).
type Trigger struct {
	Kind     Kind
	Interval time.Duration
}

// String renders e.g. "ProcessingTime(20000 ms)".
func (t Trigger) String() string {
	if t.Kind == ProcessingTime {
		return fmt.Sprintf("ProcessingTime(%d ms)", t.Interval.Milliseconds())
	}
	return t.Kind.String()
}

// Result is what one attempt reports.
type Result struct {
	// Ran is true when a batch was executed (data found or a replay).
	Ran bool
	// Done is true when the query should stop (Once after its batch,
	// AvailableNow when the snapshot is drained).
	Done bool
	// Waited is true when an attempt that ran nothing already waited for
	// data (an event-driven default trigger: the source said when data
	// arrived): the default trigger then tries again at once instead of
	// polling with back-off.
	Waited bool
}

// RunFunc runs at most one batch. intended is when the trigger meant the
// attempt to start (the interval boundary for processingTime, the end of
// the previous attempt otherwise); the difference to the actual start is the
// scheduling delay.
type RunFunc func(ctx context.Context, intended time.Time) (Result, error)

// Clock abstracts time for tests.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Idle polling bounds for the default trigger: Spark re-polls every 10 ms
// forever (spark.sql.streaming.pollingDelay), which costs a broker round
// trip 100 times a second on an idle topic. sluice starts at 10 ms and
// doubles up to IdleMaxPoll while nothing arrives, then snaps back to 10 ms.
// A source that says when data arrives (the Kafka source) replaces the
// polling altogether: the engine waits on it and reports Result.Waited.
const (
	IdleMinPoll = 10 * time.Millisecond
	IdleMaxPoll = 250 * time.Millisecond
)

// intervalAllowed lists the valid processingTime intervals, for errors.
const intervalAllowed = `(allowed: 0 = as fast as possible, or whole milliseconds ≥ 1, e.g. "1 millisecond" or "20 seconds")`

// CheckInterval reports whether d is a valid processingTime interval: 0 (the
// next batch as soon as the previous ends) or a whole number of
// milliseconds. Spark keeps trigger intervals in milliseconds and truncates
// anything finer, so "999 microseconds" is an interval of 0 there; sluice
// refuses such values instead of changing them silently (an interval below
// a millisecond used to make the trigger loop spin).
func CheckInterval(d time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%s is negative %s", d, intervalAllowed)
	case d > 0 && d < time.Millisecond:
		return fmt.Errorf("%s is below 1 millisecond %s", d, intervalAllowed)
	case d%time.Millisecond != 0:
		return fmt.Errorf("%s is not a whole number of milliseconds %s", d, intervalAllowed)
	}
	return nil
}

// IntervalError is CheckInterval's message for an interval written as text,
// quoting the text instead of the parsed duration.
func IntervalError(text string, d time.Duration) error {
	err := CheckInterval(d)
	if err == nil {
		return nil
	}
	return fmt.Errorf("%q%s", text, strings.TrimPrefix(err.Error(), d.String()))
}

// FallingBehindLogEvery is the least time between two "falling behind"
// warnings of one query: the first overrun is logged at once, later ones are
// counted and summed up in the next warning, so no interval can flood the
// log.
const FallingBehindLogEvery = 10 * time.Second

// NextAligned returns the first multiple of interval since the Unix epoch
// strictly after t (Spark's ProcessingTimeExecutor.nextBatchTime).
func NextAligned(t time.Time, interval time.Duration) time.Time {
	ms := t.UnixMilli()
	iv := interval.Milliseconds()
	if iv <= 0 {
		return t
	}
	return time.UnixMilli((ms/iv)*iv + iv)
}

// Run drives run according to t until run reports Done, returns an error,
// or ctx is cancelled (which returns nil: a requested stop).
func Run(ctx context.Context, t Trigger, clock Clock, log *slog.Logger, run RunFunc) error {
	return RunDynamic(ctx, func() Trigger { return t }, clock, log, run)
}

// RunDynamic is Run with a trigger read before every attempt, so the
// interval can change while the query runs (Query.SetLimits). The kind must
// not change between Once/AvailableNow and the others.
func RunDynamic(ctx context.Context, current func() Trigger, clock Clock, log *slog.Logger, run RunFunc) error {
	if clock == nil {
		clock = RealClock
	}
	if log == nil {
		log = slog.Default()
	}
	idle := IdleMinPoll
	intended := clock.Now()
	behind := fallingBehind{log: log}
	for {
		if ctx.Err() != nil {
			return nil
		}
		t := current()
		start := clock.Now()
		if t.Kind == ProcessingTime && t.Interval > 0 {
			// The boundary this attempt belongs to: the latest multiple of
			// the interval at or before now (the query start for the first).
			if b := NextAligned(start, t.Interval).Add(-t.Interval); b.After(intended) {
				intended = b
			}
		}
		res, err := run(ctx, intended)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch t.Kind {
		case Once:
			return nil
		case AvailableNow:
			if res.Done || !res.Ran {
				return nil
			}
			continue
		}
		if res.Done {
			return nil
		}
		if t.Kind == ProcessingTime && t.Interval > 0 {
			elapsed := clock.Now().Sub(start)
			if elapsed > t.Interval {
				behind.overrun(clock.Now(), t.Interval, elapsed)
				intended = clock.Now()
				continue // start the next batch at once; missed boundaries are dropped
			}
			intended = NextAligned(start, t.Interval)
			if err := clock.Sleep(ctx, intended.Sub(clock.Now())); err != nil {
				return nil
			}
			continue
		}
		// Default trigger.
		intended = clock.Now()
		if res.Ran || res.Waited {
			idle = IdleMinPoll
			continue
		}
		if err := clock.Sleep(ctx, idle); err != nil {
			return nil
		}
		idle = min(2*idle, IdleMaxPoll)
	}
}

// fallingBehind logs Spark's "Current batch is falling behind" warning at
// most once per FallingBehindLogEvery, counting the overruns in between.
type fallingBehind struct {
	log        *slog.Logger
	last       time.Time // when the last warning was logged; zero before the first
	suppressed int       // overruns since then that were not logged
}

func (f *fallingBehind) overrun(now time.Time, interval, elapsed time.Duration) {
	if !f.last.IsZero() && now.Sub(f.last) < FallingBehindLogEvery {
		f.suppressed++
		return
	}
	msg := fmt.Sprintf("Current batch is falling behind. The trigger interval is %d milliseconds, but spent %d milliseconds",
		interval.Milliseconds(), elapsed.Milliseconds())
	if f.suppressed > 0 {
		msg += fmt.Sprintf(" (%d more batches fell behind since the last warning)", f.suppressed)
	}
	f.log.Warn(msg)
	f.last, f.suppressed = now, 0
}
