package file

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/storage"
)

// Group mode (sink.Env.Group: the kafka source's sluice.group). The
// members of a consumer group write one output directory. They do not
// write the query log _spark_metadata/N (its batch ids are one query's);
// they share the group log _spark_metadata/group/V instead, with the same
// file format, put-if-absent versions and compaction as the query log. A
// version is one member's batch: a record line naming the member, its
// batch id and, per source partition the batch advanced, the offsets it
// covers, then the batch's files:
//
//	v1
//	{"path":"","size":0,…,"action":"sluice-group","sluiceGroup":{"member":"m1","batchId":7,"partitions":[{"topic":"in","partition":3,"start":100,"end":250}]}}
//	{"path":"file:///out/part-00000-<uuid>.c000.snappy.parquet",…,"action":"add"}
//
// Every tenth version is written as V.compact: the live files so far and
// one record with every partition's end, then the batch's own record and
// files.
//
// The group log is the truth for where a partition starts: the end of the
// last record that advanced it (GroupOffsets, which the source asks when
// it is given a partition); the group's committed offsets follow it, for
// kafka-consumer-groups and Burrow. A member commits a batch only when,
// for every partition it advanced, the log still ends where the batch
// started (or has no record of it yet); the check and the commit are one
// atomic step, because the version is created put-if-absent: a member
// that loses the race for version V reads V and checks again. So of two
// members racing for a partition during a rebalance (the one that lost it
// and the new owner, which started from the log) exactly one commits; the
// other's batch fails with source.ErrRevoked, is abandoned (its files are
// deleted) and the member plans again from the log. A member killed after
// writing files but before its version leaves files no version names,
// which readers never see (and a vacuum removes).
//
// Why one shared log and not one per member: a per-member log cannot tell
// a member that a partition was written by another one since, which is
// what keeps the member that lost a partition (a zombie that has not yet
// noticed) from committing it a second time; put-if-absent on one
// sequence of names is the one atomic decision every store offers.
// Readers (ReadLog, ReadLogURIs, vacuum) merge the group log with the
// query log, so an output written first by one process and then by a
// group is read whole.

// GroupDir is the group log's directory under _spark_metadata.
const GroupDir = "group"

// groupAction is the action of a group log's record lines.
const groupAction = "sluice-group"

// GroupRecord is a group log record: what one member's batch covered.
type GroupRecord struct {
	// Member is the member's name (sluice.group.member); "" on the record
	// of a compaction, which holds every partition's end.
	Member string `json:"member,omitempty"`
	// BatchID is the member's batch id (-1 on a compaction record).
	BatchID    int64            `json:"batchId"`
	Partitions []GroupPartition `json:"partitions"`
}

// GroupPartition is a source partition's range [Start, End) in a group
// log record.
type GroupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
}

// GroupBatcher is what the sink needs from the source in group mode: the
// start and end offsets of the batch being committed.
type GroupBatcher interface {
	GroupBatch() (start, end map[partition.ID]int64)
}

// groupLog returns the group log under the log m.
func (m metaLog) groupLog() (metaLog, error) {
	st, err := storage.Sub(m.st, GroupDir)
	if err != nil {
		return metaLog{}, fmt.Errorf("group log: %w", err)
	}
	return metaLog{dir: m.logPath(GroupDir), st: st}, nil
}

// groupEnds folds the record lines of raw group log entries into each
// partition's end.
func groupEnds(all []LogEntry, ends map[partition.ID]int64) {
	for _, e := range all {
		if e.Action != groupAction || e.Group == nil {
			continue
		}
		for _, p := range e.Group.Partitions {
			ends[partition.ID{Topic: p.Topic, Partition: p.Partition}] = p.End
		}
	}
}

// groupView is the group log's partition ends as of version latest.
type groupView struct {
	ends   map[partition.ID]int64
	latest int64
}

// refreshGroup brings s.gview up to the group log's latest version,
// reading only the versions it has not seen (a compaction it has not seen
// is read whole). s.mu is held.
func (s *Sink) refreshGroup() error {
	files, err := s.glog.list()
	if err != nil {
		return err
	}
	if len(files) == 0 {
		s.gview = groupView{ends: map[partition.ID]int64{}, latest: -1}
		return nil
	}
	if files[len(files)-1].id == s.gview.latest && s.gview.ends != nil {
		return nil
	}
	// Contiguous with what we have: read the new versions; otherwise
	// (the cached versions were compacted away, or nothing is cached)
	// read from the latest compaction.
	i := slices.IndexFunc(files, func(l logFile) bool { return l.id == s.gview.latest+1 })
	if s.gview.ends == nil || i < 0 {
		all, latest, err := s.glog.readRaw()
		if err != nil {
			return err
		}
		v := groupView{ends: map[partition.ID]int64{}, latest: latest}
		groupEnds(all, v.ends)
		s.gview = v
		return nil
	}
	for _, l := range files[i:] {
		es, err := s.glog.readFile(l.name())
		if errors.Is(err, storage.ErrNotExist) {
			s.gview.ends = nil // compacted away meanwhile: read afresh
			return s.refreshGroup()
		}
		if err != nil {
			return err
		}
		if l.compact {
			clear(s.gview.ends)
		}
		groupEnds(es, s.gview.ends)
		s.gview.latest = l.id
	}
	return nil
}

