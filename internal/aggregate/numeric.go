package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluice-stream/sluice/batch"
)

// countAcc is count(*) (star) or count(col), which skips nulls.
type countAcc struct {
	n    int64
	star bool
}

func (c *countAcc) Update(col *batch.Column, sel []int32) error {
	total := col.Len
	if sel != nil {
		total = len(sel)
	}
	if c.star || !col.HasNulls() {
		c.n += int64(total)
		return nil
	}
	if col.Type == batch.Null {
		return nil
	}
	v := col.Valid
	if sel == nil {
		for _, ok := range v[:col.Len] {
			if ok {
				c.n++
			}
		}
		return nil
	}
	for _, i := range sel {
		if v[i] {
			c.n++
		}
	}
	return nil
}

func (c *countAcc) Merge(o Accumulator) error {
	x, ok := o.(*countAcc)
	if !ok {
		return mismatch(c, o)
	}
	c.n += x.n
	return nil
}

func (c *countAcc) Result() any                          { return c.n }
func (c *countAcc) AppendResult(col *batch.Column) error { col.AppendInt(c.n); return nil }
func (c *countAcc) AppendState(dst []byte) []byte        { return binary.AppendVarint(dst, c.n) }
func (c *countAcc) Size() int64                          { return 16 }
func (c *countAcc) LoadState(b []byte) error {
	n, k := binary.Varint(b)
	if k <= 0 || k != len(b) {
		return errState("count")
	}
	c.n = n
	return nil
}

func errState(what string) error { return fmt.Errorf("aggregate: damaged %s state", what) }

// sumLongAcc is sum over int/bigint: bigint, wrapping on overflow unless ANSI.
type sumLongAcc struct {
	sum  int64
	has  bool
	ansi bool
}

func addLong(a, b int64, ansi bool) (int64, error) {
	s := a + b
	if ansi && (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, ErrArithmeticOverflow
	}
	return s, nil
}

func (c *sumLongAcc) Update(col *batch.Column, sel []int32) error {
	if col.Type == batch.Null {
		return nil
	}
	vals, valid := col.Ints, col.Valid
	sum, has := c.sum, c.has
	if !c.ansi {
		// The hot loop: wrapping addition as Java's long +.
		switch {
		case sel == nil && valid == nil:
			for _, v := range vals[:col.Len] {
				sum += v
			}
			has = has || col.Len > 0
		case sel == nil:
			for i, v := range vals[:col.Len] {
				if valid[i] {
					sum += v
					has = true
				}
			}
		default:
			for _, i := range sel {
				if valid == nil || valid[i] {
					sum += vals[i]
					has = true
				}
			}
		}
		c.sum, c.has = sum, has
		return nil
	}
	var err error
	rows(col, sel, func(i int) {
		if err != nil || (valid != nil && !valid[i]) {
			return
		}
		sum, err = addLong(sum, vals[i], true)
		has = true
	})
	if err != nil {
		return err
	}
	c.sum, c.has = sum, has
	return nil
}

func (c *sumLongAcc) Merge(o Accumulator) error {
	x, ok := o.(*sumLongAcc)
	if !ok {
		return mismatch(c, o)
	}
	if !x.has {
		return nil
	}
	s, err := addLong(c.sum, x.sum, c.ansi)
	if err != nil {
		return err
	}
	c.sum, c.has = s, true
	return nil
}

func (c *sumLongAcc) Result() any {
	if !c.has {
		return nil
	}
	return c.sum
}

func (c *sumLongAcc) AppendResult(col *batch.Column) error { return appendResultValue(col, c.Result()) }
func (c *sumLongAcc) Size() int64                          { return 24 }
func (c *sumLongAcc) AppendState(dst []byte) []byte {
	if !c.has {
		return append(dst, 0)
	}
	return binary.AppendVarint(append(dst, 1), c.sum)
}

