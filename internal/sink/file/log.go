package file

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
}

// entryFor returns the "add" entry of a written file.
func entryFor(f WrittenFile) LogEntry {
	return LogEntry{
		Path:             FileURI(f.Path),
		Size:             f.Size,
		ModificationTime: f.ModTime,
		BlockReplication: 1,
		BlockSize:        blockSize,
		Action:           "add",
	}
}

// FileURI returns the file: URI of an absolute path ("file:///a/b%20c").
func FileURI(abs string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

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

// listLog returns the log files in dir sorted by batch id (a batch present
// both plain and compact keeps the compact one). A missing dir is empty.
func listLog(dir string) ([]logFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing metadata log: %w", err)
	}
	byID := map[int64]logFile{}
	for _, e := range ents {
		name := e.Name()
		compact := strings.HasSuffix(name, compactExt)
		id, err := strconv.ParseInt(strings.TrimSuffix(name, compactExt), 10, 64)
		if err != nil || id < 0 || e.IsDir() {
			continue // temp files and anything else
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

// latestBatch returns the highest batch id in the log, or -1.
func latestBatch(dir string) (int64, error) {
	files, err := listLog(dir)
	if err != nil || len(files) == 0 {
		return -1, err
	}
	return files[len(files)-1].id, nil
}

// readLogFile parses one log file.
func readLogFile(path string) ([]LogEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
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

// readValid returns the live entries of the log in dir (adds not later
// deleted), from the latest compact file on, and the latest batch id.
func readValid(dir string) ([]LogEntry, int64, error) {
	// Compaction may delete old batch files between our listing and our
	// reads; such a race is retried with a fresh listing.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		files, err := listLog(dir)
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
			es, err := readLogFile(filepath.Join(dir, l.name()))
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
		return liveEntries(all), files[len(files)-1].id, nil
	}
	return nil, -1, fmt.Errorf("reading metadata log: %w", lastErr)
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
		if e.Action == "delete" || deleted[e.Path] || seen[e.Path] {
			continue
		}
		seen[e.Path] = true
		out = append(out, e)
	}
	return out
}

// ReadLog returns the absolute paths of the files that a file sink at path
// has committed, in commit order: what a reader of the output should see.
// Files in the directory that the log does not list (from failed or
// replayed attempts) are not returned. A path without a log yields none.
func ReadLog(path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading file sink log: %w", err)
	}
	entries, _, err := readValid(filepath.Join(abs, MetadataDir))
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

// writeLogFile writes entries as dir/name if no such file exists yet:
// temp file, fsync, hard link to the final name (which fails if it
// exists), fsync of the directory. It reports false when the name was
// taken.
func writeLogFile(dir, name string, entries []LogEntry) (bool, error) {
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
	return PutIfAbsent(dir, name, buf.Bytes())
}

// PutIfAbsent atomically creates dir/name holding data unless it exists:
// the data goes to a hidden temporary file that is fsynced and hard-linked
// to the final name, then the directory is fsynced. It returns false,
// writing nothing, when dir/name already exists. It returns true with an
// error when the file was created but the directory fsync failed.
func PutIfAbsent(dir, name string, data []byte) (bool, error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Link(tmp.Name(), filepath.Join(dir, name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("committing %s: %w", name, err)
	}
	if err := SyncDir(dir); err != nil {
		return true, err
	}
	return true, nil
}
