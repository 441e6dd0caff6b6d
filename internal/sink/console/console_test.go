package console

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// mkBatch builds a batch from Go values (nil = null); Timestamp and Date
// cells are int64 micros / days.
func mkBatch(t testing.TB, schema batch.Schema, rows ...[]any) *batch.Batch {
	t.Helper()
	cols := make([]*batch.Column, len(schema.Fields))
	for i, f := range schema.Fields {
		cols[i] = batch.NewColumn(f.Type, len(rows))
	}
	for _, r := range rows {
		for i, v := range r {
			c := cols[i]
			if v == nil {
				c.AppendNull()
				continue
			}
			switch x := v.(type) {
			case bool:
				c.AppendBool(x)
			case int:
				c.AppendInt(int64(x))
			case int64:
				c.AppendInt(x)
			case float64:
				c.AppendFloat(x)
			case string:
				c.AppendBytes([]byte(x))
			case []byte:
				c.AppendBytes(x)
			case []batch.Header:
				c.AppendHeaders(x)
			default: // nested values: batch.StructValue, []any, batch.MapValue
				if err := c.AppendValue(v); err != nil {
					t.Fatalf("mkBatch: %v", err)
				}
			}
		}
	}
	b := batch.New(schema, cols, len(rows))
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	return b
}

func schemaOf(fields ...any) batch.Schema {
	var s batch.Schema
	for i := 0; i < len(fields); i += 2 {
		s.Fields = append(s.Fields, batch.Field{Name: fields[i].(string), Type: fields[i+1].(batch.Kind), Nullable: true})
	}
	return s
}

// runBatch drives the sink protocol for one batch: one writer per task,
// each writing its batches, then Commit with the messages in task order.
func runBatch(t testing.TB, s *Sink, id int64, schema batch.Schema, tasks ...[]*batch.Batch) {
	t.Helper()
	ctx := context.Background()
	msgs := make([]sink.Message, len(tasks))
	for i, bs := range tasks {
		w, err := s.NewWriter(ctx, id, i, schema)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if err := w.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if msgs[i], err = w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, id, msgs); err != nil {
		t.Fatal(err)
	}
}

