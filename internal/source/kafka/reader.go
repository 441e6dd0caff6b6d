package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// The source's read path.
//
// One fetch goroutine per Source (fetchLoop, started by the first Open or
// WaitForData, stopped by Close) polls the client for as long as the query
// runs. It hands the records of the open batch's ranges to the batch's
// tasks and keeps records past a batch's end — or fetched while no batch is
// open — as the carry, the prefetch of the next batch: while a batch
// transforms and commits, the next one's records are already on their way.
// The carry is bounded: a partition is paused once the carry holds its
// share of the prefetch bytes (half of the memory budget's buffer share,
// or fetch.max.bytes without a budget), once its carry holds its share of
// the next two batches' records and a producer batch (carryTarget, from
// SetPrefetchLimit: admission's last limit; maxOffsetsPerTrigger before
// the first plan), and at an availableNow snapshot's end; partitions
// resume as batches take their carry. The pauses take effect before the
// client's next fetch request is built (fetchLoop takes a response in two
// steps), so a fetch never brings records the client then drops.
//
// Open and Close do not talk to the brokers unless a partition's cursor
// must move (the first batch, a batch after a failed one, offsets skipped):
// they park the fetch goroutine (cancel its poll and wait until it rests),
// change the routing under the lock, and let it go on.
//
// Ownership and lifetime of record memory: franz-go decodes a fetch
// response's records as sub-slices of the response's buffer (and of the
// decompressed buffer for compressed batches); nothing copies them. The
// columnar batches a task builds (toBatch) reference those same bytes — a
// key or value cell is the record's Key or Value slice — so the fetch
// buffers live as long as any batch, transform output or sink row refers
// to them, and the garbage collector frees them afterwards. Nothing in
// sluice writes into record bytes, and the client never reuses a buffer
// (no kgo.WithPools), so batches may be read from any goroutine.
// TestToBatchReferencesRecordBytes checks the cells are the records' own
// slices; TestBatchesOutliveFetchBuffers re-reads a batch on several
// goroutines while later responses are fetched and decoded, under the
// race detector.

// task is the work of one source.Task: one piece of a partition range, or
// several small partition ranges coalesced (coalesceRanges).
type task struct {
	pieces []*piece
	q      *partQueue
	left   int // pieces not yet done (owned by the fetch side, under the source lock)
	size   int64
}

// piece is one partition's range [start, end) within a task.
type piece struct {
	tp         partition.ID
	start, end int64
	t          *task
	done       bool // the fetch side reported it complete (under the source lock)
}

func (t *task) String() string {
	p := t.pieces[0]
	s := fmt.Sprintf("%s-%d[%d,%d)", p.tp.Topic, p.tp.Partition, p.start, p.end)
	if len(t.pieces) > 1 {
		s += fmt.Sprintf(" + %d more partition ranges", len(t.pieces)-1)
	}
	return s
}
func (t *task) Size() int64 { return t.size }

// partQueue hands fetched record chunks to a task. It is bounded by the
// task's ranges: nothing past a range's end is queued.
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
// task is finished.
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

// reader is the per-batch source.Reader: the routing of the batch's
// partition ranges to its tasks. Its maps are written by Open and read by
// the fetch goroutine, both under the source lock.
type reader struct {
	s     *Source
	tasks []source.Task
	// subs are the pieces of each partition in offset order; together
	// they cover the partition's range exactly.
	subs   map[partition.ID][]*piece
	ranges map[partition.ID][2]int64
	// next is, per partition, the next offset the batch expects.
	next map[partition.ID]int64
	// lastProgress is when a record of the batch last arrived; gone the
	// partitions found deleted while the batch waited for them.
	lastProgress time.Time
	gone         map[partition.ID]bool
	closed       bool
}

