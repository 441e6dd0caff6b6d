package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/btree"

	"github.com/sluice-stream/sluice/internal/storage"
)

// entry is one key/value pair of the memory provider: a pointer to one
// allocation holding the key followed by the value, and their lengths.
// At 16 bytes (two slice headers would take 48) a B-tree node's items are
// a third the size: inserting or deleting in a node moves a third of the
// bytes, and the garbage collector scans one pointer per entry, not two.
type entry struct {
	p          unsafe.Pointer // key then value; nil when both are empty
	klen, vlen uint32
}

// emptyBytes is what key and value return for an empty one: a non-nil
// empty slice, as a store hands back for a value put as empty.
var emptyBytes = []byte{}

func (e entry) key() []byte {
	if e.klen == 0 {
		return emptyBytes
	}
	return unsafe.Slice((*byte)(e.p), e.klen)
}

func (e entry) value() []byte {
	if e.vlen == 0 {
		// Not unsafe.Add(p, klen): that may point past the allocation.
		return emptyBytes
	}
	return unsafe.Slice((*byte)(unsafe.Add(e.p, e.klen)), e.vlen)
}

// probe is an entry to search the tree for key (not stored: it points
// into the caller's key).
func probe(key []byte) entry {
	return entry{p: unsafe.Pointer(unsafe.SliceData(key)), klen: uint32(len(key))}
}

func entryLess(a, b entry) bool { return bytes.Compare(a.key(), b.key()) < 0 }

// entryOverhead is the memory an entry costs beyond its key and value
// allocation: the entry in a B-tree node (16 B) and the node's share of
// child pointers and slack. With allocSize's rounding of the allocation it
// matches the heap the tree really takes (measured by
// TestMemoryAccountingMatchesHeap).
const entryOverhead = 44

// maxEntryField bounds a key or a value of the memory provider (the
// entry's 32-bit lengths).
const maxEntryField = math.MaxUint32

// newEntry copies key and value into one allocation.
func newEntry(key, value []byte) entry {
	n := len(key) + len(value)
	if n == 0 {
		return entry{}
	}
	buf := make([]byte, n)
	copy(buf, key)
	copy(buf[len(key):], value)
	return entry{p: unsafe.Pointer(unsafe.SliceData(buf)), klen: uint32(len(key)), vlen: uint32(len(value))}
}

// entrySize is what an entry of key length k and value length v is
// charged.
func entrySize(k, v int) int64 { return allocSize(k+v) + entryOverhead }

// size is what e is charged.
func (e entry) size() int64 { return entrySize(int(e.klen), int(e.vlen)) }

// allocSize approximates the Go allocator's size class for n bytes.
func allocSize(n int) int64 {
	switch {
	case n == 0:
		return 0
	case n <= 8:
		return 8
	case n <= 256:
		return int64((n + 15) &^ 15)
	}
	return int64(n + n/8)
}

const btreeDegree = 32

func newTree() *btree.BTreeG[entry] { return btree.NewG(btreeDegree, entryLess) }

// memVersion is one loaded, committed version. Its tree is never modified:
// stores work on lazy copy-on-write clones, so cached versions share every
// node the batch did not touch. A version a batch left flat (see
// memStore.tree) has no tree but its entries in key order, flat, which is
// never modified either: a store starting from it copies what it changes.
type memVersion struct {
	tree  *btree.BTreeG[entry]
	flat  []entry // when tree is nil
	bytes int64
}

// treeClone returns a tree of the version's entries to modify.
func (mv *memVersion) treeClone() *btree.BTreeG[entry] {
	if mv.tree != nil {
		return mv.tree.Clone()
	}
	return buildTree(mv.flat)
}

// ascend calls fn with the version's entries in key order until it
// returns false.
func (mv *memVersion) ascend(fn func(e entry) bool) {
	if mv.tree != nil {
		mv.tree.Ascend(fn)
		return
	}
	for _, e := range mv.flat {
		if !fn(e) {
			return
		}
	}
}

// buildTree returns a tree of entries (in key order), inserted in
// ascending order.
func buildTree(entries []entry) *btree.BTreeG[entry] {
	t := newTree()
	for _, e := range entries {
		t.ReplaceOrInsert(e)
	}
	return t
}

type memoryProvider struct {
	id      ID
	st      storage.Store // the state directory
	schemas Schemas
	conf    Config

	mu         sync.Mutex
	cache      map[int64]*memVersion
	open       *memStore
	charge     charger
	files      versionFiles
	filesValid bool
	closed     bool
	// commits counts the commits of each recent version through this
	// provider: a snapshot is published only if its version was not
	// re-committed (by a re-run) while it was being written.
	commits map[int64]int64

	cacheHits, cacheMisses atomic.Int64
	lastCommitBytes        atomic.Int64

	// fsync, when not nil, makes deltas durable a batch at a time
	// (SyncBatch on a local file system that allows it: batchsync.go);
	// localDir is then the store directory's local path.
	fsync    *fsSync
	localDir string
	// snapTickets holds, for the snapshots written in this run with batch
	// durability, the fsync ticket taken after each: retention waits for
	// a sync after it before deleting the files it replaces.
	snapTickets map[int64]uint64
	// schemaRecorded: this provider's first commit recorded the schema file.
	schemaRecorded bool
	// lastDeltaRaw is the payload of the last delta written: the next
	// delta's buffer starts at about that size (a batch's share of a
	// shuffle partition changes little from one batch to the next).
	lastDeltaRaw int64
	// prepared is the delta file PrepareDelta created for the next Open
	// (nil: none).
	prepared *preparedDelta
}

