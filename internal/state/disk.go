package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sluice-stream/sluice/internal/storage"
)

// The disk provider keeps a store's live state in a Pebble database in a
// working directory and, on each commit, a Pebble checkpoint of it as
// state/<op>/<part>/<version>.pebble/ (see the package doc for why).

const (
	diskSnapshotExt = "pebble"
	diskMetaFile    = "SLUICE-VERSION.json"
	workingDirName  = "_working"
)

type diskVersionMeta struct {
	Version int64 `json:"version"`
	NumKeys int64 `json:"numKeys"`
}

type diskProvider struct {
	id      ID
	st      storage.Store // the state directory (local)
	dir     string        // the store's local directory, <state>/<op>/<part>[/<name>]
	schemas Schemas
	conf    Config
	workDir string

	mu        sync.Mutex
	cache     *pebbleCacheHandle
	db        *pebble.DB
	dbVersion int64 // the version db holds; -1 when unknown or dirty
	numKeys   int64
	open      *diskStore
	charge    charger
	closed    bool

	restores, reuses int64
	lastCommitBytes  int64            // bytes the last commit wrote (files new to its checkpoint)
	lastCkptBytes    int64            // size of the last checkpoint: the state on disk
	lastCkptFiles    map[string]int64 // its files, to tell new SSTs from hard-linked ones
}

// ErrDiskProviderNeedsLocal is returned (wrapped) when the disk provider is
// asked to keep state in a checkpoint on an object store.
var ErrDiskProviderNeedsLocal = errors.New("the disk state store needs a checkpoint on the local disk")

func openDiskProvider(id ID, st storage.Store, schemas Schemas, conf Config) (*diskProvider, error) {
	root, ok := storage.LocalRoot(st)
	if !ok {
		// Its versions are Pebble checkpoints: directories of hard-linked
		// files, which an object store cannot hold without a copy of
		// every SST per version.
		return nil, fmt.Errorf("state %s: %w: its versions are Pebble checkpoint directories, and %s is on an object store; use the memory state store (spark.sql.streaming.stateStore.providerClass=memory, the default), whose files go to any store, or put checkpointLocation on a local disk",
			id, ErrDiskProviderNeedsLocal, storage.URI(st, ""))
	}
	p := &diskProvider{id: id, st: st, dir: filepath.Join(root, filepath.FromSlash(id.dir())), schemas: schemas, conf: conf, dbVersion: -1,
		charge: charger{id: id, budget: conf.Budget}}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, fmt.Errorf("state %s: %w", id, err)
	}
	// Checkpoint directories a crash left half-made.
	if es, err := os.ReadDir(p.dir); err == nil {
		var stale []string
		for _, e := range es {
			if isTempFile(e.Name()) {
				stale = append(stale, filepath.Join(p.dir, e.Name()))
			}
		}
		if err := removeAll(p.dir, stale...); err != nil {
			return nil, fmt.Errorf("state %s: removing temp files: %w", id, err)
		}
	}
	if conf.DiskLocalDir != "" {
		p.workDir = filepath.Join(conf.DiskLocalDir, strconv.Itoa(id.Operator), strconv.Itoa(id.Partition), id.storeName())
	} else {
		p.workDir = filepath.Join(p.dir, workingDirName)
	}
	// The memtables and block cache are the store's memory: charge them.
	if err := p.charge.resize(conf.DiskMemory); err != nil {
		return nil, err
	}
	return p, nil
}

// localVersion is the local directory of version v's checkpoint.
func (p *diskProvider) localVersion(v int64) string {
	return filepath.Join(p.dir, strconv.FormatInt(v, 10)+"."+diskSnapshotExt)
}

// localPaths turns names relative to the state directory into local paths.
func (p *diskProvider) localPaths(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(p.dir, path.Base(n))
	}
	return out
}

