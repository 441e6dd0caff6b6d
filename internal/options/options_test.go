package options

import (
	"math"
	"testing"
)

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{{0, "0B"}, {100, "100B"}, {512 << 10, "512KiB"}, {128 << 20, "128MiB"}, {24676440 << 10, "23.5GiB"}, {3 << 40, "3TiB"}} {
		got := FormatSize(tc.in)
		if got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := ParseBytes(got); err != nil || math.Abs(float64(back-tc.in)) > 0.05*float64(tc.in) {
			t.Errorf("ParseBytes(%q) = %d, %v", got, back, err)
		}
	}
}