// preparedDelta is an in-place delta file created ahead of its store. It
// keeps its descriptor open for the store (held, counted in heldPrepared)
// while fewer than maxHeldPrepared prepared files of the process do, and is
// closed otherwise: the store's first write then opens it again, about
// 20 µs of CPU a file (path lookup, open, stat, close) that a held
// descriptor saves, 200 files a batch at Spark's default partitions.
type preparedDelta struct {
	version int64 // the delta's version (the store's version + 1)
	path    string
	f       *os.File // open for writing at offset 0, or nil
}

// maxHeldPrepared bounds the descriptors prepared delta files hold open
// in the process at once (beyond it they are closed and reopened by their
// stores), so that queries with many partitions and operators do not
// approach the descriptor limit.
var maxHeldPrepared int64 = 256

// heldPrepared counts the descriptors of prepared delta files open in
// the process: prepared and not yet closed by their store's writer (or a
// discard).
var heldPrepared atomic.Int64

// holdPrepared keeps f open if the process holds fewer than
// maxHeldPrepared prepared descriptors; it closes f and returns nil
// otherwise.
func holdPrepared(f *os.File) (*os.File, error) {
	if heldPrepared.Add(1) <= maxHeldPrepared {
		return f, nil
	}
	heldPrepared.Add(-1)
	return nil, f.Close()
}

// releasePrepared closes a held prepared descriptor.
func releasePrepared(f *os.File) error {
	heldPrepared.Add(-1)
	return f.Close()
}

// discard closes and removes the file: it holds no version (it is empty,
// or truncated what a failed run left there, as the store's own create
// would have).
func (d *preparedDelta) discard() {
	if d.f != nil {
		_ = releasePrepared(d.f)
		d.f = nil
	}
	_ = os.Remove(d.path)
}

// PrepareDelta implements DeltaPreparer. The file is created under the
// provider's lock, so it never races with Open; a store already open, or
// a file already prepared, makes it a no-op.
func (p *memoryProvider) PrepareDelta(version int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fsync == nil || p.closed || p.open != nil || p.prepared != nil || version < 0 {
		return nil
	}
	path := filepath.Join(p.localDir, strconv.FormatInt(version+1, 10)+".delta")
	f, err := createDirectFile(path)
	if err != nil {
		return fmt.Errorf("state %s: %w", p.id, err)
	}
	if f, err = holdPrepared(f); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("state %s: %w", p.id, err)
	}
	p.prepared = &preparedDelta{version: version + 1, path: path, f: f}
	return nil
}

// versionWriter is where a store writes its delta: an atomicFile (each
// file made durable on its own) or a directFile (in place, made durable
// with the batch's other stores by fsSync).
type versionWriter interface {
	io.Writer
	flush() error   // write out what is buffered; the file exists after it
	finish() error  // atomicFile: durable, not visible; directFile: closed
	publish() error // atomicFile: visible under the version's name
	abort()
	size() int64
}

func newMemoryProvider(id ID, st storage.Store, schemas Schemas, conf Config) *memoryProvider {
	p := &memoryProvider{id: id, st: st, schemas: schemas, conf: conf, cache: map[int64]*memVersion{}, commits: map[int64]int64{},
		charge: charger{id: id, limit: conf.MemoryLimit, budget: conf.Budget}}
	if conf.Sync != SyncFile {
		if root, ok := storage.LocalRoot(st); ok {
			// Where the file system cannot sync a batch at once, every
			// file is synced on its own (SyncFile).
			if fs, err := acquireFSSync(root); err == nil {
				p.fsync, p.localDir = fs, filepath.Join(root, filepath.FromSlash(id.dir()))
			}
		}
	}
	return p
}

// newDelta starts the delta file of version v.
func (p *memoryProvider) newDelta(v int64) (versionWriter, error) {
	if p.fsync != nil {
		d := createDirect(filepath.Join(p.localDir, strconv.FormatInt(v, 10)+".delta"))
		if pd := p.prepared; pd != nil {
			p.prepared = nil
			if pd.version == v {
				// Its file, empty: the store writes into the held
				// descriptor (or opens the file again when none is
				// held), and removes it if aborted.
				d.created, d.f, d.held = true, pd.f, pd.f != nil
			} else {
				pd.discard()
			}
		}
		return d, nil
	}
	return createAtomic(p.st, versionFile(p.id.dir(), v, "delta"))
}

// removeFiles deletes files of the store's directory. With batch
// durability the removals are made durable by the next batch's sync: a
// file that comes back after a power loss is an old version's (retention)
// or an uncommitted version's, which no load reads.
func (p *memoryProvider) removeFiles(paths ...string) error {
	if p.fsync == nil {
		return removeFiles(p.st, paths...)
	}
	var first error
	for _, name := range paths {
		if err := os.Remove(filepath.Join(p.localDir, path.Base(name))); err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
			first = err
		}
	}
	return first
}

func (p *memoryProvider) listFiles() (versionFiles, error) {
	if !p.filesValid {
		vf, err := listVersions(p.st, p.id.dir(), "snapshot")
		if err != nil {
			return vf, fmt.Errorf("state %s: %w", p.id, err)
		}
		p.files, p.filesValid = vf, true
	}
	if p.fsync != nil {
		// The open store's delta is being written in place, or a prepared
		// one waits for its store (or a failed run's is about to be
		// replaced): not a version (Maintenance must not load it).
		pending := int64(-1)
		switch {
		case p.open != nil && !p.open.done:
			pending = p.open.version + 1
		case p.prepared != nil:
			pending = p.prepared.version
		}
		if _, ok := p.files.deltas[pending]; ok {
			vf := p.files
			vf.deltas = maps.Clone(vf.deltas)
			delete(vf.deltas, pending)
			return vf, nil
		}
	}
	return p.files, nil
}

