package kafka

import (
	"math"

	"github.com/sluice-stream/sluice/internal/partition"
)

// offsetRange is [Start, End) of one partition.
type offsetRange struct {
	TP         partition.ID
	Start, End int64
}

func (r offsetRange) size() int64 { return r.End - r.Start }

// splitRanges plans the tasks of a batch the way Spark's Kafka source
// does: one task per non-empty partition range, except that ranges larger
// than maxRecords (> 0) are cut into ceil(size/maxRecords) pieces, and
// then, if there are still fewer than minPartitions (> 0) ranges, ranges
// are cut in proportion to their size so that about minPartitions tasks
// result. A range of size s out of a total T gets max(round(s/T·m), 1)
// pieces; ranges that get one piece stay whole, and the others share the
// remaining pieces in proportion to their sizes. Pieces of a range differ
// in size by at most one, the smaller ones first. Empty ranges are
// dropped. Every offset of the input is in exactly one output range.
func splitRanges(ranges []offsetRange, minPartitions int, maxRecords int64) []offsetRange {
	var out []offsetRange
	for _, r := range ranges {
		if r.size() <= 0 {
			continue
		}
		if maxRecords > 0 && r.size() > maxRecords {
			out = append(out, divide(r, (r.size()+maxRecords-1)/maxRecords)...)
			continue
		}
		out = append(out, r)
	}
	if minPartitions <= len(out) {
		return out
	}
	var total int64
	for _, r := range out {
		total += r.size()
	}
	var unsplitSize int64
	unsplit := 0
	for _, r := range out {
		if pieces(r.size(), total, int64(minPartitions)) == 1 {
			unsplit++
			unsplitSize += r.size()
		}
	}
	splitTotal := total - unsplitSize
	splitMin := int64(max(minPartitions-unsplit, 1))
	var res []offsetRange
	for _, r := range out {
		if pieces(r.size(), total, int64(minPartitions)) == 1 {
			res = append(res, r)
			continue
		}
		res = append(res, divide(r, pieces(r.size(), splitTotal, splitMin))...)
	}
	return res
}

// pieces is max(round(size/total·m), 1), rounding halves up.
func pieces(size, total, m int64) int64 {
	if total <= 0 {
		return 1
	}
	return max(int64(math.Floor(float64(size)/float64(total)*float64(m)+0.5)), 1)
}

// divide cuts r into n pieces; piece i holds remaining/(n-i) offsets, so
// smaller pieces come first and the last absorb the remainder.
func divide(r offsetRange, n int64) []offsetRange {
	n = min(n, r.size())
	if n <= 1 {
		return []offsetRange{r}
	}
	out := make([]offsetRange, 0, n)
	start := r.Start
	for i := int64(0); i < n; i++ {
		step := (r.End - start) / (n - i)
		out = append(out, offsetRange{TP: r.TP, Start: start, End: start + step})
		start += step
	}
	return out
}

// tasksPerWorker is how many tasks per worker a batch is cut into at most
// before small ranges are coalesced: enough for largest-first scheduling
// to balance the workers, few enough that per-task costs (a sink writer,
// a task's bookkeeping) stay small next to the rows.
const tasksPerWorker = 4

// coalesceRanges groups the ranges of a batch into tasks, the reverse of
// minPartitions: with at most tasksPerWorker × workers ranges (or workers
// ≤ 0) every range is its own task, as in Spark; with more, consecutive
// ranges smaller than total / (tasksPerWorker × workers) records share a
// task until it holds that many, so 200 partitions on 2 workers make about
// 8 tasks instead of 200. Ranges at least that large stay alone. Every
// range is in exactly one group, in order.
func coalesceRanges(ranges []offsetRange, workers int) [][]offsetRange {
	limit := tasksPerWorker * workers
	if workers <= 0 || len(ranges) <= limit {
		out := make([][]offsetRange, len(ranges))
		for i, r := range ranges {
			out[i] = []offsetRange{r}
		}
		return out
	}
	var total int64
	for _, r := range ranges {
		total += r.size()
	}
	target := (total + int64(limit) - 1) / int64(limit)
	var out [][]offsetRange
	var cur []offsetRange
	var curSize int64
	for _, r := range ranges {
		if r.size() >= target {
			out = append(out, []offsetRange{r})
			continue
		}
		cur = append(cur, r)
		curSize += r.size()
		if curSize >= target {
			out = append(out, cur)
			cur, curSize = nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
