package options

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"
)

// intervalUnits maps every accepted unit spelling to its length. Long names
// are Spark's interval units (Trigger.ProcessingTime("20 seconds")); short
// ones are Spark's time-string suffixes (maxTriggerDelay "15m") plus Go's.
var intervalUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "nanosecond": time.Nanosecond, "nanoseconds": time.Nanosecond,
	"us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond, "microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"ms": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// longUnits are the unit names offered in "did you mean" suggestions.
var longUnits = []string{"nanoseconds", "microseconds", "milliseconds", "seconds", "minutes", "hours", "days", "weeks"}

// ParseInterval parses a Spark interval or time string into a duration.
//
// Accepted forms, case-insensitive, with an optional leading "interval":
//
//   - a bare non-negative integer: milliseconds, as Trigger.ProcessingTime(long)
//     and Spark's time options without a suffix ("500" = 500ms, "0" = 0);
//   - one or more "<number> <unit>" terms, summed: "20 seconds",
//     "1 hour 30 minutes", "10s", "1m30s", "1.5 seconds", "500 milliseconds".
//
// Units: ns, us (µs), ms, s (sec, secs), m (min, mins), h, d, and the long
// names nanosecond(s), microsecond(s), millisecond(s), second(s), minute(s),
// hour(s), day(s), week(s). Months and years are rejected (no fixed length),
// as are negative intervals. Fractions finer than a nanosecond are truncated.
func ParseInterval(s string) (time.Duration, error) {
	d, err := parseInterval(s)
	if err != nil {
		return 0, fmt.Errorf("invalid interval %q: %w", s, err)
	}
	return d, nil
}

func parseInterval(s string) (time.Duration, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if rest, ok := strings.CutPrefix(s, "interval"); ok && (rest == "" || isSpace(rest[0])) {
		s = strings.TrimSpace(rest)
	}
	if s == "" {
		return 0, errors.New("empty")
	}
	if s[0] == '-' {
		return 0, errors.New("must not be negative")
	}
	if allDigits(s) {
		ms, ok := parseDigits(s)
		if !ok || ms > math.MaxInt64/int64(time.Millisecond) {
			return 0, errors.New("too large")
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	var total time.Duration
	for i := 0; i < len(s); {
		// number: digits [. digits]
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		whole := s[start:i]
		frac := ""
		if i < len(s) && s[i] == '.' {
			i++
			fs := i
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			frac = s[fs:i]
		}
		number := s[start:i]
		if whole == "" && frac == "" {
			return 0, fmt.Errorf("expected a number at %q", s[start:])
		}
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		us := i
		for i < len(s) && !isDigit(s[i]) && !isSpace(s[i]) && s[i] != '.' {
			i++
		}
		unitName := s[us:i]
		if unitName == "" {
			return 0, fmt.Errorf("missing unit after %s (e.g. %q)", number, number+" seconds")
		}
		unit, ok := intervalUnits[unitName]
		if !ok {
			return 0, unknownUnit(unitName)
		}
		term, ok := termDuration(whole, frac, unit)
		if !ok || total > math.MaxInt64-term {
			return 0, errors.New("too large")
		}
		total += term
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	return total, nil
}

func unknownUnit(name string) error {
	switch name {
	case "mo", "mon", "mons", "month", "months", "y", "yr", "yrs", "year", "years":
		return fmt.Errorf("unit %q has no fixed length; use days or weeks", name)
	}
	if s := Suggest(name, longUnits); s != "" {
		return fmt.Errorf("unknown unit %q; did you mean %q?", name, s)
	}
	return fmt.Errorf("unknown unit %q (units: ns, us, ms, s, m, h, d or %s)", name, strings.Join(longUnits, ", "))
}

// termDuration computes (whole.frac) * unit, reporting overflow.
func termDuration(whole, frac string, unit time.Duration) (time.Duration, bool) {
	var w int64
	if whole != "" {
		var ok bool
		if w, ok = parseDigits(whole); !ok || w > math.MaxInt64/int64(unit) {
			return 0, false
		}
	}
	d := time.Duration(w) * unit
	// The fraction contributes less than one unit; keep 18 digits at most,
	// which is more precision than a nanosecond count can use.
	if len(frac) > 18 {
		frac = frac[:18]
	}
	if frac != "" {
		// frac/10^k of a unit, exactly: f*unit fits in 128 bits and the
		// quotient is below one unit.
		f, _ := parseDigits(frac)
		hi, lo := bits.Mul64(uint64(f), uint64(unit))
		q, _ := bits.Div64(hi, lo, uint64(math.Pow10(len(frac))))
		part := time.Duration(q)
		if d > math.MaxInt64-part {
			return 0, false
		}
		d += part
	}
	return d, true
}

// parseDigits parses an unsigned decimal, reporting overflow.
func parseDigits(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
