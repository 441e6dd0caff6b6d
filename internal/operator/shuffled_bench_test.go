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

// BenchmarkWindowCountShuffled is a batch of `sluice bench --only
// stateful`'s aggregation. At a tenth of its scale: 2 stage-1 tasks of
// 5,000 rows (a 10-second window and one of 10,000 keys, 12 windows a
// batch, nearly every (window, key) once) pass their rows through to 20
// shuffle partitions (about 500 rows each, as the bench's 200 partitions
// get), whose stage 2 merges them into a memory store, evicts and emits
// the windows the watermark passed and commits a delta. ns/op is per
// batch; cpu-ns/row includes the GC and the delta files' creation,
// nocommit-cpu-ns/row leaves out the commits (noisy on this VM's disk).
func BenchmarkWindowCountShuffled(b *testing.B) {
	b.Run("tenth", func(b *testing.B) { benchWindowCountShuffled(b, 2, 5000, 20) })
	// The bench's own scale: 8 tasks (Kafka partitions) of 13,000 rows,
	// 200 shuffle partitions; the batch's rows no longer fit the caches.
	b.Run("full", func(b *testing.B) { benchWindowCountShuffled(b, 8, 13_000, 200) })
}

func benchWindowCountShuffled(b *testing.B, tasks, rowsPerTask, parts int) {
	const windows = 12
	const windowUs = 10_000_000
	schema := batch.Schema{Fields: []batch.Field{{Name: "t", Type: batch.Timestamp}, {Name: "k", Type: batch.String}}}
	call, err := expr.Parse("window(t, '10 seconds')")
	if err != nil {
		b.Fatal(err)
	}
	win, _, err := expr.FindTimeWindow(call, schema)
	if err != nil {
		b.Fatal(err)
	}
	wschema := batch.Schema{Fields: append(append([]batch.Field(nil), schema.Fields...), batch.Field{Name: "window", Type: expr.WindowKind})}
	wk, err := expr.Compile(&expr.Ident{Name: "window"}, wschema)
	if err != nil {
		b.Fatal(err)
	}
	kk, _ := expr.Compile(&expr.Ident{Name: "k"}, wschema)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	a := &Aggregate{Keys: []expr.Compiled{wk, kk}, Window: win, EventTime: 0, WindowEnd: true, Mode: ModeAppend,
		Calls: []AggCall{{Agg: cnt, Name: "n"}}}
	a.Init()
	sch := a.Operators()[0].Schemas
	root := b.TempDir()
	provs := make([]state.Provider, parts)
	for p := range provs {
		pr, err := state.OpenProvider(state.ID{Root: root, Partition: p}, sch, state.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer pr.Close()
		provs[p] = pr
	}
	input := func(n int) [][]*batch.Batch {
		in := make([][]*batch.Batch, tasks)
		for t := range in {
			tc, kc := batch.NewColumn(batch.Timestamp, rowsPerTask), batch.NewColumn(batch.String, rowsPerTask)
			for i := range rowsPerTask {
				r := t*rowsPerTask + i
				w := int64(n*windows + r*windows/(tasks*rowsPerTask))
				tc.AppendInt(w*windowUs + int64(r%1000))
				kc.AppendBytes(fmt.Appendf(nil, "%04d", (r*7919+n*13)%10_000))
			}
			for off := 0; off < rowsPerTask; off += 4096 {
				end := min(off+4096, rowsPerTask)
				in[t] = append(in[t], batch.New(schema, []*batch.Column{tc.Slice(off, end), kc.Slice(off, end)}, end-off))
			}
		}
		return in
	}
	emitted := 0
	var commitCPU time.Duration // the stores' commits (delta files)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		in := input(n)
		b.StartTimer()
		sent := make([][]*batch.Batch, parts)
		env := engine.ShuffleEnv{Partitions: parts, BatchTime: time.Unix(0, 0),
			Send: func(p int, b *batch.Batch) error { sent[p] = append(sent[p], b); return nil }}
		for _, chunks := range in {
			w := a.NewShuffleWriter(env)
			for _, c := range chunks {
				if err := w.Write(c); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		// The watermark passes the previous batch's windows.
		wm := int64(n*windows)*windowUs/1000 - 1
		for p := range parts {
			st, err := provs[p].Open(int64(n))
			if err != nil {
				b.Fatal(err)
			}
			s2, _ := a.NewStage2(engine.Stage2Env{BatchID: int64(n), Partition: p, Partitions: parts, WatermarkMs: wm,
				BatchTime: time.Unix(0, 0), Stores: []state.Store{st}})
			for _, sb := range sent[p] {
				if err := s2.Process(sb); err != nil {
					b.Fatal(err)
				}
			}
			if err := s2.Finish(func(out *batch.Batch) error { emitted += out.N; return nil }); err != nil {
				b.Fatal(err)
			}
			c0 := processCPU()
			if _, err := st.Commit(); err != nil {
				b.Fatal(err)
			}
			commitCPU += processCPU() - c0
		}
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	if b.N > 1 && emitted == 0 {
		b.Fatal("nothing emitted")
	}
	rows := float64(b.N * tasks * rowsPerTask)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/rows, "cpu-ns/row")
		b.ReportMetric(float64((cpu-commitCPU).Nanoseconds())/rows, "nocommit-cpu-ns/row")
	}
}
