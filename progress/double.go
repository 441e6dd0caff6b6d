package progress

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Double is a floating-point progress figure serialized the way Spark's
// progress JSON writes doubles: rounded to one decimal place HALF_UP (of the
// shortest decimal form of the value, as Scala's BigDecimal(d) does), always
// with the decimal point ("10000.0"). NaN and ±Inf are "not a value": a field
// of type Double tagged omitzero is left out of the JSON, and an absent field
// decodes back to NaN in the structs of this package.
type Double float64

// Ratio is like Double but keeps three decimals, for sluice's ratios
// (busyRatio, batchDurationVsTrigger, taskSkew) where one decimal would hide
// the signal. Spark has no ratios in its progress; this is a sluice rule.
type Ratio float64

// NaN is the "unknown" value for Double and Ratio fields.
func NaN() Double { return Double(math.NaN()) }

// IsZero reports whether d is not a finite number, which makes omitzero drop
// it. A real 0 is kept and written as 0.0.
func (d Double) IsZero() bool { return !finite(float64(d)) }

// MarshalJSON writes d with one decimal HALF_UP. Non-finite values, which
// should have been omitted by omitzero, are written as null.
func (d Double) MarshalJSON() ([]byte, error) { return marshalFixed(float64(d), 1), nil }

// UnmarshalJSON reads a JSON number; null reads as NaN.
func (d *Double) UnmarshalJSON(b []byte) error {
	f, err := unmarshalFloat(b)
	*d = Double(f)
	return err
}

// IsZero reports whether r is not a finite number (see Double.IsZero).
func (r Ratio) IsZero() bool { return !finite(float64(r)) }

// MarshalJSON writes r with three decimals HALF_UP.
func (r Ratio) MarshalJSON() ([]byte, error) { return marshalFixed(float64(r), 3), nil }

// UnmarshalJSON reads a JSON number; null reads as NaN.
func (r *Ratio) UnmarshalJSON(b []byte) error {
	f, err := unmarshalFloat(b)
	*r = Ratio(f)
	return err
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func marshalFixed(f float64, decimals int) []byte {
	if !finite(f) {
		return []byte("null")
	}
	return []byte(FormatHalfUp(f, decimals))
}

func unmarshalFloat(b []byte) (float64, error) {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return math.NaN(), fmt.Errorf("progress: parse number %q: %w", b, err)
	}
	return f, nil
}

// FormatHalfUp formats f with exactly decimals digits after the point
// (decimals >= 1), rounding the shortest decimal representation of f half
// away from zero (Java's RoundingMode.HALF_UP), e.g. 0.25 → "0.3",
// 0.15 → "0.2", -2.25 → "-2.3". A result of zero is never negative ("0.0").
// Non-finite values format as "NaN", "+Inf" or "-Inf".
func FormatHalfUp(f float64, decimals int) string {
	if !finite(f) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	if decimals < 1 {
		decimals = 1
	}
	s := strconv.FormatFloat(math.Abs(f), 'f', -1, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	var digits []byte
	if len(frac) <= decimals {
		digits = append([]byte(intPart), frac...)
		for i := len(frac); i < decimals; i++ {
			digits = append(digits, '0')
		}
	} else {
		digits = append([]byte(intPart), frac[:decimals]...)
		if frac[decimals] >= '5' {
			digits = incrementDecimal(digits)
		}
	}
	neg := f < 0 && strings.Trim(string(digits), "0") != ""
	split := len(digits) - decimals
	var out strings.Builder
	if neg {
		out.WriteByte('-')
	}
	out.Write(digits[:split])
	out.WriteByte('.')
	out.Write(digits[split:])
	return out.String()
}

// incrementDecimal adds one to a string of decimal digits.
func incrementDecimal(d []byte) []byte {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] != '9' {
			d[i]++
			return d
		}
		d[i] = '0'
	}
	return append([]byte{'1'}, d...)
}
