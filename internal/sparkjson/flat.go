package sparkjson

import (
	"strconv"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// # The flat fast path
//
// Most records a from_json schema of primitive fields meets are plain: an
// object whose names have no escapes and appear once, whose wanted values
// fit their types. flatObject reads such a record in one loop — no
// per-object stack, no deferred calls, the seen fields in a bit set — and
// gives up on anything else (a repeated or escaped name, a single quote, a
// value that does not fit, a syntax error), leaving the column as it was
// so that the general parser (object) reads the record from its start.
// The fast path therefore only ever produces results the general parser
// produces; FuzzFlatMatchesGeneral checks that.

// flatFieldClass reports whether the fast path converts fields of class k.
func flatFieldClass(k batch.Kind) bool {
	switch k {
	case batch.String, batch.Int, batch.Long, batch.Double, batch.Timestamp, batch.Boolean:
		return true
	}
	return false
}

// isFlat reports whether c is a struct the fast path reads: at most 64
// fields, all of flat classes.
func (c *conv) isFlat() bool {
	if c.class != batch.Struct || len(c.fields) > 64 {
		return false
	}
	for _, f := range c.fields {
		if !flatFieldClass(f.class) {
			return false
		}
	}
	return true
}

// skipWSAt returns the position of the first non-whitespace byte of b at
// or after i.
func skipWSAt(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// flatObject reads the object at lx.i (a '{') into a struct cell of c, a
// flat struct (isFlat). ok is false when the record is not one it reads:
// then nothing was appended to col and the lexer and the decoder's
// problem are as they were.
func (d *Decoder) flatObject(c *conv, col *batch.Column) (ok bool) {
	lx := &d.lx
	b := lx.b
	start := lx.i
	base := col.Len
	var seen uint64
	bail := func() bool {
		if seen != 0 {
			for idx, ch := range col.Children {
				if seen&(1<<idx) != 0 {
					truncate(ch, base)
				}
			}
		}
		lx.i, lx.err = start, ""
		return false
	}
	i := skipWSAt(b, start+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return bail()
			}
			// The name: short, read byte by byte.
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' || b[j] < 0x20 {
					return bail()
				}
				j++
			}
			if j >= len(b) {
				return bail()
			}
			name := b[i+1 : j]
			i = skipWSAt(b, j+1)
			if i >= len(b) || b[i] != ':' {
				return bail()
			}
			i = skipWSAt(b, i+1)
			if i >= len(b) {
				return bail()
			}
			lx.i = i
			if idx := c.field(name); idx < 0 {
				if b[i] == '"' {
					if _, _, ok := lx.stringToken(); !ok {
						return bail()
					}
				} else if !lx.skipValue(1) {
					return bail()
				}
			} else {
				bit := uint64(1) << idx
				if seen&bit != 0 {
					return bail() // a repeated field
				}
				seen |= bit
				if !d.flatValue(c.fields[idx], col.Children[idx]) {
					seen &^= bit // nothing appended
					return bail()
				}
			}
			i = skipWSAt(b, lx.i)
			if i >= len(b) {
				return bail()
			}
			if b[i] == ',' {
				i = skipWSAt(b, i+1)
				continue // a '}' next (a trailing comma) fails the name's test
			}
			if b[i] != '}' {
				return bail()
			}
			i++
			break
		}
	}
	if seen != 1<<len(c.fields)-1 {
		for idx, ch := range col.Children {
			if seen&(1<<idx) == 0 {
				ch.AppendNull()
			}
		}
	}
	col.AppendStruct()
	lx.i = i
	return true
}

// flatValue converts the value at lx.i (not whitespace) for the flat
// field c and appends it to col, or appends nothing and returns false when
// the value is not one the fast path converts.
func (d *Decoder) flatValue(c *conv, col *batch.Column) bool {
	lx := &d.lx
	ch := lx.b[lx.i]
	if ch == 'n' {
		if !lx.literal("null") {
			return false
		}
		col.AppendNull()
		return true
	}
	switch c.class {
	case batch.String:
		if ch != '"' {
			return false
		}
		s, ok := d.str()
		if !ok {
			return false
		}
		col.AppendBytes(s)
		return true
	case batch.Timestamp:
		if ch != '"' || d.p.opts.TimestampLayout != "" {
			return false
		}
		raw, esc, ok := lx.stringToken()
		if !ok || esc {
			return false
		}
		v, ok := sparktext.ParseTimestamp(raw)
		if !ok {
			return false
		}
		col.AppendInt(v)
		return true
	case batch.Boolean:
		switch ch {
		case 't':
			if !lx.literal("true") {
				return false
			}
			col.AppendBool(true)
			return true
		case 'f':
			if !lx.literal("false") {
				return false
			}
			col.AppendBool(false)
			return true
		}
		return false
	}
	if ch != '-' && (ch < '0' || ch > '9') {
		return false
	}
	num, isInt, special, ok := lx.number()
	if !ok || special != 0 {
		return false
	}
	switch c.class {
	case batch.Int, batch.Long:
		if !isInt {
			return false
		}
		v, ok := smallInt(num)
		if !ok || c.class == batch.Int && int64(int32(v)) != v {
			return false
		}
		col.AppendInt(v)
		return true
	case batch.Double:
		v, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return false
		}
		col.AppendFloat(v)
		return true
	}
	return false
}

// smallInt parses an optionally negative decimal integer of at most 18
// digits (which cannot overflow); longer ones are left to strconv.
func smallInt(num []byte) (int64, bool) {
	neg := len(num) > 0 && num[0] == '-'
	if neg {
		num = num[1:]
	}
	if len(num) == 0 || len(num) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}
