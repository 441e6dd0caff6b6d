package expr

import (
	"math"
	"strconv"
	"strings"
	"time"
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

// digitsAt reads between lo and hi decimal digits at b[i:].
func digitsAt(b []byte, i, lo, hi int) (v int, next int, ok bool) {
	j := i
	for j < len(b) && j-i < hi && isDigit(b[j]) {
		v = v*10 + int(b[j]-'0')
		j++
	}
	if j-i < lo {
		return 0, i, false
	}
	return v, j, true
}

// parseDatePart reads yyyy[-[m]m[-[d]d]] and returns the position after it.
func parseDatePart(b []byte) (y, m, d, next int, ok bool) {
	y, i, ok := digitsAt(b, 0, 4, 7)
	if !ok {
		return
	}
	m, d = 1, 1
	if i < len(b) && b[i] == '-' {
		if m, i, ok = digitsAt(b, i+1, 1, 2); !ok {
			return
		}
		if i < len(b) && b[i] == '-' {
			if d, i, ok = digitsAt(b, i+1, 1, 2); !ok {
				return
			}
		}
	}
	if m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, 0, 0, 0, false
	}
	return y, m, d, i, true
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parseDate parses Spark's date strings: yyyy, yyyy-[m]m, yyyy-[m]m-[d]d,
// optionally followed by a space or 'T' and anything. It returns days since
// the epoch.
func parseDate(b []byte) (int64, bool) {
	b = trimSpace(b)
	y, m, d, i, ok := parseDatePart(b)
	if !ok {
		return 0, false
	}
	if i < len(b) && b[i] != ' ' && b[i] != 'T' {
		return 0, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return floorDiv(t.Unix(), secondsPerDay), true
}

// parseTimestamp parses Spark's timestamp strings:
// yyyy[-[m]m[-[d]d]][( |T)[h]h:[m]m[:[s]s[.fraction]]][zone], where zone is
// Z, UTC, GMT, UT, ±h[h][[:]mm], (UTC|GMT|UT)±h[h][[:]mm] or an IANA region
// such as Europe/Paris. Without a zone the session time zone (UTC) applies.
// The fraction keeps microseconds and drops finer digits.
func parseTimestamp(b []byte) (int64, bool) {
	b = trimSpace(b)
	y, mo, d, i, ok := parseDatePart(b)
	if !ok {
		return 0, false
	}
	var h, mi, s, nanos int
	if i < len(b) && (b[i] == ' ' || b[i] == 'T') {
		i++
		if i < len(b) && isDigit(b[i]) {
			if h, i, ok = digitsAt(b, i, 1, 2); !ok || i >= len(b) || b[i] != ':' {
				return 0, false
			}
			if mi, i, ok = digitsAt(b, i+1, 1, 2); !ok {
				return 0, false
			}
			if i < len(b) && b[i] == ':' {
				if s, i, ok = digitsAt(b, i+1, 1, 2); !ok {
					return 0, false
				}
				if i < len(b) && b[i] == '.' {
					i++
					j := i
					scale := 100_000_000
					for j < len(b) && isDigit(b[j]) {
						if j-i < 9 {
							nanos += int(b[j]-'0') * scale
							scale /= 10
						}
						j++
					}
					i = j
				}
			}
			if h > 23 || mi > 59 || s > 59 {
				return 0, false
			}
		}
	}
	loc := time.UTC
	if i < len(b) {
		var ok bool
		loc, ok = ParseZone(string(trimSpace(b[i:])))
		if !ok {
			return 0, false
		}
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, nanos-nanos%1000, loc)
	return t.Unix()*microsPerSecond + int64(t.Nanosecond()/1000), true
}

// ParseZone parses the zone suffix of a timestamp string as Spark's casts
// accept it: "" (UTC), Z/UTC/GMT/UT, ±h, ±hh, ±hmm, ±hh:mm (optionally after
// UTC/GMT/UT), or a region id such as Europe/Paris. The file source's
// timestamp parsing uses it too.
func ParseZone(z string) (*time.Location, bool) {
	if z == "" {
		return time.UTC, true
	}
	u := strings.ToUpper(z)
	switch u {
	case "Z", "UTC", "GMT", "UT":
		return time.UTC, true
	}
	for _, p := range []string{"UTC", "GMT", "UT"} {
		if strings.HasPrefix(u, p) && len(u) > len(p) && (u[len(p)] == '+' || u[len(p)] == '-') {
			u = u[len(p):]
			break
		}
	}
	if u[0] == '+' || u[0] == '-' {
		body := strings.ReplaceAll(u[1:], ":", "")
		var hh, mm int
		switch len(body) {
		case 1, 2:
			v, err := strconv.Atoi(body)
			if err != nil {
				return nil, false
			}
			hh = v
		case 3, 4:
			h, err1 := strconv.Atoi(body[:len(body)-2])
			m, err2 := strconv.Atoi(body[len(body)-2:])
			if err1 != nil || err2 != nil {
				return nil, false
			}
			hh, mm = h, m
		default:
			return nil, false
		}
		if hh > 18 || mm > 59 {
			return nil, false
		}
		off := hh*3600 + mm*60
		if u[0] == '-' {
			off = -off
		}
		return time.FixedZone(z, off), true
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return nil, false
	}
	return loc, true
}