// UseGroup makes the sink take each batch's partition offsets from src
// (call it before the query starts).
func (s *Sink) UseGroup(src GroupBatcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grp = src
}

// GroupOffsets returns, for the partitions of tps the group log has a
// record of, the offset their next batch starts at.
func (s *Sink) GroupOffsets(tps []partition.ID) (map[partition.ID]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refreshGroup(); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	out := map[partition.ID]int64{}
	for _, tp := range tps {
		if e, ok := s.gview.ends[tp]; ok {
			out[tp] = e
		}
	}
	return out, nil
}

// maxGroupAttempts bounds the versions a commit may lose in a row to
// other members before it gives up.
const maxGroupAttempts = 1000

// commitGroup is Commit in group mode: the batch's files and partition
// ranges become the group log's next version, unless another writer has
// moved one of its partitions since the batch started (then the files are
// deleted and the error wraps source.ErrRevoked). s.mu is held.
func (s *Sink) commitGroup(ctx context.Context, batchID int64, files []WrittenFile) error {
	if s.grp == nil {
		RemoveFiles(ctx, s.root, files)
		return fmt.Errorf("file sink: group %q: no source batches (the sink was not wired to a group-mode source)", s.group)
	}
	start, end := s.grp.GroupBatch()
	rec := &GroupRecord{Member: s.member, BatchID: batchID}
	for _, tp := range partition.Offsets(end).Sorted() {
		if end[tp] != start[tp] {
			rec.Partitions = append(rec.Partitions, GroupPartition{Topic: tp.Topic, Partition: tp.Partition, Start: start[tp], End: end[tp]})
		}
	}
	if len(rec.Partitions) == 0 && len(files) == 0 {
		return nil // no partition moved, nothing written
	}
	entries := make([]LogEntry, 0, len(files)+1)
	entries = append(entries, LogEntry{Action: groupAction, Group: rec})
	for _, f := range files {
		entries = append(entries, entryFor(f))
	}
	for attempt := 0; attempt < maxGroupAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			RemoveFiles(context.WithoutCancel(ctx), s.root, files)
			return err
		}
		if err := s.refreshGroup(); err != nil {
			return fmt.Errorf("file sink: batch %d: %w", batchID, err)
		}
		for _, p := range rec.Partitions {
			tp := partition.ID{Topic: p.Topic, Partition: p.Partition}
			if e, ok := s.gview.ends[tp]; ok && e != p.Start {
				RemoveFiles(context.WithoutCancel(ctx), s.root, files)
				return fmt.Errorf("file sink: the group log of %s records partition %s up to offset %d, but batch %d started at %d: another member wrote it: %w",
					s.cfg.Path, tp, e, batchID, p.Start, source.ErrRevoked)
			}
		}
		lf := logFile{id: s.gview.latest + 1, compact: isCompaction(s.gview.latest + 1)}
		lines := entries
		if lf.compact {
			prev, _, err := s.glog.readOwn()
			if err != nil {
				return fmt.Errorf("file sink: compacting the group log: %w", err)
			}
			all := &GroupRecord{BatchID: -1}
			for _, tp := range partition.Offsets(s.gview.ends).Sorted() {
				all.Partitions = append(all.Partitions, GroupPartition{Topic: tp.Topic, Partition: tp.Partition, Start: s.gview.ends[tp], End: s.gview.ends[tp]})
			}
			lines = append(append(append(make([]LogEntry, 0, len(prev)+len(entries)+1), LogEntry{Action: groupAction, Group: all}), prev...), entries...)
		}
		ok, err := s.glog.write(lf.name(), lines)
		if err != nil {
			return fmt.Errorf("file sink: batch %d (group log version %d): %w", batchID, lf.id, err)
		}
		if !ok {
			continue // another member took the version: read it, check again
		}
		if lf.compact {
			s.deleteExpired(s.glog, lf.id)
		}
		return nil
	}
	RemoveFiles(context.WithoutCancel(ctx), s.root, files)
	return fmt.Errorf("file sink: batch %d: lost the group log's next version to other members %d times in a row", batchID, maxGroupAttempts)
}

// ReadGroupEnds returns where the group log of the file sink at the local
// directory path says each source partition ends (the next offset to
// read): what the group's members start from. A path without a group log
// yields none.
func ReadGroupEnds(path string) (map[partition.ID]int64, error) {
	root, err := storage.NewLocal(path)
	if err != nil {
		return nil, fmt.Errorf("reading file sink group log: %w", err)
	}
	m, err := openMetaLog(root)
	if err != nil {
		return nil, err
	}
	g, err := m.groupLog()
	if err != nil {
		return nil, err
	}
	all, _, err := g.readRaw()
	if err != nil {
		return nil, err
	}
	ends := map[partition.ID]int64{}
	groupEnds(all, ends)
	return ends, nil
}
