package expr

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/orders"
)

// orderValues builds n order records as the load generator produces them
// (the stateful benchmark's input).
func orderValues(n int) *batch.Batch {
	g := orders.NewGenerator(1)
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	vals := make([]any, n)
	for i := range vals {
		_, v := g.Next(now.Add(time.Duration(i) * time.Millisecond))
		vals[i] = string(v)
	}
	return jsonBatch(vals...)
}

const orderSchemaDDL = "order_id STRING, customer_id STRING, sku STRING, quantity INT, price DOUBLE, currency STRING, ts TIMESTAMP"

// BenchmarkFromJSON measures from_json on the load generator's order
// records (about 130 bytes each) and reports records/s; the
// encoding-json-struct case decodes the same records with encoding/json
// into a Go struct in the same run, as a baseline (sluice's result is
// columnar and follows Spark's semantics; the baseline does neither).
func BenchmarkFromJSON(b *testing.B) {
	const rows = 10_000
	in := orderValues(rows)
	c, err := compileSource("from_json(value, '"+orderSchemaDDL+"')", in.Schema)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("from_json", func(b *testing.B) { benchEval(b, c, in) })
	b.Run("encoding-json-struct", func(b *testing.B) {
		b.ReportAllocs()
		var o orders.Order
		for i := 0; i < b.N; i++ {
			for _, v := range in.Columns[0].Bytes {
				if err := json.Unmarshal(v, &o); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkFromJSONBenchShape is from_json as `sluice bench --only
// stateful` runs it: order records padded to 200 bytes (a "pad" string
// field last, as the bench's preload pads them) and a schema of two of
// their fields, so most of each record is skipped.
func BenchmarkFromJSONBenchShape(b *testing.B) {
	const rows = 10_000
	g := orders.NewGenerator(1)
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	vals := make([]any, rows)
	for i := range vals {
		_, v := g.Next(now.Add(time.Duration(i) * time.Millisecond))
		if pad := 200 - len(v) - len(`,"pad":""`); pad > 0 {
			v = append(append(append(v[:len(v)-1:len(v)-1], `,"pad":"`...), strings.Repeat("x", pad)...), `"}`...)
		}
		vals[i] = string(v)
	}
	in := jsonBatch(vals...)
	c, err := compileSource("from_json(value, 'order_id STRING, ts TIMESTAMP')", in.Schema)
	if err != nil {
		b.Fatal(err)
	}
	benchEval(b, c, in)
}

// benchEval evaluates c over in b.N times and reports records/s.
func benchEval(b *testing.B, c Compiled, in *batch.Batch) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		col, err := c.Eval(in, testCtx)
		if err != nil || col.Len != in.N {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(in.N)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
