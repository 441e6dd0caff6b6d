package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/batch"
)

// maxInferRecords bounds how many records schema inference reads.
const maxInferRecords = 10_000

// SchemaOf returns the schema a file source with these options produces:
// the schema option, text's fixed schema, or (inferSchema=true) the
// schema inferred from the files present now.
func SchemaOf(format string, opts map[string]string, o ...Option) (batch.Schema, error) {
	cfg, err := ParseConfig(format, opts)
	if err != nil {
		return batch.Schema{}, err
	}
	return schemaOf(cfg, o...)
}

func schemaOf(cfg *Config, o ...Option) (batch.Schema, error) {
	in, err := newInputFS(cfg, o)
	if err != nil {
		return batch.Schema{}, err
	}
	if len(cfg.Schema.Fields) == 0 {
		if err := inferInto(cfg, in); err != nil {
			return batch.Schema{}, err
		}
	}
	if err := discoverInto(cfg, in); err != nil {
		return batch.Schema{}, err
	}
	return cfg.fullSchema(), nil
}

// discoverInto finds the partition columns of the files present now (none
// with recursiveFileLookup, as in Spark). A partition column named like a
// data column is not added: the data column stays.
func discoverInto(cfg *Config, in inputFS) error {
	cfg.Partitions = nil
	if cfg.RecursiveFileLookup {
		return nil
	}
	files, err := in.list(context.Background(), cfg.Path, cfg.PathGlobFilter, false)
	if err != nil {
		return err
	}
	cols, err := discoverPartitions(cfg, files)
	if err != nil {
		return err
	}
	for _, c := range cols {
		if cfg.Schema.Index(c.Name) < 0 {
			cfg.Partitions = append(cfg.Partitions, c)
		}
	}
	return nil
}

// fullSchema is the data schema followed by the partition columns.
func (c *Config) fullSchema() batch.Schema {
	if len(c.Partitions) == 0 {
		return c.Schema
	}
	s := batch.Schema{Fields: append([]batch.Field(nil), c.Schema.Fields...)}
	for _, p := range c.Partitions {
		s.Fields = append(s.Fields, batch.Field{Name: p.Name, Type: p.Type, Nullable: true})
	}
	return s
}

// inferInto infers cfg.Schema from the files present now: JSON fields
// sorted by name with types boolean/bigint/double/string (nested values
// become strings), CSV columns named by the header (or _c0, _c1, …) with
// types int/bigint/double/boolean/date/timestamp/string. At most
// maxInferRecords records are read, oldest files first. For JSON in
// PERMISSIVE mode a malformed record adds the corrupt-record column.
func inferInto(cfg *Config, in inputFS) error {
	files, err := in.list(context.Background(), cfg.Path, cfg.PathGlobFilter, cfg.RecursiveFileLookup)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("file source: cannot infer a schema from %s: there are no input files yet; set the schema option", cfg.Path)
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].modMs < files[j].modMs })
	inf := &inferrer{cfg: cfg, in: in, kinds: map[string]batch.Kind{}}
	for _, f := range files {
		if inf.records >= maxInferRecords {
			break
		}
		if err := inf.file(f.path); err != nil {
			return err
		}
	}
	if cfg.Format == "json" {
		names := make([]string, 0, len(inf.kinds))
		for n := range inf.kinds {
			names = append(names, n)
		}
		sort.Strings(names)
		inf.names = names
	}
	if len(inf.names) == 0 {
		return fmt.Errorf("file source: cannot infer a schema from %s: no records found; set the schema option", cfg.Path)
	}
	var sch batch.Schema
	for _, n := range inf.names {
		k := inf.kinds[n]
		if k == batch.Null {
			k = batch.String
		}
		sch.Fields = append(sch.Fields, batch.Field{Name: n, Type: k, Nullable: true})
	}
	corrupt := cfg.CorruptColumn
	if cfg.Format == "json" && inf.malformed > 0 && cfg.Mode == Permissive && sch.Index(corrupt) < 0 {
		sch.Fields = append(sch.Fields, batch.Field{Name: corrupt, Type: batch.String, Nullable: true})
	}
	cfg.Schema = sch
	return cfg.resolveCorrupt(corrupt)
}

type inferrer struct {
	cfg       *Config
	in        inputFS
	names     []string // CSV: column order
	kinds     map[string]batch.Kind
	records   int
	malformed int
}

