package file

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/ddl"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/sparktext"
	"github.com/sluice-stream/sluice/internal/storage"
)

// FormatNames lists the file formats the source reads.
var FormatNames = []string{"text", "json", "csv"}

// Parse modes for malformed records (Spark's "mode" option).
const (
	Permissive    = "PERMISSIVE"
	DropMalformed = "DROPMALFORMED"
	FailFast      = "FAILFAST"
)

// Clean-source policies (Spark's "cleanSource" option).
const (
	CleanOff     = "off"
	CleanArchive = "archive"
	CleanDelete  = "delete"
)

// DefaultCorruptColumn is Spark's default columnNameOfCorruptRecord.
const DefaultCorruptColumn = "_corrupt_record"

// commonFields are the options of every file format.
var commonFields = []options.Field{
	{Name: "path", Type: options.Path, Required: true, Doc: "Directory, file or glob pattern to read (`*`, `?`, `[a-z]`, `{a,b}`); `file:` URIs are accepted, and object-store URIs (`abfss://container@account.dfs.core.windows.net/dir/*.json`, `s3a://bucket/dir`…; see docs/storage.md)."},
	{Name: "schema", Type: options.DDL, Doc: "Row schema as DDL, e.g. `id INT, name STRING, ts TIMESTAMP`. Required for json and csv unless inferSchema=true; text reads one STRING column."},
	{Name: "maxFilesPerTrigger", Type: options.Int, Min: 1, Doc: "Caps the files admitted per batch. Unset: every new file."},
	{Name: "maxBytesPerTrigger", Type: options.Int, Min: 1, Doc: "Caps the bytes admitted per batch (a whole file at least); not together with maxFilesPerTrigger."},
	{Name: "latestFirst", Type: options.Bool, Default: "false", Doc: "Reads the newest files first (then maxFileAge is ignored when a per-trigger limit is set, as in Spark)."},
	{Name: "maxFileAge", Type: options.Duration, Default: "7d", Doc: "Ignores files older than this relative to the newest file seen."},
	{Name: "fileNameOnly", Type: options.Bool, Default: "false", Doc: "Recognises files seen before by name only, not full path."},
	{Name: "cleanSource", Type: options.Enum, Default: CleanOff, Allowed: []string{CleanOff, CleanArchive, CleanDelete}, Doc: "What to do with a file once read: keep it, move it to sourceArchiveDir (keeping its path below it), or delete it. As in Spark, a batch's files are cleaned one batch later (when the next batch commits; the last batch's at the first commit after a restart); best effort."},
	{Name: "sourceArchiveDir", Type: options.Path, Doc: "Where cleanSource=archive moves files (outside the source path; an object-store URI when the path is one: files are copied, then deleted)."},
	{Name: "pathGlobFilter", Type: options.String, Doc: "Glob pattern file names must match, e.g. `*.json`."},
	{Name: "recursiveFileLookup", Type: options.Bool, Default: "false", Doc: "Reads every file under the directories the path matches; otherwise, as in Spark, only their own files and those of their key=value partition directories (a glob such as `dir/*/*` matches exactly two levels). Turns partition discovery off."},
	{Name: "basePath", Type: options.Path, Doc: "Where partition discovery starts: key=value directories between it and a file become columns after the data columns. Default, as Spark: the path when it is a directory; with a glob, each matched directory (so `dir/*` finds no columns in `dir/k=1/…` unless basePath is `dir`). Every file read must be under it (Spark's \"Wrong basePath\")."},
	{Name: "modifiedBefore", Unsupported: "not supported by streaming file sources (as in Spark); use maxFileAge", Doc: "Batch-only in Spark."},
	{Name: "modifiedAfter", Unsupported: "not supported by streaming file sources (as in Spark); use maxFileAge", Doc: "Batch-only in Spark."},
	{Name: "encoding", Type: options.String, Default: "UTF-8", Allowed: []string{"UTF-8"}, Doc: "Character set of the files; only UTF-8."},
	{Name: "charset", Type: options.String, Default: "UTF-8", Allowed: []string{"UTF-8"}, Doc: "Alias of encoding."},
	{Name: "lineSep", Type: options.String, DefaultDoc: `\n (with an optional preceding \r)`, Doc: "Record separator; escapes such as \\t and \\u0001 are understood."},
	{Name: "multiLine", Type: options.Bool, Default: "false", Hint: "allowed: false (multi-line records are not supported yet)", Doc: "Records spanning lines are not supported yet; only false."},
}

