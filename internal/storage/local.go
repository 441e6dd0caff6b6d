package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Local is a Store on the local file system, rooted at a directory. A
// file is written to a hidden temporary file next to its name
// (".<name>.tmp-<random>", ignored by Spark, Hadoop and DuckDB), fsynced,
// then moved into place — hard-linked for put-if-absent (a link never
// replaces an existing name, so only one writer wins), renamed for
// replace — and the directory is fsynced. Directories are created on
// demand, each new one made durable in its parent.
//
// A writer that dies leaves only its temporary file; RemoveTemp clears
// those when no writer can be running (under the checkpoint lock).
//
// Files removed with Retire, or prepared with FillSpares, are kept (a few
// per directory, under temporary names) and written again by the
// directory's next writes: such a write overwrites the kept file, cuts it
// to length and fsyncs it instead of creating one, then moves it into
// place as above (a rename without replacing, where there is one).
type Local struct {
	root   string
	fs     osFS
	spares spares
}

// NewLocal returns the Store rooted at the directory root (made absolute;
// it is created on the first write).
func NewLocal(root string) (*Local, error) {
	if root == "" {
		return nil, errors.New("storage: empty directory name")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage: resolve %q: %w", root, err)
	}
	return &Local{root: abs, fs: realFS{}}, nil
}

// Root returns the absolute root directory.
func (l *Local) Root() string { return l.root }

// String returns the root directory, for messages.
func (l *Local) String() string { return l.root }

// URI implements Locator: the file:// URI of name ("" for the root).
func (l *Local) URI(name string) string {
	p := l.root
	if name != "" {
		p = filepath.Join(l.root, filepath.FromSlash(name))
	}
	return FileURI(p)
}

// FileURI returns the file: URI of an absolute local path
// ("file:///a/b%20c").
func FileURI(abs string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

// Path returns the local path of name.
func (l *Local) Path(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(name)), nil
}

func (l *Local) dirPath(dir string) (string, error) {
	if err := checkDir(dir); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(dir)), nil
}

// tempMarker is in every temporary file's name: ".<name>.tmp-<random>".
const tempMarker = ".tmp-"

// IsTemp reports whether a file name (its last element) is one of Local's
// temporary files.
func IsTemp(base string) bool {
	return strings.HasPrefix(base, ".") && strings.Contains(base, tempMarker)
}

// PutIfAbsent implements Store.
func (l *Local) PutIfAbsent(ctx context.Context, name string, data []byte) error {
	return l.put(ctx, name, data, IfAbsent)
}

// Put implements Store.
func (l *Local) Put(ctx context.Context, name string, data []byte) error {
	return l.put(ctx, name, data, Replace)
}

func (l *Local) put(ctx context.Context, name string, data []byte, mode Mode) error {
	w, err := l.Create(ctx, name, mode)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// Create implements Store.
func (l *Local) Create(ctx context.Context, name string, mode Mode) (Writer, error) {
	if mode != IfAbsent && mode != Replace {
		return nil, fmt.Errorf("storage: create %s: unknown mode %v", name, mode)
	}
	final, err := l.Path(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := filepath.Dir(final)
	if sp := l.spares.take(dir); sp != "" {
		f, err := l.fs.OpenSpare(sp)
		if err == nil {
			return &localWriter{l: l, f: f, final: final, mode: mode, spare: true}, nil
		}
		_ = l.fs.Remove(sp) // unusable: a new file below
	}
	pattern := "." + filepath.Base(final) + tempMarker + "*"
	f, err := l.fs.CreateTemp(dir, pattern)
	if errors.Is(err, fs.ErrNotExist) { // a new directory: create it durably
		if err := l.mkdirs(dir); err != nil {
			return nil, fmt.Errorf("storage: write %s: %w", final, err)
		}
		f, err = l.fs.CreateTemp(dir, pattern)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: write %s: %w", final, err)
	}
	return &localWriter{l: l, f: f, final: final, mode: mode}, nil
}

// mkdirs creates dir and its missing parents, fsyncing each parent that
// got a new entry.
func (l *Local) mkdirs(dir string) error {
	fi, err := l.fs.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := l.mkdirs(parent); err != nil {
			return err
		}
	}
	if err := l.fs.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made by a concurrent writer, who syncs the parent
		}
		return err
	}
	return l.fs.SyncDir(parent)
}

type localWriter struct {
	l        *Local
	f        tempFile
	final    string
	mode     Mode
	err      error // first write error
	finished bool  // Finish ran: the temporary file is synced and closed
	done     bool
	spare    bool  // f is a retired file written again (Retire)
	written  int64 // bytes written, where a spare's content ends
}

