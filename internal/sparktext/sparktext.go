// Package sparktext is the one home of the text forms Spark gives values,
// so that a cast, the console, the JSON and CSV files, partition
// directories, Delta statistics and the Kafka offsets in checkpoints and
// progress print the same value the same way, and the way Spark prints it:
//
//   - doubles as Java's Double.toString (Spark's CAST(d AS STRING), the
//     console, Jackson's JSON numbers, the CSV writer): AppendDouble;
//   - dates as yyyy-MM-dd (years past 9999 signed, as java.time prints
//     them): AppendDate;
//   - timestamps as CAST(ts AS STRING) and the console show them,
//     "yyyy-MM-dd HH:mm:ss[.ffffff]" with trailing zeros dropped:
//     AppendTimestamp; and as the JSON and CSV writers write them with
//     their default timestampFormat, yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]:
//     AppendWriterTimestamp;
//   - Kafka offsets as Spark's {"topic":{"partition":offset}} JSON:
//     ParseKafkaOffsets, AppendKafkaOffsets;
//   - Spark's datetime patterns (timestampFormat, to_timestamp's fmt) as Go
//     layouts: JavaLayout.
//
// sluice has no FLOAT (float32) and no INTERVAL values, so there are no
// forms for them. The value encoders append to a byte slice and allocate
// nothing else, for per-row use.
package sparktext

import (
	"math"
	"strconv"
	"time"
)

// AppendDouble appends f as Java's Double.toString renders it (JDK 19 and
// later, Spark's CAST(double AS STRING)):
//
//   - NaN, Infinity, -Infinity; 0.0 and -0.0;
//   - plain notation with at least one fractional digit for
//     1e-3 <= |f| < 1e7 ("1.0", "0.001", "9999999.0", "1234567.5");
//   - otherwise computerized scientific notation, a mantissa with at least
//     one fractional digit and an unpadded exponent ("1.0E7", "1.0E-4",
//     "1.23456789E7", "1.0E21").
//
// The digits are the shortest that read back as f; when one significant
// digit would do, Java picks the two-digit decimal closest to f if that
// also reads back (Double.MIN_VALUE is "4.9E-324", not "5.0E-324"). JDKs
// before 19 print more digits than needed for a few values; sluice
// follows the current JDK.
func AppendDouble(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-tripping digits: d[.ddd]e±XX.
	var scratch [32]byte
	e := strconv.AppendFloat(scratch[:0], f, 'e', -1, 64)
	var digits [24]byte
	nd, exp := splitE(e, digits[:])
	if nd == 1 {
		// Java's rule for one significant digit: the closest two-digit
		// decimal, if it reads back as f.
		var two [32]byte
		t := strconv.AppendFloat(two[:0], f, 'e', 1, 64)
		if back, err := strconv.ParseFloat(string(t), 64); err == nil && back == f {
			var d2 [24]byte
			n2, x2 := splitE(t, d2[:])
			for n2 > 1 && d2[n2-1] == '0' {
				n2--
			}
			nd, exp = n2, x2
			copy(digits[:], d2[:n2])
		}
	}
	if f >= 1e-3 && f < 1e7 {
		if exp >= 0 {
			intLen := exp + 1
			for k := 0; k < intLen; k++ {
				if k < nd {
					dst = append(dst, digits[k])
				} else {
					dst = append(dst, '0')
				}
			}
			dst = append(dst, '.')
			if nd > intLen {
				return append(dst, digits[intLen:nd]...)
			}
			return append(dst, '0')
		}
		dst = append(dst, '0', '.')
		for k := 0; k < -exp-1; k++ {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...)
	}
	dst = append(dst, digits[0], '.')
	if nd > 1 {
		dst = append(dst, digits[1:nd]...)
	} else {
		dst = append(dst, '0')
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(exp), 10)
}

// splitE reads the digits and exponent of strconv's 'e' format
// ("d.ddde±XX") into digits.
func splitE(e []byte, digits []byte) (nd, exp int) {
	i := 0
	for ; i < len(e) && e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[nd] = e[i]
			nd++
		}
	}
	x, _ := strconv.Atoi(string(e[i+1:]))
	return nd, x
}

// FormatDouble is AppendDouble returning a string.
func FormatDouble(f float64) string { return string(AppendDouble(nil, f)) }

const (
	secondsPerDay   = 86_400
	microsPerSecond = 1_000_000
)

// DefaultDateFormat is the dateFormat option's default of Spark's JSON and
// CSV sources and writers; AppendDate writes it.
const DefaultDateFormat = "yyyy-MM-dd"

