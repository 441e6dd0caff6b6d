package kafka

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
)

func rng(topic string, p int32, start, end int64) offsetRange {
	return offsetRange{TP: partition.ID{Topic: topic, Partition: p}, Start: start, End: end}
}

// sizes lists the piece sizes per partition, e.g. "A0:12,12 B0:10".
func sizes(rs []offsetRange) string {
	out := ""
	var last partition.ID
	for i, r := range rs {
		if i == 0 || r.TP != last {
			if i > 0 {
				out += " "
			}
			out += fmt.Sprintf("%s%d:", r.TP.Topic, r.TP.Partition)
		} else {
			out += ","
		}
		out += fmt.Sprint(r.size())
		last = r.TP
	}
	return out
}

func TestSplitRanges(t *testing.T) {
	cases := []struct {
		name       string
		in         []offsetRange
		minParts   int
		maxRecords int64
		want       string
	}{
		{"no options: one task per range", []offsetRange{rng("A", 0, 0, 100), rng("B", 0, 5, 15)}, 0, 0, "A0:100 B0:10"},
		{"empty ranges dropped", []offsetRange{rng("A", 0, 7, 7), rng("B", 0, 0, 3)}, 0, 0, "B0:3"},
		// Spark's documented example: 10 tasks from A=100, B=10, C=10.
		{"minPartitions Spark example", []offsetRange{rng("A", 0, 0, 100), rng("B", 0, 0, 10), rng("C", 0, 0, 10)}, 10, 0,
			"A0:12,12,12,12,13,13,13,13 B0:10 C0:10"},
		{"minPartitions not above range count", []offsetRange{rng("A", 0, 0, 100), rng("B", 0, 0, 10)}, 2, 0, "A0:100 B0:10"},
		{"minPartitions even split", []offsetRange{rng("A", 0, 0, 100), rng("A", 1, 0, 100)}, 4, 0, "A0:50,50 A1:50,50"},
		{"minPartitions larger than offsets", []offsetRange{rng("A", 0, 0, 3)}, 10, 0, "A0:1,1,1"},
		{"maxRecordsPerPartition", []offsetRange{rng("A", 0, 0, 100), rng("B", 0, 0, 30)}, 0, 30, "A0:25,25,25,25 B0:30"},
		{"maxRecordsPerPartition then minPartitions", []offsetRange{rng("A", 0, 0, 100), rng("B", 0, 0, 20)}, 8, 50,
			"A0:12,12,13,13,12,12,13,13 B0:20"},
		{"maxRecordsPerPartition already enough", []offsetRange{rng("A", 0, 0, 100)}, 3, 10, "A0:10,10,10,10,10,10,10,10,10,10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := splitRanges(c.in, c.minParts, c.maxRecords)
			if s := sizes(got); s != c.want {
				t.Fatalf("got %s, want %s", s, c.want)
			}
			checkCover(t, c.in, got)
			if c.maxRecords > 0 {
				for _, r := range got {
					if r.size() > c.maxRecords {
						t.Errorf("piece %v has %d > maxRecordsPerPartition %d offsets", r, r.size(), c.maxRecords)
					}
				}
			}
		})
	}
}

// checkCover asserts the pieces cover every input offset exactly once and
// are contiguous and ordered within each partition.
func checkCover(t *testing.T, in, out []offsetRange) {
	t.Helper()
	byTP := map[partition.ID][]offsetRange{}
	for _, r := range out {
		if r.size() <= 0 {
			t.Fatalf("empty piece %v", r)
		}
		byTP[r.TP] = append(byTP[r.TP], r)
	}
	for _, r := range in {
		if r.size() <= 0 {
			if len(byTP[r.TP]) > 0 {
				t.Fatalf("empty range %v produced pieces", r)
			}
			continue
		}
		ps := byTP[r.TP]
		if !sort.SliceIsSorted(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start }) {
			t.Fatalf("pieces of %v out of order: %v", r.TP, ps)
		}
		at := r.Start
		for _, p := range ps {
			if p.Start != at {
				t.Fatalf("pieces of %v: gap or overlap at %d: %v", r.TP, at, ps)
			}
			at = p.End
		}
		if at != r.End {
			t.Fatalf("pieces of %v end at %d, want %d", r.TP, at, r.End)
		}
	}
}