func newSink(t testing.TB, w *bytes.Buffer, opts map[string]string) *Sink {
	t.Helper()
	s, err := New(w, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLocation(time.UTC)
	return s
}

func TestSparkExample(t *testing.T) {
	// The console sink example from Spark's behaviour, reproduced exactly.
	var out bytes.Buffer
	s := newSink(t, &out, nil)
	kv := schemaOf("key", batch.String, "value", batch.String)
	rows := make([][]any, 25)
	for i := range rows {
		rows[i] = []any{"a", "this is a very long value"}
	}
	runBatch(t, s, 7, kv, []*batch.Batch{mkBatch(t, kv, rows[:1]...)}, []*batch.Batch{mkBatch(t, kv, rows[1:]...)})
	want := "-------------------------------------------\n" +
		"Batch: 7\n" +
		"-------------------------------------------\n" +
		"+---+--------------------+\n" +
		"|key|               value|\n" +
		"+---+--------------------+\n" +
		strings.Repeat("|  a|this is a very lo...|\n", 20) +
		"+---+--------------------+\n" +
		"only showing top 20 rows\n" +
		"\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestGolden(t *testing.T) {
	kv := schemaOf("key", batch.String, "value", batch.String)
	all := schemaOf("s", batch.String, "i", batch.Int, "l", batch.Long, "d", batch.Double, "b", batch.Boolean, "n", batch.Null)
	bin := schemaOf("key", batch.Binary, "value", batch.Binary, "headers", batch.Headers)
	ts := schemaOf("ts", batch.Timestamp, "day", batch.Date)
	num := schemaOf("id", batch.Long)
	nums := func(from, to int) *batch.Batch {
		var rows [][]any
		for i := from; i < to; i++ {
			rows = append(rows, []any{i})
		}
		return mkBatch(t, num, rows...)
	}
	longRows := mkBatch(t, kv,
		[]any{"a", "this is a very long value"},
		[]any{"exactly-twenty-chars", "twenty-one characters"},
		[]any{"ünïcödé strings are counted by rune", "tab\there\nnewline"},
		[]any{"", "x"},
	)
	tests := []struct {
		name   string
		opts   map[string]string
		schema batch.Schema
		tasks  [][]*batch.Batch
	}{
		{"truncation", nil, kv, [][]*batch.Batch{{longRows}}},
		{"truncate_false", map[string]string{"truncate": "false"}, kv, [][]*batch.Batch{{longRows}}},
		{"truncate_width_8", map[string]string{"truncate": "8"}, kv, [][]*batch.Batch{{longRows}}},
		{"truncate_width_2", map[string]string{"truncate": "2"}, kv, [][]*batch.Batch{{longRows}}},
		{"nulls", nil, all, [][]*batch.Batch{{mkBatch(t, all,
			[]any{"x", 1, int64(-9000000000), 1.0, true, nil},
			[]any{nil, nil, nil, nil, nil, nil},
			[]any{"y", -2147483648, int64(0), 1e10, false, nil},
		)}}},
		{"binary_headers", nil, bin, [][]*batch.Batch{{mkBatch(t, bin,
			[]any{[]byte("Hel"), []byte{0, 1, 0xab, 0xff}, []batch.Header{{Key: "k1", Value: []byte("v1")}, {Key: "k2", Value: nil}}},
			[]any{nil, []byte{}, []batch.Header{}},
			[]any{[]byte("a long binary value"), []byte("x"), nil},
		)}}},
		{"timestamps", nil, ts, [][]*batch.Batch{{mkBatch(t, ts,
			[]any{int64(0), int64(0)},
			[]any{int64(1715681700123000), int64(19857)},
			[]any{int64(1), int64(-1)},
			[]any{int64(-1500000), int64(-719162)},
			[]any{nil, nil},
		)}}},
		{"timestamps_no_truncate", map[string]string{"truncate": "false"}, ts, [][]*batch.Batch{{mkBatch(t, ts,
			[]any{int64(1715681700123000), int64(19857)},
			[]any{int64(1), int64(-1)},
			[]any{int64(-1500000), int64(-719162)},
		)}}},
		{"footer_task_order", map[string]string{"numRows": "3"}, num, [][]*batch.Batch{{nums(0, 2)}, {nums(100, 101), nums(101, 105)}, {nums(200, 210)}}},
		{"footer_one_row", map[string]string{"numRows": "1"}, num, [][]*batch.Batch{{nums(0, 2)}}},
		{"exactly_num_rows", map[string]string{"numRows": "2"}, num, [][]*batch.Batch{{nums(0, 1)}, {nums(1, 2)}}},
		{"empty_batch", nil, kv, [][]*batch.Batch{{mkBatch(t, kv)}, {}}},
	}
	win := batch.StructOf(batch.Field{Name: "start", Type: batch.Timestamp, Nullable: true}, batch.Field{Name: "end", Type: batch.Timestamp, Nullable: true})
	inner := batch.StructOf(batch.Field{Name: "n", Type: batch.Int, Nullable: true}, batch.Field{Name: "bin", Type: batch.Binary, Nullable: true},
		batch.Field{Name: "xs", Type: batch.ArrayOf(batch.Double, true), Nullable: true})
	nested := schemaOf("w", win, "items", batch.ArrayOf(batch.String, true), "m", batch.MapOf(batch.String, batch.Long, true), "s", inner)
	st := func(vals ...any) batch.StructValue { return batch.StructValue{Values: vals} }
	nestedRows := mkBatch(t, nested,
		[]any{st(int64(1714564800000000), int64(1714565400000000)), []any{"a", nil, "c"},
			batch.MapValue{Keys: []any{"a", "b"}, Values: []any{int64(1), nil}}, st(int64(1), []byte("Hi"), []any{1.5, nil})},
		[]any{nil, []any{}, batch.MapValue{}, st(nil, nil, nil)},
		[]any{st(nil, int64(0)), []any{"a long element", "another long one"}, nil, nil},
	)
	tests = append(tests,
		struct {
			name   string
			opts   map[string]string
			schema batch.Schema
			tasks  [][]*batch.Batch
		}{"nested", nil, nested, [][]*batch.Batch{{nestedRows}}},
		struct {
			name   string
			opts   map[string]string
			schema batch.Schema
			tasks  [][]*batch.Batch
		}{"nested_no_truncate", map[string]string{"truncate": "false"}, nested, [][]*batch.Batch{{nestedRows}}},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := newSink(t, &out, tc.opts)
			runBatch(t, s, 3, tc.schema, tc.tasks...)
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if out.String() != string(want) {
				t.Errorf("output differs from %s\n got:\n%s\nwant:\n%s", golden, out.String(), want)
			}
		})
	}
}

