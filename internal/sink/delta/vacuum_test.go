package delta

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/storage/storagetest"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

// age sets the modification time of every file under dir outside the log
// to d ago.
func age(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	mt := time.Now().Add(-d)
	for _, f := range dataFiles(t, dir) {
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(f)), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// Files of a batch killed before its commit stay in the table directory
// (issue 15 item 10): a log reader ignores them, a glob sees them. Vacuum
// deletes them once older than the retention, never a file the log lists,
// and never a file a writer is about to commit within the retention.
func TestVacuumOrphans(t *testing.T) {
	dir := t.TempDir()
	opts := map[string]string{"path": dir, "partitionBy": "grp"}
	s := mustNew(t, opts, "q")
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 8), genRows(8, 8)}); err != nil {
		t.Fatal(err)
	}
	// Batch 1 is killed after its tasks wrote their files.
	writeTasks(t, mustNew(t, opts, "q"), 1, []*batch.Batch{genRows(16, 8)})
	live, _, _ := mustSnapshot(t, dir)
	orphans := len(dataFiles(t, dir)) - len(live)
	if orphans <= 0 {
		t.Fatalf("the killed batch left no files: %v", dataFiles(t, dir))
	}
	age(t, dir, 8*24*time.Hour)

	// A concurrent writer has written batch 1 again and is about to commit.
	s2 := mustNew(t, opts, "q")
	msgs := writeTasks(t, s2, 1, []*batch.Batch{genRows(16, 8)})

	ctx := context.Background()
	res, err := Vacuum(ctx, local(t, dir), vacuum.Options{Retention: vacuum.DefaultRetention})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != orphans || res.Listed != len(live) || res.Recent == 0 {
		t.Errorf("vacuum %+v; want %d orphans deleted, %d listed kept, the writer's files kept as recent", res, orphans, len(live))
	}
	if err := s2.Commit(ctx, 1, msgs); err != nil {
		t.Fatal(err)
	}
	live, _, _ = mustSnapshot(t, dir)
	if got := dataFiles(t, dir); !slices.Equal(got, live) {
		t.Errorf("after vacuum and commit: files %v, log %v", got, live)
	}
	for _, f := range live {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			t.Errorf("listed file %s: %v", f, err)
		}
	}
	// Nothing left to do, even forced to a zero retention.
	if res, err := Vacuum(ctx, local(t, dir), vacuum.Options{Retention: 0, Force: true}); err != nil || len(res.Deleted) != 0 {
		t.Errorf("second vacuum: %+v, %v", res, err)
	}
}

// Removed files stay while their tombstone is within the table's
// retention, which is also the safe minimum.
func TestVacuumTombstones(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, map[string]string{"path": dir}, "q")
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 4)}); err != nil {
		t.Fatal(err)
	}
	live, _, v := mustSnapshot(t, dir)
	// Another writer removed the file two days ago (as an OPTIMIZE or an
	// overwrite would).
	twoDays := time.Now().Add(-48 * time.Hour).UnixMilli()
	commit := `{"remove":{"path":"` + live[0] + `","deletionTimestamp":` + strconv.FormatInt(twoDays, 10) + `,"dataChange":true}}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, LogDir, commitName(v+1)), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	age(t, dir, 8*24*time.Hour)
	ctx := context.Background()
	// Default retention 7 days: the tombstone is within it, the file stays.
	if res, err := Vacuum(ctx, local(t, dir), vacuum.Options{Retention: vacuum.DefaultRetention}); err != nil || len(res.Deleted) != 0 || res.Listed != 1 {
		t.Errorf("within retention: %+v, %v", res, err)
	}
	// One day, forced: the tombstone expired, the file goes.
	if _, err := Vacuum(ctx, local(t, dir), vacuum.Options{Retention: 24 * time.Hour}); err == nil || !strings.Contains(err.Error(), "safe minimum") {
		t.Errorf("unforced short retention: %v", err)
	}
	res, err := Vacuum(ctx, local(t, dir), vacuum.Options{Retention: 24 * time.Hour, Force: true})
	if err != nil || !slices.Equal(res.Deleted, live) {
		t.Errorf("expired tombstone: %+v, %v; want %v deleted", res, err, live)
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

// A table's delta.deletedFileRetentionDuration is its safe minimum.
func TestVacuumTableRetention(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, LogDir), 0o755)
	commit := `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}` + "\n" +
		`{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[]}","partitionColumns":[],"configuration":{"delta.deletedFileRetentionDuration":"interval 1 day"}}}` + "\n"
	os.WriteFile(filepath.Join(dir, LogDir, commitName(0)), []byte(commit), 0o644)
	if d, err := Retention(local(t, dir)); err != nil || d != 24*time.Hour {
		t.Fatalf("Retention = %v, %v", d, err)
	}
	if _, err := Vacuum(context.Background(), local(t, dir), vacuum.Options{Retention: 24 * time.Hour}); err != nil {
		t.Errorf("the table's own retention refused: %v", err)
	}
	if _, err := Vacuum(context.Background(), local(t, dir), vacuum.Options{Retention: time.Hour}); err == nil || !strings.Contains(err.Error(), "safe minimum 24h") {
		t.Errorf("below the table's retention: %v", err)
	}
}

// Vacuum works through the Store interface, so on object stores too: the
// files of a killed batch go, what the log lists and what a writer is about
// to commit stay.
func TestVacuumOnObjectStores(t *testing.T) {
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		opts := map[string]string{"path": e.URI("vacuum/t")}
		open := func() *Sink {
			s, err := New(opts, "q", file.WithResolver(r))
			if err != nil {
				t.Fatal(err)
			}
			s.SetLogger(slog.New(slog.DiscardHandler))
			return s
		}
		s := open()
		if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 4)}); err != nil {
			t.Fatal(err)
		}
		writeTasks(t, open(), 1, []*batch.Batch{genRows(4, 4)}) // killed
		ctx := context.Background()
		// An hour's retention keeps the just-written orphan.
		res, err := Vacuum(ctx, s.Root(), vacuum.Options{Retention: time.Hour, Force: true})
		if err != nil || len(res.Deleted) != 0 || res.Recent == 0 || res.Listed == 0 {
			t.Fatalf("within retention: %+v, %v", res, err)
		}
		res, err = Vacuum(ctx, s.Root(), vacuum.Options{Retention: 0, Force: true})
		if err != nil || len(res.Deleted) == 0 {
			t.Fatalf("zero retention: %+v, %v", res, err)
		}
		live, _, _, err := SnapshotStore(s.Root())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range live {
			if _, err := s.Root().Get(ctx, f); err != nil {
				t.Errorf("listed file %s: %v", f, err)
			}
		}
		for _, f := range res.Deleted {
			if _, err := s.Root().Get(ctx, f); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("deleted %s: %v", f, err)
			}
		}
	})
}
