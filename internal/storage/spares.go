package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
)

// MaxSpares is how many retired files a directory of a Local store keeps
// for its next writes (Retire); retiring more deletes them.
const MaxSpares = 4

// spareBase starts the name of a retired file: a temporary file's name
// (IsTemp), so that listings skip it and RemoveTemp clears one a crash
// left behind.
const spareBase = ".spare" + tempMarker

// spares holds a Local store's retired files by directory. A retired
// file's new name is not durable until its directory is fsynced; until
// then a crash could bring its old name back, so it waits (pending) for
// the next directory fsync that starts after its rename — every write's
// commit fsyncs its directory — before a write may put new content in it
// (ready). Otherwise a crash between that write's data fsync and its own
// directory fsync could leave the old name (a purged batch's file) holding
// the new content.
type spares struct {
	mu   sync.Mutex
	dirs map[string]*spareDir
}

type spareDir struct {
	renames  uint64 // retirements completed in the directory
	reserved int    // retirements under way
	pending  []pendingSpare
	ready    []string // absolute paths
}

type pendingSpare struct {
	path string
	seq  uint64 // the directory's renames count once it was renamed
}

// reserve takes a place for a retired file in dir, or reports that the
// directory keeps enough.
func (s *spares) reserve(dir string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.roomLocked(dir)
	if d == nil {
		return false
	}
	d.reserved++
	return true
}

// roomLocked returns dir's pool, made if need be, or nil when it holds or
// is getting MaxSpares files already.
func (s *spares) roomLocked(dir string) *spareDir {
	if s.dirs == nil {
		s.dirs = map[string]*spareDir{}
	}
	d := s.dirs[dir]
	if d == nil {
		d = &spareDir{}
		s.dirs[dir] = d
	}
	if len(d.pending)+len(d.ready)+d.reserved >= MaxSpares {
		return nil
	}
	return d
}

// retired ends a reservation: path is the retired file's name when the
// rename succeeded ("" otherwise).
func (s *spares) retired(dir, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirs[dir]
	d.reserved--
	if path != "" {
		d.renames++
		d.pending = append(d.pending, pendingSpare{path: path, seq: d.renames})
	}
}

// mark is taken before an fsync of dir: the retirements it will make
// durable.
func (s *spares) mark(dir string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dirs[dir]; d != nil {
		return d.renames
	}
	return 0
}

// synced records an fsync of dir that started at mark: the files retired
// up to it are ready for reuse.
func (s *spares) synced(dir string, mark uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirs[dir]
	if d == nil {
		return
	}
	n := 0
	for _, p := range d.pending {
		if p.seq <= mark {
			d.ready = append(d.ready, p.path)
		} else {
			d.pending[n] = p
			n++
		}
	}
	clear(d.pending[n:])
	d.pending = d.pending[:n]
}

// take removes a ready file of dir from the pool ("" if none).
func (s *spares) take(dir string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirs[dir]
	if d == nil || len(d.ready) == 0 {
		return ""
	}
	p := d.ready[len(d.ready)-1]
	d.ready = d.ready[:len(d.ready)-1]
	return p
}

// drain empties the pool and returns every file in it.
func (s *spares) drain() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []string
	for _, d := range s.dirs {
		all = append(all, d.ready...)
		for _, p := range d.pending {
			all = append(all, p.path)
		}
	}
	s.dirs = nil
	return all
}

// retirer is a store that can keep removed files for reuse.
type retirer interface {
	retire(ctx context.Context, names []string) error
	dropSpares() error
}

// Retire removes names as DeleteUnsynced does, for files that are written
// again and again in the same directories, such as a checkpoint's batch
// logs. A Local store keeps up to MaxSpares of them per directory under
// temporary names and writes the directory's next files into them instead
// of creating new ones: on ext4 a new file costs an inode allocation —
// which without a journal scans past every inode freed in the last minutes
// — and makes its file's fsync write the directory too, and a removed file
// frees an inode that the next allocations then scan past. Other stores
// delete as DeleteUnsynced does. DropSpares removes the kept files.
func Retire(ctx context.Context, s Store, names ...string) error {
	if r, ok := s.(retirer); ok {
		return r.retire(ctx, names)
	}
	return DeleteUnsynced(ctx, s, names...)
}

// DropSpares removes the files Retire kept in s (none on stores other
// than Local). Call it when s is written no more, e.g. when a checkpoint
// closes; a crash leaves them to RemoveTemp.
func DropSpares(s Store) error {
	if r, ok := s.(retirer); ok {
		return r.dropSpares()
	}
	return nil
}

func (l *Local) retire(ctx context.Context, names []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		p, err := l.Path(n)
		if err != nil {
			return err
		}
		dir := filepath.Dir(p)
		if l.spares.reserve(dir) {
			sp := filepath.Join(dir, spareBase+strconv.FormatUint(rand.Uint64(), 36))
			err := l.fs.Rename(p, sp)
			if err != nil {
				sp = ""
			}
			l.spares.retired(dir, sp)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				continue
			}
			// Not kept: removed below.
		}
		if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("storage: delete: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (l *Local) dropSpares() error {
	var errs []error
	for _, p := range l.spares.drain() {
		if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("storage: remove a retired file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// add puts a file that never held anything of the store's into dir's
// pool, ready at once; false when the pool is full.
func (s *spares) add(dir, path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.roomLocked(dir)
	if d == nil {
		return false
	}
	d.ready = append(d.ready, path)
	return true
}

// count is how many files dir's pool holds or is getting.
func (s *spares) count(dir string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirs[dir]
	if d == nil {
		return 0
	}
	return len(d.pending) + len(d.ready) + d.reserved
}

// filler is a store that can prepare files for its next writes.
type filler interface {
	fillSpares(ctx context.Context, dir string, n int) error
}

// FillSpares makes sure the directory dir of s has n files (at most
// MaxSpares) kept for its next writes, creating empty ones where Retire
// kept too few: called off a writer's critical path (a checkpoint's purge
// goroutine), it moves the cost of creating a file there, as long as no
// file is retired yet (a checkpoint's first minBatchesToRetain batches).
// A no-op on stores other than Local.
func FillSpares(ctx context.Context, s Store, dir string, n int) error {
	if f, ok := s.(filler); ok {
		return f.fillSpares(ctx, dir, min(n, MaxSpares))
	}
	return nil
}

func (l *Local) fillSpares(ctx context.Context, dir string, n int) error {
	p, err := l.dirPath(dir)
	if err != nil {
		return err
	}
	for l.spares.count(p) < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := l.fs.CreateTemp(p, spareBase+"*")
		if err != nil {
			return fmt.Errorf("storage: prepare a file in %s: %w", p, err)
		}
		// Empty and under a temporary name: nothing to make durable.
		if err := f.Close(); err != nil {
			_ = l.fs.Remove(f.Name())
			return fmt.Errorf("storage: prepare a file in %s: %w", p, err)
		}
		if !l.spares.add(p, f.Name()) {
			_ = l.fs.Remove(f.Name())
			return nil
		}
	}
	return nil
}