func (p *memoryProvider) Open(version int64) (Store, error) {
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
	// Versions past the one asked for come from a run that did not reach
	// the engine's commit log: never serve them again.
	for v := range p.cache {
		if v > version {
			delete(p.cache, v)
		}
	}
	base, err := p.loadLocked(version, true)
	if err != nil {
		return nil, err
	}
	delta, err := p.newDelta(version + 1)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", p.id, err)
	}
	fw, err := newFileWriter(delta, kindDelta, version+1, p.lastDeltaRaw)
	if err != nil {
		delta.abort()
		return nil, fmt.Errorf("state %s: %w", p.id, err)
	}
	s := &memStore{p: p, version: version, bytes: base.bytes, deltaFile: delta, delta: fw,
		startCharge: p.charge.charged}
	if base.tree != nil {
		s.tree = base.tree.Clone()
	} else {
		s.flat, s.isFlat, s.flatShared = base.flat, true, true
	}
	// Restoring committed state is not refused; growth beyond the limit is.
	p.charge.force(base.bytes)
	p.open = s
	return s, nil
}

// loadLocked returns version v from the cache or rebuilds it from files
// (and caches it if keep).
func (p *memoryProvider) loadLocked(v int64, keep bool) (*memVersion, error) {
	if mv, ok := p.cache[v]; ok {
		p.cacheHits.Add(1)
		return mv, nil
	}
	p.cacheMisses.Add(1)
	if v == 0 {
		return &memVersion{tree: newTree()}, nil
	}
	vf, err := p.listFiles()
	if err != nil {
		return nil, err
	}
	// Start from the newest cached version or snapshot at or below v.
	start := vf.snapshotAtOrBelow(v)
	var base *memVersion
	for cv, mv := range p.cache {
		if cv <= v && cv >= start && (base == nil || cv > start) {
			start, base = cv, mv
		}
	}
	var tree *btree.BTreeG[entry]
	var size int64
	switch {
	case base != nil:
		tree, size = base.treeClone(), base.bytes
	case start > 0:
		for start > 0 {
			tree, size = newTree(), 0
			_, err := readStateFile(p.st, vf.snapshots[start], kindSnapshot, start, func(op byte, k, val []byte) error {
				if op != opPut {
					return corrupt("removal in a snapshot")
				}
				if old, had := tree.ReplaceOrInsert(newEntry(k, val)); had {
					size -= old.size()
				}
				size += entrySize(len(k), len(val))
				return nil
			})
			if err == nil {
				break
			}
			if p.fsync == nil || !errors.Is(err, ErrCorruptStateFile) {
				return nil, fmt.Errorf("state %s: loading snapshot %d: %w", p.id, start, err)
			}
			// With batch durability a snapshot is durable only after the
			// next batch's syncfs: a power loss before it can tear the
			// newest one. Its version is still rebuilt from the snapshot
			// before it and the deltas, which retention keeps until a
			// durable snapshot replaces them. Remove it, so retention
			// never takes it as its base.
			if rerr := p.removeFiles(vf.snapshots[start]); rerr != nil {
				return nil, fmt.Errorf("state %s: removing torn snapshot %d: %w", p.id, start, rerr)
			}
			p.filesValid = false
			delete(vf.snapshots, start)
			start = vf.snapshotAtOrBelow(start - 1)
			tree, size = newTree(), 0
		}
		if tree == nil {
			tree = newTree()
		}
	default:
		tree = newTree()
	}
	for d := start + 1; d <= v; d++ {
		name, ok := vf.deltas[d]
		if !ok {
			return nil, fmt.Errorf("state %s: cannot rebuild version %d: %d.delta is missing (%w)", p.id, v, d, ErrVersionNotFound)
		}
		_, err := readStateFile(p.st, name, kindDelta, d, func(op byte, k, val []byte) error {
			switch op {
			case opPut:
				if old, had := tree.ReplaceOrInsert(newEntry(k, val)); had {
					size -= old.size()
				}
				size += entrySize(len(k), len(val))
			case opRemove:
				if old, had := tree.Delete(probe(k)); had {
					size -= old.size()
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("state %s: loading delta %d: %w", p.id, d, err)
		}
	}
	mv := &memVersion{tree: tree, bytes: size}
	if keep {
		p.putCacheLocked(v, mv)
	}
	return mv, nil
}

// Retire implements Retirer.
func (p *memoryProvider) Retire(version int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := max(1, p.conf.MaxBatchesToRetainInMemory-1)
	for v := range p.cache {
		if v <= version-int64(keep) {
			delete(p.cache, v)
		}
	}
}

// putCacheLocked caches v and keeps the MaxBatchesToRetainInMemory newest.
func (p *memoryProvider) putCacheLocked(v int64, mv *memVersion) {
	limit := p.conf.MaxBatchesToRetainInMemory
	if limit <= 0 {
		return
	}
	p.cache[v] = mv
	if len(p.cache) <= limit {
		return
	}
	vs := make([]int64, 0, len(p.cache))
	for cv := range p.cache {
		vs = append(vs, cv)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] > vs[j] })
	for _, old := range vs[limit:] {
		delete(p.cache, old)
	}
}

func (p *memoryProvider) LatestVersion() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	vf, err := p.listFiles()
	if err != nil {
		return 0, err
	}
	return vf.latest(), nil
}

func (p *memoryProvider) Maintenance() error {
	p.mu.Lock()
	vf, err := p.listFiles()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	latest := vf.latest()
	lastSnap := vf.snapshotAtOrBelow(latest)
	var snap *memVersion
	gen := p.commits[latest]
	if latest-lastSnap > int64(p.conf.MinDeltasForSnapshot) && !p.snapshotStaleLocked(latest, gen) {
		mv, ok := p.cache[latest]
		if !ok {
			// Not cached (maxBatchesToRetainInMemory = 0, or after a
			// restart): rebuild it, or delta chains would grow forever.
			if mv, err = p.loadLocked(latest, false); err != nil {
				p.mu.Unlock()
				return err
			}
		}
		snap = &memVersion{flat: mv.flat} // a private copy to read outside the lock
		if mv.tree != nil {
			snap.tree = mv.tree.Clone()
		}
	}
	p.mu.Unlock()

	if snap != nil {
		if err := p.writeSnapshot(latest, snap, gen); err != nil {
			return err
		}
	}
	return p.cleanup(latest)
}

