package monitor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/checkpoint"
)

// While batches commit, the checkpoint's size is walked at most once per
// SizeEvery, and a walk that took long spaces the next by SizeWalkFactor
// times its duration.
func TestSizeCacheSpacesSlowWalks(t *testing.T) {
	dir := t.TempDir()
	cp, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var c sizeCache
	first := c.get(cp)
	if first == nil {
		t.Fatal("no size")
	}
	add := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	add("a")
	c.touch()
	if got := c.get(cp); got.Files != first.Files {
		t.Fatalf("walked again within SizeEvery: %d files, was %d", got.Files, first.Files)
	}
	// A fast walk: due again after SizeEvery.
	c.at = time.Now().Add(-SizeEvery)
	c.touch()
	if got := c.get(cp); got.Files != first.Files+1 {
		t.Fatalf("after SizeEvery: %d files, want %d", got.Files, first.Files+1)
	}
	// A walk that took 100 ms waits SizeWalkFactor × 100 ms.
	add("b")
	c.took = 100 * time.Millisecond
	c.at = time.Now().Add(-2 * SizeEvery)
	c.touch()
	if got := c.get(cp); got.Files != first.Files+1 {
		t.Fatalf("walked again %s after a 100 ms walk: %d files", 2*SizeEvery, got.Files)
	}
	c.took = 100 * time.Millisecond
	c.at = time.Now().Add(-SizeWalkFactor * 100 * time.Millisecond)
	c.touch()
	if got := c.get(cp); got.Files != first.Files+2 {
		t.Fatalf("after %d × the walk: %d files, want %d", SizeWalkFactor, got.Files, first.Files+2)
	}
}
