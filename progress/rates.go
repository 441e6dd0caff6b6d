package progress

import "time"

// ProcessedRowsPerSecond is Spark's processedRowsPerSecond: rows divided by
// the batch duration in seconds, the duration counted in whole milliseconds
// and at least 1 ms (so that a very fast batch does not divide by zero).
func ProcessedRowsPerSecond(rows int64, batchDuration time.Duration) float64 {
	ms := max(batchDuration.Milliseconds(), 1)
	return float64(rows) * 1000 / float64(ms)
}

// InputRowsPerSecond is inputRowsPerSecond: rows divided by the time since
// the start of the previous *executed* batch (whole milliseconds, at least
// 1 ms). It is 0 for the first batch, i.e. when prevExecutedStart is the zero
// time.
//
// Spark divides by the time since the previous trigger *attempt* instead,
// and an idle poll (a trigger that found no data) counts as an attempt.
// After an idle spell the default trigger polls about every 10 ms, so the
// first batch with data divides all the rows that arrived during the idle
// spell by ~10 ms and reports an arrival rate hundreds of times too high.
// Measuring from the previous executed batch spreads those rows over the
// time they really took to arrive. Callers must pass the trigger start of
// the last batch that ran, not of the last poll.
func InputRowsPerSecond(rows int64, triggerStart, prevExecutedStart time.Time) float64 {
	if prevExecutedStart.IsZero() {
		return 0
	}
	ms := max(triggerStart.Sub(prevExecutedStart).Milliseconds(), 1)
	return float64(rows) * 1000 / float64(ms)
}
