package engine

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/storage"
)

var testStateSchemas = state.Schemas{
	Key:   batch.Schema{Fields: []batch.Field{{Name: "k", Type: batch.String, Nullable: true}}},
	Value: batch.Schema{Fields: []batch.Field{{Name: "count", Type: batch.Long}}},
}

// blockingProvider is a state.Provider whose Maintenance waits for release.
type blockingProvider struct {
	state.Provider // Open and LatestVersion are not called
	release        chan struct{}
	err            error

	mu                 sync.Mutex
	running, maintains int
	closedWhileRunning bool
	closed             bool
}

func (p *blockingProvider) Maintenance() error {
	p.mu.Lock()
	p.running++
	p.mu.Unlock()
	<-p.release
	p.mu.Lock()
	p.running--
	p.maintains++
	p.mu.Unlock()
	return p.err
}

func (p *blockingProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.closedWhileRunning = p.running > 0
	return nil
}

// TestStateMaintenanceInBackground: the state maintenance a batch's commit
// starts runs beside what follows (the commit returns while it is still
// running); the next batch's await returns its error; closing the stores
// waits for it before closing the providers.
func TestStateMaintenanceInBackground(t *testing.T) {
	release := make(chan struct{})
	fail := errors.New("disk full")
	ps := []*blockingProvider{{release: release}, {release: release, err: fail}}
	s := newStateStores(nil, []StateOperator{{Name: state.OperatorNameAggregate}}, state.DefaultConfig(), len(ps))
	for i, p := range ps {
		s.providers[[2]int{0, i}] = p
	}

	started := make(chan struct{})
	go func() {
		s.maintainInBackground(len(ps), 2)
		close(started)
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("maintainInBackground waited for the maintenance")
	}
	awaited := make(chan error, 1)
	go func() { awaited <- s.awaitMaintenance() }()
	notYet(t, awaited, "awaitMaintenance")
	release <- struct{}{}
	release <- struct{}{}
	if err := <-awaited; !errors.Is(err, fail) {
		t.Fatalf("awaitMaintenance = %v, want the failed partition's error", err)
	}
	if err := s.awaitMaintenance(); err != nil {
		t.Fatalf("a second await = %v, want nil (reported once)", err)
	}

	// Close waits for a maintenance that is still running.
	ps[1].err = nil
	s.maintainInBackground(len(ps), 2)
	closed := make(chan error, 1)
	go func() { closed <- s.close() }()
	notYet(t, closed, "close")
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		if !p.closed || p.closedWhileRunning || p.maintains != 2 {
			t.Fatalf("provider %d: closed %v, closed while maintaining %v, %d maintenances (want 2)", i, p.closed, p.closedWhileRunning, p.maintains)
		}
	}
}

// notYet fails the test if call (named what) returns within 50 ms: it
// must wait for the maintenance still running.
func notYet(t *testing.T, call <-chan error, what string) {
	t.Helper()
	select {
	case err := <-call:
		t.Fatalf("%s returned %v while the maintenance ran", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

// preparingProvider counts PrepareDelta calls; the first blocks until
// release.
type preparingProvider struct {
	state.Provider
	release  chan struct{}
	prepared *atomic.Int64
	version  int64
	retired  atomic.Int64 // the version Retire was called with (0: never)
}

func (p *preparingProvider) Retire(v int64) { p.retired.Store(v) }

func (p *preparingProvider) PrepareDelta(v int64) error {
	if p.prepared.Add(1) == 1 {
		<-p.release
	}
	p.version = v
	return nil
}

// TestPrepareDeltas: prepareDeltas has every (operator, partition)
// provider create the delta its store at the batch's version will write,
// in the background; stop ends it after the call under way and waits for
// it. Every provider retires the versions below the batch's first, before
// any file is prepared.
func TestPrepareDeltas(t *testing.T) {
	// Real memory providers: the files are created, one per store.
	dir := t.TempDir()
	files, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ops := []StateOperator{{Name: state.OperatorNameAggregate, Schemas: testStateSchemas}, {Name: state.OperatorNameDedup, Schemas: testStateSchemas}}
	s := newStateStores(files, ops, state.DefaultConfig(), 3)
	defer s.close()
	d := s.prepareDeltas(4, nil)
	<-d.done
	d.stop()
	got, _ := filepath.Glob(filepath.Join(dir, "*", "*", "5.delta"))
	if len(got) != 6 {
		t.Fatalf("prepared files %v, want 5.delta for 2 operators × 3 partitions", got)
	}

	// stop waits for the call under way and ends the rest.
	var n atomic.Int64
	release := make(chan struct{})
	f := newStateStores(nil, []StateOperator{{Name: state.OperatorNameAggregate}}, state.DefaultConfig(), 3)
	ps := make([]*preparingProvider, 3)
	for i := range ps {
		ps[i] = &preparingProvider{release: release, prepared: &n}
		f.providers[[2]int{0, i}] = ps[i]
	}
	d = f.prepareDeltas(7, nil)
	for n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { d.stop(); stopped <- nil }()
	notYet(t, stopped, "stop")
	close(release)
	<-stopped
	if n.Load() != 1 || ps[0].version != 7 {
		t.Fatalf("%d PrepareDelta calls (first at version %d), want 1 at 7: stop must end the rest", n.Load(), ps[0].version)
	}
	for i, p := range ps {
		if v := p.retired.Load(); v != 7 {
			t.Errorf("provider %d retired below version %d, want 7 (every provider, before the files)", i, v)
		}
	}
	d.stop() // again: returns at once
}
