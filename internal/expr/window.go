package expr

import (
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// WindowKind is Spark's type of time windows and session windows:
// struct<start:timestamp,end:timestamp>, both fields nullable.
var WindowKind = batch.StructOf(
	batch.Field{Name: "start", Type: batch.Timestamp, Nullable: true},
	batch.Field{Name: "end", Type: batch.Timestamp, Nullable: true},
)

// Output column names Spark gives window() and session_window().
const (
	WindowColumn        = "window"
	SessionWindowColumn = "session_window"
)

// TimeWindow is a compiled window(timeColumn, windowDuration[,
// slideDuration[, startTime]]) or session_window(timeColumn, gapDuration)
// call: what the plan needs to assign rows to windows. Durations are in
// microseconds. It is immutable and safe for concurrent use.
//
// A tumbling window (Slide == Size) puts every row in exactly one window.
// A sliding window puts it in up to ceil(Size/Slide) windows, so the plan
// expands rows: Assign returns one (row, window) pair per window a row
// falls in. A session window starts as [t, t+Gap) for each row; merging
// the sessions of a key that overlap or touch is the session operator's
// job (Spark's MergingSessionsExec), not this expression's.
type TimeWindow struct {
	// Session is true for session_window().
	Session bool
	// Size, Slide and Start are window()'s windowDuration, slideDuration
	// (= Size when not given) and startTime (the offset of window starts
	// from the epoch, |Start| < Slide).
	Size, Slide, Start int64
	// Gap is session_window()'s gapDuration when it is a literal.
	Gap int64
	// gap computes a dynamic gapDuration per row (Spark's SPARK-36465: a
	// string expression such as CASE … THEN '1 second' … END, read as an
	// interval); nil when the gap is a literal. A row whose gap is NULL,
	// not an interval, zero or negative falls in no session, as Spark
	// filters sessions whose end is not after their start.
	gap evaluator
	// Time evaluates the time column as a TIMESTAMP (against the schema
	// given to FindTimeWindow).
	Time Compiled
	time evaluator
	// Name is the output column name: "window" or "session_window".
	Name string
	// SQL is the call as written, for messages and explain output.
	SQL string
}

// DynamicGap reports whether session_window()'s gap is computed per row.
func (w *TimeWindow) DynamicGap() bool { return w.gap != nil }

// sessionEnds returns each row's initial session end (t + gap) for the
// times ts of b; ok[i] is false for a row that falls in no session (NULL
// time, or a dynamic gap that is NULL, not an interval, or ≤ 0).
func (w *TimeWindow) sessionEnds(b *batch.Batch, ctx *EvalContext, ts *batch.Column) (ends []int64, ok []bool, err error) {
	ends, ok = make([]int64, b.N), make([]bool, b.N)
	var gaps *batch.Column
	if w.gap != nil {
		if gaps, err = w.gap.eval(b, ctx); err != nil {
			return nil, nil, err
		}
	}
	parsed := map[string]int64{}
	for i := 0; i < b.N; i++ {
		if isNullAt(ts, i) {
			continue
		}
		g := w.Gap
		if gaps != nil {
			if gaps.Type == batch.Null || isNullAt(gaps, i) {
				continue
			}
			s := string(gaps.Bytes[i])
			v, seen := parsed[s]
			if !seen {
				v = parseGap(s)
				parsed[s] = v
			}
			g = v
		}
		if g <= 0 {
			continue
		}
		ends[i], ok[i] = ts.Ints[i]+g, true
	}
	return ends, ok, nil
}

// parseGap reads a dynamic session gap as Spark casts a string to an
// interval: "10 seconds", "interval 1 minute", "-10 seconds" (negative);
// 0 when the string is not a fixed-length interval (the row is dropped).
func parseGap(s string) int64 {
	s = strings.TrimSpace(s)
	if rest, ok := cutPrefixFold(s, "interval"); ok {
		s = strings.TrimSpace(rest)
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = strings.TrimSpace(s[1:])
	}
	if s == "" || strings.Trim(s, "0123456789") == "" {
		return 0
	}
	d, err := options.ParseInterval(s)
	if err != nil || neg {
		return 0
	}
	return d.Microseconds()
}

// Tumbling reports whether each row falls in exactly one window.
func (w *TimeWindow) Tumbling() bool { return !w.Session && w.Slide == w.Size }

// MaxWindowsPerRow is the number of windows a row can fall in:
// ceil(Size/Slide) for window(), 1 for tumbling windows and sessions.
func (w *TimeWindow) MaxWindowsPerRow() int {
	if w.Session {
		return 1
	}
	return int((w.Size + w.Slide - 1) / w.Slide)
}

// lastStart is the start of the latest window containing t (Spark's
// TimeWindowing: remainder = (t - start) % slide, adjusted to be ≥ 0).
func (w *TimeWindow) lastStart(t int64) int64 {
	r := (t - w.Start) % w.Slide
	if r < 0 {
		r += w.Slide
	}
	return t - r
}

// AppendWindows appends the starts of the windows containing t to dst, in
// Spark's order (the latest window first, as its Expand produces them).
// The window of start s is [s, s+Size).
func (w *TimeWindow) AppendWindows(dst []int64, t int64) []int64 {
	if w.Session {
		return append(dst, t)
	}
	last := w.lastStart(t)
	exact := w.Size%w.Slide == 0
	for i := 0; i < w.MaxWindowsPerRow(); i++ {
		s := last - int64(i)*w.Slide
		if exact || (s <= t && t < s+w.Size) {
			dst = append(dst, s)
		}
	}
	return dst
}

// Assign evaluates the time column on b and returns, for every window a
// row falls in, the row's index and the window (a column of WindowKind),
// rows in input order and each row's windows in Spark's order. Rows whose
// time is NULL fall in no window and are left out, as Spark filters them.
func (w *TimeWindow) Assign(b *batch.Batch, ctx *EvalContext) (rows []int32, windows *batch.Column, err error) {
	ts, err := w.Time.Eval(b, ctx)
	if err != nil {
		return nil, nil, err
	}
	windows = batch.NewColumn(WindowKind, b.N*w.MaxWindowsPerRow())
	starts, ends := windows.Children[0], windows.Children[1]
	rows = make([]int32, 0, b.N)
	var sessionEnd []int64
	var inSession []bool
	if w.Session {
		if sessionEnd, inSession, err = w.sessionEnds(b, ctx, ts); err != nil {
			return nil, nil, err
		}
	}
	var buf []int64
	for i := 0; i < b.N; i++ {
		if isNullAt(ts, i) || (w.Session && !inSession[i]) {
			continue
		}
		t := ts.Ints[i]
		buf = w.AppendWindows(buf[:0], t)
		for _, s := range buf {
			end := s + w.Size
			if w.Session {
				end = sessionEnd[i]
			}
			rows = append(rows, int32(i))
			starts.AppendInt(s)
			ends.AppendInt(end)
			windows.AppendStruct()
		}
	}
	return rows, windows, nil
}

// Expand returns the rows of b repeated once per window they fall in, with
// the window appended as a last column named w.Name: the input of a
// windowed aggregation. Rows with a NULL time (or, for a session window,
// no valid gap) are dropped.
func (w *TimeWindow) Expand(b *batch.Batch, ctx *EvalContext) (*batch.Batch, error) {
	rows, windows, err := w.Assign(b, ctx)
	if err != nil {
		return nil, err
	}
	schema := batch.Schema{Fields: append(append([]batch.Field(nil), b.Schema.Fields...), batch.Field{Name: w.Name, Type: WindowKind, Nullable: false})}
	cols := make([]*batch.Column, 0, len(b.Columns)+1)
	for _, c := range b.Columns {
		out := batch.NewColumn(c.Type, len(rows))
		if c.Type == batch.Null {
			out.Len = len(rows)
		} else {
			for _, r := range rows {
				out.AppendFrom(c, int(r))
			}
		}
		cols = append(cols, out)
	}
	cols = append(cols, windows)
	return batch.New(schema, cols, len(rows)), nil
}

// FindTimeWindow recognises a window() or session_window() call (possibly
// aliased) in n and compiles it against in; ok is false when n is not one.
// The plan calls it on each grouping expression.
func FindTimeWindow(n Node, in batch.Schema) (w *TimeWindow, ok bool, err error) {
	if a, isAlias := n.(*Alias); isAlias {
		n = a.X
	}
	call, isCall := n.(*Call)
	if !isCall {
		return nil, false, nil
	}
	name := strings.ToLower(call.Name)
	if name != "window" && name != "session_window" {
		return nil, false, nil
	}
	c := &compiler{in: in}
	args := make([]cexpr, len(call.Args))
	for i, a := range call.Args {
		if args[i], err = c.compile(a); err != nil {
			return nil, true, err
		}
	}
	spec := functions[name]
	if len(args) < spec.min || len(args) > spec.max {
		return nil, true, errAt(call.At, "%s() takes %s, got %d", name, arity(spec), len(args))
	}
	tw, err := timeWindowOf(name, args, call)
	if err != nil {
		return nil, true, err
	}
	tw.Time = &compiled{ev: tw.time, name: tw.Time.Name(), in: in}
	return tw, true, nil
}

// timeWindowOf validates a window()/session_window() call as Spark's
// TimeWindow and SessionWindow do.
func timeWindowOf(name string, args []cexpr, call *Call) (*TimeWindow, error) {
	tc := args[0]
	switch k := tc.kind(); {
	case k == batch.Timestamp:
	case k == batch.String || k == batch.Date || k == batch.Null:
		tc = coerce(tc, batch.Timestamp)
	case batch.SameType(k, WindowKind):
		// window(window, …): the time of a window is window_time(window).
		tc = cexpr{ev: &windowTime{x: tc.ev}, sql: "window_time(" + tc.sql + ")"}
	default:
		return nil, errAt(tc.pos, "[DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE] %s() needs a timestamp time column, but %s is %s", name, tc.sql, k)
	}
	w := &TimeWindow{time: tc.ev, Time: &compiled{ev: tc.ev, name: tc.sql}, SQL: callSQL(name, args)}
	if name == "session_window" {
		w.Session, w.Name = true, SessionWindowColumn
		if args[1].lit == nil {
			// A dynamic gap: a string expression read per row.
			if k := args[1].kind(); k != batch.String && k != batch.Null {
				return nil, errAt(args[1].pos, "[DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE] session_window() needs its gap duration as an "+
					"interval string (a literal such as '10 seconds', or a string expression computing one per row), but %s is %s", args[1].sql, k)
			}
			w.gap = args[1].ev
			return w, nil
		}
		gap, err := durationArg(args[1], false)
		if err != nil {
			return nil, err
		}
		if gap <= 0 {
			return nil, errAt(args[1].pos, "the gap duration of session_window (%s) must be greater than 0", args[1].sql)
		}
		w.Gap = gap
		return w, nil
	}
	w.Name = WindowColumn
	size, err := durationArg(args[1], false)
	if err != nil {
		return nil, err
	}
	w.Size, w.Slide = size, size
	if len(args) > 2 {
		if w.Slide, err = durationArg(args[2], false); err != nil {
			return nil, err
		}
	}
	if len(args) > 3 {
		if w.Start, err = durationArg(args[3], true); err != nil {
			return nil, err
		}
	}
	switch {
	case w.Size <= 0:
		return nil, errAt(call.At, "The window duration (%d) must be greater than 0.", w.Size)
	case w.Slide <= 0:
		return nil, errAt(call.At, "The slide duration (%d) must be greater than 0.", w.Slide)
	case w.Slide > w.Size:
		return nil, errAt(call.At, "The slide duration (%d) must be less than or equal to the windowDuration (%d).", w.Slide, w.Size)
	case w.Start >= w.Slide || -w.Start >= w.Slide:
		return nil, errAt(call.At, "The absolute value of start time (%d) must be less than the slideDuration (%d).", w.Start, w.Slide)
	}
	return w, nil
}

// durationArg reads a window duration as Spark's TimeWindow does: an
// interval string ("10 minutes", "1 hour 30 seconds", optionally prefixed
// by "interval"; a leading '-' only when negative allows it) or an integer
// literal counting microseconds. Months and years have no fixed length and
// are refused.
func durationArg(a cexpr, negative bool) (int64, error) {
	if a.lit == nil || a.lit.Value == nil {
		return 0, errAt(a.pos, "The duration and time inputs to window must be an integer, long or string literal.")
	}
	switch v := a.lit.Value.(type) {
	case int64:
		return v, nil
	case string:
		s := strings.TrimSpace(v)
		if rest, ok := cutPrefixFold(s, "interval"); ok {
			s = strings.TrimSpace(rest)
		}
		neg := false
		if negative && strings.HasPrefix(s, "-") {
			neg, s = true, strings.TrimSpace(s[1:])
		}
		if s == "" || strings.Trim(s, "0123456789") == "" {
			return 0, errAt(a.pos, "The provided interval (%s) did not correspond to a valid interval string.", v)
		}
		d, err := options.ParseInterval(s)
		if err != nil {
			if strings.Contains(err.Error(), "no fixed length") {
				return 0, errAt(a.pos, "Intervals greater than a month is not supported (%s).", v)
			}
			return 0, errAt(a.pos, "The provided interval (%s) did not correspond to a valid interval string: %v", v, err)
		}
		us := d.Microseconds()
		if neg {
			us = -us
		}
		return us, nil
	}
	return 0, errAt(a.pos, "The duration and time inputs to window must be an integer, long or string literal.")
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) && (len(s) == len(prefix) || s[len(prefix)] == ' ') {
		return s[len(prefix):], true
	}
	return s, false
}

