package state

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkWindowedPutEvict is a shuffle partition's state under a
// tumbling-window count per key in append mode (the shape of `sluice bench
// --only stateful`): each batch puts perWindow new keys of each of its
// windows (event time first in the key, as an aggregation's state key has
// it), in key order as stage 2 does, and evicts the windows the watermark
// passed with one RemoveRange. Every key is new and is evicted two batches
// later. cpu-ns/key is the process's CPU per key put (and evicted) outside
// the commit, whose file cost BenchmarkCommitBatch200 measures.
//
// put=each puts the keys one Put at a time; put=merge in one MergeSorted
// (as stage 2 does). keys=12x46 is the bench's shape: about 550 keys of
// 12 windows per shuffle partition and batch.
func BenchmarkWindowedPutEvict(b *testing.B) {
	for _, c := range []struct {
		windowsPerBatch, perWindow int
		merge                      bool
	}{{8, 50, false}, {8, 2500, false}, {12, 46, false}, {12, 46, true}, {8, 2500, true}} {
		mode := "each"
		if c.merge {
			mode = "merge"
		}
		b.Run(fmt.Sprintf("keys=%dx%d/put=%s", c.windowsPerBatch, c.perWindow, mode), func(b *testing.B) {
			p, err := OpenProvider(ID{Root: b.TempDir()}, testSchemas, DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			val := make([]byte, 12)
			var keys [][]byte
			var arena []byte
			var cpu time.Duration
			names := make([][]byte, c.perWindow)
			for k := range names {
				names[k] = fmt.Appendf(nil, "%05d", k*7) // in key order
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				s, err := p.Open(int64(n))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				keys = keys[:0]
				arena = arena[:0]
				for w := 0; w < c.windowsPerBatch; w++ {
					win := int64(n*c.windowsPerBatch+w) * 10_000_000
					for k := 0; k < c.perWindow; k++ {
						start := len(arena)
						arena = AppendKeyInt64(arena, win)
						arena = AppendKeyInt64(arena, win+10_000_000)
						arena = AppendKeyBytes(arena, names[k])
						keys = append(keys, arena[start:len(arena):len(arena)])
					}
				}
				cpu0 := processCPU()
				if c.merge {
					if err := MergeSorted(s, keys, func(int, []byte, bool) ([]byte, error) { return val, nil }); err != nil {
						b.Fatal(err)
					}
				} else {
					for _, key := range keys {
						if err := s.Put(key, val); err != nil {
							b.Fatal(err)
						}
					}
				}
				// The watermark passed the windows of two batches ago.
				upper := AppendKeyInt64(nil, int64((n-1)*c.windowsPerBatch)*10_000_000)
				if _, err := s.RemoveRange([]byte{0x01}, upper, func(k, v []byte) error { return nil }); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - cpu0
				b.StopTimer()
				if _, err := s.Commit(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu)/float64(b.N*c.windowsPerBatch*c.perWindow), "cpu-ns/key")
		})
	}
}
