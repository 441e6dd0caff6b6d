package file

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/storage"
)

// Option names.
const (
	OptPath              = "path"
	OptPartitionBy       = "partitionBy"
	OptCompression       = "compression"
	OptHeader            = "header"
	OptSep               = "sep"
	OptMaxRecordsPerFile = "maxRecordsPerFile"
	OptRowGroupBytes     = "sluice.parquet.rowGroupBytes"
	OptTargetFileSize    = "sluice.targetFileSize"
)

// Fields shared with the Delta sink.
var (
	// PathField is the output directory.
	PathField = options.Field{Name: OptPath, Type: options.Path, Required: true, Doc: "Output directory: a local path (created if missing), a `file:` URI, or an object-store URI (`abfss://container@account.dfs.core.windows.net/path`, `wasbs://…`, `az://container/path`, `s3a://bucket/path`, `s3://…`; see docs/storage.md)."}
	// PartitionByField lists Hive-style partition columns.
	PartitionByField = options.Field{Name: OptPartitionBy, Type: options.List,
		Doc: "Comma-separated columns to partition the output by (`col=value/` directories); the columns leave the files."}
	// MaxRecordsPerFileField bounds the rows of a data file.
	MaxRecordsPerFileField = options.Field{Name: OptMaxRecordsPerFile, Type: options.Int, Min: 0, Default: "0", Doc: "Rows per file before a new one is started; 0 = no limit."}
	// ParquetCompressionField is the Parquet codec.
	ParquetCompressionField = options.Field{Name: OptCompression, Type: options.Enum, Default: "snappy", Allowed: parquetio.Compressions, Doc: "Parquet compression codec."}
	// RowGroupBytesField bounds a Parquet row group in memory.
	RowGroupBytesField = options.Field{Name: OptRowGroupBytes, Type: options.Int, Min: 1 << 10, Default: "67108864",
		Doc: "Bytes a task buffers for a Parquet row group before writing it (64 MiB); bounds the sink's memory per task."}
	// TargetFileSizeField rolls data files by size.
	TargetFileSizeField = options.Field{Name: OptTargetFileSize, Type: options.Size, Default: "0",
		Doc: "Start a new data file once one holds about this many bytes (Parquet counts its row group in memory); 0 = no limit. With maxRecordsPerFile, whichever comes first."}
)

var textCompression = options.Field{Name: OptCompression, Type: options.Enum, Default: "none", Allowed: []string{"none", "uncompressed", "gzip"}, Doc: "Compression of the files."}

// Specs describe each file sink format's options.
var Specs = map[string]*options.Spec{
	Parquet: {What: "parquet sink", Fields: []options.Field{PathField, PartitionByField, ParquetCompressionField, MaxRecordsPerFileField, RowGroupBytesField, TargetFileSizeField, AllowNewQueryField, VacuumOnStartField, VacuumRetentionField}},
	JSON:    {What: "json sink", Fields: []options.Field{PathField, PartitionByField, textCompression, MaxRecordsPerFileField, TargetFileSizeField, AllowNewQueryField, VacuumOnStartField, VacuumRetentionField}},
	CSV: {What: "csv sink", Fields: []options.Field{PathField, PartitionByField, textCompression, MaxRecordsPerFileField, TargetFileSizeField, AllowNewQueryField, VacuumOnStartField, VacuumRetentionField,
		{Name: OptHeader, Type: options.Bool, Default: "false", Doc: "Writes a header line with the column names first in each file."},
		{Name: OptSep, Type: options.String, Default: ",", Doc: "Field separator (not a quote, backslash or line break)."}}},
}

// Formats registers "parquet", "json" and "csv".
func Formats() []sink.Format {
	summaries := map[string]string{
		Parquet: "Parquet files under a path, committed to a _spark_metadata log in Spark's format: exactly-once",
		JSON:    "JSON Lines files under a path, committed to a _spark_metadata log: exactly-once",
		CSV:     "CSV files under a path, committed to a _spark_metadata log: exactly-once",
	}
	var out []sink.Format
	for _, f := range []string{Parquet, JSON, CSV} {
		out = append(out, sink.Format{
			Name: f, Summary: summaries[f], Options: Specs[f],
			OutputModes: []string{sink.Append}, Idempotent: true, NeedsCheckpoint: true,
			Validate: func(v options.Values) error {
				_, err := parseOptions(f, v)
				return err
			},
			Open: func(v options.Values, env sink.Env) (sink.Sink, error) {
				cfg, err := parseOptions(f, v)
				if err != nil {
					return nil, err
				}
				s, err := open(cfg, owner{queryID: env.QueryID, resumed: env.Resumed, allowNew: v.Bool(OptAllowNewQuery)}, WithResolver(env.Storage), WithGroup(env.Group, env.Member))
				if err != nil {
					return nil, err
				}
				s.SetLogger(env.Logger)
				if err := cfg.Vacuum.Run(s.Root(), env.Logger, Vacuum); err != nil {
					return nil, fmt.Errorf("file sink: %w", err)
				}
				return s, nil
			},
		})
	}
	return out
}

