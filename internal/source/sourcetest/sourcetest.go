// Package sourcetest is an in-memory partitioned source for testing the
// engine without a broker: the test appends records to partitions, deletes
// old ones (retention, hence data loss), stops or slows the source at
// chosen points through a hook, and reads back what every batch opened.
// Everything is deterministic: offsets are positions in in-memory logs,
// tasks are one per partition in partition order, and chunks have a fixed
// size.
//
// Its schema and offsets are Kafka's (key, value, topic, partition,
// offset; {"topic":{"0":n}}), so dead-letter coordinates, per-partition
// lag and the offsets/N format look as they do with the Kafka source.
package sourcetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// Op names a point of the source's work where the hook is called.
type Op string

// Points the hook sees.
const (
	OpAvailable Op = "available" // Available, before the offsets are read
	OpLatest    Op = "latest"    // LatestOffsets (the engine's sampler)
	OpOpen      Op = "open"      // Open, before the tasks are planned
	OpRead      Op = "read"      // a task starts reading its partition
	OpChunk     Op = "chunk"     // before a chunk of rows is emitted
	OpCommit    Op = "commit"    // Commit
)

// Point is where the hook is called. Partition and Offset are set for
// OpRead (the task's first offset) and OpChunk (the chunk's first offset).
type Point struct {
	Op        Op
	Partition partition.ID
	Offset    int64
}

// Hook is called at every Point, from the goroutine doing the work; an
// error fails that step (Available, Open, Read or Commit). A hook may
// block (waiting on a channel, or on ctx) to hold a task mid-read: that
// is how tests make a task slow without sleeping.
type Hook func(ctx context.Context, at Point) error

// Options configure a Source.
type Options struct {
	// Topic names the partitions (default "t").
	Topic string
	// Partitions is the number of partitions, 0..Partitions-1 (default 1).
	Partitions int
	// FailOnDataLoss: reading offsets that retention deleted fails the
	// task; otherwise they are skipped and counted (Skipped).
	FailOnDataLoss bool
	// Defaults is what DefaultReadLimit reports (the source's options).
	Defaults source.ReadLimit
	// ChunkRows is the rows per emitted chunk (default 10).
	ChunkRows int
}

// Range is one partition's [Start, End) opened for a batch.
type Range struct {
	Partition  partition.ID
	Start, End int64
}

// Source is the fake source. It is safe for the engine's concurrent use.
type Source struct {
	opts Options

	mu           sync.Mutex
	logs         map[partition.ID]*plog
	hook         Hook
	availableNow partition.Offsets
	opened       [][]Range
	commits      []partition.Offsets
	skipped      int64
	closed       bool
	latestCalls  int
}

type plog struct {
	earliest int64    // offsets below were deleted
	values   [][]byte // values[i] is at offset i (deleted ones nil)
}

// New returns a source with empty partitions.
func New(opts Options) *Source {
	if opts.Topic == "" {
		opts.Topic = "t"
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 1
	}
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = 10
	}
	s := &Source{opts: opts, logs: map[partition.ID]*plog{}}
	for p := 0; p < opts.Partitions; p++ {
		s.logs[s.id(int32(p))] = &plog{}
	}
	return s
}

func (s *Source) id(p int32) partition.ID { return partition.ID{Topic: s.opts.Topic, Partition: p} }

// Append adds records with the given values to partition p.
func (s *Source) Append(p int32, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(p)
	for _, v := range values {
		l.values = append(l.values, []byte(v))
	}
}

// AppendN adds n records to partition p, valued "p<p>-<offset>".
func (s *Source) AppendN(p int32, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(p)
	for i := 0; i < n; i++ {
		l.values = append(l.values, fmt.Appendf(nil, "p%d-%d", p, len(l.values)))
	}
}

// DeleteBefore deletes partition p's records below offset, as retention
// does.
func (s *Source) DeleteBefore(p int32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log(p)
	offset = min(offset, int64(len(l.values)))
	for i := l.earliest; i < offset; i++ {
		l.values[i] = nil
	}
	l.earliest = max(l.earliest, offset)
}

func (s *Source) log(p int32) *plog {
	l, ok := s.logs[s.id(p)]
	if !ok {
		panic(fmt.Sprintf("sourcetest: partition %d out of range (%d partitions)", p, s.opts.Partitions))
	}
	return l
}

// SetHook installs the hook (nil removes it).
func (s *Source) SetHook(h Hook) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

func (s *Source) call(ctx context.Context, at Point) error {
	s.mu.Lock()
	h := s.hook
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(ctx, at)
}

