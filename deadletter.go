package sluice

// Header names on records a "kafka" dead-letter sink writes (see
// DataStreamWriter.DeadLetter): the record keeps the failed input's key
// and value, and these headers say why it failed and where it came from.
// (The Kafka sink writes them; TestDeadLetterHeaderNames keeps the two in
// step.)
const (
	// HeaderDeadLetterReason is the error, e.g. a CAST_INVALID_INPUT message.
	HeaderDeadLetterReason = "sluice.dlq.reason"
	// HeaderDeadLetterTopic is the input record's topic (Kafka sources).
	HeaderDeadLetterTopic = "sluice.dlq.topic"
	// HeaderDeadLetterPartition is the input record's partition.
	HeaderDeadLetterPartition = "sluice.dlq.partition"
	// HeaderDeadLetterOffset is the input record's offset.
	HeaderDeadLetterOffset = "sluice.dlq.offset"
	// HeaderDeadLetterBatch is the id of the batch the row failed in.
	HeaderDeadLetterBatch = "sluice.dlq.batchId"
	// HeaderDeadLetterInput is "json" when the value holds the whole input
	// row as JSON because the source is not Kafka.
	HeaderDeadLetterInput = "sluice.dlq.input"
)
