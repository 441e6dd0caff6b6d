package sluice

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/registry"
	"github.com/sluice-stream/sluice/internal/source"
)

// DataStreamReader describes a streaming source (Spark's DataStreamReader).
type DataStreamReader struct {
	session *Session
	format  string
	options map[string]string
}

// Format names the source: "kafka", "eventhubs", "rate",
// "rate-micro-batch", "socket", or a file format ("text", "json", "csv")
// with a "path" option (SourceFormats lists them; docs/reference.md
// describes their options).
func (r *DataStreamReader) Format(format string) *DataStreamReader {
	r.format = format
	return r
}

// Option sets a source option; numbers and booleans are rendered as text,
// as Spark does.
func (r *DataStreamReader) Option(key string, value any) *DataStreamReader {
	r.options[key] = optionString(value)
	return r
}

// Options sets several source options.
func (r *DataStreamReader) Options(opts map[string]string) *DataStreamReader {
	for k, v := range opts {
		r.options[k] = v
	}
	return r
}

// Load returns the streaming DataFrame of the source. Nothing connects
// until a query starts.
func (r *DataStreamReader) Load() *DataFrame {
	opts := make(map[string]string, len(r.options))
	for k, v := range r.options {
		opts[k] = v
	}
	return &DataFrame{session: r.session, source: sourceSpec{format: r.format, options: opts}}
}

type sourceSpec struct {
	format  string
	options map[string]string
}

// opKind is a DataFrame operation.
type opKind int

const (
	opSelectExpr opKind = iota
	opSelect
	opWithColumn
	opFilter
)

type op struct {
	kind  opKind
	exprs []string
	name  string
}

func (o op) String() string {
	switch o.kind {
	case opSelectExpr:
		return "selectExpr(" + strings.Join(o.exprs, ", ") + ")"
	case opSelect:
		return "select(" + strings.Join(o.exprs, ", ") + ")"
	case opWithColumn:
		return fmt.Sprintf("withColumn(%s, %s)", o.name, o.exprs[0])
	}
	return "filter(" + o.exprs[0] + ")"
}

// DataFrame is a streaming DataFrame: a source and the transformations
// applied to each of its micro-batches. DataFrames are immutable; every
// operation returns a new one.
type DataFrame struct {
	session *Session
	source  sourceSpec
	ops     []op
}

func (df *DataFrame) with(o op) *DataFrame {
	ops := make([]op, len(df.ops), len(df.ops)+1)
	copy(ops, df.ops)
	return &DataFrame{session: df.session, source: df.source, ops: append(ops, o)}
}

// SelectExpr projects SQL expressions, e.g. "CAST(value AS STRING) AS json".
func (df *DataFrame) SelectExpr(exprs ...string) *DataFrame {
	return df.with(op{kind: opSelectExpr, exprs: exprs})
}

// Select projects columns; each argument may also be an expression.
func (df *DataFrame) Select(cols ...string) *DataFrame {
	return df.with(op{kind: opSelect, exprs: cols})
}

// WithColumn adds (or replaces) the column name computed by the SQL
// expression expr, e.g. WithColumn("processed_ts", "current_timestamp()").
func (df *DataFrame) WithColumn(name, expr string) *DataFrame {
	return df.with(op{kind: opWithColumn, name: name, exprs: []string{expr}})
}

// Filter keeps the rows for which the SQL condition is true.
func (df *DataFrame) Filter(condition string) *DataFrame {
	return df.with(op{kind: opFilter, exprs: []string{condition}})
}

// Where is Filter.
func (df *DataFrame) Where(condition string) *DataFrame { return df.Filter(condition) }

// Schema resolves the DataFrame's output schema without connecting to the
// source; errors in the expressions are reported here.
func (df *DataFrame) Schema() (batch.Schema, error) {
	f, err := registry.Source(df.source.format)
	if err != nil {
		return batch.Schema{}, err
	}
	v, err := registry.ReadSource(f, df.source.options)
	if err != nil {
		return batch.Schema{}, err
	}
	res, _ := df.session.storageResolver() // a bad storage setting is reported by Start
	in, err := f.Schema(v, source.Env{Storage: res, Logger: df.session.logger})
	if err != nil {
		return batch.Schema{}, err
	}
	t, err := compileTransform(df.ops, in)
	if err != nil {
		return batch.Schema{}, err
	}
	if t == nil {
		return in, nil
	}
	return t.Schema(), nil
}

// WriteStream starts describing the query's sink.
func (df *DataFrame) WriteStream() *DataStreamWriter {
	return &DataStreamWriter{df: df, format: "console", outputMode: "append", options: map[string]string{}}
}
