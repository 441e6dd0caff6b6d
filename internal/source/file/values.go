package file

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/sparktext"
)

const microsPerSecond = 1_000_000

// parseTimestamp parses a timestamp string to microseconds since the
// epoch. With a layout it uses time.ParseInLocation; otherwise it accepts
// what Spark's default parsing does: yyyy[-[m]m[-[d]d]][( |T)[h]h:[m]m
// [:[s]s[.fraction]]][zone], zone being Z, UTC, GMT, ±hh[:mm], ±hhmm or
// an IANA name. Zone-less values are in loc.
func parseTimestamp(s, layout string, loc *time.Location) (int64, bool) {
	s = strings.TrimSpace(s)
	if layout != "" {
		t, err := time.ParseInLocation(layout, s, loc)
		if err != nil {
			return 0, false
		}
		return t.Unix()*microsPerSecond + int64(t.Nanosecond()/1000), true
	}
	y, mo, d, i, ok := parseDatePart(s)
	if !ok {
		return 0, false
	}
	var h, mi, sec, nanos int
	if i < len(s) && (s[i] == ' ' || s[i] == 'T') {
		i++
		if h, i, ok = digits(s, i, 1, 2); !ok || i >= len(s) || s[i] != ':' {
			return 0, false
		}
		if mi, i, ok = digits(s, i+1, 1, 2); !ok {
			return 0, false
		}
		if i < len(s) && s[i] == ':' {
			if sec, i, ok = digits(s, i+1, 1, 2); !ok {
				return 0, false
			}
			if i < len(s) && s[i] == '.' {
				i++
				scale := 100_000_000
				j := i
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					nanos += int(s[j]-'0') * scale
					scale /= 10
					j++
				}
				if j == i || j-i > 9 {
					return 0, false
				}
				i = j
			}
		}
		if h > 23 || mi > 59 || sec > 59 {
			return 0, false
		}
	}
	zone := loc
	if rest := strings.TrimSpace(s[i:]); rest != "" {
		if zone, ok = sparktext.ParseZone(rest); !ok {
			return 0, false
		}
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nanos, zone)
	return t.Unix()*microsPerSecond + int64(t.Nanosecond()/1000), true
}

// parseDate parses yyyy-[m]m-[d]d (or with a layout) to days since the
// epoch.
func parseDate(s, layout string) (int64, bool) {
	s = strings.TrimSpace(s)
	if layout != "" {
		t, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil {
			return 0, false
		}
		return floorDiv(t.Unix(), 86400), true
	}
	y, m, d, i, ok := parseDatePart(s)
	if !ok || (i < len(s) && s[i] != ' ' && s[i] != 'T') {
		return 0, false
	}
	return floorDiv(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix(), 86400), true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// digits reads lo..hi decimal digits at s[i:].
func digits(s string, i, lo, hi int) (int, int, bool) {
	v, j := 0, i
	for j < len(s) && j-i < hi && s[j] >= '0' && s[j] <= '9' {
		v = v*10 + int(s[j]-'0')
		j++
	}
	if j-i < lo {
		return 0, i, false
	}
	return v, j, true
}

// parseDatePart reads yyyy[-[m]m[-[d]d]].
func parseDatePart(s string) (y, m, d, next int, ok bool) {
	y, i, ok := digits(s, 0, 4, 6)
	if !ok {
		return
	}
	m, d = 1, 1
	if i < len(s) && s[i] == '-' {
		if m, i, ok = digits(s, i+1, 1, 2); !ok {
			return
		}
		if i < len(s) && s[i] == '-' {
			if d, i, ok = digits(s, i+1, 1, 2); !ok {
				return
			}
		}
	}
	if m < 1 || m > 12 || d < 1 || d > time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return 0, 0, 0, 0, false
	}
	return y, m, d, i, true
}

// parseDouble parses a double, honouring the CSV NaN/infinity spellings.
func parseDouble(s string, c *Config) (float64, bool) {
	t := strings.TrimSpace(s)
	switch {
	case c != nil && t == c.NaNValue:
		return math.NaN(), true
	case c != nil && t == c.PositiveInf:
		return math.Inf(1), true
	case c != nil && t == c.NegativeInf:
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}
