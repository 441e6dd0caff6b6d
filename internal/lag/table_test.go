package lag

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
)

var t0 = time.Date(2024, 5, 14, 10, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func pts(pairs ...float64) []Point {
	var out []Point
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Point{Offset: int64(pairs[i]), Time: at(pairs[i+1])})
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 || (math.IsNaN(a) && math.IsNaN(b)) }

func TestTimeLag(t *testing.T) {
	// Log end: 1000 at t=0, 2000 at t=10, 2000 at t=20 (idle), 5000 at t=30.
	table := pts(1000, 0, 2000, 10, 2000, 20, 5000, 30)
	now := at(40)
	tests := []struct {
		name     string
		points   []Point
		consumed int64
		opts     []Option
		want     Estimate
	}{
		{"caught up", table, 5000, nil, Estimate{Seconds: 0, Method: MethodCaughtUp}},
		{"ahead of last sample", table, 6000, nil, Estimate{Seconds: 0, Method: MethodCaughtUp}},
		{"interpolated mid segment", table, 1500, nil, Estimate{Seconds: 35, OffsetsBehind: 3500, Method: MethodInterpolated}},
		{"exactly on a sample", table, 1000, nil, Estimate{Seconds: 40, OffsetsBehind: 4000, Method: MethodInterpolated}},
		// At 2000 the consumer was caught up until t=20, the end of the idle run.
		{"end of idle run", table, 2000, nil, Estimate{Seconds: 20, OffsetsBehind: 3000, Method: MethodInterpolated}},
		{"after idle run", table, 3500, nil, Estimate{Seconds: 15, OffsetsBehind: 1500, Method: MethodInterpolated}},
		// 100 rec/s between the oldest two: 500 records before t=0 is t=-5.
		{"extrapolated", table, 500, nil, Estimate{Seconds: 45, OffsetsBehind: 4500, Method: MethodExtrapolated}},
		{"extrapolated skips flat start", pts(1000, 0, 1000, 5, 2000, 10), 0, nil, Estimate{Seconds: 40 + 10, OffsetsBehind: 2000, Method: MethodExtrapolated}},
		{"record timestamp when no rate", pts(1000, 0), 10, []Option{FallbackTimestamp(at(-100))}, Estimate{Seconds: 140, OffsetsBehind: 990, Method: MethodRecordTimestamp}},
		{"prefer record timestamp", table, 500, []Option{FallbackTimestamp(at(-60)), PreferRecordTimestamp()}, Estimate{Seconds: 100, OffsetsBehind: 4500, Method: MethodRecordTimestamp}},
		{"record timestamp not used inside table", table, 1500, []Option{FallbackTimestamp(at(-60))}, Estimate{Seconds: 35, OffsetsBehind: 3500, Method: MethodInterpolated}},
		{"unknown without rate or timestamp", pts(1000, 0, 1000, 10), 10, nil, Estimate{Seconds: math.NaN(), OffsetsBehind: 990, Method: MethodUnknown}},
		{"no samples, timestamp", nil, 10, []Option{FallbackTimestamp(at(30))}, Estimate{Seconds: 10, Method: MethodRecordTimestamp}},
		{"no samples", nil, 10, nil, Estimate{Seconds: math.NaN(), Method: MethodUnknown}},
		{"clock behind samples clamps to 0", pts(0, 100, 1000, 200), 500, nil, Estimate{Seconds: 0, OffsetsBehind: 500, Method: MethodInterpolated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TimeLag(tt.points, tt.consumed, now, tt.opts...)
			if !near(got.Seconds, tt.want.Seconds) || got.OffsetsBehind != tt.want.OffsetsBehind || got.Method != tt.want.Method {
				t.Errorf("TimeLag(%d) = %+v, want %+v", tt.consumed, got, tt.want)
			}
		})
	}
}

