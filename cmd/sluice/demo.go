package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/loadgen"
	"github.com/sluice-stream/sluice/internal/orders"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	duration := fs.Duration("duration", 60*time.Second, "stop after this long (0 = until Ctrl-C)")
	trig := fs.String("trigger", "5 seconds", `processingTime trigger ("20 seconds" is the seed's exactly)`)
	rate := fs.Float64("rate", 200, "steady produce rate, records/s")
	spike := fs.Float64("spike", 10, "spike multiplier")
	spikeAt := fs.Duration("spike-at", 15*time.Second, "when the spike starts")
	spikeFor := fs.Duration("spike-for", 10*time.Second, "how long the spike lasts")
	maxOffsets := fs.Int64("max-offsets-per-trigger", 10000, "the seed's admission limit")
	numRows := fs.Int("num-rows", 5, "console rows shown per batch")
	chk := fs.String("checkpoint", "", "checkpoint directory (default: a temporary one)")
	listen := fs.String("listen", "127.0.0.1:0", "embedded broker address")
	logf := addLogFlags(fs, "warn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	b, err := broker.Start(ctx, broker.Config{Listen: *listen, Topics: []broker.TopicSpec{{Name: "orders", Partitions: 4}}, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	if *chk == "" {
		if *chk, err = os.MkdirTemp("", "sluice-demo-chk-"); err != nil {
			return err
		}
		defer os.RemoveAll(*chk)
	}
	fmt.Fprintf(stderr, "sluice demo: embedded Kafka broker on %s, topic orders (4 partitions)\n", b.Addr())
	fmt.Fprintf(stderr, "producer: %.0f orders/s, ×%.0f spike at %s for %s; query: maxOffsetsPerTrigger=%d, trigger %s\n",
		*rate, *spike, *spikeAt, *spikeFor, *maxOffsets, *trig)

	// The seed's query, as in examples/orders-console.yaml.
	session := sluice.NewSession(sluice.WithLogger(log), sluice.WithGoMemoryLimit())
	q, err := session.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).
		Option("subscribe", "orders").
		Option("startingOffsets", "latest").
		Option("maxOffsetsPerTrigger", *maxOffsets).
		Load().
		SelectExpr("CAST(value AS STRING) AS json").
		WithColumn("processed_ts", "current_timestamp()").
		WriteStream().
		Format("console").
		Option("checkpointLocation", *chk).
		Option("numRows", *numRows).
		Trigger(sluice.ProcessingTime(*trig)).
		Stdout(stdout).
		AddListener(&batchLine{w: stderr}).
		Start(ctx)
	if err != nil {
		return err
	}

	// The sample producer: order events keyed by customer, at a steady rate
	// with one spike (sluice loadgen's engine).
	shape, err := loadgen.NewShape(loadgen.ShapeOrders, 0, time.Now().UnixNano())
	if err != nil {
		q.Stop()
		return err
	}
	runFor := *duration
	if runFor <= 0 {
		runFor = 365 * 24 * time.Hour // until Ctrl-C
	}
	type produced struct {
		res loadgen.Result
		err error
	}
	perr := make(chan produced, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{
			Brokers:  []string{b.Addr()},
			Topic:    "orders",
			Profile:  loadgen.Spike{Base: *rate, Factor: *spike, At: *spikeAt, For: *spikeFor},
			Duration: runFor,
			Shape:    shape,
			Keys:     loadgen.Keys{Count: orders.NumCustomers},
			Seed:     time.Now().UnixNano(),
			Logger:   log,
		})
		perr <- produced{res, err}
	}()

	qerr := q.AwaitTermination(ctx)
	stopErr := q.Stop()
	p := <-perr
	if p.err != nil && !errors.Is(p.err, context.Canceled) && !errors.Is(p.err, context.DeadlineExceeded) {
		return fmt.Errorf("producer: %w", p.err)
	}
	fmt.Fprintf(stderr, "sluice demo: produced %d orders; stopped\n", p.res.Acked)
	if qerr != nil && ctx.Err() == nil {
		return qerr
	}
	return stopErr
}