// Config is a parsed set of file sink options.
type Config struct {
	Format string
	// Path is the output directory: an absolute local path, or a URI of
	// an object store (abfss://…, s3a://…; see package storage).
	Path              string
	PartitionBy       []string
	Compression       string // canonical name
	Header            bool
	Sep               string
	MaxRecordsPerFile int64
	RowGroupBytes     int64
	TargetFileSize    int64
	// Vacuum is the start-up vacuum (sluice.vacuumOnStart).
	Vacuum StartVacuum
}

// ParseOptions parses and checks the options of a sink writing format.
// The query's options (checkpointLocation and the like, sink.QueryOptions)
// are accepted and ignored.
func ParseOptions(format string, opts map[string]string) (Config, error) {
	f := strings.ToLower(strings.TrimSpace(format))
	spec, ok := Specs[f]
	if !ok {
		return Config{}, &options.Error{Option: "format", Value: format, Allowed: "allowed: parquet, json, csv"}
	}
	v, err := spec.Read(opts, sink.QueryOptions)
	if err != nil {
		return Config{}, err
	}
	return parseOptions(f, v)
}

// parseOptions reads options checked against Specs[f].
func parseOptions(f string, o options.Values) (Config, error) {
	c := Config{Format: f}
	p, ok := o.Get(OptPath)
	if !ok || strings.TrimSpace(p) == "" {
		return Config{}, &options.Error{Option: OptPath, Allowed: "required: the output directory"}
	}
	loc, err := storage.ParseLocation(p)
	if err != nil {
		return Config{}, fmt.Errorf("option %q: %w", OptPath, err)
	}
	c.Path = loc.String()
	if c.PartitionBy, err = ParsePartitionBy(o.String(OptPartitionBy)); err != nil {
		return Config{}, err
	}
	c.Compression = o.Enum(OptCompression)
	c.MaxRecordsPerFile = o.Int64(OptMaxRecordsPerFile)
	if c.Vacuum, err = ParseStartVacuum(o); err != nil {
		return Config{}, err
	}
	c.Sep = ","
	switch f {
	case Parquet:
		c.RowGroupBytes = o.Int64(OptRowGroupBytes)
	case CSV:
		c.Header = o.Bool(OptHeader)
		c.Sep = o.String(OptSep)
		if c.Sep == "" || strings.ContainsAny(c.Sep, "\"\\\r\n") {
			return Config{}, &options.Error{Option: OptSep, Value: c.Sep, Allowed: "allowed: a non-empty separator without quotes, backslashes or line breaks"}
		}
	default:
		c.RowGroupBytes = parquetio.DefaultRowGroupBytes
	}
	if c.TargetFileSize = o.Size(OptTargetFileSize); c.TargetFileSize != 0 && c.TargetFileSize < 1<<10 {
		return Config{}, &options.Error{Option: OptTargetFileSize, Value: o.String(OptTargetFileSize), Allowed: `allowed: a size of at least 1KiB such as "128MiB", or 0 for no limit`}
	}
	return c, nil
}

// Option configures New.
type Option func(*openOptions)

type openOptions struct {
	resolver      *storage.Resolver
	group, member string
}

// WithGroup opens the sink as member member of consumer group group
// (group mode, group.go): its batches go to the group log, keyed by the
// source partitions they cover (UseGroup), and the query-writer records
// are not used (every member has a checkpoint, and a query id, of its
// own).
func WithGroup(group, member string) Option {
	return func(o *openOptions) { o.group, o.member = group, member }
}

// WithResolver resolves the output path with r (object-store URIs and
// their credentials). Without it, a URI is resolved with the
// environment's credentials only.
func WithResolver(r *storage.Resolver) Option { return func(o *openOptions) { o.resolver = r } }

