package state

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/storage"
)

// DefaultStoreName is the store name of operators with one store per
// partition (aggregation, deduplication). Its files sit directly in the
// partition directory; other names get a subdirectory (Spark's joins use four).
const DefaultStoreName = "default"

// ID names one state store: one operator's state for one shuffle partition.
type ID struct {
	// Files is the checkpoint's state directory (checkpoint.StateStore()),
	// on the local disk or on an object store. When nil, Root names it on
	// the local disk.
	Files storage.Store
	// Root is the checkpoint's state directory on the local disk,
	// <checkpoint>/state, used when Files is nil.
	Root string
	// Operator is the stateful operator's id (0, 1, … in plan order).
	Operator int
	// Partition is the shuffle partition.
	Partition int
	// Store is the store name; "" means DefaultStoreName.
	Store string
}

func (id ID) storeName() string {
	if id.Store == "" {
		return DefaultStoreName
	}
	return id.Store
}

// files returns the store of the state directory.
func (id ID) files() (storage.Store, error) {
	if id.Files != nil {
		return id.Files, nil
	}
	if id.Root == "" {
		return nil, fmt.Errorf("state %s: no state directory (ID.Files or ID.Root)", id)
	}
	return storage.NewLocal(id.Root)
}

// dir is the name of the store's directory in the state directory:
// <operatorId>/<partitionId>[/<storeName>].
func (id ID) dir() string {
	d := strconv.Itoa(id.Operator) + "/" + strconv.Itoa(id.Partition)
	if id.storeName() != DefaultStoreName {
		d += "/" + id.storeName()
	}
	return d
}

// location names a path of the state directory in messages: a local path,
// or a URI on an object store.
func (id ID) location(name string) string {
	if id.Files == nil {
		return filepath.Join(id.Root, filepath.FromSlash(name))
	}
	if root, ok := storage.LocalRoot(id.Files); ok {
		return filepath.Join(root, filepath.FromSlash(name))
	}
	return storage.URI(id.Files, name)
}

// OperatorDir is state/<operatorId>.
func (id ID) OperatorDir() string { return id.location(strconv.Itoa(id.Operator)) }

// Dir is the directory of the store's version files:
// state/<operatorId>/<partitionId>[/<storeName>].
func (id ID) Dir() string { return id.location(id.dir()) }

func (id ID) String() string {
	s := fmt.Sprintf("operator %d partition %d", id.Operator, id.Partition)
	if id.storeName() != DefaultStoreName {
		s += " store " + id.storeName()
	}
	return s
}

// Schemas describes what an operator keeps in its store: the key and value
// columns it encodes (with EncodeKey / EncodeValue). They are recorded in
// state/<operatorId>/0/_metadata/schema on the first commit and checked on
// every later open.
type Schemas struct {
	Key   batch.Schema
	Value batch.Schema
	// AllowValueChange skips the value check: Spark allows the non-key
	// columns of a deduplication to change between runs.
	AllowValueChange bool
}

// Provider owns one store's versions on disk (and, for the memory provider,
// in memory). It is opened once per (operator, partition) and lives across
// batches, as Spark keeps one provider per executor; each batch opens a Store
// at the version the batch starts from.
//
// A Provider is safe for one writer (one open Store at a time) plus calls to
// Maintenance and Metrics from another goroutine.
type Provider interface {
	// Open returns a writable store holding the state as of version (0 =
	// empty). Committing it writes version+1. Files of versions newer than
	// version are ignored and are replaced or removed by that commit, so a
	// batch re-run after a crash (opening version = batchId again) starts from
	// the right state whatever the failed run left behind.
	Open(version int64) (Store, error)
	// Maintenance writes a snapshot when more than MinDeltasForSnapshot deltas
	// follow the last one and deletes files no longer needed to rebuild the
	// last MinBatchesToRetain versions. The engine calls it after a commit (in
	// line or from a goroutine it owns); without it nothing is compacted.
	Maintenance() error
	// LatestVersion is the newest version with files on disk (0 if none). It
	// may be ahead of the engine's commit log after a crash.
	LatestVersion() (int64, error)
	// Close releases memory (and the budget charge) and open files.
	Close() error
}

