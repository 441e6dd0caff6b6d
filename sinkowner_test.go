package sluice

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// runRateOnce runs one batch of rowsPerBatch rows from rate-micro-batch
// into format at path with checkpoint chk and extra sink options; it
// returns the query id, or the error of Start.
func runRateOnce(t *testing.T, format, path, chk string, rows int, opts map[string]string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := NewSession(WithLogger(discardLogger())).ReadStream().Format("rate-micro-batch").Option("rowsPerBatch", rows).Load().
		WriteStream().Format(format).Option("path", path).Option("checkpointLocation", chk).Trigger(Once())
	for k, v := range opts {
		w = w.Option(k, v)
	}
	q, err := w.Start(ctx)
	if err != nil {
		return "", err
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	return q.ID(), nil
}

// committedRows counts the rows a reader that follows the sink's log sees.
func committedRows(t *testing.T, format, path string) int {
	t.Helper()
	var files []string
	switch format {
	case "delta":
		rel, _, _, err := delta.Snapshot(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rel {
			files = append(files, filepath.Join(path, f))
		}
	default:
		var err error
		if files, err = filesink.ReadLog(path); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, f := range files {
		tb, err := parquetio.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(tb.Rows)
	}
	return n
}

// Issue 15 item 2: a second query (a new checkpoint) on a sink path another
// query wrote used to have its batches 0…N skipped as "already committed"
// while the CLI said OK: 0 of its rows reached the sink. It is refused at
// start, naming the path and both query ids, unless
// sluice.sink.allowNewQuery=true, and then every row arrives.
func TestNewQueryOnWrittenSinkPath(t *testing.T) {
	for _, format := range []string{"parquet", "delta"} {
		t.Run(format, func(t *testing.T) {
			path, chkA := filepath.Join(t.TempDir(), "out"), t.TempDir()
			var first string
			for i := 0; i < 3; i++ { // batches 0, 1, 2 of query A
				id, err := runRateOnce(t, format, path, chkA, 50, nil)
				if err != nil {
					t.Fatal(err)
				}
				first = id
			}
			if got := committedRows(t, format, path); got != 150 {
				t.Fatalf("query A committed %d rows, want 150", got)
			}

			chkB := t.TempDir()
			_, err := runRateOnce(t, format, path, chkB, 50, nil)
			if err == nil {
				t.Fatalf("a new query on %s was accepted; committed rows now %d", path, committedRows(t, format, path))
			}
			for _, want := range []string{path, first, "sluice.sink.allowNewQuery"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if got := committedRows(t, format, path); got != 150 {
				t.Errorf("after the refusal: %d rows, want 150", got)
			}

			// Opting in: the new query's batches 0 and 1 land after A's.
			allow := map[string]string{"sluice.sink.allowNewQuery": "true"}
			var second string
			for i := 0; i < 2; i++ {
				id, err := runRateOnce(t, format, path, chkB, 40, allow)
				if err != nil {
					t.Fatal(err)
				}
				second = id
			}
			if second == first {
				t.Fatal("the new checkpoint has the old query id")
			}
			if got := committedRows(t, format, path); got != 150+80 {
				t.Errorf("with allowNewQuery: %d rows, want %d", got, 150+80)
			}
			// The new query now owns the path: it restarts without the
			// option; the old one is refused.
			if _, err := runRateOnce(t, format, path, chkB, 10, nil); err != nil {
				t.Errorf("restart of the query that took over: %v", err)
			}
			if got := committedRows(t, format, path); got != 240 {
				t.Errorf("after the restart: %d rows, want 240", got)
			}
			if format == "parquet" {
				if _, err := runRateOnce(t, format, path, chkA, 10, nil); err == nil || !strings.Contains(err.Error(), second) {
					t.Errorf("the superseded query restarted: err = %v, want a refusal naming %s", err, second)
				}
			}
		})
	}
}

// Issue 15 item 3: with metadata deleted while a batch was pending, a new
// query id was minted and the Delta sink (txn keyed by the id) wrote the
// pending batch a second time. Start refuses the checkpoint.
func TestMissingMetadataRefusedEndToEnd(t *testing.T) {
	path, chk := filepath.Join(t.TempDir(), "out"), t.TempDir()
	if _, err := runRateOnce(t, "delta", path, chk, 100, nil); err != nil {
		t.Fatal(err)
	}
	// Batch 0 pending (its commit lost) and the id gone.
	for _, f := range []string{"commits/0", "metadata"} {
		if err := os.Remove(filepath.Join(chk, f)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := runRateOnce(t, "delta", path, chk, 100, nil)
	if err == nil || !strings.Contains(err.Error(), "metadata") || !strings.Contains(err.Error(), "offsets/") {
		t.Errorf("err = %v, want a refusal naming the missing metadata and the offsets log", err)
	}
	if got := committedRows(t, "delta", path); got != 100 {
		t.Errorf("%d rows in the table, want 100 (no duplicate)", got)
	}
}

// Issue 15 item 4 / issue 14: a damaged commits/N used to count as
// committed, so its batch was never re-run; now Start refuses it, with
// Spark's text for a newer log version.
func TestDamagedCommitRefusedEndToEnd(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{"v99999\n{}", "maximum supported log version is v1, but encountered v99999"},
		{"", "file is empty"},
		{"\x00\xff\x13garbage", "Log file was malformed"},
	} {
		path, chk := filepath.Join(t.TempDir(), "out"), t.TempDir()
		if _, err := runRateOnce(t, "parquet", path, chk, 10, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(chk, "commits", "0"), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := runRateOnce(t, "parquet", path, chk, 10, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(chk, "commits", "0")) {
			t.Errorf("commit %q: err = %v, want %q naming the file", tc.content, err, tc.want)
		}
	}
}
