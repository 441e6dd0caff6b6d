package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/storage"
)

// ErrConflict is wrapped by the error of a log batch that already exists
// with other content: two queries share one checkpoint. It is
// storage.ErrConflict.
var ErrConflict = storage.ErrConflict

// logEntry is one line of the seen-files log, Spark's FileEntry.
type logEntry struct {
	Path      string `json:"path"`      // file:// URI
	Timestamp int64  `json:"timestamp"` // modification time, ms
	BatchID   int64  `json:"batchId"`
}

// fileLog is the source's seen-files log: one write-once file per log
// batch, named by its id, holding "v1" and one JSON entry per line — the
// layout of Spark's FileStreamSourceLog (without compaction): batch 0's
// files are in sources/0/0. Checkpoints written before sluice used that
// layout keep the query's initial offset in "0" and start the log at 1;
// they are read as they are (legacy). Files go through the storage
// package (write-once, atomic, durable).
type fileLog struct {
	dir   string // for messages
	store storage.Store
}

func newFileLog(st storage.Store) fileLog {
	dir := storage.URI(st, "")
	if d, ok := storage.LocalRoot(st); ok {
		dir = d
	}
	return fileLog{dir: dir, store: st}
}

// ctx is the context of the log's storage calls, which are local and
// short.
var ctx = context.Background()

// pathToURI is the log's form of a file's path: a file: URI for a local
// file, the URI itself for an object.
func pathToURI(p string) string {
	if strings.Contains(p, "://") {
		return p
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String()
}

func uriToPath(s string) (string, error) {
	if !strings.HasPrefix(s, "file:") {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	return filepath.FromSlash(u.Path), nil
}

func encodeLog(entries []logEntry) []byte {
	var b bytes.Buffer
	b.WriteString("v1")
	for _, e := range entries {
		js, _ := json.Marshal(e) // strings and ints only: cannot fail
		b.WriteByte('\n')
		b.Write(js)
	}
	return b.Bytes()
}

func decodeLog(data []byte) ([]logEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	if !sc.Scan() {
		return nil, errors.New("empty file")
	}
	if v := strings.TrimSpace(sc.Text()); v != "v1" {
		return nil, fmt.Errorf("unsupported log version %q", v)
	}
	var out []logEntry
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil || e.Path == "" {
			return nil, fmt.Errorf("bad entry %q", line)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ids lists the log batch ids present, ascending.
func (l *fileLog) ids() ([]int64, error) {
	ents, err := l.store.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("file source: read seen-files log %s: %w", l.dir, err)
	}
	var ids []int64
	for _, e := range ents {
		id, err := strconv.ParseInt(e.Name, 10, 64)
		if err != nil || id < 0 || e.IsDir || strconv.FormatInt(id, 10) != e.Name {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// legacy reports a log of the earlier layout: file "0" holds the query's
// initial offset ({"logOffset":0}, after a zero byte and "v1" as the
// engine writes a source's initial offsets), not a log batch.
func (l *fileLog) legacy() bool {
	data, err := l.store.Get(ctx, "0")
	return err == nil && (bytes.HasPrefix(data, []byte{0}) || bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")))
}

func (l *fileLog) read(id int64) ([]logEntry, error) {
	data, err := l.store.Get(ctx, strconv.FormatInt(id, 10))
	if err != nil {
		return nil, fmt.Errorf("file source: read seen-files log batch %d: %w", id, err)
	}
	entries, err := decodeLog(data)
	if err != nil {
		return nil, fmt.Errorf("file source: seen-files log %s: %w", storage.URI(l.store, strconv.FormatInt(id, 10)), err)
	}
	return entries, nil
}

// write creates log batch id atomically unless it exists; an existing
// batch with the same content is success, other content ErrConflict.
func (l *fileLog) write(id int64, entries []logEntry) error {
	err := storage.WriteOnce(ctx, l.store, strconv.FormatInt(id, 10), encodeLog(entries))
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("file source: seen-files log %s: %w (is another query using this checkpoint?)", l.dir, err)
	}
	if err != nil {
		return fmt.Errorf("file source: write seen-files log batch %d: %w", id, err)
	}
	return nil
}

// seenFiles remembers processed files for deduplication, forgetting those
// older than the age bound (Spark's SeenFilesMap): a file is new if it was
// not seen and is not older than lastPurge = newest − maxAge.
type seenFiles struct {
	maxAgeMs  int64
	m         map[string]int64
	latest    int64
	lastPurge int64
}

func newSeenFiles(maxAgeMs int64) *seenFiles {
	return &seenFiles{maxAgeMs: maxAgeMs, m: map[string]int64{}, lastPurge: math.MinInt64}
}

func (s *seenFiles) add(key string, ts int64) {
	s.m[key] = ts
	s.latest = max(s.latest, ts)
}

func (s *seenFiles) isNew(key string, ts int64) bool {
	_, seen := s.m[key]
	return !seen && ts >= s.lastPurge
}

func (s *seenFiles) purge() {
	if s.maxAgeMs == math.MaxInt64 {
		return
	}
	s.lastPurge = s.latest - s.maxAgeMs
	for k, ts := range s.m {
		if ts < s.lastPurge {
			delete(s.m, k)
		}
	}
}
