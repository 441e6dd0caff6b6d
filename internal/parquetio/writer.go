// Package parquetio writes sluice batches to Parquet files column by column,
// with a bound on the bytes a row group may buffer, and keeps the per-column
// statistics (null counts, min/max) that table formats such as Delta record.
//
// Type mapping (every column is OPTIONAL, as in files Spark writes):
//
//	Boolean    BOOLEAN
//	Int        INT32 (INT(32,true))
//	Long       INT64 (INT(64,true))
//	Double     DOUBLE
//	String     BYTE_ARRAY (STRING)
//	Binary     BYTE_ARRAY
//	Timestamp  INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true)
//	Date       INT32 DATE
//	struct     group of the fields, in order
//	array      LIST in the three-level layout <name>.list.element
//	map        MAP: <name>.key_value.{key (required), value}
//
// Nested fields, elements and map values are OPTIONAL too (Spark writes
// its schema's asNullable), so Kafka's headers column is
// <name>.list.element.{key, value}, as Spark writes it.
//
// The Null kind (a bare NULL literal, Spark's void) is refused, as Spark
// refuses it. Columns appear in the file in schema order; the Spark schema is
// stored in the key-value metadata under SparkRowMetadataKey.
//
// Writes are column-wise: cells go from the batch's slices into a reused
// value buffer in chunks of a few thousand rows, so memory per row is
// constant and no per-row objects are allocated. Once the encoded pages of
// the current row group exceed Options.RowGroupBytes the row group is
// written out, so a file of any size is written with bounded memory.
package parquetio

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/sluice-stream/sluice/batch"
)

// DefaultRowGroupBytes bounds the buffered size of a row group (64 MiB).
const DefaultRowGroupBytes = 64 << 20

// chunkRows is how many rows are converted to Parquet values at a time.
const chunkRows = 4096

// Compressions lists the accepted compression names, Spark's spelling.
var Compressions = []string{"none", "uncompressed", "snappy", "gzip", "zstd"}

// Codec returns the Parquet codec for a compression name (case-insensitive)
// and the infix Spark puts in file names for it (".snappy", ".gz",
// ".zstd" or "").
func Codec(name string) (compress.Codec, string, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "none", "uncompressed":
		return &uncompressed.Codec{}, "", nil
	case "snappy":
		return &snappy.Codec{}, ".snappy", nil
	case "gzip":
		return &gzip.Codec{}, ".gz", nil
	case "zstd":
		return &zstd.Codec{}, ".zstd", nil
	}
	return nil, "", fmt.Errorf("unknown Parquet compression %q (allowed: %s)", name, strings.Join(Compressions, ", "))
}

// Options configure a Writer.
type Options struct {
	// Codec compresses pages; nil means snappy, Spark's default.
	Codec compress.Codec
	// RowGroupBytes bounds a row group's buffered (encoded) size; ≤ 0
	// means DefaultRowGroupBytes.
	RowGroupBytes int64
	// Metadata is added to the file's key-value metadata.
	Metadata map[string]string
}

// ColumnStats describes the cells written to one column.
type ColumnStats struct {
	// NullCount counts null cells; for a field inside a struct, the rows
	// where it or an enclosing struct is null.
	NullCount int64
	// HasMinMax is true once a non-null value with an order was written:
	// Int, Long, Date and Timestamp use MinInt/MaxInt, Double uses
	// MinFloat/MaxFloat and String uses MinBytes/MaxBytes. Boolean,
	// Binary, structs, arrays and maps keep no min/max.
	HasMinMax          bool
	MinInt, MaxInt     int64
	MinFloat, MaxFloat float64
	MinBytes, MaxBytes []byte
	// NaN is set when a Double column held NaN; its min/max then leave
	// NaN out.
	NaN bool
	// Children are a struct's fields' statistics, in field order (nil for
	// other kinds). Arrays and maps keep only NullCount: statistics of
	// their elements would not describe rows.
	Children []ColumnStats
}