// windowExpr is window() or session_window() used as an ordinary
// expression: the row's window as a struct (NULL for a NULL time). Only
// tumbling windows and sessions have one window per row.
type windowExpr struct {
	w *TimeWindow
}

func (e *windowExpr) kind() batch.Kind { return WindowKind }
func (e *windowExpr) nullable() bool   { return true }
func (e *windowExpr) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	ts, err := e.w.time.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	var sessionEnd []int64
	var inSession []bool
	if e.w.Session {
		if sessionEnd, inSession, err = e.w.sessionEnds(b, ctx, ts); err != nil {
			return nil, err
		}
	}
	out := batch.NewColumn(WindowKind, b.N)
	starts, ends := out.Children[0], out.Children[1]
	for i := 0; i < b.N; i++ {
		if isNullAt(ts, i) || (e.w.Session && !inSession[i]) {
			out.AppendNull()
			continue
		}
		t := ts.Ints[i]
		if e.w.Session {
			starts.AppendInt(t)
			ends.AppendInt(sessionEnd[i])
		} else {
			s := e.w.lastStart(t)
			starts.AppendInt(s)
			ends.AppendInt(s + e.w.Size)
		}
		out.AppendStruct()
	}
	return out, nil
}

func buildWindow(name string, args []cexpr, call *Call) (cexpr, error) {
	w, err := timeWindowOf(name, args, call)
	if err != nil {
		return cexpr{}, err
	}
	if !w.Session && !w.Tumbling() {
		return cexpr{}, errAt(call.At, "a sliding %s puts a row in up to %d windows, so it is only supported as a grouping key "+
			"(groupBy); use a tumbling window (no slide, or slide = window duration) elsewhere", w.SQL, w.MaxWindowsPerRow())
	}
	return cexpr{ev: &windowExpr{w: w}, sql: w.SQL, name: w.Name}, nil
}