// Open implements source.Source: it plans the batch's tasks (one per
// partition range, small ranges coalesced when there are many more than
// workers) and routes the carry and the fetch goroutine's records to them.
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
		s:            s,
		subs:         map[partition.ID][]*piece{},
		ranges:       map[partition.ID][2]int64{},
		next:         map[partition.ID]int64{},
		gone:         map[partition.ID]bool{},
		lastProgress: time.Now(),
	}
	if s.grp != nil {
		if err := s.checkOwned(end); err != nil {
			return nil, err
		}
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
	split := splitRanges(ranges, s.cfg.MinPartitions, s.cfg.MaxRecordsPerPartition)
	groups := [][]offsetRange{}
	if s.cfg.MinPartitions > 0 || s.cfg.MaxRecordsPerPartition > 0 {
		for _, rg := range split {
			groups = append(groups, []offsetRange{rg})
		}
	} else {
		groups = coalesceRanges(split, s.workers)
	}
	for _, g := range groups {
		t := &task{q: &partQueue{notify: make(chan struct{}, 1)}, left: len(g)}
		for _, rg := range g {
			p := &piece{tp: rg.TP, start: rg.Start, end: rg.End, t: t}
			t.pieces = append(t.pieces, p)
			t.size += rg.size()
			r.subs[rg.TP] = append(r.subs[rg.TP], p)
		}
		r.tasks = append(r.tasks, t)
	}
	if n := int64(len(ranges)); n > 0 && s.grp == nil { // group mode keeps a quarter (not measured there yet)
		s.spread.Store(n)
		s.sizeFetches() // a partition's share of a fetch follows the batch's spread
	}
	s.startFetching()
	// The fetch goroutine is parked only when a cursor moves (no stale
	// records may reach the batch then), and always in group mode, whose
	// assignment changes under the batch. A batch that continues where the
	// fetches are — the carry's records or the cursor at its start, the
	// steady case — only takes the source lock: its poll in flight goes on.
	s.fmu.Lock()
	if s.grp != nil || s.cursorsMove(ranges) {
		s.fmu.Unlock()
		s.park()
		defer s.unpark()
	} else {
		defer s.fmu.Unlock()
	}
	add := map[string]map[int32]kgo.Offset{}
	set := map[string]map[int32]kgo.EpochOffset{}
	for _, rg := range ranges {
		tp, st, en := rg.TP, rg.Start, rg.End
		r.ranges[tp] = [2]int64{st, en}
		r.next[tp] = st
		// Reuse the carry when this range continues where it starts;
		// otherwise move the cursor.
		carried, before := s.carry[tp], s.carryBefore[tp]
		from, hasCarry := s.carryFrom[tp]
		pos, known := s.pos[tp]
		carriedBytes := s.carryBytes[tp]
		s.dropCarry(tp)
		switch {
		case known && hasCarry && st >= from && st <= pos:
			// The carry's records from st to en go to the batch; those
			// from en on stay the carry, in the same array (no copy: a
			// carry larger than a batch is not copied once per batch).
			lo := sort.Search(len(carried), func(i int) bool { return carried[i].Offset >= st })
			hi := lo + sort.Search(len(carried)-lo, func(i int) bool { return carried[lo+i].Offset >= en })
			if hi < len(carried) {
				s.carry[tp], s.carryBefore[tp] = carried[hi:], before[hi:]
				s.carryFrom[tp] = en
				n := carriedBytes - (before[hi] - before[0]) // what stays: all less what was taken
				s.carryBytes[tp] = n
				s.carryTotalBytes += n
				s.carryTotalRecs += int64(len(carried) - hi)
			}
			if hi > lo {
				r.deliver(tp, carried[lo:hi])
			} else if pos >= en {
				r.deliver(tp, nil) // the carry's gaps cover the range
			}
		case known && st == pos:
		default:
			if s.grp != nil && !s.assigned[tp] {
				// Revoked since the check above: the batch cannot run.
				return nil, fmt.Errorf("kafka source: %w: %s-%d", source.ErrRevoked, tp.Topic, tp.Partition)
			}
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
	}
	if len(set) > 0 {
		s.cl.SetOffsets(set) // the fetch goroutine is parked: no stale records reach us
	}
	if len(add) > 0 {
		s.cl.AddConsumePartitions(add)
	}
	s.cur = r
	if s.grp != nil {
		s.grp.batchEnd = maps.Clone(end)
		s.grp.batchStart = Offsets{}
		for tp := range end {
			s.grp.batchStart[tp] = start[tp]
		}
	}
	s.adjustPauses()
	return r, nil
}

// cursorsMove reports whether Open must move a partition's fetch cursor
// (or assign it) for the ranges: a range starting neither inside the
// carry nor at the cursor. Under the source lock.
func (s *Source) cursorsMove(ranges []offsetRange) bool {
	for _, rg := range ranges {
		from, hasCarry := s.carryFrom[rg.TP]
		pos, known := s.pos[rg.TP]
		if !known || !(hasCarry && rg.Start >= from && rg.Start <= pos) && rg.Start != pos {
			return true
		}
	}
	return false
}

func (r *reader) Tasks() []source.Task { return r.tasks }

// allDone reports whether every range of the batch was read (under the
// source lock).
func (r *reader) allDone() bool {
	for tp := range r.ranges {
		if !r.isDone(tp) {
			return false
		}
	}
	return true
}

func (r *reader) isDone(tp partition.ID) bool {
	return r.next[tp] >= r.ranges[tp][1]
}

// deliver routes records of one partition (under the source lock): those
// inside the range go to the queues of the tasks whose pieces hold them,
// those past the end are carried to the next batch. It returns true when
// the range is complete.
//
// recs are in offset order: the bounds are found by binary search, so a
// batch that takes its records from the carry (Open) reads a few of them
// rather than each (control records are left to Read).
func (r *reader) deliver(tp partition.ID, recs []*kgo.Record) bool {
	rng := r.ranges[tp]
	hi := len(recs)
	lo := offsetIndex(recs, r.next[tp]) // before it: already delivered
	cut := lo + offsetIndex(recs[lo:], rng[1])
	in := recs[lo:cut]
	if len(in) > 0 {
		r.next[tp] = in[len(in)-1].Offset + 1
		r.lastProgress = time.Now()
	}
	if cut < hi {
		// Past the end: the range is complete; carry the rest.
		r.next[tp] = rng[1]
		r.s.carryFrom[tp] = rng[1]
		r.s.appendCarry(tp, recs[cut:])
	} else if r.next[tp] < rng[1] && r.s.pos[tp] >= rng[1] {
		r.next[tp] = rng[1] // the cursor passed the end over a gap (compaction, markers)
	}
	done := r.next[tp] >= rng[1]
	if done {
		if _, ok := r.s.carryFrom[tp]; !ok {
			r.s.carryFrom[tp] = rng[1]
		}
	}
	// Hand each task its piece; a piece is done once the partition's
	// cursor passed its end (gaps from compaction or transaction markers
	// included).
	for _, p := range r.subs[tp] {
		if p.done {
			continue
		}
		i := offsetIndex(in, p.end)
		chunk := in[:i]
		in = in[i:]
		pdone := r.next[tp] >= p.end
		if pdone {
			p.done = true
			p.t.left--
		}
		if len(chunk) > 0 || pdone {
			p.t.q.push(chunk, p.t.left == 0, nil)
		}
		if len(in) == 0 && !pdone {
			break
		}
	}
	return done
}

// settle marks the pieces of tp whose ranges the cursor has passed as done
// (after offsets were skipped).
func (r *reader) settle(tp partition.ID) {
	for _, p := range r.subs[tp] {
		if !p.done && r.next[tp] >= p.end {
			p.done = true
			p.t.left--
			p.t.q.push(nil, p.t.left == 0, nil)
		}
	}
}

// failPartition fails every unfinished task of tp.
func (r *reader) failPartition(tp partition.ID, err error) {
	for _, p := range r.subs[tp] {
		if !p.done {
			p.t.q.push(nil, false, err)
		}
	}
}

// offsetIndex is the index of the first of recs (in offset order) at or
// past off: len(recs) when none is.
func offsetIndex(recs []*kgo.Record, off int64) int {
	n := len(recs)
	if n == 0 || recs[n-1].Offset < off {
		return n
	}
	if recs[0].Offset >= off {
		return 0
	}
	return sort.Search(n, func(i int) bool { return recs[i].Offset >= off })
}

// stallCheck is how long a batch waits without progress before the fetch
// goroutine checks that the partitions it waits for still exist; it is
// also the longest single poll.
const stallCheck = 3 * time.Second

// startFetching starts the fetch goroutine once.
func (s *Source) startFetching() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.fetchDone != nil || s.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.fetchStop, s.fetchDone = cancel, make(chan struct{})
	go s.fetchLoop(ctx)
}

