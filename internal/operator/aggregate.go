package operator

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/state"
)

// Output modes.
const (
	ModeAppend   = "append"
	ModeUpdate   = "update"
	ModeComplete = "complete"
)

// AggCall is one aggregate function call of an Aggregate.
type AggCall struct {
	Agg *aggregate.Aggregate
	// Arg is the argument, compiled against the aggregate's input; nil for
	// count(*).
	Arg expr.Compiled
	// Name is the output column's name.
	Name string
}

// Aggregate is a streaming aggregation (groupBy(keys).agg(calls)). Stage 1
// aggregates each task's rows per group (partial aggregation) and ships
// one (key, partial state) row per group to the group's shuffle partition;
// stage 2 merges a partition's partials per key, drops late keys, merges
// them into the state store and emits by output mode:
//
//   - append: a group once, when the watermark passes its event time (it
//     leaves the state then);
//   - update: the groups changed in the batch; groups the watermark passed
//     leave the state silently;
//   - complete: every group, every batch; nothing is evicted.
type Aggregate struct {
	// Keys are the grouping expressions, compiled against the input.
	Keys []expr.Compiled
	// Calls are the aggregate calls.
	Calls []AggCall
	// Window is the window() grouping key's window, if any: stage 1
	// expands each chunk with it (a row per window it falls in, the window
	// as a last column, which the keys and arguments are compiled against).
	Window *expr.TimeWindow
	// EventTime is the index of the grouping key that carries event time
	// (a watermarked timestamp column, or a window over one), or -1.
	EventTime int
	// WindowEnd: the event-time key is a window, compared by its end.
	WindowEnd bool
	// Mode is the output mode (ModeAppend, ModeUpdate, ModeComplete).
	Mode string
	// Post runs over the aggregate's output (a projection of expressions
	// over aggregates, and the operations after the aggregation); nil when
	// there are none.
	Post *Chain
	// FlushGroups bounds the groups a task's partial aggregation holds
	// before it ships them (0: DefaultFlushGroups).
	FlushGroups int

	raw batch.Schema // keys then aggregate results
	// groupsHint is the groups the last stage-1 flush shipped: a new
	// batch's partial aggregation sizes its index for as many up front
	// rather than growing it from empty, batch after batch. Set by Init (a
	// pointer: SessionAggregate embeds a copy of the Aggregate).
	groupsHint *atomic.Int64
	// passHint is the rows a partition's columns held on average when the
	// last passing-through task sent them: a new task makes its
	// partitions' columns a quarter larger (within
	// passMinRows..passBatchRows) rather than doubling them up to it. Set
	// by Init, like groupsHint.
	passHint *atomic.Int64
}

// DefaultFlushGroups is how many groups a stage-1 task aggregates before
// it sends them to the exchange and starts afresh.
const DefaultFlushGroups = 1 << 16

// shuffleSchema is the exchange's row: the encoded key and the encoded
// partial aggregate states.
var shuffleSchema = batch.Schema{Fields: []batch.Field{{Name: "key", Type: batch.Binary}, {Name: "state", Type: batch.Binary}}}

// Init computes the output schema; call it once after the fields are set.
func (a *Aggregate) Init() {
	a.raw = batch.Schema{}
	if a.groupsHint == nil {
		a.groupsHint = new(atomic.Int64)
	}
	if a.passHint == nil {
		a.passHint = new(atomic.Int64)
	}
	for _, k := range a.Keys {
		a.raw.Fields = append(a.raw.Fields, batch.Field{Name: k.Name(), Type: k.Type(), Nullable: k.Nullable()})
	}
	for _, c := range a.Calls {
		a.raw.Fields = append(a.raw.Fields, batch.Field{Name: c.Name, Type: c.Agg.ResultType(), Nullable: c.Agg.Nullable()})
	}
}

// RawSchema is the aggregate's own output: the grouping keys, then one
// column per call.
func (a *Aggregate) RawSchema() batch.Schema { return a.raw }

// Schema implements engine.Stateful.
func (a *Aggregate) Schema() batch.Schema {
	if a.Post != nil {
		return a.Post.Schema()
	}
	return a.raw
}

// Operators implements engine.Stateful.
func (a *Aggregate) Operators() []engine.StateOperator {
	key := batch.Schema{Fields: a.raw.Fields[:len(a.Keys)]}
	val := batch.Schema{}
	for _, c := range a.Calls {
		k := c.Agg.ResultType()
		if c.Agg.ResultIsArray() {
			k = batch.Binary
		}
		val.Fields = append(val.Fields, batch.Field{Name: c.Name, Type: k, Nullable: true})
	}
	return []engine.StateOperator{{Name: state.OperatorNameAggregate, Schemas: state.Schemas{Key: key, Value: val}}}
}

// NoDataBatches implements engine.Stateful: append and update mode.
func (a *Aggregate) NoDataBatches() bool { return a.Mode != ModeComplete }