// windowTime is window_time(window): the window's end minus one
// microsecond, the event time Spark gives a window's rows.
type windowTime struct{ x evaluator }

func (e *windowTime) kind() batch.Kind { return batch.Timestamp }
func (e *windowTime) nullable() bool   { return true }
func (e *windowTime) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	if x.Type == batch.Null {
		return nullCol(batch.Timestamp, b.N), nil
	}
	end := maskNulls(x.Children[1], x)
	out := newCol(batch.Timestamp, b.N)
	out.Valid = end.Valid
	for i := range out.Ints {
		if !isNullAt(end, i) {
			out.Ints[i] = end.Ints[i] - 1
		}
	}
	return out, nil
}

func buildWindowTime(name string, args []cexpr, _ *Call) (cexpr, error) {
	if !batch.SameType(args[0].kind(), WindowKind) {
		return cexpr{}, argErr(name, 0, args[0], "a window struct<start:timestamp,end:timestamp>")
	}
	return cexpr{ev: &windowTime{x: args[0].ev}}, nil
}

// ---- parsing timestamps with a pattern ----

// defaultUnixPattern is unix_timestamp's default format.
const defaultUnixPattern = "yyyy-MM-dd HH:mm:ss"

// patternArg reads a datetime pattern argument, which must be a string
// literal, as a Go layout.
func patternArg(name string, a cexpr) (string, error) {
	if a.lit == nil {
		return "", errAt(a.pos, "%s() needs its format as a string literal, but %s is not one", name, a.sql)
	}
	s, ok := a.lit.Value.(string)
	if !ok {
		return "", errAt(a.pos, "%s() needs its format as a string literal, but %s is not one", name, a.sql)
	}
	layout, err := sparktext.JavaLayout(s)
	if err != nil {
		return "", errAt(a.pos, "invalid datetime pattern %s: %v", quoteString(s), err)
	}
	return layout, nil
}

