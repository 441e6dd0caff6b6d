package progress

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder logs every event it receives as a short string.
type recorder struct {
	mu  sync.Mutex
	got []string
	// block, if set, is waited on by OnQueryProgress for batch blockOn,
	// after entered is closed.
	block   chan struct{}
	entered chan struct{}
	blockOn int64
	panicOn int64
	done    chan struct{} // closed on terminated
}

func newRecorder() *recorder { return &recorder{blockOn: -1, panicOn: -1, done: make(chan struct{})} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) OnQueryStarted(e StartedEvent) { r.add("started:" + e.RunID) }
func (r *recorder) OnQueryProgress(e ProgressEvent) {
	id := e.Progress.BatchID
	if id == r.panicOn {
		panic("listener bug")
	}
	if id == r.blockOn {
		close(r.entered)
		<-r.block
	}
	r.add(fmt.Sprintf("progress:%d", id))
}
func (r *recorder) OnQueryIdle(e IdleEvent) { r.add("idle:" + e.Timestamp) }
func (r *recorder) OnQueryTerminated(e TerminatedEvent) {
	r.add("terminated")
	close(r.done)
}

func progressEv(id int64) ProgressEvent { return ProgressEvent{Progress: &Progress{BatchID: id}} }

func closeBus(t *testing.T, b *Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestBusDeliversInOrder(t *testing.T) {
	b := NewBus(BusOptions{})
	r := newRecorder()
	b.Subscribe(r)
	b.PostStarted(StartedEvent{RunID: "r1"})
	if got := r.events(); !slices.Equal(got, []string{"started:r1"}) {
		t.Fatalf("after PostStarted returned: %v, want started delivered synchronously", got)
	}
	want := []string{"started:r1"}
	for i := range int64(50) {
		b.PostProgress(progressEv(i))
		want = append(want, fmt.Sprintf("progress:%d", i))
		if i == 20 {
			b.PostIdle(IdleEvent{Timestamp: "t20"})
			want = append(want, "idle:t20")
		}
	}
	b.PostTerminated(TerminatedEvent{})
	want = append(want, "terminated")
	closeBus(t, b)
	if got := r.events(); !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	if b.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", b.Dropped())
	}
	b.PostProgress(progressEv(99)) // after Close: ignored
	if got := r.events(); len(got) != len(want) {
		t.Errorf("event delivered after Close: %v", got[len(want):])
	}
}

func TestBusSlowListenerDropsOldest(t *testing.T) {
	b := NewBus(BusOptions{QueueSize: 4})
	slow := newRecorder()
	slow.blockOn, slow.block, slow.entered = 0, make(chan struct{}), make(chan struct{})
	fast := newRecorder()
	slowSub := b.Subscribe(slow)
	fastSub := b.Subscribe(fast)

	b.PostProgress(progressEv(0))
	<-slow.entered // the slow listener now sits inside batch 0

	posted := make(chan struct{})
	go func() {
		for i := int64(1); i <= 10; i++ {
			b.PostProgress(progressEv(i))
		}
		b.PostTerminated(TerminatedEvent{})
		close(posted)
	}()
	select {
	case <-posted:
	case <-time.After(5 * time.Second):
		t.Fatal("posting blocked on a slow listener")
	}
	// The fast listener is not held back by the slow one.
	select {
	case <-fast.done:
	case <-time.After(5 * time.Second):
		t.Fatal("fast listener did not finish while the slow one was blocked")
	}
	close(slow.block)
	closeBus(t, b)

	// Queue of 4 while batch 0 is in the listener: batches 1..7 are pushed
	// out by 8, 9, 10 and the terminated event, which is never dropped.
	want := []string{"progress:0", "progress:8", "progress:9", "progress:10", "terminated"}
	if got := slow.events(); !slices.Equal(got, want) {
		t.Errorf("slow listener got %v, want %v", got, want)
	}
	if slowSub.Dropped() != 7 {
		t.Errorf("slow Dropped = %d, want 7", slowSub.Dropped())
	}
	fastGot := fast.events()
	if fastGot[len(fastGot)-1] != "terminated" || uint64(len(fastGot)-1)+fastSub.Dropped() != 11 {
		t.Errorf("fast listener got %v with %d dropped; want 11 progress events accounted for and terminated last", fastGot, fastSub.Dropped())
	}
	if b.Dropped() != slowSub.Dropped()+fastSub.Dropped() {
		t.Errorf("bus Dropped %d != %d + %d", b.Dropped(), slowSub.Dropped(), fastSub.Dropped())
	}
}

