package expr

import (
	"math"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/sparktext"
)

const (
	microsPerSecond = int64(1_000_000)
	microsPerDay    = 86_400 * microsPerSecond
	secondsPerDay   = int64(86_400)
)

// floorDiv is integer division rounding toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// trimSpace trims ASCII whitespace and control characters (bytes <= 0x20)
// from both ends, as Spark does before parsing a string in a cast.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && b[i] <= ' ' {
		i++
	}
	for j > i && b[j-1] <= ' ' {
		j--
	}
	return b[i:j]
}

// parseIntegral parses a string the way Spark's non-ANSI cast to an
// integral type does: optional sign, digits, and an optional fractional
// part that is validated and truncated ("1.9" → 1). bits is 32 or 64;
// out-of-range values fail.
func parseIntegral(b []byte, bits int) (int64, bool) {
	b = trimSpace(b)
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	i := 0
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		i = 1
	}
	limit := uint64(math.MaxInt64)
	if bits == 32 {
		limit = math.MaxInt32
	}
	if neg {
		limit++
	}
	var v uint64
	digits := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		v = v*10 + uint64(b[i]-'0')
		if v > limit {
			return 0, false
		}
		digits++
	}
	dot := false
	if i < len(b) && b[i] == '.' {
		dot = true
		i++
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	// Like Spark, a lone separator counts as zero: ".5" and "5." parse.
	if i != len(b) || (digits == 0 && !dot) {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// parseDouble parses a string the way Spark's cast to DOUBLE does: Java
// floating-point syntax including an optional d/D/f/F suffix, Infinity and
// NaN (also inf and nan, any case). Out-of-range values become ±Infinity.
func parseDouble(b []byte) (float64, bool) {
	s := string(trimSpace(b))
	if s == "" {
		return 0, false
	}
	if n := len(s); n > 1 && strings.ContainsRune("dDfF", rune(s[n-1])) && !strings.HasSuffix(strings.ToLower(s), "inf") {
		s = s[:n-1]
	}
	if strings.Contains(s, "_") {
		return 0, false // Go accepts digit separators, Java does not
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return v, true
		}
		return 0, false
	}
	return v, true
}

// parseBool parses Spark's boolean strings: t, true, y, yes, 1 and f,
// false, n, no, 0, case-insensitively after trimming.
func parseBool(b []byte) (bool, bool) {
	switch strings.ToLower(string(trimSpace(b))) {
	case "t", "true", "y", "yes", "1":
		return true, true
	case "f", "false", "n", "no", "0":
		return false, true
	}
	return false, false
}

// parseDate and parseTimestamp are Spark's lenient casts from strings
// (sparktext is their one home: from_json and the file source use them
// too).
func parseDate(b []byte) (int64, bool)      { return sparktext.ParseDate(b) }
func parseTimestamp(b []byte) (int64, bool) { return sparktext.ParseTimestamp(b) }