// writeSnapshot writes <v>.snapshot from tree, a clone of version v taken
// after gen commits of v. The file is written and synced outside the lock
// and renamed into place under it only if v was not committed again since:
// a re-run may have rewritten it.
func (p *memoryProvider) writeSnapshot(v int64, tree *memVersion, gen int64) error {
	if p.fsync != nil {
		return p.writeSnapshotUnsynced(v, tree, gen)
	}
	a, err := createAtomic(p.st, versionFile(p.id.dir(), v, "snapshot"))
	if err != nil {
		return fmt.Errorf("state %s: snapshot %d: %w", p.id, v, err)
	}
	fw, err := newFileWriter(a, kindSnapshot, v, 0)
	if err == nil {
		tree.ascend(func(e entry) bool { fw.put(e.key(), e.value()); return fw.err == nil })
		err = fw.close()
	}
	if err == nil {
		err = a.finish()
	}
	if err != nil {
		a.abort()
		return fmt.Errorf("state %s: snapshot %d: %w", p.id, v, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.snapshotStaleLocked(v, gen) {
		a.abort()
		return nil
	}
	p.filesValid = false
	if err := a.publish(); err != nil {
		return fmt.Errorf("state %s: snapshot %d: %w", p.id, v, err)
	}
	return nil
}

// snapshotStaleLocked says whether a snapshot of version v, cloned after
// gen commits of v, must not be published: v was committed again since,
// or a store is open that will write v or an earlier version — a re-run,
// which removes the snapshots of the versions it rewrites (removeStaleLocked)
// when its delta is written and counts its commit only at Commit; with the
// provider's lock released in between (a batch's shared sync), a snapshot
// of the failed run's v published there would outlive the re-run and be
// loaded as v.
func (p *memoryProvider) snapshotStaleLocked(v, gen int64) bool {
	return p.commits[v] != gen || (p.open != nil && !p.open.done && p.open.version < v)
}

// writeSnapshotUnsynced is writeSnapshot with batch durability: the
// snapshot goes to a temporary file renamed into place, without fsyncs;
// the next batch's syncfs makes it durable. Until then a power loss can
// tear it, which a load detects and falls back from (loadLocked);
// retention only deletes files older than a snapshot of a version at
// least one commit older than the latest, so the files a torn snapshot
// would replace are still there.
func (p *memoryProvider) writeSnapshotUnsynced(v int64, tree *memVersion, gen int64) error {
	final := filepath.Join(p.localDir, strconv.FormatInt(v, 10)+".snapshot")
	f, err := os.CreateTemp(p.localDir, "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state %s: snapshot %d: %w", p.id, v, err)
	}
	tmp := f.Name()
	d := &directFile{path: tmp, f: f, created: true}
	fw, err := newFileWriter(d, kindSnapshot, v, 0)
	if err == nil {
		tree.ascend(func(e entry) bool { fw.put(e.key(), e.value()); return fw.err == nil })
		err = fw.close()
	}
	if err == nil {
		err = d.finish()
	}
	if err != nil {
		d.abort()
		return fmt.Errorf("state %s: snapshot %d: %w", p.id, v, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.snapshotStaleLocked(v, gen) {
		os.Remove(tmp)
		return nil
	}
	p.filesValid = false
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state %s: snapshot %d: %w", p.id, v, err)
	}
	if p.snapTickets == nil {
		p.snapTickets = map[int64]uint64{}
	}
	p.snapTickets[v] = p.fsync.ticket()
	return nil
}

// cleanup deletes files not needed to rebuild the last MinBatchesToRetain
// versions: everything older than the newest snapshot at or below
// latest − MinBatchesToRetain (Spark's rule).
func (p *memoryProvider) cleanup(latest int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	vf, err := p.listFiles()
	if err != nil {
		return err
	}
	paths := retentionVictims(vf, latest, int64(p.conf.MinBatchesToRetain))
	if len(paths) == 0 {
		return nil
	}
	if p.fsync != nil {
		// The files go only once the snapshot replacing them is durable
		// (normally a batch's syncfs already saw it).
		base := vf.snapshotAtOrBelow(latest - int64(p.conf.MinBatchesToRetain))
		if t, ok := p.snapTickets[base]; ok {
			if err := p.fsync.wait(t); err != nil {
				return fmt.Errorf("state %s: retention: %w", p.id, err)
			}
		}
		for v := range p.snapTickets {
			if v < base {
				delete(p.snapTickets, v)
			}
		}
	}
	p.filesValid = false
	if err := p.removeFiles(paths...); err != nil {
		return fmt.Errorf("state %s: retention: %w", p.id, err)
	}
	return nil
}

// retentionVictims lists the files older than the base needed for version
// latest − retain.
func retentionVictims(vf versionFiles, latest, retain int64) []string {
	earliest := latest - retain
	if earliest <= 0 {
		return nil
	}
	base := vf.snapshotAtOrBelow(earliest)
	if base == 0 {
		return nil
	}
	var paths []string
	for v, path := range vf.deltas {
		if v < base {
			paths = append(paths, path)
		}
	}
	for v, path := range vf.snapshots {
		if v < base {
			paths = append(paths, path)
		}
	}
	return paths
}

func (p *memoryProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open != nil {
		p.open.abortLocked()
	}
	if p.prepared != nil {
		p.prepared.discard()
		p.prepared = nil
	}
	if !p.closed && p.fsync != nil {
		p.fsync.release()
	}
	p.closed = true
	p.cache = nil
	p.charge.force(0)
	return nil
}

// memStore is one batch's writable view.
type memStore struct {
	p       *memoryProvider
	version int64
	// tree holds the store's entries, unless isFlat: then flat does (in
	// key order) and tree is nil until settle builds it. MergeSorted of a
	// run about as large as the state leaves the merged entries flat; an
	// eviction then takes a front off the array, and the commit caches
	// the version flat. The next batch's merge walks the array; only
	// single reads and writes build a tree. flatShared: flat is a cached
	// version's array, which must be copied before it is changed.
	tree        *btree.BTreeG[entry]
	flat        []entry
	isFlat      bool
	flatShared  bool
	bytes       int64
	deltaFile   versionWriter
	delta       *fileWriter
	syncTicket  uint64 // batch durability: fsync ticket taken after WriteOut
	startCharge int64
	stage       int // stageOpen, stageWritten, stageSynced
	// commitTime sums the time spent in the commit's steps (WriteOut,
	// Sync, Commit): the engine may run WriteOut at the end of the
	// store's stage-2 task, long before the batch's Sync and Commit, and
	// the wait in between is not the commit's.
	commitTime time.Duration
	done       bool
	m          Metrics
	timer      opTimer
}

// settle builds the tree of flat entries (see memStore.tree).
func (s *memStore) settle() {
	if s.isFlat {
		s.tree = buildTree(s.flat)
		s.flat, s.isFlat, s.flatShared = nil, false, false
	}
}

// len is the number of entries.
func (s *memStore) len() int {
	if s.isFlat {
		return len(s.flat)
	}
	return s.tree.Len()
}

func (s *memStore) ID() ID         { return s.p.id }
func (s *memStore) Version() int64 { return s.version }

func (s *memStore) Get(key []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, errStoreDone
	}
	s.timer.enter(phaseUpdate)
	s.settle()
	e, ok := s.tree.Get(probe(key))
	if !ok {
		return nil, false, nil
	}
	return e.value(), true, nil
}

// GetSorted implements SortedGetter. Keys that are many beside the tree
// (a stage-2 partition's share of a batch against the partition's state)
// are found by walking the tree from the first key to the last alongside
// them, one comparison per entry or key, rather than a descent from the
// root per key; few keys beside a large tree take a Get each.
func (s *memStore) GetSorted(keys [][]byte, fn func(i int, value []byte, ok bool)) error {
	if s.done {
		return errStoreDone
	}
	if len(keys) == 0 {
		return nil
	}
	s.timer.enter(phaseUpdate)
	s.settle()
	n := s.tree.Len()
	if n == 0 {
		for i := range keys {
			fn(i, nil, false)
		}
		return nil
	}
	if len(keys)*bits.Len(uint(n)) < n {
		for i, k := range keys {
			if e, ok := s.tree.Get(probe(k)); ok {
				fn(i, e.value(), true)
			} else {
				fn(i, nil, false)
			}
		}
		return nil
	}
	i := 0
	s.tree.AscendGreaterOrEqual(probe(keys[0]), func(e entry) bool {
		for i < len(keys) {
			c := bytes.Compare(keys[i], e.key())
			if c > 0 {
				break // the next entry may be keys[i]
			}
			if c == 0 {
				fn(i, e.value(), true)
				i++
				break
			}
			fn(i, nil, false) // keys[i] falls between entries
			i++
		}
		return i < len(keys)
	})
	for ; i < len(keys); i++ {
		fn(i, nil, false)
	}
	return nil
}

func (s *memStore) Put(key, value []byte) error {
	if s.done || s.stage != stageOpen { // no writes once the commit began
		return errStoreDone
	}
	if uint64(len(key)) > maxEntryField || uint64(len(value)) > maxEntryField {
		return s.tooLarge(len(key), len(value))
	}
	s.timer.enter(phaseUpdate)
	s.settle()
	// Insert first (one traversal) and undo in the rare case the budget
	// refuses the growth.
	e := newEntry(key, value)
	old, had := s.tree.ReplaceOrInsert(e)
	size := s.bytes + e.size()
	if had {
		size -= old.size()
	}
	if err := s.charge(size); err != nil {
		if had {
			s.tree.ReplaceOrInsert(old)
		} else {
			s.tree.Delete(e)
		}
		return err
	}
	s.bytes = size
	s.delta.put(key, value)
	s.m.NumRowsUpdated++
	return nil
}

// MergeSorted implements SortedMerger. A run that is many beside the
// state (a stage-2 partition's share of a batch against the partition's
// state, which is about as large) is merged with the stored entries in one
// ordered pass into a new array, which the store then keeps flat (see
// memStore.tree): no descent and copy-on-write of a B-tree node per key.
// Few keys beside a large state take a Get and an insert each. Either way
// the run is charged to the memory limit once, before the store or the
// delta sees any of it.
func (s *memStore) MergeSorted(keys [][]byte, fn func(i int, old []byte, had bool) ([]byte, error)) error {
	if s.done || s.stage != stageOpen { // no writes once the commit began
		return errStoreDone
	}
	if len(keys) == 0 {
		return nil
	}
	for i := 1; i < len(keys); i++ {
		// A tree built from entries out of order would be corrupt.
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			return fmt.Errorf("state %s: MergeSorted: key %d is not after key %d", s.p.id, i, i-1)
		}
	}
	s.timer.enter(phaseUpdate)
	n := s.len()
	if len(keys)*bits.Len(uint(n)) < n || n+len(keys) > maxMergeEntries {
		s.settle()
		return s.mergeEach(keys, fn)
	}
	sc := getEntries(0)
	defer putEntries(sc)
	// The merged entries become the store's (flat): not from the pool.
	merged := make([]entry, 0, n+len(keys))
	at := resizeInt32(&sc.at, len(keys)) // where each key's entry is in merged
	size := s.bytes
	i := 0
	var err error
	add := func(i int, old entry, had bool) bool {
		var e entry
		var grew int64
		if e, grew, err = s.fold(keys, i, old, had, fn); err != nil {
			return false
		}
		size += grew
		at[i] = int32(len(merged))
		merged = append(merged, e)
		return true
	}
	(&memVersion{tree: s.tree, flat: s.flat}).ascend(func(e entry) bool {
		for i < len(keys) {
			c := bytes.Compare(keys[i], e.key())
			if c > 0 {
				break
			}
			ok := add(i, e, c == 0)
			i++
			if !ok {
				return false
			}
			if c == 0 {
				return true // e is replaced
			}
		}
		merged = append(merged, e)
		return true
	})
	for ; err == nil && i < len(keys); i++ {
		add(i, entry{}, false)
	}
	if err != nil {
		return err
	}
	if err := s.charge(size); err != nil {
		return err
	}
	s.tree, s.flat, s.isFlat, s.flatShared = nil, merged, true, false
	s.bytes = size
	for _, j := range at {
		e := merged[j]
		s.delta.put(e.key(), e.value())
	}
	s.m.NumRowsUpdated += int64(len(keys))
	return nil
}

