package options

import (
	"math"
	"testing"
	"time"
)

func TestParseInterval(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"500", 500 * time.Millisecond},
		{" 1000 ", time.Second},
		{"20 seconds", 20 * time.Second},
		{"1 second", time.Second},
		{"1 minute", time.Minute},
		{"2 hours", 2 * time.Hour},
		{"500 milliseconds", 500 * time.Millisecond},
		{"250 microseconds", 250 * time.Microsecond},
		{"3 days", 72 * time.Hour},
		{"1 week", 7 * 24 * time.Hour},
		{"10s", 10 * time.Second},
		{"1m", time.Minute},
		{"15m", 15 * time.Minute},
		{"100ms", 100 * time.Millisecond},
		{"5us", 5 * time.Microsecond},
		{"5µs", 5 * time.Microsecond},
		{"7ns", 7 * time.Nanosecond},
		{"2h", 2 * time.Hour},
		{"1d", 24 * time.Hour},
		{"30 sec", 30 * time.Second},
		{"5 mins", 5 * time.Minute},
		{"1m30s", 90 * time.Second},
		{"1 hour 30 minutes", 90 * time.Minute},
		{"1.5 seconds", 1500 * time.Millisecond},
		{".5s", 500 * time.Millisecond},
		{"1.s", time.Second},
		{"0.3s", 300 * time.Millisecond},
		{"1.1 hours", 66 * time.Minute},
		{"2.7ms", 2700 * time.Microsecond},
		{"0.999999999999999999 weeks", 7*24*time.Hour - time.Nanosecond},
		{"0.000000001s", time.Nanosecond},
		{"1.0000000001s", time.Second}, // below a nanosecond is truncated
		{"0 seconds", 0},
		{"0s", 0},
		{"20 SECONDS", 20 * time.Second},
		{"Interval 10 Seconds", 10 * time.Second},
		{"interval 1 minute", time.Minute},
		{"9223372036854ms", 9223372036854 * time.Millisecond},
	}
	for _, tt := range tests {
		got, err := ParseInterval(tt.in)
		if err != nil {
			t.Errorf("ParseInterval(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseInterval(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseIntervalErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `invalid interval "": empty`},
		{"  ", `invalid interval "  ": empty`},
		{"interval", `invalid interval "interval": empty`},
		{"-5", `invalid interval "-5": must not be negative`},
		{"-1 second", `invalid interval "-1 second": must not be negative`},
		{"1.5", `invalid interval "1.5": missing unit after 1.5 (e.g. "1.5 seconds")`},
		{"10 20", `invalid interval "10 20": missing unit after 10 (e.g. "10 seconds")`},
		{"seconds", `invalid interval "seconds": expected a number at "seconds"`},
		{"10 s 5", `invalid interval "10 s 5": missing unit after 5 (e.g. "5 seconds")`},
		{"20 secnds", `invalid interval "20 secnds": unknown unit "secnds"; did you mean "seconds"?`},
		{"2 minuts", `invalid interval "2 minuts": unknown unit "minuts"; did you mean "minutes"?`},
		{"1 fortnight", `invalid interval "1 fortnight": unknown unit "fortnight" (units: ns, us, ms, s, m, h, d or nanoseconds, microseconds, milliseconds, seconds, minutes, hours, days, weeks)`},
		{"1 month", `invalid interval "1 month": unit "month" has no fixed length; use days or weeks`},
		{"2 years", `invalid interval "2 years": unit "years" has no fixed length; use days or weeks`},
		{"1e3ms", `invalid interval "1e3ms": unknown unit "e" (units: ns, us, ms, s, m, h, d or nanoseconds, microseconds, milliseconds, seconds, minutes, hours, days, weeks)`},
		{"99999999999999999999", `invalid interval "99999999999999999999": too large`},
		{"9223372036855", `invalid interval "9223372036855": too large`},
		{"10000 weeks 10000 weeks", `invalid interval "10000 weeks 10000 weeks": too large`},
		{"20000 weeks", `invalid interval "20000 weeks": too large`},
		{"1..5s", `invalid interval "1..5s": missing unit after 1. (e.g. "1. seconds")`},
		{".s", `invalid interval ".s": expected a number at ".s"`},
	}
	for _, tt := range tests {
		got, err := ParseInterval(tt.in)
		if err == nil {
			t.Errorf("ParseInterval(%q) = %v, want error %q", tt.in, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseInterval(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
		}
	}
}

func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"0", "20 seconds", "1m30s", "1.5 hours", "interval 3 days", "-1", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseInterval(s)
		if err != nil {
			if d != 0 {
				t.Errorf("ParseInterval(%q) = %v with error %v", s, d, err)
			}
			return
		}
		if d < 0 || d > math.MaxInt64 {
			t.Errorf("ParseInterval(%q) = %v, negative", s, d)
		}
	})
}