// Opened returns the ranges of every Open call so far, in call order
// (partitions in order, empty ranges left out).
func (s *Source) Opened() [][]Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.opened)
}

// Commits returns the end offsets of every Commit call so far.
func (s *Source) Commits() []partition.Offsets {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits)
}

// Skipped counts offsets skipped because they were deleted before being
// read (FailOnDataLoss false).
func (s *Source) Skipped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped
}

// Closed reports whether the engine closed the source.
func (s *Source) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Offsets is the fake's position: next offset per partition. JSON is
// Spark's Kafka form, {"t":{"0":12}}.
type Offsets partition.Offsets

// JSON implements source.Offset.
func (o Offsets) JSON() string {
	m := map[string]map[string]int64{}
	for id, off := range o {
		if m[id.Topic] == nil {
			m[id.Topic] = map[string]int64{}
		}
		m[id.Topic][strconv.Itoa(int(id.Partition))] = off
	}
	b, _ := json.Marshal(m) // maps marshal with sorted keys
	return string(b)
}

// Partitions implements source.PartitionedOffset.
func (o Offsets) Partitions() partition.Offsets { return partition.Offsets(o) }

// Description implements source.Source.
func (s *Source) Description() string { return fmt.Sprintf("Fake[%s]", s.opts.Topic) }

// Schema implements source.Source: Kafka's key, value, topic, partition
// and offset columns.
func (s *Source) Schema() batch.Schema {
	return batch.Schema{Fields: []batch.Field{
		{Name: "key", Type: batch.Binary, Nullable: true},
		{Name: "value", Type: batch.Binary, Nullable: true},
		{Name: "topic", Type: batch.String, Nullable: true},
		{Name: "partition", Type: batch.Int, Nullable: true},
		{Name: "offset", Type: batch.Long, Nullable: true},
	}}
}

// DefaultReadLimit implements source.LimitDefaults.
func (s *Source) DefaultReadLimit() source.ReadLimit { return s.opts.Defaults }

// InitialOffset starts every partition at its earliest offset.
func (s *Source) InitialOffset(context.Context) (source.Offset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := Offsets{}
	for id, l := range s.logs {
		o[id] = l.earliest
	}
	return o, nil
}

// ParseOffset implements source.Source.
func (s *Source) ParseOffset(js string) (source.Offset, error) {
	var m map[string]map[string]int64
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		return nil, fmt.Errorf("sourcetest: parse offset %q: %w", js, err)
	}
	o := Offsets{}
	for topic, ps := range m {
		for p, off := range ps {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("sourcetest: parse offset %q: partition %q", js, p)
			}
			o[partition.ID{Topic: topic, Partition: int32(n)}] = off
		}
	}
	return o, nil
}

// PrepareAvailableNow implements source.AvailableNow: later batches never
// go past the offsets of now.
func (s *Source) PrepareAvailableNow(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.availableNow = s.latestLocked()
	return nil
}

func (s *Source) latestLocked() partition.Offsets {
	o := partition.Offsets{}
	for id, l := range s.logs {
		o[id] = int64(len(l.values))
	}
	return o
}

// Available implements source.Partitioned. A partition missing from start
// begins at its earliest offset.
func (s *Source) Available(ctx context.Context, start source.Offset) (from, latest partition.Offsets, err error) {
	if err := s.call(ctx, Point{Op: OpAvailable}); err != nil {
		return nil, nil, err
	}
	st, _ := start.(Offsets)
	s.mu.Lock()
	defer s.mu.Unlock()
	latest = s.latestLocked()
	if s.availableNow != nil {
		latest = maps.Clone(s.availableNow)
	}
	from = partition.Offsets{}
	for id := range latest {
		if off, ok := st[id]; ok {
			from[id] = off
		} else {
			from[id] = s.logs[id].earliest
		}
	}
	return from, latest, nil
}

// LatestOffsets implements source.LatestReporter: every partition's log
// end (the availableNow snapshot once one is taken). The hook sees
// OpLatest first; it is called from the engine's sampler goroutine.
func (s *Source) LatestOffsets(ctx context.Context) (partition.Offsets, error) {
	if err := s.call(ctx, Point{Op: OpLatest}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latestCalls++
	if s.availableNow != nil {
		return maps.Clone(s.availableNow), nil
	}
	return s.latestLocked(), nil
}

// LatestCalls counts LatestOffsets calls.
func (s *Source) LatestCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latestCalls
}

// PartitionOffset implements source.Partitioned.
func (s *Source) PartitionOffset(o partition.Offsets) source.Offset { return Offsets(o) }

