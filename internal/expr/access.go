package expr

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/batch"
)

// This file holds the expressions that build and take apart nested
// values: field access (o.amount), subscripts (xs[0], m['k']), struct(),
// named_struct(), array(), size() and element_at().

// field compiles `X.name`.
func (c *compiler) field(n *Field) (cexpr, error) {
	if id, ok := n.X.(*Ident); ok && c.in.Index(id.Name) < 0 {
		if full := id.Name + "." + n.Name; c.in.Index(full) >= 0 {
			return cexpr{}, errAt(id.At, "cannot resolve column %s; to read the column named %s, back-quote it: %s",
				quoteIdent(id.Name, true), full, quoteIdent(full, true))
		}
	}
	x, err := c.compile(n.X)
	if err != nil {
		return cexpr{}, err
	}
	return extractField(x, n.Name, n.At)
}

// extractField is Spark's ExtractValue with a field name: a struct's
// field (GetStructField), the field of every struct of an array
// (GetArrayStructFields), or a map's value for that key (GetMapValue).
func extractField(x cexpr, name string, pos int) (cexpr, error) {
	k := x.kind()
	sql := x.sql + "." + batch.QuoteIdentIfNeeded(name)
	switch k.Class() {
	case batch.Struct:
		i, err := fieldIndex(k, name, x.sql, pos)
		if err != nil {
			return cexpr{}, err
		}
		f := k.Fields()[i]
		return cexpr{ev: &getField{x: x.ev, i: i, k: f.Type, null: x.ev.nullable() || f.Nullable}, sql: sql, name: f.Name}, nil
	case batch.Array:
		if k.Elem().Class() == batch.Struct {
			i, err := fieldIndex(k.Elem(), name, x.sql, pos)
			if err != nil {
				return cexpr{}, err
			}
			f := k.Elem().Fields()[i]
			out := batch.ArrayOf(f.Type, k.ContainsNull() || f.Nullable)
			return cexpr{ev: &getArrayField{x: x.ev, i: i, k: out}, sql: sql, name: f.Name}, nil
		}
	case batch.Map:
		key := cexpr{ev: &literal{k: batch.String, v: name}, sql: name, lit: &Literal{Type: batch.String, Value: name}}
		return mapLookup(x, key, pos, sql)
	}
	return cexpr{}, errAt(pos, "[INVALID_EXTRACT_BASE_FIELD_TYPE] Can't extract a value from %q. Need a complex type [STRUCT, ARRAY, MAP] but got %q.",
		x.sql, k.SQL())
}

// fieldIndex finds a struct field by name as Spark resolves it: exactly,
// then case-insensitively (an ambiguous case-insensitive match is an
// error, as in Spark).
func fieldIndex(k batch.Kind, name, of string, pos int) (int, error) {
	fs := k.Fields()
	for i, f := range fs {
		if f.Name == name {
			return i, nil
		}
	}
	found := -1
	for i, f := range fs {
		if strings.EqualFold(f.Name, name) {
			if found >= 0 {
				return -1, errAt(pos, "[AMBIGUOUS_REFERENCE_TO_FIELDS] Ambiguous reference to the field %s. It appears %d times in the schema of %s.",
					quoteIdent(name, true), countFold(fs, name), of)
			}
			found = i
		}
	}
	if found < 0 {
		names := make([]string, len(fs))
		for i, f := range fs {
			names[i] = quoteIdent(f.Name, true)
		}
		return -1, errAt(pos, "[FIELD_NOT_FOUND] No such struct field %s in %s.", quoteIdent(name, true), strings.Join(names, ", "))
	}
	return found, nil
}

func countFold(fs []batch.Field, name string) int {
	n := 0
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			n++
		}
	}
	return n
}

