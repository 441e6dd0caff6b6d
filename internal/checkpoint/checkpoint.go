// Package checkpoint owns a query's checkpoint directory: the offsets
// write-ahead log, the commit log, per-source metadata and the query id,
// laid out as Spark Structured Streaming lays them out, plus the lock that
// keeps a second query off the same directory.
//
// Layout (Spark's, see spark-semantics.md §5):
//
//	<dir>/metadata        {"id":"<uuid v4>"}, written once
//	<dir>/offsets/<N>     v1, batch metadata JSON, one offset line per source
//	<dir>/commits/<N>     v1, {"nextBatchWatermarkMs":<ms>}
//	<dir>/sources/<i>/0   0x00 "v1\n" <initial offsets JSON> (Kafka style)
//	<dir>/state/…         stateful operators' state (StateStore), Spark's
//	                      state/<operatorId>/<partition>/<version>.delta
//	<dir>/.sluice.lock    flock(2) lock file (sluice's own; Spark has none)
//
// Files go through the storage package: each is written atomically and
// durably, and batch files at most once: re-writing a batch file with
// identical bytes is a no-op (an idempotent replay), with different bytes
// an error (another writer). OpenReadOnly reads a checkpoint another
// process may be writing, without its lock.
//
// A checkpoint may live on an object store (abfss://…, s3a://…; see
// WithResolver): there is no lock file there. Two runs of one query on
// such a checkpoint are told apart by the logs' put-if-absent: the second
// to write offsets/N (the batch files carry each run's own timestamp)
// fails with ErrConflict, so at most one of them ever commits a batch.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-stream/sluice/internal/storage"
)

// DefaultMinBatchesToRetain is Spark's spark.sql.streaming.minBatchesToRetain
// default: how many of the latest batches Purge keeps.
const DefaultMinBatchesToRetain = 100

// LockFileName is the name of the lock file inside the checkpoint directory.
const LockFileName = ".sluice.lock"

const (
	metadataFile = "metadata"
	offsetsDir   = "offsets"
	commitsDir   = "commits"
	sourcesDir   = "sources"
	// StateDir is the directory of stateful operators' state.
	StateDir   = "state"
	logVersion = 1
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("checkpoint: closed")

// ErrConflict is wrapped by errors reporting that a batch file already
// exists with different content: another query (or a buggy replay) wrote
// the same batch. It is storage.ErrConflict.
var ErrConflict = storage.ErrConflict

// ErrLocked is wrapped by Open's error when another query holds the
// checkpoint.
var ErrLocked = errors.New("checkpoint: in use by another query")

// ErrReadOnly is wrapped by the errors of writes to a checkpoint opened
// with OpenReadOnly.
var ErrReadOnly = errors.New("checkpoint: opened read-only")

// Checkpoint is an open checkpoint directory: locked by Open, or read
// without the lock by OpenReadOnly. Its methods are safe for concurrent
// use.
type Checkpoint struct {
	dir      string // absolute path, or the URI of a remote checkpoint
	remote   bool
	id       string
	store    storage.Store
	lock     *fileLock // nil when read-only or remote
	readOnly bool

	// writes is held (shared) by the batch-log writes while they do I/O
	// without mu, so that offsets/N+1 and commits/N are written at the
	// same time; Close takes it exclusively, waiting for them.
	writes sync.RWMutex
	// purging serializes Purge, whose deletions run without mu.
	purging sync.Mutex
	mu      sync.Mutex
	closed  bool
	// logIDs remembers the batch ids of the offsets and commit logs for
	// Purge, so that it lists each log once (its first call) instead of
	// every batch: written ids are added, purged ones removed; a failed
	// deletion forgets the log, so the next Purge lists it again. Only
	// this Checkpoint writes the logs while it holds the lock (a remote
	// one is refused to a second run by put-if-absent). Under mu.
	logIDs map[string][]int64
}

// Option configures Open, OpenReadOnly and QueryID.
type Option func(*openConfig)

type openConfig struct {
	resolver *storage.Resolver
}

// WithResolver resolves the checkpoint location with r, so it may be a URI
// of an object store (abfss://…, s3a://…) with r's credentials. Without it
// a URI is resolved with the environment's credentials only.
func WithResolver(r *storage.Resolver) Option { return func(c *openConfig) { c.resolver = r } }

// resolve returns the store of dir and whether it is remote.
func resolve(dir string, opts []Option) (storage.Store, storage.Location, error) {
	if strings.TrimSpace(dir) == "" {
		return nil, storage.Location{}, errors.New("checkpoint: empty directory name")
	}
	var cfg openConfig
	for _, o := range opts {
		o(&cfg)
	}
	loc, err := storage.ParseLocation(dir)
	if err != nil {
		return nil, loc, fmt.Errorf("checkpoint: %w", err)
	}
	r := cfg.resolver
	if r == nil && !loc.IsLocal() {
		if r, err = storage.NewResolver(nil); err != nil {
			return nil, loc, fmt.Errorf("checkpoint: %w", err)
		}
	}
	if loc.IsLocal() {
		st, err := storage.NewLocal(loc.Path)
		if err != nil {
			return nil, loc, fmt.Errorf("checkpoint: %w", err)
		}
		return st, loc, nil
	}
	st, err := r.ResolveLocation(context.Background(), loc)
	if err != nil {
		return nil, loc, fmt.Errorf("checkpoint: %w", err)
	}
	return st, loc, nil
}

// Open opens the checkpoint in dir (a local directory, or a URI with
// WithResolver), creating dir, offsets/ and commits/ as needed, takes the
// exclusive lock (refusing a second opener in this or another process;
// local checkpoints only), removes stale temp files and reads the query id
// from metadata, creating it with a fresh UUID v4 on first use.
func Open(dir string, opts ...Option) (*Checkpoint, error) {
	st, loc, err := resolve(dir, opts)
	if err != nil {
		return nil, err
	}
	local, ok := st.(*storage.Local)
	if !ok {
		c := &Checkpoint{dir: loc.String(), remote: true, store: st}
		id, err := c.loadOrCreateID()
		if err != nil {
			return nil, err
		}
		c.id = id
		return c, nil
	}
	abs := local.Root()
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: create directory: %w", err)
	}
	lk, err := acquireLock(filepath.Join(abs, LockFileName))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", abs, err)
	}
	c := &Checkpoint{dir: abs, lock: lk, store: local}
	if err := c.init(local); err != nil {
		lk.release()
		return nil, err
	}
	return c, nil
}