func (in *inferrer) file(path string) error {
	f, err := in.in.open(context.Background(), path)
	if err != nil {
		return fmt.Errorf("file source: infer schema: %w", err)
	}
	defer f.Close()
	r, err := decompress(f, path)
	if err != nil {
		return fmt.Errorf("file source: infer schema: %s: %w", path, err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxRecordBytes)
	sc.Split(splitter(in.cfg.LineSep))
	line := int64(0)
	for sc.Scan() && in.records < maxInferRecords {
		line++
		rec := sc.Bytes()
		if len(bytes.TrimSpace(rec)) == 0 {
			continue
		}
		var err error
		if in.cfg.Format == "json" {
			err = in.json(rec, path, line)
		} else {
			err = in.csv(rec, path, line)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("file source: infer schema: read %s: %w", path, err)
	}
	return nil
}

func (in *inferrer) bad(path string, line int64, why string) error {
	in.malformed++
	if in.cfg.Mode == FailFast {
		return fmt.Errorf("file source: infer schema: malformed record at %s line %d: %s (mode FAILFAST)", path, line, why)
	}
	return nil
}

func (in *inferrer) json(rec []byte, path string, line int64) error {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return in.bad(path, line, "invalid JSON")
	}
	var objs []map[string]any
	switch t := v.(type) {
	case map[string]any:
		objs = append(objs, t)
	case []any:
		for _, el := range t {
			o, ok := el.(map[string]any)
			if !ok {
				return in.bad(path, line, "array element is not an object")
			}
			objs = append(objs, o)
		}
	default:
		return in.bad(path, line, "not a JSON object")
	}
	for _, o := range objs {
		in.records++
		for k, val := range o {
			in.kinds[k] = widen(in.kinds[k], jsonKind(val))
		}
	}
	return nil
}

func jsonKind(v any) batch.Kind {
	switch t := v.(type) {
	case nil:
		return batch.Null
	case bool:
		return batch.Boolean
	case json.Number:
		if _, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return batch.Long
		}
		return batch.Double
	}
	return batch.String
}

func (in *inferrer) csv(rec []byte, path string, line int64) error {
	if in.cfg.Comment != 0 && rec[0] == in.cfg.Comment {
		return nil
	}
	fields, err := splitCSV(rec, in.cfg.Sep, in.cfg.Quote, in.cfg.Escape, nil)
	if err != nil {
		return in.bad(path, line, err.Error())
	}
	if in.names == nil {
		seen := map[string]int{}
		for i, f := range fields {
			name := "_c" + strconv.Itoa(i)
			if in.cfg.Header && strings.TrimSpace(string(f.b)) != "" {
				name = strings.TrimSpace(string(f.b))
			}
			if n := seen[strings.ToLower(name)]; n > 0 {
				name += strconv.Itoa(i)
			}
			seen[strings.ToLower(name)]++
			in.names = append(in.names, name)
			in.kinds[name] = batch.Null
		}
		if in.cfg.Header {
			return nil
		}
	} else if in.cfg.Header && line == 1 {
		return nil // later files' headers
	}
	in.records++
	for i, f := range fields {
		if i >= len(in.names) {
			break
		}
		n := in.names[i]
		in.kinds[n] = widen(in.kinds[n], csvKind(f, in.cfg))
	}
	return nil
}

func csvKind(f csvField, c *Config) batch.Kind {
	s := strings.TrimSpace(string(f.b))
	if (!f.quoted && string(f.b) == c.NullValue) || s == "" {
		return batch.Null
	}
	if _, err := strconv.ParseInt(s, 10, 32); err == nil {
		return batch.Int
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return batch.Long
	}
	if _, ok := parseDouble(s, c); ok {
		return batch.Double
	}
	if strings.EqualFold(s, "true") || strings.EqualFold(s, "false") {
		return batch.Boolean
	}
	if _, ok := parseDate(s, c.DateLayout); ok && !strings.ContainsAny(s, " T:") {
		return batch.Date
	}
	if _, ok := parseTimestamp(s, c.TimestampLayout, c.Location); ok {
		return batch.Timestamp
	}
	return batch.String
}

// widen merges two inferred kinds: numbers widen, dates widen to
// timestamps, anything else conflicting becomes string.
func widen(a, b batch.Kind) batch.Kind {
	switch {
	case a == b:
		return a
	case a == batch.Null:
		return b
	case b == batch.Null:
		return a
	case a.IsNumeric() && b.IsNumeric():
		if a == batch.Double || b == batch.Double {
			return batch.Double
		}
		return batch.Long
	case (a == batch.Date && b == batch.Timestamp) || (a == batch.Timestamp && b == batch.Date):
		return batch.Timestamp
	}
	return batch.String
}
