package expr

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/batch"
)

// funcSpec describes a built-in function: its arity (max < 0 means
// variadic), a builder that type-checks the compiled arguments, and its
// documentation (signature and one line), which `sluice functions` and the
// reference print.
type funcSpec struct {
	min, max int
	build    func(name string, args []cexpr, call *Call) (cexpr, error)
	sig, doc string
}

// functions is the registry of built-in functions by lower-case name.
var functions map[string]funcSpec

func init() {
	functions = map[string]funcSpec{
		// Date and time.
		"current_timestamp": {0, 0, buildNow(false), "current_timestamp()", "The batch's timestamp (the same for every row of a batch, and on replay)."},
		"now":               {0, 0, buildNow(false), "now()", "Alias of current_timestamp()."},
		"current_date":      {0, 0, buildNow(true), "current_date()", "The batch's date in UTC."},
		"curdate":           {0, 0, buildNow(true), "curdate()", "Alias of current_date()."},
		"to_date":           {1, 1, buildConvert(batch.Date), "to_date(expr)", "Casts a string or timestamp to a date."},
		"to_timestamp":      {1, 2, buildToTimestamp, "to_timestamp(expr[, fmt])", "A string parsed with the datetime pattern fmt (NULL if it does not match), or without fmt cast to a timestamp."},
		"year":              {1, 1, buildField(fieldYear), "year(date_or_timestamp)", "The year, in UTC."},
		"month":             {1, 1, buildField(fieldMonth), "month(date_or_timestamp)", "The month, 1–12."},
		"day":               {1, 1, buildField(fieldDay), "day(date_or_timestamp)", "The day of the month, 1–31."},
		"dayofmonth":        {1, 1, buildField(fieldDay), "dayofmonth(date_or_timestamp)", "Alias of day()."},
		"hour":              {1, 1, buildField(fieldHour), "hour(timestamp)", "The hour, 0–23, in UTC."},
		"minute":            {1, 1, buildField(fieldMinute), "minute(timestamp)", "The minute, 0–59."},
		"second":            {1, 1, buildField(fieldSecond), "second(timestamp)", "The second, 0–59."},
		"unix_timestamp":    {0, 2, buildUnixTimestamp, "unix_timestamp([timestamp | str[, fmt]])", "Seconds since the epoch of a timestamp, of a string parsed with fmt (default yyyy-MM-dd HH:mm:ss), or of the batch's timestamp."},
		"window":            {2, 4, buildWindow, "window(time, windowDuration[, slideDuration[, startTime]])", "The time window of the row, struct<start,end>, as in Spark; sliding windows are grouping keys (see docs/expressions.md)."},
		"session_window":    {2, 2, buildWindow, "session_window(time, gapDuration)", "The row's initial session window [time, time + gap); sessions of a key that overlap or touch merge in the aggregation. gapDuration is an interval string, or a string expression computed per row (a NULL, invalid or non-positive gap: no session)."},
		"window_time":       {1, 1, buildWindowTime, "window_time(window)", "The event time of a window: its end minus one microsecond."},

		// JSON.
		"from_json":       {2, 3, buildFromJSON, "from_json(json, schema[, options])", "The JSON text parsed into the schema (DDL such as 'a INT, b STRING', or 'array<…>'/'map<string,…>'); PERMISSIVE by default, map('mode', 'FAILFAST') to fail on bad records."},
		"to_json":         {1, 2, buildToJSON, "to_json(struct_array_or_map)", "The value as JSON text, as Spark writes it."},
		"get_json_object": {2, 2, buildGetJSONObject, "get_json_object(json, path)", "The value at a JSONPath ($.a.b, $.a[0], $.a[*].b), NULL when absent or the JSON is invalid."},

		// Nested values.
		"struct":            {0, -1, buildStruct, "struct(expr [AS name], ...)", "A struct of the arguments; fields are named after aliases, columns and fields, else col1, col2, …."},
		"named_struct":      {0, -1, buildNamedStruct, "named_struct(name1, value1, ...)", "A struct with the given field names (string literals) and values."},
		"array":             {0, -1, buildArray, "array(expr, ...)", "An array of the arguments, widened to their common type."},
		"size":              {1, 1, buildSize, "size(array_or_map)", "The number of elements; -1 for NULL (NULL in ANSI mode)."},
		"cardinality":       {1, 1, buildSize, "cardinality(array_or_map)", "Alias of size()."},
		"map":               {0, -1, buildMap, "map(key1, value1, ...)", "A map of the key/value pairs (keys not NULL and distinct)."},
		"element_at":        {2, 2, buildElementAt, "element_at(array, index) | element_at(map, key)", "The element at a 1-based index (negative counts from the end), or the map's value for key; NULL when absent."},
		"unix_seconds":      {1, 1, buildUnix(microsPerSecond), "unix_seconds(timestamp)", "Seconds since the epoch."},
		"unix_millis":       {1, 1, buildUnix(1000), "unix_millis(timestamp)", "Milliseconds since the epoch."},
		"unix_micros":       {1, 1, buildUnix(1), "unix_micros(timestamp)", "Microseconds since the epoch."},
		"timestamp_seconds": {1, 1, buildFromUnix(microsPerSecond), "timestamp_seconds(n)", "The timestamp n seconds after the epoch."},
		"timestamp_millis":  {1, 1, buildFromUnix(1000), "timestamp_millis(n)", "The timestamp n milliseconds after the epoch."},
		"timestamp_micros":  {1, 1, buildFromUnix(1), "timestamp_micros(n)", "The timestamp n microseconds after the epoch."},

		// Strings.
		"upper":            {1, 1, buildCaseMap(true), "upper(str)", "The string in upper case."},
		"ucase":            {1, 1, buildCaseMap(true), "ucase(str)", "Alias of upper()."},
		"lower":            {1, 1, buildCaseMap(false), "lower(str)", "The string in lower case."},
		"lcase":            {1, 1, buildCaseMap(false), "lcase(str)", "Alias of lower()."},
		"length":           {1, 1, buildLength(false), "length(str_or_binary)", "Characters of a string, bytes of a binary."},
		"char_length":      {1, 1, buildLength(false), "char_length(str)", "Alias of length()."},
		"character_length": {1, 1, buildLength(false), "character_length(str)", "Alias of length()."},
		"octet_length":     {1, 1, buildLength(true), "octet_length(str_or_binary)", "Bytes of the value."},
		"substring":        {2, 3, buildSubstring, "substring(str, pos[, len])", "len characters from position pos (1-based; negative counts from the end)."},
		"substr":           {2, 3, buildSubstring, "substr(str, pos[, len])", "Alias of substring()."},
		"concat":           {0, -1, func(name string, args []cexpr, c *Call) (cexpr, error) { return concatExprs(name, args, c.At) }, "concat(str, ...)", "The strings joined; NULL if any is NULL."},
		"concat_ws":        {1, -1, buildConcatWS, "concat_ws(sep, str, ...)", "The strings joined with sep, skipping NULLs."},
		"trim":             {1, 1, buildTrim(true, true), "trim(str)", "The string without leading and trailing spaces."},
		"ltrim":            {1, 1, buildTrim(true, false), "ltrim(str)", "The string without leading spaces."},
		"rtrim":            {1, 1, buildTrim(false, true), "rtrim(str)", "The string without trailing spaces."},
		"replace":          {2, 3, buildReplace, "replace(str, search[, replacement])", "Every occurrence of search replaced (removed without a replacement)."},
		"contains":         {2, 2, buildMatch(matchContains), "contains(str, sub)", "Whether str contains sub."},
		"startswith":       {2, 2, buildMatch(matchPrefix), "startswith(str, prefix)", "Whether str starts with prefix."},
		"endswith":         {2, 2, buildMatch(matchSuffix), "endswith(str, suffix)", "Whether str ends with suffix."},

		// Conditionals and nulls.
		"coalesce":  {1, -1, buildCoalesce, "coalesce(expr, ...)", "The first argument that is not NULL."},
		"nvl":       {2, 2, buildCoalesce, "nvl(expr, default)", "expr, or default when expr is NULL."},
		"ifnull":    {2, 2, buildCoalesce, "ifnull(expr, default)", "Alias of nvl()."},
		"nullif":    {2, 2, buildNullIf, "nullif(a, b)", "NULL when a = b, else a."},
		"if":        {3, 3, buildIf, "if(cond, then, else)", "then when cond is true, else otherwise."},
		"isnull":    {1, 1, buildIsNull(false), "isnull(expr)", "Whether expr is NULL."},
		"isnotnull": {1, 1, buildIsNull(true), "isnotnull(expr)", "Whether expr is not NULL."},
		"typeof":    {1, 1, buildTypeof, "typeof(expr)", "The type of expr, as Spark names it."},

		// Math.
		"abs":     {1, 1, buildAbs, "abs(n)", "The absolute value."},
		"round":   {1, 2, buildRound, "round(n[, scale])", "n rounded half up to scale decimal places (default 0)."},
		"floor":   {1, 1, buildFloorCeil(math.Floor), "floor(n)", "The largest integer not above n."},
		"ceil":    {1, 1, buildFloorCeil(math.Ceil), "ceil(n)", "The smallest integer not below n."},
		"ceiling": {1, 1, buildFloorCeil(math.Ceil), "ceiling(n)", "Alias of ceil()."},
	}
}

