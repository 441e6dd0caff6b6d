package file

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sparkjson"
	"github.com/sluice-stream/sluice/internal/storage"
)

// Output formats.
const (
	Parquet = "parquet"
	JSON    = "json"
	CSV     = "csv"
)

// maxOpenFiles bounds the files a task keeps open at once (one per
// partition directory); past it the least recently used is finished and a
// later row of its partition starts a new file.
const maxOpenFiles = 64

// DefaultPendingUploads is how many finished files of one task may still
// be uploading to an object store while the task writes the next ones.
const DefaultPendingUploads = 4

// TaskConfig configures a TaskWriter.
type TaskConfig struct {
	// Store is where the files go, named relative to its root (the output
	// directory, local or on an object store).
	Store storage.Store
	// Root is the absolute local directory the files go under when Store
	// is nil.
	Root string
	// Format is Parquet, JSON or CSV.
	Format string
	// Schema is the schema of the batches written.
	Schema batch.Schema
	// PartitionBy names the partition columns; their values pick a
	// Hive-style sub-directory and they are left out of the files.
	PartitionBy []string
	// FileName returns the name of the seq-th file (0, 1, ...) the task
	// writes in one partition directory; names must be unique across
	// tasks and attempts.
	FileName func(seq int) string
	// Parquet configures Parquet files (codec, row-group bound). Its
	// RowGroupBytes also bounds the total bytes buffered by all the
	// task's open Parquet files.
	Parquet parquetio.Options
	// Gzip compresses JSON and CSV files.
	Gzip bool
	// CSVHeader writes a header line in each CSV file.
	CSVHeader bool
	// CSVSep separates CSV fields (default ",").
	CSVSep string
	// MaxRecordsPerFile starts a new file after that many rows (0: no
	// limit), like Spark's maxRecordsPerFile.
	MaxRecordsPerFile int64
	// TargetFileSize starts a new file once a file holds about that many
	// bytes (0: no limit); Parquet files count their buffered row group
	// at its in-memory size.
	TargetFileSize int64
	// PendingUploads bounds the finished files whose uploads to an object
	// store run while the task goes on (0: DefaultPendingUploads). Files
	// on the local disk are committed in line.
	PendingUploads int
}

// WrittenFile describes one finished data file.
type WrittenFile struct {
	// Path is the file's location: its absolute path on the local disk,
	// its URI on an object store.
	Path string
	// Rel is Path relative to TaskConfig.Root, slash-separated, as on disk
	// (partition values escaped, not URI-encoded).
	Rel string
	// Size is the file size in bytes; ModTime its modification time in
	// milliseconds since the epoch (on an object store: when its upload
	// completed, by the writer's clock).
	Size, ModTime int64
	// Rows is the number of rows in the file.
	Rows int64
	// Partition holds the partition column values, in PartitionBy order.
	Partition []PartitionValue
	// Stats are the Parquet column statistics of the data columns (nil
	// for JSON and CSV).
	Stats []parquetio.ColumnStats
}

// TaskWriter writes one task's rows to files through a storage.Store: one
// open file per partition directory, each invisible until finished (the
// local disk writes a hidden temporary file, ignored by Spark, Hadoop and
// DuckDB globs, and renames it; an object store uploads it in blocks as it
// fills and completes the upload). On an object store a finished file's
// upload goes on while the task writes the next files, up to
// PendingUploads at once. It is used by one goroutine at a time.
type TaskWriter struct {
	cfg        TaskConfig
	st         storage.Store
	localRoot  string // the local directory of st, "" for an object store
	partIdx    []int
	dataIdx    []int
	dataFields []batch.Field
	jsonNames  [][]byte

	open    map[string]*openFile // by partition key
	seq     map[string]int       // next file number per partition key
	useTick uint64
	nDone   int // files finished (their index in done)

	// Files finished, in finishing order; a slot is filled when its
	// upload completes.
	mu      sync.Mutex
	done    []WrittenFile
	upErr   error // first failed upload
	pending chan struct{}
	wg      sync.WaitGroup

	// storeTime is the time the task spent waiting for the store: in its
	// writes (full upload buffers), commits and pending uploads.
	storeTime time.Duration

	// per-batch scratch, reused
	groups   map[string]int
	groupKey []string
	groupRow []int
	groupSel [][]int32
	keyBuf   []byte
	dataCols []*batch.Column
}