// subscript compiles `X[key]`.
func (c *compiler) subscript(n *Subscript) (cexpr, error) {
	x, err := c.compile(n.X)
	if err != nil {
		return cexpr{}, err
	}
	key, err := c.compile(n.Key)
	if err != nil {
		return cexpr{}, err
	}
	sql := x.sql + "[" + key.sql + "]"
	switch x.kind().Class() {
	case batch.Array:
		if k := key.kind(); !k.IsNumeric() && k != batch.Null && k != batch.String || k == batch.Double {
			return cexpr{}, errAt(n.Key.Pos(), "an array subscript must be an integer, but %s is %s", key.sql, k)
		}
		return cexpr{ev: &arrayItem{x: x.ev, i: coerce(key, batch.Int).ev, k: x.kind().Elem(), sql: sql}, sql: sql}, nil
	case batch.Map:
		return mapLookup(x, key, n.At, sql)
	case batch.Struct:
		if key.lit == nil {
			return cexpr{}, errAt(n.Key.Pos(), "[INVALID_EXTRACT_FIELD_TYPE] Field name should be a non-null string literal, but it's %s.", key.sql)
		}
		s, ok := key.lit.Value.(string)
		if !ok {
			return cexpr{}, errAt(n.Key.Pos(), "[INVALID_EXTRACT_FIELD_TYPE] Field name should be a non-null string literal, but it's %s.", key.sql)
		}
		return extractField(x, s, n.Key.Pos())
	}
	return cexpr{}, errAt(n.At, "[INVALID_EXTRACT_BASE_FIELD_TYPE] Can't extract a value from %q. Need a complex type [STRUCT, ARRAY, MAP] but got %q.",
		x.sql, x.kind().SQL())
}

// mapLookup compiles m[key]: the value of the first entry whose key equals
// key, or null.
func mapLookup(m, key cexpr, pos int, sql string) (cexpr, error) {
	kt := m.kind().KeyType()
	if _, ok := comparisonType(kt, key.kind()); !ok {
		return cexpr{}, errAt(pos, "a key of %s (%s) cannot be looked up with %s (%s)", m.sql, m.kind(), key.sql, key.kind())
	}
	return cexpr{ev: &mapValue{m: m.ev, key: coerce(key, kt).ev, k: m.kind().ValueType()}, sql: sql}, nil
}

// getField is GetStructField: field i of a struct column.
type getField struct {
	x    evaluator
	i    int
	k    batch.Kind
	null bool
}

func (e *getField) kind() batch.Kind { return e.k }
func (e *getField) nullable() bool   { return e.null }
func (e *getField) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	if x.Type == batch.Null {
		return nullCol(e.k, b.N), nil
	}
	return maskNulls(x.Children[e.i], x), nil
}

// maskNulls returns c with the null cells of parent (a struct or array
// whose child c is, row for row) made null too. c is returned as is when
// the parent has no nulls; otherwise only the column header and, for flat
// kinds, the value slice (whose null slots must be zero) are copied.
func maskNulls(c, parent *batch.Column) *batch.Column {
	if parent.Valid == nil {
		return c
	}
	out := *c
	out.Valid = andValid(c.Len, c, parent)
	switch {
	case c.Type.IsNested() || c.Type == batch.Null:
	case c.Bools != nil:
		out.Bools = append([]bool(nil), c.Bools...)
	case c.Ints != nil:
		out.Ints = append([]int64(nil), c.Ints...)
	case c.Floats != nil:
		out.Floats = append([]float64(nil), c.Floats...)
	case c.Bytes != nil:
		out.Bytes = append([][]byte(nil), c.Bytes...)
	}
	zeroNulls(&out)
	return &out
}

// getArrayField is GetArrayStructFields: field i of every struct of an
// array, as an array (a null struct gives a null element).
type getArrayField struct {
	x evaluator
	i int
	k batch.Kind
}

func (e *getArrayField) kind() batch.Kind { return e.k }
func (e *getArrayField) nullable() bool   { return e.x.nullable() }
func (e *getArrayField) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	if x.Type == batch.Null {
		return nullCol(e.k, b.N), nil
	}
	elems := x.Children[0]
	return &batch.Column{Type: e.k, Valid: x.Valid, Offsets: x.Offsets, Len: x.Len,
		Children: []*batch.Column{maskNulls(elems.Children[e.i], elems)}}, nil
}

// arrayItem is GetArrayItem: x[i], 0-based; an index out of range is NULL
// (Spark's non-ANSI mode) or, with ANSI on, INVALID_ARRAY_INDEX.
type arrayItem struct {
	x, i evaluator
	k    batch.Kind
	sql  string
}

func (e *arrayItem) kind() batch.Kind { return e.k }
func (e *arrayItem) nullable() bool   { return true }
func (e *arrayItem) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	idx, err := e.i.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	out := batch.NewColumn(e.k, b.N)
	for r := 0; r < b.N; r++ {
		if isNullAt(x, r) || isNullAt(idx, r) {
			out.AppendNull()
			continue
		}
		from, to := x.Range(r)
		i := idx.Ints[r]
		if i < 0 || i >= int64(to-from) {
			if ctx != nil && ctx.ANSI {
				reason := fmt.Sprintf("[INVALID_ARRAY_INDEX] The index %d is out of bounds. The array has %d elements. "+
					"Use the SQL function `get()` to tolerate accessing element at invalid index and return NULL instead. (in %s)", i, to-from, e.sql)
				if ctx.RowErrors == nil {
					return nil, fmt.Errorf("%s", reason)
				}
				ctx.RowErrors.Add(r, reason)
			}
			out.AppendNull()
			continue
		}
		out.AppendFrom(x.Children[0], from+int(i))
	}
	return out, nil
}

