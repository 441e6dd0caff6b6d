package file

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/vacuum"
)

// MetadataDir is the name of the sink's log directory under the output
// path.
const MetadataDir = "_spark_metadata"

// CompactInterval is the number of batches per compaction, Spark's default
// for spark.sql.streaming.fileSink.log.compactInterval.
const CompactInterval = 10

const (
	logVersion = "v1"
	compactExt = ".compact"
	// blockSize is the block size Hadoop's local file system reports, which
	// Spark records in every entry.
	blockSize = 32 << 20
)

// LogEntry is one line of a metadata log file (Spark's SinkFileStatus).
type LogEntry struct {
	Path             string `json:"path"`
	Size             int64  `json:"size"`
	IsDir            bool   `json:"isDir"`
	ModificationTime int64  `json:"modificationTime"`
	BlockReplication int    `json:"blockReplication"`
	BlockSize        int64  `json:"blockSize"`
	Action           string `json:"action"`
	// Group is set on the group log's record lines (action
	// "sluice-group", no path; group.go).
	Group *GroupRecord `json:"sluiceGroup,omitempty"`
}

// entryFor returns the "add" entry of a written file.
func entryFor(f WrittenFile) LogEntry {
	p := f.Path
	if filepath.IsAbs(p) {
		p = FileURI(p)
	}
	return LogEntry{
		Path:             p,
		Size:             f.Size,
		ModificationTime: f.ModTime,
		BlockReplication: 1,
		BlockSize:        blockSize,
		Action:           "add",
	}
}

// FileURI returns the file: URI of an absolute path ("file:///a/b%20c").
func FileURI(abs string) string { return storage.FileURI(abs) }