// park stops the fetch goroutine between two polls and returns with the
// source lock held: the caller may move cursors and change the routing.
// unpark lets the goroutine go on.
func (s *Source) park() {
	s.fmu.Lock()
	s.parkReq++
	if s.pollCancel != nil {
		s.pollCancel() // a poll in flight returns at once; what it got is handled first
	}
	for s.fetchDone != nil && !s.parked && !s.fetchEnded {
		s.fcond.Wait()
	}
}

func (s *Source) unpark() {
	s.parkReq--
	s.fcond.Broadcast()
	s.fmu.Unlock()
}

// fetchLoop polls the client until ctx ends, routing records to the open
// batch and the carry (handleFetches).
func (s *Source) fetchLoop(ctx context.Context) {
	defer close(s.fetchDone)
	defer func() {
		s.fmu.Lock()
		s.fetchEnded = true
		s.fcond.Broadcast()
		s.fmu.Unlock()
	}()
	for {
		s.fmu.Lock()
		for s.parkReq > 0 && ctx.Err() == nil {
			s.parked = true
			s.fcond.Broadcast()
			s.fcond.Wait()
		}
		s.parked = false
		if ctx.Err() != nil {
			s.fmu.Unlock()
			return
		}
		pctx, cancel := context.WithTimeout(ctx, stallCheck)
		s.pollCancel = cancel
		cl := s.cl // group mode replaces it while the goroutine is parked (renewSession)
		s.fmu.Unlock()

		// A response is taken in two steps, all of it but its last
		// record, then the rest. The client sends a broker its next
		// fetch request only once the last response from it is wholly
		// taken, so the pauses the first part calls for (arrivals,
		// adjustPausesFor) are in place before that request is built: a
		// partition whose carry just filled is left out of it. Taken in
		// one step, the next request went out at once with every
		// partition in it, and the records it brought for partitions
		// paused meanwhile were dropped by the client (and fetched again
		// later).
		//
		// The record left behind is almost always the next one of the
		// partition whose record was taken last. That partition is not
		// paused before the rest is taken: the client would drop the
		// record, and the broker send its whole producer batch again for
		// it. It is paused, if full, as soon as the rest is taken, before
		// the response is routed: taking the rest lets the client build
		// its next request, and a pause that waited for the routing (the
		// source lock, every record of the response) came after it. That
		// request then asked for the held partition alone, and its
		// records — a producer batch — were dropped when they arrived,
		// the partition paused by then, and fetched again later: under a
		// record limit, about one wasted fetch per response (a
		// per-request log of the capped bench: 25 of 91 requests, each a
		// repeated offset), and a round trip the next batch's refill
		// waited behind.
		fetches := cl.PollRecords(pctx, 1) // waits for a response
		cancel()
		if n := cl.BufferedFetchRecords(); n > 1 {
			fetches = append(fetches, cl.PollRecords(nil, int(n-1))...) // nil: what is buffered, no wait
		}
		tail, hasTail := lastPartition(fetches)

		s.fmu.Lock()
		s.pollCancel = nil
		if ctx.Err() != nil {
			s.fmu.Unlock()
			return
		}
		if fetches.IsClientClosed() {
			if r := s.cur; r != nil {
				for tp := range r.subs {
					r.failPartition(tp, errors.New("kafka source: client closed"))
				}
			}
			s.fmu.Unlock()
			return
		}
		s.held, s.heldFull = nil, false
		if hasTail {
			s.held = &tail
		}
		// Pause for what the response brings before the rest is taken;
		// route it after, while the next request is on its way.
		s.adjustPausesFor(s.arrivals(fetches))
		// A producer batch larger than a partition's share reaches a
		// response only as its first partition's: resize before the
		// next request, not at the next batch.
		resize := s.partSet > 0 && s.wireBatchMax.Load() > s.partSet && s.partSet < int64(s.cfg.FetchPartitionMax)
		pauseHeld := s.heldFull
		s.fmu.Unlock()
		if resize {
			s.sizeFetches()
		}

		// The rest (outside the lock: the client's own locks are taken
		// in this call, and group callbacks take the source lock).
		rest := cl.PollRecords(nil, -1)
		if pauseHeld {
			// At once, before the client's next request (see above);
			// s.paused follows under the lock, and the routing's
			// adjustPauses resumes it if a batch took its carry
			// meanwhile.
			cl.PauseFetchPartitions(map[string][]int32{tail.Topic: {tail.Partition}})
		}
		// Taking the rest readied the client goroutine that sends the
		// next fetch request, as this P's next to run; routing below
		// readies the batch's tasks, each of which takes that place and
		// pushes it behind them, so the request waited for the tasks'
		// turn (13–17 ms a 2 M-record default-trigger round in a runtime
		// trace, 2 ms with the yield). After the held partition's pause,
		// which must reach the client before it builds the request.
		runtime.Gosched()
		if afterTakeHook != nil {
			afterTakeHook(s, tail, hasTail)
		}
		s.fmu.Lock()
		if pauseHeld {
			s.paused[tail] = true
		}
		if ctx.Err() != nil {
			s.fmu.Unlock()
			return
		}
		s.handleFetches(ctx, append(fetches, rest...))
		if afterRouteHook != nil {
			afterRouteHook(s, tail, hasTail)
		}
		if r := s.cur; r != nil && time.Since(r.lastProgress) >= stallCheck {
			r.checkGone(ctx)
			r.lastProgress = time.Now()
		}
		s.fmu.Unlock()
	}
}

