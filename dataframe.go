package sluice

import (
	"errors"
	"maps"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/plan"
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
	return &DataFrame{session: r.session, plan: plan.NewScan(r.format, opts)}
}

// DataFrame is a streaming DataFrame: a source and the operations applied
// to its stream, kept as one logical plan (package plan) that Start
// analyses. DataFrames are immutable; every operation returns a new one.
type DataFrame struct {
	session *Session
	plan    *plan.Node
}

func (df *DataFrame) with(o plan.Op) *DataFrame {
	return &DataFrame{session: df.session, plan: df.plan.With(o)}
}

// SelectExpr projects SQL expressions, e.g. "CAST(value AS STRING) AS json".
func (df *DataFrame) SelectExpr(exprs ...string) *DataFrame {
	return df.with(plan.Op{Kind: plan.SelectExpr, Exprs: exprs})
}

// Select projects columns; each argument may also be an expression.
func (df *DataFrame) Select(cols ...string) *DataFrame {
	return df.with(plan.Op{Kind: plan.Select, Exprs: cols})
}

// WithColumn adds (or replaces) the column name computed by the SQL
// expression expr, e.g. WithColumn("processed_ts", "current_timestamp()").
func (df *DataFrame) WithColumn(name, expr string) *DataFrame {
	return df.with(plan.Op{Kind: plan.WithColumn, Name: name, Expr: expr})
}

// Filter keeps the rows for which the SQL condition is true.
func (df *DataFrame) Filter(condition string) *DataFrame {
	return df.with(plan.Op{Kind: plan.Filter, Expr: condition})
}

// Where is Filter.
func (df *DataFrame) Where(condition string) *DataFrame { return df.Filter(condition) }

// WithWatermark declares eventTime (a timestamp column) the stream's event
// time, with delay (a Spark interval such as "10 seconds") as how late a
// row may arrive: after each batch the watermark becomes the largest event
// time seen minus delay, and the next batch drops rows at or below it and
// evicts the state it completed (windows, keys). A bad column, a column
// that is not a timestamp or a negative delay is reported by Start.
func (df *DataFrame) WithWatermark(eventTime, delay string) *DataFrame {
	return df.with(plan.Op{Kind: plan.WithWatermark, EventTime: eventTime, Delay: delay})
}

// GroupBy groups the stream by SQL expressions (columns, or later
// window(...)) for an aggregation: GroupBy("device").Agg("count(*) AS n").
// With no expression, Agg aggregates the whole stream.
func (df *DataFrame) GroupBy(exprs ...string) *GroupedData {
	return &GroupedData{df: df, keys: append([]string{}, exprs...)}
}

// Agg aggregates the whole stream (a global aggregation): Agg("count(*)").
func (df *DataFrame) Agg(exprs ...string) *DataFrame { return df.GroupBy().Agg(exprs...) }

// DropDuplicates keeps the first row of every distinct value of cols (all
// columns when none are given), across the whole stream. The keys seen are
// kept in the state store; when the event-time column is among cols, keys
// the watermark passed are forgotten and later rows at or below the
// watermark are dropped as late.
func (df *DataFrame) DropDuplicates(cols ...string) *DataFrame {
	return df.with(plan.Op{Kind: plan.Deduplicate, Columns: append([]string{}, cols...)})
}

// DropDuplicatesWithinWatermark drops rows whose cols (all columns when
// none are given) equal those of a row seen within the watermark delay:
// each key is remembered until the watermark passes its first event time
// plus the delay. It needs WithWatermark before it.
func (df *DataFrame) DropDuplicatesWithinWatermark(cols ...string) *DataFrame {
	return df.with(plan.Op{Kind: plan.Deduplicate, Columns: append([]string{}, cols...), WithinWatermark: true})
}

// GroupedData is a DataFrame grouped for an aggregation (Spark's
// RelationalGroupedDataset); Agg completes it.
type GroupedData struct {
	df   *DataFrame
	keys []string
}

// Agg computes aggregate expressions per group: count(*), count(col),
// sum, avg, min, max, first, last and approx_count_distinct, each
// optionally named ("sum(amount) AS total") or inside an expression
// ("round(avg(t), 1) AS avg_t"). The result has the grouping columns, then
// one column per expression.
func (g *GroupedData) Agg(exprs ...string) *DataFrame {
	return g.df.with(plan.Op{Kind: plan.Aggregate, GroupBy: g.keys, Aggs: append([]string{}, exprs...)})
}

// Count is Agg("count(*) AS count").
func (g *GroupedData) Count() *DataFrame { return g.Agg("count(*) AS count") }

// sourceSchema resolves the source's schema without connecting.
func (df *DataFrame) sourceSchema() (batch.Schema, error) {
	src := df.plan.Source()
	f, err := registry.Source(src.Format)
	if err != nil {
		return batch.Schema{}, err
	}
	v, err := registry.ReadSource(f, src.Options)
	if err != nil {
		return batch.Schema{}, err
	}
	res, _ := df.session.storageResolver() // a bad storage setting is reported by Start
	return f.Schema(v, source.Env{Storage: res, Logger: df.session.logger, Conf: maps.Clone(df.session.conf)})
}

// Schema resolves the DataFrame's output schema without connecting to the
// source; errors in the expressions are reported here.
func (df *DataFrame) Schema() (batch.Schema, error) {
	in, err := df.sourceSchema()
	if err != nil {
		return batch.Schema{}, err
	}
	q, err := plan.Analyze(df.plan, in, plan.Options{OutputMode: plan.ModeUpdate})
	if err != nil {
		var me *plan.ModeError
		if !errors.As(err, &me) {
			return batch.Schema{}, err
		}
	}
	if q == nil {
		// Only the output mode failed: analyse again in complete mode,
		// which every aggregation accepts, for the schema.
		if q, err = plan.Analyze(df.plan, in, plan.Options{OutputMode: plan.ModeComplete}); err != nil {
			return batch.Schema{}, err
		}
	}
	return q.Output, nil
}

// Explain returns the DataFrame's logical plan and the physical plan a
// query in output mode "update" would run (stateless stage, exchange,
// stateful stage), as `sluice explain` prints them. A DataStreamWriter's
// Explain uses its own output mode.
func (df *DataFrame) Explain() (string, error) {
	return df.WriteStream().OutputMode("update").Explain()
}

// WriteStream starts describing the query's sink.
func (df *DataFrame) WriteStream() *DataStreamWriter {
	return &DataStreamWriter{df: df, format: "console", outputMode: "append", options: map[string]string{}}
}
