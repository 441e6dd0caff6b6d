package expr

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// seedBatch builds n Kafka records with ~200-byte JSON values.
func seedBatch(n int) *batch.Batch {
	cols := make([]*batch.Column, len(kafkaSchema.Fields))
	for i, f := range kafkaSchema.Fields {
		cols[i] = batch.NewColumn(f.Type, n)
	}
	for i := 0; i < n; i++ {
		v := fmt.Appendf(nil, `{"order_id":%d,"customer":"customer-%05d","items":[{"sku":"SKU-%04d","qty":%d}],`+
			`"total":%d.%02d,"currency":"EUR","created_at":"2024-03-01T12:%02d:%02dZ","note":"pad"}`,
			i, i%10000, i%1000, i%7+1, i%500, i%100, i/60%60, i%60)
		cols[0].AppendBytes(fmt.Appendf(nil, "key-%d", i))
		cols[1].AppendBytes(v)
		cols[2].AppendBytes([]byte("orders"))
		cols[3].AppendInt(int64(i % 4))
		cols[4].AppendInt(int64(i))
		cols[5].AppendInt(1_709_296_245_000_000 + int64(i))
		cols[6].AppendInt(0)
	}
	return batch.New(kafkaSchema, cols, n)
}

// BenchmarkSeedProjection measures the seed query's transform on 100k
// records: selectExpr("CAST(value AS STRING) AS json") then
// withColumn("processed_ts", "current_timestamp()"). "new-timestamp" gives
// every iteration its own batch timestamp (the first task of a
// micro-batch); "same-timestamp" reuses one (the other tasks of that
// micro-batch, which share the constant column).
func BenchmarkSeedProjection(b *testing.B) {
	const rows = 100_000
	in := seedBatch(rows)
	p := NewPlan(kafkaSchema)
	if err := p.SelectExpr("CAST(value AS STRING) AS json"); err != nil {
		b.Fatal(err)
	}
	if err := p.WithColumn("processed_ts", "current_timestamp()"); err != nil {
		b.Fatal(err)
	}
	for _, fresh := range []bool{true, false} {
		name := "same-timestamp"
		if fresh {
			name = "new-timestamp"
		}
		b.Run(name, func(b *testing.B) {
			ctx := *testCtx
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if fresh {
					ctx.BatchTimestamp = ctx.BatchTimestamp.Add(time.Millisecond)
				}
				out, err := p.Apply(in, &ctx)
				if err != nil {
					b.Fatal(err)
				}
				if out.N != rows {
					b.Fatal("row count changed")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
		})
	}
}

// BenchmarkFilterAndProject is a heavier transform for comparison.
func BenchmarkFilterAndProject(b *testing.B) {
	const rows = 100_000
	in := seedBatch(rows)
	p := NewPlan(kafkaSchema)
	if err := p.Filter("partition IN (1, 2) AND CAST(value AS STRING) LIKE '%EUR%'"); err != nil {
		b.Fatal(err)
	}
	if err := p.SelectExpr("upper(topic) AS topic", "offset * 2 AS o", "substring(CAST(value AS STRING), 1, 20) AS head",
		"CAST(timestamp AS STRING) AS ts"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Apply(in, testCtx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
}
