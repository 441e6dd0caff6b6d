package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// recordingStage2 records the values it processes.
type recordingStage2 struct {
	mu       sync.Mutex
	values   []int64
	buffered *atomic.Int64 // the exchange's buffered bytes, sampled
	x        *exchange
	maxSeen  *atomic.Int64
	fail     bool
	finished bool
}

func (r *recordingStage2) Process(b *batch.Batch) error {
	if r.fail {
		return errors.New("stage 2 failed")
	}
	if v := r.x.bytes.Load(); v > r.maxSeen.Load() {
		r.maxSeen.Store(v)
	}
	r.mu.Lock()
	r.values = append(r.values, b.Columns[0].Ints...)
	r.mu.Unlock()
	time.Sleep(100 * time.Microsecond) // a consumer slower than its producers
	return nil
}

func (r *recordingStage2) Finish(func(*batch.Batch) error) error { r.finished = true; return nil }
func (r *recordingStage2) Metrics() []OperatorMetrics            { return nil }

func intBatch(vals ...int64) *batch.Batch {
	c := batch.NewColumn(batch.Long, len(vals))
	for _, v := range vals {
		c.AppendInt(v)
	}
	return batch.New(batch.Schema{Fields: []batch.Field{{Name: "v", Type: batch.Long}}}, []*batch.Column{c}, len(vals))
}

// A full exchange makes producers do the consumers' work: the buffer stays
// within its bound (plus one batch), nothing is dropped, and each
// producer's rows reach a partition in the order it sent them.
func TestExchangeBoundedNeverDrops(t *testing.T) {
	const parts, producers, perProducer = 5, 4, 400
	one := intBatch(0).ByteSize() + 64
	bound := 10 * one
	var maxSeen atomic.Int64
	stages := make([]*recordingStage2, parts)
	var x *exchange
	x = newExchange(parts, bound, func(p int) (Stage2, error) {
		stages[p] = &recordingStage2{x: x, maxSeen: &maxSeen}
		return stages[p], nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for w := 0; w < producers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				v := int64(w*1_000_000 + i)
				if err := x.send(context.Background(), i%parts, intBatch(v)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if peak := x.peak.Load(); peak > bound+one {
		t.Errorf("buffered %d bytes at the peak, bound %d", peak, bound)
	}
	total := 0
	for p := 0; p < parts; p++ {
		if err := x.finish(p, func(*batch.Batch) error { return nil }); err != nil {
			t.Fatal(err)
		}
		s := stages[p]
		if !s.finished {
			t.Errorf("partition %d not finished", p)
		}
		total += len(s.values)
		last := map[int64]int64{}
		for _, v := range s.values {
			w, i := v/1_000_000, v%1_000_000
			if prev, ok := last[w]; ok && i <= prev {
				t.Fatalf("partition %d: producer %d's row %d after %d", p, w, i, prev)
			}
			last[w] = i
		}
	}
	if total != producers*perProducer {
		t.Fatalf("%d rows reached stage 2, want %d", total, producers*perProducer)
	}
	if x.bytes.Load() != 0 {
		t.Fatalf("%d bytes still buffered", x.bytes.Load())
	}
}

// A stage-2 failure reaches the producer that drains, and a cancelled
// producer does not wait forever.
func TestExchangeErrors(t *testing.T) {
	var maxSeen atomic.Int64
	var x *exchange
	x = newExchange(1, 1, func(p int) (Stage2, error) {
		return &recordingStage2{x: x, maxSeen: &maxSeen, fail: true}, nil
	})
	if err := x.send(context.Background(), 0, intBatch(1)); err != nil {
		t.Fatal(err) // an empty buffer takes it
	}
	err := x.send(context.Background(), 0, intBatch(2)) // full: this producer drains
	if err == nil || err.Error() != "stage 2 failed" {
		t.Fatalf("send: %v", err)
	}
	if err := x.finish(0, nil); err == nil {
		t.Fatal("finish after a failure succeeded")
	}

	x2 := newExchange(1, 1, func(p int) (Stage2, error) { return nil, fmt.Errorf("cannot open state") })
	x2.send(context.Background(), 0, intBatch(1))
	if err := x2.send(context.Background(), 0, intBatch(1)); err == nil || err.Error() != "cannot open state" {
		t.Fatalf("send with a failing open: %v", err)
	}

	// Every partition busy: the producer waits, and gives up when its
	// context ends.
	x3 := newExchange(1, 1, func(p int) (Stage2, error) { return &recordingStage2{maxSeen: &maxSeen}, nil })
	x3.send(context.Background(), 0, intBatch(1))
	x3.parts[0].mu.Lock() // someone else is draining it
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := x3.send(ctx, 0, intBatch(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send while every partition is busy: %v", err)
	}
	x3.parts[0].mu.Unlock()
}
