package operator

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/state"
)

// SessionAggregate is a streaming aggregation grouped by session_window()
// and at least one other key, as Spark runs one (its session window
// aggregation: partial aggregation per initial session, the exchange by the
// keys without the session, SessionWindowStateStoreRestore/Save):
//
//   - stage 1 gives each row its initial session [t, t+gap) and aggregates
//     the rows of a task per (keys, session start);
//   - stage 2 drops late initial sessions (end ≤ watermark), loads the
//     stored sessions of each key that received rows, merges every session
//     that overlaps or touches another, stores the merged sessions and, in
//     append mode, emits and evicts the sessions whose end the watermark
//     passed; complete mode emits every session every batch.
//
// State is Spark's layout: one row per session, keyed by the grouping keys
// without the session, then the session start (a prefix scan finds a key's
// sessions); the value holds the session end and the aggregate states.
// Update mode is refused at start, as Spark refuses it.
type SessionAggregate struct {
	// Aggregate holds the keys (the session key among them), the calls,
	// the session window (Window), the output mode, Post and FlushGroups.
	// EventTime is Session when the session's time column carries a
	// watermark, else -1.
	Aggregate
	// Session is the index of the session_window() key in Keys.
	Session int
}

// sessionShuffleSchema is the exchange's row of a session aggregation: the
// state key (keys without the session, then the session start), the
// initial session's end and the encoded partial aggregate states.
var sessionShuffleSchema = batch.Schema{Fields: []batch.Field{
	{Name: "key", Type: batch.Binary}, {Name: "end", Type: batch.Long}, {Name: "state", Type: batch.Binary}}}

// sessionStartLen is the encoded length of the session start at the end of
// a state key (state.AppendKeyInt64).
const sessionStartLen = 9

// groupKeyOf is the part of a session state key before the session start:
// the grouping keys without the session, what places a key in its shuffle
// partition and what a prefix scan looks up.
func groupKeyOf(key []byte) []byte { return key[:len(key)-sessionStartLen] }

// sessionStartOf decodes the session start at the end of a state key.
func sessionStartOf(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[len(key)-8:]) ^ (1 << 63))
}

// Operators implements engine.Stateful.
func (a *SessionAggregate) Operators() []engine.StateOperator {
	key := batch.Schema{}
	for i, f := range a.raw.Fields[:len(a.Keys)] {
		if i != a.Session {
			key.Fields = append(key.Fields, f)
		}
	}
	name := a.raw.Fields[a.Session].Name
	key.Fields = append(key.Fields, batch.Field{Name: name + ".start", Type: batch.Timestamp})
	val := batch.Schema{Fields: []batch.Field{{Name: name + ".end", Type: batch.Timestamp}}}
	for _, c := range a.Calls {
		k := c.Agg.ResultType()
		if c.Agg.ResultIsArray() {
			k = batch.Binary
		}
		val.Fields = append(val.Fields, batch.Field{Name: c.Name, Type: k, Nullable: true})
	}
	return []engine.StateOperator{{Name: state.OperatorNameSession, Schemas: state.Schemas{Key: key, Value: val},
		PrefixKeyColumns: len(a.Keys) - 1}}
}

// NoDataBatches implements engine.Stateful: append mode (update mode is
// refused; complete mode never evicts).
func (a *SessionAggregate) NoDataBatches() bool { return a.Mode == ModeAppend }

// appendStateKey appends the state key of row i of the expanded chunk: the
// keys without the session, then the row's initial session start.
func (a *SessionAggregate) appendStateKey(dst []byte, keys []*batch.Column, i int) []byte {
	for j, c := range keys {
		if j != a.Session {
			dst = state.AppendKeyCell(dst, c, i)
		}
	}
	return state.AppendKeyInt64(dst, keys[a.Session].Children[0].Ints[i])
}

// NewShuffleWriter implements engine.Stateful: partial aggregation per
// (keys, initial session).
func (a *SessionAggregate) NewShuffleWriter(env engine.ShuffleEnv) engine.ShuffleWriter {
	w := a.Aggregate.NewShuffleWriter(env).(*partialAgg)
	w.session = a
	return w
}

// NewStage2 implements engine.Stateful.
func (a *SessionAggregate) NewStage2(env engine.Stage2Env) (engine.Stage2, error) {
	return &sessionStage2{a: a, env: env, store: env.Stores[0], index: map[string]int{}}, nil
}