// afterTakeHook, when set (tests), runs after the fetch goroutine took the
// whole of a response and before it routes its records.
var afterTakeHook func(s *Source, tail partition.ID, hasTail bool)

// afterRouteHook, when set (tests), runs once the fetch goroutine routed a
// response, under the source lock.
var afterRouteHook func(s *Source, tail partition.ID, hasTail bool)

// lastPartition is the partition of the last record in fetches.
func lastPartition(fetches kgo.Fetches) (partition.ID, bool) {
	for i := len(fetches) - 1; i >= 0; i-- {
		ts := fetches[i].Topics
		for j := len(ts) - 1; j >= 0; j-- {
			ps := ts[j].Partitions
			for k := len(ps) - 1; k >= 0; k-- {
				if len(ps[k].Records) > 0 {
					return partition.ID{Topic: ts[j].Topic, Partition: ps[k].Partition}, true
				}
			}
		}
	}
	return partition.ID{}, false
}

// handleFetches routes one poll's records (under the source lock).
func (s *Source) handleFetches(ctx context.Context, fetches kgo.Fetches) {
	r := s.cur
	arrived := false
	now := time.Now()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		tp := partition.ID{Topic: fp.Topic, Partition: fp.Partition}
		inBatch := r != nil && !r.closed
		if inBatch {
			_, inBatch = r.ranges[tp]
		}
		if fp.Err != nil {
			if errors.Is(fp.Err, context.Canceled) || errors.Is(fp.Err, context.DeadlineExceeded) || transient(fp.Err) {
				// The client retries on its own (brokers restarting,
				// leadership moving); Waiting reports an outage.
				return
			}
			if !inBatch || r.isDone(tp) {
				// A prefetch failed (e.g. the offsets after a batch were
				// deleted): forget the cursor; the next batch that reads
				// the partition moves it and meets the error there.
				s.forget(tp)
				return
			}
			if errors.Is(fp.Err, kerr.OffsetOutOfRange) {
				if err := r.dataLoss(ctx, tp); err != nil {
					r.failPartition(tp, err)
				}
				return
			}
			r.failPartition(tp, fmt.Errorf("kafka source: fetch %s-%d: %w", tp.Topic, tp.Partition, s.cfg.Security.Explain(fp.Err)))
			return
		}
		mark := fp.HighWatermark
		if s.cfg.ReadCommitted {
			mark = fp.LastStableOffset // what a batch may read
		}
		if mark > s.hwm[tp] {
			s.hwm[tp] = mark
			arrived = true
		}
		s.hwmAt[tp] = now
		if len(fp.Records) == 0 {
			return
		}
		prev, known := s.pos[tp]
		if !known {
			return // cursor being moved: the next Open sets it
		}
		s.pos[tp] = fp.Records[len(fp.Records)-1].Offset + 1
		arrived = true
		if inBatch && !r.isDone(tp) {
			r.deliver(tp, fp.Records)
			return
		}
		if _, ok := s.carryFrom[tp]; !ok {
			s.carryFrom[tp] = prev
		}
		s.appendCarry(tp, fp.Records)
	})
	s.adjustPauses()
	if arrived {
		select {
		case s.dataCh <- struct{}{}:
		default:
		}
	}
}