// pebbleOptions sizes Pebble from the byte allowance: two memtables of a
// quarter each (one filling, one flushing) and the rest as block cache.
func (p *diskProvider) pebbleOptions() (*pebble.Options, *pebbleCacheHandle) {
	mem := p.conf.DiskMemory
	c := pebble.NewCache(mem / 2)
	opts := &pebble.Options{
		Cache:                       c,
		MemTableSize:                uint64(mem / 4),
		MemTableStopWritesThreshold: 2,
		DisableWAL:                  true, // every commit flushes, as Spark's RocksDB provider does
		MaxOpenFiles:                256,
		Logger:                      quietLogger{},
	}
	return opts, &pebbleCacheHandle{c: c}
}

type pebbleCacheHandle struct {
	c interface {
		Unref()
		Size() int64
	}
}

func (h *pebbleCacheHandle) Unref()      { h.c.Unref() }
func (h *pebbleCacheHandle) Size() int64 { return h.c.Size() }

// quietLogger drops Pebble's informational lines (WAL replay and the like)
// and sends errors to slog.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (quietLogger) Fatalf(format string, args ...any) {
	panic("pebble: " + fmt.Sprintf(format, args...))
}

func (p *diskProvider) closeDBLocked() error {
	var err error
	if p.db != nil {
		err = p.db.Close()
		p.db = nil
	}
	if p.cache != nil {
		p.cache.Unref()
		p.cache = nil
	}
	p.dbVersion = -1
	return err
}

// restoreLocked replaces the working database with checkpoint version v.
func (p *diskProvider) restoreLocked(v int64) error {
	if err := p.closeDBLocked(); err != nil {
		return fmt.Errorf("state %s: closing working db: %w", p.id, err)
	}
	if err := os.RemoveAll(p.workDir); err != nil {
		return fmt.Errorf("state %s: %w", p.id, err)
	}
	if err := os.MkdirAll(p.workDir, 0o755); err != nil {
		return fmt.Errorf("state %s: %w", p.id, err)
	}
	var numKeys int64
	if v > 0 {
		src := p.localVersion(v)
		b, err := os.ReadFile(filepath.Join(src, diskMetaFile))
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state %s: cannot open version %d: %s is missing or incomplete (%w)", p.id, v, src, ErrVersionNotFound)
		}
		if err != nil {
			return fmt.Errorf("state %s: %w", p.id, err)
		}
		var meta diskVersionMeta
		if err := json.Unmarshal(b, &meta); err != nil || meta.Version != v {
			return &CorruptFileError{Path: filepath.Join(src, diskMetaFile), Reason: "bad version metadata"}
		}
		numKeys = meta.NumKeys
		if err := copyCheckpoint(src, p.workDir); err != nil {
			return fmt.Errorf("state %s: restoring version %d: %w", p.id, v, err)
		}
		p.noteCheckpoint(src)
		p.lastCommitBytes = 0
	}
	opts, cache := p.pebbleOptions()
	db, err := pebble.Open(p.workDir, opts)
	if err != nil {
		cache.Unref()
		return fmt.Errorf("state %s: opening version %d: %w", p.id, v, err)
	}
	p.db, p.cache, p.dbVersion, p.numKeys = db, cache, v, numKeys
	return nil
}