// maxMergeEntries bounds the entries MergeSorted merges into a flat array
// (16 bytes each, contiguous): past it, the store keeps a tree and takes a
// Get and an insert per key.
const maxMergeEntries = 1 << 20

// mergeEach is MergeSorted by a Get and an insert per key.
func (s *memStore) mergeEach(keys [][]byte, fn func(i int, old []byte, had bool) ([]byte, error)) error {
	sc := getEntries(len(keys))
	defer putEntries(sc)
	news := sc.e
	size := s.bytes
	for i, k := range keys {
		old, had := s.tree.Get(probe(k))
		e, grew, err := s.fold(keys, i, old, had, fn)
		if err != nil {
			return err
		}
		news[i] = e
		size += grew
	}
	if err := s.charge(size); err != nil {
		return err
	}
	for _, e := range news {
		s.tree.ReplaceOrInsert(e)
		s.delta.put(e.key(), e.value())
	}
	s.bytes = size
	s.m.NumRowsUpdated += int64(len(keys))
	return nil
}

// fold is MergeSorted's step for keys[i], whose stored entry is old
// (when had): fn's new value as an entry to store, and by how many bytes
// it grows the store.
func (s *memStore) fold(keys [][]byte, i int, old entry, had bool, fn func(i int, old []byte, had bool) ([]byte, error)) (entry, int64, error) {
	k := keys[i]
	if uint64(len(k)) > maxEntryField {
		return entry{}, 0, s.tooLarge(len(k), 0)
	}
	var ov []byte
	if had {
		ov = old.value()
	}
	v, err := fn(i, ov, had)
	if err != nil {
		return entry{}, 0, err
	}
	if uint64(len(v)) > maxEntryField {
		return entry{}, 0, s.tooLarge(len(k), len(v))
	}
	e := newEntry(k, v)
	grew := e.size()
	if had {
		grew -= old.size()
	}
	return e, grew, nil
}