type openFile struct {
	rel           string
	w             storage.Writer
	cw            *timedWriter
	bw            *bufio.Writer
	gz            *gzip.Writer
	pq            *parquetio.Writer
	line, scratch []byte
	rows          int64
	part          []PartitionValue
	lastUse       uint64
}

// timedWriter counts the bytes written to a store writer and the time
// spent in its Write calls (which wait when upload buffers are full).
type timedWriter struct {
	w io.Writer
	n int64
	d *time.Duration
}

func (t *timedWriter) Write(p []byte) (int, error) {
	t0 := time.Now()
	n, err := t.w.Write(p)
	*t.d += time.Since(t0)
	t.n += int64(n)
	return n, err
}

// size is the file's size so far: bytes handed to the store, buffered,
// and (Parquet) the row group in memory.
func (f *openFile) size() int64 {
	n := f.cw.n + int64(f.bw.Buffered())
	if f.pq != nil {
		n += f.pq.Buffered()
	}
	return n
}

// NewTaskWriter checks cfg against its schema and returns a writer.
func NewTaskWriter(cfg TaskConfig) (*TaskWriter, error) {
	if cfg.FileName == nil {
		return nil, errors.New("task writer: no file name function")
	}
	if cfg.CSVSep == "" {
		cfg.CSVSep = ","
	}
	w := &TaskWriter{
		cfg:    cfg,
		st:     cfg.Store,
		open:   map[string]*openFile{},
		groups: map[string]int{},
		seq:    map[string]int{},
	}
	if w.st == nil {
		if cfg.Root == "" {
			return nil, errors.New("task writer: no store and no root directory")
		}
		st, err := storage.NewLocal(cfg.Root)
		if err != nil {
			return nil, err
		}
		w.st = st
	}
	w.localRoot, _ = storage.LocalRoot(w.st)
	n := cfg.PendingUploads
	if n <= 0 {
		n = DefaultPendingUploads
	}
	w.pending = make(chan struct{}, n)
	seen := map[int]bool{}
	for _, name := range cfg.PartitionBy {
		i := cfg.Schema.Index(name)
		if i < 0 {
			return nil, fmt.Errorf("partition column %q is not in the schema %s", name, cfg.Schema)
		}
		if seen[i] {
			return nil, fmt.Errorf("partition column %q is listed twice", name)
		}
		seen[i] = true
		if k := cfg.Schema.Fields[i].Type; !partitionable(k) {
			return nil, fmt.Errorf("partition column %q has type %s, which cannot be a partition column", name, k)
		}
		w.partIdx = append(w.partIdx, i)
	}
	for i, f := range cfg.Schema.Fields {
		if seen[i] {
			continue
		}
		w.dataIdx = append(w.dataIdx, i)
		w.dataFields = append(w.dataFields, f)
	}
	if len(w.dataIdx) == 0 && len(cfg.Schema.Fields) > 0 {
		return nil, errors.New("cannot use all columns as partition columns")
	}
	for _, f := range w.dataFields {
		if err := storable(cfg.Format, f); err != nil {
			return nil, err
		}
	}
	switch cfg.Format {
	case Parquet:
		if _, err := parquetio.Schema(w.dataFields); err != nil {
			return nil, err
		}
	case JSON:
		for _, f := range w.dataFields {
			w.jsonNames = append(w.jsonNames, sparkjson.AppendString(nil, []byte(f.Name)))
		}
	case CSV:
	default:
		return nil, fmt.Errorf("unknown format %q", cfg.Format)
	}
	return w, nil
}

// Write writes the rows of b.
func (w *TaskWriter) Write(ctx context.Context, b *batch.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("writing batch: %w", err)
	}
	if len(b.Columns) != len(w.cfg.Schema.Fields) {
		return fmt.Errorf("writing batch: %d columns, writer expects %d", len(b.Columns), len(w.cfg.Schema.Fields))
	}
	for i, c := range b.Columns {
		if f := w.cfg.Schema.Fields[i]; c.Type != f.Type {
			return fmt.Errorf("writing batch: column %q is %s, writer expects %s", f.Name, c.Type, f.Type)
		}
	}
	if b.N == 0 {
		return nil
	}
	w.dataCols = w.dataCols[:0]
	for _, i := range w.dataIdx {
		w.dataCols = append(w.dataCols, b.Columns[i])
	}
	if len(w.partIdx) == 0 {
		if err := w.writeGroup(b, "", 0, nil, b.N); err != nil {
			return err
		}
	} else {
		w.group(b)
		for g, key := range w.groupKey {
			if err := w.writeGroup(b, key, w.groupRow[g], w.groupSel[g], len(w.groupSel[g])); err != nil {
				return err
			}
		}
	}
	return w.boundMemory()
}

