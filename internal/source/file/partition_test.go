package file

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/source"
)

// TestGlobDepth: as Spark, a glob matches exactly its number of levels; a
// matched directory contributes its own files (and its key=value partition
// directories), everything under it only with recursiveFileLookup.
func TestGlobDepth(t *testing.T) {
	in := t.TempDir()
	put(t, in, "a.json", `{"v":1}`, 0)
	put(t, in, "x/b.json", `{"v":2}`, 1)
	put(t, in, "x/y/c.json", `{"v":3}`, 2)
	put(t, in, "x/y/z/d.json", `{"v":4}`, 3)
	for _, tc := range []struct {
		path      string
		recursive bool
		want      []string
	}{
		{"", false, []string{"a.json"}},
		{"", true, []string{"a.json", "b.json", "c.json", "d.json"}},
		{"*", false, []string{"a.json", "b.json"}},
		{"*/*", false, []string{"b.json", "c.json"}},
		{"*/*", true, []string{"b.json", "c.json", "d.json"}},
		{"*/*/*", false, []string{"c.json", "d.json"}},
	} {
		opts := map[string]string{"path": filepath.Join(in, tc.path), "schema": "v INT", "recursiveFileLookup": fmt.Sprint(tc.recursive)}
		s := newSource(t, "json", opts, t.TempDir())
		_, frs := step(t, s, initial, source.ReadLimit{})
		if got := names(frs); !slices.Equal(got, tc.want) {
			t.Errorf("path %q recursiveFileLookup=%v: files %v, want %v", tc.path, tc.recursive, got, tc.want)
		}
	}
}

// TestPartitionColumns: key=value directories become columns after the
// data columns, typed as Spark infers them, with basePath for globs.
func TestPartitionColumns(t *testing.T) {
	in := t.TempDir()
	put(t, in, "year=2024/day=2024-01-02/n=1/a.json", `{"v":1}`, 0)
	put(t, in, "year=2025/day=2024-01-03 04:05:06/n=3000000000/b.json", `{"v":2}`, 1)
	put(t, in, "year=__HIVE_DEFAULT_PARTITION__/day=x%20y/n=1.5/c.json", `{"v":3}`, 2)
	put(t, in, "top.json", `{"v":4}`, 3) // directly in the base: NULL partition values

	s := newSource(t, "json", map[string]string{"path": in, "schema": "v INT"}, t.TempDir())
	if got, want := s.Schema().String(), "struct<v:int,year:int,day:string,n:double>"; got != want {
		t.Errorf("schema %s, want %s", got, want)
	}
	_, frs := step(t, s, initial, source.ReadLimit{})
	rows := map[string]string{}
	for _, fr := range frs {
		rows[filepath.Base(fr.path)] = fmt.Sprint(fr.rows)
	}
	want := map[string]string{
		"a.json":   "[[1 2024 2024-01-02 1]]",
		"b.json":   "[[2 2025 2024-01-03 04:05:06 3e+09]]",
		"c.json":   "[[3 <nil> x y 1.5]]",
		"top.json": "[[4 <nil> <nil> <nil>]]",
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows\n%v\nwant\n%v", rows, want)
	}

	// Type inference per column: int < bigint < double, date + timestamp
	// = timestamp; off, every column is a string.
	in2 := t.TempDir()
	put(t, in2, "i=1/l=1/d=2024-01-02/s=a/f.json", `{"v":1}`, 0)
	put(t, in2, "i=2/l=3000000000/d=2024-01-02 10:00:00/s=1/g.json", `{"v":2}`, 1)
	for _, tc := range []struct {
		conf map[string]string
		want string
	}{
		{nil, "struct<v:int,i:int,l:bigint,d:timestamp,s:string>"},
		{map[string]string{PartitionTypeInferenceConf: "false"}, "struct<v:int,i:string,l:string,d:string,s:string>"},
	} {
		s, err := New("json", map[string]string{"path": in2, "schema": "v INT"}, localStore(t, t.TempDir()), quiet, WithSessionConf(tc.conf))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Schema().String(); got != tc.want {
			t.Errorf("conf %v: schema %s, want %s", tc.conf, got, tc.want)
		}
		if sch, err := SchemaOf("json", map[string]string{"path": in2, "schema": "v INT"}, WithSessionConf(tc.conf)); err != nil || sch.String() != tc.want {
			t.Errorf("conf %v: SchemaOf %v, %v, want %s", tc.conf, sch, err, tc.want)
		}
	}

	// A glob's matched directories are their own base (Spark's): no
	// columns, unless basePath says where the table starts.
	glob := filepath.Join(in2, "i=*", "l=*", "*", "*")
	for _, tc := range []struct {
		basePath, want string
	}{
		{"", "struct<v:int>"},
		{in2, "struct<v:int,i:int,l:bigint,d:timestamp,s:string>"},
		{filepath.Join(in2, "i=1"), ""},
	} {
		opts := map[string]string{"path": glob, "schema": "v INT"}
		if tc.basePath != "" {
			opts["basePath"] = tc.basePath
		}
		s, err := New("json", opts, localStore(t, t.TempDir()), quiet)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "basePath") || !strings.Contains(err.Error(), tc.basePath) {
				t.Errorf("basePath %s not above the path: %v", tc.basePath, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Schema().String(); got != tc.want {
			t.Errorf("glob with basePath %q: schema %s, want %s", tc.basePath, got, tc.want)
		}
		if tc.basePath != "" {
			_, frs := step(t, s, initial, source.ReadLimit{})
			// d: 2024-01-02 00:00:00 UTC in microseconds.
			if got := fmt.Sprint(frs[0].rows); got != "[[1 1 1 1704153600000000 a]]" {
				t.Errorf("rows %s", got)
			}
		}
	}

	// recursiveFileLookup turns partition discovery off; conflicting
	// layouts are an error naming both files.
	if s := newSource(t, "json", map[string]string{"path": in2, "schema": "v INT", "recursiveFileLookup": "true"}, t.TempDir()); s.Schema().String() != "struct<v:int>" {
		t.Errorf("recursiveFileLookup: schema %s", s.Schema())
	}
	put(t, in2, "k=1/h.json", `{"v":3}`, 2)
	_, err := New("json", map[string]string{"path": in2, "schema": "v INT"}, localStore(t, t.TempDir()), quiet)
	if err == nil || !strings.Contains(err.Error(), "conflicting partition column names") || !strings.Contains(err.Error(), "h.json") {
		t.Errorf("conflicting layouts: %v", err)
	}
}

// TestArchiveOverlapRemote: on an object store an archived object keeps
// its key under the archive URI (no bucket in between).
func TestArchiveOverlapRemote(t *testing.T) {
	for _, tc := range []struct {
		pattern, archive string
		want             bool
	}{
		{"s3a://b/in/*", "s3a://b/in", true}, // s3a://b/in/in/x: matched by in/*
		{"s3a://b/in", "s3a://b", true},      // the same key again
		{"s3a://b/in", "s3a://b/arch", false},
		{"s3a://b/in", "s3a://other", false},
		{"s3a://b/*", "s3a://b/arch", true},
	} {
		if got := overlaps(tc.pattern, tc.archive, true); got != tc.want {
			t.Errorf("overlaps(%s, %s) = %v, want %v", tc.pattern, tc.archive, got, tc.want)
		}
	}
}
