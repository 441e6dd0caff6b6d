package watermark

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Units of a watermark delay, in milliseconds. A month is 31 days and a
// year 12 months, as Spark counts them for watermark delays.
var delayUnits = map[string]float64{
	"microsecond": 0.001, "microseconds": 0.001, "us": 0.001,
	"millisecond": 1, "milliseconds": 1, "ms": 1,
	"second": 1000, "seconds": 1000, "sec": 1000, "secs": 1000, "s": 1000,
	"minute": 60_000, "minutes": 60_000, "min": 60_000, "mins": 60_000, "m": 60_000,
	"hour": 3_600_000, "hours": 3_600_000, "h": 3_600_000,
	"day": 86_400_000, "days": 86_400_000, "d": 86_400_000,
	"week": 7 * 86_400_000, "weeks": 7 * 86_400_000,
	"month": 31 * 86_400_000, "months": 31 * 86_400_000,
	"year": 12 * 31 * 86_400_000, "years": 12 * 31 * 86_400_000,
}

// ParseDelay parses a withWatermark delay threshold — a Spark interval
// such as "10 seconds", "1 minute 30 seconds", "2 years 5 months" or
// "interval 1 hour" — into milliseconds. Terms may be signed; a month
// counts 31 days. A total below zero fails with Spark's message ("delay
// threshold (…) should not be negative.").
func ParseDelay(s string) (int64, error) {
	text := strings.ToLower(strings.TrimSpace(s))
	if rest, ok := strings.CutPrefix(text, "interval"); ok && (rest == "" || rest[0] == ' ') {
		text = strings.TrimSpace(rest)
	}
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return 0, fmt.Errorf("invalid delay threshold %q: empty (e.g. \"10 seconds\")", s)
	}
	var total float64
	for i := 0; i < len(fields); i++ {
		num, unit := fields[i], ""
		// "10s" or "10 seconds".
		j := strings.IndexFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' })
		if j > 0 {
			num, unit = fields[i][:j], fields[i][j:]
		} else if i+1 < len(fields) {
			i++
			unit = fields[i]
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || j == 0 {
			return 0, fmt.Errorf("invalid delay threshold %q: expected a number at %q", s, fields[i])
		}
		if unit == "" {
			return 0, fmt.Errorf("invalid delay threshold %q: missing unit after %s (e.g. %q)", s, num, num+" seconds")
		}
		per, ok := delayUnits[unit]
		if !ok {
			return 0, fmt.Errorf("invalid delay threshold %q: unknown unit %q (units: milliseconds, seconds, minutes, hours, days, weeks, months, years)", s, unit)
		}
		total += v * per
	}
	if total < 0 {
		return 0, fmt.Errorf("delay threshold (%s) should not be negative.", s)
	}
	if total > math.MaxInt64/2 {
		return 0, errors.New("delay threshold " + strconv.Quote(s) + " is too large")
	}
	return int64(total), nil
}