// group splits the rows of b by partition key into groupKey/groupSel.
func (w *TaskWriter) group(b *batch.Batch) {
	clear(w.groups)
	w.groupKey = w.groupKey[:0]
	w.groupRow = w.groupRow[:0]
	for i := range w.groupSel {
		w.groupSel[i] = w.groupSel[i][:0]
	}
	for r := 0; r < b.N; r++ {
		w.keyBuf = w.keyBuf[:0]
		for _, i := range w.partIdx {
			w.keyBuf = appendPartitionKey(w.keyBuf, b.Columns[i], r)
		}
		g, ok := w.groups[string(w.keyBuf)]
		if !ok {
			g = len(w.groupKey)
			key := string(w.keyBuf)
			w.groups[key] = g
			w.groupKey = append(w.groupKey, key)
			w.groupRow = append(w.groupRow, r)
			if g == len(w.groupSel) {
				w.groupSel = append(w.groupSel, nil)
			}
		}
		w.groupSel[g] = append(w.groupSel[g], int32(r))
	}
}

// writeGroup writes rows of one partition (sel, or the first n rows when
// sel is nil), rolling files at MaxRecordsPerFile.
func (w *TaskWriter) writeGroup(b *batch.Batch, key string, firstRow int, sel []int32, n int) error {
	from := 0
	for from < n {
		f, err := w.file(b, key, firstRow)
		if err != nil {
			return err
		}
		take := n - from
		if m := w.cfg.MaxRecordsPerFile; m > 0 {
			take = int(min(int64(take), m-f.rows))
		}
		if w.cfg.TargetFileSize > 0 && take > targetChunk {
			take = targetChunk // look at the size every few thousand rows
		}
		var part []int32
		if sel != nil {
			part = sel[from : from+take]
		}
		if err := w.writeRows(f, part, from, take); err != nil {
			return err
		}
		from += take
		full := w.cfg.MaxRecordsPerFile > 0 && f.rows >= w.cfg.MaxRecordsPerFile
		if !full && w.cfg.TargetFileSize > 0 && f.size() >= w.cfg.TargetFileSize {
			full = true
		}
		if full {
			delete(w.open, key)
			if err := w.finish(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeRows writes rows sel of the data columns, or with sel nil the take
// rows starting at from.
func (w *TaskWriter) writeRows(f *openFile, sel []int32, from, take int) error {
	cols := w.dataCols
	if sel == nil && (from != 0 || take != cols[0].Len) {
		sliced := make([]*batch.Column, len(cols))
		for i, c := range cols {
			sliced[i] = c.Slice(from, from+take)
		}
		cols = sliced
	}
	f.rows += int64(take)
	if f.pq != nil {
		if err := f.pq.Write(cols, sel, take); err != nil {
			return fmt.Errorf("writing %s: %w", f.rel, err)
		}
		return nil
	}
	for j := 0; j < take; j++ {
		r := j
		if sel != nil {
			r = int(sel[j])
		}
		if w.cfg.Format == JSON {
			f.line = appendJSONRow(f.line[:0], w.jsonNames, cols, r)
		} else {
			f.line, f.scratch = appendCSVRow(f.line[:0], f.scratch, cols, r, w.cfg.CSVSep)
		}
		if _, err := f.write(f.line); err != nil {
			return fmt.Errorf("writing %s: %w", f.rel, err)
		}
	}
	return nil
}

// targetChunk is how many rows are written between two looks at a file's
// size when TargetFileSize is set.
const targetChunk = 4096

func (f *openFile) write(p []byte) (int, error) {
	if f.gz != nil {
		return f.gz.Write(p)
	}
	return f.bw.Write(p)
}

// file returns the open file of partition key, opening one if needed.
func (w *TaskWriter) file(b *batch.Batch, key string, row int) (*openFile, error) {
	w.useTick++
	if f, ok := w.open[key]; ok {
		f.lastUse = w.useTick
		return f, nil
	}
	if len(w.open) >= maxOpenFiles {
		if err := w.finishLRU(); err != nil {
			return nil, err
		}
	}
	var part []PartitionValue
	dir := ""
	for _, i := range w.partIdx {
		p := partitionValueAt(w.cfg.Schema.Fields[i].Name, b.Columns[i], row)
		part = append(part, p)
		dir += p.Dir() + "/"
	}
	name := w.cfg.FileName(w.seq[key])
	w.seq[key]++
	rel := dir + name
	sw, err := w.st.Create(context.Background(), rel, storage.Replace)
	if err != nil {
		return nil, fmt.Errorf("creating data file: %w", err)
	}
	f := &openFile{
		rel:     rel,
		w:       sw,
		cw:      &timedWriter{w: sw, d: &w.storeTime},
		part:    part,
		lastUse: w.useTick,
	}
	w.open[key] = f
	f.bw = bufio.NewWriterSize(f.cw, 64<<10)
	switch w.cfg.Format {
	case Parquet:
		f.pq, err = parquetio.NewWriter(f.bw, w.dataFields, w.cfg.Parquet)
		if err != nil {
			return nil, err
		}
	default:
		if w.cfg.Gzip {
			f.gz = gzip.NewWriter(f.bw)
		}
		if w.cfg.Format == CSV && w.cfg.CSVHeader {
			var line []byte
			for i, fd := range w.dataFields {
				if i > 0 {
					line = append(line, w.cfg.CSVSep...)
				}
				line = appendCSVField(line, []byte(fd.Name), w.cfg.CSVSep)
			}
			if _, err := f.write(append(line, '\n')); err != nil {
				return nil, fmt.Errorf("writing %s: %w", f.rel, err)
			}
		}
	}
	return f, nil
}

// finishLRU finishes the least recently used open file.
func (w *TaskWriter) finishLRU() error {
	var oldKey string
	var old *openFile
	for k, f := range w.open {
		if old == nil || f.lastUse < old.lastUse {
			oldKey, old = k, f
		}
	}
	delete(w.open, oldKey)
	return w.finish(old)
}

// boundMemory flushes Parquet row groups, largest first, while the open
// files together buffer more than the row-group bound.
func (w *TaskWriter) boundMemory() error {
	if w.cfg.Format != Parquet || len(w.open) < 2 {
		return nil // a single file bounds itself
	}
	limit := w.cfg.Parquet.RowGroupBytes
	if limit <= 0 {
		limit = parquetio.DefaultRowGroupBytes
	}
	for {
		var total int64
		var largest *openFile
		for _, f := range w.open {
			n := f.pq.Buffered()
			total += n
			if largest == nil || n > largest.pq.Buffered() {
				largest = f
			}
		}
		if total <= limit || largest.pq.Buffered() == 0 {
			return nil
		}
		if err := largest.pq.FlushRowGroup(); err != nil {
			return fmt.Errorf("writing %s: %w", largest.rel, err)
		}
	}
}

// finish completes f: footer, flush, then the store's commit (fsync and
// rename on the local disk; on an object store the rest of the upload, in
// the background while the task goes on).
func (w *TaskWriter) finish(f *openFile) error {
	err := f.closeEncoders()
	if err == nil {
		err = f.bw.Flush()
	}
	if err != nil {
		f.w.Abort()
		return fmt.Errorf("finishing data file %s: %w", storage.URI(w.st, f.rel), err)
	}
	wf := WrittenFile{
		Path:      storage.URI(w.st, f.rel),
		Rel:       f.rel,
		Size:      f.cw.n,
		Rows:      f.rows,
		Partition: f.part,
	}
	if f.pq != nil {
		wf.Stats = f.pq.Stats()
	}
	idx := w.nDone
	w.nDone++
	w.mu.Lock()
	w.done = append(w.done, WrittenFile{})
	w.mu.Unlock()
	if w.localRoot != "" {
		t0 := time.Now()
		err := f.w.Commit()
		w.storeTime += time.Since(t0)
		if err != nil {
			return fmt.Errorf("finishing data file %s: %w", wf.Path, err)
		}
		wf.Path = filepath.Join(w.localRoot, filepath.FromSlash(f.rel))
		st, err := os.Stat(wf.Path)
		if err != nil {
			return fmt.Errorf("finishing data file: %w", err)
		}
		wf.Size, wf.ModTime = st.Size(), st.ModTime().UnixMilli()
		w.mu.Lock()
		w.done[idx] = wf
		w.mu.Unlock()
		return nil
	}
	if err := w.uploadErr(); err != nil {
		f.w.Abort()
		return err
	}
	t0 := time.Now()
	w.pending <- struct{}{}
	w.storeTime += time.Since(t0)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.pending }()
		err := f.w.Commit()
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			if w.upErr == nil {
				w.upErr = fmt.Errorf("finishing data file %s: %w", wf.Path, err)
			}
			return
		}
		wf.ModTime = time.Now().UnixMilli()
		w.done[idx] = wf
	}()
	return nil
}

func (w *TaskWriter) uploadErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.upErr
}

