package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// task is one topic-partition range of a batch, or a piece of one when
// minPartitions / maxRecordsPerPartition split the range.
type task struct {
	tp         partition.ID
	start, end int64
	q          *partQueue
	done       bool // the fetch loop sent done (owned by the fetch loop)
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

// reader is the per-batch source.Reader. One fetch loop serves every task;
// it routes each partition's records to the task whose sub-range holds
// them.
type reader struct {
	s     *Source
	tasks []source.Task
	// subs are the tasks of each partition in offset order; together they
	// cover the partition's range exactly.
	subs   map[partition.ID][]*task
	ranges map[partition.ID][2]int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// next is, per partition, the next offset the fetch loop expects;
	// owned by the fetch loop.
	next map[partition.ID]int64
}

// Open implements source.Source: it plans one task per partition range with
// data and starts the batch's fetch loop.
func (s *Source) Open(ctx context.Context, startOff, endOff source.Offset) (source.Reader, error) {
	start, _ := startOff.(Offsets)
	end, _ := endOff.(Offsets)
	var missing []partition.ID
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
		subs:   map[partition.ID][]*task{},
		ranges: map[partition.ID][2]int64{},
		next:   map[partition.ID]int64{},
	}
	var ranges []offsetRange
	for _, tp := range partition.Offsets(end).Sorted() {
		st, ok := start[tp]
		if !ok {
			st = earliest[tp]
		}
		if en := end[tp]; en > st {
			ranges = append(ranges, offsetRange{TP: tp, Start: st, End: en})
		}
	}
	for _, rg := range splitRanges(ranges, s.cfg.MinPartitions, s.cfg.MaxRecordsPerPartition) {
		t := &task{tp: rg.TP, start: rg.Start, end: rg.End, q: &partQueue{notify: make(chan struct{}, 1)}}
		r.subs[rg.TP] = append(r.subs[rg.TP], t)
		r.tasks = append(r.tasks, t)
	}
	add := map[string]map[int32]kgo.Offset{}
	set := map[string]map[int32]kgo.EpochOffset{}
	resume := map[string][]int32{}
	for _, rg := range ranges {
		tp, st, en := rg.TP, rg.Start, rg.End
		r.ranges[tp] = [2]int64{st, en}

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

func (r *reader) isDone(tp partition.ID) bool {
	return r.next[tp] >= r.ranges[tp][1]
}

// deliver routes records of one partition: those inside the range go to the
// queues of the tasks whose sub-ranges hold them, those past the end are
// carried to the next batch. It returns true when the range is complete.
func (r *reader) deliver(tp partition.ID, recs []*kgo.Record) bool {
	rng := r.ranges[tp]
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
	// Hand each task its piece; a task is done once the partition's
	// cursor passed its end (gaps from compaction or transaction markers
	// included).
	for _, t := range r.subs[tp] {
		if t.done {
			continue
		}
		i := 0
		for i < len(in) && in[i].Offset < t.end {
			i++
		}
		piece := in[:i]
		in = in[i:]
		tdone := r.next[tp] >= t.end
		if len(piece) > 0 || tdone {
			t.q.push(dropControl(piece), tdone, nil)
		}
		t.done = tdone
		if len(in) == 0 && !tdone {
			break
		}
	}
	return done
}

// settle marks the tasks of tp whose sub-ranges the cursor has passed as
// done (after offsets were skipped).
func (r *reader) settle(tp partition.ID) {
	for _, t := range r.subs[tp] {
		if !t.done && r.next[tp] >= t.end {
			t.done = true
			t.q.push(nil, true, nil)
		}
	}
}

// failPartition fails every unfinished task of tp.
func (r *reader) failPartition(tp partition.ID, err error) {
	for _, t := range r.subs[tp] {
		if !t.done {
			t.q.push(nil, false, err)
		}
	}
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
			if !r.isDone(partition.ID{Topic: t, Partition: p}) {
				pending++
			}
		}
	}
	fail := func(err error) {
		for tp := range r.subs {
			r.failPartition(tp, err)
		}
	}
	lastProgress := time.Now()
	gone := map[partition.ID]bool{}
	for pending > 0 {
		// Poll in slices so that a partition whose topic disappeared
		// (the client then waits silently) is noticed.
		pctx, pcancel := context.WithTimeout(ctx, stallCheck)
		fetches := r.s.cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			return
		}
		if time.Since(lastProgress) >= stallCheck {
			pending -= r.checkGone(ctx, gone)
			lastProgress = time.Now()
		}
		if fetches.IsClientClosed() {
			fail(errors.New("kafka source: client closed"))
			return
		}
		var finished map[string][]int32
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			tp := partition.ID{Topic: fp.Topic, Partition: fp.Partition}
			rng, ours := r.ranges[tp]
			if fp.Err != nil {
				if !ours {
					return
				}
				if errors.Is(fp.Err, kerr.OffsetOutOfRange) {
					wasDone := r.isDone(tp)
					if err := r.dataLoss(ctx, tp); err != nil {
						r.failPartition(tp, err)
					} else if !wasDone && r.isDone(tp) {
						pending--
					}
					return
				}
				if errors.Is(fp.Err, context.Canceled) || transient(fp.Err) {
					// The client retries on its own (brokers
					// restarting, leadership moving); Waiting
					// reports an outage meanwhile.
					return
				}
				r.failPartition(tp, fmt.Errorf("kafka source: fetch %s-%d: %w", tp.Topic, tp.Partition, r.s.cfg.Security.Explain(fp.Err)))
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
			lastProgress = time.Now()
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

// stallCheck is how long the fetch loop waits without progress before it
// checks that the partitions it waits for still exist.
const stallCheck = 3 * time.Second

// checkGone looks for unfinished partitions whose topic or partition was
// deleted while the batch was reading them: the client waits for them
// forever. With failOnDataLoss such a partition fails its tasks; without, its
// remaining offsets are skipped (counted in dataLoss). It returns how many
// partitions it finished (to leave the pending count). Listing errors
// (brokers unreachable) are ignored: the loop keeps waiting.
func (r *reader) checkGone(ctx context.Context, gone map[partition.ID]bool) int {
	var topics []string
	seen := map[string]bool{}
	for tp := range r.ranges {
		if !r.isDone(tp) && !gone[tp] && !seen[tp.Topic] {
			seen[tp.Topic] = true
			topics = append(topics, tp.Topic)
		}
	}
	if len(topics) == 0 {
		return 0
	}
	lctx, cancel := context.WithTimeout(ctx, stallCheck)
	defer cancel()
	listed, err := r.s.adm.ListEndOffsets(lctx, topics...)
	if err != nil {
		return 0
	}
	finished := 0
	for _, tp := range partition.Offsets(r.next).Sorted() {
		if r.isDone(tp) || gone[tp] {
			continue
		}
		lo, ok := listed.Lookup(tp.Topic, tp.Partition)
		if ok && (lo.Err == nil || !errors.Is(lo.Err, kerr.UnknownTopicOrPartition)) {
			continue
		}
		gone[tp] = true
		finished++
		rng := r.ranges[tp]
		msg := fmt.Sprintf("partition %s-%d is gone (topic deleted?) while offsets [%d, %d) were still to be read", tp.Topic, tp.Partition, r.next[tp], rng[1])
		if r.s.cfg.FailOnDataLoss {
			r.failPartition(tp, fmt.Errorf("kafka source: %s; set failOnDataLoss=false to continue without them", msg))
			continue
		}
		r.s.log.Warn("kafka source: " + msg + "; skipping them (failOnDataLoss=false)")
		r.s.skipped.Add(rng[1] - r.next[tp])
		r.next[tp] = rng[1]
		r.settle(tp)
		// Forget the partition: if it comes back it is a new one.
		r.s.cl.RemoveConsumePartitions(map[string][]int32{tp.Topic: {tp.Partition}})
		delete(r.s.assigned, tp)
		delete(r.s.pos, tp)
		delete(r.s.carry, tp)
		delete(r.s.carryFrom, tp)
	}
	return finished
}

// dataLoss handles OffsetOutOfRange: the offsets we need were deleted.
func (r *reader) dataLoss(ctx context.Context, tp partition.ID) error {
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
	r.settle(tp)
	if skipTo >= rng[1] {
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
			recs, bad := splitMalformed(recs)
			if len(bad) > 0 {
				if err := r.reject(ctx, topic, tk.tp.Partition, bad); err != nil {
					return err
				}
			}
			if len(recs) == 0 {
				continue
			}
			if err := emit(ctx, r.toBatch(topic, tk.tp.Partition, recs, r.s.need)); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// The range of record timestamps, in milliseconds since the epoch: Spark's
// TimestampType range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
// A timestamp outside it is almost always one a producer wrote in micro-
// or nanoseconds.
const (
	MinTimestampMillis = -62_135_596_800_000
	MaxTimestampMillis = 253_402_300_799_999
)

// inv15625 is the inverse of 15625 modulo 2^58 (15625 × inv15625 ≡ 1).
var inv15625 = func() uint64 {
	// Newton's iteration for the inverse of an odd number modulo 2^64.
	x := uint64(15625)
	for range 6 {
		x *= 2 - 15625*x
	}
	return x
}()

// recordMillis recovers a record's timestamp in milliseconds since the
// epoch. franz-go builds Record.Timestamp as time.Unix(0, ms × 10^6),
// which wraps around for timestamps past the year 2262 — exactly the
// microsecond and nanosecond timestamps some producers write. The product
// modulo 2^64 still determines ms modulo 2^58 (10^6 = 2^6 × 15625 and
// 15625 is odd), so any |ms| < 2^57 (4.5 million years) is recovered
// exactly; a larger one — nanoseconds — comes back as another value,
// which is out of range too unless it happens to fall in years 1..9999
// (a chance of about 1 in 600).
func recordMillis(t time.Time) int64 {
	n := uint64(t.UnixNano())
	if n%64 != 0 { // not a whole number of milliseconds: not from a record
		return t.UnixMilli()
	}
	ms := ((n >> 6) * inv15625) & (1<<58 - 1)
	if ms >= 1<<57 { // sign-extend from 58 bits
		return int64(ms) - 1<<58
	}
	return int64(ms)
}

// splitMalformed separates the records whose timestamp is out of range —
// typically written in micro- or nanoseconds by a custom producer — from
// the others, keeping their order.
func splitMalformed(recs []*kgo.Record) (good, bad []*kgo.Record) {
	for i, rec := range recs {
		if ms := recordMillis(rec.Timestamp); ms > MaxTimestampMillis || ms < MinTimestampMillis {
			if bad == nil {
				good = append(good, recs[:i]...)
			}
			bad = append(bad, rec)
			continue
		}
		if bad != nil {
			good = append(good, rec)
		}
	}
	if bad == nil {
		return recs, nil
	}
	return good, bad
}

// reject hands records with an out-of-range timestamp to the engine
// (source.Reject): dead-lettered when the query has a dead-letter sink,
// else the batch fails with Spark's KAFKA_MALFORMED_RECORD_TIMESTAMP
// condition naming the record. Their timestamp column is null.
func (r *reader) reject(ctx context.Context, topic []byte, partition int32, bad []*kgo.Record) error {
	rows := r.toBatch(topic, partition, bad, nil)
	ts := rows.Columns[5]
	ts.Valid = make([]bool, rows.N) // all null
	clear(ts.Ints)
	reasons := make([]string, len(bad))
	for i, rec := range bad {
		reasons[i] = fmt.Sprintf("[KAFKA_MALFORMED_RECORD_TIMESTAMP] The Kafka record at topic %s, partition %d, offset %d has timestamp %d, "+
			"outside the range of a timestamp in milliseconds since the epoch (years 1 to 9999): was it written in micro- or nanoseconds?",
			rec.Topic, partition, rec.Offset, recordMillis(rec.Timestamp))
	}
	return source.Reject(ctx, rows, reasons)
}

// toBatch converts records into a batch of the source's schema, building
// only the columns need marks (nil: all).
func (r *reader) toBatch(topic []byte, partition int32, recs []*kgo.Record, need []bool) *batch.Batch {
	n := len(recs)
	want := func(i int) bool { return need == nil || need[i] }
	cols := make([]*batch.Column, len(r.s.schema.Fields))
	for i, f := range r.s.schema.Fields {
		// Pruned columns keep their type and length but carry no data.
		cols[i] = &batch.Column{Type: f.Type, Len: n}
	}
	if want(0) {
		keys := make([][]byte, n)
		var valid []bool
		for i, rec := range recs {
			keys[i] = rec.Key
			if rec.Key == nil {
				valid = markNull(valid, i, n)
			}
		}
		cols[0].Bytes, cols[0].Valid = keys, valid
	}
	if want(1) {
		vals := make([][]byte, n)
		var valid []bool
		for i, rec := range recs {
			vals[i] = rec.Value
			if rec.Value == nil {
				valid = markNull(valid, i, n)
			}
		}
		cols[1].Bytes, cols[1].Valid = vals, valid
	}
	if want(2) {
		topics := make([][]byte, n)
		for i := range topics {
			topics[i] = topic
		}
		cols[2].Bytes = topics
	}
	ints := func(col int, f func(*kgo.Record) int64) {
		if !want(col) {
			return
		}
		v := make([]int64, n)
		for i, rec := range recs {
			v[i] = f(rec)
		}
		cols[col].Ints = v
	}
	ints(3, func(*kgo.Record) int64 { return int64(partition) })
	ints(4, func(rec *kgo.Record) int64 { return rec.Offset })
	ints(5, func(rec *kgo.Record) int64 { return recordMillis(rec.Timestamp) * 1000 })
	ints(6, func(rec *kgo.Record) int64 { return int64(rec.Attrs.TimestampType()) })
	if r.s.cfg.IncludeHeaders && want(7) {
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
		cols[7] = hdr
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