// DefaultTimestampFormat is the timestampFormat option's default of
// Spark's JSON and CSV writers (Spark 3 and later; Spark 2 used
// yyyy-MM-dd'T'HH:mm:ss.SSSXXX, which prints the same);
// AppendWriterTimestamp writes it.
const DefaultTimestampFormat = "yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]"

// AppendDate appends days since the epoch as Spark prints a date:
// yyyy-MM-dd, proleptic Gregorian. Spark's pattern letter y is java.time's
// u, so years outside 0000–9999 carry a sign: "-0001-01-01",
// "+10000-01-01".
func AppendDate(dst []byte, days int64) []byte {
	return appendYMD(dst, time.Unix(days*secondsPerDay, 0).UTC())
}

func appendYMD(dst []byte, t time.Time) []byte {
	y, m, d := t.Date()
	switch {
	case y > 9999:
		dst = append(dst, '+')
		dst = strconv.AppendInt(dst, int64(y), 10)
	case y < 0:
		dst = append(dst, '-')
		dst = appendPadded(dst, -int64(y), 4)
	default:
		dst = appendPadded(dst, int64(y), 4)
	}
	dst = append(dst, '-')
	dst = append2(dst, int(m))
	dst = append(dst, '-')
	return append2(dst, d)
}

// at returns the wall-clock time of micros since the epoch in loc (nil:
// UTC) and its microsecond of second.
func at(micros int64, loc *time.Location) (time.Time, int64) {
	secs := micros / microsPerSecond
	frac := micros % microsPerSecond
	if frac < 0 {
		secs--
		frac += microsPerSecond
	}
	if loc == nil {
		loc = time.UTC
	}
	return time.Unix(secs, 0).In(loc), frac
}

func appendClock(dst []byte, t time.Time) []byte {
	h, mi, s := t.Clock()
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, mi)
	dst = append(dst, ':')
	return append2(dst, s)
}

// AppendTimestamp appends micros since the epoch as Spark's CAST(ts AS
// STRING) and the console print it: "yyyy-MM-dd HH:mm:ss" in the session
// time zone loc (nil: UTC), then the fraction of the second, if any, with
// trailing zeros dropped (".5", ".000001").
func AppendTimestamp(dst []byte, micros int64, loc *time.Location) []byte {
	t, frac := at(micros, loc)
	dst = appendYMD(dst, t)
	dst = append(dst, ' ')
	dst = appendClock(dst, t)
	if frac != 0 {
		dst = append(dst, '.')
		digits := 6
		for frac%10 == 0 {
			frac /= 10
			digits--
		}
		dst = appendPadded(dst, frac, digits)
	}
	return dst
}

// AppendTimestampMicros is AppendTimestamp with a non-zero fraction
// written as all six microsecond digits ("12:00:03.500000"), the form of
// Delta's timestamp partition values.
func AppendTimestampMicros(dst []byte, micros int64, loc *time.Location) []byte {
	t, frac := at(micros, loc)
	dst = appendYMD(dst, t)
	dst = append(dst, ' ')
	dst = appendClock(dst, t)
	if frac != 0 {
		dst = append(dst, '.')
		dst = appendPadded(dst, frac, 6)
	}
	return dst
}

// AppendWriterTimestamp appends micros since the epoch as Spark's JSON and
// CSV writers write a timestamp with their default timestampFormat
// (DefaultTimestampFormat) in the session time zone loc (nil: UTC):
// "2024-05-01T12:00:03.000Z", "1969-12-31T23:59:59.999+01:00". The
// fraction has exactly three digits: Spark drops the microseconds (it
// truncates, toward the earlier millisecond). The offset is "Z" for UTC,
// else ±HH:MM (seconds of historical offsets are not printed, as in
// java.time's XXX).
func AppendWriterTimestamp(dst []byte, micros int64, loc *time.Location) []byte {
	t, frac := at(micros, loc)
	dst = appendYMD(dst, t)
	dst = append(dst, 'T')
	dst = appendClock(dst, t)
	dst = append(dst, '.')
	dst = appendPadded(dst, frac/1000, 3)
	_, off := t.Zone()
	if off == 0 {
		return append(dst, 'Z')
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	dst = append(dst, sign)
	dst = append2(dst, off/3600)
	dst = append(dst, ':')
	return append2(dst, off/60%60)
}

func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10%10), byte('0'+v%10))
}

// appendPadded appends v (≥ 0) with at least width digits.
func appendPadded(dst []byte, v int64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}