// waitUploads waits for the pending uploads.
func (w *TaskWriter) waitUploads() error {
	t0 := time.Now()
	w.wg.Wait()
	w.storeTime += time.Since(t0)
	return w.uploadErr()
}

// StoreTime returns the time the task spent waiting for the store: in
// writes held up by full upload buffers, in commits, and for the uploads
// still running at Close. The engine reports it as the batch's store share.
func (w *TaskWriter) StoreTime() time.Duration { return w.storeTime }

func (f *openFile) closeEncoders() error {
	if f.pq != nil {
		return f.pq.Close()
	}
	if f.gz != nil {
		return f.gz.Close()
	}
	return nil
}

// Close finishes every open file, waits for the uploads and returns all
// the files the task wrote, in the order they were finished. Each file is
// durable: the local store fsyncs it and its directory in its commit.
func (w *TaskWriter) Close(ctx context.Context) ([]WrittenFile, error) {
	keys := make([]string, 0, len(w.open))
	for k := range w.open {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := w.open[k]
		delete(w.open, k)
		if err := w.finish(f); err != nil {
			return nil, err
		}
	}
	if err := w.waitUploads(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.done), nil
}

// Abort discards every file the task wrote, finished or not. Directories
// it created are left in place (another task may be using them).
func (w *TaskWriter) Abort() {
	for k, f := range w.open {
		f.w.Abort()
		delete(w.open, k)
	}
	w.wg.Wait()
	w.mu.Lock()
	done := w.done
	w.done = nil
	w.mu.Unlock()
	var names []string
	for _, f := range done {
		if f.Rel != "" {
			names = append(names, f.Rel)
		}
	}
	if len(names) > 0 {
		_ = w.st.Delete(context.Background(), names...)
	}
}

