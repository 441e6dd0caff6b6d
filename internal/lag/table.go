package lag

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
)

// Point is one observation of a partition's latest (log end) offset.
type Point struct {
	Offset int64
	Time   time.Time
}

// Method says how a time lag was obtained.
type Method string

// Methods of Estimate.
const (
	// MethodCaughtUp: the consumed offset has reached the latest offset.
	MethodCaughtUp Method = "caught-up"
	// MethodInterpolated: the consumed offset lies between two samples.
	MethodInterpolated Method = "interpolated"
	// MethodExtrapolated: the consumed offset is older than every sample;
	// the time was projected back at the oldest samples' rate.
	MethodExtrapolated Method = "extrapolated"
	// MethodRecordTimestamp: the caller's record timestamp was used.
	MethodRecordTimestamp Method = "record-timestamp"
	// MethodUnknown: nothing to go on; Seconds is NaN.
	MethodUnknown Method = "unknown"
)

// Estimate is a partition's lag.
type Estimate struct {
	// Seconds is how long ago the consumed offset was the end of the log:
	// how far behind real time the query is on this partition. NaN when
	// unknown.
	Seconds float64
	// OffsetsBehind is the newest latest offset minus the consumed offset
	// (0 when caught up or with no samples).
	OffsetsBehind int64
	Method        Method
}

// Option adjusts TimeLag and Table.LagSeconds.
type Option func(*options)

type options struct {
	fallback   time.Time
	preferRecd bool
}

// FallbackTimestamp gives the timestamp of the record at (or just before)
// the consumed offset, used when the samples cannot place the consumed
// offset in time: it is older than every sample and there is no rate to
// extrapolate with. A zero time is ignored.
func FallbackTimestamp(ts time.Time) Option { return func(o *options) { o.fallback = ts } }

// PreferRecordTimestamp uses the FallbackTimestamp instead of extrapolating
// when the consumed offset is older than every sample. Extrapolation assumes
// the arrival rate seen in the oldest samples held before them too; a
// record's timestamp is direct evidence but is set by the producer (its
// clock, or LogAppendTime) — choose which to trust.
func PreferRecordTimestamp() Option { return func(o *options) { o.preferRecd = true } }

// TimeLag computes the lag of a consumer at offset consumed (the next offset
// it will read) from samples of the latest offset, oldest first, with
// non-decreasing offsets (as Table keeps them). The result is now − T, where
// T is the time at which the log end offset reached consumed:
//
//   - consumed >= newest latest offset: caught up, 0 s.
//   - Otherwise, with a the newest sample at or below consumed and b the
//     next one, T is interpolated linearly between a and b. A run of
//     samples with the same offset means the log was idle: T is taken at
//     the last of them, the last moment the consumer would have been
//     caught up.
//   - consumed below every sample: T is extrapolated back from the oldest
//     sample at the rate between it and the first sample with a higher
//     offset; without such a rate, or with PreferRecordTimestamp, the
//     FallbackTimestamp is used as T; without it the lag is unknown (NaN).
//
// A T later than now (clock steps) gives 0.
func TimeLag(points []Point, consumed int64, now time.Time, opts ...Option) Estimate {
	var o options
	for _, f := range opts {
		f(&o)
	}
	est := Estimate{Seconds: math.NaN(), Method: MethodUnknown}
	fallback := func() Estimate {
		if !o.fallback.IsZero() {
			est.Seconds, est.Method = secondsSince(now, o.fallback), MethodRecordTimestamp
		}
		return est
	}
	if len(points) == 0 {
		return fallback()
	}
	last := points[len(points)-1]
	if consumed >= last.Offset {
		return Estimate{Seconds: 0, Method: MethodCaughtUp}
	}
	est.OffsetsBehind = last.Offset - consumed
	// i is the first sample past consumed; points[i-1] is at or below it.
	i := sort.Search(len(points), func(k int) bool { return points[k].Offset > consumed })
	if i > 0 {
		a, b := points[i-1], points[i]
		frac := float64(consumed-a.Offset) / float64(b.Offset-a.Offset)
		at := a.Time.Add(time.Duration(frac * float64(b.Time.Sub(a.Time))))
		est.Seconds, est.Method = secondsSince(now, at), MethodInterpolated
		return est
	}
	if o.preferRecd && !o.fallback.IsZero() {
		return fallback()
	}
	first := points[0]
	for _, q := range points[1:] {
		if q.Offset > first.Offset && q.Time.After(first.Time) {
			rate := float64(q.Offset-first.Offset) / q.Time.Sub(first.Time).Seconds()
			back := float64(first.Offset-consumed) / rate // seconds before first
			est.Seconds, est.Method = secondsSince(now, first.Time)+back, MethodExtrapolated
			return est
		}
	}
	return fallback()
}

