package delta

import (
	"errors"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// fakeBatch is a group-mode source's batch offsets.
type fakeBatch struct{ start, end map[partition.ID]int64 }

func (f *fakeBatch) GroupBatch() (map[partition.ID]int64, map[partition.ID]int64) {
	return f.start, f.end
}

func groupSink(t *testing.T, dir, queryID string, b *fakeBatch) *Sink {
	t.Helper()
	s, err := open(config{path: dir, group: "g"}, queryID)
	if err != nil {
		t.Fatal(err)
	}
	s.UseGroup(b)
	return s
}

// Two members share a table: each commit records the partitions it
// advanced as txn actions; a member whose batch started behind the
// table's record of a partition (it lost the partition, or its new owner
// wrote first) is refused with source.ErrRevoked and leaves no files.
func TestGroupCommitsRecordPartitionsAndFenceStaleWriters(t *testing.T) {
	dir := t.TempDir()
	p0, p1 := partition.ID{Topic: "in", Partition: 0}, partition.ID{Topic: "in", Partition: 1}
	ba := &fakeBatch{start: map[partition.ID]int64{p0: 0, p1: 0}, end: map[partition.ID]int64{p0: 10, p1: 0}}
	a := groupSink(t, dir, "member-a", ba)
	if err := runBatch(t, a, 0, []*batch.Batch{genRows(0, 10)}); err != nil {
		t.Fatal(err)
	}
	// Member b now owns p0 but read its start before a's commit landed.
	bb := &fakeBatch{start: map[partition.ID]int64{p0: 0}, end: map[partition.ID]int64{p0: 7}}
	b := groupSink(t, dir, "member-b", bb)
	before := len(dataFiles(t, dir))
	err := runBatch(t, b, 0, []*batch.Batch{genRows(100, 7)})
	if !errors.Is(err, source.ErrRevoked) {
		t.Fatalf("stale batch: err = %v, want source.ErrRevoked", err)
	}
	if after := len(dataFiles(t, dir)); after != before {
		t.Errorf("the refused batch left data files: %d before, %d after", before, after)
	}
	// Re-planned from the table's record, b's batch commits.
	offs, err := b.GroupOffsets([]partition.ID{p0, p1})
	if err != nil {
		t.Fatal(err)
	}
	if offs[p0] != 10 {
		t.Fatalf("GroupOffsets = %v, want p0 at 10 (p1 never advanced: absent)", offs)
	}
	if _, ok := offs[p1]; ok {
		t.Errorf("GroupOffsets has p1: %v", offs)
	}
	bb.start, bb.end = map[partition.ID]int64{p0: 10}, map[partition.ID]int64{p0: 17}
	if err := runBatch(t, b, 1, []*batch.Batch{genRows(100, 7)}); err != nil {
		t.Fatal(err)
	}
	_, txns, _, err := Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(txns) != 1 || txns["sluice-group/g/in/0"] != 17 {
		t.Errorf("txns = %v, want only sluice-group/g/in/0 at 17", txns)
	}
}
