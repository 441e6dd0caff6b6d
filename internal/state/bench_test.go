package state

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/procstat"
)

// TestMemoryAccountingMatchesHeap: the memory provider's MemoryUsedBytes
// (what the budget is charged) is within 25 % of the Go heap its state
// really takes, for small and larger entries.
func TestMemoryAccountingMatchesHeap(t *testing.T) {
	for _, c := range []struct{ n, keyLen, valLen int }{{200_000, 16, 8}, {50_000, 40, 200}} {
		t.Run(fmt.Sprintf("%dB+%dB", c.keyLen, c.valLen), func(t *testing.T) {
			p := openP(t, t.TempDir(), 0, DefaultConfig())
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s := mustOpen(t, p, 0)
			key := make([]byte, c.keyLen)
			val := make([]byte, c.valLen)
			for i := 0; i < c.n; i++ {
				binary.BigEndian.PutUint64(key, uint64(i)*2654435761)
				binary.BigEndian.PutUint32(key[8:], uint32(i))
				if err := s.Put(key, val); err != nil {
					t.Fatal(err)
				}
			}
			s.Abort() // drop the delta writer's buffers; the tree stays reachable through s
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			est := s.(*memStore).bytes
			ratio := float64(est) / float64(heap)
			t.Logf("%d entries: estimated %d B, heap grew %d B (ratio %.2f)", c.n, est, heap, ratio)
			if ratio < 0.75 || ratio > 1.25 {
				t.Fatalf("estimate %d vs heap %d: ratio %.2f outside [0.75, 1.25]", est, heap, ratio)
			}
			runtime.KeepAlive(s)
		})
	}
}

func benchProviders(b *testing.B, fn func(b *testing.B, conf Config)) {
	for _, pc := range providerCases {
		b.Run(pc.name, func(b *testing.B) {
			conf := pc.conf()
			if conf.Provider == DiskProvider {
				conf.DiskMemory = 64 << 20
			}
			fn(b, conf)
		})
	}
}

func benchKey(buf []byte, i int) []byte {
	return AppendKeyInt64(buf[:0], int64(i)*7919%1_000_003)
}

// BenchmarkPut: puts of 16-byte keys and 32-byte values into one store.
func BenchmarkPut(b *testing.B) {
	benchProviders(b, func(b *testing.B, conf Config) {
		p, err := OpenProvider(ID{Root: b.TempDir()}, testSchemas, conf)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		s, _ := p.Open(0)
		val := make([]byte, 32)
		var key []byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			key = benchKey(key, i)
			if err := s.Put(key, val); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		s.Abort()
	})
}

// BenchmarkGet: point reads from a committed store of 100,000 keys.
func BenchmarkGet(b *testing.B) {
	benchProviders(b, func(b *testing.B, conf Config) {
		p, err := OpenProvider(ID{Root: b.TempDir()}, testSchemas, conf)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		s, _ := p.Open(0)
		val := make([]byte, 32)
		var key []byte
		const n = 100_000
		for i := 0; i < n; i++ {
			key = benchKey(key, i)
			s.Put(key, val)
		}
		if _, err := s.Commit(); err != nil {
			b.Fatal(err)
		}
		s, _ = p.Open(1)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			key = benchKey(key, i%n)
			if _, ok, err := s.Get(key); !ok || err != nil {
				b.Fatal("missing key", err)
			}
		}
		b.StopTimer()
		s.Abort()
	})
}

