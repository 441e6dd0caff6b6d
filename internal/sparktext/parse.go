package sparktext

import (
	"strconv"
	"strings"
	"time"
)

// Parsing the text forms of dates and timestamps, as Spark's casts from
// strings do (with sluice's session time zone, UTC).

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

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

func floorDivInt(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
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

// monthDays are the days of each month of a common year.
var monthDays = [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func daysIn(y, m int) int {
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		return 29
	}
	return monthDays[m]
}

// daysFromCivil is the day number (days since 1970-01-01) of a valid
// proleptic Gregorian date, as time.Date computes it (H. Hinnant's
// days_from_civil), without time.Date's normalisation.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m - 3
	if m <= 2 {
		mp = m + 9
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146_097 + int64(doe) - 719_468
}

// ParseDate parses Spark's date strings as CAST(s AS DATE) does: yyyy, yyyy-[m]m, yyyy-[m]m-[d]d,
// optionally followed by a space or 'T' and anything. It returns days since
// the epoch.
func ParseDate(b []byte) (int64, bool) {
	b = trimSpace(b)
	y, m, d, i, ok := parseDatePart(b)
	if !ok {
		return 0, false
	}
	if i < len(b) && b[i] != ' ' && b[i] != 'T' {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

// ParseTimestamp parses Spark's timestamp strings as CAST(s AS TIMESTAMP)
// does (and the JSON and CSV readers without a timestampFormat):
// yyyy[-[m]m[-[d]d]][( |T)[h]h:[m]m[:[s]s[.fraction]]][zone], where zone is
// Z, UTC, GMT, UT, ±h[h][[:]mm], (UTC|GMT|UT)±h[h][[:]mm] or an IANA region
// such as Europe/Paris. Without a zone the session time zone (UTC) applies.
// The fraction keeps microseconds and drops finer digits.
func ParseTimestamp(b []byte) (int64, bool) {
	if v, ok := parseISOZ(b); ok {
		return v, true
	}
	return parseTimestamp(b)
}

// parseISOZ is ParseTimestamp's fast path for the form JSON producers
// write, yyyy-MM-dd(T| )HH:mm:ss[.fraction]Z; ok is false for any other
// text (which ParseTimestamp then parses in full).
func parseISOZ(b []byte) (int64, bool) {
	n := len(b)
	if n < 20 || b[n-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' && b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	two := func(i int) int {
		if !isDigit(b[i]) || !isDigit(b[i+1]) {
			return -1
		}
		return int(b[i]-'0')*10 + int(b[i+1]-'0')
	}
	hi, lo := two(0), two(2)
	mo, d, h, mi, s := two(5), two(8), two(11), two(14), two(17)
	if hi < 0 || lo < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 {
		return 0, false
	}
	y := hi*100 + lo
	if d > daysIn(y, mo) {
		return 0, false
	}
	nanos := 0
	if n > 20 {
		if b[19] != '.' || n == 21 {
			return 0, false
		}
		scale := 100_000_000
		for j := 20; j < n-1; j++ {
			if !isDigit(b[j]) {
				return 0, false
			}
			if j-20 < 9 {
				nanos += int(b[j]-'0') * scale
				scale /= 10
			}
		}
	}
	secs := daysFromCivil(y, mo, d)*secondsPerDay + int64(h*3600+mi*60+s)
	return secs*microsPerSecond + int64(nanos/1000), true
}

// parseTimestamp is ParseTimestamp's general path.
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
		if z := trimSpace(b[i:]); len(z) != 1 || z[0] != 'Z' && z[0] != 'z' {
			var ok bool
			if loc, ok = ParseZone(string(z)); !ok {
				return 0, false
			}
		}
	}
	if loc == time.UTC {
		secs := daysFromCivil(y, mo, d)*secondsPerDay + int64(h*3600+mi*60+s)
		return secs*microsPerSecond + int64(nanos/1000), true
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, nanos-nanos%1000, loc)
	return t.Unix()*microsPerSecond + int64(t.Nanosecond()/1000), true
}

// ParseZone parses the zone suffix of a timestamp string as Spark's casts
// accept it: "" (UTC), Z/UTC/GMT/UT, ±h, ±hh, ±hmm, ±hh:mm (optionally after
// UTC/GMT/UT), or a region id such as Europe/Paris.
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
