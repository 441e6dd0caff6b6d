package file

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/source"
)

const (
	// chunkRows and chunkBytes bound the rows a task emits per batch.Batch.
	chunkRows  = 4096
	chunkBytes = 4 << 20
	// maxRecordBytes bounds one record (line); longer ones fail the task.
	maxRecordBytes = 256 << 20
)

// decompress wraps r by the file name's extension (.gz, .bz2), as
// Hadoop's codecs do.
func decompress(r io.Reader, name string) (io.Reader, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		return gzip.NewReader(r)
	case strings.HasSuffix(name, ".bz2"):
		return bzip2.NewReader(r), nil
	}
	return r, nil
}

// splitter returns the bufio.SplitFunc for a record separator: "" splits
// at \n and drops a preceding \r.
func splitter(sep string) bufio.SplitFunc {
	if sep == "" {
		return func(data []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
			}
			if atEOF && len(data) > 0 {
				return len(data), bytes.TrimSuffix(data, []byte{'\r'}), nil
			}
			return 0, nil, nil
		}
	}
	s := []byte(sep)
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.Index(data, s); i >= 0 {
			return i + len(s), data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}

// cell is one parsed value before it is appended to its column.
type cell struct {
	null bool
	i    int64
	f    float64
	b    []byte
	bo   bool
}

// parser turns the records of one file into batches.
type parser struct {
	cfg    *Config
	src    *Source
	path   string
	emit   source.Emit
	fields map[string]int // JSON key → schema index
	data   []int          // CSV: schema indexes of data columns, in order

	cols  []*batch.Column
	n     int
	arena []byte
	used  int
	cells []cell
}

func newParser(cfg *Config, src *Source, path string, emit source.Emit) *parser {
	p := &parser{cfg: cfg, src: src, path: path, emit: emit, cells: make([]cell, len(cfg.Schema.Fields))}
	p.fields = make(map[string]int, len(cfg.Schema.Fields))
	for i, f := range cfg.Schema.Fields {
		if i == cfg.CorruptIndex {
			continue
		}
		if _, dup := p.fields[f.Name]; !dup {
			p.fields[f.Name] = i
		}
		p.data = append(p.data, i)
	}
	p.reset()
	return p
}

func (p *parser) reset() {
	p.cols = make([]*batch.Column, len(p.cfg.Schema.Fields))
	for i, f := range p.cfg.Schema.Fields {
		p.cols[i] = batch.NewColumn(f.Type, 64)
	}
	p.n, p.used = 0, 0
}

// own copies b into the chunk's arena so that cells do not alias the
// scanner's buffer.
func (p *parser) own(b []byte) []byte {
	if p.arena == nil || len(b) > cap(p.arena)-len(p.arena) {
		p.arena = make([]byte, 0, max(64<<10, len(b)))
	}
	start := len(p.arena)
	p.arena = append(p.arena, b...)
	p.used += len(b)
	return p.arena[start:len(p.arena):len(p.arena)]
}

func (p *parser) flush(ctx context.Context) error {
	if p.n == 0 {
		return nil
	}
	b := batch.New(p.cfg.Schema, p.cols, p.n)
	p.reset()
	return p.emit(ctx, b)
}

// appendRow appends p.cells as a row.
func (p *parser) appendRow(ctx context.Context) error {
	for i, c := range p.cells {
		col := p.cols[i]
		if c.null {
			col.AppendNull()
			continue
		}
		switch col.Type {
		case batch.Boolean:
			col.AppendBool(c.bo)
		case batch.Int, batch.Long, batch.Date, batch.Timestamp:
			col.AppendInt(c.i)
		case batch.Double:
			col.AppendFloat(c.f)
		case batch.String, batch.Binary:
			col.AppendBytes(c.b)
		default:
			col.AppendNull()
		}
	}
	p.n++
	if p.n >= chunkRows || p.used >= chunkBytes {
		return p.flush(ctx)
	}
	return nil
}

func (p *parser) clearCells() {
	for i := range p.cells {
		p.cells[i] = cell{null: true}
	}
}

// malformed applies the parse mode to a bad record whose cells hold what
// could be parsed.
func (p *parser) malformed(ctx context.Context, raw []byte, line int64, why string) error {
	p.src.malformed.Add(1)
	switch p.cfg.Mode {
	case FailFast:
		return fmt.Errorf("file source: malformed record at %s line %d: %s (mode FAILFAST; set mode to PERMISSIVE or DROPMALFORMED to continue past it)", p.path, line, why)
	case DropMalformed:
		p.src.dropped.Add(1)
		return nil
	}
	if p.cfg.CorruptIndex >= 0 {
		p.cells[p.cfg.CorruptIndex] = cell{b: p.own(raw)}
	}
	return p.appendRow(ctx)
}