// appendKey appends the state key of row i: the event-time value first
// (when there is one), then every grouping key.
func (a *Aggregate) appendKey(dst []byte, keys []*batch.Column, i int) []byte {
	if a.EventTime >= 0 {
		c := keys[a.EventTime]
		if a.WindowEnd {
			if c.IsNull(i) {
				dst = state.AppendKeyNull(dst)
			} else {
				dst = state.AppendKeyCell(dst, c.Children[1], i) // the window's end
			}
		} else {
			dst = state.AppendKeyCell(dst, c, i)
		}
	}
	return state.EncodeKey(dst, keys, i)
}

// expand puts each row of b once in every window it falls in, the window
// appended as a last column (rows with a null time fall in none). A
// tumbling window over a column without nulls keeps b's columns as they
// are.
func (a *Aggregate) expand(b *batch.Batch, ctx *expr.EvalContext) (*batch.Batch, error) {
	rows, windows, err := a.Window.Assign(b, ctx)
	if err != nil {
		return nil, err
	}
	out := b
	for i, r := range rows {
		if len(rows) != b.N || int(r) != i {
			out = gather(b, rows)
			break
		}
	}
	schema := batch.Schema{Fields: append(append([]batch.Field(nil), b.Schema.Fields...), batch.Field{Name: a.Window.Name, Type: expr.WindowKind})}
	return &batch.Batch{Schema: schema, Columns: append(append([]*batch.Column(nil), out.Columns...), windows), N: len(rows)}, nil
}

// NewShuffleWriter implements engine.Stateful: partial aggregation.
func (a *Aggregate) NewShuffleWriter(env engine.ShuffleEnv) engine.ShuffleWriter {
	limit := a.FlushGroups
	if limit <= 0 {
		limit = DefaultFlushGroups
	}
	hint := 0
	if a.groupsHint != nil {
		hint = int(min(a.groupsHint.Load(), int64(limit)))
	}
	return &partialAgg{a: a, env: env, limit: limit, index: make(map[string]int, hint),
		keys: make([][]byte, 0, hint), accs: make([][]aggregate.Accumulator, 0, hint), count: make([]int32, 0, hint),
		ctx: &expr.EvalContext{BatchTimestamp: env.BatchTime}}
}

type partialAgg struct {
	a     *Aggregate
	env   engine.ShuffleEnv
	limit int
	ctx   *expr.EvalContext

	index map[string]int
	keys  [][]byte
	accs  [][]aggregate.Accumulator

	// session is set for a session aggregation: groups are (keys without
	// the session, initial session start), each with its latest end.
	session *SessionAggregate
	ends    []int64

	// per chunk
	count   []int32 // rows per group, then offsets
	gid     []int32 // group of each row
	sel     []int32 // rows grouped by group
	touched []int
	buf     []byte
	place   []int32 // per group: its shuffle partition (Flush)
	arena   []byte  // the groups' keys (saveKey)
	// accArena holds the groups' accumulator slices (newGroupAccs).
	accArena []aggregate.Accumulator

	// Pass-through: when the task's first passSample rows were almost all
	// groups of their own (passRatio), combining saves nothing
	// and costs a hash index and an accumulator per row; the rest of the
	// task then ships each row as its own partial, to its partition
	// (stage 2 merges partials by key either way, in arrival order).
	sampled, sampledGroups int
	decided, passing       bool
	one                    []aggregate.Accumulator // a row's accumulators
	empty                  []byte                  // their state before any row
	sel1                   [1]int32
	state                  []byte
	rowState               []byte     // constantRowState, or nil
	pass                   []passPart // per shuffle partition
	passRows               int
	passSize               int // the rows a partition's columns are made for
	passSent, passSends    int // rows sent by sendPass, and its calls
}

// passPart is one shuffle partition's rows of a passing-through task, and
// the arena its keys are copied into.
type passPart struct {
	keys, states *batch.Column
	arena        []byte
}

// passArenaSize is the size of the blocks a passing-through task copies a
// partition's keys into: about 50 keys of the bench's 35 bytes. A batch
// leaves at most this much unused room per partition and task.
const passArenaSize = 2 << 10

// Pass-through thresholds: a task decides after its first passSample rows
// (inside the chunk that reaches them); at least passRatio of them must each
// have made a new group.
const (
	passSample = 1024
	passRatio  = 0.9
	// passBatchRows is how many rows a passing-through task gathers for a
	// partition before it sends them.
	passBatchRows = 4096
	// passMinRows is the fewest rows a partition's columns are made for.
	passMinRows = 64
)

// accArenaGroups is how many groups' accumulator slices one allocation of
// a partial aggregation's accumulator arena holds.
const accArenaGroups = 1024

// newGroupAccs returns fresh accumulators for a new group, their slice cut
// from an arena (one allocation per accArenaGroups groups, not per group).
func (p *partialAgg) newGroupAccs() []aggregate.Accumulator {
	n := len(p.a.Calls)
	if len(p.accArena) < n {
		p.accArena = make([]aggregate.Accumulator, n*accArenaGroups)
	}
	accs := p.accArena[:n:n]
	p.accArena = p.accArena[n:]
	for j, c := range p.a.Calls {
		accs[j] = c.Agg.NewAccumulator()
	}
	return accs
}

