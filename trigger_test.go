package sluice

import (
	"context"
	"strings"
	"testing"
	"time"
)

// An interval under a millisecond used to spin: Spark's nextBatchTime works
// in whole milliseconds, so 1 ns meant "the next batch is due now" forever.
func TestProcessingTimeNeedsWholeMilliseconds(t *testing.T) {
	const allowed = `(allowed: 0 = as fast as possible, or whole milliseconds ≥ 1, e.g. "1 millisecond" or "20 seconds")`
	for _, c := range []struct {
		trig Trigger
		want string
	}{
		{ProcessingTime("1 nanosecond"), `trigger processingTime: "1 nanosecond" is below 1 millisecond ` + allowed},
		{ProcessingTime("999 microseconds"), `trigger processingTime: "999 microseconds" is below 1 millisecond ` + allowed},
		{ProcessingTime("1.5 milliseconds"), `trigger processingTime: "1.5 milliseconds" is not a whole number of milliseconds ` + allowed},
		{ProcessingTimeInterval(time.Microsecond), `trigger processingTime: 1µs is below 1 millisecond ` + allowed},
		{ProcessingTimeInterval(-time.Second), `trigger processingTime: -1s is negative ` + allowed},
	} {
		q, err := NewSession().ReadStream().Format("rate").Load().WriteStream().Format("noop").
			Option("checkpointLocation", t.TempDir()).Trigger(c.trig).Start(context.Background())
		if q != nil {
			_ = q.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	for _, ok := range []Trigger{ProcessingTime("1 millisecond"), ProcessingTime("0 seconds"), ProcessingTimeInterval(20 * time.Second)} {
		if ok.err != nil {
			t.Errorf("%v: %v", ok, ok.err)
		}
	}
}
