package state

// This file is the package's only door to the file system for checkpoint
// files (the disk provider's Pebble databases do their own I/O). When the
// shared crash-safe file layer lands, these functions become calls to it.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

var tmpSeq atomic.Uint64

func tempName(path string) string {
	return fmt.Sprintf("%s.%d.%d.tmp", path, time.Now().UnixNano(), tmpSeq.Add(1))
}

// atomicFile is a file being written that appears at its path only when
// committed: a temp file in the same directory, fsynced, renamed over the
// path (replacing an existing file: a re-run batch rewriting its version),
// and the directory fsynced.
type atomicFile struct {
	path, tmp string
	f         *os.File
	cw        *countingWriter
	bw        *bufio.Writer
}

func createAtomic(path string) (*atomicFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	tmp := tempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	a := &atomicFile{path: path, tmp: tmp, f: f, cw: &countingWriter{w: f}}
	a.bw = bufio.NewWriterSize(a.cw, 64<<10)
	return a, nil
}

func (a *atomicFile) Write(p []byte) (int, error) { return a.bw.Write(p) }

// commit publishes the file and returns its size.
func (a *atomicFile) commit() (int64, error) {
	if err := a.finish(); err != nil {
		return 0, err
	}
	return a.cw.n, a.publish()
}

// finish flushes, fsyncs and closes the temp file (the slow part of a
// commit); publish then renames it into place.
func (a *atomicFile) finish() error {
	err := a.bw.Flush()
	if err == nil {
		err = a.f.Sync()
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(a.tmp)
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	return nil
}

// publish renames the finished temp file over the path and fsyncs the
// directory.
func (a *atomicFile) publish() error {
	if err := os.Rename(a.tmp, a.path); err != nil {
		os.Remove(a.tmp)
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	return syncDir(filepath.Dir(a.path))
}

// abort removes the temp file (after finish too).
func (a *atomicFile) abort() {
	a.f.Close()
	os.Remove(a.tmp)
}

// writeFileAtomic writes path through write with createAtomic/commit and
// returns the bytes written.
func writeFileAtomic(path string, write func(w io.Writer) error) (int64, error) {
	a, err := createAtomic(path)
	if err != nil {
		return 0, err
	}
	if err := write(a); err != nil {
		a.abort()
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return a.commit()
}

// isTempFile reports whether name is a temp file left by a crash.
func isTempFile(name string) bool { return strings.HasSuffix(name, ".tmp") }

// putIfAbsent writes data to path only if path does not exist (temp file,
// fsync, link — which fails if path exists —, directory fsync). It reports
// whether this call created the file.
func putIfAbsent(path string, data []byte) (bool, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp := tempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, syncDir(dir)
}

// syncDir fsyncs a directory so renames and removals in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// listDir returns the names in dir; a missing directory is empty.
func listDir(dir string) ([]os.DirEntry, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return es, err
}

// openFile opens path for reading and returns it with its size.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// removeAll removes paths (files or directories), then fsyncs dir.
func removeAll(dir string, paths ...string) error {
	var first error
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil && first == nil {
			first = err
		}
	}
	if len(paths) > 0 {
		if err := syncDir(dir); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// renameDir atomically moves a finished directory into place (replacing an
// empty or stale one) and fsyncs the parent.
func renameDir(from, to string) error {
	if err := os.RemoveAll(to); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// versionFile names <version>.<ext>.
func versionFile(dir string, version int64, ext string) string {
	return filepath.Join(dir, strconv.FormatInt(version, 10)+"."+ext)
}
