package expr

import (
	"github.com/sluice-stream/sluice/batch"
)

// newCol returns a column of kind k with n zero-valued, non-null cells
// (for nested kinds: structs of zero values, empty arrays and maps).
func newCol(k batch.Kind, n int) *batch.Column {
	c := &batch.Column{Type: k, Len: n}
	switch k {
	case batch.Boolean:
		c.Bools = make([]bool, n)
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		c.Ints = make([]int64, n)
	case batch.Double:
		c.Floats = make([]float64, n)
	case batch.String, batch.Binary:
		c.Bytes = make([][]byte, n)
	}
	switch k.Class() {
	case batch.Struct:
		fs := k.Fields()
		c.Children = make([]*batch.Column, len(fs))
		for i, f := range fs {
			c.Children[i] = newCol(f.Type, n)
		}
	case batch.Array:
		c.Offsets = make([]int32, n+1)
		c.Children = []*batch.Column{batch.NewColumn(k.Elem(), 0)}
	case batch.Map:
		c.Offsets = make([]int32, n+1)
		c.Children = []*batch.Column{batch.NewColumn(k.KeyType(), 0), batch.NewColumn(k.ValueType(), 0)}
	}
	return c
}

// nullCol returns a column of kind k with n null cells.
func nullCol(k batch.Kind, n int) *batch.Column {
	if k.IsNested() {
		return batch.NullColumn(k, n)
	}
	c := newCol(k, n)
	if k != batch.Null {
		c.Valid = make([]bool, n)
	}
	return c
}

// fill returns n copies of v, doubling with copy for speed.
func fill[T any](n int, v T) []T {
	s := make([]T, n)
	if n == 0 {
		return s
	}
	s[0] = v
	for i := 1; i < n; i *= 2 {
		copy(s[i:], s[:i])
	}
	return s
}

// isNullAt reports whether cell i of c is null, treating a Null-kind column
// as all null.
func isNullAt(c *batch.Column, i int) bool {
	return c.Type == batch.Null || (c.Valid != nil && !c.Valid[i])
}

// andValid returns a fresh validity slice that is the AND of the inputs'
// validity, or nil when none of the inputs has nulls. The result is owned
// by the caller and may be written.
func andValid(n int, cols ...*batch.Column) []bool {
	var out []bool
	for _, c := range cols {
		switch {
		case c.Type == batch.Null:
			if out == nil {
				out = make([]bool, n)
			} else {
				clear(out)
			}
		case c.Valid != nil:
			if out == nil {
				out = make([]bool, n)
				copy(out, c.Valid)
			} else {
				for i, v := range c.Valid {
					out[i] = out[i] && v
				}
			}
		}
	}
	return out
}

// setNull marks cell i of c null, allocating the validity slice if needed.
// The caller must also zero the value slot (see zeroNulls).
func setNull(c *batch.Column, i int) {
	if c.Valid == nil {
		c.Valid = fill(c.Len, true)
	}
	c.Valid[i] = false
}

// zeroNulls resets the value slot of every null cell to the zero value, as
// package batch requires; kernels compute garbage into those slots.
func zeroNulls(c *batch.Column) {
	if c.Valid == nil {
		return
	}
	for i, ok := range c.Valid {
		if ok {
			continue
		}
		switch c.Type {
		case batch.Boolean:
			c.Bools[i] = false
		case batch.Int, batch.Long, batch.Date, batch.Timestamp:
			c.Ints[i] = 0
		case batch.Double:
			c.Floats[i] = 0
		case batch.String, batch.Binary:
			c.Bytes[i] = nil
		}
	}
}

// pick builds a column of kind k whose row i is row i of srcs[choice[i]],
// or null when choice[i] < 0. All sources have kind k.
func pick(k batch.Kind, n int, choice []int, srcs []*batch.Column) *batch.Column {
	if k.IsNested() {
		out := batch.NewColumn(k, n)
		for i, ch := range choice {
			if ch < 0 {
				out.AppendNull()
			} else {
				out.AppendFrom(srcs[ch], i)
			}
		}
		return out
	}
	out := newCol(k, n)
	for i, ch := range choice {
		if ch < 0 || isNullAt(srcs[ch], i) {
			setNull(out, i)
			continue
		}
		s := srcs[ch]
		switch k {
		case batch.Boolean:
			out.Bools[i] = s.Bools[i]
		case batch.Int, batch.Long, batch.Date, batch.Timestamp:
			out.Ints[i] = s.Ints[i]
		case batch.Double:
			out.Floats[i] = s.Floats[i]
		case batch.String, batch.Binary:
			out.Bytes[i] = s.Bytes[i]
		}
	}
	if k == batch.Null {
		return &batch.Column{Type: batch.Null, Len: n}
	}
	return out
}

// arena hands out sub-slices of large shared buffers so that a string
// kernel allocates per batch, not per row. Each returned slice has its
// capacity clipped so appending to it cannot clobber a neighbour.
type arena struct {
	buf []byte
}

func newArena(size int) *arena { return &arena{buf: make([]byte, 0, max(size, 64))} }

// start reserves room for at least n more bytes and returns the mark to
// pass to end.
func (a *arena) start(n int) int {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(2*cap(a.buf), n, 64))
	}
	return len(a.buf)
}

// end returns the bytes appended since mark.
func (a *arena) end(mark int) []byte {
	return a.buf[mark:len(a.buf):len(a.buf)]
}
