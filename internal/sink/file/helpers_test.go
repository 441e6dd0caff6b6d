package file

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/storage"
)

// testFields is the schema of the generated rows.
var testFields = []batch.Field{
	{Name: "id", Type: batch.Long},
	{Name: "name", Type: batch.String},
	{Name: "grp", Type: batch.String},
	{Name: "n", Type: batch.Int},
	{Name: "ts", Type: batch.Timestamp},
	{Name: "d", Type: batch.Double},
	{Name: "flag", Type: batch.Boolean},
	{Name: "day", Type: batch.Date},
	{Name: "bin", Type: batch.Binary},
	{Name: "headers", Type: batch.Headers},
}

var testSchema = batch.Schema{Fields: testFields}

// genRows builds rows with ids [from, from+n). Column grp cycles through
// "a", "b:c" (escaped in paths), "" and null; other columns have a null
// every 5th row.
func genRows(from, n int) *batch.Batch {
	cols := make([]*batch.Column, len(testFields))
	for c, f := range testFields {
		cols[c] = batch.NewColumn(f.Type, n)
	}
	for k := 0; k < n; k++ {
		id := from + k
		cols[0].AppendInt(int64(id))
		switch id % 4 {
		case 0:
			cols[2].AppendBytes([]byte("a"))
		case 1:
			cols[2].AppendBytes([]byte("b:c"))
		case 2:
			cols[2].AppendBytes([]byte{})
		default:
			cols[2].AppendNull()
		}
		if id%5 == 4 {
			for _, c := range []int{1, 3, 4, 5, 6, 7, 8, 9} {
				cols[c].AppendNull()
			}
			continue
		}
		cols[1].AppendBytes([]byte(fmt.Sprintf("name-%d", id)))
		cols[3].AppendInt(int64(id * 7))
		cols[4].AppendInt(1_714_564_800_000_000 + int64(id)*1_000_001)
		cols[5].AppendFloat(float64(id) + 0.25)
		cols[6].AppendBool(id%2 == 0)
		cols[7].AppendInt(19844 + int64(id%30))
		cols[8].AppendBytes([]byte{byte(id), 0xff})
		cols[9].AppendHeaders([]batch.Header{{Key: "h", Value: []byte(fmt.Sprint(id))}})
	}
	return batch.New(testSchema, cols, n)
}

// runBatch drives the sink protocol for one batch: one writer per task,
// concurrently, each writing its rows in two Write calls, then Commit.
func runBatch(t *testing.T, s sink.Sink, id int64, tasks []*batch.Batch) error {
	t.Helper()
	ctx := context.Background()
	msgs := make([]sink.Message, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, b := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.NewWriter(ctx, id, i, b.Schema)
			if err != nil {
				errs[i] = err
				return
			}
			half := b.N / 2
			for _, part := range []*batch.Batch{sliceBatch(b, 0, half), sliceBatch(b, half, b.N)} {
				if err := w.Write(ctx, part); err != nil {
					w.Abort(ctx)
					errs[i] = err
					return
				}
			}
			msgs[i], errs[i] = w.Close(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return s.Commit(ctx, id, msgs)
}

func sliceBatch(b *batch.Batch, from, to int) *batch.Batch {
	cols := make([]*batch.Column, len(b.Columns))
	for i, c := range b.Columns {
		cols[i] = c.Slice(from, to)
	}
	return batch.New(b.Schema, cols, to-from)
}

// dataFiles lists the regular files under dir outside _spark_metadata
// (temporaries included), relative and sorted.
func dataFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == MetadataDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// logged returns ReadLog's files relative to dir, sorted.
func logged(t *testing.T, dir string) []string {
	t.Helper()
	files, err := ReadLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(files))
	for i, f := range files {
		rel, err := filepath.Rel(dir, f)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("logged file %s is outside %s", f, dir)
		}
		out[i] = filepath.ToSlash(rel)
	}
	slices.Sort(out)
	return out
}

func mustNew(t *testing.T, format string, opts map[string]string) *Sink {
	t.Helper()
	s, err := New(format, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(slog.New(slog.DiscardHandler))
	return s
}

func readFileString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logIn opens the metadata log in the local directory dir.
func logIn(dir string) (metaLog, error) {
	st, err := storage.NewLocal(dir)
	if err != nil {
		return metaLog{}, err
	}
	return metaLog{dir: st.Root(), st: st}, nil
}

// readLogFile parses the metadata log file at path.
func readLogFile(path string) ([]LogEntry, error) {
	m, err := logIn(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return m.readFile(filepath.Base(path))
}

// writeLogFile writes entries as the log file dir/name unless it exists.
func writeLogFile(dir, name string, entries []LogEntry) (bool, error) {
	m, err := logIn(dir)
	if err != nil {
		return false, err
	}
	return m.write(name, entries)
}