// Writer writes one Parquet file.
type Writer struct {
	pw            *parquet.Writer
	fields        []batch.Field
	leaf          []int    // first leaf column of each field
	shapes        []*shape // nested fields' shapes (nil for flat fields)
	shred         shredder
	vals, vals2   []parquet.Value
	rowGroupBytes int64
	flushedSize   int64
	rows          int64
	stats         []ColumnStats
}

// NewWriter returns a writer of fields to out. Close must be called to
// finish the file; out is not closed.
func NewWriter(out io.Writer, fields []batch.Field, opts Options) (*Writer, error) {
	schema, err := Schema(fields)
	if err != nil {
		return nil, err
	}
	codec := opts.Codec
	if codec == nil {
		codec = &snappy.Codec{}
	}
	rg := opts.RowGroupBytes
	if rg <= 0 {
		rg = DefaultRowGroupBytes
	}
	sparkSchema, err := SparkSchemaJSON(fields, true)
	if err != nil {
		return nil, err
	}
	wopts := []parquet.WriterOption{
		schema,
		parquet.Compression(codec),
		parquet.CreatedBy("sluice", "", ""),
		parquet.KeyValueMetadata(SparkRowMetadataKey, sparkSchema),
	}
	for k, v := range opts.Metadata {
		wopts = append(wopts, parquet.KeyValueMetadata(k, v))
	}
	w := &Writer{
		pw:            parquet.NewWriter(out, wopts...),
		fields:        fields,
		leaf:          make([]int, len(fields)),
		vals:          make([]parquet.Value, 0, chunkRows),
		rowGroupBytes: rg,
		stats:         make([]ColumnStats, len(fields)),
	}
	n := 0
	w.shapes = make([]*shape, len(fields))
	for i, f := range fields {
		w.leaf[i] = n
		if f.Type.IsNested() {
			w.shapes[i] = newShape(f.Type, &n, 0)
		} else {
			n++
		}
	}
	w.shred.bufs = make([][]parquet.Value, n)
	return w, nil
}

// Rows returns the number of rows written so far.
func (w *Writer) Rows() int64 { return w.rows }

// Stats returns the statistics of each field, in field order. The slices
// in it belong to the writer.
func (w *Writer) Stats() []ColumnStats {
	for i, s := range w.shapes {
		if s != nil {
			w.stats[i] = s.columnStats()
		}
	}
	return w.stats
}

