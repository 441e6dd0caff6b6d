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
//	<dir>/.sluice.lock    flock(2) lock file (sluice's own; Spark has none)
//
// Every file is written atomically (hidden temp file in the same directory,
// fsync, link or rename into place, fsync of the directory) and at most once:
// re-writing a batch file with identical bytes is a no-op (an idempotent
// replay), with different bytes an error (another writer).
package checkpoint

import (
	"crypto/rand"
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
	logVersion   = 1
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("checkpoint: closed")

// ErrConflict is wrapped by errors reporting that a batch file already
// exists with different content: another query (or a buggy replay) wrote
// the same batch.
var ErrConflict = errors.New("checkpoint: file already exists with different content")

// ErrLocked is wrapped by Open's error when another query holds the
// checkpoint.
var ErrLocked = errors.New("checkpoint: in use by another query")

// Checkpoint is an open, locked checkpoint directory. Its methods are safe
// for concurrent use.
type Checkpoint struct {
	dir  string
	id   string
	lock *fileLock

	mu     sync.Mutex
	closed bool
}

// Open opens the checkpoint in dir, creating dir, offsets/ and commits/ as
// needed, takes the exclusive lock (refusing a second opener in this or
// another process), removes stale temp files and reads the query id from
// metadata, creating it with a fresh UUID v4 on first use.
func Open(dir string) (*Checkpoint, error) {
	if dir == "" {
		return nil, errors.New("checkpoint: empty directory name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: resolve %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: create directory: %w", err)
	}
	lk, err := acquireLock(filepath.Join(abs, LockFileName))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", abs, err)
	}
	c := &Checkpoint{dir: abs, lock: lk}
	if err := c.init(); err != nil {
		lk.release()
		return nil, err
	}
	return c, nil
}

func (c *Checkpoint) init() error {
	for _, d := range []string{offsetsDir, commitsDir} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return fmt.Errorf("checkpoint: create %s: %w", d, err)
		}
	}
	if err := c.cleanTemp(); err != nil {
		return err
	}
	id, err := c.loadOrCreateID()
	if err != nil {
		return err
	}
	c.id = id
	return nil
}

// cleanTemp removes temp files left by a writer that died mid-write. It runs
// under the lock, so no live writer can own them.
func (c *Checkpoint) cleanTemp() error {
	return filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("checkpoint: scan for stale temp files: %w", err)
		}
		if !d.IsDir() && isTempName(d.Name()) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("checkpoint: remove stale temp file: %w", err)
			}
		}
		return nil
	})
}

type streamMetadata struct {
	ID string `json:"id"`
}

func (c *Checkpoint) loadOrCreateID() (string, error) {
	path := filepath.Join(c.dir, metadataFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		id, err := newUUID()
		if err != nil {
			return "", err
		}
		b, _ := json.Marshal(streamMetadata{ID: id})
		if err := writeOnce(c.dir, metadataFile, b); err != nil {
			return "", err
		}
		return id, nil
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint: read %s: %w", path, err)
	}
	var md streamMetadata
	if err := json.Unmarshal(data, &md); err != nil {
		return "", fmt.Errorf("checkpoint: %s: not valid JSON (want {\"id\":\"<uuid>\"}): %w", path, err)
	}
	if md.ID == "" {
		return "", fmt.Errorf("checkpoint: %s: missing or empty \"id\"", path)
	}
	return md.ID, nil
}

// newUUID returns a random (version 4, variant 10) UUID in canonical form.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("checkpoint: generate query id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// ID returns the query id stored in metadata (Spark's StreamingQuery.id).
func (c *Checkpoint) ID() string { return c.id }

// Dir returns the checkpoint directory as an absolute path.
func (c *Checkpoint) Dir() string { return c.dir }

// Close releases the lock. Later calls on c return ErrClosed; closing twice
// is harmless.
func (c *Checkpoint) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.lock.release(); err != nil {
		return fmt.Errorf("checkpoint %s: release lock: %w", c.dir, err)
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
// ignored, as Spark ignores them.
func (c *Checkpoint) batchIDs(sub string) ([]int64, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, sub))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list %s: %w", sub, err)
	}
	var ids []int64
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if id, ok := parseBatchName(e.Name()); ok {
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

// Purge deletes offsets and commits of old batches, keeping the latest
// minBatchesToRetain batches (ids >= latest-minBatchesToRetain+1, where
// latest is the newest offsets file). One exception: the offsets file of
// batch latest-1 is always kept, because replaying the latest batch reads it
// as its start position (Spark's recovery needs it too). Source metadata is
// never purged.
func (c *Checkpoint) Purge(minBatchesToRetain int) error {
	if minBatchesToRetain < 1 {
		return fmt.Errorf("checkpoint: minBatchesToRetain must be at least 1, got %d", minBatchesToRetain)
	}
	if err := c.begin(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	latest, ok, err := c.latest(offsetsDir)
	if err != nil || !ok {
		return err
	}
	threshold := min(latest-int64(minBatchesToRetain)+1, latest-1)
	for _, sub := range []string{offsetsDir, commitsDir} {
		ids, err := c.batchIDs(sub)
		if err != nil {
			return err
		}
		removed := false
		for _, id := range ids {
			if id >= threshold {
				break
			}
			p := filepath.Join(c.dir, sub, strconv.FormatInt(id, 10))
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("checkpoint: purge: %w", err)
			}
			removed = true
		}
		if removed {
			if err := syncDir(filepath.Join(c.dir, sub)); err != nil {
				return fmt.Errorf("checkpoint: purge: %w", err)
			}
		}
	}
	return nil
}

// Size walks the checkpoint directory and returns the total size in bytes
// of its regular files and their number, for diagnosing a checkpoint that
// grows too fast.
func (c *Checkpoint) Size() (bytes int64, files int, err error) {
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

// isTempName reports whether name is one of our temp files (".<name>.tmp-<rand>").
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// QueryID returns the id of the query that owns the checkpoint at dir,
// creating the checkpoint (and its id) if it does not exist yet. Sinks that
// key their idempotence on the query id (Delta's txn appId, Kafka's
// transactional id) need it before the query starts. It takes the lock
// briefly, so it fails like Open when another query holds the checkpoint.
func QueryID(dir string) (string, error) {
	c, err := Open(dir)
	if err != nil {
		return "", err
	}
	id := c.ID()
	if err := c.Close(); err != nil {
		return "", err
	}
	return id, nil
}
