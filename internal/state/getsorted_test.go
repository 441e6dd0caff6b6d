package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGetSortedAnswersAsGet looks up sorted key sets of every size against
// stores of every size (so both the walk and the per-key lookups run):
// keys before the first entry, after the last, between entries and equal
// to entries, in a committed version and with the open batch's own writes
// and removals. Every answer must be Get's.
func TestGetSortedAnswersAsGet(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		rng := rand.New(rand.NewPCG(1, 2))
		p := openP(t, t.TempDir(), 0, conf)
		key := func(n int) []byte { return fmt.Appendf(nil, "k%06d", n) }
		st := mustOpen(t, p, 0)
		for n := 0; n < 3000; n += 2 { // even keys stored
			if err := st.Put(key(n), []byte{byte(n)}); err != nil {
				t.Fatal(err)
			}
		}
		mustCommit(t, st)
		st = mustOpen(t, p, 1)
		defer st.Abort()
		for n := 1000; n < 1100; n++ { // the batch's own changes
			if n%4 == 0 {
				if err := st.Remove(key(n)); err != nil {
					t.Fatal(err)
				}
			} else if err := st.Put(key(n), []byte{byte(n), 1}); err != nil {
				t.Fatal(err)
			}
		}
		for _, size := range []int{0, 1, 2, 5, 50, 300, 1000, 4000} {
			seen := map[int]bool{}
			var keys [][]byte
			for len(keys) < size {
				n := rng.IntN(3400) - 200 // some below and above every key
				if n < 0 {
					n = 0
				}
				if !seen[n] {
					seen[n] = true
					keys = append(keys, key(n))
				}
				if len(seen) == 3400-200 {
					break
				}
			}
			slices.SortFunc(keys, bytes.Compare)
			calls := 0
			err := GetSorted(st, keys, func(i int, v []byte, ok bool) {
				if i != calls {
					t.Fatalf("size %d: call %d for key %d", size, calls, i)
				}
				calls++
				want, wok, err := st.Get(keys[i])
				if err != nil {
					t.Fatal(err)
				}
				if ok != wok || !bytes.Equal(v, want) {
					t.Fatalf("size %d: %s: GetSorted %q %v, Get %q %v", size, keys[i], v, ok, want, wok)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != len(keys) {
				t.Fatalf("size %d: %d calls for %d keys", size, calls, len(keys))
			}
		}
	})
}
