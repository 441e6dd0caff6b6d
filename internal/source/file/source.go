// Package file is sluice's streaming file source (Spark's text, json and
// csv formats): each trigger lists the input path, admits new files in
// modification-time order within the per-trigger limits, and reads one
// task per file.
//
// Which files belong to which batch is decided once and persisted before
// the batch is planned, in a seen-files log under the checkpoint's
// sources/0 directory (Spark's FileStreamSourceLog layout: log batch N in
// sources/0/N from 0 on), so a restart neither re-reads nor skips a file.
// Directories named key=value become partition columns (partition.go);
// listing follows Spark's (list.go, input.go).
// Input files must be placed atomically (written elsewhere, then renamed
// into the directory), as Spark requires; on an object store (an
// abfss://… or s3a://… path, see package storage) every upload is atomic.
package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/storage"
)

// Offset is a file source position: the id of the last seen-files log
// batch included, Spark's {"logOffset":N}. A batch reads the files of log
// batches (start, end].
type Offset struct {
	LogOffset int64 `json:"logOffset"`
}

// JSON implements source.Offset.
func (o Offset) JSON() string { return fmt.Sprintf(`{"logOffset":%d}`, o.LogOffset) }

// Source is the file source.
type Source struct {
	cfg *Config
	log *slog.Logger
	fl  fileLog
	fs  inputFS

	mu      sync.Mutex
	head    int64 // highest log batch id written; -1 = none (0 in a legacy log)
	first   int64 // the first log batch id: 0, or 1 in a legacy log
	seen    *seenFiles
	started bool // the first Latest/Open fixed cleaned and committed
	// cleanSource acts one batch late, as Spark's commit of the previous
	// batch's end does: committed is the end of the last commit, whose
	// files are cleaned at the next one; cleaned is how far files are.
	cleaned, committed int64
	// availableNow, when set, limits admission to the files listed when
	// the trigger started.
	availableNow map[string]bool
	// From the last listing.
	outFiles, outBytes int64
	// sizes of the files admitted by this process (task sizes for
	// scheduling, without a request per file).
	sizes map[string]int64

	malformed atomic.Int64 // malformed records seen (all modes)
	dropped   atomic.Int64 // malformed records dropped (DROPMALFORMED)
}

// New creates a file source reading format (text, json, csv). logStore
// holds the seen-files log; the engine passes the checkpoint's
// sources/0. The log found there is restored, so files recorded by an
// earlier run are not read again. With inferSchema=true and no schema, the
// schema is inferred from the files present now (see InferSchema). The
// path may be an object-store URI (WithResolver gives the credentials); a
// local path without glob characters must exist, as in Spark.
func New(format string, opts map[string]string, logStore storage.Store, logger *slog.Logger, o ...Option) (*Source, error) {
	cfg, err := ParseConfig(format, opts)
	if err != nil {
		return nil, err
	}
	return open(cfg, logStore, logger, o...)
}

func open(cfg *Config, logStore storage.Store, logger *slog.Logger, o ...Option) (*Source, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if logStore == nil {
		return nil, errors.New("file source: a store for the seen-files log is required")
	}
	if !cfg.remote {
		if err := checkPathExists(cfg.Path); err != nil {
			return nil, err
		}
	}
	in, err := newInputFS(cfg, o)
	if err != nil {
		return nil, err
	}
	if len(cfg.Schema.Fields) == 0 {
		if err := inferInto(cfg, in); err != nil {
			return nil, err
		}
	}
	if err := discoverInto(cfg, in); err != nil {
		return nil, err
	}
	fl := newFileLog(logStore)
	s := &Source{cfg: cfg, log: logger, fl: fl, fs: in, seen: newSeenFiles(cfg.maxFileAgeMs()), sizes: map[string]int64{}}
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// restore reads the seen-files log of an earlier run.
func (s *Source) restore() error {
	ids, err := s.fl.ids()
	if err != nil {
		return err
	}
	s.first, s.head = 0, -1
	if s.fl.legacy() {
		s.first, s.head = 1, 0
		ids = slices.DeleteFunc(ids, func(id int64) bool { return id == 0 })
	}
	for i, id := range ids {
		if want := s.first + int64(i); id != want {
			return fmt.Errorf("file source: seen-files log %s is missing batch %d (found %v)", s.fl.dir, want, ids)
		}
		entries, err := s.fl.read(id)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p, err := uriToPath(e.Path)
			if err != nil {
				return fmt.Errorf("file source: seen-files log batch %d: bad path %q: %w", id, e.Path, err)
			}
			s.seen.add(s.key(p), e.Timestamp)
		}
		s.head = id
	}
	if s.head >= s.first {
		s.seen.purge()
		s.log.Info("file source: restored the seen-files log", "dir", s.fl.dir, "batches", s.head-s.first+1, "files", len(s.seen.m))
	}
	return nil
}