// appendCarry keeps records for a later batch (under the source lock).
func (s *Source) appendCarry(tp partition.ID, recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	before := s.carryBefore[tp]
	var at int64 // what the partition's carry counted before recs[0]
	if len(before) > 0 {
		at = before[0]
	}
	at += s.carryBytes[tp]
	from := at
	for _, rec := range recs {
		before = append(before, at)
		at += int64(len(rec.Key) + len(rec.Value)) // as recordBytes
	}
	s.carryBefore[tp] = before
	s.carry[tp] = append(s.carry[tp], recs...)
	n := at - from
	s.carryBytes[tp] += n
	s.carryTotalBytes += n
	s.carryTotalRecs += int64(len(recs))
}

// recordBytes is what the carry counts of recs: keys and values.
func recordBytes(recs []*kgo.Record) int64 {
	var n int64
	for _, rec := range recs {
		n += int64(len(rec.Key) + len(rec.Value))
	}
	return n
}

// dropCarry forgets tp's carry (under the source lock).
func (s *Source) dropCarry(tp partition.ID) {
	s.carryTotalBytes -= s.carryBytes[tp]
	s.carryTotalRecs -= int64(len(s.carry[tp]))
	delete(s.carry, tp)
	delete(s.carryBefore, tp)
	delete(s.carryBytes, tp)
	delete(s.carryFrom, tp)
}

// forget drops what is known of tp's cursor: its next batch moves it.
func (s *Source) forget(tp partition.ID) {
	s.dropCarry(tp)
	delete(s.pos, tp)
}