// Open implements source.Source: one task per partition with records in
// [start, end).
func (s *Source) Open(ctx context.Context, start, end source.Offset) (source.Reader, error) {
	if err := s.call(ctx, Point{Op: OpOpen}); err != nil {
		return nil, err
	}
	st, _ := start.(Offsets)
	en, ok := end.(Offsets)
	if !ok {
		return nil, fmt.Errorf("sourcetest: end offset %T is not a sourcetest offset", end)
	}
	var ranges []Range
	for _, id := range partition.Offsets(en).Sorted() {
		from, ok := st[id]
		if !ok {
			s.mu.Lock()
			from = s.logs[id].earliest
			s.mu.Unlock()
		}
		if en[id] > from {
			ranges = append(ranges, Range{Partition: id, Start: from, End: en[id]})
		}
	}
	s.mu.Lock()
	s.opened = append(s.opened, ranges)
	s.mu.Unlock()
	r := &reader{s: s}
	for _, rg := range ranges {
		r.tasks = append(r.tasks, task(rg))
	}
	return r, nil
}

type task Range

func (t task) String() string {
	return fmt.Sprintf("%s[%d,%d)", t.Partition, t.Start, t.End)
}
func (t task) Size() int64 { return t.End - t.Start }

type reader struct {
	s     *Source
	tasks []source.Task
}

func (r *reader) Tasks() []source.Task { return r.tasks }
func (r *reader) Close() error         { return nil }

// DataLossError reports offsets deleted before they were read while
// FailOnDataLoss is set.
type DataLossError struct {
	Partition          partition.ID
	Expected, Earliest int64
}

func (e *DataLossError) Error() string {
	return fmt.Sprintf("data loss: %s: expected to read from offset %d but the earliest available offset is %d", e.Partition, e.Expected, e.Earliest)
}

// Read implements source.Reader: the task's records in chunks of
// ChunkRows, stopping when ctx is cancelled.
func (r *reader) Read(ctx context.Context, t source.Task, emit source.Emit) error {
	tk, ok := t.(task)
	if !ok {
		return fmt.Errorf("sourcetest: task %T is not a sourcetest task", t)
	}
	s := r.s
	if err := s.call(ctx, Point{Op: OpRead, Partition: tk.Partition, Offset: tk.Start}); err != nil {
		return err
	}
	from := tk.Start
	s.mu.Lock()
	l := s.logs[tk.Partition]
	if from < l.earliest {
		if s.opts.FailOnDataLoss {
			s.mu.Unlock()
			return &DataLossError{Partition: tk.Partition, Expected: from, Earliest: l.earliest}
		}
		skip := min(l.earliest, tk.End) - from
		s.skipped += skip
		from += skip
	}
	if tk.End > int64(len(l.values)) {
		s.mu.Unlock()
		return fmt.Errorf("sourcetest: %s: range end %d is past the log end %d", tk.Partition, tk.End, len(l.values))
	}
	values := slices.Clone(l.values[from:tk.End])
	s.mu.Unlock()
	for i := 0; i < len(values); i += s.opts.ChunkRows {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := from + int64(i)
		if err := s.call(ctx, Point{Op: OpChunk, Partition: tk.Partition, Offset: off}); err != nil {
			return err
		}
		chunk := values[i:min(i+s.opts.ChunkRows, len(values))]
		if err := emit(ctx, s.chunk(tk.Partition, off, chunk)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) chunk(id partition.ID, first int64, values [][]byte) *batch.Batch {
	schema := s.Schema()
	n := len(values)
	cols := make([]*batch.Column, len(schema.Fields))
	for i, f := range schema.Fields {
		cols[i] = batch.NewColumn(f.Type, n)
	}
	for i, v := range values {
		cols[0].AppendNull()
		cols[1].AppendBytes(v)
		cols[2].AppendBytes([]byte(id.Topic))
		cols[3].AppendInt(int64(id.Partition))
		cols[4].AppendInt(first + int64(i))
	}
	return batch.New(schema, cols, n)
}

// Commit implements source.Source: it records end.
func (s *Source) Commit(ctx context.Context, end source.Offset) error {
	if err := s.call(ctx, Point{Op: OpCommit}); err != nil {
		return err
	}
	e, _ := end.(Offsets)
	s.mu.Lock()
	s.commits = append(s.commits, maps.Clone(partition.Offsets(e)))
	s.mu.Unlock()
	return nil
}

// Close implements source.Source.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

var (
	_ source.Partitioned       = (*Source)(nil)
	_ source.LatestReporter    = (*Source)(nil)
	_ source.AvailableNow      = (*Source)(nil)
	_ source.LimitDefaults     = (*Source)(nil)
	_ source.PartitionedOffset = Offsets(nil)
)
