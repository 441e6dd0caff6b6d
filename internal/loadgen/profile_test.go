package loadgen

import (
	"math"
	"strings"
	"testing"
	"time"
)

// integrate sums RateAt numerically over [0, d) in 1 ms steps.
func integrate(p Profile, d time.Duration) float64 {
	const step = time.Millisecond
	var n float64
	for t := time.Duration(0); t < d; t += step {
		n += p.RateAt(t+step/2) * step.Seconds()
	}
	return n
}

func TestExpectedIsIntegralOfRate(t *testing.T) {
	profiles := []Profile{
		Steady{Rate: 1234},
		Step{Base: 100, Factor: 5, At: 2 * time.Second},
		Spike{Base: 1000, Factor: 10, At: 3 * time.Second, For: 2500 * time.Millisecond},
		Spike{Base: 1000, Factor: 0, At: time.Second, For: time.Second}, // outage
		Sine{Base: 1000, Amplitude: 400, Period: 7 * time.Second},
		Piecewise{Points: []Point{{At: 500 * time.Millisecond, Rate: 100}, {At: 2 * time.Second, Rate: 3000}, {At: 4 * time.Second, Rate: 10}}},
	}
	for _, p := range profiles {
		for _, d := range []time.Duration{0, 250 * time.Millisecond, 2 * time.Second, 3500 * time.Millisecond, 6 * time.Second, 10 * time.Second} {
			got, want := p.Expected(d), integrate(p, d)
			if math.Abs(got-want) > 0.5+1e-3*want {
				t.Errorf("%s: Expected(%s) = %.2f, numeric integral %.2f", p, d, got, want)
			}
		}
	}
}

func TestProfileRates(t *testing.T) {
	for _, tc := range []struct {
		p    Profile
		at   time.Duration
		want float64
	}{
		{Steady{Rate: 50}, time.Hour, 50},
		{Step{Base: 10, Factor: 3, At: time.Second}, 999 * time.Millisecond, 10},
		{Step{Base: 10, Factor: 3, At: time.Second}, time.Second, 30},
		{Spike{Base: 10, Factor: 10, At: time.Second, For: time.Second}, 1500 * time.Millisecond, 100},
		{Spike{Base: 10, Factor: 10, At: time.Second, For: time.Second}, 2 * time.Second, 10},
		{Sine{Base: 100, Amplitude: 50, Period: 4 * time.Second}, time.Second, 150},
		{Sine{Base: 100, Amplitude: 50, Period: 4 * time.Second}, 3 * time.Second, 50},
		{Piecewise{Points: []Point{{At: time.Second, Rate: 7}, {At: 2 * time.Second, Rate: 9}}}, 0, 0},
		{Piecewise{Points: []Point{{At: time.Second, Rate: 7}, {At: 2 * time.Second, Rate: 9}}}, 1500 * time.Millisecond, 7},
		{Piecewise{Points: []Point{{At: time.Second, Rate: 7}, {At: 2 * time.Second, Rate: 9}}}, time.Hour, 9},
	} {
		if got := tc.p.RateAt(tc.at); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: RateAt(%s) = %v, want %v", tc.p, tc.at, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Profile
		ok bool
	}{
		{Steady{Rate: 0}, true},
		{Steady{Rate: -1}, false},
		{Steady{Rate: math.Inf(1)}, false},
		{Spike{Base: 1, Factor: 10, At: time.Second, For: time.Second}, true},
		{Spike{Base: 1, Factor: math.NaN()}, false},
		{Spike{Base: 1, Factor: 2, For: -time.Second}, false},
		{Step{Base: 1, Factor: 2, At: -1}, false},
		{Sine{Base: 10, Amplitude: 10, Period: time.Second}, true},
		{Sine{Base: 10, Amplitude: 11, Period: time.Second}, false},
		{Sine{Base: 10, Amplitude: 1}, false},
		{Piecewise{}, false},
		{Piecewise{Points: []Point{{At: 2, Rate: 1}, {At: 1, Rate: 1}}}, false},
		{nil, false},
	} {
		if err := Validate(tc.p); (err == nil) != tc.ok {
			t.Errorf("Validate(%v) = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

func TestParseCSV(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Point
		err      string
	}{
		{"header", "seconds,rate\n0,1000\n30,10000\n90, 1000\n", []Point{{0, 1000}, {30 * time.Second, 10000}, {90 * time.Second, 1000}}, ""},
		{"comments", "# a ramp\n\n0.5,10\n1.25,20\n", []Point{{500 * time.Millisecond, 10}, {1250 * time.Millisecond, 20}}, ""},
		{"crlf", "0,1\r\n2,3\r\n", []Point{{0, 1}, {2 * time.Second, 3}}, ""},
		{"empty", "# nothing\n", nil, "no rows"},
		{"header only", "seconds,rate\n", nil, "no rows"},
		{"not increasing", "0,1\n5,2\n5,3\n", nil, "csv:3: time 5s is not after"},
		{"negative rate", "0,-1\n", nil, "csv:1:"},
		{"nan", "0,NaN\n", nil, "finite"},
		{"three columns", "0,1,2\n", nil, "two columns"},
		{"bad number after data", "0,1\nx,2\n", nil, "csv:2:"},
		{"negative time", "-1,5\n", nil, "seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseCSV("csv", strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Points) != len(tc.want) {
				t.Fatalf("points %v, want %v", p.Points, tc.want)
			}
			for i := range tc.want {
				if p.Points[i] != tc.want[i] {
					t.Fatalf("points %v, want %v", p.Points, tc.want)
				}
			}
			if err := Validate(p); err != nil {
				t.Fatalf("parsed profile does not validate: %v", err)
			}
		})
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add("seconds,rate\n0,1000\n30,10000\n")
	f.Add("0.5,1\n1,2\n")
	f.Add("#x\n\n1e3,1e9\n")
	f.Add("0,1,2")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseCSV("fuzz", strings.NewReader(in))
		if err != nil {
			return
		}
		if err := Validate(p); err != nil {
			t.Fatalf("ParseCSV accepted a profile Validate rejects: %v\n%q", err, in)
		}
		last := p.Points[len(p.Points)-1].At
		if e := p.Expected(last + time.Second); math.IsNaN(e) || e < 0 {
			t.Fatalf("Expected = %v", e)
		}
	})
}