// adjustPauses pauses the partitions that must not be fetched now and
// resumes the others (under the source lock): a partition of the open
// batch that has not reached its end is always fetched; any other is
// paused when its cursor is unknown, when it reached the availableNow
// snapshot, or when its carry is full: its share of the prefetch bytes,
// or, under a record limit (SetPrefetchLimit), its share of the next
// readAhead batches' records (carryTarget).
//
// The record bound is per partition so that the read-ahead is even: with
// one bound on the whole carry, the partitions fetched first filled it
// and the others were paused with nothing carried, so the next batch
// waited for a fetch round trip per partition or two.
func (s *Source) adjustPauses() { s.adjustPausesFor(nil) }

// arriving is what records taken from the client but not routed yet will
// add to a partition (arrivals).
type arriving struct {
	recs, bytes int64 // to the carry
	next        int64 // the cursor after them
	completes   bool  // they complete the partition's range in the open batch
}

// arrivals is what routing fetches will add to each partition's carry and
// cursor (under the source lock): fetchLoop pauses for it before it takes
// the rest of a response, and routes the records after.
func (s *Source) arrivals(fetches kgo.Fetches) map[partition.ID]arriving {
	r := s.cur
	var out map[partition.ID]arriving
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Err != nil || len(fp.Records) == 0 {
			return
		}
		tp := partition.ID{Topic: fp.Topic, Partition: fp.Partition}
		if _, known := s.pos[tp]; !known {
			return // dropped when routed
		}
		recs := fp.Records
		if out == nil {
			out = map[partition.ID]arriving{}
		}
		a := out[tp]
		a.next = recs[len(recs)-1].Offset + 1
		if r != nil && !r.closed {
			if rng, ok := r.ranges[tp]; ok && !r.isDone(tp) {
				recs = recs[sort.Search(len(recs), func(i int) bool { return recs[i].Offset >= rng[1] }):]
				a.completes = a.completes || a.next >= rng[1]
			}
		}
		a.recs += int64(len(recs))
		a.bytes += recordBytes(recs)
		out[tp] = a
	})
	return out
}

// adjustPausesFor is adjustPauses with the records in (arrivals) counted
// as routed already.
func (s *Source) adjustPausesFor(in map[partition.ID]arriving) {
	if len(s.assigned) == 0 {
		return
	}
	capBytes := s.prefetchBytes.Load()
	perPart := max(capBytes/int64(len(s.assigned)), 64<<10)
	target := s.carryTarget()
	total := s.carryTotalBytes
	for _, a := range in {
		total += a.bytes
	}
	var pause, resume map[string][]int32
	r := s.cur
	for tp := range s.assigned {
		stop := false
		a := in[tp]
		if r == nil || r.closed || r.isDoneOrAbsent(tp) || a.completes {
			pos, known := s.pos[tp]
			pos = max(pos, a.next)
			end, snap := s.availableNow[tp]
			recs, bytes := int64(len(s.carry[tp]))+a.recs, s.carryBytes[tp]+a.bytes
			full := (target > 0 && recs >= target) || bytes >= perPart || total >= capBytes
			if in != nil && s.held != nil && *s.held == tp {
				// Its last fetched record is still to be taken
				// (fetchLoop): a pause now would drop it. fetchLoop
				// pauses it once the record is taken.
				// Counted with its last record too, which is not taken
				// yet (the partition's average size for its bytes).
				if a.recs > 0 {
					recs, bytes = recs+1, bytes+a.bytes/a.recs
				}
				s.heldFull = !s.paused[tp] && ((target > 0 && recs >= target) || bytes >= perPart || total >= capBytes)
				full = false
			}
			stop = !known || (snap && pos >= end) || s.idleWaiting || full
		}
		switch {
		case stop && !s.paused[tp]:
			if pause == nil {
				pause = map[string][]int32{}
			}
			pause[tp.Topic] = append(pause[tp.Topic], tp.Partition)
			s.paused[tp] = true
		case !stop && s.paused[tp]:
			if resume == nil {
				resume = map[string][]int32{}
			}
			resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
			delete(s.paused, tp)
		}
	}
	if pause != nil {
		s.cl.PauseFetchPartitions(pause)
	}
	if resume != nil {
		s.cl.ResumeFetchPartitions(resume)
	}
}

// readAhead is how many batches' shares of records a partition's carry
// holds under a record limit, beyond a producer batch: the next batch's
// and the one after. The one after is what lets a partition's refill — a
// fetch round trip, started when a batch takes the carry below the
// target — arrive while a batch runs, before the next batch needs it.
const readAhead = 2

