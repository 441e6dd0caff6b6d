package aggregate

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluice-stream/sluice/batch"
)

// cell is one kept value of any scalar kind (the field matching the kind is
// used; bs is an owned copy).
type cell struct {
	null bool
	b    bool
	i    int64
	f    float64
	bs   []byte
}

func cellAt(col *batch.Column, i int) cell {
	if col.IsNull(i) {
		return cell{null: true}
	}
	switch col.Type {
	case batch.Boolean:
		return cell{b: col.Bools[i]}
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		return cell{i: col.Ints[i]}
	case batch.Double:
		return cell{f: col.Floats[i]}
	case batch.String, batch.Binary:
		return cell{bs: col.Bytes[i]} // aliased: own() before keeping
	}
	return cell{null: true}
}

func (c cell) own() cell {
	if c.bs != nil {
		c.bs = append(make([]byte, 0, len(c.bs)), c.bs...)
	}
	return c
}

func (c cell) value(k batch.Kind) any {
	if c.null {
		return nil
	}
	switch k {
	case batch.Boolean:
		return c.b
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		return c.i
	case batch.Double:
		return c.f
	case batch.String:
		return string(c.bs)
	case batch.Binary:
		return c.bs
	}
	return nil
}

func (c cell) size() int64 { return 48 + int64(len(c.bs)) }

// compareCells orders non-null cells as Spark does: false < true, numbers
// numerically with NaN above everything and -0.0 = 0.0, strings and binary
// bytewise (UTF-8 byte order for strings).
func compareCells(k batch.Kind, a, b cell) int {
	switch k {
	case batch.Boolean:
		switch {
		case a.b == b.b:
			return 0
		case !a.b:
			return -1
		}
		return 1
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		return cmp.Compare(a.i, b.i)
	case batch.Double:
		an, bn := math.IsNaN(a.f), math.IsNaN(b.f)
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		case bn:
			return -1
		}
		return cmp.Compare(a.f, b.f)
	case batch.String, batch.Binary:
		return bytes.Compare(a.bs, b.bs)
	}
	return 0
}

// appendCell encodes a cell: 0 = null, 1 = value, then the kind's bytes.
func appendCell(dst []byte, k batch.Kind, c cell) []byte {
	if c.null {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	switch k {
	case batch.Boolean:
		if c.b {
			return append(dst, 1)
		}
		return append(dst, 0)
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		return binary.AppendVarint(dst, c.i)
	case batch.Double:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.f))
	case batch.String, batch.Binary:
		dst = binary.AppendUvarint(dst, uint64(len(c.bs)))
		return append(dst, c.bs...)
	}
	return dst
}

// readCell decodes a cell and returns the rest; ok is false on damage.
func readCell(b []byte, k batch.Kind) (cell, []byte, bool) {
	if len(b) == 0 {
		return cell{}, nil, false
	}
	if b[0] == 0 {
		return cell{null: true}, b[1:], true
	}
	if b[0] != 1 {
		return cell{}, nil, false
	}
	b = b[1:]
	switch k {
	case batch.Boolean:
		if len(b) < 1 {
			return cell{}, nil, false
		}
		return cell{b: b[0] == 1}, b[1:], true
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		v, n := binary.Varint(b)
		if n <= 0 {
			return cell{}, nil, false
		}
		return cell{i: v}, b[n:], true
	case batch.Double:
		if len(b) < 8 {
			return cell{}, nil, false
		}
		return cell{f: math.Float64frombits(binary.LittleEndian.Uint64(b))}, b[8:], true
	case batch.String, batch.Binary:
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return cell{}, nil, false
		}
		return cell{bs: bytes.Clone(b[n : n+int(l)])}, b[n+int(l):], true
	}
	return cell{}, nil, false
}

// minMaxAcc is min or max: nulls are ignored; no non-null input gives null.
type minMaxAcc struct {
	kind batch.Kind
	max  bool
	has  bool
	best cell
}

func (c *minMaxAcc) better(v cell) bool {
	r := compareCells(c.kind, v, c.best)
	if c.max {
		return r > 0
	}
	return r < 0
}

func (c *minMaxAcc) Update(col *batch.Column, sel []int32) error {
	if col.Type == batch.Null {
		return nil
	}
	switch col.Type {
	case batch.Long, batch.Int, batch.Date, batch.Timestamp:
		// The common case without per-row cells.
		vals, valid := col.Ints, col.Valid
		best, has := c.best.i, c.has
		rows(col, sel, func(i int) {
			if valid != nil && !valid[i] {
				return
			}
			v := vals[i]
			if !has || (c.max && v > best) || (!c.max && v < best) {
				best, has = v, true
			}
		})
		if has {
			c.best.i, c.has = best, true
		}
		return nil
	}
	rows(col, sel, func(i int) {
		if col.IsNull(i) {
			return
		}
		v := cellAt(col, i)
		if !c.has || c.better(v) {
			c.best, c.has = v.own(), true
		}
	})
	return nil
}

func (c *minMaxAcc) Merge(o Accumulator) error {
	x, ok := o.(*minMaxAcc)
	if !ok || x.kind != c.kind || x.max != c.max {
		return mismatch(c, o)
	}
	if x.has && (!c.has || c.better(x.best)) {
		c.best, c.has = x.best.own(), true
	}
	return nil
}

func (c *minMaxAcc) Result() any {
	if !c.has {
		return nil
	}
	return c.best.value(c.kind)
}

func (c *minMaxAcc) AppendResult(col *batch.Column) error { return appendResultValue(col, c.Result()) }
func (c *minMaxAcc) Size() int64                          { return 16 + c.best.size() }
func (c *minMaxAcc) AppendState(dst []byte) []byte {
	if !c.has {
		return append(dst, 0)
	}
	return appendCell(dst, c.kind, c.best)
}

