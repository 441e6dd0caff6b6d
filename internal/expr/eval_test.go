package expr

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

func TestEval(t *testing.T) {
	const maxI = math.MaxInt32
	nowMicros := testCtx.BatchTimestamp.UnixMicro()
	nowDays := nowMicros / microsPerDay
	tests := []struct {
		src  string
		typ  batch.Kind
		want []any
	}{
		// Arithmetic, widening, overflow, division.
		{"i + 1", batch.Int, []any{2, -1, nil, math.MinInt32}},
		{"i + l", batch.Long, []any{11, 18, nil, nil}},
		{"i + d", batch.Double, []any{2.5, -2.5, nil, 2147483649.0}},
		{"l * 2 - i", batch.Long, []any{19, 42, nil, nil}},
		{"i / 2", batch.Double, []any{0.5, -1.0, nil, 1073741823.5}},
		{"l / 0", batch.Double, []any{nil, nil, nil, nil}},
		{"d / 0.0", batch.Double, []any{nil, nil, nil, nil}},
		{"l % 3", batch.Long, []any{1, 2, 0, nil}},
		{"-7 % 3", batch.Int, []any{-1, -1, -1, -1}},
		{"i % 0", batch.Int, []any{nil, nil, nil, nil}},
		{"l div 3", batch.Long, []any{3, 6, 10, nil}},
		{"d % 1", batch.Double, []any{0.5, -0.5, nil, 0.0}},
		{"-i", batch.Int, []any{-1, 2, nil, -maxI}},
		{"+i", batch.Int, []any{1, -2, nil, maxI}},
		{"2147483647 + 1", batch.Int, []any{math.MinInt32, math.MinInt32, math.MinInt32, math.MinInt32}},
		{"9223372036854775807L + 1", batch.Long, []any{math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64}},
		{"s + 1", batch.Double, []any{nil, 13.0, nil, nil}},
		{"'1' + '2'", batch.Double, []any{3.0, 3.0, 3.0, 3.0}},
		{"i + NULL", batch.Int, []any{nil, nil, nil, nil}},
		{"2 + 3 * 4 - 6 / 3", batch.Double, []any{12.0, 12.0, 12.0, 12.0}},
		{"(2 + 3) * 4", batch.Int, []any{20, 20, 20, 20}},
		{"- - 3", batch.Int, []any{3, 3, 3, 3}},

		// Comparisons.
		{"i = 1", batch.Boolean, []any{true, false, nil, false}},
		{"i == 1", batch.Boolean, []any{true, false, nil, false}},
		{"i != 1", batch.Boolean, []any{false, true, nil, true}},
		{"i <> 1", batch.Boolean, []any{false, true, nil, true}},
		{"i < l", batch.Boolean, []any{true, true, nil, nil}},
		{"d >= 1.5", batch.Boolean, []any{true, false, nil, true}},
		{"s = 12", batch.Boolean, []any{nil, true, nil, nil}},
		{"s = '12'", batch.Boolean, []any{false, false, nil, false}},
		{"s > 'abb'", batch.Boolean, []any{true, false, nil, true}},
		{"bin = CAST('xyz' AS BINARY)", batch.Boolean, []any{true, false, nil, false}},
		{"b = true", batch.Boolean, []any{true, false, nil, true}},
		{"i <=> NULL", batch.Boolean, []any{false, false, true, false}},
		{"NULL <=> NULL", batch.Boolean, []any{true, true, true, true}},
		{"i <=> 1", batch.Boolean, []any{true, false, false, false}},
		{"dt < ts", batch.Boolean, []any{false, false, nil, true}},
		{"ts > '1970-01-01 00:00:01'", batch.Boolean, []any{false, true, nil, true}},
		{"CAST('NaN' AS DOUBLE) > 1e308", batch.Boolean, []any{true, true, true, true}},
		{"CAST('NaN' AS DOUBLE) = CAST('nan' AS DOUBLE)", batch.Boolean, []any{true, true, true, true}},

		// Boolean logic with three values.
		{"d > 0 AND b", batch.Boolean, []any{true, false, nil, true}},
		{"b AND NULL", batch.Boolean, []any{nil, false, nil, nil}},
		{"b OR NULL", batch.Boolean, []any{true, nil, nil, true}},
		{"b OR i > 0", batch.Boolean, []any{true, false, nil, true}},
		{"NOT b", batch.Boolean, []any{false, true, nil, false}},
		{"!b", batch.Boolean, []any{false, true, nil, false}},
		{"NOT i = 1 AND l > 10", batch.Boolean, []any{false, true, nil, nil}},
		{"i IS NULL", batch.Boolean, []any{false, false, true, false}},
		{"i IS NOT NULL", batch.Boolean, []any{true, true, false, true}},
		{"b IS TRUE", batch.Boolean, []any{true, false, false, true}},
		{"b IS NOT FALSE", batch.Boolean, []any{true, false, true, true}},
		{"i IS DISTINCT FROM 1", batch.Boolean, []any{false, true, true, true}},
		{"i IS NOT DISTINCT FROM 1", batch.Boolean, []any{true, false, false, false}},

		// IN, BETWEEN, LIKE.
		{"i IN (1, 2)", batch.Boolean, []any{true, false, nil, false}},
		{"i IN (1, NULL)", batch.Boolean, []any{true, nil, nil, nil}},
		{"i NOT IN (1, 2)", batch.Boolean, []any{false, true, nil, true}},
		{"l IN (10, '20')", batch.Boolean, []any{true, true, false, nil}},
		{"i BETWEEN 0 AND 10", batch.Boolean, []any{true, false, nil, false}},
		{"i NOT BETWEEN 0 AND 10", batch.Boolean, []any{false, true, nil, true}},
		{"s LIKE 'a%'", batch.Boolean, []any{true, false, nil, false}},
		{"s LIKE '%l_o'", batch.Boolean, []any{false, false, nil, true}},
		{"s LIKE '_b_'", batch.Boolean, []any{true, false, nil, false}},
		{"s LIKE '%1%'", batch.Boolean, []any{false, true, nil, false}},
		{"s NOT LIKE 'a%'", batch.Boolean, []any{false, true, nil, true}},
		{"s ILIKE 'ABC'", batch.Boolean, []any{true, false, nil, false}},
		{"s LIKE s", batch.Boolean, []any{true, true, nil, true}},
		{"s LIKE concat('%', 'c')", batch.Boolean, []any{true, false, nil, false}},

		// CASE.
		{"CASE WHEN i > 0 THEN 'pos' WHEN i < 0 THEN 'neg' END", batch.String, []any{"pos", "neg", nil, "pos"}},
		{"CASE i WHEN 1 THEN 'one' WHEN -2 THEN 'minus two' ELSE 'other' END", batch.String,
			[]any{"one", "minus two", "other", "other"}},
		{"CASE WHEN b THEN i ELSE l END", batch.Long, []any{1, 20, 30, maxI}},
		{"CASE WHEN NULL THEN 1 ELSE 2 END", batch.Int, []any{2, 2, 2, 2}},

		// Null handling functions.
		{"coalesce(i, l, 0)", batch.Long, []any{1, -2, 30, maxI}},
		{"coalesce(s, 'none')", batch.String, []any{"abc", " 12 ", "none", "héllo"}},
		{"coalesce(`My Col`, 0)", batch.Int, []any{7, 8, 9, 10}},
		{"nvl(d, 0)", batch.Double, []any{1.5, -0.5, 0.0, 2.0}},
		{"ifnull(s, i)", batch.String, []any{"abc", " 12 ", nil, "héllo"}},
		{"nullif(i, 1)", batch.Int, []any{nil, -2, nil, maxI}},
		{"if(b, 'y', 'n')", batch.String, []any{"y", "n", "n", "y"}},
		{"isnull(s)", batch.Boolean, []any{false, false, true, false}},
		{"isnotnull(s)", batch.Boolean, []any{true, true, false, true}},

		// Strings.
		{"upper(s)", batch.String, []any{"ABC", " 12 ", nil, "HÉLLO"}},
		{"lower('AbC')", batch.String, []any{"abc", "abc", "abc", "abc"}},
		{"length(s)", batch.Int, []any{3, 4, nil, 5}},
		{"length(bin)", batch.Int, []any{3, 0, nil, 1}},
		{"octet_length(s)", batch.Int, []any{3, 4, nil, 6}},
		{"length(i)", batch.Int, []any{1, 2, nil, 10}},
		{"substring(s, 2)", batch.String, []any{"bc", "12 ", nil, "éllo"}},
		{"substring(s, 0, 2)", batch.String, []any{"ab", " 1", nil, "hé"}},
		{"substring(s, 1, 2)", batch.String, []any{"ab", " 1", nil, "hé"}},
		{"substring(s, -2, 1)", batch.String, []any{"b", "2", nil, "l"}},
		{"substring(s, -5, 3)", batch.String, []any{"a", " 1", nil, "hél"}},
		{"substr(s, 2, -1)", batch.String, []any{"", "", nil, ""}},
		{"substr(s, 10)", batch.String, []any{"", "", nil, ""}},
		{"substr(s, i)", batch.String, []any{"abc", "2 ", nil, ""}},
		{"substring(s, 2, NULL)", batch.String, []any{nil, nil, nil, nil}},
		{"substring(bin, 2, 1)", batch.Binary, []any{[]byte("y"), []byte{}, nil, []byte{}}},
		{"concat(s, '-', i)", batch.String, []any{"abc-1", " 12 --2", nil, "héllo-2147483647"}},
		{"s || i", batch.String, []any{"abc1", " 12 -2", nil, "héllo2147483647"}},
		{"concat(bin, bin)", batch.Binary, []any{[]byte("xyzxyz"), []byte{}, nil, []byte{0xff, 0xff}}},
		{"concat()", batch.String, []any{"", "", "", ""}},
		{"concat_ws('-', s, i)", batch.String, []any{"abc-1", " 12 --2", "", "héllo-2147483647"}},
		{"trim(s)", batch.String, []any{"abc", "12", nil, "héllo"}},
		{"ltrim(s)", batch.String, []any{"abc", "12 ", nil, "héllo"}},
		{"rtrim(s)", batch.String, []any{"abc", " 12", nil, "héllo"}},
		{"replace(s, 'l', 'L')", batch.String, []any{"abc", " 12 ", nil, "héLLo"}},
		{"replace(s, 'l')", batch.String, []any{"abc", " 12 ", nil, "héo"}},
		{"contains(s, 'b')", batch.Boolean, []any{true, false, nil, false}},
		{"startswith(s, 'a')", batch.Boolean, []any{true, false, nil, false}},
		{"endswith(s, 'o')", batch.Boolean, []any{false, false, nil, true}},

		// Math.
		{"abs(i)", batch.Int, []any{1, 2, nil, maxI}},
		{"abs(-2147483648)", batch.Int, []any{math.MinInt32, math.MinInt32, math.MinInt32, math.MinInt32}},
		{"abs(d)", batch.Double, []any{1.5, 0.5, nil, 2.0}},
		{"round(d)", batch.Double, []any{2.0, -1.0, nil, 2.0}},
		{"round(2.675, 2)", batch.Double, []any{2.68, 2.68, 2.68, 2.68}},
		{"round(-2.5)", batch.Double, []any{-3.0, -3.0, -3.0, -3.0}},
		{"round(9.99, 1)", batch.Double, []any{10.0, 10.0, 10.0, 10.0}},
		{"round(l, -1)", batch.Long, []any{10, 20, 30, nil}},
		{"round(15, -1)", batch.Int, []any{20, 20, 20, 20}},
		{"round(-15, -1)", batch.Int, []any{-20, -20, -20, -20}},
		{"floor(d)", batch.Long, []any{1, -1, nil, 2}},
		{"ceil(d)", batch.Long, []any{2, 0, nil, 2}},
		{"floor(i)", batch.Long, []any{1, -2, nil, maxI}},
		{"typeof(i + l)", batch.String, []any{"bigint", "bigint", "bigint", "bigint"}},

		// Date and time; the batch timestamp is 2024-03-01 12:30:45.678 UTC.
		{"current_timestamp()", batch.Timestamp, []any{nowMicros, nowMicros, nowMicros, nowMicros}},
		{"current_timestamp", batch.Timestamp, []any{nowMicros, nowMicros, nowMicros, nowMicros}},
		{"now()", batch.Timestamp, []any{nowMicros, nowMicros, nowMicros, nowMicros}},
		{"current_date()", batch.Date, []any{nowDays, nowDays, nowDays, nowDays}},
		{"CURRENT_DATE", batch.Date, []any{nowDays, nowDays, nowDays, nowDays}},
		{"unix_timestamp()", batch.Long, []any{nowMicros / 1e6, nowMicros / 1e6, nowMicros / 1e6, nowMicros / 1e6}},
		{"year(ts)", batch.Int, []any{1970, 1970, nil, 2023}},
		{"month(dt)", batch.Int, []any{1, 1, nil, 12}},
		{"day(dt)", batch.Int, []any{1, 8, nil, 31}},
		{"hour(ts)", batch.Int, []any{0, 0, nil, 22}},
		{"minute(ts)", batch.Int, []any{0, 0, nil, 13}},
		{"second(ts)", batch.Int, []any{0, 1, nil, 20}},
		{"year('2024-02-29')", batch.Int, []any{2024, 2024, 2024, 2024}},
		{"unix_millis(ts)", batch.Long, []any{0, 1500, nil, 1_700_000_000_123}},
		{"unix_seconds(ts)", batch.Long, []any{0, 1, nil, 1_700_000_000}},
		{"unix_micros(dt)", batch.Long, []any{0, 19000 * microsPerDay, nil, -microsPerDay}},
		{"timestamp_millis(l)", batch.Timestamp, []any{10_000, 20_000, 30_000, nil}},
		{"timestamp_seconds(d)", batch.Timestamp, []any{1_500_000, -500_000, nil, 2_000_000}},
		{"to_date('2024-02-29')", batch.Date, []any{19782, 19782, 19782, 19782}},
		{"to_date(ts)", batch.Date, []any{0, 0, nil, 19675}},
		{"to_timestamp('1970-01-01 00:00:01.5')", batch.Timestamp, []any{1_500_000, 1_500_000, 1_500_000, 1_500_000}},

		// Names and keywords as columns.
		{"`My Col` * 2", batch.Int, []any{14, 16, 18, 20}},
		{"I + `my col`", batch.Int, []any{8, 6, nil, math.MinInt32 + 9}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			c, got := evalExpr(t, tt.src)
			if c.Type() != tt.typ {
				t.Errorf("type = %s, want %s", c.Type(), tt.typ)
			}
			if !sameValues(got, tt.want) {
				t.Errorf("values = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestNullability(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"`My Col`", false},
		{"i", true},
		{"`My Col` + 1", false},
		{"`My Col` / 2", true}, // division by zero is NULL
		{"1", false},
		{"NULL", true},
		{"current_timestamp()", false},
		{"i IS NULL", false},
		{"i <=> 1", false},
		{"coalesce(i, 0)", false},
		{"coalesce(i, l)", true},
		{"CAST(`My Col` AS STRING)", false},
		{"CAST(s AS INT)", true},
		{"CASE WHEN b THEN 1 END", true},
		{"CASE WHEN `My Col` > 1 THEN 1 ELSE 2 END", false},
	}
	for _, tt := range tests {
		c, err := compileSource(tt.src, testSchema)
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if c.Nullable() != tt.want {
			t.Errorf("%q: nullable = %v, want %v", tt.src, c.Nullable(), tt.want)
		}
	}
}

func TestLikePatterns(t *testing.T) {
	tests := []struct {
		pat, s string
		esc    rune
		fold   bool
		want   bool
	}{
		{"abc", "abc", '\\', false, true},
		{"abc", "abcd", '\\', false, false},
		{"a%", "abc", '\\', false, true},
		{"%c", "abc", '\\', false, true},
		{"%b%", "abc", '\\', false, true},
		{"%", "", '\\', false, true},
		{"_", "", '\\', false, false},
		{"_", "é", '\\', false, true},
		{"a_c", "aéc", '\\', false, true},
		{"a%b%c", "axxbyyc", '\\', false, true},
		{"a%b%c", "axxbyy", '\\', false, false},
		{"%a%a%a%", "aaa", '\\', false, true},
		{"%a%a%a%a%", "aaa", '\\', false, false},
		{`100\%`, "100%", '\\', false, true},
		{`100\%`, "1000", '\\', false, false},
		{`a\_b`, "a_b", '\\', false, true},
		{`a\_b`, "axb", '\\', false, false},
		{`a\\b`, `a\b`, '\\', false, true},
		{"a!%", "a%", '!', false, true},
		{"a!%", "ab", '!', false, false},
		{"ABC%", "abcdef", '\\', true, true},
		{"%É%", "xéy", '\\', true, true},
	}
	for _, tt := range tests {
		m, err := compileLike(tt.pat, tt.esc, tt.fold)
		if err != nil {
			t.Fatalf("compileLike(%q): %v", tt.pat, err)
		}
		if got := m.match([]byte(tt.s)); got != tt.want {
			t.Errorf("%q LIKE %q (escape %q, fold %v) = %v, want %v", tt.s, tt.pat, tt.esc, tt.fold, got, tt.want)
		}
	}
	for _, bad := range []string{`a\`, `\a`} {
		if _, err := compileLike(bad, '\\', false); err == nil {
			t.Errorf("compileLike(%q) succeeded, want an error", bad)
		}
	}
}

// TestEvalNeedsBatchTimestamp checks that current_timestamp() refuses to
// invent a time when the caller did not supply the batch timestamp.
func TestEvalNeedsBatchTimestamp(t *testing.T) {
	c, err := compileSource("current_timestamp()", testSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctx := range []*EvalContext{nil, {}} {
		if _, err := c.Eval(testBatch(), ctx); err == nil {
			t.Errorf("Eval with context %+v succeeded, want an error", ctx)
		}
	}
}

func TestEvalEmptyBatch(t *testing.T) {
	b := mkBatch(testSchema)
	for _, src := range []string{"current_timestamp()", "upper(s)", "i + 1", "CAST(bin AS STRING)", "coalesce(i, 0)", "'x'"} {
		c, err := compileSource(src, testSchema)
		if err != nil {
			t.Fatal(err)
		}
		col, err := c.Eval(b, testCtx)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if col.Len != 0 {
			t.Errorf("%q: %d cells on an empty batch", src, col.Len)
		}
	}
}

// TestSubstringPositions compares substringSQL with a direct transcription
// of Spark's position rules over many positions and lengths.
func TestSubstringPositions(t *testing.T) {
	ref := func(s string, pos, length int64) string {
		rs := []rune(s)
		n := int64(len(rs))
		var start int64
		switch {
		case pos > 0:
			start = pos - 1
		case pos < 0:
			start = n + pos
		}
		end := start + length
		start = max(start, 0)
		if start >= end || start >= n {
			return ""
		}
		return string(rs[start:min(end, n)])
	}
	for _, s := range []string{"", "a", "hello", "héllo wörld", "日本語テキスト"} {
		for pos := int64(-14); pos <= 14; pos++ {
			for _, length := range []int64{-1, 0, 1, 2, 3, 7, 20, math.MaxInt32} {
				got := string(substringSQL([]byte(s), pos, length, true))
				if want := ref(s, pos, length); got != want {
					t.Errorf("substring(%q, %d, %d) = %q, want %q", s, pos, length, got, want)
				}
			}
		}
	}
}

// TestCurrentTimestampPerBatch checks that the cached constant column
// follows the batch timestamp and the batch length.
func TestCurrentTimestampPerBatch(t *testing.T) {
	c, err := compileSource("current_timestamp()", testSchema)
	if err != nil {
		t.Fatal(err)
	}
	t1 := *testCtx
	t2 := EvalContext{BatchTimestamp: t1.BatchTimestamp.Add(1500 * time.Millisecond)}
	small := mkBatch(testSchema, testBatch().Row(0))
	for _, step := range []struct {
		ctx *EvalContext
		b   *batch.Batch
	}{{&t1, testBatch()}, {&t1, small}, {&t2, small}, {&t2, testBatch()}, {&t1, testBatch()}} {
		col, err := c.Eval(step.b, step.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if col.Len != step.b.N || len(col.Ints) != step.b.N || cap(col.Ints) != step.b.N {
			t.Fatalf("len %d / %d / cap %d for %d rows", col.Len, len(col.Ints), cap(col.Ints), step.b.N)
		}
		for i, v := range col.Ints {
			if v != step.ctx.BatchTimestamp.UnixMicro() {
				t.Errorf("row %d = %d, want %d", i, v, step.ctx.BatchTimestamp.UnixMicro())
			}
		}
	}
}

// TestANSIDivideByZero: with ANSI on, / and DIV by zero raise Spark's
// DIVIDE_BY_ZERO (or, with RowErrors, record the row and give NULL); off,
// they are NULL as in Spark's legacy mode. A NULL divisor stays NULL.
func TestANSIDivideByZero(t *testing.T) {
	schema := batch.Schema{Fields: []batch.Field{{Name: "a", Type: batch.Long, Nullable: true}, {Name: "b", Type: batch.Long, Nullable: true}}}
	b := mkBatch(schema, []any{int64(7), int64(2)}, []any{int64(5), int64(0)}, []any{int64(3), nil})
	const msg = "[DIVIDE_BY_ZERO] Division by zero. Use `try_divide` to tolerate divisor being 0 and return NULL instead. " +
		`If necessary set "spark.sql.ansi.enabled" to "false" to bypass this error.`
	for _, src := range []string{"a DIV b", "a / b", "a / CAST(b AS DOUBLE)"} {
		n, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(n, schema)
		if err != nil {
			t.Fatal(err)
		}
		if col, err := c.Eval(b, &EvalContext{}); err != nil || !isNullAt(col, 1) || !isNullAt(col, 2) {
			t.Errorf("%s, ANSI off: %v, %v; want NULL for the zero and the NULL divisor", src, col, err)
		}
		if _, err := c.Eval(b, &EvalContext{ANSI: true}); err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "(in (a") {
			t.Errorf("%s, ANSI on: %v, want %q naming the expression", src, err, msg)
		}
		re := &RowErrors{}
		col, err := c.Eval(b, &EvalContext{ANSI: true, RowErrors: re})
		if err != nil || re.Len() != 1 || !strings.HasPrefix(re.Reasons[1], msg) || isNullAt(col, 0) || !isNullAt(col, 1) {
			t.Errorf("%s, ANSI with row errors: %v, %v, %+v; want row 1 recorded and NULL", src, col, err, re.Reasons)
		}
	}
	// % is not a division: NULL, as before.
	n, _ := Parse("a % b")
	c, _ := Compile(n, schema)
	if col, err := c.Eval(b, &EvalContext{ANSI: true}); err != nil || !isNullAt(col, 1) {
		t.Errorf("a %% b, ANSI: %v, %v", col, err)
	}
}
