package streamtest

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestScripts runs every testdata/*.txt script.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			s, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			Run(t, s, t.TempDir())
		})
	}
}
