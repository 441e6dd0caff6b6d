package state

// This file is the memory provider's batch durability. On a local file
// system that can do it (fsSyncSupported), a store writes its delta in
// place under its final name, without an fsync, and the commit makes it
// durable with one syncfs(2) of the checkpoint's file system, shared by
// every store of the batch: the engine takes all of a batch's stores
// through WriteOut, then Sync, so their Sync calls meet in one or two
// syncfs calls instead of an fsync of every file and of every directory
// (200 shuffle partitions: 400 fsyncs, a create and a rename a batch).
//
// Why this is safe: a state version only has to be durable before the
// engine writes commits/N (and the next offsets log entry), which happens
// after every store's Commit has returned. Until then the version is not
// committed; a crash or power loss before it makes the engine re-run the
// batch from the version before, and the re-run truncates and rewrites
// the delta. A delta torn by a power loss is therefore only ever the file
// of an uncommitted version, which no load reads (Open ignores files past
// the version it opens), and it is detected if it were (the footer's
// length, count and CRC-32C).

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/sluice-stream/sluice/internal/storage"
)

// SyncMode is how the memory provider makes its delta files durable.
type SyncMode string

const (
	// SyncBatch writes deltas in place and makes a batch's deltas durable
	// together with one syncfs(2) of the checkpoint's file system, where the
	// platform and file system allow it (Linux ≥ 5.8 on ext4, xfs, btrfs,
	// f2fs or tmpfs); elsewhere it is SyncFile. The default.
	SyncBatch SyncMode = "batch"
	// SyncFile writes every file to a temporary name, fsyncs it, renames it
	// into place and fsyncs its directory (and any store, object stores
	// included, through storage.Store).
	SyncFile SyncMode = "file"
)

// fsSync makes a batch's in-place files durable with as few syncfs calls
// as the stores' concurrent Sync calls allow. A store takes a ticket once
// its file is written; wait returns when a sync that started after the
// ticket has finished (or the first one's error). Syncs run one at a time.
type fsSync struct {
	root  string
	sync  func() error // syncfs of root's file system
	close func()

	mu      sync.Mutex
	cond    sync.Cond
	started uint64 // syncs started so far
	done    uint64 // syncs finished (they run one at a time, in order)
	running bool
	// err is the first failed sync's error. It sticks: the file system
	// reported a lost write, and which files it hit is unknown, so every
	// later wait fails too until the stores are closed (the query stops;
	// a restart re-runs the uncommitted batch and rewrites its files).
	err  error
	refs int
}

func newFSSync(root string, syncFn func() error, closeFn func()) *fsSync {
	s := &fsSync{root: root, sync: syncFn, close: closeFn}
	s.cond.L = &s.mu
	return s
}

// ticket is taken after a file is written (and closed).
func (s *fsSync) ticket() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// wait returns once a sync started after ticket t was taken has finished.
func (s *fsSync) wait(t uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.err != nil:
			return s.err
		case s.done > t:
			// Sync number t+1 started after the ticket and has finished.
			return nil
		case !s.running:
			s.running = true
			s.started++
			s.mu.Unlock()
			err := s.sync()
			s.mu.Lock()
			s.running = false
			s.done++
			if err != nil && s.err == nil {
				s.err = fmt.Errorf("syncfs of the file system of %s: %w", s.root, err)
			}
			s.cond.Broadcast()
		default:
			s.cond.Wait()
		}
	}
}

// fsSyncs shares one fsSync per state directory among its providers.
var fsSyncs = struct {
	sync.Mutex
	m map[string]*fsSync
}{m: map[string]*fsSync{}}

// openFSSync is the platform's syncfs for the file system of root (see
// batchsync_linux.go); it fails where batch durability is not available.
var openFSSync = platformFSSync

// acquireFSSync returns the shared fsSync of the local state directory
// root, or nil (with the reason) when its file system cannot sync a batch
// at once and every file must be synced on its own.
func acquireFSSync(root string) (*fsSync, error) {
	fsSyncs.Lock()
	defer fsSyncs.Unlock()
	if s, ok := fsSyncs.m[root]; ok {
		s.refs++
		return s, nil
	}
	// The directory's file descriptor must be open before the first file
	// is written: syncfs reports the write errors of the file system that
	// happened since the descriptor was opened.
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	syncFn, closeFn, err := openFSSync(root)
	if err != nil {
		return nil, err
	}
	s := newFSSync(root, syncFn, closeFn)
	s.refs = 1
	fsSyncs.m[root] = s
	return s, nil
}

