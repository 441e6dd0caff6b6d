package foreachbatch

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
)

var _ sink.Sink = (*Sink)(nil)

var schema = batch.Schema{Fields: []batch.Field{
	{Name: "id", Type: batch.Long, Nullable: true},
	{Name: "name", Type: batch.String, Nullable: true},
}}

// chunk builds a batch of (id, name) rows; a negative id is a null id and
// an empty name a null name.
func chunk(ids ...int64) *batch.Batch {
	idc := batch.NewColumn(batch.Long, len(ids))
	namec := batch.NewColumn(batch.String, len(ids))
	for _, id := range ids {
		if id < 0 {
			idc.AppendNull()
		} else {
			idc.AppendInt(id)
		}
		if id%3 == 0 {
			namec.AppendNull()
		} else {
			namec.AppendBytes([]byte(fmt.Sprintf("n%d", id)))
		}
	}
	return batch.New(schema, []*batch.Column{idc, namec}, len(ids))
}

// rows flattens batches to rows.
func rows(bs ...*batch.Batch) [][]any {
	var out [][]any
	for _, b := range bs {
		for i := range b.N {
			out = append(out, b.Row(i))
		}
	}
	return out
}

// call is one foreachBatch invocation as the test function saw it.
type call struct {
	batchID int64
	rows    [][]any
	schema  batch.Schema
}

// run drives s as the engine does: one writer per task, concurrently,
// then Commit with the messages in task order.
func run(t *testing.T, s *Sink, id int64, tasks [][]*batch.Batch) error {
	t.Helper()
	ctx := context.Background()
	msgs := make([]sink.Message, len(tasks))
	var wg sync.WaitGroup
	errs := make([]error, len(tasks))
	for ti, chunks := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.NewWriter(ctx, id, ti, schema)
			if err != nil {
				errs[ti] = err
				return
			}
			for _, c := range chunks {
				if err := w.Write(ctx, c); err != nil {
					errs[ti] = err
					w.Abort(ctx)
					return
				}
			}
			msgs[ti], errs[ti] = w.Close(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.Commit(ctx, id, msgs)
}

func TestCalledOncePerCommitWithTaskOrderedRows(t *testing.T) {
	var calls []call
	s := New(func(_ context.Context, b *batch.Batch, id int64) error {
		if err := b.Validate(); err != nil {
			t.Errorf("batch %d handed over invalid: %v", id, err)
		}
		calls = append(calls, call{id, rows(b), b.Schema})
		return nil
	})
	if s.Description() != "ForeachBatchSink" {
		t.Errorf("Description = %q", s.Description())
	}
	batches := [][][]*batch.Batch{
		{{chunk(1, 2), chunk(3)}, {chunk(4, -1)}, {}},
		{{chunk(10)}, {chunk(11, 12), chunk(13)}},
		{{}},
	}
	for id, tasks := range batches {
		if err := run(t, s, int64(id), tasks); err != nil {
			t.Fatalf("batch %d: %v", id, err)
		}
	}
	// A replay of batch 1 (same id, same rows) calls the function again.
	if err := run(t, s, 1, batches[1]); err != nil {
		t.Fatalf("replay: %v", err)
	}
	wantIDs := []int64{0, 1, 2, 1}
	if len(calls) != len(wantIDs) {
		t.Fatalf("%d calls, want %d", len(calls), len(wantIDs))
	}
	for i, c := range calls {
		id := wantIDs[i]
		var want [][]any
		for _, chunks := range batches[id] {
			want = append(want, rows(chunks...)...)
		}
		if c.batchID != id {
			t.Errorf("call %d: batch id %d, want %d", i, c.batchID, id)
		}
		if len(c.rows) != len(want) || (len(want) > 0 && !reflect.DeepEqual(c.rows, want)) {
			t.Errorf("call %d (batch %d): rows %v, want %v", i, id, c.rows, want)
		}
		if c.schema.String() != schema.String() {
			t.Errorf("call %d: schema %s, want %s", i, c.schema, schema)
		}
	}
}

func TestFunctionErrorFailsCommit(t *testing.T) {
	boom := errors.New("downstream unavailable")
	s := New(func(context.Context, *batch.Batch, int64) error { return boom })
	err := run(t, s, 7, [][]*batch.Batch{{chunk(1)}})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "batch 7") {
		t.Fatalf("Commit = %v, want the function's error with the batch id", err)
	}
}

func TestForeignMessageRefused(t *testing.T) {
	s := New(func(context.Context, *batch.Batch, int64) error { t.Error("function called"); return nil })
	if err := s.Commit(context.Background(), 0, []sink.Message{"not ours"}); err == nil {
		t.Fatal("Commit accepted a message from another sink")
	}
}

