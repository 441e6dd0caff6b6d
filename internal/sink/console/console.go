// Package console is the console sink: it prints each committed batch as a
// table in the format of Spark's console sink (a "Batch: N" banner followed
// by Dataset.show output).
//
// Like Spark's, it is for development, not a fault-tolerant output: it is not
// idempotent, so a batch replayed after a crash is printed again. Unlike
// Spark's, which collects every row of the batch to the driver, each task
// writer keeps only the rows that can be shown (numRows) and counts the rest,
// so memory stays bounded whatever the batch size.
//
// Its progress description is "ConsoleSink" (Spark 4 reports
// "org.apache.spark.sql.execution.streaming.ConsoleTable$"; the short name
// reads better in sluice's progress and UI).
package console

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
)

// Description is the sink's progress description.
const Description = "ConsoleSink"

// banner is the line above and below "Batch: N" (43 dashes, as in Spark).
const banner = "-------------------------------------------\n"

// Sink prints batches to an io.Writer. Create it with New.
type Sink struct {
	w        io.Writer
	numRows  int
	truncate int
	loc      *time.Location

	mu         sync.Mutex // serialises output; guards lastHeader
	lastHeader []string   // column names of the latest writer's schema
}

var _ sink.Sink = (*Sink)(nil)

// New returns a console sink writing to w (os.Stdout when nil). Recognised
// options, matched case-insensitively as Spark matches option names:
//
//	numRows   rows shown per batch, a non-negative integer (default 20)
//	truncate  "true" (cells cut to 20 characters), "false" (no cutting), or
//	          a non-negative integer width (0 = no cutting); default "true"
//
// The query's options (sink.QueryOptions: checkpointLocation and the like)
// are accepted and ignored; any other key is an error. Timestamps are
// shown in the session time zone, UTC, as casts and the file sinks write
// them (Spark uses spark.sql.session.timeZone for all of them); see
// SetLocation.
func New(w io.Writer, opts map[string]string) (*Sink, error) {
	v, err := Spec.Read(opts, sink.QueryOptions)
	if err != nil {
		return nil, err
	}
	return build(w, v)
}

func build(w io.Writer, o options.Values) (*Sink, error) {
	if w == nil {
		w = os.Stdout
	}
	s := &Sink{w: w, numRows: DefaultNumRows, truncate: DefaultTruncate, loc: time.UTC}
	if v, ok := o.Get("numRows"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("console sink: option numRows=%q: want a non-negative integer", v)
		}
		s.numRows = n
	}
	if v, ok := o.Get("truncate"); ok {
		t, err := parseTruncate(v)
		if err != nil {
			return nil, err
		}
		s.truncate = t
	}
	return s, nil
}

// Spec describes the console sink's options. Their values are checked by
// New, with Spark's leniency (truncate takes a boolean or a width).
var Spec = &options.Spec{What: "console sink", Fields: []options.Field{
	{Name: "numRows", Type: options.String, Default: "20", Doc: "Rows shown per batch (a non-negative integer); the rest are counted, not held."},
	{Name: "truncate", Type: options.String, Default: "true",
		Doc: "true cuts cells to 20 characters, false never cuts, a number cuts to that width (0 = never)."},
}}

// Format registers "console".
var Format = sink.Format{
	Name:        "console",
	Summary:     "prints each batch as Spark's console sink does (development; a replayed batch prints again)",
	Options:     Spec,
	OutputModes: sink.OutputModes(),
	Validate: func(v options.Values) error {
		_, err := build(io.Discard, v)
		return err
	},
	Open: func(v options.Values, env sink.Env) (sink.Sink, error) { return build(env.Stdout, v) },
}

func parseTruncate(v string) (int, error) {
	t := strings.TrimSpace(v)
	switch {
	case strings.EqualFold(t, "true"):
		return DefaultTruncate, nil
	case strings.EqualFold(t, "false"):
		return 0, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("console sink: option truncate=%q: want true, false or a non-negative integer width", v)
	}
	return n, nil
}

// SetLocation sets the time zone timestamps are shown in (default and nil:
// UTC). Call it before the first batch.
func (s *Sink) SetLocation(loc *time.Location) {
	if loc == nil {
		loc = time.UTC
	}
	s.loc = loc
}

// NumRows returns how many rows a batch shows.
func (s *Sink) NumRows() int { return s.numRows }

// Truncate returns the cell width cells are cut to (0 = none).
func (s *Sink) Truncate() int { return s.truncate }

// Description returns "ConsoleSink".
func (s *Sink) Description() string { return Description }

// StagedUntilCommit implements sink.Staged: rows are printed at Commit.
func (s *Sink) StagedUntilCommit() bool { return true }

// NewWriter returns a writer for one task of batch batchID.
func (s *Sink) NewWriter(ctx context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error) {
	s.mu.Lock()
	s.lastHeader = schema.Names()
	s.mu.Unlock()
	return &writer{s: s, schema: schema}, nil
}

// taskRows is a writer's commit message: the first rows of the task, already
// rendered, and the task's total row count.
type taskRows struct {
	header []string
	rows   [][]string
	total  int64
}

type writer struct {
	s      *Sink
	schema batch.Schema
	rows   [][]string
	total  int64
}

// Write renders and keeps rows until the task has numRows of them and
// counts the rest.
func (w *writer) Write(ctx context.Context, b *batch.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(b.Columns) != len(w.schema.Fields) {
		return fmt.Errorf("console sink: batch has %d columns, schema %s has %d", len(b.Columns), w.schema, len(w.schema.Fields))
	}
	for r := 0; r < b.N && len(w.rows) < w.s.numRows; r++ {
		cells := make([]string, len(b.Columns))
		for i, c := range b.Columns {
			cells[i] = prepareCell(cellAt(c, r, w.s.loc), w.s.truncate)
		}
		w.rows = append(w.rows, cells)
	}
	w.total += int64(b.N)
	return nil
}

func (w *writer) Close(ctx context.Context) (sink.Message, error) {
	return &taskRows{header: w.schema.Names(), rows: w.rows, total: w.total}, nil
}

func (w *writer) Abort(ctx context.Context) { w.rows = nil }

// Commit prints batch batchID: the banner, then the first numRows rows of
// the tasks in task order, then an empty line. It is not idempotent: a
// replayed batch is printed again. A batch without tasks prints an empty
// table under the column names of the last schema a writer was made for.
func (s *Sink) Commit(ctx context.Context, batchID int64, messages []sink.Message) error {
	var (
		header []string
		rows   [][]string
		total  int64
	)
	for i, m := range messages {
		tr, ok := m.(*taskRows)
		if !ok {
			return fmt.Errorf("console sink: batch %d: message %d is %T, not from a console writer", batchID, i, m)
		}
		if header == nil {
			header = tr.header
		}
		for _, r := range tr.rows {
			if len(rows) == s.numRows {
				break
			}
			rows = append(rows, r)
		}
		total += tr.total
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if header == nil {
		header = s.lastHeader
	}
	var sb strings.Builder
	sb.WriteString(banner)
	sb.WriteString("Batch: " + strconv.FormatInt(batchID, 10) + "\n")
	sb.WriteString(banner)
	renderTable(&sb, header, rows, total > int64(s.numRows), s.numRows, s.truncate)
	sb.WriteByte('\n')
	if _, err := io.WriteString(s.w, sb.String()); err != nil {
		return fmt.Errorf("console sink: print batch %d: %w", batchID, err)
	}
	return nil
}

// Close does nothing; the writer passed to New is the caller's to close.
func (s *Sink) Close() error { return nil }