// mapValue is GetMapValue: the value of the first entry whose key equals
// the key, or NULL.
type mapValue struct {
	m, key evaluator
	k      batch.Kind
}

func (e *mapValue) kind() batch.Kind { return e.k }
func (e *mapValue) nullable() bool   { return true }
func (e *mapValue) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	m, err := e.m.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	key, err := e.key.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	out := batch.NewColumn(e.k, b.N)
	for r := 0; r < b.N; r++ {
		if isNullAt(m, r) || isNullAt(key, r) {
			out.AppendNull()
			continue
		}
		from, to := m.Range(r)
		found := -1
		for j := from; j < to; j++ {
			if compareCells(m.Children[0], j, key, r) == 0 {
				found = j
				break
			}
		}
		if found < 0 {
			out.AppendNull()
			continue
		}
		out.AppendFrom(m.Children[1], found)
	}
	return out, nil
}

// ---- constructors ----

// structEval is CreateNamedStruct: its fields are the argument columns,
// shared, never null itself.
type structEval struct {
	args []evaluator
	k    batch.Kind
}

func (e *structEval) kind() batch.Kind { return e.k }
func (e *structEval) nullable() bool   { return false }
func (e *structEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	out := &batch.Column{Type: e.k, Len: b.N, Children: make([]*batch.Column, len(e.args))}
	for i, a := range e.args {
		c, err := a.eval(b, ctx)
		if err != nil {
			return nil, err
		}
		out.Children[i] = c
	}
	return out, nil
}

// buildStruct is struct(expr [AS name], ...): field names from aliases,
// column names (the last part of a field access) or col1, col2, ….
func buildStruct(_ string, args []cexpr, call *Call) (cexpr, error) {
	fields := make([]batch.Field, len(args))
	parts := make([]string, len(args))
	for i, a := range args {
		name := ""
		if al, ok := call.Args[i].(*Alias); ok {
			name = al.Name
		}
		alias := name
		switch {
		case name != "":
		case a.col != "":
			name = a.col
		case a.name != "":
			name = a.name
		default:
			name = fmt.Sprintf("col%d", i+1)
		}
		fields[i] = batch.Field{Name: name, Type: a.kind(), Nullable: a.ev.nullable()}
		parts[i] = a.sql
		if alias != "" {
			parts[i] += " AS " + quoteIdent(alias, false)
		}
	}
	return cexpr{ev: &structEval{args: evs(args), k: batch.StructOf(fields...)}, sql: "struct(" + strings.Join(parts, ", ") + ")"}, nil
}

// buildNamedStruct is named_struct(name1, value1, ...): the names must be
// string literals.
func buildNamedStruct(name string, args []cexpr, call *Call) (cexpr, error) {
	if len(args)%2 != 0 {
		return cexpr{}, errAt(call.At, "[WRONG_NUM_ARGS.WITHOUT_SUGGESTION] The `named_struct` requires an even number of arguments (name, value pairs), but %d were given.", len(args))
	}
	var fields []batch.Field
	var vals []evaluator
	for i := 0; i < len(args); i += 2 {
		n := args[i]
		s, ok := "", false
		if n.lit != nil {
			s, ok = n.lit.Value.(string)
		}
		if !ok {
			return cexpr{}, errAt(n.pos, "[DATATYPE_MISMATCH.CREATE_NAMED_STRUCT_WITHOUT_FOLDABLE_STRING] Only foldable STRING expressions are allowed to appear at odd position, but %s is not.", n.sql)
		}
		v := args[i+1]
		fields = append(fields, batch.Field{Name: s, Type: v.kind(), Nullable: v.ev.nullable()})
		vals = append(vals, v.ev)
	}
	return cexpr{ev: &structEval{args: vals, k: batch.StructOf(fields...)}}, nil
}

// arrayEval is CreateArray: row i's elements are the arguments' cells of
// row i, in order.
type arrayEval struct {
	args []evaluator
	k    batch.Kind
}

