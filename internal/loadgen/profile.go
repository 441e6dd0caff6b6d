// Package loadgen produces records to Kafka at a rate that follows a
// profile over time (steady, step, spike, sine, or a CSV of rates), in one
// of a few record shapes, with a uniform or Zipf-skewed key distribution,
// through a bounded producer buffer, and reports the rate it achieved.
package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Profile is a production rate over time, measured from the start of a run.
type Profile interface {
	// RateAt returns the rate in records per second at elapsed.
	RateAt(elapsed time.Duration) float64
	// Expected returns how many records the profile produces in
	// [0, elapsed): the integral of RateAt. A producer that has issued
	// floor(Expected(t)) records by t is exactly on schedule.
	Expected(elapsed time.Duration) float64
	// String describes the profile for people.
	String() string
}

// Steady is a constant rate.
type Steady struct {
	Rate float64 // records per second
}

// RateAt implements Profile.
func (s Steady) RateAt(time.Duration) float64 { return s.Rate }

// Expected implements Profile.
func (s Steady) Expected(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return s.Rate * elapsed.Seconds()
}

func (s Steady) String() string { return fmt.Sprintf("steady %s/s", fmtRate(s.Rate)) }

// Step is Base records per second until At, then Base×Factor from At on.
type Step struct {
	Base   float64
	Factor float64
	At     time.Duration
}

// RateAt implements Profile.
func (s Step) RateAt(elapsed time.Duration) float64 {
	if elapsed >= s.At {
		return s.Base * s.Factor
	}
	return s.Base
}

// Expected implements Profile.
func (s Step) Expected(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	n := s.Base * elapsed.Seconds()
	if elapsed > s.At {
		n += s.Base * (s.Factor - 1) * (elapsed - s.At).Seconds()
	}
	return n
}

func (s Step) String() string {
	return fmt.Sprintf("step %s/s, ×%g from %s", fmtRate(s.Base), s.Factor, s.At)
}

// Spike is Base records per second, except Base×Factor during
// [At, At+For).
type Spike struct {
	Base   float64
	Factor float64
	At     time.Duration
	For    time.Duration
}

// RateAt implements Profile.
func (s Spike) RateAt(elapsed time.Duration) float64 {
	if s.For > 0 && elapsed >= s.At && elapsed < s.At+s.For {
		return s.Base * s.Factor
	}
	return s.Base
}

// Expected implements Profile.
func (s Spike) Expected(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	n := s.Base * elapsed.Seconds()
	if s.For > 0 && elapsed > s.At {
		n += s.Base * (s.Factor - 1) * min(elapsed-s.At, s.For).Seconds()
	}
	return n
}

func (s Spike) String() string {
	return fmt.Sprintf("spike %s/s, ×%g at %s for %s", fmtRate(s.Base), s.Factor, s.At, s.For)
}

// Sine oscillates around Base: Base + Amplitude·sin(2πt/Period). Amplitude
// must not exceed Base, so the rate never goes negative.
type Sine struct {
	Base      float64
	Amplitude float64
	Period    time.Duration
}

// RateAt implements Profile.
func (s Sine) RateAt(elapsed time.Duration) float64 {
	if s.Period <= 0 {
		return s.Base
	}
	return s.Base + s.Amplitude*math.Sin(2*math.Pi*elapsed.Seconds()/s.Period.Seconds())
}

// Expected implements Profile.
func (s Sine) Expected(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	t := elapsed.Seconds()
	if s.Period <= 0 {
		return s.Base * t
	}
	p := s.Period.Seconds()
	return s.Base*t + s.Amplitude*p/(2*math.Pi)*(1-math.Cos(2*math.Pi*t/p))
}

func (s Sine) String() string {
	return fmt.Sprintf("sine %s/s ± %s/s, period %s", fmtRate(s.Base), fmtRate(s.Amplitude), s.Period)
}

// Point is one row of a Piecewise profile: from At on, Rate records per
// second.
type Point struct {
	At   time.Duration
	Rate float64
}

// Piecewise holds each point's rate until the next point's time; before the
// first point the rate is 0, after the last its rate holds. Points must be
// in strictly increasing time order (ParseCSV checks it).
type Piecewise struct {
	Points []Point
}

// index returns the index of the last point at or before elapsed, or -1.
func (p Piecewise) index(elapsed time.Duration) int {
	return sort.Search(len(p.Points), func(i int) bool { return p.Points[i].At > elapsed }) - 1
}

// RateAt implements Profile.
func (p Piecewise) RateAt(elapsed time.Duration) float64 {
	if i := p.index(elapsed); i >= 0 {
		return p.Points[i].Rate
	}
	return 0
}

// Expected implements Profile.
func (p Piecewise) Expected(elapsed time.Duration) float64 {
	var n float64
	for i, pt := range p.Points {
		if pt.At >= elapsed {
			break
		}
		end := elapsed
		if i+1 < len(p.Points) && p.Points[i+1].At < end {
			end = p.Points[i+1].At
		}
		n += pt.Rate * (end - pt.At).Seconds()
	}
	return n
}

