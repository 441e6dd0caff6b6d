package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/sparktext"
	"github.com/sluice-stream/sluice/internal/storage"
)

// CheckpointInterval is the number of commits between checkpoints, Delta's
// default for delta.checkpointInterval (a table may set its own).
const CheckpointInterval = 10

// maxCommitAttempts bounds how often Commit retries after losing the race
// for a version to another writer. Every lost race means another writer
// made progress, so the bound only stops a writer that is starved.
const maxCommitAttempts = 20

// ErrConcurrentWriter is returned (wrapped) when other writers kept taking
// the next table version for every attempt of a commit.
var ErrConcurrentWriter = errors.New("delta sink: concurrent writers kept winning the next table version")

// Option names (besides path and partitionBy).
const (
	OptCompression       = "compression"
	OptMaxRecordsPerFile = "maxRecordsPerFile"
	OptRowGroupBytes     = "sluice.parquet.rowGroupBytes"
)

// Spec describes the Delta sink's options.
var Spec = &options.Spec{What: "delta sink", Fields: []options.Field{
	{Name: file.OptPath, Type: options.Path, Required: true, Doc: "Table directory: a local path (created if missing), a `file://` URI, or an object-store URI (`abfss://container@account.dfs.core.windows.net/path`, `s3a://bucket/path`…; see docs/storage.md)."},
	{Name: file.OptPartitionBy, Type: options.List, Doc: "Comma-separated partition columns of a new table; for an existing table it must match the table's (or be left out)."},
	file.ParquetCompressionField,
	file.MaxRecordsPerFileField,
	file.RowGroupBytesField,
	file.TargetFileSizeField,
	file.AllowNewQueryField,
	file.VacuumOnStartField,
	file.VacuumRetentionField,
}}

// Format registers "delta".
var Format = sink.Format{
	Name:        "delta",
	Summary:     "a Delta Lake table: one commit per batch with a txn action keyed by the query id, so a replayed batch is skipped: exactly-once",
	Options:     Spec,
	OutputModes: []string{sink.Append, sink.Complete},
	Idempotent:  true, NeedsCheckpoint: true,
	Validate: func(v options.Values) error {
		_, err := parseOptions(v)
		return err
	},
	Open: func(v options.Values, env sink.Env) (sink.Sink, error) {
		c, err := parseOptions(v)
		if err != nil {
			return nil, err
		}
		c.group = env.Group
		s, err := open(c, env.QueryID, file.WithResolver(env.Storage))
		if err != nil {
			return nil, err
		}
		s.SetLogger(env.Logger)
		if err := c.vacuum.Run(s.Root(), env.Logger, Vacuum); err != nil {
			return nil, fmt.Errorf("delta sink: %w", err)
		}
		return s, nil
	},
}

// config is the parsed options.
type config struct {
	path        string
	partitionBy []string
	compression string
	maxRecords  int64
	rowGroup    int64
	targetSize  int64
	allowNew    bool
	group       string
	vacuum      file.StartVacuum
}

func parseOptions(o options.Values) (config, error) {
	p, ok := o.Get(file.OptPath)
	if !ok || strings.TrimSpace(p) == "" {
		return config{}, fmt.Errorf("delta sink: %w", &options.Error{Option: file.OptPath, Allowed: "required: the table directory"})
	}
	loc, err := storage.ParseLocation(p)
	if err != nil {
		return config{}, fmt.Errorf("delta sink: option %q: %w", file.OptPath, err)
	}
	c := config{path: loc.String(), compression: o.Enum(OptCompression), maxRecords: o.Int64(OptMaxRecordsPerFile), rowGroup: o.Int64(OptRowGroupBytes),
		targetSize: o.Size(file.OptTargetFileSize), allowNew: o.Bool(file.OptAllowNewQuery)}
	if c.targetSize != 0 && c.targetSize < 1<<10 {
		return config{}, fmt.Errorf("delta sink: %w", &options.Error{Option: file.OptTargetFileSize, Value: o.String(file.OptTargetFileSize), Allowed: `allowed: a size of at least 1KiB such as "128MiB", or 0 for no limit`})
	}
	if c.partitionBy, err = file.ParsePartitionBy(o.String(file.OptPartitionBy)); err != nil {
		return config{}, fmt.Errorf("delta sink: %w", err)
	}
	if c.vacuum, err = file.ParseStartVacuum(o); err != nil {
		return config{}, fmt.Errorf("delta sink: %w", err)
	}
	return c, nil
}