// DeltaPreparer is implemented by providers whose delta files can be
// created ahead of their store (the memory provider writing in place,
// SyncBatch): PrepareDelta(version) creates the file that the store
// Open(version) returns will write version+1 to, so that a batch's file
// creations can run in the background while its first stage computes,
// rather than in its commit (on some file systems a create is the largest
// part of a commit). The file is not a version until that store commits:
// listings ignore it, Open of another version or Close removes it, and a
// crash leaves it as it leaves the file of a store that failed before its
// commit. It is a no-op when a store is open, a file is prepared already,
// or deltas are not written in place.
type DeltaPreparer interface {
	PrepareDelta(version int64) error
}

// Retirer is implemented by providers that cache committed versions in
// memory (the memory provider). Retire(version) says that a batch opening
// version is starting: no batch of the run opens a version below it again
// (a failed batch fails the run, and a new run starts with a new
// provider), so of the versions at or below version it keeps only the
// newest MaxBatchesToRetainInMemory − 1 in memory, making room for the
// one the batch commits. Spark's default of 2 then holds the batch's base
// version and, after the commit, the new one — the versions a failure of
// the running batch needs — while the version before the base, which
// still held every entry the last batch evicted, is freed before the
// batch's records arrive. A version retired is loaded from files if it is
// ever asked for.
type Retirer interface {
	Retire(version int64)
}

// Sizer is implemented by stores that know their size without a commit
// (the memory provider's): the number of keys and the bytes their entries
// take, as Metrics reports them after the commit, but without listing the
// store's files. The engine measures a batch's state with it before the
// commit, which may then run in the background.
type Sizer interface {
	Size() (keys, bytes int64)
}

// Store is one batch's view of a partition's state: reads see the writes
// made through it. Keys and values are byte strings; the store copies what
// it is given. Slices it returns must not be modified and are valid until
// Commit or Abort.
type Store interface {
	ID() ID
	// Version is the version the store was opened at.
	Version() int64
	Get(key []byte) (value []byte, ok bool, err error)
	// Put inserts or replaces a key. It fails with *MemoryExceededError
	// (errors.Is ErrStateMemoryExceeded) when the store's memory limit or the
	// shared budget would be passed; the store is unchanged then.
	Put(key, value []byte) error
	Remove(key []byte) error
	// Iterate calls fn for each key in [lower, upper) in ascending byte order
	// (nil bounds are open) until fn returns false. fn must not modify the
	// store; use RemoveRange to evict.
	Iterate(lower, upper []byte, fn func(key, value []byte) bool) error
	// RemoveRange removes every key in [lower, upper), calling fn (if not
	// nil) with each entry in key order before it is removed. Eviction by
	// window end is a RemoveRange up to EncodeKey(watermark+1…).
	RemoveRange(lower, upper []byte, fn func(key, value []byte) error) (removed int64, err error)
	// Commit makes the writes durable as version Version()+1 and returns it.
	Commit() (int64, error)
	// Abort discards the writes. It is a no-op after Commit.
	Abort()
	// Metrics reports the store's figures (valid before and after Commit).
	Metrics() Metrics
}

// SortedGetter is implemented by stores that look up many keys at once
// more cheaply than a Get each (the memory provider's: one walk of the
// keys' range when they are many beside the store). Use GetSorted, which
// falls back to Get.
type SortedGetter interface {
	// GetSorted calls fn(i, value, ok) for each keys[i] in order, as Get
	// would answer. keys must be in ascending byte order without
	// repeats; fn must not modify the store.
	GetSorted(keys [][]byte, fn func(i int, value []byte, ok bool)) error
}

