package operator

import (
	"encoding/binary"
	"fmt"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/state"
)

// Deduplicate is dropDuplicates(keys) and dropDuplicatesWithinWatermark
// (keys). Stage 1 sends each row, with its encoded key, to the key's
// shuffle partition; stage 2 keeps the first occurrence of every key (in
// arrival order) and drops the rest, remembering the keys in the state
// store.
//
// With a watermarked column in the input, rows whose event time is at or
// below the watermark are dropped as late. dropDuplicates evicts a key once
// the watermark passes its event time when the event-time column is part
// of the key (otherwise keys are kept forever); dropDuplicatesWithinWatermark
// keeps each key until the watermark reaches its first event time plus the
// delay.
type Deduplicate struct {
	// In is the input schema; Keys index its key columns.
	In   batch.Schema
	Keys []int
	// EventTime indexes the watermarked column of In, or -1.
	EventTime int
	// WithinWatermark is dropDuplicatesWithinWatermark; DelayMs is the
	// watermark delay of the event-time column.
	WithinWatermark bool
	DelayMs         int64
	// Post runs over the deduplicated rows (the operations after it).
	Post *Chain

	shuffle batch.Schema
}

// Init derives the exchange schema; call it once after the fields are set.
func (d *Deduplicate) Init() {
	d.shuffle = batch.Schema{Fields: append(append([]batch.Field(nil), d.In.Fields...), batch.Field{Name: "__key", Type: batch.Binary})}
}

// keyEventTime reports whether the key holds the event-time column.
func (d *Deduplicate) keyEventTime() bool {
	if d.EventTime < 0 || d.WithinWatermark {
		return false
	}
	for _, k := range d.Keys {
		if k == d.EventTime {
			return true
		}
	}
	return false
}

// Schema implements engine.Stateful.
func (d *Deduplicate) Schema() batch.Schema {
	if d.Post != nil {
		return d.Post.Schema()
	}
	return d.In
}

// Operators implements engine.Stateful.
func (d *Deduplicate) Operators() []engine.StateOperator {
	key := batch.Schema{}
	for _, k := range d.Keys {
		key.Fields = append(key.Fields, d.In.Fields[k])
	}
	if d.WithinWatermark {
		return []engine.StateOperator{{Name: state.OperatorNameDedupWithin, Schemas: state.Schemas{Key: key,
			Value: batch.Schema{Fields: []batch.Field{{Name: "expiresAtMicros", Type: batch.Long}}}, AllowValueChange: true}}}
	}
	return []engine.StateOperator{{Name: state.OperatorNameDedup, Schemas: state.Schemas{Key: key, AllowValueChange: true}}}
}

// NoDataBatches implements engine.Stateful.
func (d *Deduplicate) NoDataBatches() bool { return true }

func (d *Deduplicate) appendKey(dst []byte, b *batch.Batch, i int) []byte {
	if d.keyEventTime() {
		dst = state.AppendKeyCell(dst, b.Columns[d.EventTime], i)
	}
	for _, k := range d.Keys {
		dst = state.AppendKeyCell(dst, b.Columns[k], i)
	}
	return dst
}

// NewShuffleWriter implements engine.Stateful.
func (d *Deduplicate) NewShuffleWriter(env engine.ShuffleEnv) engine.ShuffleWriter {
	return &dedupShuffle{d: d, env: env}
}

type dedupShuffle struct {
	d   *Deduplicate
	env engine.ShuffleEnv
}

func (w *dedupShuffle) Write(b *batch.Batch) error {
	if b.N == 0 {
		return nil
	}
	n := w.env.Partitions
	idx := map[int][]int32{}
	keys := map[int]*batch.Column{}
	var order []int
	buf := make([]byte, 0, 64*b.N)
	for i := 0; i < b.N; i++ {
		start := len(buf)
		buf = w.d.appendKey(buf, b, i)
		k := buf[start:len(buf):len(buf)]
		p := PartitionOf(k, n)
		if _, ok := idx[p]; !ok {
			order = append(order, p)
			keys[p] = batch.NewColumn(batch.Binary, 16)
		}
		idx[p] = append(idx[p], int32(i))
		keys[p].AppendBytes(k)
	}
	for _, p := range order {
		g := gather(b, idx[p])
		g.Schema = w.d.shuffle
		g.Columns = append(g.Columns, keys[p])
		if err := w.env.Send(p, g); err != nil {
			return err
		}
	}
	return nil
}

func (w *dedupShuffle) Flush() error { return nil }

// NewStage2 implements engine.Stateful.
func (d *Deduplicate) NewStage2(env engine.Stage2Env) (engine.Stage2, error) {
	return &dedupStage2{d: d, env: env, store: env.Stores[0]}, nil
}

type dedupStage2 struct {
	d       *Deduplicate
	env     engine.Stage2Env
	store   state.Store
	out     []*batch.Batch
	dropped int64 // late
	dups    int64
}

func (s *dedupStage2) Process(b *batch.Batch) error {
	d := s.d
	n := len(d.In.Fields)
	keys := b.Columns[n]
	wm := s.env.WatermarkMs * 1000
	var keep []int32
	var val []byte
	for i := 0; i < b.N; i++ {
		if d.EventTime >= 0 {
			c := b.Columns[d.EventTime]
			if !c.IsNull(i) && c.Ints[i] <= wm {
				s.dropped++
				continue
			}
		}
		key := keys.Bytes[i]
		_, ok, err := s.store.Get(key)
		if err != nil {
			return err
		}
		if ok {
			s.dups++
			continue
		}
		val = val[:0]
		if d.WithinWatermark {
			var expires int64
			if c := b.Columns[d.EventTime]; !c.IsNull(i) {
				expires = c.Ints[i] + d.DelayMs*1000
			}
			val = binary.BigEndian.AppendUint64(val, uint64(expires))
		}
		if err := s.store.Put(key, val); err != nil {
			return err
		}
		keep = append(keep, int32(i))
	}
	if len(keep) > 0 {
		rows := &batch.Batch{Schema: d.In, Columns: b.Columns[:n], N: b.N}
		s.out = append(s.out, gather(rows, keep))
	}
	return nil
}

func (s *dedupStage2) Finish(emit func(*batch.Batch) error) error {
	d := s.d
	wm := s.env.WatermarkMs * 1000
	switch {
	case d.WithinWatermark:
		var expired [][]byte
		err := s.store.Iterate(nil, nil, func(key, value []byte) bool {
			if len(value) == 8 && int64(binary.BigEndian.Uint64(value)) <= wm {
				expired = append(expired, append([]byte(nil), key...))
			}
			return true
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := s.store.Remove(k); err != nil {
				return err
			}
		}
	case d.keyEventTime():
		if _, err := s.store.RemoveRange(evictLower, evictUpper(s.env.WatermarkMs), nil); err != nil {
			return err
		}
	}
	for _, b := range s.out {
		if d.Post != nil {
			out, dead, err := d.Post.Apply(b, s.env.BatchTime)
			if err != nil {
				return err
			}
			if len(dead) > 0 {
				return fmt.Errorf("%s", dead[0].Reason)
			}
			b = out
		}
		if b.N == 0 {
			continue
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	s.out = nil
	return nil
}

func (s *dedupStage2) Metrics() []engine.OperatorMetrics {
	return []engine.OperatorMetrics{{DroppedByWatermark: s.dropped, Custom: map[string]int64{"numDroppedDuplicateRows": s.dups}}}
}