func (p *partialAgg) Write(b *batch.Batch) error {
	if b.N == 0 {
		return nil
	}
	a := p.a
	if a.Window != nil {
		var err error
		if b, err = a.expand(b, p.ctx); err != nil {
			return fmt.Errorf("%s: %w", a.Window.SQL, err)
		}
		if b.N == 0 {
			return nil
		}
	}
	keys := make([]*batch.Column, len(a.Keys))
	for i, k := range a.Keys {
		c, err := k.Eval(b, p.ctx)
		if err != nil {
			return fmt.Errorf("group by %s: %w", k.Name(), err)
		}
		keys[i] = c
	}
	args := make([]*batch.Column, len(a.Calls))
	for i, c := range a.Calls {
		if c.Arg == nil {
			args[i] = &batch.Column{Type: batch.Null, Len: b.N}
			continue
		}
		col, err := c.Arg.Eval(b, p.ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		args[i] = col
	}
	if p.passing {
		return p.passThrough(keys, args, 0, b.N)
	}
	from := 0
	if !p.decided && p.session == nil {
		// Group the sample's rows first, decide, then go on with the rest
		// of the chunk either way.
		m := min(b.N, passSample-p.sampled)
		groups0 := len(p.keys)
		if err := p.group(keys, args, 0, m); err != nil {
			return err
		}
		p.sampled += m
		p.sampledGroups += len(p.keys) - groups0
		from = m
		if p.sampled >= passSample {
			p.decided = true
			if float64(p.sampledGroups) >= passRatio*float64(p.sampled) {
				// Ship what was combined first: a key's partials reach
				// stage 2 in the order of their rows.
				p.passing = true
				if err := p.Flush(); err != nil {
					return err
				}
				return p.passThrough(keys, args, m, b.N)
			}
		}
	}
	if from < b.N {
		if err := p.group(keys, args, from, b.N); err != nil {
			return err
		}
	}
	if len(p.keys) >= p.limit {
		return p.Flush()
	}
	return nil
}

// group folds rows [from, to) of a chunk into their groups: a group id per
// row, then the rows of each group contiguous in one selection (a counting
// sort), so every accumulator is updated once per group with that group's
// rows.
func (p *partialAgg) group(keys, args []*batch.Column, from, to int) error {
	a := p.a
	n := to - from
	if cap(p.gid) < n {
		p.gid = make([]int32, n)
	}
	gid := p.gid[:n]
	p.touched = p.touched[:0]
	for i := from; i < to; i++ {
		if p.session != nil {
			p.buf = p.session.appendStateKey(p.buf[:0], keys, i)
		} else {
			p.buf = a.appendKey(p.buf[:0], keys, i)
		}
		g, ok := p.index[string(p.buf)]
		if !ok {
			g = len(p.keys)
			k := p.saveKey(p.buf)
			p.index[string(k)] = g
			p.keys = append(p.keys, k)
			p.accs = append(p.accs, p.newGroupAccs())
			p.count = append(p.count, 0)
			if p.session != nil {
				p.ends = append(p.ends, 0)
			}
		}
		if p.session != nil {
			if end := keys[p.session.Session].Children[1].Ints[i]; end > p.ends[g] {
				p.ends[g] = end
			}
		}
		if p.count[g] == 0 {
			p.touched = append(p.touched, g)
		}
		p.count[g]++
		gid[i-from] = int32(g)
	}
	// Offsets of each touched group in sel.
	if cap(p.sel) < n {
		p.sel = make([]int32, n)
	}
	sel := p.sel[:n]
	var off int32
	for _, g := range p.touched {
		c := p.count[g]
		p.count[g] = off // start
		off += c
	}
	for i, g := range gid {
		sel[p.count[g]] = int32(from + i)
		p.count[g]++ // ends up at the group's end
	}
	start := int32(0)
	for _, g := range p.touched {
		end := p.count[g]
		rows := sel[start:end]
		for j, acc := range p.accs[g] {
			if err := acc.Update(args[j], rows); err != nil {
				return fmt.Errorf("%s: %w", a.Calls[j].Name, err)
			}
		}
		p.count[g] = 0
		start = end
	}
	return nil
}

// passThrough sends each of rows [from, to) to its shuffle partition as a
// partial of its own: its key and the state of its accumulators after that
// row.
func (p *partialAgg) passThrough(keys, args []*batch.Column, from, to int) error {
	a := p.a
	if p.one == nil {
		p.one = a.newAccs()
		p.empty = aggregate.AppendStates(nil, p.one)
		p.pass = make([]passPart, p.env.Partitions)
		var err error
		if p.rowState, err = p.constantRowState(); err != nil {
			return err
		}
		p.passSize = passMinRows
		if p.a.passHint != nil {
			h := p.a.passHint.Load()
			p.passSize = int(min(max(h+h/4+8, passMinRows), passBatchRows))
		}
	}
	for i := from; i < to; i++ {
		// The key is encoded in a scratch buffer, then copied into its
		// partition's arena: a partition's keys lie side by side, and
		// stage 2, which reads every key of its partition (the sort
		// first), streams them rather than missing the cache once per key
		// among every other partition's keys.
		p.buf = a.appendKey(p.buf[:0], keys, i)
		part := PartitionOf(p.buf, p.env.Partitions)
		pp := &p.pass[part]
		if pp.arena == nil || cap(pp.arena)-len(pp.arena) < len(p.buf) {
			// Never nil: a nil cell is a null (an empty key is not).
			pp.arena = make([]byte, 0, max(passArenaSize, len(p.buf)))
		}
		start := len(pp.arena)
		pp.arena = append(pp.arena, p.buf...)
		key := pp.arena[start:len(pp.arena):len(pp.arena)]
		state := p.rowState
		if state == nil {
			if err := aggregate.LoadStates(p.empty, p.one); err != nil {
				return err
			}
			p.sel1[0] = int32(i)
			for j, acc := range p.one {
				if err := acc.Update(args[j], p.sel1[:]); err != nil {
					return fmt.Errorf("%s: %w", a.Calls[j].Name, err)
				}
			}
			p.state = aggregate.AppendStates(p.state[:0], p.one)
			state = p.saveKey(p.state)
		}
		if pp.keys == nil {
			pp.keys = batch.NewColumn(batch.Binary, p.passSize)
			if p.rowState == nil {
				pp.states = batch.NewColumn(batch.Binary, p.passSize)
			}
		}
		pp.keys.AppendBytes(key)
		if pp.states != nil {
			pp.states.AppendBytes(state)
		}
		p.passRows++
		if pp.keys.Len >= passBatchRows {
			if err := p.sendPass(part); err != nil {
				return err
			}
		}
	}
	if p.passRows >= p.limit {
		return p.flushPass()
	}
	return nil
}

// constantRowState returns the state a row's accumulators have after that
// row alone when it is the same for every row — every call takes no
// argument (count(*)): its input is a constant NULL column — or nil. A
// passing-through task then ships that one state once per batch sent, in a
// state column of one cell (aggStage2.partials reads it for every row),
// instead of computing it and storing a cell per row. The returned slice
// is shared by the batches sent (cells are never written).
func (p *partialAgg) constantRowState() ([]byte, error) {
	for _, c := range p.a.Calls {
		if c.Arg != nil {
			return nil, nil
		}
	}
	accs := p.a.newAccs()
	null := &batch.Column{Type: batch.Null, Len: 1}
	for j, acc := range accs {
		if err := acc.Update(null, []int32{0}); err != nil {
			return nil, fmt.Errorf("%s: %w", p.a.Calls[j].Name, err)
		}
	}
	st := aggregate.AppendStates(nil, accs)
	return st[:len(st):len(st)], nil
}

// sendPass sends partition part's gathered rows.
func (p *partialAgg) sendPass(part int) error {
	pp := &p.pass[part]
	states := pp.states
	if states == nil {
		// Every row's state is rowState: one cell says so (constStates).
		states = batch.NewColumn(batch.Binary, 1)
		states.AppendBytes(p.rowState)
	}
	b := &batch.Batch{Schema: shuffleSchema, Columns: []*batch.Column{pp.keys, states}, N: pp.keys.Len}
	p.passSent += pp.keys.Len
	p.passSends++
	p.passRows -= pp.keys.Len
	pp.keys, pp.states = nil, nil
	return p.env.Send(part, b)
}

// flushPass sends every partition's gathered rows, in partition order.
func (p *partialAgg) flushPass() error {
	for part := range p.pass {
		if p.pass[part].keys != nil {
			if err := p.sendPass(part); err != nil {
				return err
			}
		}
	}
	p.arena = nil // sent states point into it
	for part := range p.pass {
		p.pass[part].arena = nil // and sent keys into these
	}
	if p.a.passHint != nil && p.passSends > 0 {
		p.a.passHint.Store(int64(p.passSent / p.passSends))
	}
	return nil
}

// Flush ships every group's partial state to its partition.
func (p *partialAgg) Flush() error {
	if p.passing {
		if err := p.flushPass(); err != nil {
			return err
		}
	}
	if len(p.keys) == 0 {
		return nil
	}
	n := p.env.Partitions
	// Place each group, then size each partition's columns at once; the
	// states of a partition share one buffer (a batch's cells are never
	// written again).
	if cap(p.place) < len(p.keys) {
		p.place = make([]int32, len(p.keys))
	}
	place := p.place[:len(p.keys)]
	count := make(map[int]int)
	for g, k := range p.keys {
		placed := k
		if p.session != nil {
			placed = groupKeyOf(k) // all sessions of a key in one partition
		}
		part := PartitionOf(placed, n)
		place[g] = int32(part)
		count[part]++
	}
	order := make([]int, 0, len(count))
	for part := range count {
		order = append(order, part)
	}
	slices.Sort(order)
	type out struct {
		keys, ends, states *batch.Column
		buf                []byte
		spans              []int32 // end of each state in buf
	}
	parts := make(map[int]*out, len(order))
	for _, part := range order {
		c := count[part]
		o := &out{keys: batch.NewColumn(batch.Binary, c), states: batch.NewColumn(batch.Binary, c), spans: make([]int32, 0, c)}
		if p.session != nil {
			o.ends = batch.NewColumn(batch.Long, c)
		}
		parts[part] = o
	}
	for g, k := range p.keys {
		o := parts[int(place[g])]
		o.keys.AppendBytes(k)
		if p.session != nil {
			o.ends.AppendInt(p.ends[g])
		}
		o.buf = aggregate.AppendStates(o.buf, p.accs[g])
		o.spans = append(o.spans, int32(len(o.buf)))
	}
	for _, part := range order {
		o := parts[part]
		start := int32(0)
		for _, end := range o.spans {
			o.states.AppendBytes(o.buf[start:end:end])
			start = end
		}
		b := &batch.Batch{Schema: shuffleSchema, Columns: []*batch.Column{o.keys, o.states}, N: o.keys.Len}
		if p.session != nil {
			b = &batch.Batch{Schema: sessionShuffleSchema, Columns: []*batch.Column{o.keys, o.ends, o.states}, N: o.keys.Len}
		}
		if err := p.env.Send(part, b); err != nil {
			return err
		}
	}
	if p.a.groupsHint != nil {
		p.a.groupsHint.Store(int64(len(p.keys)))
	}
	clear(p.index)
	clear(p.accs) // the arena's accumulators may go
	p.keys, p.accs, p.count, p.ends = p.keys[:0], p.accs[:0], p.count[:0], p.ends[:0]
	p.accArena = nil
	p.arena = nil // shipped keys point into it
	return nil
}

// keyArenaSize is the size of the blocks a partial aggregation copies its
// group keys into (one allocation per block, not per group).
const keyArenaSize = 32 << 10

// saveKey copies k into the key arena.
func (p *partialAgg) saveKey(k []byte) []byte {
	if len(k) > keyArenaSize/8 {
		return slices.Clone(k)
	}
	if cap(p.arena)-len(p.arena) < len(k) {
		p.arena = make([]byte, 0, keyArenaSize)
	}
	start := len(p.arena)
	p.arena = append(p.arena, k...)
	return p.arena[start:len(p.arena):len(p.arena)]
}

// NewStage2 implements engine.Stateful.
func (a *Aggregate) NewStage2(env engine.Stage2Env) (engine.Stage2, error) {
	return &aggStage2{a: a, env: env, store: env.Stores[0]}, nil
}

type aggStage2 struct {
	a     *Aggregate
	env   engine.Stage2Env
	store state.Store

	// received are the partition's batches of (key, encoded partial
	// state) rows in arrival order, rows counts their rows; Finish lists
	// the rows as partials (sized once: a partition receives many small
	// batches, and growing one slice across them copied it over and
	// over), sorts them by key and merges each key's run. The partials
	// point into the received batches' columns (built for this partition
	// alone by stage 1).
	received []*batch.Batch
	rows     int

	dropped int64
}

// partial is one stage-1 group's row: its state key and its encoded
// partial aggregate states.
type partial struct{ key, state []byte }

func (s *aggStage2) newAccs() []aggregate.Accumulator { return s.a.newAccs() }

// Process collects the partition's partials. Merging (Spark's merge
// aggregation before the state store, so a key written by several tasks
// touches the state once) happens in Finish, after one sort by key: no
// hash index, and a key that came from one task alone is never decoded.
func (s *aggStage2) Process(b *batch.Batch) error {
	if b.N > 0 {
		s.received = append(s.received, b)
		s.rows += b.N
	}
	return nil
}

// partials lists the received rows in arrival order into ps. A batch
// whose state column holds one cell for more rows gives every row that
// state (a passing-through task's constant row state, constantRowState).
func (s *aggStage2) partials(ps []partial) []partial {
	ps = slices.Grow(ps[:0], s.rows)
	for _, b := range s.received {
		keys, states := b.Columns[0].Bytes[:b.N], b.Columns[1].Bytes
		if len(states) == 1 && b.N > 1 {
			st := states[0]
			for _, k := range keys {
				ps = append(ps, partial{k, st})
			}
			continue
		}
		states = states[:b.N]
		for i, k := range keys {
			ps = append(ps, partial{k, states[i]})
		}
	}
	return ps
}

func (s *aggStage2) late(key []byte) bool {
	if s.a.EventTime < 0 || s.a.Mode == ModeComplete {
		return false
	}
	t, ok := eventTimeOf(key)
	return ok && t <= s.env.WatermarkMs*1000
}

// Finish drops late keys, merges the batch into the state, evicts and
// emits by output mode.
func (s *aggStage2) Finish(emit func(*batch.Batch) error) error {
	a := s.a
	out := newRowBuilder(a, s.emitter(emit))
	// Each key's partials stay in arrival order, the order they merge in
	// (first and last depend on it). The sort compares 24 bytes of the
	// keys as three big-endian words held beside each index (no pointer
	// to follow, no byte loop), and the whole keys only when those and
	// the lengths cannot tell (see sortKeys).
	sc := finishScratchPool.Get().(*finishScratch)
	defer sc.release()
	ps := s.partials(sc.ps)
	sc.ps = ps
	sk := sc.sortKeys(ps)
	order := resize(&sc.order, len(ps))
	for i := range sk {
		order[i] = sk[i].i
	}
	// The keys' runs in order (late keys dropped).
	keys := resize(&sc.keys, len(order))[:0]
	spans := resize(&sc.spans, 2*len(order))[:0] // each run's start and end in order
	for i := 0; i < len(order); {
		key := ps[order[i]].key
		j := i + 1
		for ; j < len(order) && bytes.Equal(ps[order[j]].key, key); j++ {
		}
		if s.late(key) {
			s.dropped++
		} else {
			keys = append(keys, key)
			spans = append(spans, int32(i), int32(j))
		}
		i = j
	}
	sc.keys = keys
	// About as many rows as the batch has keys leave: an append-mode
	// eviction in a steady stream removes about as many keys as each batch
	// adds (a quarter more is room for the batches that remove more);
	// update mode emits every key of the batch.
	out.expect = len(keys) + len(keys)/4
	// Merge each key's run with its stored state (if any) and put the
	// result: one ordered pass over the keys and the state, which the
	// store charges to the memory limit once (state.MergeSorted).
	run := make([]partial, 0, 4)
	accs, stored, scratch := s.newAccs(), s.newAccs(), s.newAccs()
	var val []byte
	err := state.MergeSorted(s.store, keys, func(r int, old []byte, had bool) ([]byte, error) {
		key := keys[r]
		run = run[:0]
		for _, o := range order[spans[2*r]:spans[2*r+1]] {
			run = append(run, ps[o])
		}
		if !had && len(run) == 1 && a.Mode != ModeUpdate {
			// A new key from one task: its partial state is the state.
			return run[0].state, nil
		}
		// Fold the stored state (if any) and the run's partials, in
		// order, into accs.
		first := 0
		if had {
			if err := aggregate.LoadStates(old, accs); err != nil {
				return nil, fmt.Errorf("state of shuffle partition %d: %w", s.env.Partition, err)
			}
		} else {
			if err := aggregate.LoadStates(run[0].state, accs); err != nil {
				return nil, fmt.Errorf("shuffle partition %d: %w", s.env.Partition, err)
			}
			first = 1
		}
		for _, p := range run[first:] {
			if err := aggregate.LoadStates(p.state, scratch); err != nil {
				return nil, fmt.Errorf("shuffle partition %d: %w", s.env.Partition, err)
			}
			for k, acc := range accs {
				if err := acc.Merge(scratch[k]); err != nil {
					return nil, fmt.Errorf("%s: %w", a.Calls[k].Name, err)
				}
			}
		}
		val = aggregate.AppendStates(val[:0], accs)
		if a.Mode == ModeUpdate {
			if err := out.add(key, accs); err != nil {
				return nil, err
			}
		}
		return val, nil
	})
	if err != nil {
		return err
	}
	s.received, s.rows = nil, 0
	switch a.Mode {
	case ModeComplete:
		n := 0
		var ierr error
		err := s.store.Iterate(nil, nil, func(key, value []byte) bool {
			n++
			if ierr = aggregate.LoadStates(value, stored); ierr == nil {
				ierr = out.add(key, stored)
			}
			return ierr == nil
		})
		if err == nil {
			err = ierr
		}
		if err != nil {
			return err
		}
		// A global aggregate reports the aggregate of no rows before any
		// row arrived, in the partition its (empty) key belongs to.
		if n == 0 && len(a.Keys) == 0 && s.env.Partition == PartitionOf(nil, s.env.Partitions) {
			if err := out.add(nil, s.newAccs()); err != nil {
				return err
			}
		}
	default:
		if a.EventTime >= 0 {
			_, err := s.store.RemoveRange(evictLower, evictUpper(s.env.WatermarkMs), func(key, value []byte) error {
				if a.Mode != ModeAppend {
					return nil
				}
				if err := aggregate.LoadStates(value, stored); err != nil {
					return err
				}
				return out.add(key, stored)
			})
			if err != nil {
				return err
			}
		}
	}
	return out.flush()
}

// finishScratch is the working memory of aggStage2.Finish — the partials,
// their sort keys, order and runs — reused from one
// shuffle partition and batch to the next: a batch runs a Finish per
// shuffle partition, and allocating these afresh each time took about 130
// zeroed bytes per row (a fifth of what BenchmarkWindowCountBatch
// allocated) and the collector's time to reclaim them.
type finishScratch struct {
	ps    []partial
	sk    []sortKey
	order []int32
	keys  [][]byte
	spans []int32
	// sortKeys's second array and each key's group.
	sk2   []sortKey
	group []uint8
}

var finishScratchPool = sync.Pool{New: func() any { return new(finishScratch) }}

// maxPooledRows bounds the rows of a scratch kept for reuse: a partition's
// rare outsized batch does not pin its scratch.
const maxPooledRows = 1 << 20

// release returns sc to the pool (see reset).
func (sc *finishScratch) release() {
	if sc.reset() {
		finishScratchPool.Put(sc)
	}
}

// reset drops the references into the batch's rows and the state, which a
// pooled scratch must not keep alive, and says whether sc is small enough
// to keep.
func (sc *finishScratch) reset() bool {
	if cap(sc.ps) > maxPooledRows {
		return false
	}
	// Past their lengths the slices were cleared by earlier resets.
	clear(sc.ps)
	clear(sc.keys)
	return true
}

// resize sets *s to n elements (contents unspecified), reusing its array
// when it is large enough, and returns it.
func resize[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}

// sortKey is a partial's index with 24 bytes of its key (see sortKeys)
// and the key's length (saturated).
type sortKey struct {
	w0, w1, w2 uint64
	i          int32
	n          uint32
}

// maxSortGroups bounds the distinct 24-byte prefixes sortKeys splits by;
// past it, one sort of everything.
const maxSortGroups = 64

// compareSortKeys orders sort keys by their words, then by the whole keys
// (ps[i].key) and, among equal keys, by index (arrival). Keys of at most
// cover bytes, whose words hold all they have from where the words begin
// (the bytes before alike), do without the whole keys: equal words with
// their zero padding make the shorter key a prefix of the longer.
func compareSortKeys(ps []partial, cover uint32) func(x, y sortKey) int {
	return func(x, y sortKey) int {
		if x.w0 != y.w0 {
			return cmp.Compare(x.w0, y.w0)
		}
		if x.w1 != y.w1 {
			return cmp.Compare(x.w1, y.w1)
		}
		if x.w2 != y.w2 {
			return cmp.Compare(x.w2, y.w2)
		}
		if x.n <= cover && y.n <= cover {
			if x.n != y.n {
				return cmp.Compare(x.n, y.n)
			}
		} else if c := bytes.Compare(ps[x.i].key, ps[y.i].key); c != 0 {
			return c
		}
		return int(x.i - y.i)
	}
}

// lessSortKey is compareSortKeys(ps, cover)(*x, *y) < 0 with the first
// words compared in line: they decide nearly every comparison of a
// group's keys.
func lessSortKey(x, y *sortKey, ps []partial, cover uint32) bool {
	if x.w0 != y.w0 {
		return x.w0 < y.w0
	}
	return compareSortKeys(ps, cover)(*x, *y) < 0
}

// insertionSortLimit is the length at or below which sortSortKeys sorts by
// insertion.
const insertionSortLimit = 12

// sortSortKeys sorts s as slices.SortFunc(s, compareSortKeys(ps, cover))
// does — the order is total (ties go by index), so any correct sort gives
// the same result — without a call through a function value per
// comparison: a quicksort (median of three, the smaller side recursed)
// over insertion sorts of short runs, which hands a run to
// slices.SortFunc when it recurses too deep (so never worse than
// O(n log n)). A shuffle partition sorts a few hundred keys a batch.
func sortSortKeys(s []sortKey, ps []partial, cover uint32) {
	quickSortKeys(s, ps, cover, 2*bits.Len(uint(len(s))))
}

func quickSortKeys(s []sortKey, ps []partial, cover uint32, depth int) {
	for len(s) > insertionSortLimit {
		if depth == 0 {
			slices.SortFunc(s, compareSortKeys(ps, cover))
			return
		}
		depth--
		// The median of the first, middle and last to s[0]; the last
		// is then at least the pivot (it stops the scan up).
		last, mid := len(s)-1, len(s)/2
		if lessSortKey(&s[mid], &s[0], ps, cover) {
			s[0], s[mid] = s[mid], s[0]
		}
		if lessSortKey(&s[last], &s[mid], ps, cover) {
			s[mid], s[last] = s[last], s[mid]
			if lessSortKey(&s[mid], &s[0], ps, cover) {
				s[0], s[mid] = s[mid], s[0]
			}
		}
		s[0], s[mid] = s[mid], s[0]
		p := s[0]
		// Partition s[1:]: keys are distinct (ties go by index), so every
		// key is either less than the pivot or greater.
		i, j := 0, len(s)
		for {
			for i++; i < last && lessSortKey(&s[i], &p, ps, cover); i++ {
			}
			for j--; lessSortKey(&p, &s[j], ps, cover); j-- {
			}
			if i >= j {
				break
			}
			s[i], s[j] = s[j], s[i]
		}
		s[0], s[j] = s[j], s[0]
		// s[:j] < pivot = s[j] < s[j+1:]
		if j < len(s)-1-j {
			quickSortKeys(s[:j], ps, cover, depth)
			s = s[j+1:]
		} else {
			quickSortKeys(s[j+1:], ps, cover, depth)
			s = s[:j]
		}
	}
	for i := 1; i < len(s); i++ {
		x := s[i]
		j := i
		for ; j > 0 && lessSortKey(&x, &s[j-1], ps, cover); j-- {
			s[j] = s[j-1]
		}
		s[j] = x
	}
}

// sortKeys returns the partials' sort keys (in sc) ordered by key and,
// among equal keys, by index (arrival).
//
// A windowed aggregation's key begins with its event time and window
// (28 bytes with their markers), alike for all the keys of a window, and
// a shuffle partition's batch has keys of few windows (about 12 in
// `sluice bench --only stateful`). One sort of such keys by their first
// 24 bytes compared three equal words and then the whole keys, bytes
// behind a pointer, for nearly every pair. So when the keys have few
// distinct first 24 bytes (at most maxSortGroups), they are split by them
// (a stable counting pass, groups in the prefixes' order) and each group
// is sorted on its own by the words at offset 24, the part that differs
// within a window, and the keys' lengths (the whole keys only past 48
// bytes). The order is the same as one sort's: keys of different groups
// differ within their first 24 bytes.
func (sc *finishScratch) sortKeys(ps []partial) []sortKey {
	sk := resize(&sc.sk, len(ps))
	one := func() []sortKey { // one sort of all, by the first 24 bytes
		for i, p := range ps {
			sk[i] = sortKey{keyWord(p.key, 0), keyWord(p.key, 8), keyWord(p.key, 16), int32(i), keyLen(p.key)}
		}
		sortSortKeys(sk, ps, 24)
		return sk
	}
	if len(ps) < 2 {
		return one()
	}
	var pre [maxSortGroups][3]uint64
	prefix := pre[:0]
	group := resize(&sc.group, len(ps))
	last := -1
	for i, p := range ps {
		w := [3]uint64{keyWord(p.key, 0), keyWord(p.key, 8), keyWord(p.key, 16)}
		if last < 0 || prefix[last] != w {
			last = slices.Index(prefix, w)
			if last < 0 {
				if len(prefix) == maxSortGroups {
					return one()
				}
				last = len(prefix)
				prefix = append(prefix, w)
			}
		}
		group[i] = uint8(last)
		sk[i] = sortKey{keyWord(p.key, 24), keyWord(p.key, 32), keyWord(p.key, 40), int32(i), keyLen(p.key)}
	}
	// The groups' ranks: their prefixes in order.
	var rank, ord [maxSortGroups]uint8
	for g := range prefix {
		ord[g] = uint8(g)
	}
	slices.SortFunc(ord[:len(prefix)], func(a, b uint8) int { return slices.Compare(prefix[a][:], prefix[b][:]) })
	for r, g := range ord[:len(prefix)] {
		rank[g] = uint8(r)
	}
	// start[r] is where rank r's keys begin in out.
	var start [maxSortGroups + 1]int32
	for _, g := range group {
		start[rank[g]+1]++
	}
	for r := 1; r <= len(prefix); r++ {
		start[r] += start[r-1]
	}
	next := start
	out := resize(&sc.sk2, len(sk))
	for i, g := range group {
		r := rank[g]
		out[next[r]] = sk[i]
		next[r]++
	}
	for r := range len(prefix) {
		sortSortKeys(out[start[r]:start[r+1]], ps, 48)
	}
	// The caller's array and this one trade places for the next use.
	sc.sk, sc.sk2 = out, sk
	return out
}

// keyLen is len(key) for a sortKey (saturated: only lengths up to 48
// are compared).
func keyLen(key []byte) uint32 { return uint32(min(len(key), math.MaxUint32)) }

// keyWord is key[off:off+8] as a big-endian word, zero-padded: words of
// two keys compare as the bytes do, except that equal words may hide a
// difference in length.
func keyWord(key []byte, off int) uint64 {
	if len(key) >= off+8 {
		return binary.BigEndian.Uint64(key[off:])
	}
	var b [8]byte
	if off < len(key) {
		copy(b[:], key[off:])
	}
	return binary.BigEndian.Uint64(b[:])
}

func (s *aggStage2) emitter(emit func(*batch.Batch) error) func(*batch.Batch) error {
	if s.a.Post == nil {
		return emit
	}
	return func(b *batch.Batch) error {
		out, dead, err := s.a.Post.Apply(b, s.env.BatchTime)
		if err != nil {
			return err
		}
		if len(dead) > 0 {
			return fmt.Errorf("%s", dead[0].Reason)
		}
		if out.N == 0 {
			return nil
		}
		return emit(out)
	}
}

func (s *aggStage2) Metrics() []engine.OperatorMetrics {
	return []engine.OperatorMetrics{{DroppedByWatermark: s.dropped}}
}

// rowBuilder assembles output rows (keys decoded from state keys, then the
// aggregate results).
type rowBuilder struct {
	outRows
	a *Aggregate
}

func newRowBuilder(a *Aggregate, emit func(*batch.Batch) error) *rowBuilder {
	r := &rowBuilder{a: a}
	r.init(a.raw, emit, nil)
	return r
}

func (r *rowBuilder) add(key []byte, accs []aggregate.Accumulator) error {
	r.begin()
	nk := len(r.a.Keys)
	if nk > 0 {
		k := key
		if r.a.EventTime >= 0 {
			if key[0] == 0 { // a null event time is one byte
				k = key[1:]
			} else {
				k = key[eventTimeLen:]
			}
		}
		if err := state.DecodeKeyIntoArena(k, r.cols[:nk], &r.arena); err != nil {
			return fmt.Errorf("decode state key: %w", err)
		}
	}
	for j, acc := range accs {
		if err := acc.AppendResult(r.cols[nk+j]); err != nil {
			return err
		}
	}
	return r.rowDone()
}
