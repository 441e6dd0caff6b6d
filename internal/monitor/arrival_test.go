package monitor

import (
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/progress"
)

// offsetsAt is a partitioned source offset.
type offsetsAt partition.Offsets

func (o offsetsAt) Partitions() partition.Offsets { return partition.Offsets(o) }
func (o offsetsAt) JSON() string                  { return "" }

// TestArrivalSeriesNewestPoints: however many latest-offset observations
// arrive, the arrival series offers the newest MaxArrivalPoints, oldest
// first, timestamped and with the rate since the point before — and keeps
// at most twice that many.
func TestArrivalSeriesNewestPoints(t *testing.T) {
	m := New()
	t0 := time.UnixMilli(1_700_000_000_000)
	tp := partition.ID{Topic: "t", Partition: 0}
	const n = 3*MaxArrivalPoints + 17
	for i := range n {
		m.OffsetsObserved(nil, offsetsAt{tp: int64(10 * i)}, t0.Add(time.Duration(i)*100*time.Millisecond))
		m.mu.Lock()
		if kept := len(m.arrivals); kept > 2*MaxArrivalPoints {
			t.Fatalf("after %d observations %d points kept, want at most %d", i+1, kept, 2*MaxArrivalPoints)
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	got := m.recentArrivals()
	m.mu.Unlock()
	if len(got) != MaxArrivalPoints {
		t.Fatalf("%d points, want %d", len(got), MaxArrivalPoints)
	}
	for j, pt := range got {
		i := n - MaxArrivalPoints + j
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		if pt.Offsets != int64(10*i) || pt.Timestamp != progress.FormatTime(at) || pt.RowsPerSecond != 100 {
			t.Fatalf("point %d = %+v, want offsets %d at %s, 100 rows/s", j, pt, 10*i, progress.FormatTime(at))
		}
	}
}
