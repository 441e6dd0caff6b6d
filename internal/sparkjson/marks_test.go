package sparkjson

import (
	"math/rand/v2"
	"testing"
)

// TestMarkBlocks compares markBlocks (SSE2 on amd64), markSWAR and
// markQuotes (blocks and the record's last bytes) with a
// byte loop: every byte value at every position of a 64-byte block, and
// random records of every length up to 300 bytes made of bytes near the
// boundaries (0x1f/0x20, the quotes, the backslash, 0x80 and above).
func TestMarkBlocks(t *testing.T) {
	naive := func(b []byte) (q []uint64, special bool) {
		q = make([]uint64, (len(b)+63)/64)
		for i, c := range b {
			if c == '"' {
				q[i/64] |= 1 << (i % 64)
			}
			if c < 0x20 || c == '\\' {
				special = true
			}
		}
		return q, special
	}
	check := func(b []byte) {
		wantQ, wantSp := naive(b)
		q := make([]uint64, len(wantQ))
		if sp := markSWAR(b, q); sp != wantSp || !equalWords(q, wantQ) {
			t.Fatalf("markSWAR(%q) = %x %v, want %x %v", b, q, sp, wantQ, wantSp)
		}
		var d Decoder
		d.lx.b = b
		if clean := d.markQuotes(b); clean == wantSp || !equalWords(d.quotes, wantQ) {
			t.Fatalf("markQuotes(%q) = %x %v, want %x %v", b, d.quotes, clean, wantQ, !wantSp)
		}
		full := len(b) / 64
		clear(q)
		if sp := markBlocks(b[:full*64], q[:full]); sp != (func() bool { _, s := naive(b[:full*64]); return s })() || !equalWords(q[:full], wantQ[:full]) {
			t.Fatalf("markBlocks(%q) = %x %v, want %x", b[:full*64], q[:full], sp, wantQ[:full])
		}
	}
	for _, fill := range []byte{'a', 0x20, 0xff, 0x80, '"' + 1, '#', '\\' + 1} {
		for pos := range 64 {
			for c := range 256 {
				b := make([]byte, 64)
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				check(b)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	near := []byte{0, 0x1f, 0x20, 0x21, '"', '#', '!', '\'', '\\', 0x5b, 0x5d, 0x7f, 0x80, 0x9f, 0xa0, 0xa2, 0xdc, 0xff, 'x'}
	for n := range 300 {
		for range 200 {
			b := make([]byte, n)
			for i := range b {
				if rng.IntN(2) == 0 {
					b[i] = near[rng.IntN(len(near))]
				} else {
					b[i] = byte(rng.IntN(256))
				}
			}
			check(b)
		}
	}
}

func equalWords(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
