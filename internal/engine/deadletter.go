package engine

import (
	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparkjson"
)

// DeadLetter is a source row a transform could not process (an ANSI cast
// failure, say). With a dead-letter sink configured the row is routed there
// with its reason and source coordinates, counted, and the query goes on;
// without one, the failure fails the batch as it does in Spark.
type DeadLetter struct {
	Reason string
	// Input is the source chunk the row came from, Row its index there.
	Input *batch.Batch
	Row   int
}

// DeadLetterSchema is what dead-letter sinks receive: the reason, the batch,
// the Kafka coordinates and payload when the source has them, and the whole
// input row as JSON for any source.
var DeadLetterSchema = batch.Schema{Fields: []batch.Field{
	{Name: "reason", Type: batch.String},
	{Name: "batchId", Type: batch.Long},
	{Name: "topic", Type: batch.String, Nullable: true},
	{Name: "partition", Type: batch.Int, Nullable: true},
	{Name: "offset", Type: batch.Long, Nullable: true},
	{Name: "key", Type: batch.Binary, Nullable: true},
	{Name: "value", Type: batch.Binary, Nullable: true},
	{Name: "input", Type: batch.String, Nullable: true},
}}

// deadLetterBatch turns dead letters into a batch of DeadLetterSchema.
func deadLetterBatch(dls []DeadLetter, batchID int64) *batch.Batch {
	n := len(dls)
	cols := make([]*batch.Column, len(DeadLetterSchema.Fields))
	for i, f := range DeadLetterSchema.Fields {
		cols[i] = batch.NewColumn(f.Type, n)
	}
	for _, d := range dls {
		cols[0].AppendBytes([]byte(d.Reason))
		cols[1].AppendInt(batchID)
		appendFrom := func(col *batch.Column, name string) {
			src := d.Input.Column(name)
			if src == nil || src.Type != col.Type || src.IsNull(d.Row) {
				col.AppendNull()
				return
			}
			switch col.Type {
			case batch.String, batch.Binary:
				col.AppendBytes(src.Bytes[d.Row])
			default:
				col.AppendInt(src.Ints[d.Row])
			}
		}
		appendFrom(cols[2], "topic")
		appendFrom(cols[3], "partition")
		appendFrom(cols[4], "offset")
		appendFrom(cols[5], "key")
		appendFrom(cols[6], "value")
		cols[7].AppendBytes(rowJSON(d.Input, d.Row))
	}
	return batch.New(DeadLetterSchema, cols, n)
}

// rowJSON renders one input row as a JSON object the way Spark's to_json
// renders a struct of the row (see package sparkjson: fields in order,
// nulls omitted, binary as base64, nested values as JSON).
func rowJSON(b *batch.Batch, i int) []byte {
	return sparkjson.AppendRow(nil, sparkjson.FieldNames(b.Schema.Names()), b.Columns, i)
}