// charge moves the store's charge to size bytes (see charger.resize).
func (s *memStore) charge(size int64) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.p.charge.resize(size)
}

func (s *memStore) tooLarge(k, v int) error {
	return fmt.Errorf("state %s: a key of %d bytes or a value of %d bytes is larger than the memory provider holds (4 GiB)", s.p.id, k, v)
}

// entryScratch is the working memory of MergeSorted: entries, and an
// int32 per key.
type entryScratch struct {
	e  []entry
	at []int32
}

var entryScratchPool sync.Pool

// maxPooledEntries bounds the entries of a scratch kept for reuse.
const maxPooledEntries = 1 << 16

// getEntries returns a scratch of n entries (what its user may fill).
func getEntries(n int) *entryScratch {
	sc, _ := entryScratchPool.Get().(*entryScratch)
	if sc == nil {
		sc = new(entryScratch)
	}
	if cap(sc.e) < n {
		sc.e = make([]entry, n)
	}
	sc.e = sc.e[:n]
	return sc
}

// putEntries returns sc to the pool without its references to entries
// (they would keep keys and values of any version alive).
func putEntries(sc *entryScratch) {
	if cap(sc.e) > maxPooledEntries {
		return
	}
	clear(sc.e)
	entryScratchPool.Put(sc)
}

func resizeInt32(s *[]int32, n int) []int32 {
	if cap(*s) < n {
		*s = make([]int32, n)
	}
	*s = (*s)[:n]
	return *s
}

func (s *memStore) Remove(key []byte) error {
	if s.done || s.stage != stageOpen { // no writes once the commit began
		return errStoreDone
	}
	s.timer.enter(phaseRemove)
	s.removeKey(key)
	return nil
}

func (s *memStore) removeKey(key []byte) bool {
	s.settle()
	old, had := s.tree.Delete(probe(key))
	if !had {
		return false
	}
	s.bytes -= old.size()
	s.p.mu.Lock()
	s.p.charge.force(s.bytes)
	s.p.mu.Unlock()
	s.delta.remove(key)
	s.m.NumRowsRemoved++
	return true
}