// Sink writes a Delta table. Create it with New.
type Sink struct {
	path        string        // the table's absolute path or URI
	root        storage.Store // the table directory
	dlog        deltaLog
	queryID     string
	partitionBy []string // as given; nil means "the table's"
	pq          parquetio.Options
	ext         string
	maxRecords  int64
	targetSize  int64
	maxAttempts int
	log         *slog.Logger
	now         func() time.Time
	// group is group mode's consumer group (sink.Env.Group), "" otherwise;
	// batches then come from grp (UseGroup, group.go).
	group string
	grp   GroupBatcher

	mu     sync.Mutex
	st     *state        // replayed log, refreshed before each commit
	schema *batch.Schema // schema of the rows written (from NewWriter)

	// beforePut, when set (tests), runs just before a commit file is
	// created for version v.
	beforePut func(v int64)
}

var _ sink.Sink = (*Sink)(nil)

// New returns a Delta sink for the table at option path; queryID is the
// streaming query's id, recorded as the txn appId that makes batches
// idempotent. Options (names case-insensitive):
//
//	path                          table directory (required)
//	partitionBy                   comma-separated partition columns; for
//	                              an existing table it must match the
//	                              table's (or be left out)
//	compression                   snappy (default), zstd, gzip, none
//	maxRecordsPerFile             rows per data file (default 0: no limit)
//	sluice.parquet.rowGroupBytes  Parquet row-group bound (default 64 MiB)
//	sluice.targetFileSize         start a new data file once one holds
//	                              about this many bytes (default: no limit)
//
// The query's options (sink.QueryOptions) are accepted and ignored. path
// may be an object-store URI (abfss://…, s3a://…; see package storage,
// and file.WithResolver for credentials). An existing log is read now, so
// a table that sluice cannot write (newer protocol, other partitioning)
// fails here.
func New(opts map[string]string, queryID string, fo ...file.Option) (*Sink, error) {
	v, err := Spec.Read(opts, sink.QueryOptions)
	if err != nil {
		return nil, fmt.Errorf("delta sink: %w", err)
	}
	c, err := parseOptions(v)
	if err != nil {
		return nil, err
	}
	return open(c, queryID, fo...)
}