func (w *localWriter) Write(p []byte) (int, error) {
	if w.done || w.finished {
		return 0, fmt.Errorf("storage: write %s: writer already finished", w.final)
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.written += int64(n)
	if err != nil {
		w.err = fmt.Errorf("storage: write %s: %w", w.final, err)
		return n, w.err
	}
	return n, nil
}

func (w *localWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	if !w.finished {
		_ = w.f.Close()
	}
	_ = w.l.fs.Remove(w.f.Name())
}

// Finish implements Writer: fsync and close the temporary file.
func (w *localWriter) Finish() error {
	if w.done {
		return fmt.Errorf("storage: finish %s: writer already finished", w.final)
	}
	if w.finished {
		return nil
	}
	w.finished = true
	tmp := w.f.Name()
	err := w.err
	if err == nil && w.spare {
		if err = w.f.Truncate(w.written); err != nil { // the old content's tail
			err = fmt.Errorf("storage: write %s: %w", w.final, err)
		}
	}
	if err == nil {
		if err = w.f.Sync(); err != nil {
			err = fmt.Errorf("storage: fsync %s: %w", tmp, err)
		}
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("storage: write %s: %w", w.final, cerr)
	}
	if err != nil {
		w.done = true
		_ = w.l.fs.Remove(tmp)
		return err
	}
	return nil
}

// Commit implements Writer: finish the temporary file, move it into
// place, fsync the directory.
func (w *localWriter) Commit() error {
	if w.done {
		return fmt.Errorf("storage: commit %s: writer already finished", w.final)
	}
	if err := w.Finish(); err != nil {
		return err
	}
	w.done = true
	tmp := w.f.Name()
	var err error
	switch {
	case w.mode == Replace:
		err = w.l.fs.Rename(tmp, w.final)
	case w.spare:
		// One rename instead of a link and a removal; where the file
		// system cannot rename without replacing, the link does.
		err = w.l.fs.RenameNoReplace(tmp, w.final)
		if errors.Is(err, errors.ErrUnsupported) {
			err = w.l.linkNoReplace(tmp, w.final)
		}
	default:
		err = w.l.linkNoReplace(tmp, w.final)
	}
	if err != nil {
		_ = w.l.fs.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("storage: %s: %w", w.final, ErrExist)
		}
		return fmt.Errorf("storage: write %s: %w", w.final, err)
	}
	if err := w.l.syncDir(filepath.Dir(w.final)); err != nil {
		return fmt.Errorf("storage: %s was written but may not survive a crash: %w", w.final, err)
	}
	return nil
}

// syncDir fsyncs dir; the files retired in it before are then ready for
// reuse (spares).
func (l *Local) syncDir(dir string) error {
	mark := l.spares.mark(dir)
	if err := l.fs.SyncDir(dir); err != nil {
		return err
	}
	l.spares.synced(dir, mark)
	return nil
}

// linkNoReplace puts tmp's file under final unless final exists. A hard
// link is the portable way; where the file system has none, Linux's
// rename without replace does the same. On success the temporary name is
// gone; on failure the caller removes it.
func (l *Local) linkNoReplace(tmp, final string) error {
	err := l.fs.Link(tmp, final)
	if err == nil {
		// The temporary name is redundant now; one left behind by a
		// failed removal is only clutter, which RemoveTemp clears.
		_ = l.fs.Remove(tmp)
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	rerr := l.fs.RenameNoReplace(tmp, final)
	if rerr == nil || errors.Is(rerr, fs.ErrExist) {
		return rerr
	}
	if errors.Is(rerr, errors.ErrUnsupported) {
		return fmt.Errorf("cannot create %s exclusively: the file system supports neither hard links (%v) nor renaming without replacing", final, err)
	}
	return rerr
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, name string) ([]byte, error) {
	p, err := l.Path(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := l.fs.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("storage: read: %w", err)
	}
	return data, nil
}

// Open implements Store.
func (l *Local) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := l.Path(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("storage: read: %w", err)
	}
	return f, nil
}

// List implements Store. Temporary files are left out.
func (l *Local) List(ctx context.Context, dir string) ([]Entry, error) {
	p, err := l.dirPath(dir)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := l.fs.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: list: %w", err)
	}
	out := make([]Entry, 0, len(ents))
	for _, e := range ents {
		if IsTemp(e.Name()) {
			continue
		}
		ent := Entry{Name: e.Name(), IsDir: e.IsDir()}
		if !ent.IsDir {
			if info, err := e.Info(); err == nil {
				ent.Size, ent.ModTime = info.Size(), info.ModTime()
			}
		}
		out = append(out, ent)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete implements Store: the names are removed, then each directory that
// lost an entry is fsynced once.
func (l *Local) Delete(ctx context.Context, names ...string) error {
	return l.delete(ctx, true, names)
}

// deleteUnsynced implements unsyncedDeleter: Delete without the directory
// fsyncs.
func (l *Local) deleteUnsynced(ctx context.Context, names ...string) error {
	return l.delete(ctx, false, names)
}

func (l *Local) delete(ctx context.Context, sync bool, names []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dirs := map[string]bool{}
	var errs []error
	for _, n := range names {
		p, err := l.Path(n)
		if err != nil {
			return err
		}
		if err := l.fs.Remove(p); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("storage: delete: %w", err))
			}
			continue
		}
		if sync {
			dirs[filepath.Dir(p)] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := l.syncDir(d); err != nil {
			errs = append(errs, fmt.Errorf("storage: delete: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RemoveTemp deletes the temporary files that writers which died left
// anywhere under the root. Call it only when no writer can be running,
// e.g. while holding the checkpoint lock.
func (l *Local) RemoveTemp() error {
	return l.removeTemp(l.root)
}

func (l *Local) removeTemp(dir string) error {
	ents, err := l.fs.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: scan for stale temporary files: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			if err := l.removeTemp(p); err != nil {
				return err
			}
		case IsTemp(e.Name()):
			if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("storage: remove stale temporary file: %w", err)
			}
		}
	}
	return nil
}

// removeEmptyDirs removes dir and the directories under it that are empty
// (DeleteAll's clean-up; object stores have no directories to remove).
func (l *Local) removeEmptyDirs(dir string) error {
	p, err := l.dirPath(dir)
	if err != nil {
		return err
	}
	var walk func(p string) error
	walk = func(p string) error {
		ents, err := l.fs.ReadDir(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := walk(filepath.Join(p, e.Name())); err != nil {
					return err
				}
			}
		}
		if p == l.root {
			return nil
		}
		if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
			return err
		}
		return nil
	}
	if err := walk(p); err != nil {
		return fmt.Errorf("storage: delete: %w", err)
	}
	return l.fs.SyncDir(filepath.Dir(p))
}