func (c *minMaxAcc) LoadState(b []byte) error {
	v, rest, ok := readCell(b, c.kind)
	if !ok || len(rest) != 0 {
		return errState(map[bool]string{true: "max", false: "min"}[c.max])
	}
	c.best, c.has = v, !v.null
	return nil
}

// firstLastAcc is first or last. With ignoreNulls false (Spark's default) a
// null row counts as a value: first() of a group whose first row is null is
// null.
type firstLastAcc struct {
	kind        batch.Kind
	last        bool
	ignoreNulls bool
	set         bool
	v           cell
}

func (c *firstLastAcc) Update(col *batch.Column, sel []int32) error {
	if c.last {
		// Only the last qualifying row matters: scan backwards.
		n := col.Len
		if sel != nil {
			n = len(sel)
		}
		for j := n - 1; j >= 0; j-- {
			i := j
			if sel != nil {
				i = int(sel[j])
			}
			if c.ignoreNulls && col.IsNull(i) {
				continue
			}
			c.v, c.set = cellAt(col, i).own(), true
			return nil
		}
		return nil
	}
	if c.set {
		return nil
	}
	n := col.Len
	if sel != nil {
		n = len(sel)
	}
	for j := 0; j < n; j++ {
		i := j
		if sel != nil {
			i = int(sel[j])
		}
		if c.ignoreNulls && col.IsNull(i) {
			continue
		}
		c.v, c.set = cellAt(col, i).own(), true
		return nil
	}
	return nil
}

func (c *firstLastAcc) Merge(o Accumulator) error {
	x, ok := o.(*firstLastAcc)
	if !ok || x.kind != c.kind || x.last != c.last {
		return mismatch(c, o)
	}
	if x.set && (c.last || !c.set) {
		c.v, c.set = x.v.own(), true
	}
	return nil
}

func (c *firstLastAcc) Result() any {
	if !c.set {
		return nil
	}
	return c.v.value(c.kind)
}

func (c *firstLastAcc) AppendResult(col *batch.Column) error {
	return appendResultValue(col, c.Result())
}
func (c *firstLastAcc) Size() int64 { return 16 + c.v.size() }
func (c *firstLastAcc) AppendState(dst []byte) []byte {
	if !c.set {
		return append(dst, 0)
	}
	return appendCell(append(dst, 1), c.kind, c.v)
}

func (c *firstLastAcc) LoadState(b []byte) error {
	if len(b) == 1 && b[0] == 0 {
		c.set, c.v = false, cell{}
		return nil
	}
	if len(b) < 2 || b[0] != 1 {
		return errState("first/last")
	}
	v, rest, ok := readCell(b[1:], c.kind)
	if !ok || len(rest) != 0 {
		return errState("first/last")
	}
	c.v, c.set = v, true
	return nil
}

// collectAcc is collect_list (seen == nil) or collect_set: non-null values
// in arrival order; collect_set keeps the first occurrence of each value
// (doubles compared after normalizing NaN and -0.0).
type collectAcc struct {
	kind  batch.Kind
	vals  []cell
	seen  map[string]struct{}
	bytes int64
	key   []byte
}

func (c *collectAcc) add(v cell) {
	if c.kind == batch.Double {
		v.f = normalizeDouble(v.f)
	}
	if c.seen != nil {
		c.key = appendCell(c.key[:0], c.kind, v)
		if _, dup := c.seen[string(c.key)]; dup {
			return
		}
		c.seen[string(c.key)] = struct{}{}
		c.bytes += int64(len(c.key)) + 16
	}
	v = v.own()
	c.vals = append(c.vals, v)
	c.bytes += v.size()
}

func (c *collectAcc) Update(col *batch.Column, sel []int32) error {
	if col.Type == batch.Null {
		return nil
	}
	rows(col, sel, func(i int) {
		if !col.IsNull(i) {
			c.add(cellAt(col, i))
		}
	})
	return nil
}

func (c *collectAcc) Merge(o Accumulator) error {
	x, ok := o.(*collectAcc)
	if !ok || x.kind != c.kind || (x.seen == nil) != (c.seen == nil) {
		return mismatch(c, o)
	}
	for _, v := range x.vals {
		c.add(v)
	}
	return nil
}

func (c *collectAcc) Result() any {
	out := make([]any, len(c.vals))
	for i, v := range c.vals {
		out[i] = v.value(c.kind)
	}
	return out
}

// AppendResult appends the collected values as one array cell to col, a
// column of ResultType (array<input>).
func (c *collectAcc) AppendResult(col *batch.Column) error {
	if col.Type.Class() != batch.Array || len(col.Children) != 1 || col.Children[0].Type != c.kind {
		return fmt.Errorf("aggregate: cannot append a collected array<%s> to a %s column", c.kind, col.Type)
	}
	elems := col.Children[0]
	for _, v := range c.vals {
		if err := appendResultValue(elems, v.value(c.kind)); err != nil {
			return err
		}
	}
	col.AppendArray()
	return nil
}

func (c *collectAcc) Size() int64 { return 64 + c.bytes }
func (c *collectAcc) AppendState(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(c.vals)))
	for _, v := range c.vals {
		dst = appendCell(dst, c.kind, v)
	}
	return dst
}

func (c *collectAcc) LoadState(b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return errState("collect")
	}
	b = b[k:]
	c.vals, c.bytes = nil, 0
	if c.seen != nil {
		c.seen = map[string]struct{}{}
	}
	for range n {
		v, rest, ok := readCell(b, c.kind)
		if !ok {
			return errState("collect")
		}
		c.add(v)
		b = rest
	}
	if len(b) != 0 {
		return errState("collect")
	}
	return nil
}
