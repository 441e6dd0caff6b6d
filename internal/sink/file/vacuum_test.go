package file

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

// writeOnly runs the writers of a batch without committing it (a batch
// killed before its commit, or one about to commit).
func writeOnly(t *testing.T, s sink.Sink, id int64, b *batch.Batch) []sink.Message {
	t.Helper()
	ctx := context.Background()
	w, err := s.NewWriter(ctx, id, 0, b.Schema)
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
	return []sink.Message{m}
}

// Files of a batch killed before its commit stay in the output directory
// (issue 15 item 10): a reader of _spark_metadata ignores them, a glob
// sees them. Vacuum deletes them once older than the retention, keeps
// what the log lists and what a writer is about to commit.
func TestVacuumOrphans(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenQuery(t, dir, "q", false, false)
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 8)}); err != nil {
		t.Fatal(err)
	}
	writeOnly(t, mustOpenQuery(t, dir, "q", true, false), 1, genRows(8, 8)) // killed
	orphans := len(dataFiles(t, dir)) - len(logged(t, dir))
	if orphans <= 0 {
		t.Fatal("the killed batch left no files")
	}
	mt := time.Now().Add(-8 * 24 * time.Hour)
	for _, f := range dataFiles(t, dir) {
		os.Chtimes(filepath.Join(dir, filepath.FromSlash(f)), mt, mt)
	}
	s2 := mustOpenQuery(t, dir, "q", true, false)
	msgs := writeOnly(t, s2, 1, genRows(8, 8)) // about to commit
	ctx := context.Background()
	res, err := Vacuum(ctx, local(t, dir), vacuum.Options{Retention: vacuum.DefaultRetention})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != orphans || res.Recent == 0 || res.Listed != len(logged(t, dir)) {
		t.Errorf("vacuum %+v, want %d deleted", res, orphans)
	}
	if err := s2.Commit(ctx, 1, msgs); err != nil {
		t.Fatal(err)
	}
	if got, want := dataFiles(t, dir), logged(t, dir); !slices.Equal(got, want) {
		t.Errorf("glob %v, log %v", got, want)
	}
	if got := loggedRows(t, dir); got != 16 {
		t.Errorf("%d rows, want 16", got)
	}
}

func local(t *testing.T, dir string) storage.Store {
	t.Helper()
	st, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