func (p Piecewise) String() string {
	if len(p.Points) == 0 {
		return "csv (empty)"
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range p.Points {
		lo, hi = min(lo, pt.Rate), max(hi, pt.Rate)
	}
	return fmt.Sprintf("csv %d points over %s, %s–%s/s", len(p.Points), p.Points[len(p.Points)-1].At, fmtRate(lo), fmtRate(hi))
}

// maxCSVRows bounds a CSV profile, so a wrong file fails fast.
const maxCSVRows = 100_000

// ParseCSV reads a Piecewise profile from CSV lines "seconds,rate", e.g.
//
//	seconds,rate
//	0,1000
//	30,10000
//	90,1000
//
// A first line that does not parse as numbers is taken as a header. Blank
// lines and lines starting with '#' are skipped. Seconds may be fractional,
// must be ≥ 0 and strictly increasing; rates must be finite and ≥ 0.
// name prefixes error positions.
func ParseCSV(name string, r io.Reader) (Piecewise, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	var p Piecewise
	line, data := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		data++
		secs, rate, err := parseCSVRow(text)
		if err != nil {
			if data == 1 && !startsNumeric(text) {
				continue // header
			}
			return Piecewise{}, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		at := time.Duration(math.Round(secs * float64(time.Second)))
		if n := len(p.Points); n > 0 && at <= p.Points[n-1].At {
			return Piecewise{}, fmt.Errorf("%s:%d: time %gs is not after the previous row's %gs", name, line, secs, p.Points[n-1].At.Seconds())
		}
		if len(p.Points) == maxCSVRows {
			return Piecewise{}, fmt.Errorf("%s:%d: more than %d rows", name, line, maxCSVRows)
		}
		p.Points = append(p.Points, Point{At: at, Rate: rate})
	}
	if err := sc.Err(); err != nil {
		return Piecewise{}, fmt.Errorf("%s: read: %w", name, err)
	}
	if len(p.Points) == 0 {
		return Piecewise{}, fmt.Errorf("%s: no rows (want lines \"seconds,rate\")", name)
	}
	return p, nil
}

func startsNumeric(s string) bool {
	c := s[0]
	return c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+'
}

// maxCSVSeconds bounds a CSV row's time (a year), so it fits a Duration.
const maxCSVSeconds = 366 * 24 * 3600

func parseCSVRow(text string) (secs, rate float64, err error) {
	a, b, ok := strings.Cut(text, ",")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want \"seconds,rate\"", text)
	}
	if strings.Contains(b, ",") {
		return 0, 0, fmt.Errorf("%q: want two columns, \"seconds,rate\"", text)
	}
	secs, err = strconv.ParseFloat(strings.TrimSpace(a), 64)
	if err != nil || math.IsNaN(secs) || secs < 0 || secs > maxCSVSeconds {
		return 0, 0, fmt.Errorf("%q: seconds %q must be a number from 0 to %d", text, strings.TrimSpace(a), maxCSVSeconds)
	}
	rate, err = strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err != nil || math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0 {
		return 0, 0, fmt.Errorf("%q: rate %q must be a finite number ≥ 0", text, strings.TrimSpace(b))
	}
	return secs, rate, nil
}

// Validate reports a profile that cannot be run: negative or non-finite
// rates or factors, negative times, a sine whose amplitude exceeds its base.
func Validate(p Profile) error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) || v < 0 }
	switch x := p.(type) {
	case nil:
		return errors.New("loadgen: no profile")
	case Steady:
		if bad(x.Rate) {
			return fmt.Errorf("loadgen: rate %v must be a finite number ≥ 0", x.Rate)
		}
	case Step:
		if bad(x.Base) || bad(x.Factor) || x.At < 0 {
			return fmt.Errorf("loadgen: step profile %+v: rates and factor must be finite and ≥ 0, the time ≥ 0", x)
		}
	case Spike:
		if bad(x.Base) || bad(x.Factor) || x.At < 0 || x.For < 0 {
			return fmt.Errorf("loadgen: spike profile %+v: rates and factor must be finite and ≥ 0, times ≥ 0", x)
		}
	case Sine:
		if bad(x.Base) || bad(x.Amplitude) || x.Amplitude > x.Base || x.Period <= 0 {
			return fmt.Errorf("loadgen: sine profile %+v: want 0 ≤ amplitude ≤ base and a positive period", x)
		}
	case Piecewise:
		if len(x.Points) == 0 {
			return errors.New("loadgen: csv profile has no points")
		}
		for i, pt := range x.Points {
			if bad(pt.Rate) || pt.At < 0 || i > 0 && pt.At <= x.Points[i-1].At {
				return fmt.Errorf("loadgen: csv profile point %d (%s, %v): times must increase from 0 and rates be finite and ≥ 0", i, pt.At, pt.Rate)
			}
		}
	}
	return nil
}

// fmtRate formats a rate compactly: 1200 → "1200", 25000 → "25k",
// 1500000 → "1.5M".
func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return strconv.FormatFloat(r/1e6, 'g', 4, 64) + "M"
	case r >= 1e4:
		return strconv.FormatFloat(r/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(r, 'g', 6, 64)
}