// session is one session of a key in stage 2: from the input (partial,
// new) or from the state store (stored; key is its state key).
type session struct {
	start, end int64
	accs       []aggregate.Accumulator
	stored     bool
}

type sessionStage2 struct {
	a     *SessionAggregate
	env   engine.Stage2Env
	store state.Store

	index map[string]int // group key → position in groups
	gkeys [][]byte
	input [][]session

	dropped int64
}

// Process collects the partition's initial sessions per key.
func (s *sessionStage2) Process(b *batch.Batch) error {
	keys, ends, states := b.Columns[0], b.Columns[1], b.Columns[2]
	for i := 0; i < b.N; i++ {
		k := keys.Bytes[i]
		accs := s.a.newAccs()
		if err := aggregate.LoadStates(states.Bytes[i], accs); err != nil {
			return fmt.Errorf("shuffle partition %d: %w", s.env.Partition, err)
		}
		gk := groupKeyOf(k)
		g, ok := s.index[string(gk)]
		if !ok {
			g = len(s.gkeys)
			gc := slices.Clone(gk)
			s.index[string(gc)] = g
			s.gkeys = append(s.gkeys, gc)
			s.input = append(s.input, nil)
		}
		s.input[g] = append(s.input[g], session{start: sessionStartOf(k), end: ends.Ints[i], accs: accs})
	}
	return nil
}

func (a *Aggregate) newAccs() []aggregate.Accumulator {
	accs := make([]aggregate.Accumulator, len(a.Calls))
	for j, c := range a.Calls {
		accs[j] = c.Agg.NewAccumulator()
	}
	return accs
}

// watermarkUs is the watermark late sessions and eviction compare with, or
// false when nothing is late (no watermark on the session, complete mode).
func (s *sessionStage2) watermarkUs() (int64, bool) {
	if s.a.EventTime < 0 || s.a.Mode == ModeComplete {
		return 0, false
	}
	return s.env.WatermarkMs * 1000, true
}

// Finish merges each key's new sessions with its stored ones, stores the
// changed sessions, then emits by output mode.
func (s *sessionStage2) Finish(emit func(*batch.Batch) error) error {
	a := s.a
	wm, watermarked := s.watermarkUs()
	order := make([]int, len(s.gkeys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return bytes.Compare(s.gkeys[x], s.gkeys[y]) })
	var key, val []byte
	for _, g := range order {
		gk := s.gkeys[g]
		sessions := s.input[g][:0]
		for _, ss := range s.input[g] {
			if watermarked && ss.end <= wm {
				s.dropped++ // a late initial session: its end is at or below the watermark
				continue
			}
			sessions = append(sessions, ss)
		}
		if len(sessions) == 0 {
			continue
		}
		var ierr error
		err := s.store.Iterate(gk, state.PrefixEnd(gk), func(k, v []byte) bool {
			var ss session
			if ss, ierr = a.decodeSession(k, v); ierr == nil {
				sessions = append(sessions, ss)
			}
			return ierr == nil
		})
		if err == nil {
			err = ierr
		}
		if err != nil {
			return fmt.Errorf("state of shuffle partition %d: %w", s.env.Partition, err)
		}
		// Sort by start (stored before new at the same start) and merge
		// each session into the one before it when it starts at or before
		// that one's end. A merged session is written when it holds a new
		// session; the stored sessions it absorbed are removed.
		slices.SortStableFunc(sessions, func(x, y session) int {
			if x.start != y.start {
				return cmpInt64(x.start, y.start)
			}
			if x.stored != y.stored {
				if x.stored {
					return -1
				}
				return 1
			}
			return 0
		})
		for i := 0; i < len(sessions); {
			cur := sessions[i]
			changed := !cur.stored
			absorbed := []int64(nil)
			j := i + 1
			for ; j < len(sessions) && sessions[j].start <= cur.end; j++ {
				next := sessions[j]
				if next.end > cur.end {
					cur.end = next.end
				}
				for c, acc := range cur.accs {
					if err := acc.Merge(next.accs[c]); err != nil {
						return fmt.Errorf("%s: %w", a.Calls[c].Name, err)
					}
				}
				if next.stored {
					absorbed = append(absorbed, next.start)
				} else {
					changed = true
				}
			}
			i = j
			if !changed {
				continue
			}
			for _, start := range absorbed {
				if start == cur.start {
					continue // overwritten by the put below
				}
				if err := s.store.Remove(state.AppendKeyInt64(append(key[:0], gk...), start)); err != nil {
					return err
				}
			}
			key = state.AppendKeyInt64(append(key[:0], gk...), cur.start)
			val = binary.BigEndian.AppendUint64(val[:0], uint64(cur.end))
			val = aggregate.AppendStates(val, cur.accs)
			if err := s.store.Put(key, val); err != nil {
				return err
			}
		}
	}
	out := newSessionRows(a, s.emitter(emit))
	switch {
	case a.Mode == ModeComplete:
		var ierr error
		err := s.store.Iterate(nil, nil, func(k, v []byte) bool {
			var ss session
			if ss, ierr = a.decodeSession(k, v); ierr == nil {
				ierr = out.add(k, ss)
			}
			return ierr == nil
		})
		if err == nil {
			err = ierr
		}
		if err != nil {
			return err
		}
	case a.Mode == ModeAppend && watermarked:
		// A session is complete when the watermark reaches its end; its
		// key's start says nothing of its end, so every session is looked
		// at (as Spark's removeByValueCondition does).
		var evict [][]byte
		err := s.store.Iterate(nil, nil, func(k, v []byte) bool {
			if len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) <= wm {
				evict = append(evict, slices.Clone(k))
			}
			return true
		})
		if err != nil {
			return err
		}
		for _, k := range evict {
			v, ok, err := s.store.Get(k)
			if err != nil || !ok {
				return fmt.Errorf("state of shuffle partition %d: session to evict vanished: %v", s.env.Partition, err)
			}
			ss, err := a.decodeSession(k, v)
			if err != nil {
				return err
			}
			if err := out.add(k, ss); err != nil {
				return err
			}
			if err := s.store.Remove(k); err != nil {
				return err
			}
		}
	}
	return out.flush()
}