// carryTarget is the records a partition's carry holds before the
// partition is paused, 0 without a record limit (under the source lock):
// readAhead times its share of a batch (the record limit divided among
// the partitions a batch reads), plus the records of the largest producer
// batch fetched so far. A broker sends a partition's records in whole
// producer batches, so a refill lands one producer batch at a time; with
// producer batches of a few thousand records and a share of a few hundred,
// a target of two shares alone let every partition run dry at about the
// same time and refill in one long fetch while the batch waited.
func (s *Source) carryTarget() int64 {
	recs := s.prefetchRecs.Load()
	if recs <= 0 {
		return 0
	}
	parts := s.spread.Load()
	if parts <= 0 || s.grp != nil {
		parts = int64(len(s.assigned))
	}
	share := (recs + parts - 1) / max(parts, 1)
	var batch int64
	if n, b := s.wireRecs.Load(), s.wireBytes.Load(); n > 0 && b > 0 {
		batch = s.wireBatchMax.Load() * n / b
	}
	return readAhead*share + batch
}

func (r *reader) isDoneOrAbsent(tp partition.ID) bool {
	if _, ok := r.ranges[tp]; !ok {
		return true
	}
	return r.isDone(tp)
}

// WaitForData implements source.DataNotifier: it returns true as soon as
// records past pos have been fetched (or the brokers report them), false
// when maxWait passed or ctx ended first. Partitions of pos that are not
// being read yet are assigned at pos, so their first records are fetched
// by a long poll as soon as they are produced.
func (s *Source) WaitForData(ctx context.Context, posOff source.Offset, maxWait time.Duration) bool {
	pos, _ := posOff.(Offsets)
	s.startFetching()
	if s.grp != nil {
		return s.groupWaitForData(ctx, pos, maxWait)
	}
	s.fmu.Lock()
	add := map[string]map[int32]kgo.Offset{}
	for tp, off := range pos {
		if !s.assigned[tp] {
			if add[tp.Topic] == nil {
				add[tp.Topic] = map[int32]kgo.Offset{}
			}
			add[tp.Topic][tp.Partition] = kgo.NewOffset().At(off)
			s.assigned[tp] = true
			s.pos[tp] = off
		}
	}
	if len(add) > 0 {
		s.cl.AddConsumePartitions(add)
		s.adjustPauses()
	}
	s.fmu.Unlock()
	return s.waitForData(ctx, pos, maxWait, nil)
}

// waitForData waits at most maxWait for records past pos. A query that
// keeps waiting hands the wait over to the idle long poll (waker.go): at
// once when its last wait found nothing, else after wakerAfter. A signal
// on wake (group mode: an assignment change; nil: none) ends the wait with
// true.
func (s *Source) waitForData(ctx context.Context, pos Offsets, maxWait time.Duration, wake <-chan struct{}) bool {
	own := maxWait
	if s.cfg.IdleLongPoll > 0 {
		own = min(maxWait, wakerAfter)
		s.fmu.Lock()
		if s.idleTimedOut {
			own = 0
		}
		s.fmu.Unlock()
	}
	data := s.waitOwn(ctx, pos, own, wake)
	if !data && own < maxWait && ctx.Err() == nil {
		rest := maxWait - own
		var ok bool
		if data, ok = s.waitIdle(ctx, pos, rest, wake); !ok {
			data = s.waitOwn(ctx, pos, rest, wake)
		}
		data = data || s.hasData(pos)
	}
	s.fmu.Lock()
	s.idleTimedOut = !data && ctx.Err() == nil
	s.fmu.Unlock()
	return data
}

// waitOwn waits at most maxWait for the source's own client to fetch
// records past pos (or learn of them); a signal on wake (group mode: an
// assignment change; nil: none) ends the wait with true.
func (s *Source) waitOwn(ctx context.Context, pos Offsets, maxWait time.Duration, wake <-chan struct{}) bool {
	if s.hasData(pos) {
		return true
	}
	if maxWait <= 0 {
		return false
	}
	t := time.NewTimer(maxWait)
	defer t.Stop()
	for {
		if s.hasData(pos) {
			return true
		}
		select {
		case <-s.dataCh:
		case <-wake:
			return true
		case <-t.C:
			return s.hasData(pos)
		case <-ctx.Done():
			return false
		}
	}
}

// hasData reports whether records past pos were fetched or are known to
// exist on the brokers.
func (s *Source) hasData(pos Offsets) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for tp, off := range pos {
		if c := s.carry[tp]; len(c) > 0 && c[len(c)-1].Offset >= off {
			return true
		}
		if h, ok := s.hwm[tp]; ok && h > off {
			return true
		}
	}
	return false
}

