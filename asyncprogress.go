package sluice

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// Writer options of Spark's asynchronous progress tracking (see README,
// "Triggers, tasks and the checkpoint"): the offsets and commit logs are written in the
// background and only every interval, for lower latency at the price of
// at-least-once delivery.
const (
	optAsyncProgress         = "asyncProgressTrackingEnabled"
	optAsyncProgressInterval = "asyncProgressTrackingCheckpointIntervalMs"
)

// asyncProgressSinks are the sinks asynchronous progress tracking may
// write to: Spark's list (noop, console, memory, Kafka). sluice's Kafka
// sink skips batch ids it has committed; after a crash the engine numbers
// new batches past its last (engine.AsyncProgress), so nothing is skipped.
var asyncProgressSinks = []string{"noop", "console", "memory", "kafka"}

// asyncProgress returns the engine setting of the writer options (nil:
// off).
func asyncProgress(p *checked) *engine.AsyncProgress {
	if p.sink.Name == "" || !p.sinkVals.Bool(optAsyncProgress) {
		return nil
	}
	return &engine.AsyncProgress{Interval: time.Duration(p.sinkVals.Int64(optAsyncProgressInterval)) * time.Millisecond}
}

// asyncProgressProblems are what asynchronous progress tracking does not
// support, with Spark's messages where Spark has them, found by check for
// Start and `sluice lint`.
func asyncProgressProblems(p *checked, t trigger.Trigger, sinkFormat, deadLetterFormat string) []problem {
	if asyncProgress(p) == nil {
		return nil
	}
	refuse := func(pt part, msg string) problem {
		return problem{part: pt, option: optAsyncProgress, err: &options.Error{Option: optAsyncProgress, Allowed: msg}}
	}
	var out []problem
	if !slices.Contains(asyncProgressSinks, sinkFormat) {
		out = append(out, refuse(partSink, fmt.Sprintf("Sink %s does not support async progress tracking (supported: noop, console, memory, kafka)", sinkFormat)))
	}
	if deadLetterFormat != "" {
		out = append(out, refuse(partDeadLetter, "a dead-letter sink cannot be used with async progress tracking (its commits would not follow the main sink's batch ids after a crash)"))
	}
	switch t.Kind {
	case trigger.Once:
		out = append(out, refuse(partTrigger, "Async progress tracking cannot be used with Once trigger"))
	case trigger.AvailableNow:
		out = append(out, refuse(partTrigger, "Async progress tracking cannot be used with AvailableNow trigger"))
	}
	if p.query != nil && !p.query.Stateless() {
		out = append(out, refuse(partTransform, "Stateful streaming queries does not support async progress tracking at this moment."))
	}
	if p.source.Name != "" {
		if group, _ := groupOf(p.source.Name, p.sourceVals); group != "" {
			out = append(out, refuse(partSource, fmt.Sprintf("async progress tracking cannot be used in group mode (group %q): the group's committed offsets are its members' progress", group)))
		}
	}
	return out
}
