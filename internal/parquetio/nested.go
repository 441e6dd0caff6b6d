package parquetio

import (
	"bytes"
	"math"

	"github.com/parquet-go/parquet-go"

	"github.com/sluice-stream/sluice/batch"
)

// shape mirrors a column's kind as the Parquet leaves Node lays out for it,
// with what shredding needs: each leaf's column index and, for arrays and
// maps, the repetition level of their entries. Nested columns are written
// by shredding cells into per-leaf values with repetition and definition
// levels (Dremel's encoding); every optional node adds one definition
// level, the repeated list/key_value group one more.
type shape struct {
	kind     batch.Kind
	leaf     int // first leaf column index
	leaves   int // number of leaf columns
	repLevel int // arrays and maps: the repetition level of entries after the first
	children []*shape
	// stats: for leaves the values' statistics, for other nodes the count
	// of null cells (the node's own or an ancestor's).
	stats ColumnStats
}

// newShape builds the shape of kind k whose first leaf is *leaf, under
// rep repeated ancestors.
func newShape(k batch.Kind, leaf *int, rep int) *shape {
	s := &shape{kind: k, leaf: *leaf}
	switch k.Class() {
	case batch.Struct:
		for _, f := range k.Fields() {
			s.children = append(s.children, newShape(f.Type, leaf, rep))
		}
	case batch.Array:
		s.repLevel = rep + 1
		s.children = []*shape{newShape(k.Elem(), leaf, rep+1)}
	case batch.Map:
		s.repLevel = rep + 1
		s.children = []*shape{newShape(k.KeyType(), leaf, rep+1), newShape(k.ValueType(), leaf, rep+1)}
	default:
		*leaf++
	}
	s.leaves = *leaf - s.leaf
	return s
}

// columnStats returns the statistics of a field as Writer.Stats reports
// them: a struct's Children follow its fields; arrays and maps report only
// their null cells.
func (s *shape) columnStats() ColumnStats {
	st := s.stats
	if s.kind.Class() == batch.Struct {
		st.Children = make([]ColumnStats, len(s.children))
		for i, c := range s.children {
			st.Children[i] = c.columnStats()
		}
	}
	return st
}

// shredder appends the values of nested cells to per-leaf buffers.
type shredder struct {
	bufs [][]parquet.Value // by leaf column index
}

// nulls appends, to every leaf under s, one null at the given levels (the
// node is absent, or an empty list or map).
func (w *shredder) nulls(s *shape, rep, def int, countNull bool) {
	if countNull {
		s.stats.NullCount++
	}
	if len(s.children) == 0 {
		w.bufs[s.leaf] = append(w.bufs[s.leaf], parquet.NullValue().Level(rep, def, s.leaf))
		return
	}
	for _, c := range s.children {
		w.nulls(c, rep, def, countNull)
	}
}

// shred appends cell i of c, an optional node (required: a map key) whose
// ancestors are all present at definition level def, starting with
// repetition level rep.
func (w *shredder) shred(s *shape, c *batch.Column, i, rep, def int, required bool) {
	if !required {
		if c.IsNull(i) || (c.Bytes != nil && c.Bytes[i] == nil) {
			w.nulls(s, rep, def, true)
			return
		}
		def++
	}
	switch c.Type.Class() {
	case batch.Struct:
		for j, ch := range s.children {
			w.shred(ch, c.Children[j], i, rep, def, false)
		}
	case batch.Array, batch.Map:
		from, to := c.Range(i)
		if from == to {
			w.nulls(s, rep, def, false)
			return
		}
		for e := from; e < to; e++ {
			r := rep
			if e > from {
				r = s.repLevel
			}
			if c.Type.Class() == batch.Array {
				w.shred(s.children[0], c.Children[0], e, r, def+1, false)
				continue
			}
			w.shred(s.children[0], c.Children[0], e, r, def+1, true)
			w.shred(s.children[1], c.Children[1], e, r, def+1, false)
		}
	default:
		w.leafValue(s, c, i, rep, def)
	}
}

// leafValue appends a present flat cell and updates the leaf's statistics
// as the flat column writer does.
func (w *shredder) leafValue(s *shape, c *batch.Column, i, rep, def int) {
	st := &s.stats
	var v parquet.Value
	switch c.Type {
	case batch.Boolean:
		v = parquet.BooleanValue(c.Bools[i])
	case batch.Int, batch.Date, batch.Long, batch.Timestamp:
		x := c.Ints[i]
		if c.Type == batch.Long || c.Type == batch.Timestamp {
			v = parquet.Int64Value(x)
		} else {
			v = parquet.Int32Value(int32(x))
		}
		if !st.HasMinMax {
			st.MinInt, st.MaxInt, st.HasMinMax = x, x, true
		} else if x < st.MinInt {
			st.MinInt = x
		} else if x > st.MaxInt {
			st.MaxInt = x
		}
	case batch.Double:
		x := c.Floats[i]
		v = parquet.DoubleValue(x)
		switch {
		case math.IsNaN(x):
			st.NaN = true
		case !st.HasMinMax:
			st.MinFloat, st.MaxFloat, st.HasMinMax = x, x, true
		case x < st.MinFloat:
			st.MinFloat = x
		case x > st.MaxFloat:
			st.MaxFloat = x
		}
	case batch.String, batch.Binary:
		x := c.Bytes[i]
		v = parquet.ByteArrayValue(x)
		if c.Type == batch.String {
			if !st.HasMinMax {
				st.MinBytes = append(st.MinBytes[:0], x...)
				st.MaxBytes = append(st.MaxBytes[:0], x...)
				st.HasMinMax = true
			} else if bytes.Compare(x, st.MinBytes) < 0 {
				st.MinBytes = append(st.MinBytes[:0], x...)
			} else if bytes.Compare(x, st.MaxBytes) > 0 {
				st.MaxBytes = append(st.MaxBytes[:0], x...)
			}
		}
	}
	w.bufs[s.leaf] = append(w.bufs[s.leaf], v.Level(rep, def, s.leaf))
}
