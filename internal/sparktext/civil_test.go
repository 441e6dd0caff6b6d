package sparktext

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestDaysFromCivilMatchesTimeDate checks the day numbers and month
// lengths ParseDate and ParseTimestamp use against time.Date: every day of
// years 0–10000 and days of random years up to 7 digits.
func TestDaysFromCivilMatchesTimeDate(t *testing.T) {
	check := func(y, m, d int) {
		want := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay
		if got := daysFromCivil(y, m, d); got != want {
			t.Fatalf("daysFromCivil(%d, %d, %d) = %d, want %d", y, m, d, got, want)
		}
	}
	for y := 0; y <= 10_000; y++ {
		for m := 1; m <= 12; m++ {
			n := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
			if got := daysIn(y, m); got != n {
				t.Fatalf("daysIn(%d, %d) = %d, want %d", y, m, got, n)
			}
			for d := 1; d <= n; d++ {
				check(y, m, d)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100_000 {
		y, m := rng.IntN(10_000_000), 1+rng.IntN(12)
		check(y, m, 1+rng.IntN(daysIn(y, m)))
	}
}

// TestParseTimestampUTCFastPath compares ParseTimestamp's UTC results
// (no zone, Z, z, UTC) with time.Date's for random instants.
func TestParseTimestampUTCFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100_000 {
		y, m := rng.IntN(10_000), 1+rng.IntN(12)
		d, h, mi, s, ms := 1+rng.IntN(daysIn(y, m)), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000)
		want := time.Date(y, time.Month(m), d, h, mi, s, ms*1_000_000, time.UTC)
		wantMicros := want.Unix()*microsPerSecond + int64(want.Nanosecond()/1000)
		for _, zone := range []string{"", "Z", "z", " Z", "UTC"} {
			in := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", y, m, d, h, mi, s, ms, zone)
			got, ok := ParseTimestamp([]byte(in))
			if !ok || got != wantMicros {
				t.Fatalf("ParseTimestamp(%q) = %d, %v; want %d", in, got, ok, wantMicros)
			}
		}
	}
}
