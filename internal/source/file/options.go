package file

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/ddl"
	"github.com/sluice-stream/sluice/internal/options"
)

// Formats lists the file formats the source reads.
var Formats = []string{"text", "json", "csv"}

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

var commonOptions = []string{
	"path", "schema",
	"maxFilesPerTrigger", "maxBytesPerTrigger", "latestFirst", "maxFileAge", "fileNameOnly",
	"cleanSource", "sourceArchiveDir", "pathGlobFilter", "recursiveFileLookup",
	"modifiedBefore", "modifiedAfter", "encoding", "charset", "lineSep", "multiLine",
}

var formatOptions = map[string][]string{
	"text": {"wholetext"},
	"json": {"mode", "columnNameOfCorruptRecord", "timestampFormat", "dateFormat", "timeZone"},
	"csv": {"mode", "columnNameOfCorruptRecord", "timestampFormat", "dateFormat", "timeZone",
		"header", "sep", "delimiter", "quote", "escape", "comment", "nullValue",
		"nanValue", "positiveInf", "negativeInf", "enforceSchema"},
}

// Config is the parsed, validated file source configuration.
type Config struct {
	Format string
	// Path is the absolute path or glob pattern ({a,b} alternatives
	// allowed) the source lists.
	Path string
	// Schema is the row schema; for text it is value: string.
	Schema batch.Schema
	// CorruptIndex is the position of the corrupt-record column in Schema,
	// or -1.
	CorruptIndex int
	Mode         string

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
	extra, ok := formatOptions[f]
	if !ok {
		return nil, fmt.Errorf("file source: unknown format %q (allowed: %s; parquet is not supported yet)", format, strings.Join(Formats, ", "))
	}
	o := options.New(m)
	known := append(append([]string{}, commonOptions...), extra...)
	if f != "text" {
		known = append(known, "inferSchema")
	}
	if err := o.CheckKnown(f+" file source", known); err != nil {
		return nil, err
	}
	c := &Config{Format: f, CorruptIndex: -1, Mode: Permissive, Location: time.UTC}

	path := strings.TrimSpace(o.String("path", ""))
	if path == "" {
		return nil, &options.Error{Option: "path", Allowed: "required: a directory, file or glob pattern to read"}
	}
	path = strings.TrimPrefix(path, "file://")
	path = strings.TrimPrefix(path, "file:")
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &options.Error{Option: "path", Value: path, Allowed: "allowed: a local path: " + err.Error()}
	}
	c.Path = abs
	if _, err := expandBraces(c.Path); err != nil {
		return nil, &options.Error{Option: "path", Value: path, Allowed: "allowed: a glob pattern: " + err.Error()}
	}
	for _, p := range mustExpand(c.Path) {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, &options.Error{Option: "path", Value: path, Allowed: "allowed: a valid glob pattern (*, ?, [a-z], {a,b})"}
		}
	}
	for _, k := range []string{"modifiedBefore", "modifiedAfter"} {
		if o.Has(k) {
			return nil, &options.Error{Option: k, Allowed: "not supported by streaming file sources (as in Spark); use maxFileAge"}
		}
	}
	if mlv, ok := o.Get("multiLine"); ok {
		if b, err := o.Bool("multiLine", false); err != nil || b {
			return nil, &options.Error{Option: "multiLine", Value: mlv, Allowed: "allowed: false (multi-line records are not supported yet)"}
		}
	}
	for _, k := range []string{"encoding", "charset"} {
		if v, ok := o.Get(k); ok {
			if n := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(v), "-", "")); n != "utf8" {
				return nil, &options.Error{Option: k, Value: v, Allowed: "allowed: UTF-8"}
			}
		}
	}
	if _, err := o.Bool("recursiveFileLookup", false); err != nil {
		return nil, err
	}

	if err := c.parseLimits(o); err != nil {
		return nil, err
	}
	if err := c.parseSchema(o); err != nil {
		return nil, err
	}
	if c.LineSep, ok = o.Get("lineSep"); ok {
		c.LineSep = unescape(c.LineSep)
		if c.LineSep == "" {
			return nil, &options.Error{Option: "lineSep", Value: `""`, Allowed: "allowed: a non-empty separator"}
		}
	}
	switch f {
	case "text":
		if c.WholeText, err = o.Bool("wholetext", false); err != nil {
			return nil, err
		}
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

func (c *Config) parseLimits(o options.Options) error {
	var err error
	if c.MaxFilesPerTrigger, err = o.Int64("maxFilesPerTrigger", 0, 1); err != nil {
		return err
	}
	if c.MaxBytesPerTrigger, err = o.Int64("maxBytesPerTrigger", 0, 1); err != nil {
		return err
	}
	if c.MaxFilesPerTrigger > 0 && c.MaxBytesPerTrigger > 0 {
		return &options.Error{Option: "maxBytesPerTrigger", Allowed: "cannot be set together with maxFilesPerTrigger; choose one"}
	}
	if c.LatestFirst, err = o.Bool("latestFirst", false); err != nil {
		return err
	}
	if c.MaxFileAge, err = o.Duration("maxFileAge", 7*24*time.Hour); err != nil {
		return err
	}
	if c.LatestFirst && (c.MaxFilesPerTrigger > 0 || c.MaxBytesPerTrigger > 0) {
		// Old files that are still to be processed would otherwise be
		// dropped (Spark does the same).
		c.MaxFileAge = 0
	}
	if c.FileNameOnly, err = o.Bool("fileNameOnly", false); err != nil {
		return err
	}
	if c.CleanSource, err = o.Enum("cleanSource", CleanOff, CleanOff, CleanArchive, CleanDelete); err != nil {
		return err
	}
	if c.CleanSource == CleanArchive {
		dir := strings.TrimSpace(o.String("sourceArchiveDir", ""))
		if dir == "" {
			return &options.Error{Option: "sourceArchiveDir", Allowed: `required when cleanSource is "archive"`}
		}
		dir = strings.TrimPrefix(strings.TrimPrefix(dir, "file://"), "file:")
		abs, err := filepath.Abs(dir)
		if err != nil {
			return &options.Error{Option: "sourceArchiveDir", Value: dir, Allowed: "allowed: a local directory"}
		}
		if overlaps(c.Path, abs) {
			return &options.Error{Option: "sourceArchiveDir", Value: dir,
				Allowed: fmt.Sprintf("must not be inside the source path %s, or archived files would be read again", c.Path)}
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

func (c *Config) parseSchema(o options.Options) error {
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
		if infer, err := o.Bool("inferSchema", false); err != nil || !infer {
			if err != nil {
				return err
			}
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
		s.Fields[i].Nullable = true
	}
	c.Schema = s
	return nil
}

// parseRecordOptions reads the json/csv options shared by both formats.
func (c *Config) parseRecordOptions(o options.Options) error {
	var err error
	if c.Mode, err = o.Enum("mode", Permissive, Permissive, DropMalformed, FailFast); err != nil {
		return err
	}
	if tz, ok := o.Get("timeZone"); ok {
		loc, err := time.LoadLocation(strings.TrimSpace(tz))
		if err != nil {
			return &options.Error{Option: "timeZone", Value: tz, Allowed: "allowed: an IANA zone such as UTC or Europe/Paris"}
		}
		c.Location = loc
	}
	if v, ok := o.Get("timestampFormat"); ok {
		if c.TimestampLayout, err = javaLayout(v); err != nil {
			return &options.Error{Option: "timestampFormat", Value: v, Allowed: err.Error()}
		}
	}
	if v, ok := o.Get("dateFormat"); ok {
		if c.DateLayout, err = javaLayout(v); err != nil {
			return &options.Error{Option: "dateFormat", Value: v, Allowed: err.Error()}
		}
	}
	return c.resolveCorrupt(o.String("columnNameOfCorruptRecord", DefaultCorruptColumn))
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

func (c *Config) parseCSV(o options.Options) error {
	var err error
	if c.Header, err = o.Bool("header", false); err != nil {
		return err
	}
	if v, ok := o.Get("enforceSchema"); ok {
		if b, err := o.Bool("enforceSchema", true); err != nil || !b {
			return &options.Error{Option: "enforceSchema", Value: v, Allowed: "allowed: true (columns are matched by position)"}
		}
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
	c.NullValue = o.String("nullValue", "")
	c.NaNValue = o.String("nanValue", "NaN")
	c.PositiveInf = o.String("positiveInf", "Inf")
	c.NegativeInf = o.String("negativeInf", "-Inf")
	if c.Quote != 0 && strings.IndexByte(c.Sep, c.Quote) >= 0 {
		return &options.Error{Option: "quote", Value: string(c.Quote), Allowed: "must differ from the separator"}
	}
	return nil
}

// oneChar reads a single-byte option; an empty value (or \u0000) turns
// the feature off.
func oneChar(o options.Options, name string, def byte) (byte, error) {
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