// open reads (or creates) the table and returns the sink.
func open(c config, queryID string, fo ...file.Option) (*Sink, error) {
	if strings.TrimSpace(queryID) == "" {
		return nil, errors.New("delta sink: a query id is required")
	}
	s := &Sink{path: c.path, queryID: queryID, log: slog.Default(), now: time.Now, partitionBy: c.partitionBy,
		maxRecords: c.maxRecords, targetSize: c.targetSize, maxAttempts: maxCommitAttempts, group: c.group}
	var err error
	if s.root, err = file.ResolveRoot(c.path, fo...); err != nil {
		return nil, fmt.Errorf("delta sink: %w", err)
	}
	if s.dlog, err = openDeltaLog(s.root); err != nil {
		return nil, fmt.Errorf("delta sink: %w", err)
	}
	codec, infix, _ := parquetio.Codec(c.compression)
	s.ext = infix + ".parquet"
	s.pq = parquetio.Options{Codec: codec, RowGroupBytes: c.rowGroup}
	if dir, ok := storage.LocalRoot(s.root); ok {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("delta sink: creating %s: %w", dir, err)
		}
	}
	if s.st, err = s.dlog.load(true); err != nil {
		return nil, fmt.Errorf("delta sink: %w", err)
	}
	if err := s.checkTable(s.st, nil); err != nil {
		return nil, err
	}
	if !c.allowNew && c.group == "" { // group mode: the members share the table by partition (group.go)
		if err := s.checkWriter(s.st); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetMemoryBudget implements sink.Budgeted: on an object store a quarter
// of the query's memory budget (at least two blocks) bounds the upload
// buffers of the sink's writers; the bytes reserved are returned.
func (s *Sink) SetMemoryBudget(budget int64) int64 {
	n, _ := storage.SetUploadMemory(s.root, budget/4)
	return n
}

// Root returns the store of the table directory.
func (s *Sink) Root() storage.Store { return s.root }

// checkWriter refuses a query that is not one of the table's streaming
// writers (no txn under its id) when the table has some: a new checkpoint
// on a table another query fills would re-read its source from the
// starting offsets and write the rows again. Tables without txn actions
// (written by batch jobs) are open to any query.
func (s *Sink) checkWriter(st *state) error {
	if len(st.txns) == 0 {
		return nil
	}
	if _, ok := st.txns[s.queryID]; ok {
		return nil
	}
	var last txnAction
	for _, t := range st.txns {
		if last.AppID == "" || updated(t) > updated(last) || (updated(t) == updated(last) && t.AppID < last.AppID) {
			last = t
		}
	}
	others := ""
	if n := len(st.txns) - 1; n > 0 {
		others = fmt.Sprintf(" and %d other(s)", n)
	}
	return fmt.Errorf("delta sink: table %s was written by streaming query %s%s (txn appId, batch %d at table version %d); this query's id is %s (a new checkpoint?). "+
		"Restart query %s with its own checkpoint, write to another table, or set %s=true to add this query as another writer of the table",
		s.path, last.AppID, others, last.Version, st.version, s.queryID, last.AppID, file.OptAllowNewQuery)
}

func updated(t txnAction) int64 {
	if t.LastUpdated == nil {
		return 0
	}
	return *t.LastUpdated
}

// SetLogger sets where the sink logs (slog.Default otherwise).
func (s *Sink) SetLogger(l *slog.Logger) { s.log = l }

// Description implements sink.Sink: "DeltaSink[<path>]".
func (s *Sink) Description() string { return "DeltaSink[" + s.path + "]" }

// StagedUntilCommit implements sink.Staged: tasks write data files under
// fresh names that only Commit's log entry adds to the table.
func (s *Sink) StagedUntilCommit() bool { return true }

// Close implements sink.Sink.
func (s *Sink) Close() error { return nil }

// checkTable checks that sluice may append to the table in st with rows
// of schema (nil: not known yet) and the configured partitioning.
func (s *Sink) checkTable(st *state, schema *batch.Schema) error {
	if p := st.protocol; p != nil && (p.MinWriterVersion > 2 || p.MinReaderVersion > 1) {
		return fmt.Errorf("delta sink: table %s needs reader version %d / writer version %d; sluice writes reader 1 / writer 2 tables only",
			s.path, p.MinReaderVersion, p.MinWriterVersion)
	}
	if st.meta == nil {
		return nil // no table yet
	}
	if s.partitionBy != nil && !equalFoldSlices(s.partitionBy, st.meta.PartitionColumns) {
		return fmt.Errorf("delta sink: partitionBy %v does not match the partition columns %v of table %s",
			s.partitionBy, st.meta.PartitionColumns, s.path)
	}
	tableFields, err := parseSchema(st.meta.SchemaString)
	if err != nil {
		return fmt.Errorf("delta sink: table %s: %w", s.path, err)
	}
	for _, tf := range tableFields {
		if tf.invariants {
			return fmt.Errorf("delta sink: column %q of table %s has delta.invariants, which sluice cannot enforce", tf.name, s.path)
		}
	}
	if schema == nil {
		return nil
	}
	return compareSchema(s.path, tableFields, *schema)
}

// partitionColumns returns the partition columns new files use.
func (s *Sink) partitionColumns(st *state) []string {
	if st.meta != nil {
		return st.meta.PartitionColumns
	}
	return s.partitionBy
}

type writer struct {
	tw *file.TaskWriter
}

func (w *writer) Write(ctx context.Context, b *batch.Batch) error { return w.tw.Write(ctx, b) }

func (w *writer) Close(ctx context.Context) (sink.Message, error) {
	files, err := w.tw.Close(ctx)
	if err != nil {
		w.tw.Abort()
		return nil, err
	}
	return file.Message(files), nil
}

func (w *writer) Abort(context.Context) { w.tw.Abort() }

// StoreTime implements sink.StoreTimer.
func (w *writer) StoreTime() time.Duration { return w.tw.StoreTime() }

type skipWriter struct{}

func (skipWriter) Write(context.Context, *batch.Batch) error   { return nil }
func (skipWriter) Close(context.Context) (sink.Message, error) { return file.Message(nil), nil }
func (skipWriter) Abort(context.Context)                       {}

// NewWriter implements sink.Sink. It checks the schema against the table;
// a task of a batch the table already has (by txn) writes nothing.
func (s *Sink) NewWriter(_ context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error) {
	s.mu.Lock()
	st := s.st
	if err := s.checkTable(st, &schema); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	sc := schema
	s.schema = &sc
	parts := s.partitionColumns(st)
	done := false
	if t, ok := st.txns[s.queryID]; ok && t.Version >= batchID {
		done = true
	}
	s.mu.Unlock()
	if done {
		return skipWriter{}, nil
	}
	uuid := storage.NewUUID()
	tw, err := file.NewTaskWriter(file.TaskConfig{
		Store:       s.root,
		Format:      file.Parquet,
		Schema:      schema,
		PartitionBy: parts,
		FileName: func(seq int) string {
			return fmt.Sprintf("part-%05d-%s-c%03d%s", task, uuid, seq, s.ext)
		},
		Parquet:           s.pq,
		MaxRecordsPerFile: s.maxRecords,
		TargetFileSize:    s.targetSize,
	})
	if err != nil {
		return nil, fmt.Errorf("delta sink: %w", err)
	}
	return &writer{tw: tw}, nil
}

// refresh brings the cached log state up to date, replaying from scratch
// if the incremental update fails.
func (s *Sink) refresh() error {
	if err := s.st.update(s.dlog); err == nil {
		return nil
	}
	st, err := s.dlog.load(true)
	if err != nil {
		return fmt.Errorf("delta sink: %w", err)
	}
	s.st = st
	return nil
}

// Commit implements sink.Sink: it adds the tasks' files to the table as
// its next version, together with txn(queryID, batchID), unless the
// table's txn for the query already reached batchID. Losing the race for
// a version to another writer re-reads the log and retries with the next
// version, up to a few times.
func (s *Sink) Commit(ctx context.Context, batchID int64, msgs []sink.Message) error {
	var files []file.WrittenFile
	for i, m := range msgs {
		switch m := m.(type) {
		case nil:
		case file.Message:
			files = append(files, m...)
		default:
			return fmt.Errorf("delta sink: task %d: unexpected commit message %T", i, m)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	committed := false
	defer func() {
		if !committed {
			if err := file.RemoveFiles(ctx, s.root, files); err != nil {
				s.log.Warn("cannot delete the data files of a batch that was not committed; they are orphans no reader of the log sees", "sink", s.Description(), "err", err)
			}
		}
	}()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.refresh(); err != nil {
			return err
		}
		st := s.st
		if t, ok := st.txns[s.queryID]; ok && t.Version >= batchID {
			s.log.Info("Skipping already committed batch", "sink", s.Description(), "batchId", batchID,
				"txnVersion", t.Version, "tableVersion", st.version, "deletedFiles", len(files))
			return nil
		}
		if st.meta == nil && s.schema == nil {
			return nil // no table and nothing written: nothing to record
		}
		if len(files) == 0 && s.group != "" && len(s.groupTxns(0)) == 0 {
			return nil // group mode: no partition moved, nothing written
		}
		if err := s.checkTable(st, s.schema); err != nil {
			return err
		}
		if err := s.checkGroupBatch(st); err != nil {
			return err
		}
		actions, err := s.actions(st, batchID, files)
		if err != nil {
			return err
		}
		data, err := encodeActions(actions)
		if err != nil {
			return err
		}
		version := st.version + 1
		if s.beforePut != nil {
			s.beforePut(version)
		}
		err = s.dlog.putCommit(version, data)
		if err == nil {
			committed = true
			s.applyOwn(actions, version)
			return nil
		}
		if !errors.Is(err, storage.ErrExist) {
			// The commit may have landed (storage's unknown outcome): keep
			// the files it would list; the next refresh reads the log.
			committed = true
			return fmt.Errorf("delta sink: committing version %d: %w", version, err)
		}
		if attempt >= s.maxAttempts {
			return fmt.Errorf("%w: batch %d, last tried version %d, %d attempts", ErrConcurrentWriter, batchID, version, attempt)
		}
		s.log.Info("delta table version taken by another writer; retrying", "sink", s.Description(), "version", version, "attempt", attempt)
	}
}

// actions builds the commit of batchID on top of st.
func (s *Sink) actions(st *state, batchID int64, files []file.WrittenFile) ([]action, error) {
	now := s.now().UnixMilli()
	var out []action
	out = append(out, action{CommitInfo: &commitInfoAction{
		Timestamp: now,
		Operation: "STREAMING UPDATE",
		OperationParameters: map[string]string{
			"outputMode": "Append",
			"queryId":    s.queryID,
			"epochId":    strconv.FormatInt(batchID, 10),
		},
		IsBlindAppend: true,
		EngineInfo:    "sluice",
	}})
	parts := s.partitionColumns(st)
	if st.meta == nil {
		schemaString, err := dataSchemaString(*s.schema)
		if err != nil {
			return nil, fmt.Errorf("delta sink: %w", err)
		}
		if parts == nil {
			parts = []string{}
		}
		canon := make([]string, len(parts))
		for i, p := range parts { // the schema's spelling
			j := s.schema.Index(p)
			if j < 0 {
				return nil, fmt.Errorf("delta sink: partition column %q is not in the schema %s", p, s.schema)
			}
			canon[i] = s.schema.Fields[j].Name
		}
		out = append(out,
			action{Protocol: &protocolAction{MinReaderVersion: 1, MinWriterVersion: 2}},
			action{MetaData: &metaDataAction{
				ID:               storage.NewUUID(),
				Format:           formatSpec{Provider: "parquet", Options: map[string]string{}},
				SchemaString:     schemaString,
				PartitionColumns: canon,
				Configuration:    map[string]string{},
				CreatedTime:      &now,
			}})
		parts = canon
	}
	if s.group != "" {
		out = append(out, s.groupTxns(now)...)
	} else {
		out = append(out, action{Txn: &txnAction{AppID: s.queryID, Version: batchID, LastUpdated: &now}})
	}
	for _, f := range files {
		add, err := s.addFor(f, parts)
		if err != nil {
			return nil, err
		}
		out = append(out, action{Add: add})
	}
	return out, nil
}

// addFor describes a written file as an add action.
func (s *Sink) addFor(f file.WrittenFile, parts []string) (*addAction, error) {
	if len(f.Partition) != len(parts) {
		return nil, fmt.Errorf("delta sink: file %s has %d partition values, table has %d partition columns", f.Rel, len(f.Partition), len(parts))
	}
	pv := make(map[string]*string, len(parts))
	for i, p := range f.Partition {
		if !strings.EqualFold(p.Name, parts[i]) {
			return nil, fmt.Errorf("delta sink: file %s is partitioned by %q, table by %q", f.Rel, p.Name, parts[i])
		}
		if v, ok := partitionString(p); ok {
			pv[parts[i]] = &v
		} else {
			pv[parts[i]] = nil
		}
	}
	var stats string
	if s.schema != nil {
		stats = statsJSON(dataFields(*s.schema, parts), f.Rows, f.Stats)
	}
	return &addAction{
		Path:             (&url.URL{Path: f.Rel}).EscapedPath(),
		PartitionValues:  pv,
		Size:             f.Size,
		ModificationTime: f.ModTime,
		DataChange:       true,
		Stats:            stats,
	}, nil
}

// partitionString serialises a partition value as PROTOCOL.md says:
// like Spark's directory values, except that timestamps with a fraction
// carry all six microsecond digits ("1970-01-01 00:00:00.123456", UTC).
func partitionString(p file.PartitionValue) (string, bool) {
	if p.Kind == batch.Timestamp && !p.Null {
		return string(sparktext.AppendTimestampMicros(nil, p.Int, time.UTC)), true
	}
	return p.String()
}

// applyOwn records our own successful commit in the cached state and
// writes a checkpoint when the version calls for one.
func (s *Sink) applyOwn(actions []action, version int64) {
	for _, a := range actions {
		s.st.apply(actionIn{Protocol: a.Protocol, MetaData: a.MetaData, Txn: a.Txn, Add: a.Add, Remove: a.Remove})
	}
	s.st.version = version
	interval := int64(CheckpointInterval)
	if v, err := strconv.ParseInt(s.st.meta.Configuration["delta.checkpointInterval"], 10, 64); err == nil && v > 0 {
		interval = v
	}
	if version > 0 && version%interval == 0 {
		if err := s.dlog.writeCheckpoint(s.st, s.now()); err != nil {
			s.log.Warn("delta checkpoint failed; the table stays readable from its JSON log", "sink", s.Description(), "version", version, "err", err)
		}
	}
}

// dataFields returns the schema's fields minus the partition columns: the
// columns stored in data files.
func dataFields(schema batch.Schema, parts []string) []batch.Field {
	out := make([]batch.Field, 0, len(schema.Fields))
	for _, f := range schema.Fields {
		if !containsFold(parts, f.Name) {
			out = append(out, f)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func equalFoldSlices(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// dataSchemaString is the table schema for rows of schema: Spark's JSON
// StructType with every column nullable, as Delta stores new tables.
func dataSchemaString(schema batch.Schema) (string, error) {
	return parquetio.SparkSchemaJSON(schema.Fields, true)
}

// tableField is one top-level column of a table schema.
type tableField struct {
	name       string
	typ        string // canonical JSON of the type
	invariants bool
}

// parseSchema reads a schemaString's top-level fields.
func parseSchema(schemaString string) ([]tableField, error) {
	var st struct {
		Type   string `json:"type"`
		Fields []struct {
			Name     string          `json:"name"`
			Type     json.RawMessage `json:"type"`
			Metadata map[string]any  `json:"metadata"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemaString), &st); err != nil {
		return nil, fmt.Errorf("bad schemaString: %w", err)
	}
	if st.Type != "struct" {
		return nil, fmt.Errorf("bad schemaString: type %q, want struct", st.Type)
	}
	out := make([]tableField, len(st.Fields))
	for i, f := range st.Fields {
		var t any
		if err := json.Unmarshal(f.Type, &t); err != nil {
			return nil, fmt.Errorf("bad schemaString: column %q: %w", f.Name, err)
		}
		_, inv := f.Metadata["delta.invariants"]
		out[i] = tableField{name: f.Name, typ: canonType(t), invariants: inv}
	}
	return out, nil
}

// canonType renders a schema type without nullability flags and
// metadata, which do not decide whether data fits.
func canonType(t any) string {
	var strip func(v any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			m := map[string]any{}
			for k, x := range v {
				switch k {
				case "nullable", "containsNull", "valueContainsNull", "metadata":
					continue
				}
				m[k] = strip(x)
			}
			return m
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				out[i] = strip(x)
			}
			return out
		}
		return v
	}
	b, _ := json.Marshal(strip(t))
	return string(b)
}

// compareSchema checks that rows of schema can be appended to a table with
// fields: every column must exist in the table (matched by name,
// case-insensitively) with the same type; table columns the rows lack are
// read as null, as Delta allows.
func compareSchema(path string, table []tableField, schema batch.Schema) error {
	ours, err := parseSchema(mustSchemaString(schema))
	if err != nil {
		return fmt.Errorf("delta sink: %w", err)
	}
	var problems []string
	for _, f := range ours {
		var match *tableField
		for i := range table {
			if strings.EqualFold(table[i].name, f.name) {
				match = &table[i]
				break
			}
		}
		switch {
		case match == nil:
			problems = append(problems, fmt.Sprintf("column %q is not in the table", f.name))
		case match.typ != f.typ:
			problems = append(problems, fmt.Sprintf("column %q is %s in the data but %s in the table", f.name, f.typ, match.typ))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("delta sink: schema mismatch with table %s: %s", path, strings.Join(problems, "; "))
	}
	return nil
}

func mustSchemaString(schema batch.Schema) string {
	s, err := dataSchemaString(schema)
	if err != nil {
		// void columns: report them by name through the table check
		return `{"type":"struct","fields":[]}`
	}
	return s
}