// OpenReadOnly opens the checkpoint in dir for reading, without taking the
// lock, so the query that owns it may be running: what `sluice status`
// does. Nothing is created or cleaned up; the query id is "" when the
// metadata file does not exist yet. Writes fail with ErrReadOnly.
//
// Batch files are written atomically and purged oldest first, so a
// concurrent query never shows a torn file, but a file listed by one call
// may be purged before the next reads it (an error wrapping
// fs.ErrNotExist); callers retry.
func OpenReadOnly(dir string, opts ...Option) (*Checkpoint, error) {
	st, loc, err := resolve(dir, opts)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{dir: loc.String(), remote: !loc.IsLocal(), store: storage.ReadOnly(st), readOnly: true}
	if loc.IsLocal() {
		info, err := os.Stat(loc.Path)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("checkpoint %s: not a directory", loc.Path)
		}
	}
	id, ok, err := c.readID()
	if err != nil {
		return nil, err
	}
	if ok {
		c.id = id
	}
	return c, nil
}

// path names a file of the checkpoint in messages.
func (c *Checkpoint) path(name string) string {
	if c.remote {
		return c.dir + "/" + name
	}
	return filepath.Join(c.dir, filepath.FromSlash(name))
}

// Store returns the checkpoint's storage (read-only when opened with
// OpenReadOnly): sources that keep logs of their own under sources/<i>
// (the file source's seen-files log) write there.
func (c *Checkpoint) Store() storage.Store { return c.store }

// IsRemote reports whether the checkpoint is on an object store.
func (c *Checkpoint) IsRemote() bool { return c.remote }

func (c *Checkpoint) init(local *storage.Local) error {
	// Before offsets/ and commits/ exist: their per-batch files are then
	// created in block groups of their own (storage.SpreadSubdirs).
	if _, err := os.Stat(filepath.Join(c.dir, offsetsDir)); errors.Is(err, fs.ErrNotExist) {
		storage.SpreadSubdirs(c.dir)
	}
	for _, d := range []string{offsetsDir, commitsDir} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return fmt.Errorf("checkpoint: create %s: %w", d, err)
		}
	}
	// Temp files left by a writer that died mid-write: under the lock no
	// live writer can own them.
	if err := local.RemoveTemp(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	id, err := c.loadOrCreateID()
	if err != nil {
		return err
	}
	c.id = id
	return nil
}

