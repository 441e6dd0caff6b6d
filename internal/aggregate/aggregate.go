package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/sluice-stream/sluice/batch"
)

// Func is an aggregate function.
type Func uint8

// The aggregate functions.
const (
	CountStar Func = iota + 1 // count(*), count(1)
	Count                     // count(col)
	Sum
	Avg
	Min
	Max
	First
	Last
	ApproxCountDistinct
	CollectList
	CollectSet
)

var funcNames = map[Func]string{
	CountStar: "count(*)", Count: "count", Sum: "sum", Avg: "avg", Min: "min", Max: "max",
	First: "first", Last: "last", ApproxCountDistinct: "approx_count_distinct",
	CollectList: "collect_list", CollectSet: "collect_set",
}

func (f Func) String() string {
	if n, ok := funcNames[f]; ok {
		return n
	}
	return fmt.Sprintf("aggregate(%d)", uint8(f))
}

// ParseFunc maps a Spark SQL function name (case-insensitive, with Spark's
// aliases: mean, first_value, last_value, array_agg) to a Func. count is
// Count; the caller turns count(*) and count(literal) into CountStar.
func ParseFunc(name string) (Func, error) {
	switch strings.ToLower(name) {
	case "count":
		return Count, nil
	case "sum":
		return Sum, nil
	case "avg", "mean":
		return Avg, nil
	case "min":
		return Min, nil
	case "max":
		return Max, nil
	case "first", "first_value":
		return First, nil
	case "last", "last_value":
		return Last, nil
	case "approx_count_distinct":
		return ApproxCountDistinct, nil
	case "collect_list", "array_agg":
		return CollectList, nil
	case "collect_set":
		return CollectSet, nil
	}
	return 0, fmt.Errorf("unknown aggregate function %q", name)
}

// Spec describes one aggregate call.
type Spec struct {
	Func Func
	// Input is the argument's type (ignored for CountStar).
	Input batch.Kind
	// IgnoreNulls is first/last's second argument (Spark's default false:
	// a null first row makes first() null).
	IgnoreNulls bool
	// RelativeSD is approx_count_distinct's maximum relative standard
	// deviation; 0 means Spark's default 0.05.
	RelativeSD float64
	// ANSI is spark.sql.ansi.enabled: sum of integers fails with
	// ARITHMETIC_OVERFLOW instead of wrapping.
	ANSI bool
}

// DefaultRelativeSD is Spark's default for approx_count_distinct.
const DefaultRelativeSD = 0.05

// ErrArithmeticOverflow is matched by sum's overflow error in ANSI mode.
var ErrArithmeticOverflow = errors.New("[ARITHMETIC_OVERFLOW] long overflow. Use 'try_sum' to tolerate overflow and return NULL instead. " +
	"If necessary set spark.sql.ansi.enabled to \"false\" to bypass this error.")

// Aggregate is a validated aggregate call: its result type and a factory of
// accumulators. It is immutable and safe to share.
type Aggregate struct {
	spec   Spec
	result batch.Kind
	array  bool
	hll    *hllParams
}

// New validates spec against Spark's rules for argument types.
func New(spec Spec) (*Aggregate, error) {
	a := &Aggregate{spec: spec}
	in := spec.Input
	bad := func() (*Aggregate, error) {
		return nil, fmt.Errorf("%s does not accept an argument of type %s", spec.Func, in)
	}
	scalar := in <= batch.Date // Headers and future nested types are not aggregated yet
	switch spec.Func {
	case CountStar, Count:
		a.result = batch.Long
	case Sum:
		switch in {
		case batch.Int, batch.Long:
			a.result = batch.Long
		case batch.Double, batch.Null:
			a.result = batch.Double
		default:
			return bad()
		}
	case Avg:
		if !in.IsNumeric() && in != batch.Null {
			return bad()
		}
		a.result = batch.Double
	case Min, Max, First, Last:
		if !scalar {
			return bad()
		}
		a.result = in
	case ApproxCountDistinct:
		if !scalar {
			return bad()
		}
		rsd := spec.RelativeSD
		if rsd == 0 {
			rsd = DefaultRelativeSD
		}
		h, err := newHLLParams(rsd)
		if err != nil {
			return nil, err
		}
		a.hll = h
		a.result = batch.Long
	case CollectList, CollectSet:
		if !scalar {
			return bad()
		}
		// Spark's Collect: ArrayType(child.dataType, containsNull = false).
		a.result, a.array = batch.ArrayOf(in, false), true
	default:
		return nil, fmt.Errorf("unknown aggregate function %d", spec.Func)
	}
	return a, nil
}

// Spec returns the call's spec.
func (a *Aggregate) Spec() Spec { return a.spec }

// ResultType is Spark's result type: bigint for count and
// approx_count_distinct, bigint or double for sum, double for avg, the input
// type for min/max/first/last, and array<input> (elements never null) for
// collect_list/collect_set.
func (a *Aggregate) ResultType() batch.Kind { return a.result }

