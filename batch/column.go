package batch

import (
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// Column is one column of a Batch. Which fields hold the cells depends on
// Type (see Kind); the others are nil. Valid is nil when no cell is null;
// otherwise Valid[i] is false for a null cell. A null cell of a flat kind
// has the zero value in its slot; what a null nested cell's children hold
// is unspecified (AppendNull appends null fields and an empty range, but a
// column derived from another, such as a field of a null struct, may keep
// values there), so readers test a cell's own validity first.
//
// Nested layout:
//
//   - struct: Children[j] holds field j, with exactly Len cells; cell i of
//     the struct is row i of every child.
//   - array: Offsets has Len+1 entries, non-decreasing; the elements of cell
//     i are cells Offsets[i] … Offsets[i+1]-1 of Children[0]. Offsets need
//     not start at 0: a Slice of an array column shares the whole child.
//   - map: as an array, with Children[0] the keys and Children[1] the values
//     (equally long). Keys are never null; entries keep their order and are
//     not deduplicated by the column (the producer decides, as Spark's
//     map builders do).
type Column struct {
	Type     Kind
	Valid    []bool
	Bools    []bool
	Ints     []int64
	Floats   []float64
	Bytes    [][]byte
	Offsets  []int32
	Children []*Column
	// Len is the number of cells. It is authoritative for Null columns,
	// which have no value slice.
	Len int
}

// NewColumn returns an empty column of kind k with capacity for n cells
// (nested kinds get their children, each with capacity n).
func NewColumn(k Kind, n int) *Column {
	c := &Column{Type: k}
	switch k.Class() {
	case Boolean:
		c.Bools = make([]bool, 0, n)
	case Int, Long, Date, Timestamp:
		c.Ints = make([]int64, 0, n)
	case Double:
		c.Floats = make([]float64, 0, n)
	case String, Binary:
		c.Bytes = make([][]byte, 0, n)
	case Struct:
		fs := k.Fields()
		c.Children = make([]*Column, len(fs))
		for i, f := range fs {
			c.Children[i] = NewColumn(f.Type, n)
		}
	case Array:
		c.Offsets = append(make([]int32, 0, n+1), 0)
		c.Children = []*Column{NewColumn(k.Elem(), n)}
	case Map:
		c.Offsets = append(make([]int32, 0, n+1), 0)
		c.Children = []*Column{NewColumn(k.KeyType(), n), NewColumn(k.ValueType(), n)}
	}
	return c
}

// NullColumn returns a column of kind k with n null cells.
func NullColumn(k Kind, n int) *Column {
	c := NewColumn(k, n)
	for i := 0; i < n; i++ {
		c.AppendNull()
	}
	return c
}

// IsNull reports whether cell i is null.
func (c *Column) IsNull(i int) bool {
	if c.Type == Null {
		return true
	}
	return c.Valid != nil && !c.Valid[i]
}

// HasNulls reports whether any cell may be null.
func (c *Column) HasNulls() bool { return c.Type == Null || c.Valid != nil }

func (c *Column) markValid() {
	if c.Valid != nil {
		c.Valid = append(c.Valid, true)
	}
	c.Len++
}

// materializeValid gives c a Valid slice (all true so far).
func (c *Column) materializeValid() {
	if c.Type == Null || c.Valid != nil {
		return
	}
	c.Valid = make([]bool, c.Len, c.Len+16)
	for i := range c.Valid {
		c.Valid[i] = true
	}
}

// AppendNull appends a null cell. A struct appends a null to each child,
// an array or map an empty range.
func (c *Column) AppendNull() {
	if c.Type != Null {
		c.materializeValid()
		c.Valid = append(c.Valid, false)
	}
	switch c.Type.Class() {
	case Boolean:
		c.Bools = append(c.Bools, false)
	case Int, Long, Date, Timestamp:
		c.Ints = append(c.Ints, 0)
	case Double:
		c.Floats = append(c.Floats, 0)
	case String, Binary:
		c.Bytes = append(c.Bytes, nil)
	case Struct:
		for _, ch := range c.Children {
			ch.AppendNull()
		}
	case Array, Map:
		c.ensureOffsets()
		c.Offsets = append(c.Offsets, c.Offsets[len(c.Offsets)-1])
	}
	c.Len++
}

// ensureOffsets gives an array or map column built as a literal
// (&Column{Type: …}) its leading offset.
func (c *Column) ensureOffsets() {
	if len(c.Offsets) == 0 {
		c.Offsets = append(c.Offsets, 0)
	}
}

// AppendBool appends a non-null boolean.
func (c *Column) AppendBool(v bool) { c.Bools = append(c.Bools, v); c.markValid() }

// AppendInt appends a non-null Int, Long, Date or Timestamp value.
func (c *Column) AppendInt(v int64) { c.Ints = append(c.Ints, v); c.markValid() }

// AppendFloat appends a non-null Double.
func (c *Column) AppendFloat(v float64) { c.Floats = append(c.Floats, v); c.markValid() }

// AppendBytes appends a non-null String or Binary value. The slice is
// aliased, not copied. A nil slice appends a null (Kafka's null key).
func (c *Column) AppendBytes(v []byte) {
	if v == nil {
		c.AppendNull()
		return
	}
	c.Bytes = append(c.Bytes, v)
	c.markValid()
}

// AppendStruct appends a non-null struct cell whose field values the
// caller has just appended, one to each of c.Children.
func (c *Column) AppendStruct() { c.markValid() }

// AppendArray appends a non-null array cell whose elements are the cells
// appended to c.Children[0] since the previous cell.
func (c *Column) AppendArray() {
	c.ensureOffsets()
	n := c.Children[0].Len
	if n > math.MaxInt32 {
		panic("batch: more than 2^31-1 elements in one array column")
	}
	c.Offsets = append(c.Offsets, int32(n))
	c.markValid()
}

// AppendMap appends a non-null map cell whose entries are the cells
// appended to c.Children[0] (keys) and c.Children[1] (values) since the
// previous cell.
func (c *Column) AppendMap() { c.AppendArray() }

// Range returns the bounds [from, to) of array or map cell i's elements in
// c.Children (an empty range for a null cell).
func (c *Column) Range(i int) (from, to int) {
	if len(c.Offsets) == 0 {
		return 0, 0
	}
	return int(c.Offsets[i]), int(c.Offsets[i+1])
}

// AppendHeaders appends Kafka headers to a column of kind Headers; nil
// appends a null (Spark reports null for a record without headers). Keys
// and values are aliased, not copied; a nil value is a null cell.
func (c *Column) AppendHeaders(hs []Header) {
	if hs == nil {
		c.AppendNull()
		return
	}
	st := c.Children[0]
	keys, vals := st.Children[0], st.Children[1]
	for _, h := range hs {
		keys.AppendBytes(stringBytes(h.Key))
		vals.AppendBytes(h.Value)
		st.AppendStruct()
	}
	c.AppendArray()
}

// HeadersAt returns cell i of an array<struct<key:string,value:binary>>
// column as Kafka headers: nil for a null cell, a null key as "", a null
// element as an empty header. Values alias the column.
func (c *Column) HeadersAt(i int) []Header {
	if c.IsNull(i) {
		return nil
	}
	from, to := c.Range(i)
	st := c.Children[0]
	keys, vals := st.Children[0], st.Children[1]
	out := make([]Header, 0, to-from)
	for e := from; e < to; e++ {
		var h Header
		if !st.IsNull(e) {
			if !keys.IsNull(e) {
				h.Key = string(keys.Bytes[e])
			}
			if !vals.IsNull(e) {
				h.Value = vals.Bytes[e]
			}
		}
		out = append(out, h)
	}
	return out
}

// stringBytes views s as bytes without copying (cells are never written);
// "" becomes a non-nil empty slice, which is not null.
func stringBytes(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// AppendFrom appends cell i of src, which must have the same kind, to c.
// String and Binary bytes are aliased; nested cells are copied element by
// element.
func (c *Column) AppendFrom(src *Column, i int) {
	if src.IsNull(i) {
		c.AppendNull()
		return
	}
	switch c.Type.Class() {
	case Boolean:
		c.AppendBool(src.Bools[i])
	case Int, Long, Date, Timestamp:
		c.AppendInt(src.Ints[i])
	case Double:
		c.AppendFloat(src.Floats[i])
	case String, Binary:
		c.AppendBytes(src.Bytes[i])
	case Struct:
		for j, ch := range c.Children {
			ch.AppendFrom(src.Children[j], i)
		}
		c.AppendStruct()
	case Array, Map:
		from, to := src.Range(i)
		for j, ch := range c.Children {
			ch.AppendRange(src.Children[j], from, to)
		}
		c.AppendArray()
	case Null:
		c.AppendNull()
	}
}

// AppendRange appends cells [from, to) of src, which must have the same
// kind, to c.
func (c *Column) AppendRange(src *Column, from, to int) {
	if to <= from {
		return
	}
	if c.Type == Null {
		c.Len += to - from
		return
	}
	if src.Valid != nil || c.Valid != nil {
		c.materializeValid()
		if src.Valid != nil {
			c.Valid = append(c.Valid, src.Valid[from:to]...)
		} else {
			for range to - from {
				c.Valid = append(c.Valid, true)
			}
		}
	}
	switch c.Type.Class() {
	case Boolean:
		c.Bools = append(c.Bools, src.Bools[from:to]...)
	case Int, Long, Date, Timestamp:
		c.Ints = append(c.Ints, src.Ints[from:to]...)
	case Double:
		c.Floats = append(c.Floats, src.Floats[from:to]...)
	case String, Binary:
		c.Bytes = append(c.Bytes, src.Bytes[from:to]...)
	case Struct:
		for j, ch := range c.Children {
			ch.AppendRange(src.Children[j], from, to)
		}
	case Array, Map:
		c.ensureOffsets()
		lo, hi := int(src.Offsets[from]), int(src.Offsets[to])
		base := c.Offsets[len(c.Offsets)-1]
		for _, o := range src.Offsets[from+1 : to+1] {
			c.Offsets = append(c.Offsets, base+o-int32(lo))
		}
		for j, ch := range c.Children {
			ch.AppendRange(src.Children[j], lo, hi)
		}
	}
	c.Len += to - from
}

// ByteSize estimates the memory the column's cells occupy: fixed-width
// values at their width, variable-width ones by payload length plus a slice
// header, nested ones as offsets plus their children (a Slice of an array
// counts the whole shared child). It is the figure the memory budget
// charges.
func (c *Column) ByteSize() int64 {
	var n int64
	n += int64(len(c.Valid))
	n += int64(len(c.Bools))
	n += 8 * int64(len(c.Ints)+len(c.Floats))
	for _, b := range c.Bytes {
		n += int64(len(b)) + 24
	}
	n += 4 * int64(len(c.Offsets))
	for _, ch := range c.Children {
		n += ch.ByteSize()
	}
	return n
}

// Slice returns cells [from, to) as a column sharing storage with c.
func (c *Column) Slice(from, to int) *Column {
	s := &Column{Type: c.Type, Len: to - from}
	if c.Valid != nil {
		s.Valid = c.Valid[from:to:to]
	}
	switch c.Type.Class() {
	case Boolean:
		s.Bools = c.Bools[from:to:to]
	case Int, Long, Date, Timestamp:
		s.Ints = c.Ints[from:to:to]
	case Double:
		s.Floats = c.Floats[from:to:to]
	case String, Binary:
		s.Bytes = c.Bytes[from:to:to]
	case Struct:
		s.Children = make([]*Column, len(c.Children))
		for j, ch := range c.Children {
			s.Children[j] = ch.Slice(from, to)
		}
	case Array, Map:
		if len(c.Offsets) == 0 {
			s.Offsets = []int32{0}
		} else {
			s.Offsets = c.Offsets[from : to+1 : to+1]
		}
		s.Children = c.Children
	}
	return s
}

// Filter returns the cells whose keep flag is true, in order; n is the
// number of true flags (a capacity hint).
func (c *Column) Filter(keep []bool, n int) *Column {
	out := NewColumn(c.Type, n)
	if c.Type.IsNested() {
		for i, k := range keep {
			if k {
				out.AppendFrom(c, i)
			}
		}
		return out
	}
	for i, k := range keep {
		if !k {
			continue
		}
		if c.IsNull(i) {
			out.AppendNull()
			continue
		}
		switch c.Type {
		case Boolean:
			out.AppendBool(c.Bools[i])
		case Int, Long, Date, Timestamp:
			out.AppendInt(c.Ints[i])
		case Double:
			out.AppendFloat(c.Floats[i])
		case String, Binary:
			out.AppendBytes(c.Bytes[i])
		}
	}
	return out
}

// StructValue is a struct cell as a Go value (Column.Value): the field
// values in field order, like a row, with the field names (shared with the
// kind: do not modify them).
type StructValue struct {
	Names  []string
	Values []any
}

// Get returns the value of the field called name (matched exactly, then
// case-insensitively) and whether there is such a field.
func (s StructValue) Get(name string) (any, bool) {
	for i, n := range s.Names {
		if n == name {
			return s.Values[i], true
		}
	}
	for i, n := range s.Names {
		if strings.EqualFold(n, name) {
			return s.Values[i], true
		}
	}
	return nil, false
}

// MapValue is a map cell as a Go value: its entries in order, Keys[i]
// mapping to Values[i].
type MapValue struct {
	Keys   []any
	Values []any
}

// Value returns cell i as a Go value: nil for null; bool; int64 for Int,
// Long, Date (days) and Timestamp (micros); float64; string (String);
// []byte (Binary, aliasing the column); StructValue for a struct; []any of
// the elements for an array (never nil); MapValue for a map.
func (c *Column) Value(i int) any {
	if c.IsNull(i) {
		return nil
	}
	switch c.Type.Class() {
	case Boolean:
		return c.Bools[i]
	case Int, Long, Date, Timestamp:
		return c.Ints[i]
	case Double:
		return c.Floats[i]
	case String:
		return string(c.Bytes[i])
	case Binary:
		return c.Bytes[i]
	case Struct:
		vals := make([]any, len(c.Children))
		for j, ch := range c.Children {
			vals[j] = ch.Value(i)
		}
		return StructValue{Names: c.Type.FieldNames(), Values: vals}
	case Array:
		from, to := c.Range(i)
		out := make([]any, 0, to-from)
		for e := from; e < to; e++ {
			out = append(out, c.Children[0].Value(e))
		}
		return out
	case Map:
		from, to := c.Range(i)
		m := MapValue{Keys: make([]any, 0, to-from), Values: make([]any, 0, to-from)}
		for e := from; e < to; e++ {
			m.Keys = append(m.Keys, c.Children[0].Value(e))
			m.Values = append(m.Values, c.Children[1].Value(e))
		}
		return m
	}
	return nil
}

// Validate checks the column's storage against its kind: slice lengths,
// children's kinds and lengths, and array offsets.
func (c *Column) Validate() error {
	if !c.Type.Valid() {
		return fmt.Errorf("invalid column type %s", c.Type)
	}
	if c.Valid != nil && len(c.Valid) != c.Len {
		return fmt.Errorf("%s column has %d validity flags for %d cells", c.Type, len(c.Valid), c.Len)
	}
	n := -1
	switch c.Type.Class() {
	case Boolean:
		n = len(c.Bools)
	case Int, Long, Date, Timestamp:
		n = len(c.Ints)
	case Double:
		n = len(c.Floats)
	case String, Binary:
		n = len(c.Bytes)
	case Struct:
		fs := c.Type.Fields()
		if len(c.Children) != len(fs) {
			return fmt.Errorf("%s column has %d children", c.Type, len(c.Children))
		}
		for j, ch := range c.Children {
			if ch.Type != fs[j].Type || ch.Len != c.Len {
				return fmt.Errorf("%s column: field %q is a %s column of %d cells", c.Type, fs[j].Name, ch.Type, ch.Len)
			}
			if err := ch.Validate(); err != nil {
				return fmt.Errorf("field %q: %w", fs[j].Name, err)
			}
		}
	case Array, Map:
		want := []Kind{c.Type.Elem()}
		if c.Type.Class() == Map {
			want = []Kind{c.Type.KeyType(), c.Type.ValueType()}
		}
		if len(c.Children) != len(want) {
			return fmt.Errorf("%s column has %d children", c.Type, len(c.Children))
		}
		for j, ch := range c.Children {
			if ch.Type != want[j] {
				return fmt.Errorf("%s column: child %d is %s", c.Type, j, ch.Type)
			}
			if ch.Len != c.Children[0].Len {
				return fmt.Errorf("%s column: keys and values differ in length", c.Type)
			}
		}
		if len(c.Offsets) == 0 && c.Len == 0 {
			break
		}
		if len(c.Offsets) != c.Len+1 {
			return fmt.Errorf("%s column has %d offsets for %d cells", c.Type, len(c.Offsets), c.Len)
		}
		for i := 1; i < len(c.Offsets); i++ {
			if c.Offsets[i] < c.Offsets[i-1] {
				return fmt.Errorf("%s column: offsets decrease at cell %d", c.Type, i-1)
			}
		}
		if c.Offsets[0] < 0 || int(c.Offsets[c.Len]) > c.Children[0].Len {
			return fmt.Errorf("%s column: offsets out of the child's %d cells", c.Type, c.Children[0].Len)
		}
		for _, ch := range c.Children {
			if err := ch.Validate(); err != nil {
				return err
			}
		}
		if c.Type.Class() == Map {
			keys := c.Children[0]
			for e := int(c.Offsets[0]); e < int(c.Offsets[c.Len]); e++ {
				if keys.IsNull(e) {
					return fmt.Errorf("%s column: a map key is null", c.Type)
				}
			}
		}
	}
	if n >= 0 && n != c.Len {
		return fmt.Errorf("%s column has %d values for %d cells", c.Type, n, c.Len)
	}
	return nil
}

// AppendValue appends a Go value as Value returns it (nil, bool, int64,
// float64, string, []byte, StructValue, []any, MapValue) to a column of a
// matching kind. For convenience a string is accepted for Binary, []byte
// for String, and an int for the integer kinds. A struct value is matched
// to the fields by position. On error c may hold part of the cell and
// should be discarded.
func (c *Column) AppendValue(v any) error {
	if v == nil {
		c.AppendNull()
		return nil
	}
	bad := func() error { return fmt.Errorf("batch: cannot append %T to a %s column", v, c.Type) }
	switch c.Type.Class() {
	case Boolean:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		c.AppendBool(b)
	case Int, Long, Date, Timestamp:
		switch x := v.(type) {
		case int64:
			c.AppendInt(x)
		case int:
			c.AppendInt(int64(x))
		default:
			return bad()
		}
	case Double:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		c.AppendFloat(f)
	case String, Binary:
		switch x := v.(type) {
		case string:
			c.AppendBytes(append([]byte{}, x...))
		case []byte:
			if x == nil {
				x = []byte{}
			}
			c.AppendBytes(x)
		default:
			return bad()
		}
	case Struct:
		var vals []any
		switch x := v.(type) {
		case StructValue:
			vals = x.Values
		case []any:
			vals = x
		default:
			return bad()
		}
		if len(vals) != len(c.Children) {
			return fmt.Errorf("batch: a struct value of %d fields for a %s column", len(vals), c.Type)
		}
		for i, ch := range c.Children {
			if err := ch.AppendValue(vals[i]); err != nil {
				return err
			}
		}
		c.AppendStruct()
	case Array:
		xs, ok := v.([]any)
		if !ok {
			return bad()
		}
		for _, x := range xs {
			if err := c.Children[0].AppendValue(x); err != nil {
				return err
			}
		}
		c.AppendArray()
	case Map:
		m, ok := v.(MapValue)
		if !ok || len(m.Keys) != len(m.Values) {
			return bad()
		}
		for i := range m.Keys {
			if m.Keys[i] == nil {
				return fmt.Errorf("batch: a map key is null")
			}
			if err := c.Children[0].AppendValue(m.Keys[i]); err != nil {
				return err
			}
			if err := c.Children[1].AppendValue(m.Values[i]); err != nil {
				return err
			}
		}
		c.AppendMap()
	default:
		return bad()
	}
	return nil
}

// HeadersOf converts a Headers cell as Value returns it ([]any of
// StructValue{key, value}) to Kafka headers; nil for a null cell or a value
// of another shape.
func HeadersOf(v any) []Header {
	xs, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]Header, 0, len(xs))
	for _, x := range xs {
		var h Header
		if sv, ok := x.(StructValue); ok && len(sv.Values) == 2 {
			h.Key, _ = sv.Values[0].(string)
			h.Value, _ = sv.Values[1].([]byte)
		}
		out = append(out, h)
	}
	return out
}
