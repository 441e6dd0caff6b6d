package sluice

import kafkasink "github.com/sluice-stream/sluice/internal/sink/kafka"

// Header names on records a "kafka" dead-letter sink writes (see
// DataStreamWriter.DeadLetter): the record keeps the failed input's key
// and value, and these headers say why it failed and where it came from.
const (
	// HeaderDeadLetterReason is the error, e.g. a CAST_INVALID_INPUT message.
	HeaderDeadLetterReason = kafkasink.HeaderDeadLetterReason
	// HeaderDeadLetterTopic is the input record's topic (Kafka sources).
	HeaderDeadLetterTopic = kafkasink.HeaderDeadLetterTopic
	// HeaderDeadLetterPartition is the input record's partition.
	HeaderDeadLetterPartition = kafkasink.HeaderDeadLetterPartition
	// HeaderDeadLetterOffset is the input record's offset.
	HeaderDeadLetterOffset = kafkasink.HeaderDeadLetterOffset
	// HeaderDeadLetterBatch is the id of the batch the row failed in.
	HeaderDeadLetterBatch = kafkasink.HeaderDeadLetterBatch
	// HeaderDeadLetterInput is "json" when the value holds the whole input
	// row as JSON because the source is not Kafka.
	HeaderDeadLetterInput = kafkasink.HeaderDeadLetterInput
)