// BenchmarkCommit: one batch of 1,000 updates over a 100,000-key state,
// then commit (delta file, or flush + Pebble checkpoint) and maintenance;
// reported per batch.
func BenchmarkCommit(b *testing.B) {
	benchProviders(b, func(b *testing.B, conf Config) {
		p, err := OpenProvider(ID{Root: b.TempDir()}, testSchemas, conf)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		s, _ := p.Open(0)
		val := make([]byte, 32)
		var key []byte
		const n = 100_000
		for i := 0; i < n; i++ {
			key = benchKey(key, i)
			s.Put(key, val)
		}
		v, err := s.Commit()
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s, err := p.Open(v)
			if err != nil {
				b.Fatal(err)
			}
			for j := 0; j < 1000; j++ {
				key = benchKey(key, (i*1000+j)%n)
				s.Put(key, val)
			}
			if v, err = s.Commit(); err != nil {
				b.Fatal(err)
			}
			if err := p.Maintenance(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestMemoryBudgetDiskStateManyKeys puts 3 million small keys (a 33 MB
// checkpoint) through the disk provider over 30 batches with a 32 MiB
// allowance and checks the process's resident memory grows by no more than
// the allowance + 64 MiB (Pebble allocates its cache outside the Go heap
// when cgo is on, so RSS is the honest figure). Heavy: SLUICE_SERIAL_TESTS=1.
func TestMemoryBudgetDiskStateManyKeys(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy; set SLUICE_SERIAL_TESTS=1")
	}
	conf := providerCases[1].conf()
	conf.DiskMemory = 32 << 20
	conf.MinBatchesToRetain = 3
	p := openP(t, t.TempDir(), 0, conf)
	val := make([]byte, 16)
	var key []byte
	runtime.GC()
	rss0, _, err := procstat.Memory(os.Getpid())
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var peak, peakHeap int64
	const batches, perBatch = 30, 100_000
	for b := int64(0); b < batches; b++ {
		s := mustOpen(t, p, b)
		for i := 0; i < perBatch; i++ {
			key = AppendKeyInt64(key[:0], int64(b)*perBatch+int64(i))
			key = AppendKeyBytes(key, []byte("device-0000"))
			if err := s.Put(key, val); err != nil {
				t.Fatal(err)
			}
		}
		mustCommit(t, s)
		if err := p.Maintenance(); err != nil {
			t.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, int64(ms.HeapInuse))
		rss, _, _ := procstat.Memory(os.Getpid())
		peak = max(peak, rss-rss0)
		if b == batches-1 {
			m := s.Metrics()
			t.Logf("%d keys, memoryUsedBytes %d, files %d B, peak RSS growth %d MiB, peak Go heap in use %d MiB",
				m.NumKeys, m.MemoryUsedBytes, m.Custom[MetricStateFilesBytes], peak>>20, peakHeap>>20)
			if m.NumKeys != batches*perBatch {
				t.Fatalf("NumKeys %d", m.NumKeys)
			}
			if m.MemoryUsedBytes > conf.DiskMemory {
				t.Fatalf("memoryUsedBytes %d over the allowance %d", m.MemoryUsedBytes, conf.DiskMemory)
			}
		}
	}
	if limit := conf.DiskMemory + 64<<20; peak > limit {
		t.Fatalf("RSS grew by %d MiB, over allowance + 64 MiB (%d MiB)", peak>>20, limit>>20)
	}
	// Everything is still readable after a reopen.
	s := mustOpen(t, p, batches)
	n := 0
	s.Iterate(nil, nil, func(_, _ []byte) bool { n++; return true })
	if n != batches*perBatch {
		t.Fatalf("iterated %d keys", n)
	}
	s.Abort()
}

// BenchmarkCommitBatch200 commits a batch of 200 memory stores (Spark's
// default shuffle partitions) the way the engine does — every store's
// WriteOut, then every Sync, then every Commit and Maintenance, each step
// on parallel goroutines — with 50 updates a store, per-file and batch
// durability; reported per batch, with the process's CPU time per batch
// (cpu-ms/batch: wall time under load is the machine's, CPU is ours).
func BenchmarkCommitBatch200(b *testing.B) {
	const stores, keys = 200, 50
	for _, mode := range []SyncMode{SyncFile, SyncBatch} {
		for _, writers := range []int{2, stores} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				conf := DefaultConfig()
				conf.Sync = mode
				root := b.TempDir()
				ps := make([]Provider, stores)
				for i := range ps {
					p, err := OpenProvider(ID{Root: root, Partition: i}, testSchemas, conf)
					if err != nil {
						b.Fatal(err)
					}
					defer p.Close()
					ps[i] = p
				}
				type stepped interface {
					WriteOut() error
					Sync() error
				}
				each := func(workers int, fn func(i int) error) {
					var wg sync.WaitGroup
					next := make(chan int)
					for range workers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := range next {
								if err := fn(i); err != nil {
									b.Error(err)
								}
							}
						}()
					}
					for i := range stores {
						next <- i
					}
					close(next)
					wg.Wait()
				}
				val := make([]byte, 32)
				ss := make([]Store, stores)
				cpu0 := processCPU()
				b.ResetTimer()
				for n := 0; n < b.N; n++ {
					for i, p := range ps {
						s, err := p.Open(int64(n))
						if err != nil {
							b.Fatal(err)
						}
						for k := range keys {
							s.Put(benchKey(nil, n*keys+k), val)
						}
						ss[i] = s
					}
					each(writers, func(i int) error { return ss[i].(stepped).WriteOut() })
					each(stores, func(i int) error { return ss[i].(stepped).Sync() })
					each(stores, func(i int) error {
						if _, err := ss[i].Commit(); err != nil {
							return err
						}
						return ps[i].Maintenance()
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/batch")
			})
		}
	}
}

// processCPU is the process's user + system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPreparedCommit200 is a batch's state files as `sluice bench
// --only stateful` makes them with batch durability: 200 stores' deltas
// prepared (DeltaPreparer), then opened, written, synced together and
// committed; held=true keeps the prepared descriptors for the stores,
// held=false (the cap at 0) makes each store open its file again.
// cpu-ms/batch is the process's CPU per batch.
func BenchmarkPreparedCommit200(b *testing.B) {
	const stores, keys = 200, 50
	for _, held := range []bool{false, true} {
		b.Run(fmt.Sprintf("held=%v", held), func(b *testing.B) {
			defer func(m int64) { maxHeldPrepared = m }(maxHeldPrepared)
			if !held {
				maxHeldPrepared = 0
			}
			root := b.TempDir()
			ps := make([]Provider, stores)
			for i := range ps {
				p, err := OpenProvider(ID{Root: root, Partition: i}, testSchemas, DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				ps[i] = p
			}
			type stepped interface {
				WriteOut() error
				Sync() error
			}
			val := make([]byte, 32)
			ss := make([]Store, stores)
			cpu0 := processCPU()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				for _, p := range ps {
					if err := p.(DeltaPreparer).PrepareDelta(int64(n)); err != nil {
						b.Fatal(err)
					}
				}
				for i, p := range ps {
					s, err := p.Open(int64(n))
					if err != nil {
						b.Fatal(err)
					}
					for k := range keys {
						s.Put(benchKey(nil, n*keys+k), val)
					}
					if err := s.(stepped).WriteOut(); err != nil {
						b.Fatal(err)
					}
					ss[i] = s
				}
				for _, s := range ss {
					if err := s.(stepped).Sync(); err != nil {
						b.Fatal(err)
					}
				}
				for i, s := range ss {
					if _, err := s.Commit(); err != nil {
						b.Fatal(err)
					}
					if err := ps[i].Maintenance(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/batch")
		})
	}
}
