package file

import (
	"context"
	"github.com/sluice-stream/sluice/internal/storage"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/source"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// base is the modification time of test files written "at minute 0".
var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// put writes dir/name with content and a modification time of base+minute.
func put(t *testing.T, dir, name, content string, minute int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := base.Add(time.Duration(minute) * time.Minute)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	return p
}

func newSource(t *testing.T, format string, opts map[string]string, meta string) *Source {
	t.Helper()
	s, err := New(format, opts, localStore(t, meta), quiet)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// fileRows is what one task read.
type fileRows struct {
	path string
	rows [][]any
}

// read opens (start, end] and reads every task.
func read(t *testing.T, s *Source, start, end source.Offset) []fileRows {
	t.Helper()
	out, err := tryRead(s, start, end)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

func tryRead(s *Source, start, end source.Offset) ([]fileRows, error) {
	ctx := context.Background()
	r, err := s.Open(ctx, start, end)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []fileRows
	for _, tk := range r.Tasks() {
		fr := fileRows{path: tk.String()}
		err := r.Read(ctx, tk, func(_ context.Context, b *batch.Batch) error {
			if err := b.Validate(); err != nil {
				return err
			}
			for i := 0; i < b.N; i++ {
				fr.rows = append(fr.rows, b.Row(i))
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		out = append(out, fr)
	}
	return out, nil
}

// names returns the base names of the files read, in task order.
func names(frs []fileRows) []string {
	var out []string
	for _, fr := range frs {
		out = append(out, filepath.Base(fr.path))
	}
	return out
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// step plans and reads one batch from start; it returns the end offset
// and the files read (nil when there was no batch).
func step(t *testing.T, s *Source, start source.Offset, limit source.ReadLimit) (source.Offset, []fileRows) {
	t.Helper()
	end, _, err := s.Latest(context.Background(), start, limit)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	if end.JSON() == start.JSON() {
		return end, nil
	}
	frs := read(t, s, start, end)
	if err := s.Commit(context.Background(), end); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return end, frs
}

// localStore is the Store of the local directory dir.
func localStore(t testing.TB, dir string) storage.Store {
	t.Helper()
	st, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// initial is a new source's initial offset: before log batch 0, as Spark's
// (the first batch has no start offset).
var initial = Offset{LogOffset: -1}
