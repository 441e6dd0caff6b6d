package kafka

import (
	"context"
	"strconv"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
)

// kafkaDeadLetterSchema is what a Kafka dead-letter topic receives: the
// failed record's own key and value, with the failure described in headers
// (the convention of Kafka Connect's dead-letter queues).
var kafkaDeadLetterSchema = batch.Schema{Fields: []batch.Field{
	{Name: "key", Type: batch.Binary, Nullable: true},
	{Name: "value", Type: batch.Binary, Nullable: true},
	{Name: "headers", Type: batch.Headers, Nullable: true},
}}

// Header names on dead-lettered Kafka records (the root package documents
// them for users as sluice.HeaderDeadLetter*).
const (
	HeaderDeadLetterReason    = "sluice.dlq.reason"
	HeaderDeadLetterTopic     = "sluice.dlq.topic"
	HeaderDeadLetterPartition = "sluice.dlq.partition"
	HeaderDeadLetterOffset    = "sluice.dlq.offset"
	HeaderDeadLetterBatch     = "sluice.dlq.batchId"
	HeaderDeadLetterInput     = "sluice.dlq.input"
)

// DeadLetters adapts a Kafka sink to receive the engine's dead-letter
// batches (engine.DeadLetterSchema): each becomes a record with the
// original key and value (the whole input row as JSON when the source is
// not Kafka) and the reason and source coordinates as headers, the
// convention of Kafka Connect's dead-letter queues.
func DeadLetters(s sink.Sink) sink.Sink { return kafkaDeadLetters{s} }

type kafkaDeadLetters struct{ sink.Sink }

type kafkaDLWriter struct{ sink.Writer }

func (s kafkaDeadLetters) NewWriter(ctx context.Context, batchID int64, task int, _ batch.Schema) (sink.Writer, error) {
	w, err := s.Sink.NewWriter(ctx, batchID, task, kafkaDeadLetterSchema)
	if err != nil {
		return nil, err
	}
	return kafkaDLWriter{w}, nil
}

func (w kafkaDLWriter) Write(ctx context.Context, b *batch.Batch) error {
	idx := func(name string) *batch.Column { return b.Column(name) }
	reason, batchID, topic, part, off, key, val, input :=
		idx("reason"), idx("batchId"), idx("topic"), idx("partition"), idx("offset"), idx("key"), idx("value"), idx("input")
	if reason == nil || val == nil {
		return w.Writer.Write(ctx, b) // not a dead-letter batch
	}
	keys := batch.NewColumn(batch.Binary, b.N)
	vals := batch.NewColumn(batch.Binary, b.N)
	hdrs := batch.NewColumn(batch.Headers, b.N)
	for i := 0; i < b.N; i++ {
		keys.AppendBytes(cell(key, i))
		hs := []batch.Header{
			{Key: HeaderDeadLetterReason, Value: cell(reason, i)},
			{Key: HeaderDeadLetterBatch, Value: []byte(strconv.FormatInt(batchID.Ints[i], 10))},
		}
		if !topic.IsNull(i) {
			hs = append(hs,
				batch.Header{Key: HeaderDeadLetterTopic, Value: cell(topic, i)},
				batch.Header{Key: HeaderDeadLetterPartition, Value: []byte(strconv.FormatInt(part.Ints[i], 10))},
				batch.Header{Key: HeaderDeadLetterOffset, Value: []byte(strconv.FormatInt(off.Ints[i], 10))})
		}
		v := cell(val, i)
		if v == nil || topic.IsNull(i) {
			// Not a Kafka record: the value is the whole input row.
			v = cell(input, i)
			hs = append(hs, batch.Header{Key: HeaderDeadLetterInput, Value: []byte("json")})
		}
		vals.AppendBytes(v)
		hdrs.AppendHeaders(hs)
	}
	return w.Writer.Write(ctx, batch.New(kafkaDeadLetterSchema, []*batch.Column{keys, vals, hdrs}, b.N))
}

func cell(c *batch.Column, i int) []byte {
	if c == nil || c.IsNull(i) {
		return nil
	}
	return c.Bytes[i]
}
