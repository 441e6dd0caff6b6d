package sparktext

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestJVMOracle prints doubles, timestamps and dates with the JVM
// (testdata/Oracle.java: Double.toString and java.time with Spark's
// patterns) and compares them with this package's output: an independent
// implementation of the rules, not our reading of them. It needs `java`
// (11 or later) on PATH; it is skipped without one unless
// SLUICE_REQUIRE_INTEROP=1.
//
// JDKs before 19 print a few doubles with more digits than needed (JDK
// 19 fixed Double.toString to the shortest form, which sluice follows);
// on such a JDK a double may differ only that way: same value, same
// notation, more digits.
func TestJVMOracle(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_INTEROP") == "1" {
			t.Fatal("java is not on PATH and SLUICE_REQUIRE_INTEROP=1 requires interop tests to run")
		}
		t.Skip("java not on PATH")
	}
	type query struct {
		line string
		ours string
	}
	var qs []query
	rng := rand.New(rand.NewPCG(42, 11))

	// Doubles: the table's, powers of ten and their neighbours around the
	// notation thresholds, and random values over the whole range.
	doubles := []float64{0, negZero(), math.NaN(), math.Inf(1), math.Inf(-1), 5e-324, math.MaxFloat64,
		1e7, 1e-4, 0.001, 123456789, 1e21, 9999999, 0.1 + 0.2, 1e23, 2e23, 8.41e21}
	for e := -12; e <= 25; e++ {
		p := math.Pow(10, float64(e))
		doubles = append(doubles, p, -p, math.Nextafter(p, 0), math.Nextafter(p, math.Inf(1)), 1.5*p, 9.99*p)
	}
	for range 3000 {
		switch rng.IntN(3) {
		case 0:
			doubles = append(doubles, math.Float64frombits(rng.Uint64()))
		case 1:
			doubles = append(doubles, (rng.Float64()-0.5)*math.Pow(10, float64(rng.IntN(40)-15)))
		default:
			doubles = append(doubles, float64(rng.IntN(100000))/math.Pow(10, float64(rng.IntN(8))))
		}
	}
	for _, d := range doubles {
		qs = append(qs, query{fmt.Sprintf("d %x", math.Float64bits(d)), FormatDouble(d)})
	}

	// Timestamps: UTC over years 1–9999 and beyond, zones with offsets
	// over 1900–2037 (both tz databases agree there).
	zones := map[string]*time.Location{"UTC": time.UTC}
	for _, z := range []string{"Europe/Paris", "America/New_York", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Skip("no tzdata:", err)
		}
		zones[z] = loc
	}
	const year1, year10001 = -62_135_596_800_000_000, 253_433_923_200_000_000
	const y1900, y2037 = -2_208_988_800_000_000, 2_114_380_800_000_000
	micros := []int64{0, -1, 1, -1_500_000, 999_999, 1_714_564_803_000_003, year1, year10001}
	for range 1500 {
		us := year1 + rng.Int64N(year10001-year1)
		switch rng.IntN(3) {
		case 0:
			us -= us % 1_000_000 // whole seconds
		case 1:
			us -= us % 1000 // milliseconds
		}
		micros = append(micros, us)
	}
	for _, us := range micros {
		for name, loc := range zones {
			if name != "UTC" && (us < y1900 || us > y2037) {
				continue
			}
			qs = append(qs,
				query{fmt.Sprintf("cast %d %s", us, name), string(AppendTimestamp(nil, us, loc))},
				query{fmt.Sprintf("write %d %s", us, name), string(AppendWriterTimestamp(nil, us, loc))})
		}
		days := us / 86_400_000_000
		qs = append(qs, query{fmt.Sprintf("date %d", days), string(AppendDate(nil, days))})
	}

	var in bytes.Buffer
	for _, q := range qs {
		in.WriteString(q.line + "\n")
	}
	cmd := exec.Command(java, "testdata/Oracle.java")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java Oracle.java: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Scan()
	feature, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil {
		t.Fatalf("JDK version line %q", sc.Text())
	}
	var longer, bad int
	for i := 0; sc.Scan(); i++ {
		if i >= len(qs) {
			t.Fatalf("more output lines than queries")
		}
		jvm, q := sc.Text(), qs[i]
		if jvm == q.ours {
			continue
		}
		if feature < 19 && strings.HasPrefix(q.line, "d ") && olderJDKForm(jvm, q.ours) {
			longer++
			continue
		}
		if bad++; bad <= 20 {
			t.Errorf("%s: JVM %q, sparktext %q", q.line, jvm, q.ours)
		}
	}
	if bad > 20 {
		t.Errorf("… %d mismatches in all", bad)
	}
	t.Logf("JDK %d: %d values compared; %d doubles printed longer by the pre-19 Double.toString", feature, len(qs), longer)
}

// olderJDKForm reports whether jvm is how a JDK before 19 prints the
// value ours prints: the same double, the same notation, more digits.
func olderJDKForm(jvm, ours string) bool {
	a, err1 := strconv.ParseFloat(jvm, 64)
	b, err2 := strconv.ParseFloat(ours, 64)
	return err1 == nil && err2 == nil && a == b &&
		strings.Contains(jvm, "E") == strings.Contains(ours, "E") && len(jvm) > len(ours)
}
