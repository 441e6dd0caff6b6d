package sparktext_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/console"
	"github.com/sluice-stream/sluice/internal/sink/file"
)

// parityRow is one line of testdata/parity.golden.
type parityRow struct {
	line  int
	kind  batch.Kind
	input string
	// want is CAST, console, JSON, CSV.
	want [4]string
}

var outputs = [4]string{"CAST(x AS STRING)", "console", "JSON writer", "CSV writer"}

func readParityGolden(t *testing.T) []parityRow {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "parity.golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kinds := map[string]batch.Kind{"double": batch.Double, "timestamp": batch.Timestamp, "date": batch.Date}
	var rows []parityRow
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) != 5 {
			t.Fatalf("parity.golden:%d: want 5 |-separated cells, got %d", n, len(cells))
		}
		head := strings.Fields(cells[0])
		k, ok := kinds[head[0]]
		if len(head) != 2 || !ok {
			t.Fatalf("parity.golden:%d: want \"kind input\", got %q", n, cells[0])
		}
		r := parityRow{line: n, kind: k, input: head[1]}
		for i := range 4 {
			r.want[i] = strings.TrimSpace(cells[i+1])
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// column builds the one-column batch of the inputs.
func column(t *testing.T, kind batch.Kind, rows []parityRow) *batch.Batch {
	t.Helper()
	c := batch.NewColumn(kind, len(rows))
	for _, r := range rows {
		in := r.input
		switch {
		case in == "null":
			c.AppendNull()
		case kind == batch.Double:
			f, err := strconv.ParseFloat(in, 64)
			if err != nil {
				t.Fatalf("parity.golden:%d: %v", r.line, err)
			}
			c.AppendFloat(f)
		case strings.HasPrefix(in, "@"):
			v, err := strconv.ParseInt(in[1:], 10, 64)
			if err != nil {
				t.Fatalf("parity.golden:%d: %v", r.line, err)
			}
			c.AppendInt(v)
		case kind == batch.Timestamp:
			ts, err := time.Parse(time.RFC3339Nano, in)
			if err != nil {
				t.Fatalf("parity.golden:%d: %v", r.line, err)
			}
			c.AppendInt(ts.Unix()*1_000_000 + int64(ts.Nanosecond()/1000))
		case kind == batch.Date:
			d, err := time.Parse(time.DateOnly, in)
			if err != nil {
				t.Fatalf("parity.golden:%d: %v", r.line, err)
			}
			c.AppendInt(d.Unix() / 86_400)
		}
	}
	b := batch.New(batch.Schema{Fields: []batch.Field{{Name: "x", Type: kind, Nullable: true}}}, []*batch.Column{c}, len(rows))
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	return b
}

// runSink drives the sink protocol for one batch with one task.
func runSink(t *testing.T, s sink.Sink, b *batch.Batch) {
	t.Helper()
	ctx := context.Background()
	w, err := s.NewWriter(ctx, 0, 0, b.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	m, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, 0, []sink.Message{m}); err != nil {
		t.Fatal(err)
	}
}

func castStrings(t *testing.T, b *batch.Batch) []string {
	t.Helper()
	n, err := expr.Parse("CAST(x AS STRING)")
	if err != nil {
		t.Fatal(err)
	}
	c, err := expr.Compile(n, b.Schema)
	if err != nil {
		t.Fatal(err)
	}
	col, err := c.Eval(b, &expr.EvalContext{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, b.N)
	for i := range out {
		if col.IsNull(i) {
			out[i] = "(null)"
		} else {
			out[i] = string(col.Bytes[i])
		}
	}
	return out
}

func consoleCells(t *testing.T, b *batch.Batch) []string {
	t.Helper()
	var buf bytes.Buffer
	s, err := console.New(&buf, map[string]string{"truncate": "false", "numRows": strconv.Itoa(b.N)})
	if err != nil {
		t.Fatal(err)
	}
	runSink(t, s, b)
	var out []string
	header := true
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		if header { // the column name
			header = false
			continue
		}
		out = append(out, strings.TrimSpace(strings.Trim(line, "|")))
	}
	return out
}

// fileLines writes b with the format's file sink and returns the lines of
// the one file written.
func fileLines(t *testing.T, format string, b *batch.Batch) []string {
	t.Helper()
	dir := t.TempDir()
	s, err := file.New(format, map[string]string{"path": dir})
	if err != nil {
		t.Fatal(err)
	}
	runSink(t, s, b)
	files, err := file.ReadLog(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("%s sink wrote %v (%v), want one file", format, files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func jsonValues(t *testing.T, b *batch.Batch) []string {
	t.Helper()
	var out []string
	for _, l := range fileLines(t, file.JSON, b) {
		if l == "{}" {
			out = append(out, "(absent)")
			continue
		}
		v, ok := strings.CutPrefix(l, `{"x":`)
		if !ok || !strings.HasSuffix(v, "}") {
			t.Fatalf("JSON line %q", l)
		}
		out = append(out, strings.TrimSuffix(v, "}"))
	}
	return out
}

// TestParity checks that a value prints as Spark prints it in every
// output: one golden table (testdata/parity.golden) for CAST(x AS
// STRING), the console, and the JSON and CSV writers.
func TestParity(t *testing.T) {
	rows := readParityGolden(t)
	byKind := map[batch.Kind][]parityRow{}
	var kinds []batch.Kind
	for _, r := range rows {
		if _, ok := byKind[r.kind]; !ok {
			kinds = append(kinds, r.kind)
		}
		byKind[r.kind] = append(byKind[r.kind], r)
	}
	if len(kinds) != 3 || len(rows) < 30 {
		t.Fatalf("parity.golden has %d rows of %d kinds; want doubles, timestamps and dates", len(rows), len(kinds))
	}
	for _, k := range kinds {
		rs := byKind[k]
		b := column(t, k, rs)
		got := [4][]string{castStrings(t, b), consoleCells(t, b), jsonValues(t, b), fileLines(t, file.CSV, b)}
		for o, vals := range got {
			if len(vals) != len(rs) {
				t.Fatalf("%v, %s: %d values for %d rows: %q", k, outputs[o], len(vals), len(rs), vals)
			}
			for i, r := range rs {
				if vals[i] != r.want[o] {
					t.Errorf("parity.golden:%d %v %s, %s: got %q, want %q", r.line, k, r.input, outputs[o], vals[i], r.want[o])
				}
			}
		}
	}
}
