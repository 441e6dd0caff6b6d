package lag

import (
	"math"
	"time"
)

// ETA predicts how many seconds until a backlog of backlogRecords is gone
// when records are processed at processingRate and keep arriving at
// arrivalRate (both records per second): backlog / (processing − arrival).
// never is true when that will not happen: arrival ≥ processing, or the
// processing rate is unknown (NaN) or not positive. An empty backlog gives
// (0, false). A NaN or negative arrival rate counts as no arrivals.
//
// processingRate should be the measured capacity (Capacity: records per
// second of busy time). When a read limit caps how much a batch may take,
// pass the smaller of the capacity and the limit's rate, since the backlog
// cannot drain faster than admission lets it.
func ETA(backlogRecords, processingRate, arrivalRate float64) (seconds float64, never bool) {
	if !(backlogRecords > 0) {
		return 0, false
	}
	if !(processingRate > 0) || math.IsInf(processingRate, 0) {
		return math.Inf(1), true
	}
	if !(arrivalRate > 0) {
		arrivalRate = 0
	}
	net := processingRate - arrivalRate
	if net <= 0 {
		return math.Inf(1), true
	}
	return backlogRecords / net, false
}

// Capacity is the processing capacity in records per second of busy time:
// records / busy. NaN when busy is not positive.
func Capacity(records int64, busy time.Duration) float64 {
	if busy <= 0 {
		return math.NaN()
	}
	return float64(records) / busy.Seconds()
}