func TestEmptyBatchWithoutTasks(t *testing.T) {
	var out bytes.Buffer
	s := newSink(t, &out, nil)
	kv := schemaOf("key", batch.String, "value", batch.String)
	runBatch(t, s, 0, kv, []*batch.Batch{mkBatch(t, kv, []any{"a", "b"})})
	out.Reset()
	runBatch(t, s, 1, kv) // no tasks at all
	want := banner + "Batch: 1\n" + banner + "+---+-----+\n|key|value|\n+---+-----+\n+---+-----+\n\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}

func TestReplayPrintsAgain(t *testing.T) {
	var out bytes.Buffer
	s := newSink(t, &out, nil)
	num := schemaOf("id", batch.Long)
	b := mkBatch(t, num, []any{1})
	runBatch(t, s, 5, num, []*batch.Batch{b})
	runBatch(t, s, 5, num, []*batch.Batch{b})
	if n := strings.Count(out.String(), "Batch: 5\n"); n != 2 {
		t.Errorf("replayed batch printed %d times, want 2 (console is not idempotent)", n)
	}
}

func TestFormatCell(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	tests := []struct {
		k    batch.Kind
		v    any
		loc  *time.Location
		want string
	}{
		{batch.String, nil, nil, "NULL"},
		{batch.Null, nil, nil, "NULL"},
		{batch.Binary, []byte("Hel"), nil, "[48 65 6C]"},
		{batch.Binary, []byte{}, nil, "[]"},
		{batch.Timestamp, int64(0), ny, "1969-12-31 19:00:00"},
		{batch.Timestamp, int64(1_000_010), nil, "1970-01-01 00:00:01.00001"},
		{batch.Timestamp, int64(-1), nil, "1969-12-31 23:59:59.999999"},
		{batch.Date, int64(18262), ny, "2020-01-01"},
		{batch.Long, int64(-5), nil, "-5"},
		{batch.Boolean, true, nil, "true"},
		{batch.Headers, []any{batch.StructValue{Names: []string{"key", "value"}, Values: []any{"a", []byte{1}}}}, nil, "[{a, [01]}]"},
	}
	for _, tc := range tests {
		if got := FormatCell(tc.k, tc.v, tc.loc); got != tc.want {
			t.Errorf("FormatCell(%s, %v) = %q, want %q", tc.k, tc.v, got, tc.want)
		}
	}
}

func TestFormatTableMatchesFormatBatch(t *testing.T) {
	s := schemaOf("a", batch.String, "b", batch.Timestamp, "c", batch.Binary)
	b := mkBatch(t, s,
		[]any{"x", int64(1500000), []byte("hi")},
		[]any{nil, nil, nil},
		[]any{"a value longer than twenty", int64(0), []byte{}},
	)
	rows := make([][]any, b.N)
	for i := range rows {
		rows[i] = b.Row(i)
	}
	for _, n := range []int{0, 1, 2, 3, 5} {
		for _, tr := range []int{0, 3, 20} {
			got := FormatTable(s, rows, n, tr, time.UTC)
			if want := FormatBatch(b, n, tr, time.UTC); got != want {
				t.Errorf("numRows=%d truncate=%d: FormatTable\n%s\nFormatBatch\n%s", n, tr, got, want)
			}
		}
	}
	got := FormatTable(s, rows[:1], 5, 0, time.UTC)
	exp := "+---+---------------------+-------+\n" +
		"|a  |b                    |c      |\n" +
		"+---+---------------------+-------+\n" +
		"|x  |1970-01-01 00:00:01.5|[68 69]|\n" +
		"+---+---------------------+-------+\n"
	if got != exp {
		t.Errorf("FormatTable left-aligned:\n%s\nwant\n%s", got, exp)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts         map[string]string
		numRows, tr  int
		wantErr, opt string
	}{
		{opts: nil, numRows: 20, tr: 20},
		{opts: map[string]string{"numRows": "5", "truncate": "false"}, numRows: 5, tr: 0},
		{opts: map[string]string{"NUMROWS": "0", "Truncate": "TRUE"}, numRows: 0, tr: 20},
		{opts: map[string]string{"truncate": "30", "checkpointLocation": "/tmp/x"}, numRows: 20, tr: 30},
		{opts: map[string]string{"numRows": "-1"}, wantErr: "non-negative integer", opt: "numRows"},
		{opts: map[string]string{"numRows": "ten"}, wantErr: "non-negative integer", opt: "numRows"},
		{opts: map[string]string{"truncate": "yes"}, wantErr: "true, false or a non-negative integer", opt: "truncate"},
		{opts: map[string]string{"truncate": "-4"}, wantErr: "true, false or a non-negative integer", opt: "truncate"},
	}
	for _, tc := range tests {
		s, err := New(nil, tc.opts)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "option "+tc.opt) {
				t.Errorf("%v: err = %v, want %q naming option %s", tc.opts, err, tc.wantErr, tc.opt)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.opts, err)
			continue
		}
		if s.NumRows() != tc.numRows || s.Truncate() != tc.tr {
			t.Errorf("%v: numRows=%d truncate=%d, want %d %d", tc.opts, s.NumRows(), s.Truncate(), tc.numRows, tc.tr)
		}
		if s.w != os.Stdout || s.Description() != "ConsoleSink" {
			t.Errorf("defaults: writer %v description %q", s.w, s.Description())
		}
	}
}