// RemoveFiles deletes the given files (by their names relative to st's
// root), ignoring ones already gone.
func RemoveFiles(ctx context.Context, st storage.Store, files []WrittenFile) error {
	names := make([]string, 0, len(files))
	for _, f := range files {
		if f.Rel != "" {
			names = append(names, f.Rel)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return st.Delete(ctx, names...)
}

// bytesOf views s as bytes without copying, for read-only use.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// storable refuses a column the format cannot hold, with Spark's error
// (UNSUPPORTED_DATA_TYPE_FOR_DATASOURCE): void anywhere in its type for
// every format, and for CSV binary, structs, arrays and maps.
func storable(format string, f batch.Field) error {
	name := map[string]string{Parquet: "Parquet", JSON: "JSON", CSV: "CSV"}[format]
	bad := f.Type.Contains(batch.Null)
	hint := "cast it to a storable type"
	if format == CSV && (f.Type == batch.Binary || f.Type.IsNested()) {
		bad = true
		hint = "write it as a string first (e.g. to_json(" + batch.QuoteIdentIfNeeded(f.Name) + ") for a struct, array or map), or use the json or parquet format"
	}
	if !bad {
		return nil
	}
	return fmt.Errorf("[UNSUPPORTED_DATA_TYPE_FOR_DATASOURCE] The %s datasource doesn't support the column %s of the type \"%s\". (column %q: %s)",
		name, "`"+strings.ReplaceAll(f.Name, "`", "``")+"`", f.Type.SQL(), f.Name, hint)
}
