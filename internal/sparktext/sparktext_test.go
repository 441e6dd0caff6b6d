package sparktext

import (
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
)

// po builds one entry of a Kafka offsets JSON.
func po(topic string, p int32, off int64) PartitionOffset {
	return PartitionOffset{ID: partition.ID{Topic: topic, Partition: p}, Offset: off}
}

func negZero() float64 { return math.Copysign(0, -1) }

var point1, point2 = 0.1, 0.2 // variables, so that the sum is not constant-folded

// TestAppendDouble checks Java's Double.toString output (the table the
// console sink and the casts had, one place now).
func TestAppendDouble(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{1, "1.0"}, {-1, "-1.0"}, {0, "0.0"}, {negZero(), "-0.0"},
		{1e10, "1.0E10"}, {1e23, "1.0E23"}, {2e-3, "0.002"}, {3e100, "3.0E100"}, {1e7, "1.0E7"}, {9999999, "9999999.0"}, {1234567.5, "1234567.5"},
		{0.001, "0.001"}, {0.0001, "1.0E-4"}, {1.5e-5, "1.5E-5"}, {0.1, "0.1"}, {point1 + point2, "0.30000000000000004"},
		{100, "100.0"}, {123.456, "123.456"}, {-2.5e-3, "-0.0025"}, {12345678.9, "1.23456789E7"},
		{5e-324, "4.9E-324"}, {1.7976931348623157e308, "1.7976931348623157E308"},
		{math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
		// The casts' table.
		{-1.5e-5, "-1.5E-5"}, {1e21, "1.0E21"}, {123456789, "1.23456789E8"}, {9.99e-4, "9.99E-4"},
		{1e-3 - 1e-19, "9.999999999999998E-4"}, {1e7 - 1e-9, "9999999.999999998"},
		{2.2250738585072014e-308, "2.2250738585072014E-308"}, {-123.0, "-123.0"}, {1e6, "1000000.0"},
	}
	for _, tc := range tests {
		if got := FormatDouble(tc.in); got != tc.want {
			t.Errorf("FormatDouble(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if got := string(AppendDouble([]byte("x="), tc.in)); got != "x="+tc.want {
			t.Errorf("AppendDouble(x=, %v) = %q", tc.in, got)
		}
	}
}

// javaDouble is the shape of Java's Double.toString output.
var javaDouble = regexp.MustCompile(`^(NaN|-?Infinity|-?\d+\.\d+|-?\d\.\d+E-?\d+)$`)

func FuzzAppendDouble(f *testing.F) {
	for _, v := range []float64{0, 1, -1.5, 1e7, 9999999.999, 1e-3, 0.00099, 1e300, 5e-324, math.MaxFloat64, math.Inf(1), math.NaN()} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		s := string(AppendDouble(nil, v))
		back, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%v → %q does not parse: %v", v, s, err)
		}
		if back != v && !(math.IsNaN(v) && math.IsNaN(back)) {
			t.Fatalf("%v → %q → %v", v, s, back)
		}
		if !javaDouble.MatchString(s) {
			t.Fatalf("%v → %q is not in Java's form", v, s)
		}
		abs := math.Abs(v)
		plain := abs >= 1e-3 && abs < 1e7
		if hasE := regexp.MustCompile(`E`).MatchString(s); v == v && !math.IsInf(v, 0) && v != 0 && hasE == plain {
			t.Fatalf("%v → %q: scientific notation is for |v| < 1e-3 or ≥ 1e7 only", v, s)
		}
	})
}

