package sluice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/pipeline"
	"github.com/sluice-stream/sluice/internal/registry"
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

// TestExamplesCoverFormats: every source and every sink a pipeline file can
// use appears in examples/ (the memory and foreachBatch sinks, which need
// Go, are shown in example_test.go), and every example starts with a
// comment saying what it shows and how to run it.
func TestExamplesCoverFormats(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yaml")
	used := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		header := ""
		for _, l := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(l, "#") {
				break
			}
			header += l + "\n"
		}
		if strings.Count(header, "\n") < 2 || !strings.Contains(header, "Run") {
			t.Errorf("%s: no comment header saying what it shows and how to run it", f)
		}
		p, err := pipeline.Parse(f, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		used["source/"+p.Source.Format] = true
		used["sink/"+p.Sink.Format] = true
		if p.DeadLetter != nil {
			used["sink/"+p.DeadLetter.Format] = true
			used["deadLetter"] = true
		}
	}
	for _, f := range registry.Sources() {
		if !used["source/"+f.Name] {
			t.Errorf("no example reads the %s source", f.Name)
		}
	}
	for _, f := range registry.Sinks() {
		if !used["sink/"+f.Name] && !f.APIOnly && !f.PublishesTable {
			t.Errorf("no example writes the %s sink", f.Name)
		}
	}
	if !used["deadLetter"] {
		t.Error("no example has a dead-letter sink")
	}
}