func (s *memStore) Iterate(lower, upper []byte, fn func(key, value []byte) bool) error {
	if s.done {
		return errStoreDone
	}
	s.timer.stop()
	if s.isFlat {
		lo, hi := s.flatRange(lower, upper)
		for _, e := range s.flat[lo:hi] {
			if !fn(e.key(), e.value()) {
				break
			}
		}
		return nil
	}
	iter := func(e entry) bool { return fn(e.key(), e.value()) }
	switch {
	case lower == nil && upper == nil:
		s.tree.Ascend(iter)
	case lower == nil:
		s.tree.AscendLessThan(probe(upper), iter)
	case upper == nil:
		s.tree.AscendGreaterOrEqual(probe(lower), iter)
	default:
		s.tree.AscendRange(probe(lower), probe(upper), iter)
	}
	return nil
}

// removeChunk bounds the entries RemoveRange gathers per walk of the tree.
const removeChunk = 1024

func (s *memStore) RemoveRange(lower, upper []byte, fn func(key, value []byte) error) (int64, error) {
	if s.done || s.stage != stageOpen { // no writes once the commit began
		return 0, errStoreDone
	}
	s.timer.enter(phaseRemove)
	if s.isFlat {
		return s.removeFlat(lower, upper, fn)
	}
	// Gather the range a chunk at a time with one walk of the tree each
	// (not one search per key), then remove the chunk. Eviction takes the
	// oldest keys, the front of the tree: then DeleteMin removes each
	// without comparing keys.
	var n int64
	chunk := make([]entry, 0, removeChunk)
	for {
		chunk = chunk[:0]
		visit := func(e entry) bool {
			if upper != nil && bytes.Compare(e.key(), upper) >= 0 {
				return false
			}
			chunk = append(chunk, e)
			return len(chunk) < removeChunk
		}
		if lower == nil {
			s.tree.Ascend(visit)
		} else {
			s.tree.AscendGreaterOrEqual(probe(lower), visit)
		}
		if len(chunk) == 0 {
			return n, nil
		}
		first, _ := s.tree.Min()
		fromMin := bytes.Equal(first.key(), chunk[0].key())
		var freed int64
		for _, e := range chunk {
			var err error
			if fn != nil {
				err = fn(e.key(), e.value())
			}
			if err != nil {
				s.removed(freed)
				return n, err
			}
			if fromMin {
				s.tree.DeleteMin()
			} else {
				s.tree.Delete(e)
			}
			freed += e.size()
			s.delta.remove(e.key())
			s.m.NumRowsRemoved++
			n++
		}
		s.removed(freed)
		if len(chunk) < removeChunk {
			return n, nil
		}
		lower = chunk[len(chunk)-1].key() // removed: the next walk starts after it
	}
}

// flatRange returns the flat entries' indexes of [lower, upper) (nil
// bounds are open; lo ≤ hi).
func (s *memStore) flatRange(lower, upper []byte) (lo, hi int) {
	f := s.flat
	lo, hi = 0, len(f)
	if lower != nil {
		lo = sort.Search(len(f), func(i int) bool { return bytes.Compare(f[i].key(), lower) >= 0 })
	}
	if upper != nil {
		hi = lo + sort.Search(len(f)-lo, func(i int) bool { return bytes.Compare(f[lo+i].key(), upper) >= 0 })
	}
	return lo, hi
}

// removeFlat is RemoveRange on flat entries: fn sees the range's entries
// in order, then they are cut out of the array (its front: resliced; a
// cached version's array is copied first otherwise). If fn fails, the
// entries before the one it failed on are removed.
func (s *memStore) removeFlat(lower, upper []byte, fn func(key, value []byte) error) (int64, error) {
	f := s.flat
	lo, hi := s.flatRange(lower, upper)
	end := hi
	var err error
	if fn != nil {
		for j := lo; j < hi; j++ {
			if err = fn(f[j].key(), f[j].value()); err != nil {
				end = j
				break
			}
		}
	}
	var freed int64
	for _, e := range f[lo:end] {
		freed += e.size()
		s.delta.remove(e.key())
	}
	n := end - lo
	s.m.NumRowsRemoved += int64(n)
	s.removed(freed)
	switch {
	case lo == end:
	case lo == 0:
		if !s.flatShared {
			clear(f[:end]) // the array keeps no removed entry alive
		}
		s.flat = f[end:]
	case s.flatShared:
		s.flat = append(append(make([]entry, 0, len(f)-n), f[:lo]...), f[end:]...)
		s.flatShared = false
	default:
		m := copy(f[lo:], f[end:])
		clear(f[lo+m:])
		s.flat = f[:lo+m]
	}
	return int64(n), err
}

// removed accounts for entries of freed bytes RemoveRange took out of the
// tree (one budget update per chunk, not per key).
func (s *memStore) removed(freed int64) {
	if freed == 0 {
		return
	}
	s.bytes -= freed
	s.p.mu.Lock()
	s.p.charge.force(s.bytes)
	s.p.mu.Unlock()
}

// Commit steps of a memory store, in order: WriteOut, Sync, Commit.
const (
	stageOpen    = iota
	stageWritten // delta encoded and written to its temporary file
	stageSynced  // temporary file durable
)

// WriteOut ends the batch's delta and writes it to its temporary file
// (created now), without waiting for the disk. With Sync it lets the
// engine take all of a batch's stores through each step of their commits
// together, so the file system groups their metadata updates and fsyncs
// rather than interleaving create, fsync, rename and directory fsync per
// store. Commit alone runs the steps it was not given.
func (s *memStore) WriteOut() error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	defer s.timeStep(time.Now())
	return s.advanceLocked(stageWritten)
}

// timeStep adds the time since start to the commit's time.
func (s *memStore) timeStep(start time.Time) { s.commitTime += time.Since(start) }

// Sync makes the written delta durable (fsync of the temporary file);
// Commit then moves it into place and fsyncs its directory.
func (s *memStore) Sync() error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	defer s.timeStep(time.Now())
	return s.advanceLocked(stageSynced)
}

