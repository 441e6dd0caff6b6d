package kafka

import (
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// MemoryPerRecord implements source.RecordOverhead: each fetched record is
// held as a kgo.Record (plus its share of the fetch buffer's bookkeeping)
// until its batch is written, on top of the column bytes.
func (s *Source) MemoryPerRecord() int64 { return int64(unsafe.Sizeof(kgo.Record{})) + 64 }

// SetRequiredColumns implements source.Pruner: only the named columns are
// built from the fetched records (the seed's query reads only value), which
// saves most of the per-record allocation.
func (s *Source) SetRequiredColumns(names []string) {
	if names == nil {
		s.need = nil
		return
	}
	need := make([]bool, len(s.schema.Fields))
	for _, n := range names {
		if i := s.schema.Index(n); i >= 0 {
			need[i] = true
		}
	}
	s.need = need
}