// FuzzSplitRanges checks exact coverage and the per-piece cap for
// arbitrary inputs.
func FuzzSplitRanges(f *testing.F) {
	f.Add(int64(100), int64(10), int64(10), 10, int64(0))
	f.Add(int64(5), int64(0), int64(1000), 3, int64(7))
	f.Fuzz(func(t *testing.T, a, b, c int64, minParts int, maxRecords int64) {
		clamp := func(v int64) int64 { return min(max(v, 0), 1_000_000) }
		in := []offsetRange{rng("t", 0, 10, 10+clamp(a)), rng("t", 1, 0, clamp(b)), rng("u", 0, 5, 5+clamp(c))}
		minParts = min(max(minParts, 0), 500)
		maxRecords = min(max(maxRecords, 0), 1_000_000)
		if maxRecords > 0 && (clamp(a)+clamp(b)+clamp(c))/maxRecords > 5000 {
			return
		}
		out := splitRanges(in, minParts, maxRecords)
		checkCover(t, in, out)
		for _, r := range out {
			if maxRecords > 0 && r.size() > maxRecords {
				t.Fatalf("piece %v exceeds %d", r, maxRecords)
			}
		}
	})
}

// TestRecordMillis: the timestamp franz-go wraps past the year 2262 is
// recovered exactly for any |ms| < 2^57; micro- and nanosecond timestamps
// land out of range.
func TestRecordMillis(t *testing.T) {
	wrap := func(ms int64) time.Time { return time.Unix(0, ms*1e6) } // what franz-go does
	for _, ms := range []int64{0, 1, -1, 1_715_681_700_000, MinTimestampMillis, MaxTimestampMillis, 9_223_372_036_854,
		1_715_681_700_000_000 /* microseconds */, -1_715_681_700_000_000, 1<<57 - 1, -(1 << 57)} {
		if got := recordMillis(wrap(ms)); got != ms {
			t.Errorf("recordMillis(wrapped %d) = %d", ms, got)
		}
	}
	inRange := func(ms int64) bool { return ms >= MinTimestampMillis && ms <= MaxTimestampMillis }
	for _, v := range []int64{1_715_681_700_000_000, 1_715_681_700_000_000_000, 1_768_000_000_000_000_000, -1_715_681_700_000_000_000} {
		if got := recordMillis(wrap(v)); inRange(got) {
			t.Errorf("recordMillis(wrapped %d) = %d: within range, the record would pass as valid", v, got)
		}
	}
	if got := recordMillis(time.UnixMilli(1_000).Add(time.Microsecond)); got != 1_000 {
		t.Errorf("a time that is not whole milliseconds: %d", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		ms := r.Int64N(1<<58) - 1<<57
		if got := recordMillis(wrap(ms)); got != ms {
			t.Fatalf("recordMillis(wrapped %d) = %d", ms, got)
		}
	}
	// Nanosecond timestamps of the years 2020..2100: how many would pass?
	passed := 0
	for range 10000 {
		ns := 1_577_836_800_000_000_000 + r.Int64N(2_524_608_000_000_000_000)
		if inRange(recordMillis(wrap(ns))) {
			passed++
		}
	}
	if passed > 50 { // about 1 in 600 expected
		t.Errorf("%d of 10000 nanosecond timestamps pass as valid", passed)
	}
}

func TestCoalesceRanges(t *testing.T) {
	mk := func(sizes ...int64) []offsetRange {
		var rs []offsetRange
		for i, s := range sizes {
			rs = append(rs, offsetRange{TP: partition.ID{Topic: "t", Partition: int32(i)}, Start: 100, End: 100 + s})
		}
		return rs
	}
	even := make([]int64, 200)
	for i := range even {
		even[i] = 10_000
	}
	for name, tc := range map[string]struct {
		ranges             []offsetRange
		workers            int
		minGroups, maxGrps int
	}{
		"few ranges: one task each":        {mk(5, 5, 5, 5, 5, 5, 5, 5), 2, 8, 8},
		"no worker count: one task each":   {mk(even...), 0, 200, 200},
		"200 even partitions on 2 workers": {mk(even...), 2, 8, 8},
		"200 even partitions on 8 workers": {mk(even...), 8, 16, 32},
		"one big range stays alone":        {mk(append([]int64{1_000_000}, even[:40]...)...), 2, 2, 8},
		"ragged sizes":                     {mk(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 2, 4, 8},
	} {
		t.Run(name, func(t *testing.T) {
			got := coalesceRanges(tc.ranges, tc.workers)
			if len(got) < tc.minGroups || len(got) > tc.maxGrps {
				t.Errorf("%d groups, want %d–%d", len(got), tc.minGroups, tc.maxGrps)
			}
			if tc.ranges[0].size() == 1_000_000 && len(got[0]) != 1 {
				t.Errorf("the big range shares its task: %v", got[0])
			}
			// Every range exactly once, in order.
			var flat []offsetRange
			for _, g := range got {
				if len(g) == 0 {
					t.Fatal("empty group")
				}
				flat = append(flat, g...)
			}
			if len(flat) != len(tc.ranges) {
				t.Fatalf("%d ranges out, %d in", len(flat), len(tc.ranges))
			}
			for i := range flat {
				if flat[i] != tc.ranges[i] {
					t.Fatalf("range %d is %v, want %v", i, flat[i], tc.ranges[i])
				}
			}
		})
	}
}
