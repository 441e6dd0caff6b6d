package progress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func readLines(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var p Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, p.BatchID)
	}
	return out
}

func TestJSONLinesWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewJSONLinesWriter(&buf)
	w.OnQueryStarted(StartedEvent{})
	w.OnQueryProgress(ProgressEvent{Progress: sluiceSample()})
	w.OnQueryIdle(IdleEvent{})
	w.OnQueryProgress(progressEv(8))
	w.OnQueryProgress(ProgressEvent{}) // nil progress ignored
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.OnQueryProgress(progressEv(9)) // after Close: ignored
	if got := readLines(t, buf.Bytes()); len(got) != 2 || got[0] != 7 || got[1] != 8 || w.Lines() != 2 {
		t.Errorf("lines = %v (Lines()=%d), want [7 8]", got, w.Lines())
	}
	first, _, _ := bytes.Cut(buf.Bytes(), []byte("\n"))
	if string(first) != sluiceSample().JSON() {
		t.Errorf("line is not the compact JSON:\n%s", first)
	}
}

func TestJSONLinesFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.jsonl")
	for run := range int64(2) {
		w, err := OpenJSONLinesFile(path)
		if err != nil {
			t.Fatal(err)
		}
		w.OnQueryProgress(progressEv(run*10 + 1))
		w.OnQueryProgress(progressEv(run*10 + 2))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, b); len(got) != 4 || got[0] != 1 || got[3] != 12 {
		t.Errorf("file lines = %v, want [1 2 11 12]", got)
	}
	if _, err := OpenJSONLinesFile(filepath.Join(path, "not-a-dir", "x")); err == nil {
		t.Error("opening under a file succeeded")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

func TestJSONLinesWriterError(t *testing.T) {
	fw := &failWriter{}
	w := NewJSONLinesWriter(fw)
	w.OnQueryProgress(progressEv(1))
	w.OnQueryProgress(progressEv(2))
	if err := w.Err(); err == nil || fw.n != 1 {
		t.Errorf("Err = %v after %d writes; want the first error and no retry", err, fw.n)
	}
	bad := &Progress{Sources: []SourceProgress{{EndOffset: json.RawMessage("{")}}}
	w2 := NewJSONLinesWriter(&bytes.Buffer{})
	w2.OnQueryProgress(ProgressEvent{Progress: bad})
	if w2.Close() == nil {
		t.Error("marshal error not reported by Close")
	}
}

// TestLineIsJSONMarshal: a progress-file line and JSON() are, byte for
// byte, what json.Marshal writes for the report (compact, with <, >, & and
// U+2028 escaped, raw offsets compacted), though they skip json.Marshal's
// second pass over MarshalJSON's output.
func TestLineIsJSONMarshal(t *testing.T) {
	var reports []*Progress
	for _, f := range []string{"sluice_progress.golden.json", "spark_first_batch.json", "spark_kafka_agg.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		var p Progress
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		reports = append(reports, &p)
	}
	odd := sluiceSample()
	name := "q<1> & \u2028 \"x\""
	odd.Name = &name
	odd.Sources[0].Description = "Kafka[<topic>&]"
	odd.Sources[0].EndOffset = json.RawMessage(`{ "t<&>" : { "0" : 5 } }`)
	odd.Sink.Metrics = map[string]string{"a&b": "<c>"}
	reports = append(reports, odd)
	for i, p := range reports {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w := NewJSONLinesWriter(&buf)
		w.OnQueryProgress(ProgressEvent{Progress: p})
		if got := buf.String(); got != string(want)+"\n" {
			t.Errorf("report %d: line\n%s\nwant\n%s", i, got, want)
		}
		if got := p.JSON(); got != string(want) {
			t.Errorf("report %d: JSON()\n%s\nwant\n%s", i, got, want)
		}
	}
}
