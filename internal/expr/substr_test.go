package expr

import (
	"bytes"
	"testing"
)

// FuzzSubstringFastPath compares substringSQL (with its fast path for a
// negative position over an ASCII tail) with the general path, on any
// bytes (invalid UTF-8 included) and positions.
func FuzzSubstringFastPath(f *testing.F) {
	for _, s := range []string{"o-000001", "héllo", "ab\xe2\x82", "\xf0\x9f\x98\x80\x80x", "", "x"} {
		for _, pos := range []int64{-1, -4, -5, -9, 1, 0} {
			f.Add([]byte(s), pos, int64(2))
			f.Add([]byte(s), pos, int64(1<<31-1))
		}
	}
	f.Fuzz(func(t *testing.T, s []byte, pos, length int64) {
		if pos < -1<<40 || pos > 1<<40 || length < -1<<40 || length > 1<<40 {
			return // the planner's positions and lengths are 32-bit
		}
		for _, chars := range []bool{true, false} {
			got, want := substringSQL(s, pos, length, chars), substringGeneral(s, pos, length, chars)
			if !bytes.Equal(got, want) {
				t.Fatalf("substring(%q, %d, %d) chars %v = %q, general path %q", s, pos, length, chars, got, want)
			}
		}
	})
}