// ResolveRoot returns the store of a sink's output path.
func ResolveRoot(path string, opts ...Option) (storage.Store, error) {
	var oo openOptions
	for _, o := range opts {
		o(&oo)
	}
	r := oo.resolver
	if r == nil {
		var err error
		if r, err = storage.NewResolver(nil); err != nil {
			return nil, err
		}
	}
	return r.Resolve(context.Background(), path)
}

// ParsePartitionBy splits a comma-separated partitionBy option.
func ParsePartitionBy(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, &options.Error{Option: OptPartitionBy, Value: s, Allowed: "allowed: comma-separated column names"}
		}
		for _, q := range out {
			if strings.EqualFold(p, q) {
				return nil, &options.Error{Option: OptPartitionBy, Value: s, Allowed: fmt.Sprintf("column %q is listed twice", p)}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// Sink is the file sink. Create it with New.
type Sink struct {
	cfg  Config
	root storage.Store // the output directory
	meta metaLog
	own  owner
	ext  string
	pq   parquetio.Options
	log  *slog.Logger

	mu     sync.Mutex
	latest int64          // highest log batch id seen, -1 if none
	recs   []writerRecord // the log's writer records, as last read

	// group and member are group mode's consumer group and member name
	// ("" otherwise); batches then go to the group log glog, with their
	// partition offsets from grp (group.go). gview is the group log as
	// last read.
	group, member string
	grp           GroupBatcher
	glog          metaLog
	gview         groupView
}

var _ sink.Sink = (*Sink)(nil)

// New returns a file sink writing format ("parquet", "json" or "csv")
// files. Options (names case-insensitive):
//
//	path                          output directory (required)
//	partitionBy                   comma-separated partition columns
//	compression                   parquet: snappy (default), zstd, gzip,
//	                              none, uncompressed; json/csv: none
//	                              (default), uncompressed, gzip
//	header                        csv: write a header line (default false)
//	sep                           csv: field separator (default ",")
//	maxRecordsPerFile             rows per file before starting a new one
//	                              (default 0: no limit)
//	sluice.parquet.rowGroupBytes  bytes a task buffers for Parquet row
//	                              groups before writing them out (default
//	                              64 MiB)
//	sluice.targetFileSize         start a new file once one holds about
//	                              this many bytes (default: no limit)
//
// The query's options (sink.QueryOptions: checkpointLocation and the like)
// are accepted and ignored. Any other option is an error. path may be an
// object-store URI (see package storage and WithResolver); a local output
// directory and its log directory are created.
//
// The sink is anonymous: its batch ids are the log's, whoever wrote them
// (Spark's behaviour). A query's sink (Formats' Open) records the query
// that writes the log and refuses another one (see OptAllowNewQuery).
func New(format string, opts map[string]string, o ...Option) (*Sink, error) {
	cfg, err := ParseOptions(format, opts)
	if err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	return open(cfg, owner{}, o...)
}

// open creates the output directory and its log, checks that the query
// may write it and returns the sink.
func open(cfg Config, own owner, o ...Option) (*Sink, error) {
	var err error
	s := &Sink{cfg: cfg, own: own, log: slog.Default()}
	var oo openOptions
	for _, opt := range o {
		opt(&oo)
	}
	if oo.group != "" {
		s.group, s.member = oo.group, oo.member
		s.own = owner{}
	}
	if s.root, err = ResolveRoot(cfg.Path, o...); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	if s.meta, err = openMetaLog(s.root); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	if s.glog, err = s.meta.groupLog(); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	switch cfg.Format {
	case Parquet:
		codec, infix, _ := parquetio.Codec(cfg.Compression)
		s.ext = infix + ".parquet"
		s.pq = parquetio.Options{Codec: codec, RowGroupBytes: cfg.RowGroupBytes}
	case JSON, CSV:
		s.ext = "." + cfg.Format
		if cfg.Compression == "gzip" {
			s.ext += ".gz"
		}
	}
	if dir, ok := storage.LocalRoot(s.meta.st); ok {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("file sink: creating %s: %w", dir, err)
		}
	}
	if s.latest, err = s.meta.latest(); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	if s.own.queryID != "" {
		if s.recs, err = s.meta.writers(); err != nil {
			return nil, fmt.Errorf("file sink: %w", err)
		}
		if err := s.own.checkStart(cfg.Path, s.recs, s.latest); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetLogger sets where the sink logs (slog.Default otherwise).
func (s *Sink) SetLogger(l *slog.Logger) { s.log = l }

// Config returns the sink's parsed options.
func (s *Sink) Config() Config { return s.cfg }

// Description implements sink.Sink: "FileSink[<path>]", as Spark's.
func (s *Sink) Description() string { return "FileSink[" + s.cfg.Path + "]" }

// StagedUntilCommit implements sink.Staged: tasks write data files under
// fresh names that only Commit's log entry lists.
func (s *Sink) StagedUntilCommit() bool { return true }

// Message is what a file sink task hands to Commit: the files it wrote.
type Message []WrittenFile

type writer struct {
	tw *TaskWriter
}

func (w *writer) Write(ctx context.Context, b *batch.Batch) error { return w.tw.Write(ctx, b) }

func (w *writer) Close(ctx context.Context) (sink.Message, error) {
	files, err := w.tw.Close(ctx)
	if err != nil {
		w.tw.Abort()
		return nil, err
	}
	return Message(files), nil
}

func (w *writer) Abort(context.Context) { w.tw.Abort() }

// StoreTime implements sink.StoreTimer.
func (w *writer) StoreTime() time.Duration { return w.tw.StoreTime() }

// skipWriter stands in for a task of a batch already in the log: it
// writes nothing.
type skipWriter struct{}

func (skipWriter) Write(context.Context, *batch.Batch) error   { return nil }
func (skipWriter) Close(context.Context) (sink.Message, error) { return Message(nil), nil }
func (skipWriter) Abort(context.Context)                       {}

// NewWriter implements sink.Sink. A task of a batch the log already holds
// writes nothing.
func (s *Sink) NewWriter(_ context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error) {
	s.mu.Lock()
	logID, owned := batchID, true
	if s.own.queryID != "" {
		logID, owned = s.own.slot(s.recs, batchID)
	}
	// Group mode: batch ids are the member's own, never replayed.
	done := owned && logID <= s.latest && s.group == ""
	s.mu.Unlock()
	if done {
		return skipWriter{}, nil
	}
	uuid := storage.NewUUID()
	tw, err := NewTaskWriter(TaskConfig{
		Store:       s.root,
		Format:      s.cfg.Format,
		Schema:      schema,
		PartitionBy: s.cfg.PartitionBy,
		FileName: func(seq int) string {
			return fmt.Sprintf("part-%05d-%s.c%03d%s", task, uuid, seq, s.ext)
		},
		Parquet:           s.pq,
		Gzip:              s.cfg.Compression == "gzip",
		CSVHeader:         s.cfg.Header,
		CSVSep:            s.cfg.Sep,
		MaxRecordsPerFile: s.cfg.MaxRecordsPerFile,
		TargetFileSize:    s.cfg.TargetFileSize,
	})
	if err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	return &writer{tw: tw}, nil
}

// messageFiles gathers the files of the tasks' messages.
func messageFiles(msgs []sink.Message) ([]WrittenFile, error) {
	var files []WrittenFile
	for i, m := range msgs {
		switch m := m.(type) {
		case nil:
		case Message:
			files = append(files, m...)
		default:
			return nil, fmt.Errorf("task %d: unexpected commit message %T", i, m)
		}
	}
	return files, nil
}

// Commit implements sink.Sink: it records the tasks' files as the log
// batch of batchID in the metadata log, atomically. A batch the log
// already holds (or one below its latest batch) is skipped, and the files
// this attempt wrote are deleted. The log batch is batchID itself for an
// anonymous sink; for a query's sink it comes from the query's writer
// record, created on its first commit.
func (s *Sink) Commit(ctx context.Context, batchID int64, msgs []sink.Message) error {
	files, err := messageFiles(msgs)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.group != "" {
		return s.commitGroup(ctx, batchID, files)
	}
	latest, err := s.meta.latest()
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	s.latest = max(s.latest, latest)
	logID, err := s.logBatch(batchID, latest)
	if err != nil {
		RemoveFiles(ctx, s.root, files)
		return err
	}
	if logID <= latest {
		s.skip(batchID, logID, latest, files)
		return nil
	}
	entries := make([]LogEntry, len(files))
	for i, f := range files {
		entries[i] = entryFor(f)
	}
	lf := logFile{id: logID, compact: isCompaction(logID)}
	if lf.compact {
		prev, _, err := s.meta.readOwn()
		if err != nil {
			return fmt.Errorf("file sink: compacting log: %w", err)
		}
		entries = append(prev, entries...)
	}
	ok, err := s.meta.write(lf.name(), entries)
	if ok {
		s.latest = logID
	}
	if err != nil {
		return fmt.Errorf("file sink: batch %d (log batch %d): %w", batchID, logID, err)
	}
	if !ok {
		// Another writer of this log batch: a zombie attempt of this
		// query, unless another query claimed the log meanwhile.
		if s.own.queryID != "" {
			if s.recs, err = s.meta.writers(); err != nil {
				return fmt.Errorf("file sink: %w", err)
			}
			if _, owned := s.own.slot(s.recs, batchID); !owned {
				RemoveFiles(ctx, s.root, files)
				return fmt.Errorf("file sink: log batch %d of %s was written by another query while this one (id %s) committed batch %d", logID, s.cfg.Path, s.own.queryID, batchID)
			}
		}
		s.skip(batchID, logID, logID, files)
		return nil
	}
	if lf.compact {
		s.deleteExpired(s.meta, logID)
	}
	return nil
}

// logBatch returns the log batch of batchID, creating the query's writer
// record when it has none covering the batch. latest is the log's latest
// batch; s.mu is held.
func (s *Sink) logBatch(batchID, latest int64) (int64, error) {
	if s.own.queryID == "" {
		return batchID, nil
	}
	recs, err := s.meta.writers()
	if err != nil {
		return 0, fmt.Errorf("file sink: %w", err)
	}
	s.recs = recs
	if l, owned := s.own.slot(recs, batchID); owned {
		return l, nil
	}
	r, err := s.own.claim(s.cfg.Path, recs, latest, batchID)
	if err != nil {
		return 0, err
	}
	ok, err := s.meta.putWriter(r)
	if err != nil {
		return 0, fmt.Errorf("file sink: recording query %s as the writer of %s: %w", s.own.queryID, s.cfg.Path, err)
	}
	if !ok {
		return 0, fmt.Errorf("file sink: another query claimed log batch %d of %s at the same time as this one (id %s)", r.FirstLogBatchID, s.cfg.Path, s.own.queryID)
	}
	s.recs = append(recs, r)
	if len(recs) > 0 || latest >= 0 {
		s.log.Info("recorded this query as the writer of the output: its batches continue the _spark_metadata log", "sink", s.Description(),
			"queryId", s.own.queryID, "batchId", batchID, "logBatchId", r.logID(batchID), "previousLatestLogBatchId", latest)
	}
	return r.logID(batchID), nil
}

// skip logs a replayed batch and deletes the files of this attempt.
func (s *Sink) skip(batchID, logID, latest int64, files []WrittenFile) {
	s.log.Info("Skipping already committed batch", "sink", s.Description(), "batchId", batchID, "logBatchId", logID, "latestBatchId", latest, "deletedFiles", len(files))
	if err := RemoveFiles(ctx, s.root, files); err != nil {
		s.log.Warn("cannot delete the files of a skipped batch; they are orphans no reader of the log sees", "sink", s.Description(), "err", err)
	}
	s.latest = max(s.latest, latest)
}

// deleteExpired removes log files made redundant by compactions: those of
// batches before the previous compaction (as Spark keeps one compaction
// interval of history for slow readers).
func (s *Sink) deleteExpired(m metaLog, compactID int64) {
	keepFrom := compactID - CompactInterval
	files, err := m.list()
	if err != nil {
		return
	}
	var names []string
	for _, l := range files {
		if l.id >= keepFrom {
			break
		}
		names = append(names, l.name())
	}
	if len(names) == 0 {
		return
	}
	if err := m.st.Delete(ctx, names...); err != nil {
		s.log.Warn("cannot delete expired metadata log files", "files", names, "err", err)
	}
}

// Close implements sink.Sink.
func (s *Sink) Close() error { return nil }

// SetMemoryBudget implements sink.Budgeted: on an object store a quarter
// of the query's memory budget (at least two blocks) bounds the upload
// buffers of the sink's writers; the bytes reserved are returned. The
// local disk needs no upload buffers.
func (s *Sink) SetMemoryBudget(budget int64) int64 {
	n, _ := storage.SetUploadMemory(s.root, budget/4)
	return n
}

// Root returns the store of the output directory.
func (s *Sink) Root() storage.Store { return s.root }

// LatestBatchID returns the highest batch id in the sink's log, or -1.
func (s *Sink) LatestBatchID() (int64, error) {
	return s.meta.latest()
}