// Write appends rows of cols, whose kinds must match the writer's fields in
// order. With sel nil the first n rows are written; otherwise the rows
// whose indexes are listed in sel, in that order (n is ignored).
func (w *Writer) Write(cols []*batch.Column, sel []int32, n int) error {
	if len(cols) != len(w.fields) {
		return fmt.Errorf("parquet writer: %d columns for %d fields", len(cols), len(w.fields))
	}
	for i, c := range cols {
		if c.Type != w.fields[i].Type {
			return fmt.Errorf("parquet writer: column %q is %s, want %s", w.fields[i].Name, c.Type, w.fields[i].Type)
		}
	}
	if sel != nil {
		n = len(sel)
	}
	for from := 0; from < n; from += chunkRows {
		to := min(from+chunkRows, n)
		for i, c := range cols {
			if err := w.writeColumn(i, c, sel, from, to); err != nil {
				return fmt.Errorf("parquet writer: column %q: %w", w.fields[i].Name, err)
			}
		}
		w.rows += int64(to - from)
		if w.Buffered() >= w.rowGroupBytes {
			if err := w.FlushRowGroup(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Buffered returns an estimate of the bytes held by the current row group
// (encoded pages plus values not yet encoded).
func (w *Writer) Buffered() int64 { return w.pw.Size() - w.flushedSize }

// FlushRowGroup writes out the current row group now, so that its memory
// can be reused; the next rows start a new row group.
func (w *Writer) FlushRowGroup() error {
	if err := w.pw.Flush(); err != nil {
		return fmt.Errorf("parquet writer: flushing row group: %w", err)
	}
	w.flushedSize = w.pw.Size()
	return nil
}

// Close writes the last row group and the footer.
func (w *Writer) Close() error {
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("parquet writer: closing: %w", err)
	}
	return nil
}

// rowAt maps position j of the chunk to a row of the batch.
func rowAt(sel []int32, j int) int {
	if sel != nil {
		return int(sel[j])
	}
	return j
}

// bytesOf views s as bytes without copying; the Parquet writer only reads
// them (it copies values into its page buffers).
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (w *Writer) writeColumn(i int, c *batch.Column, sel []int32, from, to int) error {
	leaf := w.leaf[i]
	st := &w.stats[i]
	cw := w.pw.ColumnWriters()
	if s := w.shapes[i]; s != nil {
		for j := from; j < to; j++ {
			w.shred.shred(s, c, rowAt(sel, j), 0, 0, false)
		}
		for l := s.leaf; l < s.leaf+s.leaves; l++ {
			if _, err := cw[l].WriteRowValues(w.shred.bufs[l]); err != nil {
				return err
			}
			w.shred.bufs[l] = w.shred.bufs[l][:0]
		}
		return nil
	}
	null := parquet.NullValue().Level(0, 0, leaf)
	vals := w.vals[:0]
	valid := c.Valid
	switch c.Type {
	case batch.Boolean:
		for j := from; j < to; j++ {
			r := rowAt(sel, j)
			if valid != nil && !valid[r] {
				vals = append(vals, null)
				st.NullCount++
				continue
			}
			vals = append(vals, parquet.BooleanValue(c.Bools[r]).Level(0, 1, leaf))
		}
	case batch.Int, batch.Date, batch.Long, batch.Timestamp:
		wide := c.Type == batch.Long || c.Type == batch.Timestamp
		for j := from; j < to; j++ {
			r := rowAt(sel, j)
			if valid != nil && !valid[r] {
				vals = append(vals, null)
				st.NullCount++
				continue
			}
			v := c.Ints[r]
			if wide {
				vals = append(vals, parquet.Int64Value(v).Level(0, 1, leaf))
			} else {
				vals = append(vals, parquet.Int32Value(int32(v)).Level(0, 1, leaf))
			}
			if !st.HasMinMax {
				st.MinInt, st.MaxInt, st.HasMinMax = v, v, true
			} else if v < st.MinInt {
				st.MinInt = v
			} else if v > st.MaxInt {
				st.MaxInt = v
			}
		}
	case batch.Double:
		for j := from; j < to; j++ {
			r := rowAt(sel, j)
			if valid != nil && !valid[r] {
				vals = append(vals, null)
				st.NullCount++
				continue
			}
			v := c.Floats[r]
			vals = append(vals, parquet.DoubleValue(v).Level(0, 1, leaf))
			switch {
			case math.IsNaN(v):
				st.NaN = true
			case !st.HasMinMax:
				st.MinFloat, st.MaxFloat, st.HasMinMax = v, v, true
			case v < st.MinFloat:
				st.MinFloat = v
			case v > st.MaxFloat:
				st.MaxFloat = v
			}
		}
	case batch.String, batch.Binary:
		ordered := c.Type == batch.String
		for j := from; j < to; j++ {
			r := rowAt(sel, j)
			v := c.Bytes[r]
			if (valid != nil && !valid[r]) || v == nil {
				vals = append(vals, null)
				st.NullCount++
				continue
			}
			vals = append(vals, parquet.ByteArrayValue(v).Level(0, 1, leaf))
			if !ordered {
				continue
			}
			if !st.HasMinMax {
				st.MinBytes = append(st.MinBytes[:0], v...)
				st.MaxBytes = append(st.MaxBytes[:0], v...)
				st.HasMinMax = true
			} else if bytes.Compare(v, st.MinBytes) < 0 {
				st.MinBytes = append(st.MinBytes[:0], v...)
			} else if bytes.Compare(v, st.MaxBytes) > 0 {
				st.MaxBytes = append(st.MaxBytes[:0], v...)
			}
		}
	default:
		return fmt.Errorf("type %s cannot be written to Parquet", c.Type)
	}
	w.vals = vals
	_, err := cw[leaf].WriteRowValues(vals)
	return err
}
