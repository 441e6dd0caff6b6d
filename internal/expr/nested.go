package expr

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// This file holds the type rules and kernels of struct, array and map
// values: their common type, which casts Spark allows, casting them (to
// string as Spark's CAST prints them, to another nested type by position),
// and comparing them.

// nestedCommon is the wider common type of two nested kinds, as Spark's
// findWiderTypeForTwo: structs with the same number of fields and the same
// names (case-insensitively) whose field types have a common type (field
// nullable if either is), arrays and maps whose element, key and value
// types have one.
func nestedCommon(a, b batch.Kind) (batch.Kind, bool) {
	if a == b {
		return a, true
	}
	if a.Class() != b.Class() {
		return 0, false
	}
	switch a.Class() {
	case batch.Struct:
		fa, fb := a.Fields(), b.Fields()
		if len(fa) != len(fb) {
			return 0, false
		}
		out := make([]batch.Field, len(fa))
		for i := range fa {
			if !strings.EqualFold(fa[i].Name, fb[i].Name) {
				return 0, false
			}
			k, ok := commonType(fa[i].Type, fb[i].Type)
			if !ok {
				return 0, false
			}
			out[i] = batch.Field{Name: fa[i].Name, Type: k, Nullable: fa[i].Nullable || fb[i].Nullable}
		}
		return batch.StructOf(out...), true
	case batch.Array:
		k, ok := commonType(a.Elem(), b.Elem())
		if !ok {
			return 0, false
		}
		return batch.ArrayOf(k, a.ContainsNull() || b.ContainsNull()), true
	case batch.Map:
		k, ok := commonType(a.KeyType(), b.KeyType())
		if !ok {
			return 0, false
		}
		v, ok := commonType(a.ValueType(), b.ValueType())
		if !ok {
			return 0, false
		}
		return batch.MapOf(k, v, a.ContainsNull() || b.ContainsNull()), true
	}
	return 0, false
}

// orderable reports whether values of k can be compared and ordered:
// every type except maps and what contains them (Spark's
// TypeUtils.isOrderable).
func orderable(k batch.Kind) bool { return !k.Contains(batch.Map) }

// canCastNested is Spark's Cast.canCast for nested kinds: any of them to
// string; a struct to a struct with as many fields, field by field; an
// array or map to another whose elements, keys and values can be cast.
func canCastNested(from, to batch.Kind) bool {
	if to == batch.String {
		return true
	}
	if from.Class() != to.Class() {
		return false
	}
	switch from.Class() {
	case batch.Struct:
		ff, tf := from.Fields(), to.Fields()
		if len(ff) != len(tf) {
			return false
		}
		for i := range ff {
			if !canCast(ff[i].Type, tf[i].Type) {
				return false
			}
		}
		return true
	case batch.Array:
		return canCast(from.Elem(), to.Elem())
	case batch.Map:
		return canCast(from.KeyType(), to.KeyType()) && canCast(from.ValueType(), to.ValueType())
	}
	return false
}

// castNested casts a struct, array or map column to another nested kind:
// the struct's fields by position (the names are the target's), arrays'
// elements and maps' keys and values as columns. The result shares c's
// validity and offsets; only the children are converted.
func castNested(c *batch.Column, to batch.Kind) *batch.Column {
	out := &batch.Column{Type: to, Valid: c.Valid, Offsets: c.Offsets, Len: c.Len}
	switch to.Class() {
	case batch.Struct:
		fs := to.Fields()
		out.Children = make([]*batch.Column, len(fs))
		for i, f := range fs {
			out.Children[i] = castColumn(c.Children[i], f.Type)
		}
	case batch.Array:
		out.Children = []*batch.Column{castColumn(c.Children[0], to.Elem())}
	case batch.Map:
		out.Children = []*batch.Column{castColumn(c.Children[0], to.KeyType()), castColumn(c.Children[1], to.ValueType())}
	}
	return out
}

