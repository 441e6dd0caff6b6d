package admission

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sluice-stream/sluice/internal/partition"
)

func tp(p int32) partition.ID { return partition.ID{Topic: "t", Partition: p} }

// offs builds Offsets for topic "t" from a list of values (partition = index).
func offs(v ...int64) partition.Offsets {
	o := make(partition.Offsets, len(v))
	for i, x := range v {
		o[tp(int32(i))] = x
	}
	return o
}

func sizes(start, end partition.Offsets) []int64 {
	out := make([]int64, len(end))
	for i := range out {
		out[i] = end[tp(int32(i))] - start[tp(int32(i))]
	}
	return out
}

func TestSparkSplitReference(t *testing.T) {
	// The worked examples of Spark's formula (spark-semantics.md §1.4).
	cases := []struct {
		limit   int64
		backlog []int64
		want    []int64
	}{
		{1000, []int64{9000, 900, 100}, []int64{900, 90, 10}},
		{1000, []int64{99999, 1}, []int64{999, 1}},
		{10, []int64{1, 1, 99998}, []int64{1, 1, 9}},   // 11 > limit: Spark's overshoot
		{10, []int64{3, 3, 3, 3}, []int64{2, 2, 2, 2}}, // 8 < limit: floors lose
	}
	for _, c := range cases {
		start := offs(make([]int64, len(c.backlog))...)
		got := sizes(start, SparkSplit(c.limit, start, offs(c.backlog...)))
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("SparkSplit(%d, %v) = %v, want %v", c.limit, c.backlog, got, c.want)
		}
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		name   string
		limit  int64
		batch  int64
		start  []int64
		latest []int64
		want   []int64 // admitted per partition
	}{
		{"no limit takes all", 0, 0, []int64{0, 5}, []int64{10, 5}, []int64{10, 0}},
		{"limit above backlog takes all", 100, 0, []int64{0, 0}, []int64{10, 20}, []int64{10, 20}},
		{"proportional exact", 1000, 0, []int64{0, 0, 0}, []int64{9000, 900, 100}, []int64{900, 90, 10}},
		{"tiny partition not starved", 1000, 0, []int64{0, 0}, []int64{99999, 1}, []int64{999, 1}},
		{"never above limit where spark overshoots", 10, 0, []int64{0, 0, 0}, []int64{1, 1, 99998}, []int64{1, 1, 8}},
		{"exactly the limit where spark falls short", 10, 0, []int64{0, 0, 0, 0}, []int64{3, 3, 3, 3}, []int64{3, 3, 2, 2}},
		{"offsets not at zero", 6, 0, []int64{100, 200}, []int64{110, 230}, []int64{1, 5}},
		{"limit below partitions rotates (batch 0)", 2, 0, []int64{0, 0, 0}, []int64{5, 5, 5}, []int64{1, 1, 0}},
		{"limit below partitions rotates (batch 1)", 2, 1, []int64{0, 0, 0}, []int64{5, 5, 5}, []int64{0, 1, 1}},
		{"limit below partitions rotates (batch 2)", 2, 2, []int64{0, 0, 0}, []int64{5, 5, 5}, []int64{1, 0, 1}},
		{"empty partitions ignored", 4, 0, []int64{7, 0, 3}, []int64{7, 100, 3}, []int64{0, 4, 0}},
		{"huge offsets exact", math.MaxInt64 / 2, 0, []int64{0, 0}, []int64{math.MaxInt64 - 1, math.MaxInt64 - 1}, []int64{math.MaxInt64/4 + 1, math.MaxInt64 / 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := offs(c.start...)
			got := sizes(start, Split(c.limit, start, offs(c.latest...), c.batch))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("Split = %v, want %v", got, c.want)
			}
		})
	}
}

// TestSplitProperties checks the invariants on random inputs: never above
// the limit, exactly the limit when the backlog is larger, never past latest,
// and every partition with backlog gets something when limit ≥ partitions.
func TestSplitProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		n := 1 + r.IntN(12)
		start, latest := partition.Offsets{}, partition.Offsets{}
		var total int64
		withBacklog := 0
		for p := 0; p < n; p++ {
			s := r.Int64N(1000)
			var b int64
			switch r.IntN(4) {
			case 0:
				b = 0
			case 1:
				b = r.Int64N(3)
			default:
				b = r.Int64N(1_000_000)
			}
			start[tp(int32(p))] = s
			latest[tp(int32(p))] = s + b
			total += b
			if b > 0 {
				withBacklog++
			}
		}
		limit := 1 + r.Int64N(2_000_000)
		end := Split(limit, start, latest, int64(i))
		got := partition.Total(start, end)
		want := min(limit, total)
		if got != want {
			t.Fatalf("case %d: admitted %d, want %d (limit %d, total %d)", i, got, want, limit, total)
		}
		for p, e := range end {
			if e < start[p] || e > latest[p] {
				t.Fatalf("case %d: partition %v end %d outside [%d,%d]", i, p, e, start[p], latest[p])
			}
			if limit >= int64(withBacklog) && latest[p] > start[p] && e == start[p] {
				t.Fatalf("case %d: partition %v starved (limit %d, %d partitions with backlog)", i, p, limit, withBacklog)
			}
		}
	}
}

func TestSplitRotationServesEveryone(t *testing.T) {
	start, latest := offs(0, 0, 0, 0, 0), offs(100, 100, 100, 100, 100)
	served := map[partition.ID]int{}
	for b := int64(0); b < 5; b++ {
		end := Split(2, start, latest, b)
		for p, e := range end {
			if e > start[p] {
				served[p]++
			}
		}
	}
	for p := int32(0); p < 5; p++ {
		if served[tp(p)] != 2 {
			t.Errorf("partition %d served %d times in 5 batches of limit 2, want 2", p, served[tp(p)])
		}
	}
}