func TestBusRecoversPanics(t *testing.T) {
	var mu sync.Mutex
	var reported []string
	b := NewBus(BusOptions{OnListenerPanic: func(ev string, v any) {
		mu.Lock()
		reported = append(reported, fmt.Sprintf("%s:%v", ev, v))
		mu.Unlock()
	}})
	r := newRecorder()
	r.panicOn = 1
	b.Subscribe(r)
	for i := range int64(3) {
		b.PostProgress(progressEv(i))
	}
	closeBus(t, b)
	if got := r.events(); !slices.Equal(got, []string{"progress:0", "progress:2"}) {
		t.Errorf("events %v, want progress 0 and 2", got)
	}
	if b.Panics() != 1 || len(reported) != 1 || reported[0] != "progress:listener bug" {
		t.Errorf("Panics=%d reported=%v", b.Panics(), reported)
	}
}

func TestBusCloseTimesOut(t *testing.T) {
	b := NewBus(BusOptions{})
	r := newRecorder()
	r.blockOn, r.block, r.entered = 0, make(chan struct{}), make(chan struct{})
	b.Subscribe(r)
	b.PostProgress(progressEv(0))
	b.PostProgress(progressEv(1))
	<-r.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
	close(r.block)
	closeBus(t, b) // returns once the delivery goroutine has exited
	// Batch 1 was discarded when Close gave up.
	if got := r.events(); !slices.Equal(got, []string{"progress:0"}) {
		t.Errorf("events %v, want only progress:0", got)
	}
}

func TestBusUnsubscribe(t *testing.T) {
	b := NewBus(BusOptions{})
	r := newRecorder()
	s := b.Subscribe(r)
	b.PostProgress(progressEv(1))
	s.Unsubscribe()
	b.PostProgress(progressEv(2))
	b.PostStarted(StartedEvent{RunID: "x"})
	closeBus(t, b)
	if got := r.events(); !slices.Equal(got, []string{"progress:1"}) {
		t.Errorf("events %v, want only progress:1", got)
	}
	late := newRecorder()
	b.Subscribe(late)
	b.PostStarted(StartedEvent{RunID: "y"})
	if got := late.events(); len(got) != 0 {
		t.Errorf("closed bus delivered %v", got)
	}
}

func TestBusConcurrentPosters(t *testing.T) {
	b := NewBus(BusOptions{QueueSize: 1000})
	r := newRecorder()
	b.Subscribe(r)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				b.PostProgress(progressEv(int64(g*1000 + i)))
			}
		})
	}
	wg.Wait()
	closeBus(t, b)
	got := r.events()
	if len(got)+int(b.Dropped()) != 400 {
		t.Fatalf("got %d events and %d drops, want 400 in total", len(got), b.Dropped())
	}
	// Per poster, order is preserved.
	last := map[int]int{}
	for _, e := range got {
		var id int
		fmt.Sscanf(e, "progress:%d", &id)
		g, i := id/1000, id%1000
		if prev, ok := last[g]; ok && i <= prev {
			t.Fatalf("poster %d: %d delivered after %d", g, i, prev)
		}
		last[g] = i
	}
}

func TestListenerFuncs(t *testing.T) {
	var got []string
	l := ListenerFuncs{OnProgress: func(e ProgressEvent) { got = append(got, fmt.Sprint(e.Progress.BatchID)) }}
	l.OnQueryStarted(StartedEvent{})
	l.OnQueryProgress(progressEv(3))
	l.OnQueryIdle(IdleEvent{})
	l.OnQueryTerminated(TerminatedEvent{})
	if !slices.Equal(got, []string{"3"}) {
		t.Errorf("got %v", got)
	}
}
