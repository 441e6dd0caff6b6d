package operator

import (
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/state"
)

// PartitionOf places an encoded key in one of n shuffle partitions. The
// placement depends only on the key's bytes (XXH64), never on which task
// or source partition the row came from, so a key's state is always in the
// same partition for a given n.
func PartitionOf(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	return int(xxhash.Sum64(key) % uint64(n))
}

// eventTimeLen is the encoded length of the event-time prefix of a state
// key (state.AppendKeyInt64: a presence byte and 8 bytes).
const eventTimeLen = 9

// evictUpper is the exclusive upper bound of the keys whose event-time
// prefix (microseconds) is at or below watermarkMs: the range eviction and
// append-mode emission remove. The lower bound is evictLower, which leaves
// out keys with a null event time (never late, never evicted, as Spark's
// predicate on a null is not true).
func evictUpper(watermarkMs int64) []byte {
	us := watermarkMs * 1000
	return state.AppendKeyInt64(nil, us+1)
}

var evictLower = []byte{0x01}

// eventTimeOf decodes the event-time prefix of a key (micros); ok is false
// for a null event time.
func eventTimeOf(key []byte) (int64, bool) {
	if len(key) < eventTimeLen || key[0] != 0x01 {
		return 0, false
	}
	var u uint64
	for _, c := range key[1:eventTimeLen] {
		u = u<<8 | uint64(c)
	}
	return int64(u ^ (1 << 63)), true
}

// gather returns the rows of b at idx, in that order, as a new batch
// sharing variable-width values with b.
func gather(b *batch.Batch, idx []int32) *batch.Batch {
	cols := make([]*batch.Column, len(b.Columns))
	for j, c := range b.Columns {
		cols[j] = gatherColumn(c, idx)
	}
	return &batch.Batch{Schema: b.Schema, Columns: cols, N: len(idx)}
}

func gatherColumn(c *batch.Column, idx []int32) *batch.Column {
	n := len(idx)
	if c.Type == batch.Null {
		return &batch.Column{Type: c.Type, Len: n}
	}
	if c.Type.IsNested() {
		out := batch.NewColumn(c.Type, n)
		for _, i := range idx {
			out.AppendFrom(c, int(i))
		}
		return out
	}
	out := &batch.Column{Type: c.Type, Len: n}
	if c.Valid != nil {
		out.Valid = make([]bool, n)
		for k, i := range idx {
			out.Valid[k] = c.Valid[i]
		}
	}
	switch c.Type {
	case batch.Boolean:
		out.Bools = make([]bool, n)
		for k, i := range idx {
			out.Bools[k] = c.Bools[i]
		}
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		out.Ints = make([]int64, n)
		for k, i := range idx {
			out.Ints[k] = c.Ints[i]
		}
	case batch.Double:
		out.Floats = make([]float64, n)
		for k, i := range idx {
			out.Floats[k] = c.Floats[i]
		}
	case batch.String, batch.Binary:
		out.Bytes = make([][]byte, n)
		for k, i := range idx {
			out.Bytes[k] = c.Bytes[i]
		}
	default:
		panic(fmt.Sprintf("operator: cannot gather a %s column", c.Type))
	}
	return out
}

// outRows collects an operator's output rows into batches of up to
// outputChunk rows and emits each as it fills. The aggregation's and the
// session aggregation's row builders call begin, append a row's cells to
// cols, then call rowDone.
type outRows struct {
	schema  batch.Schema
	emit    func(*batch.Batch) error
	cols    []*batch.Column // nil until a chunk's first row
	n       int
	onReset func() // after fresh columns: re-derive views of them
	// expect is how many rows the caller expects to emit (0: unknown): a
	// chunk's columns are made that large (within minChunkCap and
	// outputChunk) rather than doubled up to it row by row.
	expect int
	// arena holds the bytes of the string cells decoded from state keys
	// (state.DecodeKeyIntoArena): a few blocks, not an allocation per row.
	arena []byte
}

const (
	outputChunk = 4096
	minChunkCap = 16
)

func (o *outRows) init(schema batch.Schema, emit func(*batch.Batch) error, onReset func()) {
	o.schema, o.emit, o.onReset = schema, emit, onReset
}

// begin makes the chunk's columns before its first row.
func (o *outRows) begin() {
	if o.cols != nil {
		return
	}
	size := min(max(o.expect, minChunkCap), outputChunk)
	o.cols = make([]*batch.Column, len(o.schema.Fields))
	for i, f := range o.schema.Fields {
		o.cols[i] = batch.NewColumn(f.Type, size)
	}
	if o.onReset != nil {
		o.onReset()
	}
}

// rowDone counts the row just appended and emits a full chunk.
func (o *outRows) rowDone() error {
	o.n++
	if o.n >= outputChunk {
		return o.flush()
	}
	return nil
}

// flush emits the rows collected so far.
func (o *outRows) flush() error {
	if o.n == 0 {
		return nil
	}
	b := &batch.Batch{Schema: o.schema, Columns: o.cols, N: o.n}
	o.expect = max(o.expect-o.n, 0)
	o.cols, o.n = nil, 0
	return o.emit(b)
}