// copyCheckpoint links the immutable SSTs and copies the rest (MANIFEST,
// OPTIONS, markers), which Pebble may append to.
func copyCheckpoint(src, dst string) error {
	es, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range es {
		name := e.Name()
		if name == diskMetaFile || e.IsDir() {
			continue
		}
		from, to := filepath.Join(src, name), filepath.Join(dst, name)
		if strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob") {
			if err := os.Link(from, to); err == nil {
				continue
			}
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return syncDir(dst)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func (p *diskProvider) Open(version int64) (Store, error) {
	if version < 0 {
		return nil, fmt.Errorf("state %s: negative version %d", p.id, version)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("state %s: provider closed", p.id)
	}
	if p.open != nil {
		return nil, fmt.Errorf("state %s: %w", p.id, errStoreOpen)
	}
	if p.db == nil || p.dbVersion != version {
		if err := p.restoreLocked(version); err != nil {
			return nil, err
		}
		p.restores++
	} else {
		p.reuses++
	}
	s := &diskStore{p: p, version: version, numKeys: p.numKeys}
	p.open = s
	return s, nil
}

func (p *diskProvider) LatestVersion() (int64, error) {
	vf, err := listVersions(p.st, p.id.dir(), diskSnapshotExt)
	if err != nil {
		return 0, err
	}
	return vf.latest(), nil
}

// Maintenance deletes checkpoints older than the last MinBatchesToRetain
// versions; every version is a full checkpoint, so there is nothing to
// compact (Pebble compacts the working database itself).
func (p *diskProvider) Maintenance() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	vf, err := listVersions(p.st, p.id.dir(), diskSnapshotExt)
	if err != nil {
		return err
	}
	paths := retentionVictims(vf, vf.latest(), int64(p.conf.MinBatchesToRetain))
	if len(paths) == 0 {
		return nil
	}
	if err := removeAll(p.dir, p.localPaths(paths)...); err != nil {
		return fmt.Errorf("state %s: retention: %w", p.id, err)
	}
	return nil
}

func (p *diskProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if p.open != nil {
		p.open.done = true
		p.open = nil
	}
	p.closed = true
	err := p.closeDBLocked()
	p.charge.force(0)
	return err
}

type diskStore struct {
	p                  *diskProvider
	version            int64
	numKeys            int64
	done               bool
	m                  Metrics
	updateNs, removeNs int64
}

func (s *diskStore) ID() ID         { return s.p.id }
func (s *diskStore) Version() int64 { return s.version }

func (s *diskStore) exists(key []byte) (bool, error) {
	_, closer, err := s.p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

func (s *diskStore) Get(key []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, errStoreDone
	}
	v, closer, err := s.p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state %s: %w", s.p.id, err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	closer.Close()
	return out, true, nil
}

func (s *diskStore) Put(key, value []byte) error {
	if s.done {
		return errStoreDone
	}
	t0 := time.Now()
	had, err := s.exists(key)
	if err == nil {
		err = s.p.db.Set(key, value, pebble.NoSync)
	}
	if err != nil {
		s.p.dbVersion = -1
		return fmt.Errorf("state %s: %w", s.p.id, err)
	}
	if !had {
		s.numKeys++
	}
	s.m.NumRowsUpdated++
	s.updateNs += int64(time.Since(t0))
	return nil
}

func (s *diskStore) Remove(key []byte) error {
	if s.done {
		return errStoreDone
	}
	t0 := time.Now()
	defer func() { s.removeNs += int64(time.Since(t0)) }()
	had, err := s.exists(key)
	if err != nil || !had {
		return err
	}
	return s.deleteKey(key)
}

func (s *diskStore) deleteKey(key []byte) error {
	if err := s.p.db.Delete(key, pebble.NoSync); err != nil {
		s.p.dbVersion = -1
		return fmt.Errorf("state %s: %w", s.p.id, err)
	}
	s.numKeys--
	s.m.NumRowsRemoved++
	return nil
}

func (s *diskStore) Iterate(lower, upper []byte, fn func(key, value []byte) bool) error {
	if s.done {
		return errStoreDone
	}
	it, err := s.p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("state %s: %w", s.p.id, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("state %s: %w", s.p.id, err)
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	return it.Close()
}

func (s *diskStore) RemoveRange(lower, upper []byte, fn func(key, value []byte) error) (int64, error) {
	if s.done {
		return 0, errStoreDone
	}
	t0 := time.Now()
	defer func() { s.removeNs += int64(time.Since(t0)) }()
	// The iterator reads the state as of its creation, so deleting behind it
	// is safe.
	it, err := s.p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("state %s: %w", s.p.id, err)
	}
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err == nil && fn != nil {
			err = fn(it.Key(), v)
		}
		if err == nil {
			err = s.deleteKey(it.Key())
		}
		if err != nil {
			it.Close()
			return n, err
		}
		n++
	}
	return n, it.Close()
}

