package noop

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
)

func rows(n int) *batch.Batch {
	c := batch.NewColumn(batch.Long, n)
	for i := 0; i < n; i++ {
		c.AppendInt(int64(i))
	}
	return batch.New(batch.Schema{Fields: []batch.Field{{Name: "id", Type: batch.Long}}}, []*batch.Column{c}, n)
}

// run writes the given row counts, one task each, and commits batch id.
func run(t *testing.T, s *Sink, id int64, tasks ...int) {
	t.Helper()
	ctx := context.Background()
	var msgs []sink.Message
	for i, n := range tasks {
		w, err := s.NewWriter(ctx, id, i, batch.Schema{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, rows(n)); err != nil {
			t.Fatal(err)
		}
		m, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := s.Commit(ctx, id, msgs); err != nil {
		t.Fatal(err)
	}
}

func TestCounts(t *testing.T) {
	s := New()
	if s.Description() != "NoopSink" {
		t.Errorf("Description() = %q", s.Description())
	}
	tests := []struct {
		id                         int64
		tasks                      []int
		wantRows, wantWritten, wBt int64
	}{
		{0, []int{3, 4}, 7, 7, 1},
		{1, []int{0}, 7, 7, 2},
		{2, []int{10, 0, 5}, 22, 22, 3},
		{2, []int{10, 0, 5}, 22, 37, 3}, // replay: seen again, not committed again
		{3, nil, 22, 37, 4},
	}
	for _, tc := range tests {
		run(t, s, tc.id, tc.tasks...)
		if s.Rows() != tc.wantRows || s.RowsWritten() != tc.wantWritten || s.Batches() != tc.wBt {
			t.Errorf("after batch %d: rows=%d written=%d batches=%d; want %d %d %d",
				tc.id, s.Rows(), s.RowsWritten(), s.Batches(), tc.wantRows, tc.wantWritten, tc.wBt)
		}
	}
	// An aborted task is seen but never committed.
	ctx := context.Background()
	w, _ := s.NewWriter(ctx, 4, 0, batch.Schema{})
	w.Write(ctx, rows(2))
	w.Abort(ctx)
	if s.RowsWritten() != 39 || s.Rows() != 22 {
		t.Errorf("after abort: written=%d rows=%d", s.RowsWritten(), s.Rows())
	}
	if err := s.Commit(ctx, 5, []sink.Message{"x"}); err == nil || !strings.Contains(err.Error(), "message 0") {
		t.Errorf("foreign message: err = %v", err)
	}
}
