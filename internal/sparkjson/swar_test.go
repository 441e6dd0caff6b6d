package sparkjson

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestSWARSpecialExact compares the first byte swarSpecial flags with a
// byte-by-byte search: every
// byte value at every position of words of plain bytes, and random words
// (with bytes near the boundaries: 0x1f/0x20, the quotes, the backslash,
// 0x80 and above), for both quotes.
func TestSWARSpecialExact(t *testing.T) {
	// naive is the position of the first special byte, 8 if none.
	naive := func(x uint64, q byte) int {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], x)
		for i, c := range b {
			if c < 0x20 || c == q || c == '\\' {
				return i
			}
		}
		return 8
	}
	check := func(x uint64, q byte) {
		got := 8
		if m := swarSpecial(x, uint64(q)*swarOnes); m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if want := naive(x, q); got != want {
			t.Fatalf("swarSpecial(%#016x, %q): first special byte %d, want %d", x, q, got, want)
		}
	}
	for _, q := range []byte{'"', '\''} {
		for _, fill := range []byte{'a', 0x20, 0xff, 0x80, q + 1, '\\' + 1} {
			for pos := 0; pos < 8; pos++ {
				for c := 0; c < 256; c++ {
					var b [8]byte
					for i := range b {
						b[i] = fill
					}
					b[pos] = byte(c)
					check(binary.LittleEndian.Uint64(b[:]), q)
				}
			}
		}
		rng := rand.New(rand.NewPCG(3, 4))
		near := []byte{0, 0x1f, 0x20, 0x21, '"', '\'', '\\', 0x7f, 0x80, 0x9f, 0xa0, 0xdc, 0xff, 'x'}
		for n := 0; n < 1_000_000; n++ {
			var b [8]byte
			for i := range b {
				if rng.IntN(2) == 0 {
					b[i] = near[rng.IntN(len(near))]
				} else {
					b[i] = byte(rng.IntN(256))
				}
			}
			check(binary.LittleEndian.Uint64(b[:]), q)
		}
	}
}
