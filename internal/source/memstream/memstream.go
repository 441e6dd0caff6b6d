// Package memstream is an in-memory source of typed rows, Spark's
// MemoryStream: a test (or a Go program) adds rows, each AddData call is
// one block, and a batch reads every block added since the last one, one
// task per block. Its offset is the number of blocks (Spark's LongOffset),
// so a batch re-run after a restart reads the same blocks again.
//
// The stateful script tests (package streamtest) drive queries with it.
package memstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/source"
)

// Source is a memory stream. It is safe for concurrent use.
type Source struct {
	schema batch.Schema

	mu     sync.Mutex
	blocks []*batch.Batch
	frozen int // AvailableNow's snapshot (-1: none)
}

// New returns an empty stream of rows of schema.
func New(schema batch.Schema) *Source { return &Source{schema: schema, frozen: -1} }

// AddBatch adds one block holding b's rows (b must have the stream's
// schema).
func (s *Source) AddBatch(b *batch.Batch) error {
	if len(b.Columns) != len(s.schema.Fields) {
		return fmt.Errorf("memstream: batch has %d columns for %d fields", len(b.Columns), len(s.schema.Fields))
	}
	b.Schema = s.schema
	if err := b.Validate(); err != nil {
		return fmt.Errorf("memstream: %w", err)
	}
	s.mu.Lock()
	s.blocks = append(s.blocks, b)
	s.mu.Unlock()
	return nil
}

// AddData adds one block of rows; each row holds one Go value per column
// (nil, bool, int/int64, float64, string, []byte; timestamps and dates as
// int64 in their storage unit).
func (s *Source) AddData(rows ...[]any) error {
	cols := make([]*batch.Column, len(s.schema.Fields))
	for i, f := range s.schema.Fields {
		cols[i] = batch.NewColumn(f.Type, len(rows))
	}
	for r, row := range rows {
		if len(row) != len(cols) {
			return fmt.Errorf("memstream: row %d has %d values for %d columns", r, len(row), len(cols))
		}
		for i, v := range row {
			if err := appendValue(cols[i], v); err != nil {
				return fmt.Errorf("memstream: row %d column %s: %w", r, s.schema.Fields[i].Name, err)
			}
		}
	}
	s.mu.Lock()
	s.blocks = append(s.blocks, batch.New(s.schema, cols, len(rows)))
	s.mu.Unlock()
	return nil
}

func appendValue(c *batch.Column, v any) error {
	if v == nil {
		c.AppendNull()
		return nil
	}
	switch c.Type {
	case batch.Boolean:
		if b, ok := v.(bool); ok {
			c.AppendBool(b)
			return nil
		}
	case batch.Int, batch.Long, batch.Timestamp, batch.Date:
		switch x := v.(type) {
		case int:
			c.AppendInt(int64(x))
			return nil
		case int64:
			c.AppendInt(x)
			return nil
		}
	case batch.Double:
		switch x := v.(type) {
		case float64:
			c.AppendFloat(x)
			return nil
		case int:
			c.AppendFloat(float64(x))
			return nil
		}
	case batch.String:
		if x, ok := v.(string); ok {
			c.AppendBytes([]byte(x))
			return nil
		}
	case batch.Binary:
		if x, ok := v.([]byte); ok {
			c.AppendBytes(x)
			return nil
		}
	}
	return fmt.Errorf("cannot store %T in a %s column", v, c.Type)
}

// Offset is a number of blocks.
type Offset int64

// JSON implements source.Offset.
func (o Offset) JSON() string { return strconv.FormatInt(int64(o), 10) }

// Description implements source.Source.
func (s *Source) Description() string {
	return "MemoryStream[" + strings.Join(s.schema.Names(), ",") + "]"
}

// Schema implements source.Source.
func (s *Source) Schema() batch.Schema { return s.schema }

// InitialOffset implements source.Source: no block read yet.
func (s *Source) InitialOffset(context.Context) (source.Offset, error) { return Offset(0), nil }

// ParseOffset implements source.Source.
func (s *Source) ParseOffset(js string) (source.Offset, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(js), 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("memstream: bad offset %q", js)
	}
	return Offset(n), nil
}

// PrepareAvailableNow implements source.AvailableNow.
func (s *Source) PrepareAvailableNow(context.Context) error {
	s.mu.Lock()
	s.frozen = len(s.blocks)
	s.mu.Unlock()
	return nil
}

// Latest implements source.Limited: every block added (read limits are
// ignored, as MemoryStream ignores them).
func (s *Source) Latest(_ context.Context, start source.Offset, _ source.ReadLimit) (end, latest source.Offset, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.blocks)
	if s.frozen >= 0 {
		n = s.frozen
	}
	return Offset(n), Offset(n), nil
}

// Open implements source.Source: one task per block in (start, end].
func (s *Source) Open(_ context.Context, start, end source.Offset) (source.Reader, error) {
	from, _ := start.(Offset)
	to, ok := end.(Offset)
	if !ok {
		return nil, fmt.Errorf("memstream: end offset %T", end)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(to) > len(s.blocks) {
		return nil, fmt.Errorf("memstream: offset %d is past the %d blocks added", to, len(s.blocks))
	}
	r := &reader{}
	for i := from; i < to; i++ {
		r.tasks = append(r.tasks, task{n: int(i), b: s.blocks[i]})
	}
	return r, nil
}

// Commit implements source.Source.
func (s *Source) Commit(context.Context, source.Offset) error { return nil }

// Close implements source.Source.
func (s *Source) Close() error { return nil }

type task struct {
	n int
	b *batch.Batch
}

func (t task) String() string { return "block-" + strconv.Itoa(t.n) }
func (t task) Size() int64    { return int64(t.b.N) }

type reader struct{ tasks []source.Task }

func (r *reader) Tasks() []source.Task { return r.tasks }
func (r *reader) Close() error         { return nil }

func (r *reader) Read(ctx context.Context, t source.Task, emit source.Emit) error {
	b := t.(task).b
	if b.N == 0 {
		return nil
	}
	return emit(ctx, b)
}