// recordFields are the options of the json and csv formats.
var recordFields = []options.Field{
	{Name: "inferSchema", Type: options.Bool, Default: "false", Doc: "Infers the schema from the files present at start when no schema is given."},
	{Name: "mode", Type: options.Enum, Default: Permissive, Allowed: []string{Permissive, DropMalformed, FailFast},
		Doc: "What a malformed record does: kept with nulls and counted (and put in the corrupt-record column), dropped and counted, or fails the query."},
	{Name: "columnNameOfCorruptRecord", Type: options.String, Default: DefaultCorruptColumn, Doc: "Column (a nullable STRING in the schema) that receives malformed records' text in PERMISSIVE mode."},
	{Name: "timestampFormat", Type: options.String, DefaultDoc: "lenient ISO 8601", Doc: "Java DateTimeFormatter pattern for timestamps, e.g. `yyyy-MM-dd HH:mm:ss`."},
	{Name: "dateFormat", Type: options.String, DefaultDoc: "lenient ISO 8601", Doc: "Java DateTimeFormatter pattern for dates."},
	{Name: "timeZone", Type: options.String, Default: "UTC", Doc: "IANA zone for values without one, e.g. `Europe/Paris`."},
}

// csvFields are the options of the csv format only.
var csvFields = []options.Field{
	{Name: "header", Type: options.Bool, Default: "false", Doc: "The first line of each file is a header and is skipped."},
	{Name: "sep", Type: options.String, Default: ",", Doc: "Field separator (escapes such as \\t understood)."},
	{Name: "delimiter", Type: options.String, Default: ",", Doc: "Alias of sep."},
	{Name: "quote", Type: options.String, Default: `"`, Doc: "Quote character; empty turns quoting off."},
	{Name: "escape", Type: options.String, Default: `\`, Doc: "Escape character inside quotes; empty turns escaping off."},
	{Name: "comment", Type: options.String, Doc: "Lines starting with this character are skipped."},
	{Name: "nullValue", Type: options.String, DefaultDoc: "the empty string", Doc: "Text that reads as NULL."},
	{Name: "nanValue", Type: options.String, Default: "NaN", Doc: "Text that reads as a double NaN."},
	{Name: "positiveInf", Type: options.String, Default: "Inf", Doc: "Text that reads as positive infinity."},
	{Name: "negativeInf", Type: options.String, Default: "-Inf", Doc: "Text that reads as negative infinity."},
	{Name: "enforceSchema", Type: options.Bool, Default: "true", Hint: "allowed: true (columns are matched by position)", Doc: "Columns are matched by position; only true."},
}

// Specs describe each file format's options.
var Specs = map[string]*options.Spec{
	"text": {What: "text file source", Fields: slices.Concat(commonFields,
		[]options.Field{{Name: "wholetext", Type: options.Bool, Default: "false", Doc: "Reads each file as one row instead of one row per line."}})},
	"json": {What: "json file source", Fields: slices.Concat(commonFields, recordFields)},
	"csv":  {What: "csv file source", Fields: slices.Concat(commonFields, recordFields, csvFields)},
}

// Formats registers "text", "json" and "csv".
func Formats() []source.Format {
	summaries := map[string]string{
		"text": "lines of new files under a path, one row per line (or per file with wholetext)",
		"json": "JSON Lines files under a path, parsed with a DDL schema",
		"csv":  "CSV files under a path, parsed with a DDL schema",
	}
	schemas := map[string]string{
		"text": "`value string`",
		"json": "the `schema` option (DDL), or inferred from the files present at start with inferSchema=true",
		"csv":  "the `schema` option (DDL), or inferred from the files present at start with inferSchema=true",
	}
	out := make([]source.Format, 0, len(FormatNames))
	for _, f := range FormatNames {
		out = append(out, source.Format{
			Name: f, Summary: summaries[f], Options: Specs[f], SchemaDoc: schemas[f], Replayable: true,
			Schema: func(v options.Values, env source.Env) (batch.Schema, error) {
				cfg, err := parseConfig(f, v)
				if err != nil {
					return batch.Schema{}, err
				}
				return schemaOf(cfg, WithResolver(env.Storage), WithSessionConf(env.Conf))
			},
			Open: func(v options.Values, env source.Env) (source.Source, error) {
				cfg, err := parseConfig(f, v)
				if err != nil {
					return nil, err
				}
				return open(cfg, env.State, env.Logger, WithResolver(env.Storage), WithSessionConf(env.Conf))
			},
		})
	}
	return out
}

// Config is the parsed, validated file source configuration.
type Config struct {
	Format string
	// Path is the absolute path or glob pattern ({a,b} alternatives
	// allowed) the source lists, or such a pattern as an object-store URI
	// (abfss://…, s3a://…).
	Path string
	// remote is set when Path is on an object store.
	remote bool
	// Schema is the row schema; for text it is value: string.
	Schema batch.Schema
	// CorruptIndex is the position of the corrupt-record column in Schema,
	// or -1.
	CorruptIndex int
	// CorruptColumn is columnNameOfCorruptRecord.
	CorruptColumn string
	Mode          string

	MaxFilesPerTrigger int64
	MaxBytesPerTrigger int64
	LatestFirst        bool
	// MaxFileAge bounds how much older than the newest seen file a new
	// file may be; 0 means no bound (it is ignored with latestFirst plus a
	// per-trigger limit, as in Spark).
	MaxFileAge     time.Duration
	FileNameOnly   bool
	CleanSource    string
	ArchiveDir     string
	PathGlobFilter string
	// RecursiveFileLookup reads everything under matched directories and
	// turns partition discovery off.
	RecursiveFileLookup bool
	// BasePath is where partition discovery starts ("" = the default).
	BasePath string
	// Partitions are the discovered partition columns (schemaOf, open),
	// appended to Schema for the rows.
	Partitions []PartitionColumn
	// PartitionTypeInference is Spark's
	// spark.sql.sources.partitionColumnTypeInference.enabled (default
	// true): off, every partition column is a STRING.
	PartitionTypeInference bool

	// Text.
	WholeText bool
	// LineSep is the record separator; "" means \n with an optional
	// preceding \r.
	LineSep string

	// CSV.
	Header      bool
	Sep         string
	Quote       byte // 0: no quoting
	Escape      byte // 0: no escaping
	Comment     byte // 0: no comment lines
	NullValue   string
	NaNValue    string
	PositiveInf string
	NegativeInf string

	// Timestamps and dates; empty layouts mean Spark's lenient default
	// parsing. Location applies to values without a zone.
	TimestampLayout string
	DateLayout      string
	Location        *time.Location
}

// ParseConfig validates the options of a file source in format (text,
// json or csv). It does no I/O.
func ParseConfig(format string, m map[string]string) (*Config, error) {
	f := strings.ToLower(strings.TrimSpace(format))
	spec, ok := Specs[f]
	if !ok {
		return nil, fmt.Errorf("file source: unknown format %q (allowed: %s; parquet is not supported yet)", format, strings.Join(FormatNames, ", "))
	}
	v, err := spec.Read(m)
	if err != nil {
		return nil, err
	}
	return parseConfig(f, v)
}

// parseConfig reads checked options of format f.
func parseConfig(f string, o options.Values) (*Config, error) {
	c := &Config{Format: f, CorruptIndex: -1, CorruptColumn: DefaultCorruptColumn, Mode: Permissive, Location: time.UTC}

	path := strings.TrimSpace(o.String("path"))
	if path == "" {
		return nil, &options.Error{Option: "path", Allowed: "required: a directory, file or glob pattern to read"}
	}
	if root, key, ok := splitRemote(path); ok && !strings.HasPrefix(strings.ToLower(root), "file:") {
		// An object-store pattern: the container or bucket must be a
		// plain URI; globs are allowed in the key.
		loc, err := storage.ParseLocation(root)
		if err != nil {
			return nil, fmt.Errorf("option %q: %w", "path", err)
		}
		if loc.IsLocal() || hasGlob(root) {
			return nil, &options.Error{Option: "path", Value: path, Allowed: "allowed: a local path or an object-store URI (see docs/storage.md)"}
		}
		c.Path, c.remote = loc.String(), true
		if key != "" {
			c.Path += "/" + key
		}
	} else {
		path = strings.TrimPrefix(path, "file://")
		path = strings.TrimPrefix(path, "file:")
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, &options.Error{Option: "path", Value: path, Allowed: "allowed: a local path: " + err.Error()}
		}
		c.Path = abs
	}
	if _, err := expandBraces(c.Path); err != nil {
		return nil, &options.Error{Option: "path", Value: path, Allowed: "allowed: a glob pattern: " + err.Error()}
	}
	for _, p := range mustExpand(c.Path) {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, &options.Error{Option: "path", Value: path, Allowed: "allowed: a valid glob pattern (*, ?, [a-z], {a,b})"}
		}
	}
	if mlv, ok := o.Get("multiLine"); ok && o.Bool("multiLine") {
		return nil, &options.Error{Option: "multiLine", Value: mlv, Allowed: "allowed: false (multi-line records are not supported yet)"}
	}
	for _, k := range []string{"encoding", "charset"} {
		if v, ok := o.Get(k); ok {
			if n := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(v), "-", "")); n != "utf8" {
				return nil, &options.Error{Option: k, Value: v, Allowed: "allowed: UTF-8"}
			}
		}
	}

	if err := c.parseLimits(o); err != nil {
		return nil, err
	}
	if err := c.parseSchema(o); err != nil {
		return nil, err
	}
	var ok bool
	if c.LineSep, ok = o.Get("lineSep"); ok {
		c.LineSep = unescape(c.LineSep)
		if c.LineSep == "" {
			return nil, &options.Error{Option: "lineSep", Value: `""`, Allowed: "allowed: a non-empty separator"}
		}
	}
	switch f {
	case "text":
		c.WholeText = o.Bool("wholetext")
	case "json", "csv":
		if err := c.parseRecordOptions(o); err != nil {
			return nil, err
		}
	}
	if f == "csv" {
		if err := c.parseCSV(o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Config) parseLimits(o options.Values) error {
	c.MaxFilesPerTrigger = o.Int64("maxFilesPerTrigger")
	c.MaxBytesPerTrigger = o.Int64("maxBytesPerTrigger")
	if c.MaxFilesPerTrigger > 0 && c.MaxBytesPerTrigger > 0 {
		return &options.Error{Option: "maxBytesPerTrigger", Allowed: "cannot be set together with maxFilesPerTrigger; choose one"}
	}
	c.LatestFirst = o.Bool("latestFirst")
	c.MaxFileAge = o.Duration("maxFileAge")
	if c.LatestFirst && (c.MaxFilesPerTrigger > 0 || c.MaxBytesPerTrigger > 0) {
		// Old files that are still to be processed would otherwise be
		// dropped (Spark does the same).
		c.MaxFileAge = 0
	}
	c.FileNameOnly = o.Bool("fileNameOnly")
	c.RecursiveFileLookup = o.Bool("recursiveFileLookup")
	if bp := strings.TrimSpace(o.String("basePath")); bp != "" {
		if c.remote {
			if _, _, ok := splitRemote(bp); !ok {
				return &options.Error{Option: "basePath", Value: bp, Allowed: "allowed: an object-store URI, as the source path is one"}
			}
			c.BasePath = strings.TrimSuffix(bp, "/")
		} else {
			bp = strings.TrimPrefix(strings.TrimPrefix(bp, "file://"), "file:")
			abs, err := filepath.Abs(bp)
			if err != nil {
				return &options.Error{Option: "basePath", Value: bp, Allowed: "allowed: a local directory"}
			}
			c.BasePath = abs
		}
	}
	c.CleanSource = o.Enum("cleanSource")
	if c.CleanSource == CleanArchive {
		dir := strings.TrimSpace(o.String("sourceArchiveDir"))
		if dir == "" {
			return &options.Error{Option: "sourceArchiveDir", Allowed: `required when cleanSource is "archive"`}
		}
		var abs string
		if c.remote {
			loc, err := storage.ParseLocation(dir)
			if err != nil || loc.IsLocal() {
				return &options.Error{Option: "sourceArchiveDir", Value: dir, Allowed: "allowed: an object-store URI, as the source path is one"}
			}
			abs = loc.String()
		} else {
			dir = strings.TrimPrefix(strings.TrimPrefix(dir, "file://"), "file:")
			var err error
			if abs, err = filepath.Abs(dir); err != nil {
				return &options.Error{Option: "sourceArchiveDir", Value: dir, Allowed: "allowed: a local directory"}
			}
		}
		if overlaps(c.Path, abs, c.remote) {
			return &options.Error{Option: "sourceArchiveDir", Value: dir,
				Spark: "Base archive path cannot be set to the path where archived path can possibly match with source pattern. " +
					"Ensure the base archive path doesn't match with source pattern in depth, where the depth is minimum of depth on both paths.",
				Allowed: fmt.Sprintf("must not be inside the source path %s: a file archived to %s would be read again", c.Path, filepath.Join(abs, "<its path>"))}
		}
		c.ArchiveDir = abs
	}
	if c.PathGlobFilter, _ = o.Get("pathGlobFilter"); c.PathGlobFilter != "" {
		if _, err := filepath.Match(c.PathGlobFilter, ""); err != nil {
			return &options.Error{Option: "pathGlobFilter", Value: c.PathGlobFilter, Allowed: "allowed: a glob pattern for file names, such as *.json"}
		}
	}
	return nil
}

func (c *Config) parseSchema(o options.Values) error {
	ddlText, hasSchema := o.Get("schema")
	if c.Format == "text" {
		c.Schema = batch.Schema{Fields: []batch.Field{{Name: "value", Type: batch.String, Nullable: true}}}
		if hasSchema {
			s, err := ddl.Parse(ddlText)
			if err != nil {
				return &options.Error{Option: "schema", Value: ddlText, Allowed: err.Error()}
			}
			if len(s.Fields) != 1 || s.Fields[0].Type != batch.String {
				return &options.Error{Option: "schema", Value: ddlText, Allowed: "the text format reads one STRING column"}
			}
			c.Schema = s
		}
		return nil
	}
	if !hasSchema {
		if !o.Bool("inferSchema") {
			return &options.Error{Option: "schema", Allowed: fmt.Sprintf(
				`required for the %s format: a DDL string such as "id INT, name STRING, ts TIMESTAMP" (or set inferSchema=true to infer it from the files present at start)`, c.Format)}
		}
		return nil // inferred by InferSchema
	}
	s, err := ddl.Parse(ddlText)
	if err != nil {
		return &options.Error{Option: "schema", Value: ddlText, Allowed: err.Error()}
	}
	// File sources read every column as nullable, as Spark does.
	for i := range s.Fields {
		if s.Fields[i].Type.IsNested() {
			return &options.Error{Option: "schema", Value: ddlText, Allowed: fmt.Sprintf(
				"column %q is %s: the file source reads flat columns; declare it STRING and parse it with from_json(%s, '%s')",
				s.Fields[i].Name, s.Fields[i].Type.SQL(), s.Fields[i].Name, s.Fields[i].Type.SQL())}
		}
		s.Fields[i].Nullable = true
	}
	c.Schema = s
	return nil
}

// parseRecordOptions reads the json/csv options shared by both formats.
func (c *Config) parseRecordOptions(o options.Values) error {
	var err error
	c.Mode = o.Enum("mode")
	if tz, ok := o.Get("timeZone"); ok {
		loc, err := time.LoadLocation(strings.TrimSpace(tz))
		if err != nil {
			return &options.Error{Option: "timeZone", Value: tz, Allowed: "allowed: an IANA zone such as UTC or Europe/Paris"}
		}
		c.Location = loc
	}
	if v, ok := o.Get("timestampFormat"); ok {
		if c.TimestampLayout, err = sparktext.JavaLayout(v); err != nil {
			return &options.Error{Option: "timestampFormat", Value: v, Allowed: err.Error()}
		}
	}
	if v, ok := o.Get("dateFormat"); ok {
		if c.DateLayout, err = sparktext.JavaLayout(v); err != nil {
			return &options.Error{Option: "dateFormat", Value: v, Allowed: err.Error()}
		}
	}
	c.CorruptColumn = o.String("columnNameOfCorruptRecord")
	return c.resolveCorrupt(c.CorruptColumn)
}

// resolveCorrupt finds the corrupt-record column in the schema.
func (c *Config) resolveCorrupt(name string) error {
	c.CorruptIndex = -1
	if i := c.Schema.Index(name); i >= 0 {
		if c.Schema.Fields[i].Type != batch.String || !c.Schema.Fields[i].Nullable {
			return &options.Error{Option: "columnNameOfCorruptRecord", Value: name, Allowed: "the corrupt record column must be a nullable STRING"}
		}
		c.CorruptIndex = i
	}
	return nil
}

func (c *Config) parseCSV(o options.Values) error {
	var err error
	c.Header = o.Bool("header")
	if v, ok := o.Get("enforceSchema"); ok && !o.Bool("enforceSchema") {
		return &options.Error{Option: "enforceSchema", Value: v, Allowed: "allowed: true (columns are matched by position)"}
	}
	c.Sep = ","
	for _, k := range []string{"sep", "delimiter"} {
		if v, ok := o.Get(k); ok {
			if c.Sep = unescape(v); c.Sep == "" {
				return &options.Error{Option: k, Value: v, Allowed: "allowed: a non-empty separator"}
			}
		}
	}
	if c.Quote, err = oneChar(o, "quote", '"'); err != nil {
		return err
	}
	if c.Escape, err = oneChar(o, "escape", '\\'); err != nil {
		return err
	}
	if c.Comment, err = oneChar(o, "comment", 0); err != nil {
		return err
	}
	c.NullValue = o.String("nullValue")
	c.NaNValue = o.String("nanValue")
	c.PositiveInf = o.String("positiveInf")
	c.NegativeInf = o.String("negativeInf")
	if c.Quote != 0 && strings.IndexByte(c.Sep, c.Quote) >= 0 {
		return &options.Error{Option: "quote", Value: string(c.Quote), Allowed: "must differ from the separator"}
	}
	return nil
}

// oneChar reads a single-byte option; an empty value (or \u0000) turns
// the feature off.
func oneChar(o options.Values, name string, def byte) (byte, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	u := unescape(v)
	if u == "" || u == "\x00" {
		return 0, nil
	}
	if len(u) != 1 {
		return 0, &options.Error{Option: name, Value: v, Allowed: "allowed: a single ASCII character"}
	}
	return u[0], nil
}

// unescape turns the escapes users write in option values (\t, \n, \r,
// \\, \u0000) into characters.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		case 'u':
			if i+5 < len(s) {
				if n, err := strconv.ParseUint(s[i+2:i+6], 16, 16); err == nil {
					b.WriteRune(rune(n))
					i += 5
					continue
				}
			}
			b.WriteString(`\u`)
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i+1])
		}
		i++
	}
	return b.String()
}

// maxFileAgeMs is the age bound in milliseconds (MaxInt64 for none).
func (c *Config) maxFileAgeMs() int64 {
	if c.MaxFileAge <= 0 {
		return math.MaxInt64
	}
	return c.MaxFileAge.Milliseconds()
}

// description renders Spark's FileStreamSource[path] description.
func (c *Config) description() string {
	return fmt.Sprintf("FileStreamSource[file:%s]", c.Path)
}