func secondsSince(now, t time.Time) float64 { return max(0, now.Sub(t).Seconds()) }

// Rate returns the growth of the offsets in points (oldest first) in
// records per second over the last window of time (window <= 0: all
// points). It is NaN with fewer than two points or no elapsed time.
func Rate(points []Point, window time.Duration) float64 {
	n := len(points)
	if n < 2 {
		return math.NaN()
	}
	last := points[n-1]
	from := 0
	if window > 0 {
		cut := last.Time.Add(-window)
		from = sort.Search(n, func(k int) bool { return !points[k].Time.Before(cut) })
		from = min(from, n-2)
	}
	first := points[from]
	dt := last.Time.Sub(first.Time).Seconds()
	if dt <= 0 {
		return math.NaN()
	}
	return float64(last.Offset-first.Offset) / dt
}

// DefaultTableSize is the default number of samples kept per partition
// (kafka-lag-exporter's lookup-table-size).
const DefaultTableSize = 60

// Table keeps, per partition, the last N observations of the latest offset.
// Add an observation each time the engine learns the latest offsets.
//
// A run of equal offsets (an idle partition) is stored as its first and
// last observation only, so a quiet partition does not flush the history
// that places older offsets in time. An observation older than the newest
// one is ignored; an offset lower than the newest (the log was truncated or
// recreated) restarts the partition's history.
type Table struct {
	mu    sync.Mutex
	size  int
	parts map[partition.ID][]Point
}

// NewTable returns a Table keeping size samples per partition; size < 2
// means DefaultTableSize.
func NewTable(size int) *Table {
	if size < 2 {
		size = DefaultTableSize
	}
	return &Table{size: size, parts: make(map[partition.ID][]Point)}
}

// Observe records that p's latest offset was latest at time at.
func (t *Table) Observe(p partition.ID, latest int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observe(p, latest, at)
}

// ObserveAll records the latest offsets of several partitions seen at the
// same time.
func (t *Table) ObserveAll(latest map[partition.ID]int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, off := range latest {
		t.observe(p, off, at)
	}
}

func (t *Table) observe(p partition.ID, latest int64, at time.Time) {
	pts := t.parts[p]
	if n := len(pts); n > 0 {
		last := pts[n-1]
		switch {
		case at.Before(last.Time):
			return
		case latest < last.Offset:
			pts = pts[:0]
		case latest == last.Offset && n >= 2 && pts[n-2].Offset == latest:
			pts[n-1].Time = at // extend the idle run
			return
		}
	}
	if len(pts) == t.size {
		copy(pts, pts[1:])
		pts = pts[:len(pts)-1]
	}
	t.parts[p] = append(pts, Point{Offset: latest, Time: at})
}

// Points returns a copy of p's samples, oldest first.
func (t *Table) Points(p partition.ID) []Point {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.parts[p])
}

// Latest returns p's newest sample.
func (t *Table) Latest(p partition.ID) (Point, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pts := t.parts[p]
	if len(pts) == 0 {
		return Point{}, false
	}
	return pts[len(pts)-1], true
}

// LagSeconds estimates p's lag for a consumer at offset consumed (see
// TimeLag).
func (t *Table) LagSeconds(p partition.ID, consumed int64, now time.Time, opts ...Option) Estimate {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TimeLag(t.parts[p], consumed, now, opts...)
}

// ArrivalRate is p's latest-offset growth in records per second over the
// last window of time (<= 0: all samples); NaN when unknown.
func (t *Table) ArrivalRate(p partition.ID, window time.Duration) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Rate(t.parts[p], window)
}

// TotalArrivalRate sums ArrivalRate over the partitions whose rate is
// known; NaN if none is.
func (t *Table) TotalArrivalRate(window time.Duration) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum, known := 0.0, false
	for _, pts := range t.parts {
		if r := Rate(pts, window); !math.IsNaN(r) {
			sum, known = sum+r, true
		}
	}
	if !known {
		return math.NaN()
	}
	return sum
}

// Partitions lists the partitions with samples, sorted by topic and
// partition.
func (t *Table) Partitions() []partition.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]partition.ID, 0, len(t.parts))
	for p := range t.parts {
		out = append(out, p)
	}
	slices.SortFunc(out, partition.ID.Compare)
	return out
}

// Forget drops p's samples (e.g. the partition is no longer read).
func (t *Table) Forget(p partition.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.parts, p)
}
