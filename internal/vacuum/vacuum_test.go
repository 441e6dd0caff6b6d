package vacuum

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/storage"
)

// put writes root/name with an age.
func put(t *testing.T, root, name string, age time.Duration) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(-age)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func exists(root, name string) bool {
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)))
	return err == nil
}

func TestRun(t *testing.T) {
	root := t.TempDir()
	week, hour := 8*24*time.Hour, time.Hour
	files := map[string]time.Duration{
		"part-00000-a.c000.snappy.parquet":      week, // listed
		".part-00000-a.c000.snappy.parquet.crc": week, // its checksum: kept with it
		"part-00001-b.c000.snappy.parquet":      week, // orphan: deleted
		".part-00001-b.c000.snappy.parquet.crc": week, // its checksum: deleted
		"part-00002-c.c000.snappy.parquet":      hour, // orphan, young: kept
		".part-00003-d.c000.json.tmp":           week, // temp of a killed writer: deleted
		"grp=a/part-00000-e.c000.json":          week, // orphan in a partition: deleted
		"_grp=b/part-00000-f.c000.json":         week, // partition dir starting with _: entered, deleted
		"_delta_log/00000000000000000000.json":  week, // the log: never entered
		"_spark_metadata/0":                     week,
		"_checkpoint/part-00000-g.json":         week, // hidden dir: never entered
		".hidden/part-00000-h.json":             week,
		"README.md":                             week, // not a data file: reported, kept
		"chk/offsets/0":                         week,
	}
	for n, age := range files {
		put(t, root, n, age)
	}
	st, err := storage.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	listed := func() (map[string]bool, error) {
		return map[string]bool{"part-00000-a.c000.snappy.parquet": true}, nil
	}
	ctx := context.Background()

	// The safe minimum.
	if _, err := Run(ctx, st, listed, Options{Retention: 24 * time.Hour}); err == nil || !strings.Contains(err.Error(), "safe minimum 168h") {
		t.Errorf("short retention: err = %v", err)
	}
	// Dry run: the plan, nothing deleted.
	res, err := Run(ctx, st, listed, Options{Retention: DefaultRetention, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".part-00001-b.c000.snappy.parquet.crc", ".part-00003-d.c000.json.tmp", "_grp=b/part-00000-f.c000.json",
		"grp=a/part-00000-e.c000.json", "part-00001-b.c000.snappy.parquet"}
	if got := slices.Sorted(slices.Values(res.Deleted)); !slices.Equal(got, want) {
		t.Errorf("dry run would delete %v, want %v", got, want)
	}
	if res.Listed != 2 || res.Recent != 1 || !slices.Equal(slices.Sorted(slices.Values(res.Other)), []string{"README.md", "chk/offsets/0"}) {
		t.Errorf("result %+v", res)
	}
	for n := range files {
		if !exists(root, n) {
			t.Errorf("dry run deleted %s", n)
		}
	}
	// For real.
	if _, err := Run(ctx, st, listed, Options{Retention: DefaultRetention}); err != nil {
		t.Fatal(err)
	}
	for n := range files {
		if got, deleted := exists(root, n), slices.Contains(want, n); got == deleted {
			t.Errorf("%s: exists %v after vacuum", n, got)
		}
	}
	// Forced short retention reaches the young orphan too.
	res, err = Run(ctx, st, listed, Options{Retention: 30 * time.Minute, Force: true})
	if err != nil || !slices.Equal(res.Deleted, []string{"part-00002-c.c000.snappy.parquet"}) {
		t.Errorf("forced: %+v, %v", res, err)
	}
}

// The log is read after the listing: a file committed while vacuum lists
// the directory is kept even with a zero retention.
func TestRunReadsLogAfterListing(t *testing.T) {
	root := t.TempDir()
	put(t, root, "part-00000-x.json", time.Hour)
	st, _ := storage.NewLocal(root)
	committed := false
	listed := func() (map[string]bool, error) {
		committed = true // the writer commits between listing and log read
		return map[string]bool{"part-00000-x.json": committed}, nil
	}
	res, err := Run(context.Background(), st, listed, Options{Retention: 0, Force: true})
	if err != nil || len(res.Deleted) != 0 || !exists(root, "part-00000-x.json") {
		t.Errorf("%+v, %v", res, err)
	}
}