// parseWithLayout parses every string cell of c with a Go layout (UTC)
// into micros since the epoch; cells that do not parse become NULL.
func parseWithLayout(c *batch.Column, layout string, n int) *batch.Column {
	out := newCol(batch.Timestamp, n)
	if c.Type == batch.Null {
		return nullCol(batch.Timestamp, n)
	}
	for i := 0; i < n; i++ {
		if isNullAt(c, i) {
			setNull(out, i)
			continue
		}
		t, err := time.ParseInLocation(layout, strings.TrimSpace(string(c.Bytes[i])), time.UTC)
		if err != nil {
			setNull(out, i)
			continue
		}
		out.Ints[i] = t.Unix()*microsPerSecond + int64(t.Nanosecond()/1000)
	}
	zeroNulls(out)
	return out
}

// buildToTimestamp is to_timestamp(expr[, fmt]): without a format, a cast
// to TIMESTAMP; with one, the string parsed with that Spark datetime
// pattern (NULL when it does not match).
func buildToTimestamp(name string, args []cexpr, call *Call) (cexpr, error) {
	if len(args) == 1 {
		return buildConvert(batch.Timestamp)(name, args, call)
	}
	x := args[0]
	if k := x.kind(); k != batch.String && k != batch.Null {
		return cexpr{}, argErr(name, 0, x, "a string when a format is given")
	}
	layout, err := patternArg(name, args[1])
	if err != nil {
		return cexpr{}, err
	}
	return cexpr{ev: &fnEval{k: batch.Timestamp, args: []evaluator{x.ev}, null: true,
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			return parseWithLayout(cols[0], layout, n), nil
		}}}, nil
}

// buildUnixTimestampFmt is unix_timestamp(str[, fmt]) for strings: seconds
// since the epoch of the string parsed with fmt (default
// yyyy-MM-dd HH:mm:ss), NULL when it does not match.
func buildUnixTimestampFmt(name string, args []cexpr) (cexpr, error) {
	layout, err := sparktext.JavaLayout(defaultUnixPattern)
	if err != nil {
		return cexpr{}, err
	}
	if len(args) > 1 {
		if layout, err = patternArg(name, args[1]); err != nil {
			return cexpr{}, err
		}
	}
	return cexpr{ev: &fnEval{k: batch.Long, args: []evaluator{args[0].ev}, null: true,
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			ts := parseWithLayout(cols[0], layout, n)
			for i, v := range ts.Ints {
				ts.Ints[i] = floorDiv(v, microsPerSecond)
			}
			ts.Type = batch.Long
			return ts, nil
		}}}, nil
}
