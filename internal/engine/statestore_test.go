package engine

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/state"
)

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
