package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// fileInfo is one listed input file.
type fileInfo struct {
	path  string // absolute
	modMs int64  // modification time, ms since the epoch
	size  int64
}

// maxBraceExpansions bounds {a,b} expansion of a path pattern.
const maxBraceExpansions = 1024

// expandBraces expands {a,b} alternatives (nesting allowed), as Hadoop
// globs do; filepath.Match handles the rest (*, ?, [..]).
func expandBraces(p string) ([]string, error) {
	open := strings.IndexByte(p, '{')
	if open < 0 {
		if strings.IndexByte(p, '}') >= 0 {
			return nil, errors.New("unmatched '}'")
		}
		return []string{p}, nil
	}
	depth, closeAt := 0, -1
	var commas []int
	for i := open; i < len(p) && closeAt < 0; i++ {
		switch p[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				closeAt = i
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	if closeAt < 0 {
		return nil, errors.New("unmatched '{'")
	}
	var alts []string
	prev := open + 1
	for _, c := range append(commas, closeAt) {
		alts = append(alts, p[prev:c])
		prev = c + 1
	}
	var out []string
	for _, a := range alts {
		rest, err := expandBraces(p[:open] + a + p[closeAt+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, rest...)
		if len(out) > maxBraceExpansions {
			return nil, fmt.Errorf("more than %d {..} alternatives", maxBraceExpansions)
		}
	}
	return out, nil
}

func mustExpand(p string) []string {
	out, err := expandBraces(p)
	if err != nil {
		return []string{p}
	}
	return out
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[{") }

// hiddenName reports names Spark's file listing skips: starting with "."
// or "_" (unless it looks like a partition directory, key=value), and
// files still being copied ("._COPYING_").
func hiddenName(name string) bool {
	return strings.HasPrefix(name, ".") ||
		(strings.HasPrefix(name, "_") && !strings.Contains(name, "=")) ||
		strings.HasSuffix(name, "._COPYING_")
}

// overlaps reports whether a file the source reads could be listed again
// once archived under dir: cleanSource=archive moves the file p to dir+p
// (dir+key on an object store, remote), and that path is listed when its
// first components match the pattern's (the pattern then matches it or a
// directory it sits under). Components within dir are compared with the
// pattern; past dir they are the file's own path, which matched the
// pattern's first components, so two literal components must be equal
// and a literal must match a glob (two globs may match the same name).
// Spark refuses every dir whose first min(depth) components match the
// pattern, which also refuses safe places: for a source "/data/in", Spark
// refuses the archive "/data", which is fine here since an archived
// "/data/in/f" lands in "/data/data/in/f", which "/data/in" does not read.
func overlaps(pattern, dir string, remote bool) bool {
	dc := splitPath(dir)
	match := func(glob, name string) bool {
		m, err := filepath.Match(glob, name)
		return err == nil && m
	}
	compatible := func(a, b string) bool {
		switch {
		case !hasGlob(a) && !hasGlob(b):
			return a == b
		case !hasGlob(a):
			return match(b, a)
		case !hasGlob(b):
			return match(a, b)
		}
		return true
	}
	for _, p := range mustExpand(pattern) {
		pc := splitPath(p)
		skip := 0 // pattern components the archived path does not repeat
		if remote {
			skip = 2 // "s3a:" and the bucket: archived objects keep their key
		}
		ok := true
		for i := 0; i < len(pc) && ok; i++ {
			switch j := i - len(dc) + skip; {
			case i < len(dc):
				ok = match(pc[i], dc[i])
			case j < len(pc):
				ok = compatible(pc[i], pc[j])
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func splitPath(p string) []string {
	p = filepath.Clean(p)
	var out []string
	for _, c := range strings.Split(p, string(filepath.Separator)) {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// checkPathExists fails, as Spark does at start, when a path without glob
// characters does not exist.
func checkPathExists(p string) error {
	if hasGlob(p) {
		return nil
	}
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("file source: path %s: %w", p, err)
	}
	return nil
}

// partitionDir reports a directory name of the form key=value.
func partitionDir(name string) bool {
	k, _, ok := strings.Cut(name, "=")
	return ok && k != ""
}

// listFiles lists the input files, sorted by path, skipping hidden names
// and names not matching nameFilter. As Spark's streaming file source, a
// file is read when the path (a glob or not) matches it, or matches its
// directory, or matches a directory it sits under through key=value
// partition directories only: `dir` reads dir's files and its partitions,
// `dir/*/*` the files two levels down and the files of the directories
// there. Other subdirectories are read only with recursive
// (recursiveFileLookup=true: everything under a matched directory).
func listFiles(pattern, nameFilter string, recursive bool) ([]fileInfo, error) {
	seen := map[string]bool{}
	var out []fileInfo
	add := func(path string, info fs.FileInfo) {
		if seen[path] || !info.Mode().IsRegular() {
			return
		}
		if nameFilter != "" {
			if ok, _ := filepath.Match(nameFilter, filepath.Base(path)); !ok {
				return
			}
		}
		seen[path] = true
		out = append(out, fileInfo{path: path, modMs: info.ModTime().UnixMilli(), size: info.Size()})
	}
	// walk adds the files under dir, descending only into key=value
	// directories unless recursive.
	walk := func(dir string) error {
		return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if path == dir {
				return nil
			}
			if hiddenName(d.Name()) || (d.IsDir() && !recursive && !partitionDir(d.Name())) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			info, err := os.Stat(path) // follows symlinks
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			add(path, info)
			return nil
		})
	}
	for _, p := range mustExpand(pattern) {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("file source: pattern %s: %w", p, err)
		}
		for _, m := range matches {
			info, err := os.Stat(m)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed since the glob
				}
				return nil, fmt.Errorf("file source: list %s: %w", m, err)
			}
			if !info.IsDir() {
				if !hiddenName(filepath.Base(m)) {
					add(m, info)
				}
				continue
			}
			if err := walk(m); err != nil {
				return nil, fmt.Errorf("file source: list %s: %w", m, err)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}
