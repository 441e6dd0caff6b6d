package operator

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
)

// BenchmarkPartialAggPassThrough is stage 1's partial aggregation as
// `sluice bench --only stateful` runs it: a count(*) per (time, key) over
// rows whose keys barely repeat within a task (so the task passes rows
// through), sent to 200 shuffle partitions. ns/op is per task of 16,384
// rows in chunks of 4,096.
func BenchmarkPartialAggPassThrough(b *testing.B) {
	const rows, chunk = 16_384, 4096
	schema := batch.Schema{Fields: []batch.Field{{Name: "t", Type: batch.Timestamp}, {Name: "k", Type: batch.String}}}
	tk, _ := expr.Compile(&expr.Ident{Name: "t"}, schema)
	kk, _ := expr.Compile(&expr.Ident{Name: "k"}, schema)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	a := &Aggregate{Keys: []expr.Compiled{tk, kk}, EventTime: 0, Mode: ModeAppend, Calls: []AggCall{{Agg: cnt, Name: "n"}}}
	a.Init()
	var in []*batch.Batch
	for off := 0; off < rows; off += chunk {
		t, k := batch.NewColumn(batch.Timestamp, chunk), batch.NewColumn(batch.String, chunk)
		for i := off; i < off+chunk; i++ {
			t.AppendInt(int64(i/1000) * 1_000_000)
			k.AppendBytes(fmt.Appendf(nil, "%04d", (i*7919)%10_000))
		}
		in = append(in, batch.New(schema, []*batch.Column{t, k}, chunk))
	}
	sent := 0
	env := engine.ShuffleEnv{Partitions: 200, BatchTime: time.Unix(0, 0),
		Send: func(_ int, b *batch.Batch) error { sent += b.N; return nil }}
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		w := a.NewShuffleWriter(env)
		for _, c := range in {
			if err := w.Write(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if sent < b.N*rows*9/10 {
		b.Fatalf("sent %d rows for %d", sent, b.N*rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