func (s *fsSync) release() {
	fsSyncs.Lock()
	defer fsSyncs.Unlock()
	s.refs--
	if s.refs == 0 {
		delete(fsSyncs.m, s.root)
		s.close()
	}
}

// directFile is a delta written in place under its final name (batch
// durability): created (truncating a leftover of a failed run) when the
// first buffer's worth is written out or at flush, closed without an
// fsync at finish; the batch's fsSync makes it durable.
type directFile struct {
	path    string
	f       *os.File
	created bool // the file was created or truncated by this writer
	// held: f is a prepared file's descriptor (counted in heldPrepared
	// until closed).
	held bool
	n    int64
	// bw buffers the writes; taken from directBufs at the first write and
	// returned when the file is finished or aborted.
	bw *bufio.Writer
}

// directBufs keeps the write buffers of finished direct files: a batch
// writes a delta per shuffle partition.
var directBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func createDirect(path string) *directFile { return &directFile{path: path} }

// releaseBuffer returns the write buffer to the pool.
func (d *directFile) releaseBuffer() {
	if d.bw != nil {
		d.bw.Reset(nil)
		directBufs.Put(d.bw)
		d.bw = nil
	}
}

type directOut struct{ d *directFile }

func (o directOut) Write(p []byte) (int, error) {
	d := o.d
	if d.f == nil {
		f, err := createDirectFile(d.path)
		if err != nil {
			return 0, err
		}
		d.f, d.created = f, true
	}
	n, err := d.f.Write(p)
	d.n += int64(n)
	return n, err
}

// createDirectFile creates (or empties) the in-place file path, and its
// directory for a store's first version (made durable by the batch's sync
// like the file). The partition directory's parent, the operator's, is
// first marked to spread its subdirectories over the file system
// (storage.SpreadSubdirs: without a journal, ext4 skips every recently
// deleted inode of a group on each create — 240–460 µs against 60–80 µs
// of CPU for 200 partition directories' deltas on this project's VM).
func createDirectFile(path string) (*os.File, error) {
	f, err := openDirectFile(path)
	if os.IsNotExist(err) {
		dir := filepath.Dir(path)
		if err = os.MkdirAll(filepath.Dir(dir), 0o755); err == nil {
			storage.SpreadSubdirs(filepath.Dir(dir))
			if err = os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
				err = nil
			}
		}
		if err == nil {
			f, err = openDirectFile(path)
		}
	}
	return f, err
}

// openDirectFile opens path for writing from its start, creating it, and
// cuts off what a failed run left in it. It does not open with O_TRUNC: the
// file is usually the empty one the batch's DeltaPreparer made, and
// truncating an empty file makes ext4 (auto_da_alloc) start its write-back
// when it is closed — 25–50 µs of CPU per file on this project's VM, 200
// files a batch — where the batch's syncfs writes it back anyway.
func openDirectFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() > 0 {
		err = f.Truncate(0)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (d *directFile) Write(p []byte) (int, error) {
	if d.bw == nil {
		d.bw = directBufs.Get().(*bufio.Writer)
		d.bw.Reset(directOut{d})
	}
	return d.bw.Write(p)
}

// flush writes out what is buffered (creating the file: an empty delta is
// still a file).
func (d *directFile) flush() error {
	var err error
	if d.bw != nil {
		err = d.bw.Flush()
	}
	if err == nil && d.f == nil {
		_, err = directOut{d}.Write(nil)
	}
	return err
}

// finish flushes and closes the file; it is durable after the batch's sync.
func (d *directFile) finish() error {
	err := d.flush()
	if err == nil {
		d.releaseBuffer()
	}
	if d.f != nil {
		if cerr := d.close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		d.abort()
		return fmt.Errorf("write %s: %w", d.path, err)
	}
	return nil
}

// close closes the file's descriptor (f is not nil).
func (d *directFile) close() error {
	f, held := d.f, d.held
	d.f, d.held = nil, false
	if held {
		return releasePrepared(f)
	}
	return f.Close()
}

func (d *directFile) publish() error { return nil }
func (d *directFile) size() int64    { return d.n }

// abort removes the file if this writer wrote it: it holds a version
// that was never committed.
func (d *directFile) abort() {
	d.releaseBuffer()
	if d.f != nil {
		_ = d.close()
	}
	if d.created {
		_ = os.Remove(d.path)
		d.created = false
	}
}