func (s *memStore) advanceLocked(to int) error {
	if s.done {
		return errStoreDone
	}
	if s.stage == stageOpen {
		s.timer.stop()
	}
	p := s.p
	newVersion := s.version + 1
	if s.stage < stageWritten && to >= stageWritten {
		p.lastDeltaRaw = s.delta.raw
		if err := s.delta.close(); err != nil {
			s.abortLocked()
			return fmt.Errorf("state %s: writing %d.delta: %w", p.id, newVersion, err)
		}
		// A failed run may have left a snapshot of this version or files of
		// later ones: they describe state that the engine never committed.
		if err := p.removeStaleLocked(newVersion); err != nil {
			s.abortLocked()
			return err
		}
		if err := s.deltaFile.flush(); err != nil {
			s.abortLocked()
			return fmt.Errorf("state %s: writing %d.delta: %w", p.id, newVersion, err)
		}
		if p.fsync != nil {
			// In place: close it now; a sync started after this ticket
			// makes it (and the removals above) durable.
			if err := s.deltaFile.finish(); err != nil {
				s.abortLocked()
				return fmt.Errorf("state %s: %w", p.id, err)
			}
			s.syncTicket = p.fsync.ticket()
		}
		s.stage = stageWritten
	}
	if s.stage < stageSynced && to >= stageSynced {
		var err error
		if p.fsync != nil {
			// Wait outside the provider's lock: Maintenance and Metrics
			// go on meanwhile (the store is not done, so nothing else
			// touches it).
			p.mu.Unlock()
			err = p.fsync.wait(s.syncTicket)
			p.mu.Lock()
			if err == nil && s.done {
				err = errStoreDone // aborted by Close meanwhile
			}
		} else {
			err = s.deltaFile.finish()
		}
		if err != nil {
			s.abortLocked()
			return fmt.Errorf("state %s: %w", p.id, err)
		}
		s.stage = stageSynced
	}
	return nil
}

func (s *memStore) Commit() (int64, error) {
	if s.done {
		return 0, errStoreDone
	}
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	if err := s.advanceLocked(stageSynced); err != nil {
		return 0, err
	}
	newVersion := s.version + 1
	name := versionFile(p.id.dir(), newVersion, "delta")
	_, replaced := p.files.deltas[newVersion]
	err := s.deltaFile.publish()
	n := s.deltaFile.size()
	if err != nil || replaced || !p.filesValid {
		p.filesValid = false
	} else {
		// The common case, a new version: keep the listing current rather
		// than list the directory again at the next maintenance.
		p.files.deltas[newVersion] = name
		p.files.bytes += n
	}
	if err != nil {
		s.abortLocked()
		return 0, fmt.Errorf("state %s: %w", p.id, err)
	}
	if p.id.Partition == 0 && p.id.storeName() == DefaultStoreName && !p.schemaRecorded {
		if err := recordSchema(p.st, p.id.Operator, p.schemas); err != nil {
			s.done, p.open = true, nil
			return 0, fmt.Errorf("state %s: recording schema: %w", p.id, err)
		}
		p.schemaRecorded = true // it never changes: one put-if-absent a run
	}
	p.putCacheLocked(newVersion, &memVersion{tree: s.tree, flat: s.flat, bytes: s.bytes})
	p.commits[newVersion]++
	for v := range p.commits { // only versions a re-run can still rewrite matter
		if v < newVersion-int64(p.conf.MinBatchesToRetain) {
			delete(p.commits, v)
		}
	}
	p.lastCommitBytes.Store(n)
	s.done, p.open = true, nil
	s.timeStep(start)
	s.m.CommitTimeMs = s.commitTime.Milliseconds()
	return newVersion, nil
}

// removeStaleLocked deletes <v>.snapshot and every file of a version > v.
func (p *memoryProvider) removeStaleLocked(v int64) error {
	vf, err := p.listFiles()
	if err != nil {
		return err
	}
	var stale []string
	for n, path := range vf.deltas {
		if n > v {
			stale = append(stale, path)
		}
	}
	for n, path := range vf.snapshots {
		if n >= v {
			stale = append(stale, path)
		}
	}
	if len(stale) > 0 {
		p.filesValid = false
		if err := p.removeFiles(stale...); err != nil {
			return fmt.Errorf("state %s: removing files of uncommitted versions: %w", p.id, err)
		}
	}
	return nil
}

func (s *memStore) Abort() {
	if s.done {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.abortLocked()
}

func (s *memStore) abortLocked() {
	if s.done {
		return
	}
	s.deltaFile.abort()
	s.done = true
	s.p.open = nil
	s.p.charge.force(s.startCharge)
}

// Idle implements Idler.
func (s *memStore) Idle() { s.timer.stop() }

// Size reports the store's keys and the bytes their entries take
// (Sizer).
func (s *memStore) Size() (keys, bytes int64) { return int64(s.len()), s.bytes }

func (s *memStore) Metrics() Metrics {
	m := s.m
	m.NumKeys = int64(s.len())
	m.MemoryUsedBytes = s.bytes
	m.AllUpdatesTimeMs = s.timer.updateMs()
	m.AllRemovalsTimeMs = s.timer.removeMs()
	m.Custom = s.p.customMetrics()
	m.Custom[MetricStateOnCurrentBytes] = s.bytes
	return m
}

func (p *memoryProvider) customMetrics() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int64{
		MetricLoadedMapCacheHit:  p.cacheHits.Load(),
		MetricLoadedMapCacheMiss: p.cacheMisses.Load(),
		MetricCommitBytes:        p.lastCommitBytes.Load(),
	}
	if vf, err := p.listFiles(); err == nil {
		m[MetricDeltaFiles] = int64(len(vf.deltas))
		m[MetricSnapshotFiles] = int64(len(vf.snapshots))
		m[MetricStateFilesBytes] = vf.bytes
	}
	return m
}