// castNestedToString renders struct, array and map cells as Spark's CAST
// to STRING does (spark.sql.legacy.castComplexTypesToString.enabled off):
// structs "{1, a}", arrays "[1, 2]", maps "{a -> 1}", nested nulls as
// "null", every element as its own cast to string (binary as its raw
// bytes).
func castNestedToString(c *batch.Column) *batch.Column {
	n := c.Len
	out := &batch.Column{Type: batch.String, Len: n, Bytes: make([][]byte, n), Valid: c.Valid}
	a := newArena(n * 16)
	for i := 0; i < n; i++ {
		if isNullAt(c, i) {
			continue
		}
		m := a.start(16)
		a.buf = appendCastString(a.buf, c, i)
		out.Bytes[i] = a.end(m)
	}
	return out
}

// appendCastString appends cell i of c (not null) as CAST(… AS STRING)
// renders it.
func appendCastString(dst []byte, c *batch.Column, i int) []byte {
	elem := func(dst []byte, c *batch.Column, i int) []byte {
		if isNullAt(c, i) {
			return append(dst, "null"...)
		}
		return appendCastString(dst, c, i)
	}
	switch c.Type.Class() {
	case batch.Boolean:
		return strconv.AppendBool(dst, c.Bools[i])
	case batch.Int, batch.Long:
		return strconv.AppendInt(dst, c.Ints[i], 10)
	case batch.Double:
		return sparktext.AppendDouble(dst, c.Floats[i])
	case batch.Date:
		return sparktext.AppendDate(dst, c.Ints[i])
	case batch.Timestamp:
		return sparktext.AppendTimestamp(dst, c.Ints[i], time.UTC)
	case batch.String, batch.Binary:
		return append(dst, c.Bytes[i]...)
	case batch.Struct:
		dst = append(dst, '{')
		for j, ch := range c.Children {
			if j > 0 {
				dst = append(dst, ", "...)
			}
			dst = elem(dst, ch, i)
		}
		return append(dst, '}')
	case batch.Array:
		from, to := c.Range(i)
		dst = append(dst, '[')
		for e := from; e < to; e++ {
			if e > from {
				dst = append(dst, ", "...)
			}
			dst = elem(dst, c.Children[0], e)
		}
		return append(dst, ']')
	case batch.Map:
		from, to := c.Range(i)
		dst = append(dst, '{')
		for e := from; e < to; e++ {
			if e > from {
				dst = append(dst, ", "...)
			}
			dst = elem(dst, c.Children[0], e)
			dst = append(dst, " -> "...)
			dst = elem(dst, c.Children[1], e)
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

// compareCells orders cell i of l against cell j of r, columns of the same
// shape, as Spark orders values: nulls first (and equal to each other) at
// every nesting level, structs field by field, arrays element by element
// and then by length, doubles with NaN above everything. Maps are never
// compared (the compiler refuses them).
func compareCells(l *batch.Column, i int, r *batch.Column, j int) int {
	ln, rn := isNullAt(l, i), isNullAt(r, j)
	switch {
	case ln && rn:
		return 0
	case ln:
		return -1
	case rn:
		return 1
	}
	switch l.Type.Class() {
	case batch.Boolean:
		return cmpBool(l.Bools[i], r.Bools[j])
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		x, y := l.Ints[i], r.Ints[j]
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case batch.Double:
		return cmpFloat(l.Floats[i], r.Floats[j])
	case batch.String, batch.Binary:
		return bytes.Compare(l.Bytes[i], r.Bytes[j])
	case batch.Struct:
		for k, ch := range l.Children {
			if c := compareCells(ch, i, r.Children[k], j); c != 0 {
				return c
			}
		}
		return 0
	case batch.Array:
		lf, lt := l.Range(i)
		rf, rt := r.Range(j)
		for a, b := lf, rf; a < lt && b < rt; a, b = a+1, b+1 {
			if c := compareCells(l.Children[0], a, r.Children[0], b); c != 0 {
				return c
			}
		}
		switch ll, rl := lt-lf, rt-rf; {
		case ll < rl:
			return -1
		case ll > rl:
			return 1
		}
	}
	return 0
}
