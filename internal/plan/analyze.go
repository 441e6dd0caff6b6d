package plan

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/operator"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/watermark"
)

// Output modes.
const (
	ModeAppend   = operator.ModeAppend
	ModeUpdate   = operator.ModeUpdate
	ModeComplete = operator.ModeComplete
)

// Spark's start-time errors (UnsupportedOperationChecker), checked by
// Analyze before the query writes anything.
var (
	ErrAppendWithoutWatermark = errors.New("[STREAMING_OUTPUT_MODE.UNSUPPORTED_OPERATION] Invalid streaming output mode: append. " +
		"This output mode is not supported for streaming aggregations without watermark on streaming DataFrames/DataSets.")
	ErrCompleteWithoutAggregation = errors.New("Complete output mode not supported when there are no streaming aggregations on streaming DataFrames/Datasets")
	ErrWithinWatermarkNoWatermark = errors.New("dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark")
	// ErrUpdateSessionWindow: Spark refuses update mode for session
	// windows (a session emitted as updated can later merge into another
	// one, and a sink could not tell the old row is obsolete).
	ErrUpdateSessionWindow = errors.New("Update output mode not supported for session window on streaming DataFrames/DataSets")
	ErrGlobalSessionWindow = errors.New("Global aggregation with session window in streaming query is not supported.")
)

// Options are what analysis needs besides the plan and the source schema.
type Options struct {
	// OutputMode is "append", "update" or "complete" (lower case).
	OutputMode string
	// ANSI is spark.sql.ansi.enabled.
	ANSI bool
}