// checkGone looks for unfinished partitions whose topic or partition was
// deleted while the batch was reading them: the client waits for them
// forever. With failOnDataLoss such a partition fails its tasks; without, its
// remaining offsets are skipped (counted in dataLoss). Listing errors
// (brokers unreachable) are ignored: the batch keeps waiting.
func (r *reader) checkGone(ctx context.Context) {
	var topics []string
	seen := map[string]bool{}
	for tp := range r.ranges {
		if !r.isDone(tp) && !r.gone[tp] && !seen[tp.Topic] {
			seen[tp.Topic] = true
			topics = append(topics, tp.Topic)
		}
	}
	if len(topics) == 0 {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, stallCheck)
	defer cancel()
	listed, err := r.s.adm.ListEndOffsets(lctx, topics...)
	if err != nil {
		return
	}
	for _, tp := range partition.Offsets(r.next).Sorted() {
		if r.isDone(tp) || r.gone[tp] {
			continue
		}
		lo, ok := listed.Lookup(tp.Topic, tp.Partition)
		if ok && (lo.Err == nil || !errors.Is(lo.Err, kerr.UnknownTopicOrPartition)) {
			continue
		}
		r.gone[tp] = true
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
		delete(r.s.paused, tp)
		r.s.forget(tp)
	}
}

// dataLoss handles OffsetOutOfRange: the offsets we need were deleted. It
// runs on the fetch goroutine, under the source lock.
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
	r.s.dropCarry(tp)
	r.s.pos[tp] = lo.Offset
	// On the fetch goroutine itself: no poll is in flight, so no stale
	// records can follow the move.
	r.s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tp.Topic: {tp.Partition: {Epoch: -1, Offset: lo.Offset}}})
	r.settle(tp)
	return nil
}

// Read implements source.Reader: it converts the task's records into
// batches of Spark's Kafka schema.
func (r *reader) Read(ctx context.Context, t source.Task, emit source.Emit) error {
	tk := t.(*task)
	var topic []byte
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
			// A chunk holds records of one partition (a coalesced
			// task's chunks may come from different ones).
			if string(topic) != recs[0].Topic {
				topic = []byte(recs[0].Topic)
			}
			part := recs[0].Partition
			recs, bad := splitRecords(recs)
			if len(bad) > 0 {
				if err := r.reject(ctx, topic, part, bad); err != nil {
					return err
				}
			}
			if len(recs) == 0 {
				continue
			}
			if err := emit(ctx, r.toBatch(topic, part, recs, r.s.need)); err != nil {
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

// splitRecords drops transaction control records (commit and abort
// markers: the client keeps them, KeepControlRecords, so that the cursor
// passes them) and separates the records whose timestamp is out of range
// — typically written in micro- or nanoseconds by a custom producer —
// from the others, keeping their order. One pass, on the task's
// goroutine; recs itself is returned when it has neither.
func splitRecords(recs []*kgo.Record) (good, bad []*kgo.Record) {
	split := false // good holds the records kept so far
	for i, rec := range recs {
		ctl := rec.Attrs.IsControl()
		if !ctl {
			if ms := recordMillis(rec.Timestamp); ms <= MaxTimestampMillis && ms >= MinTimestampMillis {
				if split {
					good = append(good, rec)
				}
				continue
			}
		}
		if !split {
			split = true
			good = append(make([]*kgo.Record, 0, len(recs)-1), recs[:i]...)
		}
		if !ctl {
			bad = append(bad, rec)
		}
	}
	if !split {
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

// Close detaches the batch from the fetch goroutine. Partitions that
// finished keep being fetched into the carry (the next batch's prefetch,
// bounded as adjustPauses says); a partition that did not finish (a failed
// or cancelled batch) forgets its cursor, so the next Open moves it
// explicitly.
func (r *reader) Close() error {
	s := r.s
	// A batch that read all its ranges (the steady case) only detaches
	// under the source lock; one cut short parks the fetch goroutine to
	// forget the partitions it left unfinished.
	s.fmu.Lock()
	if s.grp == nil && r.allDone() {
		defer s.fmu.Unlock()
	} else {
		s.fmu.Unlock()
		s.park()
		defer s.unpark()
	}
	r.closed = true
	if s.cur == r {
		s.cur = nil
	}
	for tp := range r.ranges {
		if !r.isDone(tp) {
			s.forget(tp)
		}
	}
	s.adjustPauses()
	return nil
}

// stopFetching ends the fetch goroutine and waits for it.
func (s *Source) stopFetching() {
	s.fmu.Lock()
	s.closed = true
	stop, done := s.fetchStop, s.fetchDone
	if s.pollCancel != nil {
		s.pollCancel()
	}
	s.fcond.Broadcast()
	s.fmu.Unlock()
	if stop != nil {
		stop()
		s.fmu.Lock()
		s.fcond.Broadcast()
		s.fmu.Unlock()
		<-done
	}
}