// run parses the whole file.
func (p *parser) run(ctx context.Context, r io.Reader) error {
	if p.cfg.Format == "text" && p.cfg.WholeText {
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("file source: read %s: %w", p.path, err)
		}
		p.cells[0] = cell{b: p.own(data)}
		if err := p.appendRow(ctx); err != nil {
			return err
		}
		return p.flush(ctx)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxRecordBytes)
	sc.Split(splitter(p.cfg.LineSep))
	var line int64
	for sc.Scan() {
		line++
		if line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec := sc.Bytes()
		var err error
		switch p.cfg.Format {
		case "text":
			p.cells[0] = cell{b: p.own(rec)}
			err = p.appendRow(ctx)
		case "json":
			err = p.jsonRecord(ctx, rec, line)
		case "csv":
			if line == 1 && p.cfg.Header {
				continue
			}
			err = p.csvRecord(ctx, rec, line)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("file source: %s line %d: a record is longer than %d MiB", p.path, line+1, maxRecordBytes>>20)
		}
		return fmt.Errorf("file source: read %s: %w", p.path, err)
	}
	return p.flush(ctx)
}

// ---- JSON ----

func (p *parser) jsonRecord(ctx context.Context, rec []byte, line int64) error {
	t := bytes.TrimSpace(rec)
	if len(t) == 0 {
		return nil // Spark skips blank lines
	}
	p.clearCells()
	switch t[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(t, &m); err != nil {
			return p.malformed(ctx, rec, line, "invalid JSON: "+err.Error())
		}
		if why := p.jsonObject(m); why != "" {
			return p.malformed(ctx, rec, line, why)
		}
		return p.appendRow(ctx)
	case '[':
		// A top-level array holds one record per element.
		var arr []json.RawMessage
		if err := json.Unmarshal(t, &arr); err != nil {
			return p.malformed(ctx, rec, line, "invalid JSON: "+err.Error())
		}
		objs := make([]map[string]json.RawMessage, len(arr))
		for i, el := range arr {
			if err := json.Unmarshal(el, &objs[i]); err != nil || objs[i] == nil {
				return p.malformed(ctx, rec, line, fmt.Sprintf("array element %d is not a JSON object", i))
			}
		}
		for _, m := range objs {
			p.clearCells()
			if why := p.jsonObject(m); why != "" {
				if err := p.malformed(ctx, rec, line, why); err != nil {
					return err
				}
				continue
			}
			if err := p.appendRow(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	return p.malformed(ctx, rec, line, "the record is not a JSON object")
}

// jsonObject fills the cells from one object; it returns why the record is
// malformed, or "".
func (p *parser) jsonObject(m map[string]json.RawMessage) string {
	var why string
	for k, raw := range m {
		i, ok := p.fields[k]
		if !ok {
			continue
		}
		f := p.cfg.Schema.Fields[i]
		c, ok := p.jsonValue(raw, f.Type)
		if !ok {
			if why == "" {
				why = fmt.Sprintf("field %q: cannot convert %s to %s", k, clip(raw), f.Type)
			}
			continue
		}
		p.cells[i] = c
	}
	return why
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// jsonString decodes a JSON string literal.
func jsonString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

func (p *parser) jsonValue(raw json.RawMessage, k batch.Kind) (cell, bool) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return cell{null: true}, true
	}
	str, isStr := jsonString(raw)
	switch k {
	case batch.String:
		if isStr {
			return cell{b: p.own(str)}, true
		}
		return cell{b: p.own(raw)}, true // objects, arrays, numbers: their JSON text
	case batch.Int, batch.Long:
		bits := 64
		if k == batch.Int {
			bits = 32
		}
		v, err := strconv.ParseInt(string(raw), 10, bits)
		return cell{i: v}, err == nil
	case batch.Double:
		if isStr {
			switch string(str) {
			case "NaN":
				return cell{f: math.NaN()}, true
			case "Infinity", "+Infinity", "+INF", "INF":
				return cell{f: math.Inf(1)}, true
			case "-Infinity", "-INF":
				return cell{f: math.Inf(-1)}, true
			}
			return cell{}, false
		}
		v, err := strconv.ParseFloat(string(raw), 64)
		return cell{f: v}, err == nil
	case batch.Boolean:
		switch string(raw) {
		case "true":
			return cell{bo: true}, true
		case "false":
			return cell{bo: false}, true
		}
	case batch.Timestamp:
		if isStr {
			v, ok := parseTimestamp(string(str), p.cfg.TimestampLayout, p.cfg.Location)
			return cell{i: v}, ok
		}
		// A JSON integer is seconds since the epoch, as in Spark.
		secs, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || secs > math.MaxInt64/microsPerSecond || secs < math.MinInt64/microsPerSecond {
			return cell{}, false
		}
		return cell{i: secs * microsPerSecond}, true
	case batch.Date:
		if isStr {
			v, ok := parseDate(string(str), p.cfg.DateLayout)
			return cell{i: v}, ok
		}
	case batch.Binary:
		if isStr {
			v, err := base64.StdEncoding.DecodeString(string(str))
			return cell{b: p.own(v)}, err == nil
		}
	}
	return cell{}, false
}

// ---- CSV ----

// csvField is one field of a CSV record.
type csvField struct {
	b      []byte
	quoted bool
}

// splitCSV splits one record. Inside quotes, a doubled quote or the escape
// character before a quote yields a literal quote; text after a closing
// quote up to the separator is kept. An unterminated quote is an error.
func splitCSV(line []byte, sep string, quote, escape byte, dst []csvField) ([]csvField, error) {
	dst = dst[:0]
	s := []byte(sep)
	i := 0
	for {
		if quote != 0 && i < len(line) && line[i] == quote {
			var buf []byte
			j := i + 1
			closed := false
			for j < len(line) {
				c := line[j]
				if escape != 0 && escape != quote && c == escape && j+1 < len(line) && (line[j+1] == quote || line[j+1] == escape) {
					buf = append(buf, line[j+1])
					j += 2
					continue
				}
				if c == quote {
					if j+1 < len(line) && line[j+1] == quote {
						buf = append(buf, quote)
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				buf = append(buf, c)
				j++
			}
			if !closed {
				return dst, errors.New("unterminated quoted field")
			}
			k := bytes.Index(line[j:], s)
			if k < 0 {
				buf = append(buf, line[j:]...)
				if buf == nil {
					buf = []byte{}
				}
				return append(dst, csvField{b: buf, quoted: true}), nil
			}
			buf = append(buf, line[j:j+k]...)
			if buf == nil {
				buf = []byte{}
			}
			dst = append(dst, csvField{b: buf, quoted: true})
			i = j + k + len(s)
			continue
		}
		k := bytes.Index(line[i:], s)
		if k < 0 {
			return append(dst, csvField{b: line[i:]}), nil
		}
		dst = append(dst, csvField{b: line[i : i+k]})
		i += k + len(s)
	}
}

func (p *parser) csvRecord(ctx context.Context, rec []byte, line int64) error {
	if len(bytes.TrimSpace(rec)) == 0 {
		return nil // blank lines are skipped
	}
	if p.cfg.Comment != 0 && rec[0] == p.cfg.Comment {
		return nil
	}
	p.clearCells()
	fields, err := splitCSV(rec, p.cfg.Sep, p.cfg.Quote, p.cfg.Escape, nil)
	if err != nil {
		return p.malformed(ctx, rec, line, err.Error())
	}
	var why string
	if len(fields) != len(p.data) {
		why = fmt.Sprintf("expected %d fields, found %d", len(p.data), len(fields))
	}
	for j, i := range p.data {
		if j >= len(fields) {
			break // missing fields stay null
		}
		f := p.cfg.Schema.Fields[i]
		c, ok := p.csvValue(fields[j], f.Type)
		if !ok {
			if why == "" {
				why = fmt.Sprintf("field %q: cannot convert %q to %s", f.Name, clip(fields[j].b), f.Type)
			}
			continue
		}
		p.cells[i] = c
	}
	if why != "" {
		return p.malformed(ctx, rec, line, why)
	}
	return p.appendRow(ctx)
}

func (p *parser) csvValue(f csvField, k batch.Kind) (cell, bool) {
	if !f.quoted && string(f.b) == p.cfg.NullValue {
		return cell{null: true}, true
	}
	if k == batch.String || k == batch.Binary {
		return cell{b: p.own(f.b)}, true
	}
	s := strings.TrimSpace(string(f.b))
	if s == "" || s == p.cfg.NullValue {
		return cell{null: true}, true
	}
	switch k {
	case batch.Int, batch.Long:
		bits := 64
		if k == batch.Int {
			bits = 32
		}
		v, err := strconv.ParseInt(s, 10, bits)
		return cell{i: v}, err == nil
	case batch.Double:
		v, ok := parseDouble(s, p.cfg)
		return cell{f: v}, ok
	case batch.Boolean:
		switch {
		case strings.EqualFold(s, "true"):
			return cell{bo: true}, true
		case strings.EqualFold(s, "false"):
			return cell{bo: false}, true
		}
	case batch.Timestamp:
		v, ok := parseTimestamp(s, p.cfg.TimestampLayout, p.cfg.Location)
		return cell{i: v}, ok
	case batch.Date:
		v, ok := parseDate(s, p.cfg.DateLayout)
		return cell{i: v}, ok
	}
	return cell{}, false
}