// FunctionDoc documents one built-in function.
type FunctionDoc struct {
	// Name is the function's name, lower case.
	Name string
	// Signature shows its arguments, optional ones in brackets.
	Signature string
	// Description is one line.
	Description string
}

// Functions documents the built-in functions, sorted by name: the list
// `sluice functions` and the reference show, taken from the table the
// compiler uses.
func Functions() []FunctionDoc {
	out := make([]FunctionDoc, 0, len(functions)+len(aggregateDocs))
	for n, f := range functions {
		out = append(out, FunctionDoc{Name: n, Signature: f.sig, Description: f.doc})
	}
	for n, d := range aggregateDocs {
		out = append(out, FunctionDoc{Name: n, Signature: d[0], Description: d[1]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FunctionNames lists the built-in functions, sorted, for documentation
// and completion.
func FunctionNames() []string {
	out := make([]string, 0, len(functions)+len(aggregateDocs))
	for n := range functions {
		out = append(out, n)
	}
	for n := range aggregateDocs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// fnEval is a built-in function over fully evaluated argument columns.
type fnEval struct {
	k    batch.Kind
	args []evaluator
	null bool
	run  func(n int, cols []*batch.Column, ctx *EvalContext) (*batch.Column, error)
}

func (e *fnEval) kind() batch.Kind { return e.k }
func (e *fnEval) nullable() bool   { return e.null }
func (e *fnEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	cols := make([]*batch.Column, len(e.args))
	for i, a := range e.args {
		c, err := a.eval(b, ctx)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return e.run(b.N, cols, ctx)
}

func evs(args []cexpr) []evaluator {
	out := make([]evaluator, len(args))
	for i, a := range args {
		out[i] = a.ev
	}
	return out
}

func anyNullable(args []cexpr) bool {
	for _, a := range args {
		if a.ev.nullable() {
			return true
		}
	}
	return false
}

// argErr reports a wrongly typed function argument.
func argErr(name string, i int, a cexpr, want string) error {
	return errAt(a.pos, "%s() argument %d must be %s, but %s is %s", name, i+1, want, a.sql, a.kind())
}

// stringArg coerces an argument to STRING; every atomic kind converts
// implicitly, as in Spark.
func stringArg(name string, i int, a cexpr) (cexpr, error) {
	if a.kind().IsNested() {
		return cexpr{}, argErr(name, i, a, "a string")
	}
	return coerce(a, batch.String), nil
}

// bytesArg keeps STRING and BINARY arguments as they are and coerces other
// atomic kinds to STRING.
func bytesArg(name string, i int, a cexpr) (cexpr, error) {
	if k := a.kind(); k == batch.Binary || k == batch.String {
		return a, nil
	}
	return stringArg(name, i, a)
}

// intArg coerces a numeric or string argument to INT.
func intArg(name string, i int, a cexpr) (cexpr, error) {
	switch k := a.kind(); {
	case k.IsNumeric(), k == batch.String, k == batch.Null:
		return coerce(a, batch.Int), nil
	}
	return cexpr{}, argErr(name, i, a, "an integer")
}

// numericArg accepts numbers, casting strings to DOUBLE.
func numericArg(name string, i int, a cexpr) (cexpr, error) {
	switch k := a.kind(); {
	case k.IsNumeric():
		return a, nil
	case k == batch.String, k == batch.Null:
		return coerce(a, batch.Double), nil
	}
	return cexpr{}, argErr(name, i, a, "numeric")
}

// rowwise builds a column of kind k by calling f for every row on which no
// argument is null; f returns false to make the row null.
func rowwise(k batch.Kind, n int, cols []*batch.Column, f func(i int, out *batch.Column) bool) *batch.Column {
	out := newCol(k, n)
	out.Valid = andValid(n, cols...)
	for i := 0; i < n; i++ {
		if out.Valid != nil && !out.Valid[i] {
			continue
		}
		if !f(i, out) {
			setNull(out, i)
		}
	}
	zeroNulls(out)
	return out
}

func buildTypeof(_ string, args []cexpr, _ *Call) (cexpr, error) {
	name := args[0].kind().String()
	return cexpr{ev: &literal{k: batch.String, v: name}}, nil
}

func buildIsNull(not bool) func(string, []cexpr, *Call) (cexpr, error) {
	return func(_ string, args []cexpr, _ *Call) (cexpr, error) {
		sql := "(" + args[0].sql + " IS NULL)"
		if not {
			sql = "(" + args[0].sql + " IS NOT NULL)"
		}
		return cexpr{ev: &isNull{x: args[0].ev, not: not}, sql: sql}, nil
	}
}

func buildCoalesce(name string, args []cexpr, _ *Call) (cexpr, error) {
	k, err := unify(args, name+"() arguments")
	if err != nil {
		return cexpr{}, err
	}
	null := true
	for i := range args {
		args[i] = coerce(args[i], k)
		if !args[i].ev.nullable() {
			null = false
		}
	}
	return cexpr{ev: &fnEval{k: k, args: evs(args), null: null, run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
		if !cols[0].HasNulls() {
			return cols[0], nil
		}
		choice := fill(n, -1)
		for i := range choice {
			for j, c := range cols {
				if !isNullAt(c, i) {
					choice[i] = j
					break
				}
			}
		}
		return pick(k, n, choice, cols), nil
	}}}, nil
}

func buildNullIf(name string, args []cexpr, c *Call) (cexpr, error) {
	eq, err := comparison("=", args[0], args[1], c.At)
	if err != nil {
		return cexpr{}, err
	}
	k := args[0].kind()
	return cexpr{ev: &fnEval{k: k, args: []evaluator{eq.ev, args[0].ev}, null: true,
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			choice := make([]int, n)
			for i := range choice {
				if !isNullAt(cols[0], i) && cols[0].Bools[i] {
					choice[i] = -1
				} else {
					choice[i] = 1
				}
			}
			return pick(k, n, choice, cols), nil
		}}}, nil
}

func buildIf(name string, args []cexpr, c *Call) (cexpr, error) {
	if k := args[0].kind(); k != batch.Boolean && k != batch.Null {
		return cexpr{}, argErr(name, 0, args[0], "boolean")
	}
	cond := coerce(args[0], batch.Boolean)
	k, err := unify(args[1:], "if() branches")
	if err != nil {
		return cexpr{}, err
	}
	a, b := coerce(args[1], k), coerce(args[2], k)
	ce := &caseEval{conds: []evaluator{cond.ev}, vals: []evaluator{a.ev}, els: b.ev, k: k}
	sql := "(IF(" + cond.sql + ", " + a.sql + ", " + b.sql + "))"
	return cexpr{ev: ce, sql: sql}, nil
}

func buildAbs(name string, args []cexpr, _ *Call) (cexpr, error) {
	x, err := numericArg(name, 0, args[0])
	if err != nil {
		return cexpr{}, err
	}
	k := x.kind()
	return cexpr{ev: &fnEval{k: k, args: []evaluator{x.ev}, null: x.ev.nullable(),
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			c := cols[0]
			return rowwise(k, n, cols, func(i int, out *batch.Column) bool {
				switch k {
				case batch.Int:
					out.Ints[i] = int64(int32(absInt(c.Ints[i]))) // abs(MinInt32) wraps
				case batch.Long:
					out.Ints[i] = absInt(c.Ints[i])
				case batch.Double:
					out.Floats[i] = math.Abs(c.Floats[i])
				}
				return true
			}), nil
		}}}, nil
}

func absInt(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// buildRound is round(x[, scale]) with HALF_UP rounding; scale must be an
// integer literal. Spark's generated name always shows the scale.
func buildRound(name string, args []cexpr, c *Call) (cexpr, error) {
	x, err := numericArg(name, 0, args[0])
	if err != nil {
		return cexpr{}, err
	}
	scale := int64(0)
	scaleSQL := "0"
	if len(args) == 2 {
		l := args[1].lit
		v, ok := l.valueInt()
		if !ok || !args[1].kind().IsNumeric() || args[1].kind() == batch.Double {
			return cexpr{}, errAt(args[1].pos, "%s() scale must be an integer literal, got %s", name, args[1].sql)
		}
		scale, scaleSQL = v, args[1].sql
	}
	k := x.kind()
	sql := name + "(" + x.sql + ", " + scaleSQL + ")"
	return cexpr{sql: sql, ev: &fnEval{k: k, args: []evaluator{x.ev}, null: x.ev.nullable(),
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			src := cols[0]
			return rowwise(k, n, cols, func(i int, out *batch.Column) bool {
				if k == batch.Double {
					out.Floats[i] = roundHalfUp(src.Floats[i], int(scale))
					return true
				}
				v := roundIntHalfUp(src.Ints[i], scale)
				if k == batch.Int {
					v = int64(int32(v))
				}
				out.Ints[i] = v
				return true
			}), nil
		}}}, nil
}

// valueInt returns an integer literal's value.
func (l *Literal) valueInt() (int64, bool) {
	if l == nil {
		return 0, false
	}
	v, ok := l.Value.(int64)
	return v, ok
}

// roundIntHalfUp rounds v to a multiple of 10^-scale when scale < 0.
func roundIntHalfUp(v, scale int64) int64 {
	if scale >= 0 {
		return v
	}
	if scale < -18 {
		return 0
	}
	p := int64(math.Pow10(int(-scale)))
	q, r := v/p, v%p
	if absInt(r)*2 >= p {
		if v < 0 {
			q--
		} else {
			q++
		}
	}
	return q * p
}

// roundHalfUp rounds v to scale decimal places, rounding halves away from
// zero, on v's shortest decimal representation (as Spark does via
// BigDecimal(Double.toString)), so round(2.675, 2) is 2.68.
func roundHalfUp(v float64, scale int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return v
	}
	s := strconv.FormatFloat(math.Abs(v), 'e', -1, 64) // d.dddde±XX
	ei := strings.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[ei+1:])
	digits := strings.Replace(s[:ei], ".", "", 1)
	point := exp + 1 // digits before the decimal point
	keep := point + scale
	if keep >= len(digits) {
		return v
	}
	if keep < 0 {
		return math.Copysign(0, v)
	}
	mant := []byte(digits[:keep])
	if digits[keep] >= '5' {
		j := len(mant) - 1
		for ; j >= 0; j-- {
			if mant[j] == '9' {
				mant[j] = '0'
				continue
			}
			mant[j]++
			break
		}
		if j < 0 {
			mant = append([]byte{'1'}, mant...)
			point++
		}
	}
	if len(mant) == 0 {
		return math.Copysign(0, v)
	}
	f, _ := strconv.ParseFloat(string(mant)+"e"+strconv.Itoa(point-len(mant)), 64)
	return math.Copysign(f, v)
}

// buildFloorCeil is floor/ceil: BIGINT results, as in Spark.
func buildFloorCeil(f func(float64) float64) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x, err := numericArg(name, 0, args[0])
		if err != nil {
			return cexpr{}, err
		}
		if x.kind() != batch.Double {
			return cexpr{ev: coerce(x, batch.Long).ev}, nil
		}
		return cexpr{ev: &fnEval{k: batch.Long, args: []evaluator{x.ev}, null: x.ev.nullable(),
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				c := cols[0]
				return rowwise(batch.Long, n, cols, func(i int, out *batch.Column) bool {
					out.Ints[i] = saturatingInt(f(c.Floats[i]), math.MinInt64, math.MaxInt64)
					return true
				}), nil
			}}}, nil
	}
}