func TestWriterMemoryIsBounded(t *testing.T) {
	var out bytes.Buffer
	s := newSink(t, &out, map[string]string{"numRows": "4"})
	num := schemaOf("id", batch.Long)
	ctx := context.Background()
	w, err := s.NewWriter(ctx, 0, 0, num)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 1000)
	for i := range rows {
		rows[i] = []any{i}
	}
	for i := 0; i < 10; i++ {
		if err := w.Write(ctx, mkBatch(t, num, rows[i*100:(i+1)*100]...)); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := msg.(*taskRows)
	if len(tr.rows) != 4 || tr.total != 1000 || tr.rows[3][0] != "3" {
		t.Errorf("writer kept %d rows (last %v), counted %d; want 4 rows ending in 3, 1000 counted", len(tr.rows), tr.rows[len(tr.rows)-1], tr.total)
	}
}

func TestConcurrentWriters(t *testing.T) {
	var out bytes.Buffer
	s := newSink(t, &out, map[string]string{"numRows": "100"})
	num := schemaOf("id", batch.Long)
	ctx := context.Background()
	const tasks = 8
	msgs := make([]sink.Message, tasks)
	var wg sync.WaitGroup
	for task := 0; task < tasks; task++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.NewWriter(ctx, 1, task, num)
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 5; i++ {
				if err := w.Write(ctx, mkBatch(t, num, []any{task*10 + i})); err != nil {
					t.Error(err)
				}
			}
			msgs[task], _ = w.Close(ctx)
		}()
	}
	wg.Wait()
	if err := s.Commit(ctx, 1, msgs); err != nil {
		t.Fatal(err)
	}
	var want []string
	for task := 0; task < tasks; task++ {
		for i := 0; i < 5; i++ {
			want = append(want, fmt.Sprintf("|%3d|", task*10+i))
		}
	}
	lines := strings.Split(out.String(), "\n")
	var got []string
	for _, l := range lines[6:] {
		if strings.HasPrefix(l, "|") {
			got = append(got, l)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rows not in task order:\n got %v\nwant %v", got, want)
	}
	if strings.Contains(out.String(), "only showing") {
		t.Error("footer printed although all 40 rows fit")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestErrors(t *testing.T) {
	s, err := New(failWriter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	num := schemaOf("id", batch.Long)
	if err := s.Commit(ctx, 2, []sink.Message{"bogus"}); err == nil || !strings.Contains(err.Error(), "message 0") {
		t.Errorf("foreign message: err = %v", err)
	}
	if err := s.Commit(ctx, 2, nil); err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "batch 2") {
		t.Errorf("write failure: err = %v", err)
	}
	w, _ := s.NewWriter(ctx, 2, 0, num)
	two := mkBatch(t, schemaOf("a", batch.Long, "b", batch.Long), []any{1, 2})
	if err := w.Write(ctx, two); err == nil || !strings.Contains(err.Error(), "2 columns") {
		t.Errorf("column mismatch: err = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Write(cctx, mkBatch(t, num, []any{1})); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