// key is the deduplication key of a file: its path, or its name with
// fileNameOnly.
func (s *Source) key(p string) string {
	if s.cfg.FileNameOnly {
		return path.Base(filepath.ToSlash(p))
	}
	return p
}

// Config returns the parsed options.
func (s *Source) Config() *Config { return s.cfg }

// Description implements source.Source.
func (s *Source) Description() string { return s.cfg.description() }

// Schema implements source.Source.
func (s *Source) Schema() batch.Schema { return s.cfg.fullSchema() }

// DefaultReadLimit maps maxFilesPerTrigger / maxBytesPerTrigger.
func (s *Source) DefaultReadLimit() source.ReadLimit {
	return source.ReadLimit{MaxFiles: s.cfg.MaxFilesPerTrigger, MaxBytes: s.cfg.MaxBytesPerTrigger}
}

// InitialOffset is log offset -1, before log batch 0 (Spark's: the first
// batch has no start offset), or 0 for a log of the earlier layout. It is
// the same on every start, so the engine keeps no copy of it
// (source.MetadataOwner).
func (s *Source) InitialOffset(context.Context) (source.Offset, error) {
	return Offset{LogOffset: s.first - 1}, nil
}

// OwnsMetadataDir implements source.MetadataOwner: the seen-files log
// fills sources/0 from file 0, as Spark's does.
func (s *Source) OwnsMetadataDir() {}