// ResultIsArray reports whether the result is an array (collect_list and
// collect_set): ResultType().Elem() is the element type.
func (a *Aggregate) ResultIsArray() bool { return a.array }

// Nullable reports whether the result can be null (count, approx_count_distinct
// and collect_* never are).
func (a *Aggregate) Nullable() bool {
	switch a.spec.Func {
	case CountStar, Count, ApproxCountDistinct, CollectList, CollectSet:
		return false
	}
	return true
}

// NewAccumulator returns an empty accumulator (the aggregate of no rows).
func (a *Aggregate) NewAccumulator() Accumulator {
	s := a.spec
	switch s.Func {
	case CountStar:
		return &countAcc{star: true}
	case Count:
		return &countAcc{}
	case Sum:
		if a.result == batch.Long {
			return &sumLongAcc{ansi: s.ANSI}
		}
		return &sumDoubleAcc{}
	case Avg:
		return &avgAcc{}
	case Min, Max:
		return &minMaxAcc{kind: s.Input, max: s.Func == Max}
	case First, Last:
		return &firstLastAcc{kind: s.Input, last: s.Func == Last, ignoreNulls: s.IgnoreNulls}
	case ApproxCountDistinct:
		return newHLLAcc(a.hll, s.Input)
	case CollectList, CollectSet:
		c := &collectAcc{kind: s.Input}
		if s.Func == CollectSet {
			c.seen = map[string]struct{}{}
		}
		return c
	}
	panic("unreachable")
}

// Accumulator is one group's running aggregate. Partial aggregation (stage
// 1) Updates accumulators from columns; the exchange ships their state
// (AppendState); stage 2 loads and Merges them with the group's stored
// state and writes it back; Result gives the final value.
//
// Accumulators copy what they keep (String/Binary cells alias Kafka's
// buffers). They are not safe for concurrent use.
type Accumulator interface {
	// Update folds in col's cells at the rows in sel, in order (sel nil: all
	// rows). count(*) reads only the column's length, so any column — even
	// &batch.Column{Type: batch.Null, Len: n} — will do.
	Update(col *batch.Column, sel []int32) error
	// Merge folds in another accumulator of the same Aggregate, as if its
	// rows came after this one's.
	Merge(other Accumulator) error
	// Result is the aggregate's value as batch.Column.Value returns cells:
	// nil, bool, int64 (also Date and Timestamp), float64, string, []byte;
	// collect_* return []any of those (never nil).
	Result() any
	// AppendResult appends Result to a column of ResultType (for
	// collect_*, one array cell).
	AppendResult(col *batch.Column) error
	// AppendState appends the accumulator's state in a compact binary form.
	AppendState(dst []byte) []byte
	// LoadState replaces the accumulator's state with one from AppendState
	// (of an accumulator of the same Aggregate).
	LoadState(b []byte) error
	// Size estimates the accumulator's memory in bytes, for state accounting.
	Size() int64
}

func rows(col *batch.Column, sel []int32, fn func(i int)) {
	if sel == nil {
		for i := 0; i < col.Len; i++ {
			fn(i)
		}
		return
	}
	for _, i := range sel {
		fn(int(i))
	}
}

func mismatch(a, b Accumulator) error {
	return fmt.Errorf("aggregate: cannot merge %T into %T", b, a)
}

// appendResultValue appends a scalar Go value to col.
func appendResultValue(col *batch.Column, v any) error {
	switch x := v.(type) {
	case nil:
		col.AppendNull()
	case bool:
		col.AppendBool(x)
	case int64:
		col.AppendInt(x)
	case float64:
		col.AppendFloat(x)
	case string:
		col.AppendBytes([]byte(x))
	case []byte:
		col.AppendBytes(x)
	default:
		return fmt.Errorf("aggregate: cannot append %T", v)
	}
	return nil
}

// normalizeDouble maps every NaN to one NaN and -0.0 to 0.0, as Spark
// normalizes floating-point values before grouping and hashing.
func normalizeDouble(f float64) float64 {
	if f != f {
		return math.NaN()
	}
	if f == 0 {
		return 0
	}
	return f
}

// AppendStates appends the states of a group's accumulators, each prefixed
// with its uvarint length: one state-store value per group.
func AppendStates(dst []byte, accs []Accumulator) []byte {
	var scratch []byte
	for _, a := range accs {
		scratch = a.AppendState(scratch[:0])
		dst = binary.AppendUvarint(dst, uint64(len(scratch)))
		dst = append(dst, scratch...)
	}
	return dst
}

// LoadStates loads what AppendStates wrote into accs (which must come from
// the same Aggregates in the same order).
func LoadStates(b []byte, accs []Accumulator) error {
	for i, a := range accs {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("aggregate: state of aggregate %d is truncated", i)
		}
		if err := a.LoadState(b[k : k+int(n)]); err != nil {
			return fmt.Errorf("aggregate %d: %w", i, err)
		}
		b = b[k+int(n):]
	}
	if len(b) != 0 {
		return fmt.Errorf("aggregate: %d bytes after the last aggregate's state", len(b))
	}
	return nil
}
