package operator

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/state"
)

// BenchmarkWindowCountBatch runs one shuffle partition of an append-mode
// count per (event time, key) through a batch: stage 1's partial
// aggregation, stage 2's merge into a memory state store, the eviction and
// emission of the previous batch's groups, and the store's commit. Every
// batch brings rowsPerBatch new groups of one row each (a window count per
// key with as many keys as rows, the shape of `sluice bench --only
// stateful`): the per-row cost of state. ns/op is per batch.
func BenchmarkWindowCountBatch(b *testing.B) {
	const rowsPerBatch = 20_000
	schema := batch.Schema{Fields: []batch.Field{{Name: "t", Type: batch.Timestamp}, {Name: "k", Type: batch.String}}}
	tk, err := expr.Compile(&expr.Ident{Name: "t"}, schema)
	if err != nil {
		b.Fatal(err)
	}
	kk, _ := expr.Compile(&expr.Ident{Name: "k"}, schema)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	a := &Aggregate{Keys: []expr.Compiled{tk, kk}, EventTime: 0, Mode: ModeAppend,
		Calls: []AggCall{{Agg: cnt, Name: "n"}}}
	a.Init()
	sch := a.Operators()[0].Schemas
	p, err := state.OpenProvider(state.ID{Root: b.TempDir()}, sch, state.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	input := func(n int) []*batch.Batch {
		t, k := batch.NewColumn(batch.Timestamp, rowsPerBatch), batch.NewColumn(batch.String, rowsPerBatch)
		for i := 0; i < rowsPerBatch; i++ {
			t.AppendInt(int64(n) * 10_000_000) // 10 s apart, in µs
			k.AppendBytes(fmt.Appendf(nil, "key-%06d", i))
		}
		var chunks []*batch.Batch
		for off := 0; off < rowsPerBatch; off += 4096 {
			end := min(off+4096, rowsPerBatch)
			chunks = append(chunks, batch.New(schema, []*batch.Column{t.Slice(off, end), k.Slice(off, end)}, end-off))
		}
		return chunks
	}
	var emitted int
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		in := input(n)
		b.StartTimer()
		var sent []*batch.Batch
		w := a.NewShuffleWriter(engine.ShuffleEnv{Partitions: 1, BatchTime: time.Unix(0, 0),
			Send: func(_ int, b *batch.Batch) error { sent = append(sent, b); return nil }})
		for _, c := range in {
			if err := w.Write(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		st, err := p.Open(int64(n))
		if err != nil {
			b.Fatal(err)
		}
		// The watermark passes the previous batch's event time.
		s2, _ := a.NewStage2(engine.Stage2Env{BatchID: int64(n), Partitions: 1, WatermarkMs: int64(n-1) * 10_000,
			BatchTime: time.Unix(0, 0), Stores: []state.Store{st}})
		for _, sb := range sent {
			if err := s2.Process(sb); err != nil {
				b.Fatal(err)
			}
		}
		if err := s2.Finish(func(out *batch.Batch) error { emitted += out.N; return nil }); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	if want := (b.N - 1) * rowsPerBatch; emitted != want {
		b.Fatalf("emitted %d rows, want %d", emitted, want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rowsPerBatch), "ns/row")
	if cpu > 0 {
		// Includes building the input (outside the timer) and the GC.
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*rowsPerBatch), "cpu-ns/row")
	}
}
