package sparkjson

import (
	"encoding/binary"
	"math/bits"
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
// flat struct with its name table (isFlat, newNameTable). ok is false when the record
// is not one it reads: then nothing was appended to col and the lexer and
// the decoder's problem are as they were.
//
// It reads the record with its own scanners rather than the lexer's: names
// and strings 8 bytes at a time (specialAt), a name matched by its length
// and first word (nameTable), an unwanted string or plain number skipped
// without decoding it (stringEnd, numberEnd). Each accepts only what the
// lexer accepts, with the same end; anything else (single quotes, NaN,
// nested values, errors) goes to the lexer, or makes the fast path give up.
// Every member is read to the closing brace even when all wanted fields
// have been seen: a later repeat of one, or a syntax error, changes
// Spark's result.
func (d *Decoder) flatObject(c *conv, col *batch.Column) (ok bool) {
	lx := &d.lx
	b := lx.b
	start := lx.i
	base := col.Len
	names := c.table
	d.clean = d.markQuotes(b)
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
			// The name: to its closing quote, giving up on escapes.
			ns := i + 1
			var j int
			if d.clean {
				j = d.quoteAt(ns)
			} else {
				j = specialAt(b, ns, dquotes)
			}
			if j >= len(b) || b[j] != '"' {
				return bail()
			}
			name := b[ns:j]
			var idx int
			if n := len(name); n > maxTableName {
				idx = c.field(name)
			} else {
				var w uint64
				switch {
				case ns+8 <= len(b):
					w = binary.LittleEndian.Uint64(b[ns:])
					if n < 8 {
						w &= 1<<(8*n) - 1
					}
				default:
					w = loadWord(name)
				}
				idx = names.lookup(name, w)
			}
			i = j + 1
			if i < len(b) && b[i] == ':' {
				i++
			} else if i = skipWSAt(b, i); i < len(b) && b[i] == ':' {
				i++
			} else {
				return bail()
			}
			i = skipWSAt(b, i)
			if i >= len(b) {
				return bail()
			}
			if idx < 0 {
				// An unwanted value: strings and plain numbers here,
				// anything else by the lexer.
				if b[i] == '"' {
					if i, _ = d.stringEnd(i + 1); i < 0 {
						return bail()
					}
				} else if e := numberEnd(b, i); e >= 0 {
					i = e
				} else {
					lx.i = i
					if !lx.skipValue(1) {
						return bail()
					}
					i = lx.i
				}
			} else {
				bit := uint64(1) << idx
				if seen&bit != 0 {
					return bail() // a repeated field
				}
				seen |= bit
				lx.i = i
				if !d.flatValue(c.fields[idx], col.Children[idx]) {
					seen &^= bit // nothing appended
					return bail()
				}
				i = lx.i
			}
			i = skipWSAt(b, i)
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

// dquotes is the double quote in every byte of a word, for swarSpecial.
const dquotes = '"' * swarOnes

// specialAt returns the index of the first byte of b at or after j that
// is below 0x20, a backslash or the quote whose byte qs repeats, or len(b)
// (or j, if j is past the end) when there is none.
func specialAt(b []byte, j int, qs uint64) int {
	for j+8 <= len(b) {
		if m := swarSpecial(binary.LittleEndian.Uint64(b[j:]), qs); m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
		j += 8
	}
	q := byte(qs)
	for ; j < len(b); j++ {
		if c := b[j]; c < 0x20 || c == '\\' || c == q {
			return j
		}
	}
	return j
}

// stringEnd returns the index just past the closing '"' of the
// double-quoted string whose body starts at j, and whether the body has
// escapes; end is -1 where the lexer's stringToken fails (an unescaped
// control character, no closing quote). As stringToken, it takes a
// backslash and the byte after it as an escape without checking it.
func stringEnd(b []byte, j int) (end int, esc bool) {
	for {
		j = specialAt(b, j, dquotes)
		if j >= len(b) {
			return -1, esc
		}
		switch b[j] {
		case '"':
			return j + 1, esc
		case '\\':
			esc = true
			j += 2
		default:
			return -1, esc
		}
	}
}

// stringEnd is stringEnd on the record, through its quote marks when it
// is clean.
func (d *Decoder) stringEnd(j int) (end int, esc bool) {
	if d.clean {
		if j = d.quoteAt(j); j >= len(d.lx.b) {
			return -1, false
		}
		return j + 1, false
	}
	return stringEnd(d.lx.b, j)
}

// quoteAt returns the index of the first double quote at or after j in the
// record markQuotes marked, or its length when there is none.
func (d *Decoder) quoteAt(j int) int {
	k := j >> 6
	if k >= len(d.quotes) {
		return len(d.lx.b)
	}
	m := d.quotes[k] & (^uint64(0) << (j & 63))
	for m == 0 {
		if k++; k >= len(d.quotes) {
			return len(d.lx.b)
		}
		m = d.quotes[k]
	}
	return k<<6 + bits.TrailingZeros64(m)
}

// numberEnd returns the end of the plain JSON number at i (an optional
// '-', digits without a leading zero, a fraction, an exponent) when the
// byte after it is not a word byte, exactly where the lexer's number ends
// it, or -1 for anything else (NaN, Infinity, a sign '+', errors), which
// the lexer is left to read.
func numberEnd(b []byte, i int) int {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	d := j
	if j = digitsEnd(b, j); j == d || b[d] == '0' && j-d > 1 {
		return -1
	}
	if j < len(b) && b[j] == '.' {
		f := j + 1
		if j = digitsEnd(b, f); j == f {
			return -1
		}
	}
	if j < len(b) && b[j]|0x20 == 'e' {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		e := j
		if j = digitsEnd(b, e); j == e {
			return -1
		}
	}
	if j < len(b) && isWordByte(b[j]) {
		return -1
	}
	return j
}

// digitsEnd returns the end of the run of ASCII digits at b[i:].
func digitsEnd(b []byte, i int) int {
	for i < len(b) && b[i]-'0' < 10 {
		i++
	}
	return i
}

// maxTableName is the longest name a nameTable holds; longer ones are
// matched by conv.field.
const maxTableName = 32

// nameTable matches object field names to the fields of a flat struct
// by length and first word before comparing the rest: lookup answers
// exactly as conv.field does for names of at most maxTableName bytes.
type nameTable struct {
	// entries, by name length: those of length n are
	// entries[first[n]:first[n+1]].
	entries []nameEntry
	first   [maxTableName + 2]uint8
	// lens has bit n set when a name has n bytes.
	lens uint64
}

// nameEntry is one distinct field name.
type nameEntry struct {
	w    uint64 // the name's first 8 bytes (little endian, zero padded)
	rest string // the bytes past the first 8
	idx  int    // conv.field of the name
}

// newNameTable builds the name table of a flat struct (at most 64 fields).
func newNameTable(c *conv) *nameTable {
	var byLen [maxTableName + 1][]nameEntry
	done := make(map[string]bool, len(c.names))
	for _, n := range c.names {
		if len(n) > maxTableName || done[string(n)] {
			continue
		}
		done[string(n)] = true
		byLen[len(n)] = append(byLen[len(n)], nameEntry{w: loadWord(n), rest: string(n[min(8, len(n)):]), idx: c.field(n)})
	}
	t := &nameTable{}
	for n, es := range byLen {
		t.first[n] = uint8(len(t.entries))
		t.entries = append(t.entries, es...)
		if len(es) > 0 {
			t.lens |= 1 << n
		}
	}
	t.first[maxTableName+1] = uint8(len(t.entries))
	return t
}

// lookup returns conv.field(name) for a name of at most maxTableName
// bytes whose first word is w (as loadWord returns it).
func (t *nameTable) lookup(name []byte, w uint64) int {
	n := len(name)
	if t.lens&(1<<n) == 0 {
		return -1
	}
	for _, e := range t.entries[t.first[n]:t.first[n+1]] {
		if e.w == w && (n <= 8 || string(name[8:]) == e.rest) {
			return e.idx
		}
	}
	return -1
}

// loadWord returns the first 8 bytes of b, little endian, zero padded.
func loadWord(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.LittleEndian.Uint64(b)
	}
	var w uint64
	for k, c := range b {
		w |= uint64(c) << (8 * k)
	}
	return w
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
		end, esc := d.stringEnd(lx.i + 1)
		if end < 0 {
			return false
		}
		if esc {
			s, ok := d.str() // decoded into the arena
			if !ok {
				return false
			}
			col.AppendBytes(s)
			return true
		}
		col.AppendBytes(lx.b[lx.i+1 : end-1 : end-1])
		lx.i = end
		return true
	case batch.Timestamp:
		if ch != '"' || d.p.opts.TimestampLayout != "" {
			return false
		}
		end, esc := d.stringEnd(lx.i + 1)
		if end < 0 || esc {
			return false
		}
		v, ok := sparktext.ParseTimestamp(lx.b[lx.i+1 : end-1])
		if !ok {
			return false
		}
		lx.i = end
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
