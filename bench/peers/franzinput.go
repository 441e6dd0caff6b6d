package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franzDrain is a minimal Benthos batch input on franz-go: it assigns every
// partition of one topic directly (no consumer group, as sluice's source
// does), reads from the earliest offset to the end offsets listed at
// Connect, hands each fetched partition chunk to the pipeline as one
// message batch, and then reports the end of input, so that the Benthos
// process drains the topic and exits.
//
// Messages carry the record value only, no metadata: Redpanda Connect's
// kafka_franz input (not open source, so not used here) also sets the key,
// topic, partition, offset, timestamp and headers as metadata on every
// message. This input is therefore Benthos at its leanest, the conservative
// side of the comparison.
type franzDrain struct {
	brokers []string
	topic   string

	cl *kgo.Client
	// end is the end offset of each partition listed at Connect; left
	// counts the partitions not yet read to it.
	end  map[int32]int64
	left int
	// queue holds the fetched chunks not yet handed to the pipeline.
	queue [][]*kgo.Record
	read  *atomic.Int64
}

var drainSpec = service.NewConfigSpec().
	Summary("Reads one Kafka topic from its earliest to its current end offsets with franz-go, then ends.").
	Field(service.NewStringListField("seed_brokers")).
	Field(service.NewStringField("topic"))

// registerFranzDrain registers the input as "franz_drain"; read counts
// the records it delivered.
func registerFranzDrain(read *atomic.Int64) error {
	return service.RegisterBatchInput("franz_drain", drainSpec, func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchInput, error) {
		brokers, err := conf.FieldStringList("seed_brokers")
		if err != nil {
			return nil, err
		}
		topic, err := conf.FieldString("topic")
		if err != nil {
			return nil, err
		}
		return &franzDrain{brokers: brokers, topic: topic, read: read}, nil
	})
}

// Connect lists the topic's start and end offsets and assigns the
// partitions that hold records.
func (f *franzDrain) Connect(ctx context.Context) error {
	adm, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		return err
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	starts, err := ka.ListStartOffsets(ctx, f.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := ka.ListEndOffsets(ctx, f.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	assign := map[int32]kgo.Offset{}
	f.end = map[int32]int64{}
	starts.Each(func(o kadm.ListedOffset) {
		e, _ := ends.Lookup(o.Topic, o.Partition)
		if e.Offset > o.Offset {
			assign[o.Partition] = kgo.NewOffset().At(o.Offset)
			f.end[o.Partition] = e.Offset
		}
	})
	f.left = len(f.end)
	if f.left == 0 {
		return nil
	}
	f.cl, err = kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.topic: assign}))
	return err
}

// ReadBatch returns the next fetched partition chunk as a message batch,
// and service.ErrEndOfInput once every partition reached its end offset.
func (f *franzDrain) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	for len(f.queue) == 0 {
		if f.left == 0 {
			return nil, nil, service.ErrEndOfInput
		}
		fetches := f.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if fetches.IsClientClosed() {
			return nil, nil, service.ErrNotConnected
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, nil, ferr
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			end, ok := f.end[p.Partition]
			if !ok || len(p.Records) == 0 {
				return
			}
			recs := p.Records
			n := 0
			for n < len(recs) && recs[n].Offset < end {
				n++
			}
			if n > 0 {
				f.queue = append(f.queue, recs[:n])
			}
			if recs[len(recs)-1].Offset+1 >= end {
				delete(f.end, p.Partition)
				f.left--
				f.cl.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
			}
		})
	}
	recs := f.queue[0]
	f.queue = f.queue[1:]
	batch := make(service.MessageBatch, len(recs))
	for i, r := range recs {
		batch[i] = service.NewMessage(r.Value)
	}
	f.read.Add(int64(len(recs)))
	return batch, func(context.Context, error) error { return nil }, nil
}

// Close closes the client.
func (f *franzDrain) Close(context.Context) error {
	if f.cl != nil {
		f.cl.Close()
	}
	return nil
}
