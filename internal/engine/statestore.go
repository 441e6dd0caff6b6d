package engine

import (
	"errors"
	"fmt"
	"sync"

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

func (s *stateStores) close() error {
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
