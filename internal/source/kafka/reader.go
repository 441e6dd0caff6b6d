package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/source"
)

// task is one topic-partition range of a batch.
type task struct {
	tp         admission.TopicPartition
	start, end int64
	q          *partQueue
}

func (t *task) String() string {
	return fmt.Sprintf("%s-%d[%d,%d)", t.tp.Topic, t.tp.Partition, t.start, t.end)
}
func (t *task) Size() int64 { return t.end - t.start }

// partQueue hands fetched record chunks from the batch's fetch loop to the
// partition's task. It is bounded by the batch range: the loop stops
// delivering (and pauses the partition) once the range end is reached.
type partQueue struct {
	mu     sync.Mutex
	chunks [][]*kgo.Record
	done   bool
	err    error
	notify chan struct{} // capacity 1: "something changed"
}

func (q *partQueue) push(recs []*kgo.Record, done bool, err error) {
	q.mu.Lock()
	if len(recs) > 0 {
		q.chunks = append(q.chunks, recs)
	}
	q.done = q.done || done
	if err != nil && q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// take returns the queued chunks, waiting until there is something or the
// range is finished.
func (q *partQueue) take(ctx context.Context) ([][]*kgo.Record, bool, error) {
	for {
		q.mu.Lock()
		chunks, done, err := q.chunks, q.done, q.err
		q.chunks = nil
		q.mu.Unlock()
		if len(chunks) > 0 || done || err != nil {
			return chunks, done, err
		}
		select {
		case <-q.notify:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// reader is the per-batch source.Reader.
type reader struct {
	s      *Source
	tasks  []source.Task
	queues map[admission.TopicPartition]*partQueue
	ranges map[admission.TopicPartition][2]int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// next is, per partition, the next offset the fetch loop expects;
	// owned by the fetch loop.
	next map[admission.TopicPartition]int64
}

// Open implements source.Source: it plans one task per partition range with
// data and starts the batch's fetch loop.
func (s *Source) Open(ctx context.Context, startOff, endOff source.Offset) (source.Reader, error) {
	start, _ := startOff.(Offsets)
	end, _ := endOff.(Offsets)
	var missing []admission.TopicPartition
	for tp := range end {
		if _, ok := start[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	var earliest Offsets
	if len(missing) > 0 {
		var err error
		if earliest, err = s.listOffsets(ctx, false); err != nil {
			return nil, err
		}
	}
	r := &reader{
		s:      s,
		queues: map[admission.TopicPartition]*partQueue{},
		ranges: map[admission.TopicPartition][2]int64{},
		next:   map[admission.TopicPartition]int64{},
	}
	add := map[string]map[int32]kgo.Offset{}
	set := map[string]map[int32]kgo.EpochOffset{}
	resume := map[string][]int32{}
	for _, tp := range admission.SortedKeys(admission.Offsets(end)) {
		st, ok := start[tp]
		if !ok {
			st = earliest[tp]
		}
		en := end[tp]
		if en <= st {
			continue
		}
		q := &partQueue{notify: make(chan struct{}, 1)}
		r.queues[tp] = q
		r.ranges[tp] = [2]int64{st, en}
		r.tasks = append(r.tasks, &task{tp: tp, start: st, end: en, q: q})

		// Reuse carried records when this range continues where the
		// previous one ended; otherwise move the cursor.
		carried := s.carry[tp]
		from, hasCarry := s.carryFrom[tp]
		pos, known := s.pos[tp]
		delete(s.carry, tp)
		delete(s.carryFrom, tp)
		switch {
		case known && hasCarry && st >= from && st <= pos:
			var keep []*kgo.Record
			for _, rec := range carried {
				if rec.Offset >= st {
					keep = append(keep, rec)
				}
			}
			r.next[tp] = st
			if len(keep) > 0 {
				r.deliver(tp, keep)
			}
			if r.isDone(tp) {
				continue // the carry covered the whole range
			}
		case known && st == pos:
			r.next[tp] = st
		default:
			r.next[tp] = st
			if s.assigned[tp] {
				if set[tp.Topic] == nil {
					set[tp.Topic] = map[int32]kgo.EpochOffset{}
				}
				set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: st}
			} else {
				if add[tp.Topic] == nil {
					add[tp.Topic] = map[int32]kgo.Offset{}
				}
				add[tp.Topic][tp.Partition] = kgo.NewOffset().At(st)
				s.assigned[tp] = true
			}
			s.pos[tp] = st
		}
		resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
	}
	// Pause partitions that are about to be (re)assigned so nothing is
	// fetched before the resume below, then move cursors and resume.
	if len(set) > 0 {
		s.cl.SetOffsets(set)
	}
	if len(add) > 0 {
		s.cl.AddConsumePartitions(add)
	}
	if len(resume) > 0 {
		s.cl.ResumeFetchPartitions(resume)
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	if len(resume) > 0 {
		r.wg.Add(1)
		go r.fetchLoop(fctx, resume)
	}
	return r, nil
}

func (r *reader) Tasks() []source.Task { return r.tasks }

func (r *reader) isDone(tp admission.TopicPartition) bool {
	return r.next[tp] >= r.ranges[tp][1]
}

// deliver routes records of one partition: those inside the range go to the
// task's queue, those past the end are carried to the next batch. It
// returns true when the range is complete.
func (r *reader) deliver(tp admission.TopicPartition, recs []*kgo.Record) bool {
	rng := r.ranges[tp]
	q := r.queues[tp]
	lo, hi := 0, len(recs)
	for lo < hi && recs[lo].Offset < r.next[tp] {
		lo++ // already delivered (overlap after a cursor move)
	}
	cut := lo
	for cut < hi && recs[cut].Offset < rng[1] {
		cut++
	}
	in := recs[lo:cut]
	if len(in) > 0 {
		r.next[tp] = in[len(in)-1].Offset + 1
	}
	if cut < hi {
		// Past the end: the range is complete; keep the rest.
		r.s.carry[tp] = append([]*kgo.Record(nil), recs[cut:]...)
		r.s.carryFrom[tp] = rng[1]
		r.next[tp] = rng[1]
	}
	done := r.next[tp] >= rng[1]
	if done {
		if _, ok := r.s.carryFrom[tp]; !ok {
			r.s.carryFrom[tp] = rng[1]
		}
	}
	q.push(dropControl(in), done, nil)
	return done
}

func dropControl(recs []*kgo.Record) []*kgo.Record {
	for i, rec := range recs {
		if rec.Attrs.IsControl() {
			out := append([]*kgo.Record(nil), recs[:i]...)
			for _, r2 := range recs[i+1:] {
				if !r2.Attrs.IsControl() {
					out = append(out, r2)
				}
			}
			return out
		}
	}
	return recs
}

// fetchLoop polls the client until every partition of the batch reached its
// end, pausing partitions as they finish.
func (r *reader) fetchLoop(ctx context.Context, active map[string][]int32) {
	defer r.wg.Done()
	pending := 0
	for t, ps := range active {
		for _, p := range ps {
			if !r.isDone(admission.TopicPartition{Topic: t, Partition: p}) {
				pending++
			}
		}
	}
	fail := func(err error) {
		for _, q := range r.queues {
			q.push(nil, false, err)
		}
	}
	for pending > 0 {
		fetches := r.s.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		if fetches.IsClientClosed() {
			fail(errors.New("kafka source: client closed"))
			return
		}
		var finished map[string][]int32
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			tp := admission.TopicPartition{Topic: fp.Topic, Partition: fp.Partition}
			rng, ours := r.ranges[tp]
			if fp.Err != nil {
				if !ours {
					return
				}
				if errors.Is(fp.Err, kerr.OffsetOutOfRange) {
					wasDone := r.isDone(tp)
					if err := r.dataLoss(ctx, tp); err != nil {
						r.queues[tp].push(nil, false, err)
					} else if !wasDone && r.isDone(tp) {
						pending--
					}
					return
				}
				if kerr.IsRetriable(fp.Err) || errors.Is(fp.Err, context.Canceled) {
					return
				}
				r.queues[tp].push(nil, false, fmt.Errorf("kafka source: fetch %s-%d: %w", tp.Topic, tp.Partition, fp.Err))
				return
			}
			if len(fp.Records) == 0 {
				return
			}
			if !ours || r.isDone(tp) {
				// A partition not in this batch (or already complete):
				// keep its records for later batches.
				if ours || r.s.assigned[tp] {
					from, ok := r.s.carryFrom[tp]
					if !ok {
						from = fp.Records[0].Offset
						r.s.carryFrom[tp] = from
					}
					r.s.carry[tp] = append(r.s.carry[tp], fp.Records...)
				}
				r.s.pos[tp] = fp.Records[len(fp.Records)-1].Offset + 1
				return
			}
			r.s.pos[tp] = fp.Records[len(fp.Records)-1].Offset + 1
			if r.deliver(tp, fp.Records) {
				pending--
				if finished == nil {
					finished = map[string][]int32{}
				}
				finished[tp.Topic] = append(finished[tp.Topic], tp.Partition)
			}
			_ = rng
		})
		if finished != nil {
			r.s.cl.PauseFetchPartitions(finished)
		}
	}
}

// dataLoss handles OffsetOutOfRange: the offsets we need were deleted.
func (r *reader) dataLoss(ctx context.Context, tp admission.TopicPartition) error {
	earliest, err := r.s.adm.ListStartOffsets(ctx, tp.Topic)
	if err != nil {
		return fmt.Errorf("kafka source: %s-%d offset out of range, and listing its earliest offset failed: %w", tp.Topic, tp.Partition, err)
	}
	lo, ok := earliest.Lookup(tp.Topic, tp.Partition)
	if !ok || lo.Err != nil {
		return fmt.Errorf("kafka source: %s-%d offset out of range and its earliest offset is unknown", tp.Topic, tp.Partition)
	}
	expected := r.next[tp]
	if lo.Offset <= expected {
		// Out of range past the end (e.g. truncation): nothing we can
		// recover by skipping forward.
		return fmt.Errorf("kafka source: %s-%d offset %d out of range (log now starts at %d)", tp.Topic, tp.Partition, expected, lo.Offset)
	}
	if r.s.cfg.FailOnDataLoss {
		return &DataLossError{Topic: tp.Topic, Partition: tp.Partition, Expected: expected, Earliest: lo.Offset}
	}
	rng := r.ranges[tp]
	skipTo := min(lo.Offset, rng[1])
	r.s.skipped.Add(skipTo - expected)
	r.s.log.Warn("kafka source: offsets deleted before they were read; skipping (failOnDataLoss=false)",
		"topic", tp.Topic, "partition", tp.Partition, "expected", expected, "earliest", lo.Offset, "skipped", skipTo-expected)
	r.next[tp] = skipTo
	r.s.pos[tp] = lo.Offset
	r.s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tp.Topic: {tp.Partition: {Epoch: -1, Offset: lo.Offset}}})
	if skipTo >= rng[1] {
		r.queues[tp].push(nil, true, nil)
		r.s.cl.PauseFetchPartitions(map[string][]int32{tp.Topic: {tp.Partition}})
	}
	return nil
}

// Read implements source.Reader: it converts the task's records into
// batches of Spark's Kafka schema.
func (r *reader) Read(ctx context.Context, t source.Task, emit source.Emit) error {
	tk := t.(*task)
	topic := []byte(tk.tp.Topic)
	for {
		chunks, done, err := tk.q.take(ctx)
		if err != nil {
			return err
		}
		budget := r.s.budget.Load()
		for _, recs := range chunks {
			if len(recs) == 0 {
				continue
			}
			if budget > 0 {
				for _, rec := range recs {
					size := int64(len(rec.Key) + len(rec.Value))
					for _, h := range rec.Headers {
						size += int64(len(h.Key) + len(h.Value))
					}
					if size > budget {
						return &RecordTooLargeError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Size: size, Budget: budget}
					}
				}
			}
			if err := emit(ctx, r.toBatch(topic, tk.tp.Partition, recs)); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

func (r *reader) toBatch(topic []byte, partition int32, recs []*kgo.Record) *batch.Batch {
	n := len(recs)
	keys := make([][]byte, n)
	vals := make([][]byte, n)
	topics := make([][]byte, n)
	parts := make([]int64, n)
	offs := make([]int64, n)
	tss := make([]int64, n)
	tsts := make([]int64, n)
	var keyValid, valValid []bool
	for i, rec := range recs {
		keys[i], vals[i], topics[i] = rec.Key, rec.Value, topic
		parts[i] = int64(partition)
		offs[i] = rec.Offset
		tss[i] = rec.Timestamp.UnixMicro()
		tsts[i] = int64(rec.Attrs.TimestampType())
		if rec.Key == nil {
			keyValid = markNull(keyValid, i, n)
		}
		if rec.Value == nil {
			valValid = markNull(valValid, i, n)
		}
	}
	cols := []*batch.Column{
		{Type: batch.Binary, Bytes: keys, Valid: keyValid, Len: n},
		{Type: batch.Binary, Bytes: vals, Valid: valValid, Len: n},
		{Type: batch.String, Bytes: topics, Len: n},
		{Type: batch.Int, Ints: parts, Len: n},
		{Type: batch.Long, Ints: offs, Len: n},
		{Type: batch.Timestamp, Ints: tss, Len: n},
		{Type: batch.Int, Ints: tsts, Len: n},
	}
	if r.s.cfg.IncludeHeaders {
		hdr := batch.NewColumn(batch.Headers, n)
		for _, rec := range recs {
			if len(rec.Headers) == 0 {
				hdr.AppendNull()
				continue
			}
			hs := make([]batch.Header, len(rec.Headers))
			for i, h := range rec.Headers {
				hs[i] = batch.Header{Key: h.Key, Value: h.Value}
			}
			hdr.AppendHeaders(hs)
		}
		cols = append(cols, hdr)
	}
	return batch.New(r.s.schema, cols, n)
}

// markNull records that cell i of an n-cell column is null, creating the
// validity slice (all true) on the first null.
func markNull(valid []bool, i, n int) []bool {
	if valid == nil {
		valid = make([]bool, n)
		for j := range valid {
			valid[j] = true
		}
	}
	valid[i] = false
	return valid
}

// Close stops the fetch loop and pauses every partition of the batch, so
// nothing is fetched between batches beyond what is already buffered.
func (r *reader) Close() error {
	r.cancel()
	r.wg.Wait()
	pause := map[string][]int32{}
	for tp := range r.ranges {
		pause[tp.Topic] = append(pause[tp.Topic], tp.Partition)
	}
	if len(pause) > 0 {
		r.s.cl.PauseFetchPartitions(pause)
	}
	// A partition that did not finish (failed or cancelled batch): its
	// cursor is somewhere inside the range; forget the carry so the next
	// Open moves the cursor explicitly.
	for tp := range r.ranges {
		if !r.isDone(tp) {
			delete(r.s.carry, tp)
			delete(r.s.carryFrom, tp)
			delete(r.s.pos, tp)
		}
	}
	return nil
}