// GetSorted looks up keys (ascending, without repeats) in st, in one walk
// where the store offers it (SortedGetter), else a Get each.
func GetSorted(st Store, keys [][]byte, fn func(i int, value []byte, ok bool)) error {
	if sg, ok := st.(SortedGetter); ok {
		return sg.GetSorted(keys, fn)
	}
	for i, k := range keys {
		v, ok, err := st.Get(k)
		if err != nil {
			return err
		}
		fn(i, v, ok)
	}
	return nil
}

// Metrics are the figures Spark reports per state store (StateStoreMetrics
// and the stateOperators entry of progress), summed by the engine over a
// stateful operator's partitions.
type Metrics struct {
	NumKeys           int64 // numRowsTotal: keys in the store
	NumRowsUpdated    int64 // keys put in this batch
	NumRowsRemoved    int64 // keys removed in this batch
	AllUpdatesTimeMs  int64
	AllRemovalsTimeMs int64
	CommitTimeMs      int64
	MemoryUsedBytes   int64
	// Custom are provider-specific metrics, Spark's customMetrics.
	Custom map[string]int64
}

// Custom metric names.
const (
	MetricLoadedMapCacheHit   = "loadedMapCacheHitCount"  // versions served from the in-memory cache
	MetricLoadedMapCacheMiss  = "loadedMapCacheMissCount" // versions rebuilt from files
	MetricStateOnCurrentBytes = "stateOnCurrentVersionSizeBytes"
	MetricDeltaFiles          = "deltaFileCount"     // .delta files on disk for the store
	MetricSnapshotFiles       = "snapshotFileCount"  // .snapshot files (memory) or version dirs (disk)
	MetricStateFilesBytes     = "stateFileBytes"     // bytes of the store's version files
	MetricCommitBytes         = "commitWrittenBytes" // bytes written by the last commit
	MetricBlockCacheBytes     = "blockCacheBytes"    // disk provider
	MetricMemTableBytes       = "memTableBytes"      // disk provider
)

// ErrStateMemoryExceeded is matched (errors.Is) by *MemoryExceededError.
var ErrStateMemoryExceeded = errors.New("state memory exceeded")

// ErrCorruptStateFile is matched by *CorruptFileError.
var ErrCorruptStateFile = errors.New("corrupt state file")

// ErrVersionNotFound is returned when a version cannot be rebuilt because a
// file it needs is missing.
var ErrVersionNotFound = errors.New("state version not found")

// MemoryExceededError says a put would take a store's state past its limit
// or the shared budget. The engine stops admitting and fails the query with
// it; the message names the operator, the bytes and the remedies.
type MemoryExceededError struct {
	Operator, Partition int
	// StoreBytes is the store's state size with the put; Used is what the
	// shared budget would hold (0 without a budget); Limit is the limit passed.
	StoreBytes, Used, Limit int64
	// Budget is true when the shared budget, not the per-store limit, was hit.
	Budget bool
}

func (e *MemoryExceededError) Error() string {
	what := fmt.Sprintf("state of operator %d partition %d would hold %s, over the state store limit of %s",
		e.Operator, e.Partition, FormatBytes(e.StoreBytes), FormatBytes(e.Limit))
	if e.Budget {
		what = fmt.Sprintf("state of operator %d (partition %d at %s) would take state memory to %s, over its share of the memory budget (%s)",
			e.Operator, e.Partition, FormatBytes(e.StoreBytes), FormatBytes(e.Used), FormatBytes(e.Limit))
	}
	return what + "; add a watermark so old state is evicted, raise sluice.memory.budget, " +
		"or use the disk state store (spark.sql.streaming.stateStore.providerClass=disk)"
}

func (e *MemoryExceededError) Is(target error) bool { return target == ErrStateMemoryExceeded }

// CorruptFileError reports a torn or damaged state file. The store refuses
// to load it rather than load part of it.
type CorruptFileError struct {
	Path   string
	Reason string
}

func (e *CorruptFileError) Error() string {
	return fmt.Sprintf("corrupt state file %s: %s", e.Path, e.Reason)
}

func (e *CorruptFileError) Is(target error) bool { return target == ErrCorruptStateFile }

// FormatBytes renders n in binary units ("12.0 MiB").
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