func TestTableObserve(t *testing.T) {
	p := partition.ID{Topic: "orders", Partition: 3}
	tests := []struct {
		name string
		obs  []Point
		size int
		want []Point
	}{
		{"appends", pts(10, 0, 20, 1, 30, 2), 5, pts(10, 0, 20, 1, 30, 2)},
		{"idle run keeps first and last", pts(10, 0, 20, 1, 20, 2, 20, 3, 20, 4), 5, pts(10, 0, 20, 1, 20, 4)},
		{"evicts oldest", pts(10, 0, 20, 1, 30, 2, 40, 3), 3, pts(20, 1, 30, 2, 40, 3)},
		{"ignores older observation", pts(10, 0, 20, 5, 30, 3), 5, pts(10, 0, 20, 5)},
		{"truncated log restarts history", pts(10, 0, 20, 1, 5, 2, 8, 3), 5, pts(5, 2, 8, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := NewTable(tt.size)
			for _, o := range tt.obs {
				tb.Observe(p, o.Offset, o.Time)
			}
			got := tb.Points(p)
			if len(got) != len(tt.want) {
				t.Fatalf("points %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].Offset != tt.want[i].Offset || !got[i].Time.Equal(tt.want[i].Time) {
					t.Fatalf("points %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestTableLagAndRates(t *testing.T) {
	tb := NewTable(0)
	a, b := partition.ID{Topic: "orders", Partition: 0}, partition.ID{Topic: "orders", Partition: 1}
	for i := range 11 { // a grows 100 rec/s, b 50 rec/s, sampled every second
		tb.ObserveAll(map[partition.ID]int64{a: int64(i * 100), b: int64(i * 50)}, at(float64(i)))
	}
	if got := tb.LagSeconds(a, 250, at(10)); !near(got.Seconds, 7.5) || got.OffsetsBehind != 750 {
		t.Errorf("LagSeconds(a) = %+v, want 7.5 s, 750 behind", got)
	}
	if got := tb.ArrivalRate(a, 0); !near(got, 100) {
		t.Errorf("ArrivalRate(a) = %v, want 100", got)
	}
	if got := tb.TotalArrivalRate(3 * time.Second); !near(got, 150) {
		t.Errorf("TotalArrivalRate = %v, want 150", got)
	}
	// b goes idle for 10 s: its rate over the last 10 s drops to 0.
	tb.Observe(b, 500, at(20))
	if got := tb.ArrivalRate(b, 10*time.Second); !near(got, 0) {
		t.Errorf("idle ArrivalRate(b) = %v, want 0", got)
	}
	if got := tb.ArrivalRate(b, 0); !near(got, 25) {
		t.Errorf("ArrivalRate(b) over all = %v, want 25", got)
	}
	if last, ok := tb.Latest(b); !ok || last.Offset != 500 || !last.Time.Equal(at(20)) {
		t.Errorf("Latest(b) = %v %v", last, ok)
	}
	if ps := tb.Partitions(); len(ps) != 2 || ps[0] != a || ps[1] != b {
		t.Errorf("Partitions = %v", ps)
	}
	tb.Forget(a)
	if _, ok := tb.Latest(a); ok || !math.IsNaN(tb.ArrivalRate(a, 0)) {
		t.Error("Forget left samples")
	}
	if !math.IsNaN(Rate(pts(1, 0, 2, 0), 0)) || !math.IsNaN(Rate(pts(1, 0), 0)) {
		t.Error("Rate without elapsed time or with one point is not NaN")
	}
}

func TestTableConcurrent(t *testing.T) {
	tb := NewTable(8)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			p := partition.ID{Topic: "t", Partition: int32(g % 2)}
			for i := range 500 {
				tb.Observe(p, int64(i), at(float64(i)))
				_ = tb.LagSeconds(p, int64(i/2), at(float64(i)))
				_ = tb.TotalArrivalRate(0)
			}
		})
	}
	wg.Wait()
	for _, p := range tb.Partitions() {
		if n := len(tb.Points(p)); n > 8 {
			t.Errorf("%v holds %d points, bound is 8", p, n)
		}
	}
}

func TestETA(t *testing.T) {
	tests := []struct {
		name                        string
		backlog, processing, arrive float64
		want                        float64
		never                       bool
	}{
		{"drains", 10000, 1500, 500, 10, false},
		{"no arrivals", 300, 100, 0, 3, false},
		{"unknown arrivals count as none", 300, 100, math.NaN(), 3, false},
		{"arrival equals capacity", 10000, 1000, 1000, math.Inf(1), true},
		{"arrival above capacity", 10000, 1000, 1200, math.Inf(1), true},
		{"unknown capacity", 10000, math.NaN(), 10, math.Inf(1), true},
		{"zero capacity", 10000, 0, 0, math.Inf(1), true},
		{"empty backlog", 0, 0, 5000, 0, false},
	}
	for _, tt := range tests {
		got, never := ETA(tt.backlog, tt.processing, tt.arrive)
		if never != tt.never || got != tt.want {
			t.Errorf("%s: ETA = %v, %v; want %v, %v", tt.name, got, never, tt.want, tt.never)
		}
	}
	if got := Capacity(3000, 1500*time.Millisecond); got != 2000 {
		t.Errorf("Capacity = %v, want 2000", got)
	}
	if !math.IsNaN(Capacity(10, 0)) {
		t.Error("Capacity with no busy time is not NaN")
	}
}

func FuzzTimeLag(f *testing.F) {
	f.Add(int64(1000), int64(3000), int64(500), int64(1500), int64(7), uint8(3))
	f.Fuzz(func(t *testing.T, o1, o2, o3, consumed, step int64, n uint8) {
		// Build a valid table from arbitrary increments and check the
		// invariants: never negative, caught up iff consumed >= head, and
		// more consumed never means more lag.
		var points []Point
		off := o1 % 1e9
		for i := range int(n%10) + 1 {
			points = append(points, Point{Offset: off, Time: at(float64(i) * 1.5)})
			off += abs(o2%1000) + abs(o3%3)
		}
		now := at(30)
		c := consumed % 2e9
		e := TimeLag(points, c, now)
		head := points[len(points)-1].Offset
		if (e.Method == MethodCaughtUp) != (c >= head) {
			t.Fatalf("consumed %d head %d: %+v", c, head, e)
		}
		if !math.IsNaN(e.Seconds) && e.Seconds < 0 {
			t.Fatalf("negative lag %+v", e)
		}
		next := TimeLag(points, c+abs(step%1000), now)
		if !math.IsNaN(e.Seconds) && !math.IsNaN(next.Seconds) && next.Seconds > e.Seconds+1e-9 {
			t.Fatalf("lag grew with consumption: %v -> %v (%v)", e, next, points)
		}
	})
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
