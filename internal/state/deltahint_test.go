package state

import (
	"fmt"
	"testing"
)

// TestDeltaBufferStartsAtLastDeltaSize: a memory store's delta buffer
// starts at about the previous delta's payload (no doubling up to it), and
// a delta larger than a block starts at one block, not its whole size.
func TestDeltaBufferStartsAtLastDeltaSize(t *testing.T) {
	bodyPool.Put(new([]byte)) // an empty buffer first in the pool (if it keeps it)
	forEachProvider(t, func(t *testing.T, conf Config) {
		p := openP(t, t.TempDir(), 0, conf)
		v := int64(0)
		for _, records := range []int{3000, 40000, 10} {
			st := mustOpen(t, p, v)
			ms, ok := st.(*memStore)
			if !ok {
				st.Abort()
				t.Skip("not the memory provider")
			}
			want := min(ms.p.lastDeltaRaw, lzBlock)
			if got := int64(cap(ms.delta.body)); got < want {
				t.Fatalf("version %d: delta buffer %d bytes, last delta held %d", v+1, got, ms.p.lastDeltaRaw)
			}
			if got := cap(ms.delta.body); got > 2*lzBlock { // the most bodyPool keeps
				t.Fatalf("version %d: delta buffer %d bytes, more than a block", v+1, got)
			}
			for n := range records {
				if err := st.Put(fmt.Appendf(nil, "key-%06d-%d", n, v), []byte("a value of some bytes")); err != nil {
					t.Fatal(err)
				}
			}
			raw := ms.delta.raw
			v = mustCommit(t, st)
			if ms.p.lastDeltaRaw != raw {
				t.Fatalf("version %d: remembered %d bytes, the delta held %d", v, ms.p.lastDeltaRaw, raw)
			}
		}
	})
}
