package expr

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// eventsSchema/eventsBatch are the rows of Spark's window() and
// session_window() documentation examples: (a, b) with b a timestamp
// string.
var eventsSchema = batch.Schema{Fields: []batch.Field{
	{Name: "a", Type: batch.String, Nullable: true},
	{Name: "b", Type: batch.String, Nullable: true},
}}

func eventsBatch(rows ...[2]string) *batch.Batch {
	var rs [][]any
	for _, r := range rows {
		var b any = r[1]
		if r[1] == "" {
			b = nil
		}
		rs = append(rs, []any{r[0], b})
	}
	return mkBatch(eventsSchema, rs...)
}

func ts(micros int64) string {
	return string(sparktext.AppendTimestamp(nil, micros, time.UTC))
}

// groupCount groups the expanded rows by (a, window) and counts them, as
// "GROUP BY a, window(...)" with count(*) does, sorted by a and start.
func groupCount(t *testing.T, call string, b *batch.Batch) []string {
	t.Helper()
	n, err := Parse(call)
	if err != nil {
		t.Fatal(err)
	}
	w, ok, err := FindTimeWindow(n, b.Schema)
	if !ok || err != nil {
		t.Fatalf("FindTimeWindow(%s) = %v, %v", call, ok, err)
	}
	x, err := w.Expand(b, testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Validate(); err != nil {
		t.Fatal(err)
	}
	if x.Schema.Fields[2].Name != w.Name || x.Schema.Fields[2].Type != WindowKind {
		t.Fatalf("expanded schema %s", x.Schema)
	}
	counts := map[string]int{}
	var keys []string
	wc := x.Columns[2]
	for i := 0; i < x.N; i++ {
		k := fmt.Sprintf("%s %s %s", x.Columns[0].Value(i), ts(wc.Children[0].Ints[i]), ts(wc.Children[1].Ints[i]))
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return out
}

func TestWindowSparkExamples(t *testing.T) {
	rows := eventsBatch([2]string{"A1", "2021-01-01 00:00:00"}, [2]string{"A1", "2021-01-01 00:04:30"},
		[2]string{"A1", "2021-01-01 00:06:00"}, [2]string{"A2", "2021-01-01 00:01:00"}, [2]string{"A3", ""})
	// SELECT a, window.start, window.end, count(*) ... GROUP BY a, window(b, '5 minutes')
	tumbling := []string{
		"A1 2021-01-01 00:00:00 2021-01-01 00:05:00 2",
		"A1 2021-01-01 00:05:00 2021-01-01 00:10:00 1",
		"A2 2021-01-01 00:00:00 2021-01-01 00:05:00 1",
	}
	if got := groupCount(t, "window(b, '5 minutes')", rows); strings.Join(got, "\n") != strings.Join(tumbling, "\n") {
		t.Errorf("tumbling:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tumbling, "\n"))
	}
	// ... GROUP BY a, window(b, '10 minutes', '5 minutes')
	sliding := []string{
		"A1 2020-12-31 23:55:00 2021-01-01 00:05:00 2",
		"A1 2021-01-01 00:00:00 2021-01-01 00:10:00 3",
		"A1 2021-01-01 00:05:00 2021-01-01 00:15:00 1",
		"A2 2020-12-31 23:55:00 2021-01-01 00:05:00 1",
		"A2 2021-01-01 00:00:00 2021-01-01 00:10:00 1",
	}
	if got := groupCount(t, "window(b, '10 minutes', '5 minutes')", rows); strings.Join(got, "\n") != strings.Join(sliding, "\n") {
		t.Errorf("sliding:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(sliding, "\n"))
	}
	// session_window(b, '5 minutes'): each row's initial session
	// [b, b + 5 minutes); Spark's example merges A1's first two into
	// 00:00:00–00:09:30 in the aggregation.
	sessions := []string{
		"A1 2021-01-01 00:00:00 2021-01-01 00:05:00 1",
		"A1 2021-01-01 00:04:30 2021-01-01 00:09:30 1",
		"A1 2021-01-01 00:06:00 2021-01-01 00:11:00 1",
		"A2 2021-01-01 00:01:00 2021-01-01 00:06:00 1",
	}
	if got := groupCount(t, "session_window(b, '5 minutes')", rows); strings.Join(got, "\n") != strings.Join(sessions, "\n") {
		t.Errorf("sessions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(sessions, "\n"))
	}
}

// TestSessionWindowDynamicGap is Spark's SPARK-36465 rule: a string
// expression gives each row its own gap; a row whose gap is zero, negative,
// NULL or not an interval falls in no session.
func TestSessionWindowDynamicGap(t *testing.T) {
	rows := eventsBatch([2]string{"A1", "2021-01-01 00:00:00"}, [2]string{"A2", "2021-01-01 00:01:00"},
		[2]string{"A3", "2021-01-01 00:02:00"}, [2]string{"A4", "2021-01-01 00:03:00"},
		[2]string{"A5", "2021-01-01 00:04:00"}, [2]string{"A6", "2021-01-01 00:05:00"}, [2]string{"A7", ""})
	gap := "CASE WHEN a = 'A1' THEN '1 minute' WHEN a = 'A2' THEN 'interval 30 seconds' WHEN a = 'A3' THEN '0 seconds' " +
		"WHEN a = 'A4' THEN '-10 seconds' WHEN a = 'A5' THEN 'soon' WHEN a = 'A6' THEN NULL ELSE '1 hour' END"
	want := []string{
		"A1 2021-01-01 00:00:00 2021-01-01 00:01:00 1",
		"A2 2021-01-01 00:01:00 2021-01-01 00:01:30 1",
	}
	if got := groupCount(t, "session_window(b, "+gap+")", rows); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dynamic gap:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	n, _ := Parse("session_window(b, " + gap + ")")
	if w, ok, err := FindTimeWindow(n, eventsSchema); !ok || err != nil || !w.DynamicGap() {
		t.Errorf("FindTimeWindow = %+v %v %v", w, ok, err)
	}
	// As an expression: NULL where the row has no session.
	_, got := evalOn(t, "session_window(b, "+gap+").end", rows)
	t0 := int64(1609459200000000)
	if !sameValues(got, []any{t0 + 60_000_000, t0 + 90_000_000, nil, nil, nil, nil, nil}) {
		t.Errorf("session_window(...).end = %#v", got)
	}
	if _, err := compileSource("session_window(b, length(a))", eventsSchema); err == nil || !strings.Contains(err.Error(), "interval string") {
		t.Errorf("an integer gap expression: %v", err)
	}
}

// TestWindowStartTime is TimeWindowing's documented example: 12:05 with a
// 12-minute window sliding by 5 minutes falls in three windows; with a
// 2-minute start offset in two (11:52–12:04 does not contain it).
func TestWindowStartTime(t *testing.T) {
	at := int64(12*3600+5*60) * microsPerSecond
	min := int64(60 * microsPerSecond)
	for _, tc := range []struct {
		w    TimeWindow
		want []int64 // starts, in Spark's order (latest first)
	}{
		{TimeWindow{Size: 12 * min, Slide: 5 * min}, []int64{at, at - 5*min, at - 10*min}},
		{TimeWindow{Size: 12 * min, Slide: 5 * min, Start: 2 * min}, []int64{at - 3*min, at - 8*min}},
		{TimeWindow{Size: 10 * min, Slide: 10 * min, Start: -3 * min}, []int64{at - 8*min}}, // [11:57, 12:07)
		// Negative times: the window start is still at or below t.
		{TimeWindow{Size: 10, Slide: 10}, nil},
	} {
		if tc.want == nil {
			if got := tc.w.AppendWindows(nil, -1); len(got) != 1 || got[0] != -10 {
				t.Errorf("window of -1 µs: %v", got)
			}
			continue
		}
		got := tc.w.AppendWindows(nil, at)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%+v: starts %v, want %v", tc.w, got, tc.want)
		}
		if tc.w.MaxWindowsPerRow() != int((tc.w.Size+tc.w.Slide-1)/tc.w.Slide) {
			t.Error("MaxWindowsPerRow")
		}
	}
}

func TestWindowExpression(t *testing.T) {
	rows := eventsBatch([2]string{"A1", "2021-01-01 00:04:30"}, [2]string{"A2", ""})
	c, got := evalOn(t, "window(b, '5 minutes')", rows)
	if c.Name() != "window" || c.Type() != WindowKind {
		t.Fatalf("name %s type %s", c.Name(), c.Type())
	}
	start := int64(1609459200000000)
	want := []any{batch.StructValue{Names: []string{"start", "end"}, Values: []any{start, start + 300_000_000}}, nil}
	if !sameValues(got, want) {
		t.Errorf("window = %#v", got)
	}
	_, got = evalOn(t, "window(CAST(b AS TIMESTAMP), 300000000).end", rows)
	if !sameValues(got, []any{start + 300_000_000, nil}) {
		t.Errorf("window(..., micros).end = %#v", got)
	}
	_, got = evalOn(t, "window_time(window(b, '5 minutes'))", rows)
	if !sameValues(got, []any{start + 300_000_000 - 1, nil}) {
		t.Errorf("window_time = %#v", got)
	}
	c, got = evalOn(t, "session_window(b, 'interval 10 seconds')", rows)
	t0 := start + 270_000_000
	if c.Name() != "session_window" || !sameValues(got, []any{batch.StructValue{Names: []string{"start", "end"}, Values: []any{t0, t0 + 10_000_000}}, nil}) {
		t.Errorf("session_window = %s %#v", c.Name(), got)
	}
	// A window of windows: the time of a window is window_time.
	_, got = evalOn(t, "window(window(b, '1 minute'), '5 minutes').start", rows)
	if !sameValues(got, []any{start, nil}) {
		t.Errorf("window(window) = %#v", got)
	}
}

func TestWindowErrors(t *testing.T) {
	for src, want := range map[string]string{
		"window(b, '10 minutes', '5 minutes')":              "only supported as a grouping key",
		"window(b, '5 minutes', '10 minutes')":              "The slide duration (600000000) must be less than or equal to the windowDuration (300000000).",
		"window(b, '10 minutes', '5 minutes', '5 minutes')": "The absolute value of start time (300000000) must be less than the slideDuration (300000000).",
		"window(b, '1 month')":                              "Intervals greater than a month is not supported (1 month).",
		"window(b, 'ten minutes')":                          "The provided interval (ten minutes) did not correspond to a valid interval string",
		"window(b, '500')":                                  "The provided interval (500) did not correspond to a valid interval string",
		"window(b, a)":                                      "The duration and time inputs to window must be an integer, long or string literal.",
		"window(b, 0)":                                      "The window duration (0) must be greater than 0.",
		"window(1.5, '1 minute')":                           "needs a timestamp time column",
		"session_window(b, '0 seconds')":                    "must be greater than 0",
		"window_time(a)":                                    "must be a window struct",
	} {
		if _, err := compileSource(src, eventsSchema); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
	// The sliding form compiles through FindTimeWindow, for the plan.
	n, _ := Parse("window(b, '10 minutes', '5 minutes', '-2 minutes') AS w")
	w, ok, err := FindTimeWindow(n, eventsSchema)
	if !ok || err != nil || w.Size != 600_000_000 || w.Slide != 300_000_000 || w.Start != -120_000_000 || w.Tumbling() || w.MaxWindowsPerRow() != 2 {
		t.Errorf("FindTimeWindow = %+v %v %v", w, ok, err)
	}
	if _, ok, _ := FindTimeWindow(&Ident{Name: "b"}, eventsSchema); ok {
		t.Error("a column is not a window")
	}
}

func TestEventTimeFunctions(t *testing.T) {
	s := batch.Schema{Fields: []batch.Field{{Name: "s", Type: batch.String, Nullable: true}, {Name: "n", Type: batch.Long, Nullable: true}}}
	b := mkBatch(s, []any{"2016-12-31 00:12:00", int64(1230219000)}, []any{"2016-04-08", nil}, []any{"garbage", int64(0)})
	for _, tc := range []struct {
		src  string
		want []any
	}{
		// Spark's documented examples (session time zone UTC).
		{"to_timestamp('2016-12-31 00:12:00')", repeat(3, micros(2016, 12, 31, 0, 12, 0))},
		{"to_timestamp('2016-12-31', 'yyyy-MM-dd')", repeat(3, micros(2016, 12, 31, 0, 0, 0))},
		{"unix_timestamp('2016-04-08', 'yyyy-MM-dd')", repeat(3, int64(1460073600))},
		{"timestamp_seconds(1230219000)", repeat(3, micros(2008, 12, 25, 15, 30, 0))},
		{"timestamp_seconds(1230219000.123)", repeat(3, micros(2008, 12, 25, 15, 30, 0)+123_000)},
		// Columns: strict patterns give NULL when they do not match.
		{"to_timestamp(s, 'yyyy-MM-dd HH:mm:ss')", []any{micros(2016, 12, 31, 0, 12, 0), nil, nil}},
		{"unix_timestamp(s)", []any{micros(2016, 12, 31, 0, 12, 0) / 1e6, nil, nil}},
		{"unix_timestamp(s, 'yyyy-MM-dd')", []any{nil, int64(1460073600), nil}},
		{"unix_timestamp(timestamp_seconds(n))", []any{int64(1230219000), nil, int64(0)}},
		{"unix_timestamp(timestamp_seconds(n), 'ignored')", []any{int64(1230219000), nil, int64(0)}},
		{"to_timestamp(s, 'dd/MM/yyyy')", []any{nil, nil, nil}},
	} {
		_, got := evalOn(t, tc.src, b)
		if !sameValues(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.src, got, tc.want)
		}
	}
	for src, want := range map[string]string{
		"to_timestamp(s, s)":            "needs its format as a string literal",
		"to_timestamp(s, 'yyyy-QQ')":    "invalid datetime pattern",
		"to_timestamp(n, 'yyyy')":       "must be a string when a format is given",
		"unix_timestamp(s, 'yyyy[MM]')": "invalid datetime pattern",
	} {
		if _, err := compileSource(src, s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

func micros(y int, m time.Month, d, h, mi, s int) int64 {
	return time.Date(y, m, d, h, mi, s, 0, time.UTC).UnixMicro()
}
