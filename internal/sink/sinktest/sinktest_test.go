package sinktest

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
)

func oneRow(v int64) *batch.Batch {
	s := batch.Schema{Fields: []batch.Field{{Name: "v", Type: batch.Long}}}
	c := batch.NewColumn(batch.Long, 1)
	c.AppendInt(v)
	return batch.New(s, []*batch.Column{c}, 1)
}

func commit(t *testing.T, s *Sink, id int64, vals ...int64) {
	t.Helper()
	ctx := context.Background()
	w, err := s.NewWriter(ctx, id, 0, batch.Schema{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if err := w.Write(ctx, oneRow(v)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, id, []sink.Message{m}); err != nil {
		t.Fatal(err)
	}
}

func TestRecommitsAndDuplicates(t *testing.T) {
	ev := &Events{}
	s := New("main", ev)
	commit(t, s, 0, 1, 2)
	commit(t, s, 0, 1, 2) // a replay: not added again
	commit(t, s, 1, 2, 3) // row 2 a second time: a duplicate
	if s.NumRows() != 4 || fmt.Sprint(s.Recommits()) != "[0]" || fmt.Sprint(s.CommitOrder()) != "[0 0 1]" {
		t.Fatalf("%s; rows %d", s, s.NumRows())
	}
	if d := s.Duplicates(); len(d) != 1 || d[0] != "2 (batches 0 and 1)" {
		t.Fatalf("duplicates %v", d)
	}
	if fmt.Sprint(ev.List()) != "[main commit 0 main commit 0 main commit 1]" {
		t.Fatalf("events %v", ev.List())
	}
	w, _ := s.NewWriter(context.Background(), 2, 3, batch.Schema{})
	w.Abort(context.Background())
	if st := s.Writers()[WriterKey{2, 3}]; st != Aborted {
		t.Fatalf("aborted writer state %q", st)
	}
}
