package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PreloadSeed is the generator seed Preload uses, so that preloaded data is
// the same from run to run (apart from the event times).
const PreloadSeed = 20261125

// Preload writes n orders of about size bytes to topic as fast as the broker
// takes them, record i to partition i mod partitions, so each of the first
// partitions partitions gets n/partitions records (the first n%partitions one
// more). Values are Order JSON grown to exactly size bytes with a "pad" field
// when size is larger than the order (about 150 bytes); keys are customer ids;
// event times step by one millisecond and end at the time of the call.
//
// Preload produces through a short-lived client built from client's options
// (seed brokers, TLS, SASL, compression…) minus its consumer options, with
// manual partitioning and a large buffer; client itself is not used to
// produce. The topic must exist with at least partitions partitions.
//
// Compression follows client's options, and kgo compresses with snappy by
// default: against the embedded broker on two cores, a client with
// kgo.ProducerBatchCompression(kgo.NoCompression()) loads about twice as fast
// (BenchmarkPreload: roughly 250k records/s of 200 bytes on a busy machine).
func Preload(ctx context.Context, client *kgo.Client, topic string, n int, size int, partitions int32) error {
	switch {
	case n < 0:
		return fmt.Errorf("orders: preload %q: record count %d is negative", topic, n)
	case size < 0:
		return fmt.Errorf("orders: preload %q: record size %d is negative", topic, size)
	case partitions < 1:
		return fmt.Errorf("orders: preload %q: partition count %d must be ≥ 1", topic, partitions)
	case n == 0:
		return nil
	}
	var opts []kgo.Opt
	for _, o := range client.Opts() {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt:
			continue
		}
		opts = append(opts, o)
	}
	opts = append(opts,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("orders: preload %q: client: %w", topic, err)
	}
	defer cl.Close()

	tds, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = tds.Error()
	}
	if err != nil {
		return fmt.Errorf("orders: preload %q: describe topic: %w", topic, err)
	}
	if have := int32(len(tds[topic].Partitions)); have < partitions {
		return fmt.Errorf("orders: preload %q: topic has %d partitions, %d asked for", topic, have, partitions)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			cancel(err)
		}
	}
	gen := NewGenerator(PreloadSeed)
	end := time.Now().UTC().Truncate(time.Millisecond)
	base := end.Add(-time.Duration(n) * time.Millisecond)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		ts := base.Add(time.Duration(i+1) * time.Millisecond)
		o := gen.NextOrder(ts)
		value := padJSON(o.AppendJSON(make([]byte, 0, max(size, 160))), size)
		cl.Produce(ctx, &kgo.Record{
			Topic:     topic,
			Partition: int32(i % int(partitions)),
			Key:       []byte(o.CustomerID),
			Value:     value,
			Timestamp: ts,
		}, promise)
	}
	if err := cl.Flush(ctx); err != nil && context.Cause(ctx) == nil {
		return fmt.Errorf("orders: preload %q: flush: %w", topic, err)
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("orders: preload %q: %w", topic, err)
	}
	return nil
}
