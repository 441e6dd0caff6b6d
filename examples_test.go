package sluice

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExamplesBuild checks every shipped pipeline file builds into a query
// (options, expressions and sinks validated) without connecting anywhere.
func TestExamplesBuild(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		noEnv := func(string) (string, bool) { return "", false }
		if _, err := NewSession(WithLogger(quietLog)).Pipeline(f, data, noEnv); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