// Error is a transformation that does not analyse. Step counts from 0.
type Error struct {
	Step int
	Op   Op
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("transform step %d, %s:\n%v", e.Step+1, Clip(e.Op.String(), 200), e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ModeError is an output mode the query cannot run in.
type ModeError struct{ Err error }

func (e *ModeError) Error() string { return e.Err.Error() }
func (e *ModeError) Unwrap() error { return e.Err }

// Clip shortens s to at most n runes, marking a cut with "…", so that an
// error about a huge generated expression stays readable.
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// Query is an analysed plan: the physical plan the engine runs.
type Query struct {
	// Root is the logical plan.
	Root *Node
	// Input is the source's schema.
	Input batch.Schema
	// Stage1 is the stateless stage run in every source task; nil when the
	// query has no operation before its stateful one (or none at all).
	Stage1 *operator.Chain
	// Stateful is the stateful operator (stage 2), nil for a stateless
	// query: an *operator.Aggregate, *operator.SessionAggregate or
	// *operator.Deduplicate.
	Stateful engine.Stateful
	// Watermarks are the withWatermark nodes, nil when there are none.
	Watermarks *Watermarks
	// Output is the schema the sink receives.
	Output batch.Schema
	// RequiredColumns are the source columns the query reads (nil: all).
	RequiredColumns []string
	// OutputMode is the analysed output mode.
	OutputMode string

	stateStep int // step of the stateful operator
}

// Watermarks are a query's withWatermark nodes (engine.Watermarks).
type Watermarks struct {
	nodes []watermarkNode
}

type watermarkNode struct {
	column  string
	delay   string
	delayMs int64
	obs     *operator.Observe
}

// Delays implements engine.Watermarks.
func (w *Watermarks) Delays() []int64 {
	out := make([]int64, len(w.nodes))
	for i, n := range w.nodes {
		out[i] = n.delayMs
	}
	return out
}

// Collect implements engine.Watermarks.
func (w *Watermarks) Collect() []watermark.Stats {
	out := make([]watermark.Stats, len(w.nodes))
	for i, n := range w.nodes {
		out[i] = n.obs.Collector.Take()
	}
	return out
}

// Stateless reports whether the query has no stateful operator.
func (q *Query) Stateless() bool { return q.Stateful == nil }

// analyzer walks the plan once, from the scan up.
type analyzer struct {
	opts   Options
	schema batch.Schema
	// marks[i] is the watermark delay (ms) of column i when it is the
	// event-time column, else -1.
	marks []int64

	stage1   *operator.Chain
	post     *operator.Chain // after the stateful operator
	stateful engine.Stateful
	wms      []watermarkNode
}

// Analyze resolves root against the source schema in and checks it:
// expressions, the watermark column, aggregate calls, Spark's output-mode
// and operator rules. Errors in a transformation are *Error (naming its
// step), output-mode errors *ModeError.
func Analyze(root *Node, in batch.Schema, opts Options) (*Query, error) {
	opts.OutputMode = strings.ToLower(opts.OutputMode)
	if opts.OutputMode == "" {
		opts.OutputMode = ModeAppend
	}
	a := &analyzer{opts: opts, schema: in, marks: noMarks(len(in.Fields))}
	q := &Query{Root: root, Input: in, OutputMode: opts.OutputMode, RequiredColumns: requiredColumns(root), stateStep: -1}
	for _, n := range root.Ops() {
		if err := a.op(n, q); err != nil {
			return nil, &Error{Step: n.Step, Op: n.Op, Err: err}
		}
	}
	a.finish()
	if a.stage1 != nil && len(a.stage1.Steps) > 0 {
		q.Stage1 = a.stage1
	}
	q.Stateful = a.stateful
	if len(a.wms) > 0 {
		q.Watermarks = &Watermarks{nodes: a.wms}
	}
	q.Output = a.schema
	if err := checkOutputMode(q); err != nil {
		return nil, &ModeError{Err: err}
	}
	return q, nil
}

func noMarks(n int) []int64 {
	m := make([]int64, n)
	for i := range m {
		m[i] = -1
	}
	return m
}

// eventTime returns the index of the event-time column, or -1.
func (a *analyzer) eventTime() int {
	for i, m := range a.marks {
		if m >= 0 {
			return i
		}
	}
	return -1
}

// chain is where a stateless step goes: stage 1, or after the stateful
// operator.
func (a *analyzer) chain() *operator.Chain {
	if a.stateful != nil {
		if a.post == nil {
			a.post = operator.NewChain(a.schema)
			a.post.ANSI = a.opts.ANSI
		}
		return a.post
	}
	if a.stage1 == nil {
		a.stage1 = operator.NewChain(a.schema)
	}
	return a.stage1
}

func (a *analyzer) op(n *Node, q *Query) error {
	switch n.Kind {
	case SelectExpr:
		p, err := expr.CompileSelect(n.Exprs, a.schema)
		if err != nil {
			return err
		}
		a.marks = a.projectMarks(selectRefs(n.Exprs, a.schema))
		a.add(p)
	case Select:
		p, err := expr.CompileSelectColumns(n.Exprs, a.schema)
		if err != nil {
			return err
		}
		var refs []int
		for _, name := range n.Exprs {
			if name == "*" {
				for i := range a.schema.Fields {
					refs = append(refs, i)
				}
				continue
			}
			if len(name) > 2 && strings.HasPrefix(name, "`") && strings.HasSuffix(name, "`") {
				name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
			}
			refs = append(refs, a.schema.Index(name))
		}
		a.marks = a.projectMarks(refs)
		a.add(p)
	case WithColumn:
		p, err := expr.CompileWithColumn(n.Name, n.Expr, a.schema)
		if err != nil {
			return err
		}
		ref := -1
		if x, err := expr.Parse(n.Expr); err == nil {
			ref = refOf(x, a.schema)
		}
		var refs []int
		replaced := false
		for i, f := range a.schema.Fields {
			if strings.EqualFold(f.Name, n.Name) {
				refs = append(refs, ref)
				replaced = true
				continue
			}
			refs = append(refs, i)
		}
		if !replaced {
			refs = append(refs, ref)
		}
		a.marks = a.projectMarks(refs)
		a.add(p)
	case Filter:
		f, err := expr.CompileFilter(n.Expr, a.schema)
		if err != nil {
			return err
		}
		a.add(f)
	case WithWatermark:
		return a.withWatermark(n)
	case Aggregate:
		if err := a.oneStateful(n); err != nil {
			return err
		}
		q.stateStep = n.Step
		return a.aggregate(n)
	case Deduplicate:
		if err := a.oneStateful(n); err != nil {
			return err
		}
		q.stateStep = n.Step
		return a.deduplicate(n)
	default:
		return fmt.Errorf("unsupported operation %s", n.Kind)
	}
	return nil
}

// add appends a stateless step and moves to its output schema.
func (a *analyzer) add(s operator.Step) {
	a.chain().Add(s)
	a.schema = s.Schema()
}

func (a *analyzer) oneStateful(n *Node) error {
	if a.stateful != nil {
		return fmt.Errorf("sluice runs one stateful operator (aggregation or deduplication) per query; %s follows another one", n.Op)
	}
	return nil
}

// projectMarks maps output columns (refs[i] = input column, or -1 for a
// computed one) to event-time marks: a column passed through unchanged
// (bare or renamed) keeps its mark, as Spark keeps the watermark metadata
// of an attribute through aliases.
func (a *analyzer) projectMarks(refs []int) []int64 {
	out := noMarks(len(refs))
	for i, r := range refs {
		if r >= 0 && r < len(a.marks) {
			out[i] = a.marks[r]
		}
	}
	return out
}

// selectRefs maps each output column of selectExpr(exprs) to the input
// column it passes through, or -1.
func selectRefs(exprs []string, in batch.Schema) []int {
	var refs []int
	for _, src := range exprs {
		n, err := expr.Parse(src)
		if err != nil {
			refs = append(refs, -1)
			continue
		}
		if _, ok := n.(*expr.Star); ok {
			for i := range in.Fields {
				refs = append(refs, i)
			}
			continue
		}
		refs = append(refs, refOf(n, in))
	}
	return refs
}

// refOf returns the input column an expression is (possibly renamed), or
// -1 when it computes something.
func refOf(n expr.Node, in batch.Schema) int {
	if al, ok := n.(*expr.Alias); ok {
		n = al.X
	}
	if id, ok := n.(*expr.Ident); ok {
		return in.Index(id.Name)
	}
	return -1
}

func (a *analyzer) withWatermark(n *Node) error {
	if a.stateful != nil {
		return fmt.Errorf("withWatermark after a stateful operator is not supported")
	}
	i := a.schema.Index(n.EventTime)
	if i < 0 {
		msg := fmt.Sprintf("cannot resolve column `%s` for the watermark (input columns: %s)", n.EventTime, strings.Join(a.schema.Names(), ", "))
		return errors.New(msg)
	}
	if k := a.schema.Fields[i].Type; k != batch.Timestamp {
		return fmt.Errorf("event time must be defined on a window or a timestamp, but %s is of type %s", a.schema.Fields[i].Name, k)
	}
	delay, err := watermark.ParseDelay(n.Delay)
	if err != nil {
		return err
	}
	obs := operator.NewObserve(a.schema, i)
	a.add(obs)
	// A new watermark replaces the marks of the columns before it.
	a.marks = noMarks(len(a.schema.Fields))
	a.marks[i] = delay
	a.wms = append(a.wms, watermarkNode{column: a.schema.Fields[i].Name, delay: n.Delay, delayMs: delay, obs: obs})
	return nil
}

// keyable reports whether values of kind k can be part of a state key.
func keyable(k batch.Kind) bool { return state.KeyEncodable(k) }

func (a *analyzer) aggregate(n *Node) error {
	in := a.schema
	agg, err := expr.CompileAggregation(n.GroupBy, n.Aggs, in, expr.AggOptions{ANSI: a.opts.ANSI})
	if err != nil {
		return err
	}
	ag := &operator.Aggregate{Keys: agg.Keys, Window: agg.Window, EventTime: -1, Mode: a.opts.OutputMode}
	session := -1
	var delay int64
	for _, c := range agg.Calls {
		ag.Calls = append(ag.Calls, operator.AggCall{Agg: c.Agg, Arg: c.Arg, Name: c.Name})
	}
	// The event-time key: a window over the watermarked column (compared
	// by its end), or the watermarked column itself.
	for i, src := range n.GroupBy {
		x, err := expr.Parse(src)
		if err != nil {
			return err
		}
		if al, ok := x.(*expr.Alias); ok {
			x = al.X
		}
		r := refOf(x, in)
		window := false
		if c, ok := x.(*expr.Call); ok && agg.Window != nil && len(c.Args) > 0 {
			if w, isWindow, _ := expr.FindTimeWindow(c, in); isWindow {
				r, window = refOf(c.Args[0], in), true
				if w.Session {
					session = i
				}
			}
		}
		if r >= 0 && a.marks[r] >= 0 && (ag.EventTime < 0 || session == i) {
			ag.EventTime, ag.WindowEnd, delay = i, window, a.marks[r]
		}
	}
	for _, k := range agg.Keys {
		if !keyable(k.Type()) {
			return fmt.Errorf("cannot group by %s of type %s", k.Name(), k.Type())
		}
	}
	ag.Init()
	a.schema = agg.Grouped
	a.marks = noMarks(len(agg.Grouped.Fields))
	if ag.EventTime >= 0 {
		a.marks[ag.EventTime] = delay
	}
	a.stateful = ag
	if session >= 0 {
		// The session's time column is the only event time a session
		// aggregation can carry.
		if ag.EventTime != session && ag.EventTime >= 0 {
			a.marks[ag.EventTime] = -1
			ag.EventTime, ag.WindowEnd = -1, false
		}
		a.stateful = &operator.SessionAggregate{Aggregate: *ag, Session: session}
	}
	// The projection to agg()'s output: the keys, then each expression
	// over the aggregate results.
	outRefs := make([]int, len(agg.Output.Schema().Fields))
	for i := range outRefs {
		outRefs[i] = -1
		if i < len(agg.Keys) {
			outRefs[i] = i
		}
	}
	marks := a.projectMarks(outRefs)
	a.add(agg.Output)
	a.marks = marks
	return nil
}

func (a *analyzer) deduplicate(n *Node) error {
	in := a.schema
	d := &operator.Deduplicate{In: in, EventTime: a.eventTime(), WithinWatermark: n.WithinWatermark}
	cols := n.Columns
	if len(cols) == 0 {
		cols = in.Names()
	}
	seen := map[int]bool{}
	for _, c := range cols {
		i := in.Index(c)
		if i < 0 {
			return fmt.Errorf("cannot resolve column name %q among (%s)", c, strings.Join(in.Names(), ", "))
		}
		if !keyable(in.Fields[i].Type) {
			return fmt.Errorf("cannot deduplicate on %s of type %s", in.Fields[i].Name, in.Fields[i].Type)
		}
		if !seen[i] {
			seen[i] = true
			d.Keys = append(d.Keys, i)
		}
	}
	if n.WithinWatermark {
		if d.EventTime < 0 {
			return ErrWithinWatermarkNoWatermark
		}
		d.DelayMs = a.marks[d.EventTime]
	}
	d.Init()
	a.stateful = d
	return nil
}

// finish attaches the stage-2 chain to the stateful operator.
func (a *analyzer) finish() {
	if a.post == nil {
		return
	}
	switch s := a.stateful.(type) {
	case *operator.Aggregate:
		s.Post = a.post
	case *operator.SessionAggregate:
		s.Post = a.post
	case *operator.Deduplicate:
		s.Post = a.post
	}
}

func checkOutputMode(q *Query) error {
	switch s := q.Stateful.(type) {
	case nil:
		if q.OutputMode == ModeComplete {
			return ErrCompleteWithoutAggregation
		}
	case *operator.Aggregate:
		if q.OutputMode == ModeAppend && s.EventTime < 0 {
			return ErrAppendWithoutWatermark
		}
	case *operator.SessionAggregate:
		switch {
		case q.OutputMode == ModeUpdate:
			return ErrUpdateSessionWindow
		case len(s.Keys) == 1:
			return ErrGlobalSessionWindow
		case q.OutputMode == ModeAppend && s.EventTime < 0:
			return ErrAppendWithoutWatermark
		}
	case *operator.Deduplicate:
		if q.OutputMode == ModeComplete {
			return ErrCompleteWithoutAggregation
		}
	}
	return nil
}

// requiredColumns returns the source columns a plan reads, or nil when it
// reads all of them. Only a leading projection (select, selectExpr) can
// drop columns; everything else passes them through.
func requiredColumns(root *Node) []string {
	ops := root.Ops()
	if len(ops) == 0 || (ops[0].Kind != SelectExpr && ops[0].Kind != Select) {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, e := range ops[0].Exprs {
		n, err := expr.Parse(e)
		if err != nil {
			return nil
		}
		cols, star := expr.Columns(n)
		if star {
			return nil
		}
		for _, c := range cols {
			if !seen[c] {
				seen[c] = true
				names = append(names, c)
			}
		}
	}
	if names == nil {
		names = []string{} // reads no column at all (constants only)
	}
	return names
}