// pathOfURI converts a log entry's path (a file: URI in either of Hadoop's
// spellings, "file:/a" or "file:///a", or a bare path) to a local path.
func pathOfURI(p string) (string, error) {
	if !strings.Contains(p, ":") {
		return filepath.FromSlash(p), nil
	}
	u, err := url.Parse(p)
	if err != nil {
		return "", fmt.Errorf("bad path %q in metadata log: %w", p, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("path %q in metadata log is not on the local file system", p)
	}
	return filepath.FromSlash(u.Path), nil
}

// logFile is one batch's log file.
type logFile struct {
	id      int64
	compact bool
}

func (l logFile) name() string {
	s := strconv.FormatInt(l.id, 10)
	if l.compact {
		s += compactExt
	}
	return s
}

// isCompaction reports whether batch id is written as a compact file.
func isCompaction(id int64) bool { return (id+1)%CompactInterval == 0 }

// metaLog is a file sink's _spark_metadata log, kept in a storage.Store:
// one write-once file per batch, put-if-absent, so two writers of one
// batch cannot both commit it.
type metaLog struct {
	dir string // for messages
	st  storage.Store
}

// openMetaLog returns the log of the output directory root.
func openMetaLog(root storage.Store) (metaLog, error) {
	st, err := storage.Sub(root, MetadataDir)
	if err != nil {
		return metaLog{}, fmt.Errorf("metadata log: %w", err)
	}
	dir := storage.URI(st, "")
	if d, ok := storage.LocalRoot(st); ok {
		dir = d
	}
	return metaLog{dir: dir, st: st}, nil
}

// logPath names a log file in messages.
func (m metaLog) logPath(name string) string {
	if strings.Contains(m.dir, "://") {
		return m.dir + "/" + name
	}
	return filepath.Join(m.dir, name)
}

// ctx is the context of the log's storage calls, which are local and
// short.
var ctx = context.Background()

// list returns the log files sorted by batch id (a batch present both
// plain and compact keeps the compact one). A missing log is empty.
func (m metaLog) list() ([]logFile, error) {
	ents, err := m.st.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing metadata log: %w", err)
	}
	byID := map[int64]logFile{}
	for _, e := range ents {
		name := e.Name
		compact := strings.HasSuffix(name, compactExt)
		id, err := strconv.ParseInt(strings.TrimSuffix(name, compactExt), 10, 64)
		if err != nil || id < 0 || e.IsDir {
			continue // anything else
		}
		if old, ok := byID[id]; !ok || (compact && !old.compact) {
			byID[id] = logFile{id: id, compact: compact}
		}
	}
	out := make([]logFile, 0, len(byID))
	for _, l := range byID {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b logFile) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// latest returns the highest batch id in the log, or -1.
func (m metaLog) latest() (int64, error) {
	files, err := m.list()
	if err != nil || len(files) == 0 {
		return -1, err
	}
	return files[len(files)-1].id, nil
}

// readFile parses one log file.
func (m metaLog) readFile(name string) ([]LogEntry, error) {
	data, err := m.st.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	path := m.logPath(name)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("metadata log file %s is empty", path)
	}
	if v := strings.TrimSpace(sc.Text()); v != logVersion {
		return nil, fmt.Errorf("metadata log file %s has version %q, want %q", path, v, logVersion)
	}
	var out []LogEntry
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("metadata log file %s: %w", path, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// readRaw returns the log's entries as written, from the latest compact
// file on, and the latest batch id (-1 for an empty log).
func (m metaLog) readRaw() ([]LogEntry, int64, error) {
	// Compaction may delete old batch files between our listing and our
	// reads; such a race is retried with a fresh listing.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		files, err := m.list()
		if err != nil {
			return nil, -1, err
		}
		if len(files) == 0 {
			return nil, -1, nil
		}
		start := 0
		for i := len(files) - 1; i >= 0; i-- {
			if files[i].compact {
				start = i
				break
			}
		}
		var all []LogEntry
		lastErr = nil
		for _, l := range files[start:] {
			es, err := m.readFile(l.name())
			if errors.Is(err, fs.ErrNotExist) {
				lastErr = err
				break
			}
			if err != nil {
				return nil, -1, err
			}
			all = append(all, es...)
		}
		if lastErr != nil {
			continue
		}
		return all, files[len(files)-1].id, nil
	}
	return nil, -1, fmt.Errorf("reading metadata log: %w", lastErr)
}

// readOwn returns the live entries of this log (adds not later deleted),
// from the latest compact file on, and the latest batch id.
func (m metaLog) readOwn() ([]LogEntry, int64, error) {
	all, latest, err := m.readRaw()
	if err != nil {
		return nil, -1, err
	}
	return liveEntries(all), latest, nil
}

// readValid returns what a reader of the output sees: the live entries of
// the log and those of the group log of group mode (group.go), and the
// latest batch id of the log.
func (m metaLog) readValid() ([]LogEntry, int64, error) {
	own, latest, err := m.readOwn()
	if err != nil {
		return nil, -1, err
	}
	g, err := m.groupLog()
	if err != nil {
		return nil, -1, err
	}
	grouped, _, err := g.readOwn()
	if err != nil {
		return nil, -1, fmt.Errorf("group log: %w", err)
	}
	return liveEntries(append(own, grouped...)), latest, nil
}

// liveEntries applies "delete" actions and drops duplicates, keeping order.
func liveEntries(all []LogEntry) []LogEntry {
	deleted := map[string]bool{}
	for _, e := range all {
		if e.Action == "delete" {
			deleted[e.Path] = true
		}
	}
	seen := map[string]bool{}
	out := all[:0:0]
	for _, e := range all {
		if e.Action == "delete" || e.Action == groupAction || deleted[e.Path] || seen[e.Path] {
			continue
		}
		seen[e.Path] = true
		out = append(out, e)
	}
	return out
}

// ReadLog returns the absolute paths of the files that a file sink at the
// local directory path has committed, in commit order: what a reader of
// the output should see. Files in the directory that the log does not list
// (from failed or replayed attempts) are not returned. A path without a
// log yields none.
func ReadLog(path string) ([]string, error) {
	root, err := storage.NewLocal(path)
	if err != nil {
		return nil, fmt.Errorf("reading file sink log: %w", err)
	}
	m, err := openMetaLog(root)
	if err != nil {
		return nil, fmt.Errorf("reading file sink log: %w", err)
	}
	entries, _, err := m.readValid()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		p, err := pathOfURI(e.Path)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// write creates log file name holding entries unless it exists (put-if-
// absent): true when this call created it, false when the name was taken.
// On an error the outcome is unknown (see package storage).
func (m metaLog) write(name string, entries []LogEntry) (bool, error) {
	var buf bytes.Buffer
	buf.WriteString(logVersion)
	for _, e := range entries {
		buf.WriteByte('\n')
		line, err := json.Marshal(e)
		if err != nil {
			return false, fmt.Errorf("encoding log entry: %w", err)
		}
		buf.Write(line)
	}
	err := m.st.PutIfAbsent(ctx, name, buf.Bytes())
	if errors.Is(err, storage.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// ReadLogURIs returns the paths the log of the file sink whose output
// directory is root lists, as written (file: URIs, abfss:// or s3a://
// URIs), in commit order.
func ReadLogURIs(root storage.Store) ([]string, error) {
	m, err := openMetaLog(root)
	if err != nil {
		return nil, fmt.Errorf("reading file sink log: %w", err)
	}
	entries, _, err := m.readValid()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Path
	}
	return out, nil
}

// LoggedNames returns the files the log of the file sink whose output
// directory is root lists, as names relative to root (slash-separated):
// what a vacuum of root must keep. Entries outside root are left out.
func LoggedNames(root storage.Store) (map[string]bool, error) {
	uris, err := ReadLogURIs(root)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(uris))
	for _, u := range uris {
		rel, ok, err := vacuum.RelativeName(root, u)
		if err != nil {
			return nil, fmt.Errorf("file sink log: %w", err)
		}
		if ok {
			out[rel] = true
		}
	}
	return out, nil
}