func (e *arrayEval) kind() batch.Kind { return e.k }
func (e *arrayEval) nullable() bool   { return false }
func (e *arrayEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	cols := make([]*batch.Column, len(e.args))
	for i, a := range e.args {
		c, err := a.eval(b, ctx)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	out := batch.NewColumn(e.k, b.N)
	elems := out.Children[0]
	for r := 0; r < b.N; r++ {
		for _, c := range cols {
			elems.AppendFrom(c, r)
		}
		out.AppendArray()
	}
	return out, nil
}

// buildArray is array(expr, ...): the elements widened to their common
// type; containsNull when any argument is nullable.
func buildArray(name string, args []cexpr, _ *Call) (cexpr, error) {
	k, err := unify(args, name+"() arguments")
	if err != nil {
		return cexpr{}, err
	}
	null := false
	for i := range args {
		args[i] = coerce(args[i], k)
		null = null || args[i].ev.nullable()
	}
	return cexpr{ev: &arrayEval{args: evs(args), k: batch.ArrayOf(k, null)}}, nil
}

// buildSize is size(array or map): the number of elements; size(NULL) is
// -1 as in Spark's default (spark.sql.legacy.sizeOfNull) unless ANSI mode
// is on, where it is NULL.
func buildSize(name string, args []cexpr, _ *Call) (cexpr, error) {
	a := args[0]
	if c := a.kind().Class(); c != batch.Array && c != batch.Map && a.kind() != batch.Null {
		return cexpr{}, argErr(name, 0, a, "an array or a map")
	}
	return cexpr{ev: &fnEval{k: batch.Int, args: evs(args), null: true, run: func(n int, cols []*batch.Column, ctx *EvalContext) (*batch.Column, error) {
		x := cols[0]
		out := newCol(batch.Int, n)
		ansi := ctx != nil && ctx.ANSI
		for i := 0; i < n; i++ {
			if isNullAt(x, i) {
				if ansi {
					setNull(out, i)
				} else {
					out.Ints[i] = -1
				}
				continue
			}
			from, to := x.Range(i)
			out.Ints[i] = int64(to - from)
		}
		return out, nil
	}}}, nil
}

// buildElementAt is element_at(array, index) — 1-based, negative counting
// from the end, 0 an error, out of range NULL — and element_at(map, key).
func buildElementAt(name string, args []cexpr, call *Call) (cexpr, error) {
	x, key := args[0], args[1]
	sql := callSQL(name, args)
	switch x.kind().Class() {
	case batch.Map:
		return mapLookup(x, key, call.At, sql)
	case batch.Array:
	default:
		return cexpr{}, argErr(name, 0, x, "an array or a map")
	}
	if k := key.kind(); (!k.IsNumeric() || k == batch.Double) && k != batch.Null {
		return cexpr{}, argErr(name, 1, key, "an integer")
	}
	elem := x.kind().Elem()
	return cexpr{ev: &fnEval{k: elem, args: []evaluator{x.ev, coerce(key, batch.Int).ev}, null: true,
		run: func(n int, cols []*batch.Column, ctx *EvalContext) (*batch.Column, error) {
			arr, idx := cols[0], cols[1]
			out := batch.NewColumn(elem, n)
			for r := 0; r < n; r++ {
				if isNullAt(arr, r) || isNullAt(idx, r) {
					out.AppendNull()
					continue
				}
				i := idx.Ints[r]
				if i == 0 {
					return nil, fmt.Errorf("[INVALID_INDEX_OF_ZERO] The index 0 is invalid. An index shall be either < 0 or > 0 (the first element has index 1). (in %s)", sql)
				}
				from, to := arr.Range(r)
				l := int64(to - from)
				if i < 0 {
					i += l
				} else {
					i--
				}
				if i < 0 || i >= l {
					if ctx != nil && ctx.ANSI {
						reason := fmt.Sprintf("[INVALID_ARRAY_INDEX_IN_ELEMENT_AT] The index %d is out of bounds. The array has %d elements. "+
							"Use `try_element_at` to tolerate accessing element at invalid index and return NULL instead. (in %s)", idx.Ints[r], l, sql)
						if ctx.RowErrors == nil {
							return nil, fmt.Errorf("%s", reason)
						}
						ctx.RowErrors.Add(r, reason)
					}
					out.AppendNull()
					continue
				}
				out.AppendFrom(arr.Children[0], from+int(i))
			}
			return out, nil
		}}, sql: sql}, nil
}
