package expr

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// errNoBatchTimestamp is returned when current_timestamp() or
// current_date() is evaluated without a batch timestamp.
var errNoBatchTimestamp = errors.New("current_timestamp()/current_date() need the batch timestamp: EvalContext.BatchTimestamp is not set")

// nowEval is current_timestamp() or current_date(): one value, the batch
// timestamp, for every row.
//
// The constant column is cached: the tasks of one micro-batch share a batch
// timestamp, so after the first task builds the column the others reuse
// its storage (read-only, as every evaluation result is) instead of
// allocating and filling their own.
type nowEval struct {
	date  bool
	cache atomic.Pointer[constInts]
}

// constInts is n copies of v.
type constInts struct {
	v    int64
	ints []int64
}

func (e *nowEval) kind() batch.Kind {
	if e.date {
		return batch.Date
	}
	return batch.Timestamp
}
func (e *nowEval) nullable() bool { return false }
func (e *nowEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	v, err := batchMicros(ctx)
	if err != nil {
		return nil, err
	}
	if e.date {
		v = floorDiv(v, microsPerDay)
	}
	n := b.N
	c := e.cache.Load()
	if c == nil || c.v != v || len(c.ints) < n {
		c = &constInts{v: v, ints: fill(n, v)}
		e.cache.Store(c)
	}
	return &batch.Column{Type: e.kind(), Len: n, Ints: c.ints[:n:n]}, nil
}

// batchMicros returns the batch timestamp in microseconds since the epoch.
func batchMicros(ctx *EvalContext) (int64, error) {
	if ctx == nil || ctx.BatchTimestamp.IsZero() {
		return 0, errNoBatchTimestamp
	}
	return ctx.BatchTimestamp.UnixMicro(), nil
}

func buildNow(date bool) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, _ []cexpr, _ *Call) (cexpr, error) {
		return cexpr{ev: &nowEval{date: date}, sql: name + "()"}, nil
	}
}

// buildConvert is to_date(x) and to_timestamp(x) without a format: a cast
// from STRING, DATE or TIMESTAMP.
func buildConvert(to batch.Kind) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x := args[0]
		switch x.kind() {
		case batch.String, batch.Date, batch.Timestamp, batch.Null:
		default:
			return cexpr{}, argErr(name, 0, x, "a string, date or timestamp")
		}
		return cexpr{ev: coerce(x, to).ev}, nil
	}
}

type timeField uint8

const (
	fieldYear timeField = iota
	fieldMonth
	fieldDay
	fieldHour
	fieldMinute
	fieldSecond
)

// buildField is year/month/day/hour/minute/second of a date or timestamp
// (strings are cast) in UTC.
func buildField(f timeField) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x := args[0]
		switch k := x.kind(); {
		case k == batch.Timestamp:
		case k == batch.Date && f <= fieldDay:
		case k == batch.Date:
			x = coerce(x, batch.Timestamp)
		case k == batch.String || k == batch.Null:
			if f <= fieldDay {
				x = coerce(x, batch.Date)
			} else {
				x = coerce(x, batch.Timestamp)
			}
		default:
			return cexpr{}, argErr(name, 0, x, "a date or timestamp")
		}
		isDate := x.kind() == batch.Date
		return cexpr{ev: &fnEval{k: batch.Int, args: []evaluator{x.ev}, null: x.ev.nullable(),
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				c := cols[0]
				return rowwise(batch.Int, n, cols, func(i int, out *batch.Column) bool {
					us := c.Ints[i]
					if isDate {
						us *= microsPerDay
					}
					t := time.UnixMicro(us).UTC()
					var v int
					switch f {
					case fieldYear:
						v = t.Year()
					case fieldMonth:
						v = int(t.Month())
					case fieldDay:
						v = t.Day()
					case fieldHour:
						v = t.Hour()
					case fieldMinute:
						v = t.Minute()
					case fieldSecond:
						v = t.Second()
					}
					out.Ints[i] = int64(v)
					return true
				}), nil
			}}}, nil
	}
}

// buildUnixTimestamp is unix_timestamp() (the batch timestamp in seconds)
// and unix_timestamp(x) for a timestamp, date or string (parsed leniently
// like a cast; Spark's format argument is not supported).
func buildUnixTimestamp(name string, args []cexpr, _ *Call) (cexpr, error) {
	if len(args) == 0 {
		return cexpr{ev: &fnEval{k: batch.Long, run: func(n int, _ []*batch.Column, ctx *EvalContext) (*batch.Column, error) {
			v, err := batchMicros(ctx)
			if err != nil {
				return nil, err
			}
			return &batch.Column{Type: batch.Long, Len: n, Ints: fill(n, floorDiv(v, microsPerSecond))}, nil
		}}, sql: name + "()"}, nil
	}
	if k := args[0].kind(); k == batch.String || (k == batch.Null && len(args) > 1) {
		return buildUnixTimestampFmt(name, args)
	}
	// A timestamp or date: the format, if any, does not apply (as in Spark).
	return buildUnix(microsPerSecond)(name, args[:1], nil)
}

// buildUnix is unix_seconds/unix_millis/unix_micros: a timestamp as a count
// of units since the epoch.
func buildUnix(unit int64) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x := args[0]
		switch x.kind() {
		case batch.Timestamp:
		case batch.Date, batch.String, batch.Null:
			x = coerce(x, batch.Timestamp)
		default:
			return cexpr{}, argErr(name, 0, x, "a timestamp")
		}
		return cexpr{ev: &fnEval{k: batch.Long, args: []evaluator{x.ev}, null: x.ev.nullable(),
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				c := cols[0]
				return rowwise(batch.Long, n, cols, func(i int, out *batch.Column) bool {
					out.Ints[i] = floorDiv(c.Ints[i], unit)
					return true
				}), nil
			}}}, nil
	}
}

// buildFromUnix is timestamp_seconds/timestamp_millis/timestamp_micros.
// timestamp_seconds also accepts a DOUBLE with a fraction.
func buildFromUnix(unit int64) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x := args[0]
		switch k := x.kind(); {
		case k == batch.Int || k == batch.Long:
			x = coerce(x, batch.Long)
		case k == batch.Double && unit == microsPerSecond:
		case k == batch.Null:
			x = coerce(x, batch.Long)
		default:
			return cexpr{}, argErr(name, 0, x, "an integer")
		}
		dbl := x.kind() == batch.Double
		return cexpr{ev: &fnEval{k: batch.Timestamp, args: []evaluator{x.ev}, null: x.ev.nullable() || dbl,
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				c := cols[0]
				return rowwise(batch.Timestamp, n, cols, func(i int, out *batch.Column) bool {
					if dbl {
						return castCell(c, i, out)
					}
					out.Ints[i] = saturatingMul(c.Ints[i], unit)
					return true
				}), nil
			}}}, nil
	}
}