func cmpInt64(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// decodeSession reads a stored session.
func (a *SessionAggregate) decodeSession(key, value []byte) (session, error) {
	if len(key) < sessionStartLen || len(value) < 8 {
		return session{}, fmt.Errorf("session state entry too short (key %d, value %d bytes)", len(key), len(value))
	}
	ss := session{start: sessionStartOf(key), end: int64(binary.BigEndian.Uint64(value)), accs: a.newAccs(), stored: true}
	if err := aggregate.LoadStates(value[8:], ss.accs); err != nil {
		return session{}, err
	}
	return ss, nil
}

func (s *sessionStage2) emitter(emit func(*batch.Batch) error) func(*batch.Batch) error {
	st := &aggStage2{a: &s.a.Aggregate, env: s.env}
	return st.emitter(emit)
}

func (s *sessionStage2) Metrics() []engine.OperatorMetrics {
	return []engine.OperatorMetrics{{DroppedByWatermark: s.dropped}}
}

// sessionRows assembles output rows of a session aggregation: the keys
// decoded from the state key with the session struct in its place, then
// the aggregate results.
type sessionRows struct {
	outRows
	a    *SessionAggregate
	keys []*batch.Column // cols of the keys without the session
}

func newSessionRows(a *SessionAggregate, emit func(*batch.Batch) error) *sessionRows {
	r := &sessionRows{a: a}
	r.init(a.raw, emit, func() {
		r.keys = r.keys[:0]
		for i := range r.a.Keys {
			if i != r.a.Session {
				r.keys = append(r.keys, r.cols[i])
			}
		}
	})
	return r
}

func (r *sessionRows) add(key []byte, ss session) error {
	r.begin()
	if err := state.DecodeKeyIntoArena(groupKeyOf(key), r.keys, &r.arena); err != nil {
		return fmt.Errorf("decode state key: %w", err)
	}
	w := r.cols[r.a.Session]
	w.Children[0].AppendInt(ss.start)
	w.Children[1].AppendInt(ss.end)
	w.AppendStruct()
	nk := len(r.a.Keys)
	for j, acc := range ss.accs {
		if err := acc.AppendResult(r.cols[nk+j]); err != nil {
			return err
		}
	}
	return r.rowDone()
}