func (c *sumLongAcc) LoadState(b []byte) error {
	if len(b) == 1 && b[0] == 0 {
		c.sum, c.has = 0, false
		return nil
	}
	if len(b) < 2 || b[0] != 1 {
		return errState("sum")
	}
	v, k := binary.Varint(b[1:])
	if k <= 0 || k != len(b)-1 {
		return errState("sum")
	}
	c.sum, c.has = v, true
	return nil
}

// sumDoubleAcc is sum over double: IEEE addition in row order.
type sumDoubleAcc struct {
	sum float64
	has bool
}

func (c *sumDoubleAcc) Update(col *batch.Column, sel []int32) error {
	if col.Type == batch.Null {
		return nil
	}
	vals, valid := col.Floats, col.Valid
	sum, has := c.sum, c.has
	switch {
	case sel == nil && valid == nil:
		for _, v := range vals[:col.Len] {
			sum += v
		}
		has = has || col.Len > 0
	default:
		rows(col, sel, func(i int) {
			if valid == nil || valid[i] {
				sum += vals[i]
				has = true
			}
		})
	}
	c.sum, c.has = sum, has
	return nil
}

func (c *sumDoubleAcc) Merge(o Accumulator) error {
	x, ok := o.(*sumDoubleAcc)
	if !ok {
		return mismatch(c, o)
	}
	if x.has {
		c.sum += x.sum
		c.has = true
	}
	return nil
}

func (c *sumDoubleAcc) Result() any {
	if !c.has {
		return nil
	}
	return c.sum
}

func (c *sumDoubleAcc) AppendResult(col *batch.Column) error {
	return appendResultValue(col, c.Result())
}
func (c *sumDoubleAcc) Size() int64 { return 24 }
func (c *sumDoubleAcc) AppendState(dst []byte) []byte {
	if !c.has {
		return append(dst, 0)
	}
	return binary.LittleEndian.AppendUint64(append(dst, 1), math.Float64bits(c.sum))
}

func (c *sumDoubleAcc) LoadState(b []byte) error {
	switch {
	case len(b) == 1 && b[0] == 0:
		c.sum, c.has = 0, false
	case len(b) == 9 && b[0] == 1:
		c.sum, c.has = math.Float64frombits(binary.LittleEndian.Uint64(b[1:])), true
	default:
		return errState("sum")
	}
	return nil
}

// avgAcc is avg: a double sum and a count, as Spark's Average buffer.
type avgAcc struct {
	sum float64
	n   int64
}

func (c *avgAcc) Update(col *batch.Column, sel []int32) error {
	valid := col.Valid
	switch col.Type {
	case batch.Null:
	case batch.Double:
		vals := col.Floats
		rows(col, sel, func(i int) {
			if valid == nil || valid[i] {
				c.sum += vals[i]
				c.n++
			}
		})
	default:
		vals := col.Ints
		rows(col, sel, func(i int) {
			if valid == nil || valid[i] {
				c.sum += float64(vals[i])
				c.n++
			}
		})
	}
	return nil
}

func (c *avgAcc) Merge(o Accumulator) error {
	x, ok := o.(*avgAcc)
	if !ok {
		return mismatch(c, o)
	}
	c.sum += x.sum
	c.n += x.n
	return nil
}

func (c *avgAcc) Result() any {
	if c.n == 0 {
		return nil
	}
	return c.sum / float64(c.n)
}

func (c *avgAcc) AppendResult(col *batch.Column) error { return appendResultValue(col, c.Result()) }
func (c *avgAcc) Size() int64                          { return 24 }
func (c *avgAcc) AppendState(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.sum))
	return binary.AppendVarint(dst, c.n)
}

func (c *avgAcc) LoadState(b []byte) error {
	if len(b) < 9 {
		return errState("avg")
	}
	n, k := binary.Varint(b[8:])
	if k <= 0 || k != len(b)-8 || n < 0 {
		return errState("avg")
	}
	c.sum, c.n = math.Float64frombits(binary.LittleEndian.Uint64(b)), n
	return nil
}
