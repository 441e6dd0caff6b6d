package sparkjson

import "encoding/binary"

// markQuotes marks the double quotes of b in d.quotes, a bit a byte (bit
// j&63 of word j>>6 for b[j]), and reports whether b is clean: without a
// backslash or a byte below 0x20. In a clean record every string ends at
// the next quote, where the lexer's stringToken ends it, so the fast path
// finds names' and strings' ends from the marks (quoteAt) without
// branching on every word of the record. d.quotes holds a word for 64
// bytes of the longest record read.
func (d *Decoder) markQuotes(b []byte) bool {
	n := (len(b) + 63) >> 6
	if cap(d.quotes) < n {
		d.quotes = make([]uint64, n, n+n/4)
	}
	q := d.quotes[:n]
	d.quotes = q
	full := len(b) >> 6
	special := markBlocks(b[:full<<6], q[:full])
	if tail := len(b) - full<<6; tail > 0 {
		var last [1]uint64
		if full > 0 {
			// The last 64 bytes, overlapping the blocks before: their
			// bits for the tail are the high ones.
			special = markBlocks(b[len(b)-64:], last[:]) || special
			q[full] = last[0] >> (64 - tail)
		} else {
			// A short record, padded with spaces (neither quotes nor
			// special) to a block.
			blk := spaces
			copy(blk[:], b)
			special = markBlocks(blk[:], last[:])
			q[0] = last[0]
		}
	}
	return !special
}

// spaces is a block of spaces, to pad a short record with.
var spaces = [64]byte{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}

// markSWAR is markBlocks in Go, 8 bytes at a time, for any length of b
// (q has a word for every 64 bytes of b, or part of them).
func markSWAR(b []byte, q []uint64) (special bool) {
	var sp uint64
	// word marks the quotes of the 8 bytes of x in the low 8 bits, and
	// flags in sp any byte below 0x20 or a backslash (as swarSpecial: a
	// flag may be wrong only in a word with a right one).
	word := func(x uint64) uint64 {
		const low7 = 0x7f7f7f7f7f7f7f7f
		xb := x ^ ('\\' * swarOnes)
		sp |= ((x - 0x20*swarOnes) & ^x) | ((xb - swarOnes) & ^xb)
		// The quotes, exactly: a byte of y is zero iff its low seven bits
		// add to no carry into bit 7 and its bit 7 is clear.
		y := x ^ dquotes
		z := ^(((y & low7) + low7) | y) & swarHigh
		// Gather the bytes' high bits into 8 bits.
		return z >> 7 * 0x0102040810204080 >> 56
	}
	j := 0
	for k := range q {
		var m uint64
		if blk := b[j:]; len(blk) >= 64 {
			blk = blk[:64]
			m = word(binary.LittleEndian.Uint64(blk[0:])) |
				word(binary.LittleEndian.Uint64(blk[8:]))<<8 |
				word(binary.LittleEndian.Uint64(blk[16:]))<<16 |
				word(binary.LittleEndian.Uint64(blk[24:]))<<24 |
				word(binary.LittleEndian.Uint64(blk[32:]))<<32 |
				word(binary.LittleEndian.Uint64(blk[40:]))<<40 |
				word(binary.LittleEndian.Uint64(blk[48:]))<<48 |
				word(binary.LittleEndian.Uint64(blk[56:]))<<56
		} else {
			w := 0
			for ; w+8 <= len(blk); w += 8 {
				m |= word(binary.LittleEndian.Uint64(blk[w:])) << w
			}
			for ; w < len(blk); w++ {
				switch c := blk[w]; {
				case c == '"':
					m |= 1 << w
				case c < 0x20 || c == '\\':
					sp |= swarHigh
				}
			}
		}
		q[k] = m
		j += 64
	}
	return sp&swarHigh != 0
}