func (s *diskStore) Commit() (int64, error) {
	if s.done {
		return 0, errStoreDone
	}
	t0 := time.Now()
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	s.done, p.open = true, nil
	newVersion := s.version + 1
	fail := func(err error) (int64, error) {
		p.dbVersion = -1
		return 0, fmt.Errorf("state %s: committing version %d: %w", p.id, newVersion, err)
	}
	if err := p.db.Flush(); err != nil {
		return fail(err)
	}
	final := p.localVersion(newVersion)
	tmp := tempName(final)
	if err := p.db.Checkpoint(tmp); err != nil {
		os.RemoveAll(tmp)
		return fail(err)
	}
	meta, _ := json.Marshal(diskVersionMeta{Version: newVersion, NumKeys: s.numKeys})
	tmpStore, err := storage.NewLocal(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return fail(err)
	}
	if _, err := writeFileAtomic(tmpStore, diskMetaFile, func(w io.Writer) error {
		_, err := w.Write(meta)
		return err
	}); err != nil {
		os.RemoveAll(tmp)
		return fail(err)
	}
	// Files of later versions are from a run the engine never committed.
	vf, err := listVersions(p.st, p.id.dir(), diskSnapshotExt)
	if err != nil {
		os.RemoveAll(tmp)
		return fail(err)
	}
	var stale []string
	for v, name := range vf.snapshots {
		if v > newVersion {
			stale = append(stale, name)
		}
	}
	if err := removeAll(p.dir, p.localPaths(stale)...); err != nil {
		os.RemoveAll(tmp)
		return fail(err)
	}
	if err := renameDir(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return fail(err)
	}
	if p.id.Partition == 0 && p.id.storeName() == DefaultStoreName {
		if err := recordSchema(p.st, p.id.Operator, p.schemas); err != nil {
			return fail(fmt.Errorf("recording schema: %w", err))
		}
	}
	p.dbVersion, p.numKeys = newVersion, s.numKeys
	p.noteCheckpoint(final)
	s.m.CommitTimeMs = time.Since(t0).Milliseconds()
	return newVersion, nil
}

// noteCheckpoint records the checkpoint's size and what the commit wrote:
// SSTs are immutable and uniquely numbered, so a file name the previous
// checkpoint did not have was written by this commit.
func (p *diskProvider) noteCheckpoint(dir string) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	files := make(map[string]int64, len(es))
	var total, written int64
	for _, e := range es {
		info, err := e.Info()
		if err != nil || info.IsDir() {
			continue
		}
		files[e.Name()] = info.Size()
		total += info.Size()
		if _, had := p.lastCkptFiles[e.Name()]; !had || !strings.HasSuffix(e.Name(), ".sst") {
			written += info.Size()
		}
	}
	p.lastCkptFiles, p.lastCkptBytes, p.lastCommitBytes = files, total, written
}

func (s *diskStore) Abort() {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.done {
		return
	}
	s.done, p.open = true, nil
	p.dbVersion = -1 // the next Open restores the checkpoint
}

func (s *diskStore) Metrics() Metrics {
	m := s.m
	m.NumKeys = s.numKeys
	m.AllUpdatesTimeMs = time.Duration(s.updateNs).Milliseconds()
	m.AllRemovalsTimeMs = time.Duration(s.removeNs).Milliseconds()
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	m.Custom = map[string]int64{
		MetricLoadedMapCacheHit:  p.reuses,
		MetricLoadedMapCacheMiss: p.restores,
		MetricCommitBytes:        p.lastCommitBytes,
	}
	if p.db != nil {
		pm := p.db.Metrics()
		m.MemoryUsedBytes = int64(pm.MemTable.Size) + pm.BlockCache.Size
		m.Custom[MetricMemTableBytes] = int64(pm.MemTable.Size)
		m.Custom[MetricBlockCacheBytes] = pm.BlockCache.Size
	}
	m.Custom[MetricStateFilesBytes] = p.lastCkptBytes
	if vf, err := listVersions(p.st, p.id.dir(), diskSnapshotExt); err == nil {
		m.Custom[MetricSnapshotFiles] = int64(len(vf.snapshots))
	}
	return m
}
