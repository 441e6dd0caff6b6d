package sluice_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice"
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