func days(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func micros(y int, m time.Month, d, h, mi, s, us int) int64 {
	return time.Date(y, m, d, h, mi, s, 0, time.UTC).Unix()*1_000_000 + int64(us)
}

func TestAppendDate(t *testing.T) {
	tests := []struct {
		days int64
		want string
	}{
		{0, "1970-01-01"}, {-1, "1969-12-31"}, {19844, "2024-05-01"},
		{days(1, 1, 1), "0001-01-01"}, {days(0, 1, 1), "0000-01-01"}, {days(-1, 12, 31), "-0001-12-31"},
		{days(9999, 12, 31), "9999-12-31"}, {days(10000, 1, 1), "+10000-01-01"}, {days(1582, 10, 4), "1582-10-04"},
	}
	for _, tc := range tests {
		if got := string(AppendDate(nil, tc.days)); got != tc.want {
			t.Errorf("AppendDate(%d) = %q, want %q", tc.days, got, tc.want)
		}
	}
}

func TestAppendTimestamps(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	ny, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		us                  int64
		loc                 *time.Location
		cast, micros, write string
	}{
		{0, nil, "1970-01-01 00:00:00", "1970-01-01 00:00:00", "1970-01-01T00:00:00.000Z"},
		{micros(2024, 5, 1, 12, 0, 3, 3), nil, "2024-05-01 12:00:03.000003", "2024-05-01 12:00:03.000003", "2024-05-01T12:00:03.000Z"},
		{micros(2024, 5, 1, 12, 0, 0, 500000), time.UTC, "2024-05-01 12:00:00.5", "2024-05-01 12:00:00.500000", "2024-05-01T12:00:00.500Z"},
		{micros(2024, 5, 1, 12, 0, 0, 123456), nil, "2024-05-01 12:00:00.123456", "2024-05-01 12:00:00.123456", "2024-05-01T12:00:00.123Z"},
		{micros(2024, 5, 1, 12, 0, 0, 999999), nil, "2024-05-01 12:00:00.999999", "2024-05-01 12:00:00.999999", "2024-05-01T12:00:00.999Z"},
		{-1, nil, "1969-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999", "1969-12-31T23:59:59.999Z"},
		{-1_500_000, nil, "1969-12-31 23:59:58.5", "1969-12-31 23:59:58.500000", "1969-12-31T23:59:58.500Z"},
		{micros(1900, 1, 1, 0, 0, 0, 0), nil, "1900-01-01 00:00:00", "1900-01-01 00:00:00", "1900-01-01T00:00:00.000Z"},
		{micros(1, 1, 1, 0, 0, 0, 0), nil, "0001-01-01 00:00:00", "0001-01-01 00:00:00", "0001-01-01T00:00:00.000Z"},
		{micros(9999, 12, 31, 23, 59, 59, 999999), nil, "9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999", "9999-12-31T23:59:59.999Z"},
		{micros(10000, 1, 1, 0, 0, 0, 0), nil, "+10000-01-01 00:00:00", "+10000-01-01 00:00:00", "+10000-01-01T00:00:00.000Z"},
		// Session time zones: wall clock and offset of the zone.
		{micros(2024, 1, 15, 12, 0, 0, 0), paris, "2024-01-15 13:00:00", "2024-01-15 13:00:00", "2024-01-15T13:00:00.000+01:00"},
		{micros(2024, 7, 15, 12, 0, 0, 250000), paris, "2024-07-15 14:00:00.25", "2024-07-15 14:00:00.250000", "2024-07-15T14:00:00.250+02:00"},
		{micros(2024, 7, 15, 12, 0, 0, 0), ny, "2024-07-15 08:00:00", "2024-07-15 08:00:00", "2024-07-15T08:00:00.000-04:00"},
		{micros(2024, 7, 15, 12, 0, 0, 0), kolkata, "2024-07-15 17:30:00", "2024-07-15 17:30:00", "2024-07-15T17:30:00.000+05:30"},
		// Paris mean time (+00:09:21) before 1911: java.time's XXX drops
		// the seconds of the offset.
		{micros(1900, 1, 1, 0, 0, 0, 0), paris, "1900-01-01 00:09:21", "1900-01-01 00:09:21", "1900-01-01T00:09:21.000+00:09"},
	}
	for _, tc := range tests {
		if got := string(AppendTimestamp(nil, tc.us, tc.loc)); got != tc.cast {
			t.Errorf("AppendTimestamp(%d, %v) = %q, want %q", tc.us, tc.loc, got, tc.cast)
		}
		if got := string(AppendTimestampMicros(nil, tc.us, tc.loc)); got != tc.micros {
			t.Errorf("AppendTimestampMicros(%d, %v) = %q, want %q", tc.us, tc.loc, got, tc.micros)
		}
		if got := string(AppendWriterTimestamp(nil, tc.us, tc.loc)); got != tc.write {
			t.Errorf("AppendWriterTimestamp(%d, %v) = %q, want %q", tc.us, tc.loc, got, tc.write)
		}
	}
}

func TestKafkaOffsets(t *testing.T) {
	offs, err := ParseKafkaOffsets(`{"topicB":{"0":-2},"topicA":{"1":-1,"0":23,"10":7}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []PartitionOffset{po("topicA", 0, 23), po("topicA", 1, KafkaLatest), po("topicA", 10, 7), po("topicB", 0, KafkaEarliest)}
	if len(offs) != len(want) {
		t.Fatalf("parsed %+v, want %+v", offs, want)
	}
	for i := range want {
		if offs[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, offs[i], want[i])
		}
	}
	if got := string(AppendKafkaOffsets(nil, offs)); got != `{"topicA":{"0":23,"1":-1,"10":7},"topicB":{"0":-2}}` {
		t.Errorf("format = %s", got)
	}
	if got := string(AppendKafkaOffsets(nil, nil)); got != `{}` {
		t.Errorf("empty = %s", got)
	}
	// A repeated partition keeps its last offset; input order does not matter.
	dup := []PartitionOffset{po("b", 0, 1), po("a", 2, 5), po("a", 2, 6), po("a", 1, 0)}
	if got := string(AppendKafkaOffsets(nil, dup)); got != `{"a":{"1":0,"2":6},"b":{"0":1}}` {
		t.Errorf("with a repeat = %s", got)
	}
	for _, bad := range []string{``, `[]`, `{"t":{"x":1}}`, `{"t":{"-1":1}}`, `{"t":{"0":"1"}}`, `{"t":{"4294967296":1}}`, `{"t":1}`} {
		if _, err := ParseKafkaOffsets(bad); err == nil {
			t.Errorf("ParseKafkaOffsets(%q) accepted", bad)
		}
	}
	if m := PartitionOffsets([]byte(`{"a":{"0":3},"b":{"1":4}}`)); len(m) != 2 || m[0] != 3 || m[1] != 4 {
		t.Errorf("PartitionOffsets = %v", m)
	}
	if m := PartitionOffsets([]byte(`"plain-7"`)); len(m) != 0 {
		t.Errorf("PartitionOffsets of a non-Kafka offset = %v", m)
	}
}

func FuzzKafkaOffsets(f *testing.F) {
	f.Add(`{"t":{"0":5,"1":-2}}`)
	f.Add(`{}`)
	f.Add(`{"a\"b":{"2147483647":9223372036854775807}}`)
	f.Fuzz(func(t *testing.T, s string) {
		offs, err := ParseKafkaOffsets(s)
		if err != nil {
			return
		}
		enc := string(AppendKafkaOffsets(nil, offs))
		again, err := ParseKafkaOffsets(enc)
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, enc, err)
		}
		if enc2 := string(AppendKafkaOffsets(nil, again)); enc2 != enc {
			t.Fatalf("not a fixed point: %q → %q", enc, enc2)
		}
	})
}
