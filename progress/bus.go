package progress

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// DefaultQueueSize is the default number of events a Bus queues per
// listener.
const DefaultQueueSize = 128

// BusOptions configures a Bus.
type BusOptions struct {
	// QueueSize bounds each listener's queue; <= 0 means DefaultQueueSize.
	QueueSize int
	// OnListenerPanic, if set, is told about a listener method that
	// panicked (event is "started", "progress", "idle" or "terminated").
	// The panic is recovered either way and the listener keeps receiving.
	OnListenerPanic func(event string, recovered any)
}

// Bus delivers a query's events to its listeners.
//
//   - PostStarted calls every listener synchronously, in the caller's
//     goroutine, before returning (as Spark does).
//   - Progress, idle and terminated events go through a bounded queue per
//     listener, drained by one goroutine per listener, so each listener sees
//     them in the order posted and never concurrently.
//   - Posting never waits for a listener. When a listener's queue is full,
//     the oldest queued progress or idle event is dropped to make room and
//     counted (Subscription.Dropped, Bus.Dropped); terminated events are
//     never dropped. Spark's listener bus drops the newest event instead; a
//     monitor is better served by the freshest report.
//   - A panicking listener is recovered and keeps its subscription.
//
// A Bus serves one query run: Close it when the query has terminated.
// Listener goroutines are owned by the Bus and end in Close.
type Bus struct {
	opts BusOptions

	mu     sync.Mutex
	subs   []*Subscription // receiving events
	all    []*Subscription // every subscription with a goroutine
	closed bool

	wg      sync.WaitGroup
	dropped atomic.Uint64
	panics  atomic.Uint64
}

// NewBus returns an empty Bus.
func NewBus(opts BusOptions) *Bus {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	return &Bus{opts: opts}
}

type eventKind uint8

const (
	kindStarted eventKind = iota
	kindProgress
	kindIdle
	kindTerminated
)

func (k eventKind) String() string {
	return [...]string{"started", "progress", "idle", "terminated"}[k]
}

type event struct {
	kind       eventKind
	started    StartedEvent
	progress   ProgressEvent
	idle       IdleEvent
	terminated TerminatedEvent
}

// Subscription is one listener's attachment to a Bus.
type Subscription struct {
	bus *Bus
	l   Listener

	call sync.Mutex // held while a listener method runs

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []event
	closing bool // no more events; deliver what is queued, then exit
	abandon bool // exit without delivering the rest
	dropped atomic.Uint64
}

// Subscribe adds l and starts its delivery goroutine. Subscribing to a
// closed Bus returns a Subscription that receives nothing.
func (b *Bus) Subscribe(l Listener) *Subscription {
	s := &Subscription{bus: b, l: l}
	s.cond = sync.NewCond(&s.mu)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.closing = true
		return s
	}
	b.subs = append(b.subs, s)
	b.all = append(b.all, s)
	b.wg.Add(1)
	go s.run()
	return s
}

// Unsubscribe stops new events for the listener; events already queued are
// still delivered. It does not wait.
func (s *Subscription) Unsubscribe() {
	b := s.bus
	b.mu.Lock()
	for i, x := range b.subs {
		if x == s {
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Dropped returns how many events were dropped for this listener because
// its queue was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Dropped returns the events dropped over all listeners.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// Panics returns how many listener calls panicked.
func (b *Bus) Panics() uint64 { return b.panics.Load() }

// PostStarted calls OnQueryStarted on every listener before returning.
func (b *Bus) PostStarted(e StartedEvent) {
	for _, s := range b.snapshot() {
		s.deliver(event{kind: kindStarted, started: e})
	}
}

// PostProgress queues a progress event for every listener.
func (b *Bus) PostProgress(e ProgressEvent) { b.post(event{kind: kindProgress, progress: e}) }

// PostIdle queues an idle event for every listener.
func (b *Bus) PostIdle(e IdleEvent) { b.post(event{kind: kindIdle, idle: e}) }

// PostTerminated queues a terminated event for every listener.
func (b *Bus) PostTerminated(e TerminatedEvent) {
	b.post(event{kind: kindTerminated, terminated: e})
}

func (b *Bus) snapshot() []*Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	return append([]*Subscription(nil), b.subs...)
}

func (b *Bus) post(ev event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for _, s := range b.subs {
		s.push(ev, b.opts.QueueSize)
	}
}

// push appends ev, first dropping the oldest droppable event if the queue
// is full.
func (s *Subscription) push(ev event, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	if len(s.queue) >= limit {
		for i, q := range s.queue {
			if q.kind == kindProgress || q.kind == kindIdle {
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				s.dropped.Add(1)
				s.bus.dropped.Add(1)
				break
			}
		}
	}
	s.queue = append(s.queue, ev)
	s.cond.Signal()
}

func (s *Subscription) run() {
	defer s.bus.wg.Done()
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closing {
			s.cond.Wait()
		}
		if s.abandon || len(s.queue) == 0 {
			s.queue = nil
			s.mu.Unlock()
			return
		}
		ev := s.queue[0]
		s.queue[0] = event{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		s.deliver(ev)
	}
}

func (s *Subscription) deliver(ev event) {
	s.call.Lock()
	defer s.call.Unlock()
	defer func() {
		if r := recover(); r != nil {
			s.bus.panics.Add(1)
			if f := s.bus.opts.OnListenerPanic; f != nil {
				f(ev.kind.String(), r)
			}
		}
	}()
	switch ev.kind {
	case kindStarted:
		s.l.OnQueryStarted(ev.started)
	case kindProgress:
		s.l.OnQueryProgress(ev.progress)
	case kindIdle:
		s.l.OnQueryIdle(ev.idle)
	case kindTerminated:
		s.l.OnQueryTerminated(ev.terminated)
	}
}

// Close stops accepting events and waits until every listener has been
// given the events queued so far. If ctx ends first, undelivered events are
// discarded, Close returns the context's error, and each delivery goroutine
// exits as soon as its current listener call returns (a listener that never
// returns keeps its goroutine). Close is idempotent.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.subs = nil
	subs := b.all
	b.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.closing = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range subs {
			s.mu.Lock()
			s.abandon = true
			s.queue = nil
			s.cond.Broadcast()
			s.mu.Unlock()
		}
		return fmt.Errorf("progress: close listener bus: %w", ctx.Err())
	}
}
