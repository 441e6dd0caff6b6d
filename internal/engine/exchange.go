package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// exchange is the in-process shuffle of one batch: stage-1 tasks send rows
// to shuffle partitions; each partition's Stage2 consumes them. Buffered
// bytes are bounded: a producer that finds the buffer full does the
// consumers' work itself — it takes the fullest partition no one is
// working on and feeds its rows to that partition's Stage2 — and waits only
// when every partition with buffered rows is already being drained. Rows
// are never dropped; a partition's rows reach its Stage2 in the order each
// producer sent them.
type exchange struct {
	parts []*shufflePart
	bound int64
	bytes atomic.Int64
	// open creates a partition's Stage2 (opening its state stores) on first
	// use.
	open func(p int) (Stage2, error)
	// idle (if set) is called after each stretch of work of partition p's
	// Stage2 (a Process of its queue, its Finish), with p's lock held.
	idle func(p int)

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when buffered bytes drop
	peak    atomic.Int64
}

// shufflePart is one shuffle partition's buffer and consumer.
type shufflePart struct {
	// mu is held while the partition's Stage2 works (one goroutine at a
	// time).
	mu     sync.Mutex
	stage2 Stage2
	err    error
	rows   int64
	busy   time.Duration

	qmu    sync.Mutex
	queue  []*batch.Batch
	qbytes int64
}

func newExchange(partitions int, bound int64, open func(p int) (Stage2, error)) *exchange {
	x := &exchange{parts: make([]*shufflePart, partitions), bound: max(bound, 1), open: open, changed: make(chan struct{})}
	for i := range x.parts {
		x.parts[i] = &shufflePart{}
	}
	return x
}

// send buffers b for partition p. The bytes are reserved before the rows
// are queued, so the buffer never holds more than its bound (a single
// batch larger than the bound passes alone, into an empty buffer); while
// there is no room the producer drains partitions itself, or waits.
func (x *exchange) send(ctx context.Context, p int, b *batch.Batch) error {
	size := b.ByteSize() + 64
	for {
		cur := x.bytes.Load()
		if cur == 0 || cur+size <= x.bound {
			if !x.bytes.CompareAndSwap(cur, cur+size) {
				continue
			}
			for peak := x.peak.Load(); cur+size > peak && !x.peak.CompareAndSwap(peak, cur+size); peak = x.peak.Load() {
			}
			break
		}
		x.mu.Lock()
		wait := x.changed
		x.mu.Unlock()
		drained, err := x.drainOne()
		if err != nil {
			return err
		}
		if !drained {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wait:
			}
		}
	}
	part := x.parts[p]
	part.qmu.Lock()
	part.queue = append(part.queue, b)
	part.qbytes += size
	part.qmu.Unlock()
	return nil
}

// drainOne feeds the fullest idle partition's buffered rows to its Stage2.
// It reports false when every partition with rows is busy.
func (x *exchange) drainOne() (bool, error) {
	for {
		best, bestBytes := -1, int64(0)
		for i, part := range x.parts {
			part.qmu.Lock()
			n := part.qbytes
			part.qmu.Unlock()
			if n > bestBytes {
				best, bestBytes = i, n
			}
		}
		if best < 0 {
			return false, nil
		}
		part := x.parts[best]
		if !part.mu.TryLock() {
			// Busy: try the others, largest first.
			if ok, err := x.drainAnyIdle(); ok || err != nil {
				return ok, err
			}
			return false, nil
		}
		err := x.drainLocked(best)
		part.mu.Unlock()
		return true, err
	}
}

// drainAnyIdle drains any partition with rows whose lock is free.
func (x *exchange) drainAnyIdle() (bool, error) {
	for i, part := range x.parts {
		part.qmu.Lock()
		n := part.qbytes
		part.qmu.Unlock()
		if n == 0 || !part.mu.TryLock() {
			continue
		}
		err := x.drainLocked(i)
		part.mu.Unlock()
		return true, err
	}
	return false, nil
}

// drainLocked processes partition p's buffered rows; p's mu is held.
func (x *exchange) drainLocked(p int) error {
	part := x.parts[p]
	for {
		part.qmu.Lock()
		queue, size := part.queue, part.qbytes
		part.queue, part.qbytes = nil, 0
		part.qmu.Unlock()
		if len(queue) == 0 {
			return part.err
		}
		err := part.err
		if err == nil {
			err = x.process(p, queue)
			part.err = err
		}
		x.bytes.Add(-size)
		x.mu.Lock()
		close(x.changed)
		x.changed = make(chan struct{})
		x.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

func (x *exchange) process(p int, queue []*batch.Batch) error {
	part := x.parts[p]
	if err := x.ensureOpen(p); err != nil {
		return err
	}
	start := time.Now()
	defer func() {
		part.busy += time.Since(start)
		if x.idle != nil {
			x.idle(p)
		}
	}()
	for _, b := range queue {
		part.rows += int64(b.N)
		if err := part.stage2.Process(b); err != nil {
			return err
		}
	}
	return nil
}

// ensureOpen opens p's Stage2; p's mu is held.
func (x *exchange) ensureOpen(p int) error {
	part := x.parts[p]
	if part.stage2 != nil {
		return nil
	}
	s, err := x.open(p)
	if err != nil {
		return err
	}
	part.stage2 = s
	return nil
}

// finish drains partition p, opens its Stage2 if no row came (an empty
// partition still commits a state version) and runs its Finish.
func (x *exchange) finish(p int, emit func(*batch.Batch) error) error {
	part := x.parts[p]
	part.mu.Lock()
	defer part.mu.Unlock()
	if err := x.drainLocked(p); err != nil {
		return err
	}
	if err := x.ensureOpen(p); err != nil {
		return err
	}
	start := time.Now()
	defer func() {
		part.busy += time.Since(start)
		if x.idle != nil {
			x.idle(p)
		}
	}()
	return part.stage2.Finish(emit)
}
