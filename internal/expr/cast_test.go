package expr

import (
	"fmt"
	"math"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// castOne evaluates CAST(x AS to) for a one-row column x of kind k.
func castOne(t *testing.T, k batch.Kind, v any, to string) any {
	t.Helper()
	s := batch.Schema{Fields: []batch.Field{{Name: "x", Type: k, Nullable: true}}}
	src := "CAST(x AS " + to + ")"
	c, err := compileSource(src, s)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	col, err := c.Eval(mkBatch(s, []any{v}), testCtx)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	checkInvariants(t, src, col)
	return col.Value(0)
}

func TestCastFromString(t *testing.T) {
	day := func(y, m, d int) int64 {
		v, ok := parseDate([]byte(pad4(y) + "-" + pad2(m) + "-" + pad2(d)))
		if !ok {
			t.Fatalf("bad test date %d-%d-%d", y, m, d)
		}
		return v
	}
	tests := []struct {
		in, to string
		want   any
	}{
		{"42", "INT", 42},
		{" \t42\n ", "INT", 42},
		{"+7", "INT", 7},
		{"-0", "INT", 0},
		{"1.9", "INT", 1},
		{"-1.9", "INT", -1},
		{".5", "INT", 0},
		{"5.", "INT", 5},
		{"1.x", "INT", nil},
		{"1e3", "INT", nil},
		{"abc", "INT", nil},
		{"", "INT", nil},
		{"-", "INT", nil},
		{"12abc", "INT", nil},
		{"2147483647", "INT", math.MaxInt32},
		{"2147483648", "INT", nil},
		{"-2147483648", "INT", math.MinInt32},
		{"9223372036854775807", "BIGINT", int64(math.MaxInt64)},
		{"9223372036854775808", "BIGINT", nil},
		{"-9223372036854775808", "BIGINT", int64(math.MinInt64)},
		{"1.5", "DOUBLE", 1.5},
		{" 1e3 ", "DOUBLE", 1000.0},
		{"1.5d", "DOUBLE", 1.5},
		{"1.5F", "DOUBLE", 1.5},
		{".5", "DOUBLE", 0.5},
		{"NaN", "DOUBLE", math.NaN()},
		{"-Infinity", "DOUBLE", math.Inf(-1)},
		{"inf", "DOUBLE", math.Inf(1)},
		{"1e400", "DOUBLE", math.Inf(1)},
		{"0x1p3", "DOUBLE", 8.0},
		{"1_000", "DOUBLE", nil},
		{"abc", "DOUBLE", nil},
		{"", "DOUBLE", nil},
		{"true", "BOOLEAN", true},
		{" T ", "BOOLEAN", true},
		{"yes", "BOOLEAN", true},
		{"1", "BOOLEAN", true},
		{"FALSE", "BOOLEAN", false},
		{"n", "BOOLEAN", false},
		{"0", "BOOLEAN", false},
		{"2", "BOOLEAN", nil},
		{"maybe", "BOOLEAN", nil},
		{"2024-02-29", "DATE", day(2024, 2, 29)},
		{"2024-2-9", "DATE", day(2024, 2, 9)},
		{"2024", "DATE", day(2024, 1, 1)},
		{"2024-03", "DATE", day(2024, 3, 1)},
		{"2024-02-29T10:00", "DATE", day(2024, 2, 29)},
		{"2024-02-29 anything", "DATE", day(2024, 2, 29)},
		{"1969-12-31", "DATE", -1},
		{"2023-02-29", "DATE", nil},
		{"2024-13-01", "DATE", nil},
		{"24-01-01", "DATE", nil},
		{"2024/01/01", "DATE", nil},
		{"1970-01-01 00:00:01", "TIMESTAMP", 1_000_000},
		{"1970-01-01T00:00:01.123456789", "TIMESTAMP", 1_123_456},
		{"1970-01-01 00:00:01.5Z", "TIMESTAMP", 1_500_000},
		{"1970-01-01 01:00:00+01:00", "TIMESTAMP", 0},
		{"1970-01-01 00:00:00-0130", "TIMESTAMP", 5_400_000_000},
		{"1970-01-01 00:00:00 UTC", "TIMESTAMP", 0},
		{"1970-01-01 00:00:00 GMT+2", "TIMESTAMP", -7_200_000_000},
		{"1970-01-01", "TIMESTAMP", 0},
		{"1970-01-01 1:2:3", "TIMESTAMP", 3_723_000_000},
		{"1970-01-01 12:30", "TIMESTAMP", 45_000_000_000},
		{"1969-12-31 23:59:59.999999", "TIMESTAMP", -1},
		{"1970-01-01 25:00:00", "TIMESTAMP", nil},
		{"1970-01-01 00:00:00 +25:00", "TIMESTAMP", nil},
		{"1970-01-01 00:00:00 Nowhere/City", "TIMESTAMP", nil},
		{"garbage", "TIMESTAMP", nil},
		{"abc", "BINARY", []byte("abc")},
		{"abc", "STRING", "abc"},
	}
	for _, tt := range tests {
		got := castOne(t, batch.String, tt.in, tt.to)
		if !sameValues([]any{got}, []any{tt.want}) {
			t.Errorf("CAST(%q AS %s) = %#v, want %#v", tt.in, tt.to, got, tt.want)
		}
	}
}

func pad2(v int) string { return fmt.Sprintf("%02d", v) }
func pad4(v int) string { return fmt.Sprintf("%04d", v) }

func TestCastToString(t *testing.T) {
	tests := []struct {
		k    batch.Kind
		v    any
		want string
	}{
		{batch.Double, 1.0, "1.0"},
		{batch.Double, 0.1, "0.1"},
		{batch.Double, 100.0, "100.0"},
		{batch.Double, -2.5, "-2.5"},
		{batch.Double, 1e10, "1.0E10"},
		{batch.Double, 1e7, "1.0E7"},
		{batch.Double, 9999999.0, "9999999.0"},
		{batch.Double, 0.001, "0.001"},
		{batch.Double, 0.0001, "1.0E-4"},
		{batch.Double, 123456789.123, "1.23456789123E8"},
		{batch.Double, -1.5e-5, "-1.5E-5"},
		{batch.Double, 1e21, "1.0E21"},
		{batch.Double, math.MaxFloat64, "1.7976931348623157E308"},
		{batch.Double, math.NaN(), "NaN"},
		{batch.Double, math.Inf(1), "Infinity"},
		{batch.Double, math.Inf(-1), "-Infinity"},
		{batch.Double, 0.0, "0.0"},
		{batch.Double, math.Copysign(0, -1), "-0.0"},
		{batch.Int, -5, "-5"},
		{batch.Long, int64(math.MaxInt64), "9223372036854775807"},
		{batch.Boolean, true, "true"},
		{batch.Boolean, false, "false"},
		{batch.Timestamp, int64(0), "1970-01-01 00:00:00"},
		{batch.Timestamp, int64(1_500_000), "1970-01-01 00:00:01.5"},
		{batch.Timestamp, int64(1_123_456), "1970-01-01 00:00:01.123456"},
		{batch.Timestamp, int64(-1), "1969-12-31 23:59:59.999999"},
		{batch.Timestamp, int64(1_700_000_000_123_456), "2023-11-14 22:13:20.123456"},
		{batch.Date, 0, "1970-01-01"},
		{batch.Date, -1, "1969-12-31"},
		{batch.Date, 19782, "2024-02-29"},
		{batch.Binary, []byte("raw"), "raw"},
	}
	for _, tt := range tests {
		got := castOne(t, tt.k, tt.v, "STRING")
		if got != tt.want {
			t.Errorf("CAST(%s %v AS STRING) = %#v, want %q", tt.k, tt.v, got, tt.want)
		}
	}
	if got := castOne(t, batch.Int, nil, "STRING"); got != nil {
		t.Errorf("CAST(NULL int AS STRING) = %#v, want nil", got)
	}
}

func TestCastBetweenKinds(t *testing.T) {
	tests := []struct {
		k    batch.Kind
		v    any
		to   string
		want any
	}{
		{batch.Double, 1.9, "INT", 1},
		{batch.Double, -1.9, "BIGINT", -1},
		{batch.Double, 1e20, "INT", math.MaxInt32},
		{batch.Double, -1e20, "BIGINT", int64(math.MinInt64)},
		{batch.Double, math.NaN(), "INT", 0},
		{batch.Long, int64(1<<32 + 1), "INT", 1},
		{batch.Long, int64(-1), "INT", -1},
		{batch.Int, 3, "BIGINT", 3},
		{batch.Int, 3, "DOUBLE", 3.0},
		{batch.Boolean, true, "INT", 1},
		{batch.Boolean, false, "DOUBLE", 0.0},
		{batch.Int, 5, "BOOLEAN", true},
		{batch.Int, 0, "BOOLEAN", false},
		{batch.Double, math.NaN(), "BOOLEAN", true},
		{batch.Timestamp, int64(1_500_000), "BIGINT", 1},
		{batch.Timestamp, int64(-500_000), "BIGINT", -1},
		{batch.Timestamp, int64(1_500_000), "DOUBLE", 1.5},
		{batch.Timestamp, int64(1_500_000), "INT", 1},
		{batch.Timestamp, int64(1_700_000_000_123_456), "DATE", 19675},
		{batch.Timestamp, int64(-1), "DATE", -1},
		{batch.Date, 2, "TIMESTAMP", 2 * microsPerDay},
		{batch.Date, 2, "INT", nil},
		{batch.Date, 2, "BOOLEAN", nil},
		{batch.Int, -2, "TIMESTAMP", -2_000_000},
		{batch.Long, int64(math.MaxInt64), "TIMESTAMP", int64(math.MaxInt64)},
		{batch.Double, 1.25, "TIMESTAMP", 1_250_000},
		{batch.Double, math.Inf(1), "TIMESTAMP", nil},
		{batch.Boolean, true, "TIMESTAMP", 1},
		{batch.Int, 1, "BINARY", []byte{0, 0, 0, 1}},
		{batch.Long, int64(-2), "BINARY", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}},
		{batch.Int, nil, "DOUBLE", nil},
	}
	for _, tt := range tests {
		got := castOne(t, tt.k, tt.v, tt.to)
		if !sameValues([]any{got}, []any{tt.want}) {
			t.Errorf("CAST(%s %v AS %s) = %#v, want %#v", tt.k, tt.v, tt.to, got, tt.want)
		}
	}
}

