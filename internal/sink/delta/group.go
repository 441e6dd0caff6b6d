package delta

import (
	"fmt"

	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// Group mode (sink.Env.Group: the kafka source's sluice.group). The
// members of a consumer group write one table; what each has written is
// recorded per source partition in the table itself: every commit carries
// a txn action per partition the batch advanced, appId
// "sluice-group/<group>/<topic>/<partition>", version = the partition's
// end offset (the next offset to read). The table is then the truth for
// where a partition's next batch starts (GroupOffsets, which the source
// asks when it is given a partition), and the group's committed offsets,
// committed after the table's, are for visibility only.
//
// A commit is refused with source.ErrRevoked when a partition's txn in
// the table is not where the batch started: another member (the
// partition's new owner, or a zombie that lost it) wrote that partition
// since. Delta's put-if-absent versions make the check and the commit one
// atomic step: a lost race re-reads the log and checks again. The batch's
// files are deleted and the member re-plans from the table.

// GroupBatcher is what the sink needs from the source in group mode: the
// start and end offsets of the batch being committed.
type GroupBatcher interface {
	GroupBatch() (start, end map[partition.ID]int64)
}

// UseGroup makes the sink take each batch's partition offsets from src
// (call it before the query starts).
func (s *Sink) UseGroup(src GroupBatcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grp = src
}

// groupAppID is the txn appId of a source partition in group mode.
func (s *Sink) groupAppID(tp partition.ID) string {
	return fmt.Sprintf("sluice-group/%s/%s/%d", s.group, tp.Topic, tp.Partition)
}

// GroupOffsets returns, for the partitions of tps the table has a txn for,
// the offset their next batch starts at (the table's latest state).
func (s *Sink) GroupOffsets(tps []partition.ID) (map[partition.ID]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(); err != nil {
		return nil, err
	}
	out := map[partition.ID]int64{}
	for _, tp := range tps {
		if t, ok := s.st.txns[s.groupAppID(tp)]; ok {
			out[tp] = t.Version
		}
	}
	return out, nil
}

// checkGroupBatch refuses to commit a batch when another writer has moved
// one of its partitions since the batch started (group mode). s.mu is held.
func (s *Sink) checkGroupBatch(st *state) error {
	if s.group == "" {
		return nil
	}
	if s.grp == nil {
		return fmt.Errorf("delta sink: group %q: no source batches (the sink was not wired to a group-mode source)", s.group)
	}
	start, end := s.grp.GroupBatch()
	for _, tp := range partition.Offsets(end).Sorted() {
		if end[tp] == start[tp] {
			continue
		}
		if t, ok := st.txns[s.groupAppID(tp)]; ok && t.Version != start[tp] {
			return fmt.Errorf("delta sink: table %s records partition %s up to offset %d, but this batch started at %d: another member wrote it: %w",
				s.path, tp, t.Version, start[tp], source.ErrRevoked)
		}
	}
	return nil
}

// groupTxns are the txn actions of the batch being committed: one per
// partition it advanced.
func (s *Sink) groupTxns(now int64) []action {
	start, end := s.grp.GroupBatch()
	var out []action
	for _, tp := range partition.Offsets(end).Sorted() {
		if end[tp] == start[tp] {
			continue
		}
		out = append(out, action{Txn: &txnAction{AppID: s.groupAppID(tp), Version: end[tp], LastUpdated: &now}})
	}
	return out
}