// ctx is the context of the checkpoint's storage calls, which are local
// and short.
var ctx = context.Background()

type streamMetadata struct {
	ID string `json:"id"`
}

// readID reads the query id from metadata; ok is false when the file does
// not exist.
func (c *Checkpoint) readID() (id string, ok bool, err error) {
	data, err := c.store.Get(ctx, metadataFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	path := c.path(metadataFile)
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: read %s: %w", path, err)
	}
	var md streamMetadata
	if err := json.Unmarshal(data, &md); err != nil {
		return "", false, fmt.Errorf("checkpoint: %s: not valid JSON (want {\"id\":\"<uuid>\"}): %w", path, err)
	}
	if md.ID == "" {
		return "", false, fmt.Errorf("checkpoint: %s: missing or empty \"id\"", path)
	}
	return md.ID, true, nil
}

func (c *Checkpoint) loadOrCreateID() (string, error) {
	id, ok, err := c.readID()
	if err != nil || ok {
		return id, err
	}
	if err := c.refuseOrphanLogs(); err != nil {
		return "", err
	}
	id = storage.NewUUID()
	b, _ := json.Marshal(streamMetadata{ID: id})
	if err := c.writeOnce(metadataFile, b); err != nil {
		return "", err
	}
	return id, nil
}

// refuseOrphanLogs fails when the checkpoint has no metadata but holds
// logs of batches: the query id those batches ran under is lost, and a new
// one would make the sinks that key their idempotence on it (Delta's txn,
// the Kafka sink's transactional id and commit markers) write a replayed
// batch a second time. Spark mints a new id silently here.
func (c *Checkpoint) refuseOrphanLogs() error {
	var found []string
	for _, sub := range []string{offsetsDir, commitsDir} {
		ids, err := c.batchIDs(sub)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			found = append(found, fmt.Sprintf("%s/ (batches %d to %d)", sub, ids[0], ids[len(ids)-1]))
		}
	}
	ents, err := c.store.List(ctx, sourcesDir)
	if err != nil {
		return fmt.Errorf("checkpoint: list %s: %w", sourcesDir, err)
	}
	if len(ents) > 0 {
		found = append(found, sourcesDir+"/ (source start offsets)")
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("checkpoint %s: the query id file %s is missing but the checkpoint holds %s: "+
		"a new id would make exactly-once sinks (Delta, Kafka) write again what the old query wrote; "+
		"restore the metadata file (its content is {\"id\":\"<query id>\"}; the id is in the Delta "+
		"table's txn appId or the query's logs), or start a new checkpoint in an empty directory",
		c.dir, c.path(metadataFile), strings.Join(found, ", "))
}

// writeOnce writes a write-once file of the checkpoint (see
// storage.WriteOnce), naming the checkpoint in its errors.
func (c *Checkpoint) writeOnce(name string, data []byte) error {
	if c.readOnly {
		return fmt.Errorf("checkpoint %s: write %s: %w", c.dir, name, ErrReadOnly)
	}
	err := storage.WriteOnce(ctx, c.store, name, data)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("checkpoint %s: %w (is another query writing to this checkpoint?)", c.dir, err)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// ID returns the query id stored in metadata (Spark's StreamingQuery.id).
func (c *Checkpoint) ID() string { return c.id }

// Dir returns the checkpoint directory as an absolute path, or the URI of
// a remote checkpoint.
func (c *Checkpoint) Dir() string { return c.dir }

// StateStore returns the store of stateful operators' state, the state/
// directory, laid out as Spark lays it out
// (<operatorId>/<partition>/<version>.delta), with the storage package's
// guarantees. Purge never touches it. It is read-only when the checkpoint
// was opened with OpenReadOnly.
func (c *Checkpoint) StateStore() storage.Store {
	s, err := storage.Sub(c.store, StateDir)
	if err != nil {
		panic(err) // StateDir is a valid name
	}
	return s
}

// Close releases the lock (if held). Later calls on c return ErrClosed;
// closing twice is harmless.
func (c *Checkpoint) Close() error {
	c.writes.Lock()
	defer c.writes.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.lock == nil {
		return nil
	}
	// The purged files kept for reuse (Purge) go; no write is under way.
	serr := storage.DropSpares(c.store)
	if err := c.lock.release(); err != nil {
		return fmt.Errorf("checkpoint %s: release lock: %w", c.dir, err)
	}
	if serr != nil {
		return fmt.Errorf("checkpoint %s: %w", c.dir, serr)
	}
	return nil
}

// beginWrite holds c.writes (shared) and reports ErrClosed after Close.
// Callers defer c.writes.RUnlock; they take c.mu only for bookkeeping.
func (c *Checkpoint) beginWrite() error {
	c.writes.RLock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		c.writes.RUnlock()
		return ErrClosed
	}
	return nil
}

