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
func BenchmarkWindowedPutEvict(b *testing.B) {
	for _, c := range []struct{ windowsPerBatch, perWindow int }{{8, 50}, {8, 2500}} {
		b.Run(fmt.Sprintf("keys=%dx%d", c.windowsPerBatch, c.perWindow), func(b *testing.B) {
			p, err := OpenProvider(ID{Root: b.TempDir()}, testSchemas, DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			val := make([]byte, 12)
			var key []byte
			var cpu time.Duration
			names := make([][]byte, c.perWindow)
			for k := range names {
				names[k] = fmt.Appendf(nil, "%04d", k*7)
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
				cpu0 := processCPU()
				for w := 0; w < c.windowsPerBatch; w++ {
					win := int64(n*c.windowsPerBatch+w) * 10_000_000
					for k := 0; k < c.perWindow; k++ {
						key = AppendKeyInt64(key[:0], win)
						key = AppendKeyInt64(key, win+10_000_000)
						key = AppendKeyBytes(key, names[k])
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
