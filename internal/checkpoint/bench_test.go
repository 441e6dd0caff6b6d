package checkpoint

import (
	"testing"
)

// BenchmarkBatchLog measures the checkpoint's work per batch as the engine
// does it (offsets, purge, commit) with Spark's default retention (100
// batches), on the local disk: `go test -bench BatchLog ./internal/checkpoint`.
func BenchmarkBatchLog(b *testing.B) {
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	meta := BatchMetadata{TimestampMs: 1, Conf: map[string]string{"spark.sql.shuffle.partitions": "200"}}
	src := []string{`{"orders":{"0":100,"1":100,"2":100,"3":100,"4":100,"5":100,"6":100,"7":100}}`}
	// A checkpoint that has run a while: the retained batches exist.
	for id := int64(0); id <= DefaultMinBatchesToRetain; id++ {
		if err := c.WriteOffsets(id, meta, src); err != nil {
			b.Fatal(err)
		}
		if err := c.WriteCommit(id, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := int64(DefaultMinBatchesToRetain + 1 + i)
		if err := c.WriteOffsets(id, meta, src); err != nil {
			b.Fatal(err)
		}
		if err := c.Purge(DefaultMinBatchesToRetain); err != nil {
			b.Fatal(err)
		}
		if err := c.WriteCommit(id, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchLogPipelined is BenchmarkBatchLog in the engine's
// pipelined order: commits/N is written while offsets/N+1 is (then the
// purge), so a batch waits for the slower of the two writes instead of
// both: `go test -bench BatchLog ./internal/checkpoint`.
func BenchmarkBatchLogPipelined(b *testing.B) {
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	meta := BatchMetadata{TimestampMs: 1, Conf: map[string]string{"spark.sql.shuffle.partitions": "200"}}
	src := []string{`{"orders":{"0":100,"1":100,"2":100,"3":100,"4":100,"5":100,"6":100,"7":100}}`}
	for id := int64(0); id <= DefaultMinBatchesToRetain; id++ {
		if err := c.WriteOffsets(id, meta, src); err != nil {
			b.Fatal(err)
		}
		if id < DefaultMinBatchesToRetain {
			if err := c.WriteCommit(id, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := int64(DefaultMinBatchesToRetain + 1 + i)
		done := make(chan error, 1)
		go func() { done <- c.WriteCommit(id-1, 0) }()
		if err := c.WriteOffsets(id, meta, src); err != nil {
			b.Fatal(err)
		}
		if err := c.Purge(DefaultMinBatchesToRetain); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