// begin locks c and reports ErrClosed after Close. Callers defer c.mu.Unlock.
func (c *Checkpoint) begin() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// batchIDs lists the batch ids in a log directory, ascending. Names that are
// not canonical non-negative decimal numbers (temp files, stray files) are
// ignored, as Spark ignores them. A missing directory is empty.
func (c *Checkpoint) batchIDs(sub string) ([]int64, error) {
	ents, err := c.store.List(ctx, sub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list %s: %w", sub, err)
	}
	var ids []int64
	for _, e := range ents {
		if e.IsDir {
			continue
		}
		if id, ok := parseBatchName(e.Name); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func parseBatchName(name string) (int64, bool) {
	if name == "" || name[0] < '0' || name[0] > '9' {
		return 0, false
	}
	id, err := strconv.ParseInt(name, 10, 64)
	if err != nil || strconv.FormatInt(id, 10) != name {
		return 0, false
	}
	return id, true
}

func (c *Checkpoint) latest(sub string) (int64, bool, error) {
	ids, err := c.batchIDs(sub)
	if err != nil || len(ids) == 0 {
		return 0, false, err
	}
	return ids[len(ids)-1], true, nil
}

func batchFile(id int64) (string, error) {
	if id < 0 {
		return "", fmt.Errorf("checkpoint: negative batch id %d", id)
	}
	return strconv.FormatInt(id, 10), nil
}

// Purge deletes offsets and commits of old batches as Spark's
// MicroBatchExecution does after logging batch latest (the newest offsets
// file): everything below latest−minBatchesToRetain goes, so
// minBatchesToRetain batches before the latest stay, minBatchesToRetain+1
// files in each log once the latest commits. The offsets file of batch
// latest−1, which replaying the latest batch reads as its start position,
// is always among them. Source metadata is never purged.
func (c *Checkpoint) Purge(minBatchesToRetain int) error {
	if minBatchesToRetain < 1 {
		return fmt.Errorf("checkpoint: minBatchesToRetain must be at least 1, got %d", minBatchesToRetain)
	}
	// One purge at a time; the deletions run without c.mu, so that the
	// batch-log writes (which take it for their bookkeeping) do not wait
	// for them, and under c.writes, so that Close does.
	c.purging.Lock()
	defer c.purging.Unlock()
	if err := c.beginWrite(); err != nil {
		return err
	}
	defer c.writes.RUnlock()
	if err := c.purge(minBatchesToRetain); err != nil {
		return err
	}
	if c.readOnly {
		return nil
	}
	// The next batches' log files are written into files kept here
	// (storage.Retire above); until the purge has kept any (the first
	// minBatchesToRetain batches), empty ones are made here, off the
	// batch's path.
	for _, sub := range []string{offsetsDir, commitsDir} {
		if err := storage.FillSpares(ctx, c.store, sub, logSpares); err != nil {
			return fmt.Errorf("checkpoint: purge: %w", err)
		}
	}
	return nil
}

// logSpares is how many files each log keeps ready for its next writes:
// one for the batch being logged, one for the next.
const logSpares = 2

// purge is Purge's deletion, under c.purging and c.writes.
func (c *Checkpoint) purge(minBatchesToRetain int) error {
	c.mu.Lock()
	offs, err := c.knownIDs(offsetsDir)
	if err != nil || len(offs) == 0 {
		c.mu.Unlock()
		return err
	}
	oldest, latest := offs[0], offs[len(offs)-1]
	threshold := latest - int64(minBatchesToRetain) // ≤ latest−1: minBatchesToRetain ≥ 1
	if len(offs) > 1 {
		// A log with gaps (asynchronous progress tracking logs only some
		// batches): the batch logged before the latest, where a replay of
		// the latest starts, always stays.
		threshold = min(threshold, offs[len(offs)-2])
	}
	var victims [2][]string
	for i, sub := range []string{offsetsDir, commitsDir} {
		ids := offs
		if sub != offsetsDir {
			// The commit log is looked at only when the offsets log had
			// something to purge (a commit never outlives its offsets).
			if oldest >= threshold {
				break
			}
			if ids, err = c.knownIDs(sub); err != nil {
				c.mu.Unlock()
				return err
			}
		}
		for _, id := range ids {
			if id >= threshold {
				break
			}
			victims[i] = append(victims[i], sub+"/"+strconv.FormatInt(id, 10))
		}
	}
	c.mu.Unlock()
	for i, sub := range []string{offsetsDir, commitsDir} {
		names := victims[i]
		if len(names) == 0 {
			continue
		}
		if c.readOnly {
			return fmt.Errorf("checkpoint %s: purge: %w", c.dir, ErrReadOnly)
		}
		// Not made durable: a purged file back after a crash is an old
		// batch, which the next run's first Purge (listing) removes again.
		// On the local disk a few are kept under temporary names for the
		// next batches' log files to be written into (storage.Retire):
		// cheaper than a new file and a removal each.
		err := storage.Retire(ctx, c.store, names...)
		c.mu.Lock()
		if err != nil {
			delete(c.logIDs, sub)
			c.mu.Unlock()
			return fmt.Errorf("checkpoint: purge: %w", err)
		}
		// The victims are the log's lowest ids: writes add only higher
		// ones, and only this (serialized) purge removes any.
		c.logIDs[sub] = slices.Delete(c.logIDs[sub], 0, len(names))
		c.mu.Unlock()
	}
	return nil
}

// knownIDs returns the batch ids of a log (offsetsDir or commitsDir),
// ascending, listing the log only the first time (logIDs). The slice is
// c's own. c.mu is held.
func (c *Checkpoint) knownIDs(sub string) ([]int64, error) {
	if ids, ok := c.logIDs[sub]; ok {
		return ids, nil
	}
	ids, err := c.batchIDs(sub)
	if err != nil {
		return nil, err
	}
	if c.logIDs == nil {
		c.logIDs = map[string][]int64{}
	}
	c.logIDs[sub] = ids
	return ids, nil
}

// wrote records a batch id written to a log whose ids c remembers. c.mu is
// held.
func (c *Checkpoint) wrote(sub string, id int64) {
	ids, ok := c.logIDs[sub]
	if !ok {
		return
	}
	i, found := slices.BinarySearch(ids, id)
	if !found {
		c.logIDs[sub] = slices.Insert(ids, i, id)
	}
}

// Size walks the checkpoint directory and returns the total size in bytes
// of its files and their number, for diagnosing a checkpoint that grows
// too fast (one listing per directory on object stores).
func (c *Checkpoint) Size() (bytes int64, files int, err error) {
	if c.remote {
		err = storage.Walk(ctx, c.store, "", nil, func(_ string, e storage.Entry) error {
			bytes += e.Size
			files++
			return nil
		})
		if err != nil {
			return 0, 0, fmt.Errorf("checkpoint: size of %s: %w", c.dir, err)
		}
		return bytes, files, nil
	}
	err = filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed by a concurrent purge
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		bytes += info.Size()
		files++
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("checkpoint: size of %s: %w", c.dir, err)
	}
	return bytes, files, nil
}

// QueryID returns the id of the query that owns the checkpoint at dir,
// creating the checkpoint (and its id) if it does not exist yet. Sinks that
// key their idempotence on the query id (Delta's txn appId, Kafka's
// transactional id) need it before the query starts. It takes the lock
// briefly, so it fails like Open when another query holds the checkpoint.
func QueryID(dir string, opts ...Option) (string, error) {
	c, err := Open(dir, opts...)
	if err != nil {
		return "", err
	}
	id := c.ID()
	if err := c.Close(); err != nil {
		return "", err
	}
	return id, nil
}