// ParseOffset implements source.Source; it also accepts a bare number.
// The initial offset (-1) is never logged, so it is not accepted.
func (s *Source) ParseOffset(js string) (source.Offset, error) {
	t := strings.TrimSpace(js)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && n >= 0 {
		return Offset{LogOffset: n}, nil
	}
	var o Offset
	dec := json.NewDecoder(strings.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || dec.More() || o.LogOffset < 0 {
		return nil, fmt.Errorf(`file source: parse offset %q: want {"logOffset":N}`, js)
	}
	return o, nil
}

func asOffset(o source.Offset) (int64, error) {
	switch v := o.(type) {
	case Offset:
		return v.LogOffset, nil
	case *Offset:
		return v.LogOffset, nil
	}
	return 0, fmt.Errorf("file source: offset %T is not a file source offset", o)
}

// PrepareAvailableNow snapshots the files present now; later batches only
// admit files from this snapshot, still within the read limits.
func (s *Source) PrepareAvailableNow(ctx context.Context) error {
	files, err := s.fs.list(ctx, s.cfg.Path, s.cfg.PathGlobFilter, s.cfg.RecursiveFileLookup)
	if err != nil {
		return err
	}
	snap := make(map[string]bool, len(files))
	for _, f := range files {
		snap[f.path] = true
	}
	s.mu.Lock()
	s.availableNow = snap
	s.mu.Unlock()
	return nil
}

// begin records where this process started (for cleanSource). Called
// with mu held.
func (s *Source) begin(start int64) {
	if !s.started {
		s.started = true
		// The last committed batch's files were never cleaned: Spark
		// cleans them when the next batch commits the previous end.
		s.cleaned, s.committed = start-1, start
	}
}

// Latest implements source.Source. It lists the path, picks new files in
// modification-time order (newest first with latestFirst) within
// limit.MaxFiles / limit.MaxBytes (at least one file), writes them as the
// next seen-files log batch and returns its id.
func (s *Source) Latest(ctx context.Context, startOff source.Offset, limit source.ReadLimit) (source.Offset, source.Offset, error) {
	start, err := asOffset(startOff)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.begin(start)
	switch {
	case start > s.head:
		return nil, nil, fmt.Errorf("file source: the checkpoint's offset %d is past the seen-files log in %s, which ends at batch %d", start, s.fl.dir, s.head)
	case start < s.head:
		// A log batch was written but its query batch was never planned
		// (the process stopped in between): plan it now, unchanged.
		return Offset{start + 1}, Offset{s.head}, nil
	}
	files, err := s.fs.list(ctx, s.cfg.Path, s.cfg.PathGlobFilter, s.cfg.RecursiveFileLookup)
	if err != nil {
		return nil, nil, err
	}
	var cand []fileInfo
	keys := map[string]bool{}
	for _, f := range files {
		if s.availableNow != nil && !s.availableNow[f.path] {
			continue
		}
		k := s.key(f.path)
		if keys[k] || !s.seen.isNew(k, f.modMs) {
			continue
		}
		keys[k] = true
		cand = append(cand, f)
	}
	sort.SliceStable(cand, func(i, j int) bool {
		a, b := cand[i], cand[j]
		if a.modMs != b.modMs {
			return (a.modMs < b.modMs) != s.cfg.LatestFirst
		}
		return a.path < b.path
	})
	take := len(cand)
	if limit.MaxFiles > 0 {
		take = min(take, int(min(limit.MaxFiles, int64(len(cand)))))
	}
	if limit.MaxBytes > 0 && take > 0 {
		var total int64
		n := 0
		for n < take {
			if n > 0 && total+cand[n].size > limit.MaxBytes {
				break
			}
			total += cand[n].size
			n++
		}
		take = n
	}
	s.outFiles, s.outBytes = 0, 0
	for _, f := range cand[take:] {
		s.outFiles++
		s.outBytes += f.size
	}
	if take == 0 {
		return Offset{start}, Offset{start}, nil
	}
	id := s.head + 1
	entries := make([]logEntry, take)
	for i, f := range cand[:take] {
		entries[i] = logEntry{Path: pathToURI(f.path), Timestamp: f.modMs, BatchID: id}
	}
	if err := s.fl.write(id, entries); err != nil {
		return nil, nil, err
	}
	s.head = id
	for _, f := range cand[:take] {
		s.seen.add(s.key(f.path), f.modMs)
		s.sizes[f.path] = f.size
	}
	s.seen.purge()
	s.log.Debug("file source: new files admitted", "logBatch", id, "files", take, "outstanding", s.outFiles)
	return Offset{id}, Offset{id}, nil
}

// entries reads the log entries of batches (start, end].
func (s *Source) entries(start, end int64) ([]logEntry, error) {
	var out []logEntry
	for id := start + 1; id <= end; id++ {
		es, err := s.fl.read(id)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// Open implements source.Source: one task per file of log batches
// (start, end], read from the persisted log.
func (s *Source) Open(_ context.Context, startOff, endOff source.Offset) (source.Reader, error) {
	start, err := asOffset(startOff)
	if err != nil {
		return nil, err
	}
	end, err := asOffset(endOff)
	if err != nil {
		return nil, err
	}
	if end < start {
		return nil, fmt.Errorf("file source: invalid range (%d, %d]", start, end)
	}
	s.mu.Lock()
	s.begin(start)
	s.mu.Unlock()
	entries, err := s.entries(start, end)
	if err != nil {
		return nil, err
	}
	r := &reader{s: s}
	for _, e := range entries {
		p, err := uriToPath(e.Path)
		if err != nil {
			return nil, fmt.Errorf("file source: log batch %d: bad path %q: %w", e.BatchID, e.Path, err)
		}
		s.mu.Lock()
		size, ok := s.sizes[p]
		delete(s.sizes, p) // a file is opened once per batch; keep the map bounded
		s.mu.Unlock()
		if !ok && !s.cfg.remote {
			if info, err := os.Stat(p); err == nil {
				size = info.Size()
			}
		}
		r.tasks = append(r.tasks, &task{path: p, size: size, batchID: e.BatchID})
	}
	return r, nil
}

// Commit implements source.Source. With cleanSource it archives or deletes
// files one batch late, as Spark: Spark's engine commits batch N−1's end
// to the source when it plans batch N, and the source cleans that log
// batch's files then. So here a commit cleans the files of the batch
// committed before it (and, after a restart, those of the last batch the
// previous run committed). Failures are logged, not returned: cleaning is
// best effort, as in Spark.
func (s *Source) Commit(ctx context.Context, endOff source.Offset) error {
	end, err := asOffset(endOff)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.begin(end)
	// A repeated commit of the same end cleans nothing more.
	from, to := s.cleaned, s.cleaned
	if end > s.committed {
		to = s.committed
		s.cleaned, s.committed = s.committed, end
	}
	s.mu.Unlock()
	if s.cfg.CleanSource == CleanOff || to <= from {
		return nil
	}
	entries, err := s.entries(max(from, s.first-1), to)
	if err != nil {
		s.log.Warn("file source: cleanSource skipped", "err", err)
		return nil
	}
	for _, e := range entries {
		p, err := uriToPath(e.Path)
		if err != nil {
			continue
		}
		s.clean(ctx, p)
	}
	return nil
}

// clean archives or deletes one processed file.
func (s *Source) clean(ctx context.Context, p string) {
	switch s.cfg.CleanSource {
	case CleanDelete:
		if err := s.fs.remove(ctx, p); err != nil {
			s.log.Warn("file source: cleanSource could not delete a processed file", "path", p, "err", err)
		}
	case CleanArchive:
		if err := s.fs.archive(ctx, p, s.cfg.ArchiveDir); err != nil {
			s.log.Warn("file source: cleanSource did not archive a processed file", "path", p, "archive", s.cfg.ArchiveDir, "err", err)
		}
	}
}

// moveFile renames src to dst, copying across file systems.
func moveFile(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil {
		return nil
	}
	var le *os.LinkError
	if !errors.As(err, &le) || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	in, oerr := os.Open(src)
	if oerr != nil {
		return oerr
	}
	defer in.Close()
	out, cerr := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if cerr != nil {
		return cerr
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return err
	}
	return os.Remove(src)
}

// Metrics reports the backlog seen by the last listing and malformed
// record counts (cumulative for this process).
func (s *Source) Metrics(_, _ source.Offset) map[string]string {
	s.mu.Lock()
	m := map[string]string{
		"numFilesOutstanding": strconv.FormatInt(s.outFiles, 10),
		"numBytesOutstanding": strconv.FormatInt(s.outBytes, 10),
	}
	s.mu.Unlock()
	if n := s.malformed.Load(); n > 0 {
		m["numMalformedRecords"] = strconv.FormatInt(n, 10)
	}
	if n := s.dropped.Load(); n > 0 {
		m["numDroppedMalformedRecords"] = strconv.FormatInt(n, 10)
	}
	return m
}

// MalformedRecords returns how many malformed records were seen and how
// many of them were dropped (DROPMALFORMED), since the source was created.
func (s *Source) MalformedRecords() (seen, dropped int64) {
	return s.malformed.Load(), s.dropped.Load()
}

// Close implements source.Source.
func (s *Source) Close() error { return nil }

// task reads one file.
type task struct {
	path    string
	size    int64
	batchID int64
}

func (t *task) String() string { return t.path }

// Size is the file's size in bytes (the engine schedules big tasks first).
func (t *task) Size() int64 { return t.size }

type reader struct {
	s     *Source
	tasks []source.Task
}

func (r *reader) Tasks() []source.Task { return r.tasks }

func (r *reader) Read(ctx context.Context, st source.Task, emit source.Emit) error {
	t, ok := st.(*task)
	if !ok {
		return fmt.Errorf("file source: task %v is not a file task", st)
	}
	f, err := r.s.fs.open(ctx, t.path)
	if err != nil {
		return fmt.Errorf("file source: open %s (listed in log batch %d): %w", t.path, t.batchID, err)
	}
	defer f.Close()
	in, err := decompress(f, t.path)
	if err != nil {
		return fmt.Errorf("file source: decompress %s: %w", t.path, err)
	}
	return newParser(r.s.cfg, r.s, t.path, r.s.withPartitions(t.path, emit)).run(ctx, in)
}

// withPartitions wraps emit so that each chunk of the file at path gets
// the file's partition values as constant columns after the data columns.
func (s *Source) withPartitions(path string, emit source.Emit) source.Emit {
	cols := s.cfg.Partitions
	if len(cols) == 0 {
		return emit
	}
	values := map[string]string{}
	for _, kv := range partitionValues(s.cfg.partitionBaseOf(path), path) {
		values[strings.ToLower(kv[0])] = kv[1]
	}
	schema := s.cfg.fullSchema()
	return func(ctx context.Context, b *batch.Batch) error {
		out := make([]*batch.Column, 0, len(schema.Fields))
		out = append(out, b.Columns...)
		for _, pc := range cols {
			c := batch.NewColumn(pc.Type, b.N)
			v, ok := values[strings.ToLower(pc.Name)]
			if !ok {
				v = hiveDefaultPartition // the file is not under this column's directory: NULL
			}
			appendPartitionValue(c, v, b.N)
			out = append(out, c)
		}
		return emit(ctx, batch.New(schema, out, b.N))
	}
}

func (r *reader) Close() error { return nil }

var (
	_ source.Limited       = (*Source)(nil)
	_ source.AvailableNow  = (*Source)(nil)
	_ source.LimitDefaults = (*Source)(nil)
	_ source.Metrics       = (*Source)(nil)
)
