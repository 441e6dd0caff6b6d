package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/storage"
)

// stateStores owns a stateful query's state store providers: one per
// (operator, shuffle partition), opened when a batch first needs it and
// kept for the rest of the run (as Spark keeps a provider per executor), in
// Spark's layout under <checkpoint>/state.
type stateStores struct {
	files      storage.Store // the checkpoint's state/ directory
	ops        []StateOperator
	conf       state.Config
	partitions int

	mu          sync.Mutex
	providers   map[[2]int]state.Provider
	metaWritten bool
	closed      bool
	// maint is closed when the background maintenance started by
	// maintainInBackground has finished (nil: none started since the
	// last awaitMaintenance); maintErr is its first error.
	maint    chan struct{}
	maintErr error
}

func newStateStores(files storage.Store, ops []StateOperator, conf state.Config, partitions int) *stateStores {
	return &stateStores{files: files, ops: ops, conf: conf,
		partitions: partitions, providers: map[[2]int]state.Provider{}}
}

// writeMetadata writes state/<op>/_metadata/metadata for every operator,
// once per run (Spark rewrites it on every start).
func (s *stateStores) writeMetadata() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metaWritten {
		return nil
	}
	for i, op := range s.ops {
		m := state.OperatorMetadata{
			OperatorInfo:   state.OperatorInfo{OperatorID: int64(i), OperatorName: op.Name},
			StateStoreInfo: []state.StoreInfo{{StoreName: state.DefaultStoreName, NumColsPrefixKey: op.PrefixKeyColumns, NumPartitions: s.partitions}},
		}
		if err := state.WriteOperatorMetadata(s.files, m); err != nil {
			return fmt.Errorf("state operator %d metadata: %w", i, err)
		}
	}
	s.metaWritten = true
	return nil
}

// open returns the stores of shuffle partition part, one per operator,
// opened at version (the batch id).
func (s *stateStores) open(part int, version int64) ([]state.Store, error) {
	stores := make([]state.Store, 0, len(s.ops))
	for op := range s.ops {
		p, err := s.provider(op, part)
		if err == nil {
			var st state.Store
			if st, err = p.Open(version); err == nil {
				stores = append(stores, st)
				continue
			}
		}
		for _, st := range stores {
			st.Abort()
		}
		return nil, fmt.Errorf("state operator %d (%s) partition %d: %w", op, s.ops[op].Name, part, err)
	}
	return stores, nil
}

func (s *stateStores) provider(op, part int) (state.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("state stores closed")
	}
	if p, ok := s.providers[[2]int{op, part}]; ok {
		return p, nil
	}
	p, err := state.OpenProvider(state.ID{Files: s.files, Operator: op, Partition: part}, s.ops[op].Schemas, s.conf)
	if err != nil {
		return nil, err
	}
	s.providers[[2]int{op, part}] = p
	return p, nil
}

// deltaPrep is the background creation of a batch's delta files
// (prepareDeltas); stop ends it and waits for it.
type deltaPrep struct {
	stopped atomic.Bool
	done    chan struct{}
}

// stop ends the creation after the file being created and waits for its
// goroutine. It may be called more than once.
func (d *deltaPrep) stop() {
	if d == nil {
		return
	}
	d.stopped.Store(true)
	<-d.done
}

// prepareDeltas creates, in one goroutine and partition by partition, the
// delta files the stores opened at version will write (state.DeltaPreparer),
// until stop: the engine runs it beside a batch's stage 1 and stops it when
// stage 2 starts, so the creations use a core stage 1 leaves idle instead
// of lengthening the commit, and none run among stage 2's work (creates
// spread among stage-2 tasks cost more, notes8/statecommit.md). A store
// whose file was not prepared creates it at its commit as before. Errors
// are left to the store's own create, which reports them. Before the
// files, it retires the versions below version from the providers' memory
// (state.Retirer), which stateReservation counts on. It first waits for
// after (if set): the commit of the version the batch opens, which may run
// beside the batch's stage 1; it does nothing when after fails.
func (s *stateStores) prepareDeltas(version int64, after func() error) *deltaPrep {
	d := &deltaPrep{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		if after != nil && after() != nil {
			return
		}
		// First the versions no batch of the run opens again leave memory
		// (quick: before the batch's records arrive), then the files.
		s.retire(version)
		for part := 0; part < s.partitions; part++ {
			for op := range s.ops {
				if d.stopped.Load() {
					return
				}
				p, err := s.provider(op, part)
				if err != nil {
					return
				}
				if dp, ok := p.(state.DeltaPreparer); ok {
					_ = dp.PrepareDelta(version)
				}
			}
		}
	}()
	return d
}

// retire tells every provider that a batch opening version starts
// (state.Retirer): the versions before it that no batch opens again leave
// memory.
func (s *stateStores) retire(version int64) {
	s.mu.Lock()
	retire := make([]state.Retirer, 0, len(s.providers))
	for _, p := range s.providers {
		if r, ok := p.(state.Retirer); ok {
			retire = append(retire, r)
		}
	}
	s.mu.Unlock()
	for _, r := range retire {
		r.Retire(version)
	}
}

// maintain runs one partition's maintenance (snapshots, cleanup).
func (s *stateStores) maintain(part int) error {
	for op := range s.ops {
		s.mu.Lock()
		p, ok := s.providers[[2]int{op, part}]
		s.mu.Unlock()
		if ok {
			if err := p.Maintenance(); err != nil {
				return fmt.Errorf("state operator %d partition %d maintenance: %w", op, part, err)
			}
		}
	}
	return nil
}

// maintainInBackground starts the maintenance of shuffle partitions
// 0..parts-1 (snapshots, retention) on workers goroutines and returns at
// once: it runs while the next batch computes, off the batch's critical
// path (Spark runs it on a background thread too). A provider allows
// Maintenance beside its one open store. The previous batch's maintenance
// must have been awaited.
func (s *stateStores) maintainInBackground(parts, workers int) {
	done := make(chan struct{})
	s.mu.Lock()
	s.maint = done
	s.mu.Unlock()
	items := make([]int, parts)
	for i := range items {
		items[i] = i
	}
	go func() {
		defer close(done)
		err := runPool(context.Background(), workers, items, func(_ context.Context, p int) error { return s.maintain(p) })
		s.mu.Lock()
		s.maintErr = err
		s.mu.Unlock()
	}()
}

// awaitMaintenance waits for the background maintenance, if any, and
// returns its error.
func (s *stateStores) awaitMaintenance() error {
	s.mu.Lock()
	done := s.maint
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.maintErr
	s.maint, s.maintErr = nil, nil
	return err
}

func (s *stateStores) close() error {
	// The maintenance goroutine uses the providers: let it finish first.
	// Its error is the batch's that would have awaited it, which will not
	// run; a failed snapshot or deletion is redone by the next run's.
	_ = s.awaitMaintenance()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var first error
	for _, p := range s.providers {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.providers = nil
	return first
}
