package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// Latest-offset sampling defaults.
const (
	// DefaultLatestSampleEvery is how often the sampler asks the source
	// for its latest offsets between batches.
	DefaultLatestSampleEvery = time.Second
	// latestSampleTimeout bounds one periodic sample; a source that does
	// not answer within it is skipped until the next tick.
	latestSampleTimeout = 2 * time.Second
	// idleSampleEvery is how often the sampler's timer wakes while the
	// query waits for data (it takes no sample then).
	idleSampleEvery = 5 * time.Second
	// batchEndSampleTimeout bounds the sample taken at the end of a batch,
	// which the batch's progress report waits for.
	batchEndSampleTimeout = time.Second
)

// sampler asks a partitioned source for its latest offsets on its own
// clock — every Config.LatestSampleEvery, and at the end of every batch —
// and hands them to the observers (OffsetsObserved), so that lag, arrival
// rate and drain ETA do not depend on when batches are planned: a batch
// that takes everything available still shows the records that arrived
// while it ran, and a long batch does not leave the arrival rate stale.
//
// It costs one request per tick (Kafka: one ListOffsets) and holds at most
// one request in flight: a tick that comes while a request is running is
// dropped, and so is a tick while the event-driven default trigger waits
// for data (the query is caught up; the wait ends when data arrives), and
// then the next tick comes after idleSampleEvery. Its goroutine is owned by the query: started after recovery,
// stopped (and waited for) when the query's loop ends.
type sampler struct {
	q     *Query
	src   source.LatestReporter
	part  source.Partitioned
	every time.Duration

	mu       sync.Mutex // one request at a time
	samples  atomic.Int64
	failures atomic.Int64
	lastWarn time.Time // guarded by mu

	stop context.CancelFunc
	done chan struct{}
}

// newSampler returns the query's sampler, or nil when the source cannot
// report latest offsets on their own or the trigger drains a snapshot
// (once, availableNow: lag is measured against the snapshot there).
func newSampler(q *Query) *sampler {
	src, ok := q.cfg.Source.(source.LatestReporter)
	part, ok2 := q.cfg.Source.(source.Partitioned)
	if !ok || !ok2 || q.cfg.Trigger.Kind == trigger.Once || q.cfg.Trigger.Kind == trigger.AvailableNow {
		return nil
	}
	every := q.cfg.LatestSampleEvery
	if every == 0 {
		every = DefaultLatestSampleEvery
	}
	return &sampler{q: q, src: src, part: part, every: every}
}

// start runs the periodic sampling until ctx ends or stopAndWait is
// called; a negative interval samples only at batch ends.
func (s *sampler) start(ctx context.Context) {
	ctx, s.stop = context.WithCancel(ctx)
	s.done = make(chan struct{})
	if s.every < 0 {
		close(s.done)
		return
	}
	go func() {
		defer close(s.done)
		t := time.NewTimer(s.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s.q.waitingForData.Load() {
					// The query is caught up and waits on the source,
					// which wakes it (and it plans, observing the
					// latest offsets, then samples at the batch's end)
					// as soon as data arrives: a sample would only
					// repeat the position, so look again later.
					t.Reset(max(s.every, idleSampleEvery))
					continue
				}
				if s.mu.TryLock() { // a request is in flight: skip this tick
					s.sampleLocked(ctx, latestSampleTimeout)
					s.mu.Unlock()
				}
				t.Reset(s.every)
			}
		}
	}()
}

// stopAndWait ends the periodic sampling and waits for its goroutine.
func (s *sampler) stopAndWait() {
	if s == nil || s.stop == nil {
		return
	}
	s.stop()
	<-s.done
}

// sampleNow takes one sample at once (the end of a batch), waiting for a
// request in flight first, and returns the offsets (nil when the source
// did not answer in time).
func (s *sampler) sampleNow(ctx context.Context) partition.Offsets {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sampleLocked(ctx, batchEndSampleTimeout)
}

// batchEndSample is a batch's end sample taken in the background, while
// the batch's commit log is written (sampleAsync).
type batchEndSample struct {
	at     time.Time
	done   chan struct{}
	latest partition.Offsets // nil when the source did not answer in time
}

// sampleAsync starts the sample of a batch's end in a goroutine, so that
// its request overlaps the commit log write instead of following it; the
// batch's report waits for it (wait). nil for a nil sampler.
func (s *sampler) sampleAsync(ctx context.Context) *batchEndSample {
	if s == nil {
		return nil
	}
	b := &batchEndSample{at: s.q.cfg.Clock.Now(), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.latest = s.sampleNow(ctx)
	}()
	return b
}

// wait waits for the sample (at most batchEndSampleTimeout); a nil b is
// no sample.
func (b *batchEndSample) wait() {
	if b != nil {
		<-b.done
	}
}

func (s *sampler) sampleLocked(ctx context.Context, timeout time.Duration) partition.Offsets {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	at := s.q.cfg.Clock.Now()
	latest, err := s.src.LatestOffsets(rctx)
	if err != nil {
		s.failures.Add(1)
		if ctx.Err() == nil && time.Since(s.lastWarn) >= time.Minute {
			s.lastWarn = time.Now()
			s.q.log.Debug("latest-offset sample failed; lag uses the last good sample", "err", err, "failures", s.failures.Load())
		}
		return nil
	}
	s.samples.Add(1)
	off := s.part.PartitionOffset(latest)
	for _, o := range s.q.cfg.Observers {
		o.OffsetsObserved(s.q, off, at)
	}
	return latest
}

// LatestSamples reports how many latest-offset samples the sampler took
// (periodic and at batch ends) and how many failed; zeros when the query
// has no sampler.
func (q *Query) LatestSamples() (ok, failed int64) {
	if q.sampler == nil {
		return 0, 0
	}
	return q.sampler.samples.Load(), q.sampler.failures.Load()
}
