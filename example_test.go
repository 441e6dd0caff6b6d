package sluice_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/broker"
)

// Example runs the seed's query — Kafka → CAST(value AS STRING) +
// current_timestamp() with maxOffsetsPerTrigger — on an embedded broker.
// It uses the memory sink and the availableNow trigger so the output is
// checkable; for the seed exactly, use Format("console") and
// Trigger(sluice.ProcessingTime("20 seconds")).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", Topics: []broker.TopicSpec{{Name: "orders", Partitions: 1}}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	for i := 1; i <= 3; i++ {
		cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte(fmt.Sprintf(`{"order_id":%d}`, i))})
	}
	cl.Close()

	chk, _ := os.MkdirTemp("", "example-chk-")
	defer os.RemoveAll(chk)
	session := sluice.NewSession(sluice.WithLogger(slog.New(slog.DiscardHandler)))
	q, err := session.ReadStream().
		Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).
		Option("subscribe", "orders").
		Option("startingOffsets", "earliest").
		Option("maxOffsetsPerTrigger", 2).
		Load().
		SelectExpr("CAST(value AS STRING) AS json").
		WithColumn("processed_ts", "current_timestamp()").
		WriteStream().
		Format("memory").
		QueryName("orders").
		Option("checkpointLocation", chk).
		Trigger(sluice.AvailableNow()).
		Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		log.Fatal(err)
	}
	cols, rows, _ := session.Table("orders")
	fmt.Println(cols)
	for _, r := range rows {
		fmt.Println(r[0], r[1] != nil)
	}
	fmt.Println("batches:", len(q.RecentProgress()))
	// Output:
	// [json processed_ts]
	// {"order_id":1} true
	// {"order_id":2} true
	// {"order_id":3} true
	// batches: 2
}

// quiet discards the examples' logs.
var quiet = sluice.WithLogger(slog.New(slog.DiscardHandler))

// ExampleDataStreamWriter_ForeachBatch hands every micro-batch to a Go
// function with its id (the rate-micro-batch source makes the rows
// predictable; Once runs one batch and stops).
func ExampleDataStreamWriter_ForeachBatch() {
	ctx := context.Background()
	q, err := sluice.NewSession(quiet).ReadStream().
		Format("rate-micro-batch").
		Option("rowsPerBatch", 3).
		Option("numPartitions", 1).
		Load().
		SelectExpr("value * 10 AS tens").
		WriteStream().
		ForeachBatch(func(_ context.Context, b *batch.Batch, batchID int64) error {
			fmt.Println("batch", batchID, b.Column("tens").Ints[:b.N])
			return nil
		}).
		Trigger(sluice.Once()).
		Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// batch 0 [0 10 20]
}

// ExampleSession_Table reads what a "memory" sink query has committed, by
// its query name.
func ExampleSession_Table() {
	ctx := context.Background()
	session := sluice.NewSession(quiet)
	q, err := session.ReadStream().
		Format("rate-micro-batch").
		Options(map[string]string{"rowsPerBatch": "2", "numPartitions": "1"}).
		Load().
		WithColumn("even", "value % 2 = 0").
		WriteStream().
		Format("memory").
		QueryName("numbers").
		Trigger(sluice.Once()).
		Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		log.Fatal(err)
	}
	cols, rows, _ := session.Table("numbers")
	fmt.Println(cols)
	for _, r := range rows {
		fmt.Println(r[1], r[2])
	}
	// Output:
	// [timestamp value even]
	// 0 true
	// 1 false
}

// ExampleLintPipeline checks a pipeline file without connecting to
// anything, as `sluice lint` does: every problem comes with the line and
// column of the key at fault.
func ExampleLintPipeline() {
	file := []byte(`name: orders
source:
  format: kafka
  options:
    kafka.bootstrap.servers: localhost:9092
    subscribe: orders
    maxOffsetPerTrigger: 10000
sink:
  format: parquet
  outputMode: update
  options:
    path: /tmp/orders
    checkpointLocation: /tmp/chk/orders
`)
	for _, p := range sluice.LintPipeline("orders.yaml", file, nil) {
		fmt.Println(p.Line, p.Column, strings.SplitN(p.Message, ";", 2)[0])
	}
	// Output:
	// 7 5 source: unknown kafka source option "maxOffsetPerTrigger"
	// 10 15 sink.outputMode: [STREAMING_OUTPUT_MODE.UNSUPPORTED_DATASOURCE] Invalid streaming output mode: update. This output mode is not supported in Data Source parquet. (the parquet sink does not support output mode "update"
}
