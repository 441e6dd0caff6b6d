package state

// This file is the package's door to the checkpoint's files: every delta,
// snapshot, schema and metadata file goes through a storage.Store (the
// checkpoint's state/ directory, local or on an object store), which makes
// each write atomic and durable. The disk provider's Pebble databases and
// their per-version checkpoint directories are local directories (Pebble
// does its own I/O); the few file-system calls they need are here too.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/internal/storage"
)

// ctx is the context of the state files' storage calls.
var ctx = context.Background()

// atomicFile is a file being written through the store that appears under
// its name only when committed, replacing an existing file (a re-run batch
// rewriting its version). The store's writer (a temporary file on the local
// disk) is created when the first buffer's worth is written out, or at
// finish: a store's small delta costs no file creation while its batch
// runs, and the creations happen in the commit phase, where the engine
// commits every store of a batch at once.
type atomicFile struct {
	st   storage.Store
	name string
	w    storage.Writer // nil until the first bytes leave the buffer
	n    int64          // bytes handed to w
	bw   *bufio.Writer
}

func createAtomic(st storage.Store, name string) (*atomicFile, error) {
	a := &atomicFile{st: st, name: name}
	a.bw = bufio.NewWriterSize(atomicOut{a}, 64<<10)
	return a, nil
}

// atomicOut is the buffer's destination: the store's writer, created on
// first use.
type atomicOut struct{ a *atomicFile }

func (o atomicOut) Write(p []byte) (int, error) {
	a := o.a
	if a.w == nil {
		w, err := a.st.Create(ctx, a.name, storage.Replace)
		if err != nil {
			return 0, err
		}
		a.w = w
	}
	n, err := a.w.Write(p)
	a.n += int64(n)
	return n, err
}

func (a *atomicFile) Write(p []byte) (int, error) { return a.bw.Write(p) }

// commit publishes the file and returns its size.
func (a *atomicFile) commit() (int64, error) {
	if err := a.finish(); err != nil {
		return 0, err
	}
	return a.n, a.publish()
}

// finish flushes the file and has the store make it durable without
// publishing it (the slow part of a commit: fsync, or the upload of the
// remaining blocks); publish then makes it visible.
func (a *atomicFile) finish() error {
	err := a.flush()
	if err == nil {
		err = a.w.Finish()
	}
	if err != nil {
		a.abort()
		return fmt.Errorf("write %s: %w", a.name, err)
	}
	return nil
}

// flush writes the buffered bytes out to the store's writer (creating it:
// an empty file is still a file), without making them durable.
func (a *atomicFile) flush() error {
	err := a.bw.Flush()
	if err == nil && a.w == nil {
		_, err = atomicOut{a}.Write(nil)
	}
	return err
}

// publish makes the finished file visible under its name.
func (a *atomicFile) publish() error {
	if err := a.w.Commit(); err != nil {
		return fmt.Errorf("write %s: %w", a.name, err)
	}
	return nil
}

func (a *atomicFile) size() int64 { return a.n }

// abort discards the file (after finish too).
func (a *atomicFile) abort() {
	if a.w != nil {
		a.w.Abort()
	}
}

// writeFileAtomic writes name through write with createAtomic/commit and
// returns the bytes written.
func writeFileAtomic(st storage.Store, name string, write func(w io.Writer) error) (int64, error) {
	a, err := createAtomic(st, name)
	if err != nil {
		return 0, err
	}
	if err := write(a); err != nil {
		a.abort()
		return 0, fmt.Errorf("write %s: %w", name, err)
	}
	return a.commit()
}

// putIfAbsent writes data to name only if name does not exist. It reports
// whether this call created the file.
func putIfAbsent(st storage.Store, name string, data []byte) (bool, error) {
	err := st.PutIfAbsent(ctx, name, data)
	if errors.Is(err, storage.ErrExist) {
		return false, nil
	}
	return err == nil, err
}

// listDir returns the entries of dir; a missing directory is empty.
func listDir(st storage.Store, dir string) ([]storage.Entry, error) {
	return st.List(ctx, dir)
}

func readFile(st storage.Store, name string) ([]byte, error) { return st.Get(ctx, name) }

// openAt opens name for random access: the local file itself, or the
// object read into memory.
func openAt(st storage.Store, name string) (io.ReaderAt, int64, func(), error) {
	if root, ok := storage.LocalRoot(st); ok {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			return nil, 0, nil, err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, nil, err
		}
		return f, info.Size(), func() { f.Close() }, nil
	}
	b, err := st.Get(ctx, name)
	if err != nil {
		return nil, 0, nil, err
	}
	return bytes.NewReader(b), int64(len(b)), func() {}, nil
}

// removeFiles deletes names from the store.
func removeFiles(st storage.Store, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	return st.Delete(ctx, names...)
}

// versionFile names <version>.<ext> in dir.
func versionFile(dir string, version int64, ext string) string {
	return path.Join(dir, strconv.FormatInt(version, 10)+"."+ext)
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

// Local directories of the disk provider.

var tmpSeq atomic.Uint64

func tempName(path string) string {
	return fmt.Sprintf("%s.%d.%d.tmp", path, time.Now().UnixNano(), tmpSeq.Add(1))
}

// isTempFile reports whether name is a temp directory left by a crash.
func isTempFile(name string) bool { return len(name) > 4 && name[len(name)-4:] == ".tmp" }

// syncDir fsyncs a directory so renames and removals in it are durable.
func syncDir(dir string) error { return storage.SyncDir(dir) }

// removeAll removes local paths (files or directories), then fsyncs dir.
func removeAll(dir string, paths ...string) error {
	var first error
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil && first == nil {
			first = err
		}
	}
	if len(paths) > 0 {
		if err := syncDir(dir); err != nil && first == nil && !errors.Is(err, fs.ErrNotExist) {
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