func TestCastRejected(t *testing.T) {
	for _, src := range []string{
		"CAST(bin AS INT)", "CAST(i AS DATE)", "CAST(b AS BINARY)", "CAST(d AS BINARY)", "CAST(dt AS BINARY)",
	} {
		if _, err := compileSource(src, testSchema); err == nil {
			t.Errorf("%s compiled, want a cannot-cast error", src)
		}
	}
}

// TestCastBinaryToStringZeroCopy pins the seed query's hot path: the cast
// reuses the input's byte slices and validity as they are.
func TestCastBinaryToStringZeroCopy(t *testing.T) {
	s := batch.Schema{Fields: []batch.Field{{Name: "value", Type: batch.Binary, Nullable: true}}}
	rows := make([][]any, 1000)
	for i := range rows {
		if i%10 == 0 {
			rows[i] = []any{nil}
		} else {
			rows[i] = []any{[]byte("payload")}
		}
	}
	b := mkBatch(s, rows...)
	c, err := compileSource("CAST(value AS STRING)", s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Eval(b, testCtx)
	if err != nil {
		t.Fatal(err)
	}
	in := b.Columns[0]
	if out.Type != batch.String || &out.Bytes[0] != &in.Bytes[0] || &out.Valid[0] != &in.Valid[0] {
		t.Fatalf("cast copied its input: type %s", out.Type)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := c.Eval(b, testCtx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("CAST(value AS STRING) allocates %.0f times per batch, want at most 1", allocs)
	}
}