func TestStreamingDeliversEveryChunk(t *testing.T) {
	type got struct {
		batchID int64
		task    int
		ids     []any
	}
	var mu sync.Mutex
	var gots []got
	s := NewStreaming(func(_ context.Context, c *batch.Batch, id int64, task int) error {
		var ids []any
		for i := range c.N {
			ids = append(ids, c.Row(i)[0])
		}
		mu.Lock()
		gots = append(gots, got{id, task, ids})
		mu.Unlock()
		return nil
	})
	tasks := [][]*batch.Batch{{chunk(1, 2), chunk(3)}, {chunk(4)}}
	if err := run(t, s, 5, tasks); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(gots, func(a, b got) int { return int(a.ids[0].(int64) - b.ids[0].(int64)) })
	want := []got{{5, 0, []any{int64(1), int64(2)}}, {5, 0, []any{int64(3)}}, {5, 1, []any{int64(4)}}}
	if !reflect.DeepEqual(gots, want) {
		t.Errorf("chunks %v, want %v", gots, want)
	}

	boom := errors.New("no")
	s = NewStreaming(func(context.Context, *batch.Batch, int64, int) error { return boom })
	if err := run(t, s, 6, tasks); !errors.Is(err, boom) {
		t.Errorf("run = %v, want the function's error", err)
	}
}

func TestConcat(t *testing.T) {
	all := batch.Schema{Fields: []batch.Field{
		{Name: "b", Type: batch.Boolean}, {Name: "i", Type: batch.Int}, {Name: "d", Type: batch.Double},
		{Name: "s", Type: batch.String}, {Name: "x", Type: batch.Binary}, {Name: "h", Type: batch.Headers},
		{Name: "ts", Type: batch.Timestamp}, {Name: "z", Type: batch.Null},
	}}
	// mk builds a batch of the all-kinds schema with n rows starting at
	// base; nulls puts a null in every column's first cell.
	mk := func(base, n int, nulls bool) *batch.Batch {
		cols := make([]*batch.Column, len(all.Fields))
		for j, f := range all.Fields {
			cols[j] = batch.NewColumn(f.Type, n)
		}
		for r := range n {
			v := base + r
			if nulls && r == 0 {
				for _, c := range cols {
					c.AppendNull()
				}
				continue
			}
			cols[0].AppendBool(v%2 == 0)
			cols[1].AppendInt(int64(v))
			cols[2].AppendFloat(float64(v) / 2)
			cols[3].AppendBytes([]byte(fmt.Sprint("s", v)))
			cols[4].AppendBytes([]byte{byte(v)})
			cols[5].AppendHeaders([]batch.Header{{Key: fmt.Sprint("k", v), Value: []byte{byte(v)}}})
			cols[6].AppendInt(int64(v) * 1000)
			cols[7].AppendNull()
		}
		return batch.New(all, cols, n)
	}
	cases := []struct {
		name  string
		parts []*batch.Batch
	}{
		{"no parts", nil},
		{"one part", []*batch.Batch{mk(0, 3, true)}},
		{"no nulls", []*batch.Batch{mk(0, 2, false), mk(10, 3, false)}},
		{"nulls in a later part only", []*batch.Batch{mk(0, 2, false), mk(10, 2, true), mk(20, 1, false)}},
		{"nulls in the first part only", []*batch.Batch{mk(0, 2, true), mk(10, 2, false)}},
		{"empty parts between", []*batch.Batch{mk(0, 0, false), mk(5, 2, false), mk(9, 0, true)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Concat(all, tc.parts)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("result invalid: %v", err)
			}
			want := rows(tc.parts...)
			if got.N != len(want) || (len(want) > 0 && !reflect.DeepEqual(rows(got), want)) {
				t.Errorf("rows %v, want %v", rows(got), want)
			}
			for j, c := range got.Columns {
				if c.Valid != nil && len(c.Valid) != got.N {
					t.Errorf("column %s: %d validity flags for %d rows", all.Fields[j].Name, len(c.Valid), got.N)
				}
			}
		})
	}

	errCases := []struct {
		name  string
		parts []*batch.Batch
		want  string
	}{
		{"wrong column count", []*batch.Batch{chunk(1)}, "columns"},
		{"wrong type", []*batch.Batch{mk(0, 1, false), batch.New(all, append([]*batch.Column{batch.NewColumn(batch.Long, 0)}, mk(0, 0, false).Columns[1:]...), 0)}, "is bigint"},
		{"short column", []*batch.Batch{mk(0, 1, false), batch.New(all, mk(0, 2, false).Columns, 3)}, "cells for 3 rows"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Concat(all, tc.parts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Concat = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
