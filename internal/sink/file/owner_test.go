package file

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink"
)

// openQuery opens a parquet sink at dir the way a query does (Formats'
// Open), as query id, resumed or not, with allowNewQuery when allow.
func openQuery(dir, id string, resumed, allow bool) (*Sink, error) {
	opts := map[string]string{"path": dir}
	if allow {
		opts[OptAllowNewQuery] = "true"
	}
	var f sink.Format
	for _, g := range Formats() {
		if g.Name == Parquet {
			f = g
		}
	}
	v, err := f.Options.Read(opts, sink.QueryOptions)
	if err != nil {
		return nil, err
	}
	s, err := f.Open(v, sink.Env{QueryID: id, Resumed: resumed, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	return s.(*Sink), nil
}

func mustOpenQuery(t *testing.T, dir, id string, resumed, allow bool) *Sink {
	t.Helper()
	s, err := openQuery(dir, id, resumed, allow)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// logNames lists the batch files of dir's log ("3", "9.compact") and the
// writer records, sorted.
func logNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, MetadataDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// loggedRows counts the rows a log reader sees.
func loggedRows(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, f := range logged(t, dir) {
		tab, err := parquetio.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		n += len(tab.Rows)
	}
	return n
}

func TestWriterRecords(t *testing.T) {
	dir := t.TempDir()
	a := mustOpenQuery(t, dir, "query-a", false, false)
	for id := int64(0); id < 3; id++ {
		if err := runBatch(t, a, id, []*batch.Batch{genRows(int(id)*10, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := logNames(t, dir), []string{"0", "1", "2", writerName(0)}; !slices.Equal(got, want) {
		t.Fatalf("log %v, want %v", got, want)
	}

	// A new query (new checkpoint) is refused, naming the path and both ids.
	_, err := openQuery(dir, "query-b", false, false)
	if err == nil {
		t.Fatal("a new query was accepted on a path another query writes")
	}
	for _, want := range []string{dir, "query-a", "query-b", OptAllowNewQuery} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err %q does not mention %q", err, want)
		}
	}
	// Even one that says it resumes: the log knows its writer.
	if _, err := openQuery(dir, "query-b", true, false); err == nil {
		t.Error("a resumed query with another id was accepted")
	}

	// Opting in: B's batches 0 and 1 become log batches 3 and 4.
	b := mustOpenQuery(t, dir, "query-b", false, true)
	for id := int64(0); id < 2; id++ {
		if err := runBatch(t, b, id, []*batch.Batch{genRows(100+int(id)*10, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := logNames(t, dir), []string{"0", "1", "2", "3", "4", writerName(0), writerName(3)}; !slices.Equal(got, want) {
		t.Fatalf("log %v, want %v", got, want)
	}
	if got := loggedRows(t, dir); got != 50 {
		t.Errorf("%d rows logged, want 50", got)
	}
	// B replays its batch 1 (its commit was lost): skipped, not added.
	b2 := mustOpenQuery(t, dir, "query-b", true, false)
	if err := runBatch(t, b2, 1, []*batch.Batch{genRows(110, 10)}); err != nil {
		t.Fatal(err)
	}
	if got := loggedRows(t, dir); got != 50 {
		t.Errorf("after B's replay: %d rows logged, want 50", got)
	}

	// A was taken over: refused without the option, naming B.
	if _, err := openQuery(dir, "query-a", true, false); err == nil || !strings.Contains(err.Error(), "query-b") || !strings.Contains(err.Error(), "took the path over") {
		t.Errorf("superseded query: err = %v", err)
	}
	// With it, A's pending batch 2 (already in the log under A's first
	// record) is skipped and its batch 3 lands after B's.
	a2 := mustOpenQuery(t, dir, "query-a", true, true)
	if err := runBatch(t, a2, 2, []*batch.Batch{genRows(20, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := runBatch(t, a2, 3, []*batch.Batch{genRows(30, 10)}); err != nil {
		t.Fatal(err)
	}
	if got, want := logNames(t, dir), []string{"0", "1", "2", "3", "4", "5", writerName(0), writerName(3), writerName(5)}; !slices.Equal(got, want) {
		t.Fatalf("log %v, want %v", got, want)
	}
	if got := loggedRows(t, dir); got != 60 {
		t.Errorf("%d rows logged, want 60", got)
	}

	// B, still running without the option, finds the log taken over at
	// its next commit: an error, never a skip.
	err = runBatch(t, b2, 2, []*batch.Batch{genRows(120, 10)})
	if err == nil || !strings.Contains(err.Error(), "took over") {
		t.Errorf("B after A took over: err = %v", err)
	}
	if got := loggedRows(t, dir); got != 60 {
		t.Errorf("%d rows logged, want 60", got)
	}
}

// A log written before writer records (Spark, an older sluice: here the
// anonymous New) is adopted by a query that resumes its checkpoint — its
// batch ids are the log's — and refused to a new checkpoint.
func TestWriterRecordAdoptsOldLog(t *testing.T) {
	dir := t.TempDir()
	old := mustNew(t, Parquet, map[string]string{"path": dir})
	for id := int64(0); id < 2; id++ {
		if err := runBatch(t, old, id, []*batch.Batch{genRows(int(id)*10, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := openQuery(dir, "fresh", false, false)
	if err == nil || !strings.Contains(err.Error(), "no record") || !strings.Contains(err.Error(), "batches 0 to 1") {
		t.Errorf("new query on an old log: err = %v", err)
	}
	q := mustOpenQuery(t, dir, "resumed", true, false)
	for id := int64(1); id < 3; id++ { // batch 1 replayed, batch 2 new
		if err := runBatch(t, q, id, []*batch.Batch{genRows(int(id)*10, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := logNames(t, dir), []string{"0", "1", "2", writerName(0)}; !slices.Equal(got, want) {
		t.Errorf("log %v, want %v", got, want)
	}
	if got := loggedRows(t, dir); got != 30 {
		t.Errorf("%d rows logged, want 30", got)
	}
	// A new query that opts in appends after it.
	n := mustOpenQuery(t, dir, "fresh", false, true)
	if err := runBatch(t, n, 0, []*batch.Batch{genRows(90, 10)}); err != nil {
		t.Fatal(err)
	}
	if got := loggedRows(t, dir); got != 40 {
		t.Errorf("%d rows logged, want 40", got)
	}
}

// Log batch numbers stay contiguous across writers, so compactions land
// where Spark's reader looks for them (every tenth log batch), and readers
// never list the writer records.
func TestWriterRecordsKeepCompaction(t *testing.T) {
	dir := t.TempDir()
	a := mustOpenQuery(t, dir, "a", false, false)
	for id := int64(0); id < 7; id++ {
		if err := runBatch(t, a, id, []*batch.Batch{genRows(int(id), 1)}); err != nil {
			t.Fatal(err)
		}
	}
	b := mustOpenQuery(t, dir, "b", false, true)
	for id := int64(0); id < 5; id++ { // log batches 7 … 11
		if err := runBatch(t, b, id, []*batch.Batch{genRows(100+int(id), 1)}); err != nil {
			t.Fatal(err)
		}
	}
	names := logNames(t, dir)
	if !slices.Contains(names, "9.compact") || slices.Contains(names, "9") {
		t.Errorf("log %v: want log batch 9 compacted", names)
	}
	if got := loggedRows(t, dir); got != 12 {
		t.Errorf("%d rows logged, want 12", got)
	}
	for _, f := range logged(t, dir) {
		if strings.Contains(f, writerPrefix) {
			t.Errorf("reader lists %s", f)
		}
	}
}

func TestWriterRecordDamaged(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, MetadataDir), 0o755)
	os.WriteFile(filepath.Join(dir, MetadataDir, writerName(0)), []byte("{"), 0o644)
	if _, err := openQuery(dir, "q", false, false); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("err = %v", err)
	}
}

func TestAllowNewQueryOption(t *testing.T) {
	var f sink.Format
	for _, g := range Formats() {
		if g.Name == JSON {
			f = g
		}
	}
	if _, err := f.Options.Read(map[string]string{"path": "x", OptAllowNewQuery: "maybe"}, sink.QueryOptions); err == nil || options.OptionOf(err) != OptAllowNewQuery {
		t.Errorf("bad value: err = %v", err)
	}
}
