package operator

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluice-stream/sluice/internal/state"
)

// TestSortKeysOrder checks Finish's grouped sort against a plain sort of
// the keys (then arrival): windowed keys over few and many windows (past
// maxSortGroups, the one-sort path), repeated keys, keys shorter than the
// prefix words and keys alike in their first 24 bytes.
func TestSortKeysOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sc := new(finishScratch)
	for _, c := range []struct{ n, windows, names int }{
		{0, 1, 1}, {1, 1, 1}, {2, 1, 1}, {500, 1, 50}, {500, 3, 50}, {2000, 8, 300},
		{3000, maxSortGroups, 40}, {3000, maxSortGroups + 1, 40}, {3000, 200, 40},
	} {
		t.Run(fmt.Sprintf("n=%d,windows=%d", c.n, c.windows), func(t *testing.T) {
			ps := make([]partial, c.n)
			for i := range ps {
				var key []byte
				switch rng.IntN(20) {
				case 0: // short: fewer bytes than the words hold
					key = []byte{byte(rng.IntN(3))}
				case 1: // alike past the words, to the 50th byte
					key = fmt.Appendf(nil, "%016d%s%d", rng.IntN(c.windows), "same-34-bytes-past-the-prefix-----", rng.IntN(5))
				case 2: // zeros where shorter keys have padding
					key = fmt.Appendf(nil, "%024d", rng.IntN(c.windows))
					key = append(key, make([]byte, rng.IntN(3))...)
				case 3: // alike to the 41st byte
					key = fmt.Appendf(nil, "%024d%s%c", rng.IntN(c.windows), "sixteen-bytes-ab", 'a'+rng.IntN(3))
				default:
					key = windowKey(uint64(rng.IntN(c.windows))*10_000_000, rng.IntN(c.names))
				}
				ps[i] = partial{key: key}
			}
			got := sc.sortKeys(ps)
			want := make([]int32, len(ps))
			for i := range want {
				want[i] = int32(i)
			}
			slices.SortStableFunc(want, func(x, y int32) int { return bytes.Compare(ps[x].key, ps[y].key) })
			if len(got) != len(want) {
				t.Fatalf("%d keys, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].i != want[i] {
					t.Fatalf("position %d: partial %d (%q), want %d (%q)", i, got[i].i, ps[got[i].i].key, want[i], ps[want[i]].key)
				}
			}
		})
	}
}

// BenchmarkSortKeys is Finish's sort of a shuffle partition's keys in the
// stateful bench's shape (525 keys of 12 windows or 1, 50 4-character names):
// grouped (sortKeys) against the one sort of every key it replaced.
func BenchmarkSortKeys(b *testing.B) {
	for _, windows := range []int{1, 12} {
		const n = 525
		rng := rand.New(rand.NewPCG(1, 2))
		ps := make([]partial, n)
		for i := range ps {
			w := uint64(rng.IntN(windows)) * 10_000_000
			ps[i] = partial{key: windowKey(w, rng.IntN(50))}
		}
		fill := func(sk []sortKey) {
			for i, p := range ps {
				sk[i] = sortKey{keyWord(p.key, 0), keyWord(p.key, 8), keyWord(p.key, 16), int32(i), uint32(len(p.key))}
			}
		}
		b.Run(fmt.Sprintf("windows=%d/grouped", windows), func(b *testing.B) {
			sc := new(finishScratch)
			for b.Loop() {
				sc.sortKeys(ps)
			}
		})
		b.Run(fmt.Sprintf("windows=%d/one", windows), func(b *testing.B) {
			sk := make([]sortKey, n)
			for b.Loop() {
				fill(sk)
				// The sort Finish had: words, then whole keys (no key
				// is covered by its words with cover 0), then arrival.
				slices.SortFunc(sk, compareSortKeys(ps, 0))
			}
		})
	}
}

// windowKey is a windowed count's state key as stage 2 sees it: the event
// time (the window's end less 1 µs), the window's start and end, then a
// 4-character name.
func windowKey(start uint64, name int) []byte {
	key := state.AppendKeyInt64(nil, int64(start+10_000_000-1))
	key = append(key, 0x01) // the window struct's presence byte
	key = state.AppendKeyInt64(key, int64(start))
	key = state.AppendKeyInt64(key, int64(start+10_000_000))
	return state.AppendKeyBytes(key, fmt.Appendf(nil, "%04d", name))
}

// TestSortSortKeysLikeSortFunc checks sortSortKeys against
// slices.SortFunc with compareSortKeys over lengths around the insertion
// limit and beyond, and orders that trouble a quicksort: sorted, reversed,
// organ pipe, all words alike (order by whole keys, then index), few
// distinct keys, and random. A depth limit of 0 checks the fallback.
func TestSortSortKeysLikeSortFunc(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, insertionSortLimit, insertionSortLimit + 1, 40, 100, 1000, 5000} {
		for _, shape := range []string{"random", "sorted", "reversed", "pipe", "alike", "few"} {
			ps := make([]partial, n)
			sk := make([]sortKey, n)
			for i := range ps {
				var v int
				switch shape {
				case "random":
					v = rng.IntN(1 << 30)
				case "sorted":
					v = i
				case "reversed":
					v = n - i
				case "pipe":
					v = min(i, n-i)
				case "alike", "few":
					v = rng.IntN(4)
				}
				key := fmt.Appendf(nil, "%012d", v)
				if shape == "alike" {
					// Alike in the words' 24 bytes; longer than cover.
					key = fmt.Appendf(nil, "%024d%s%d", 7, "-past-the-words-", v)
				}
				ps[i] = partial{key: key}
				sk[i] = sortKey{keyWord(key, 0), keyWord(key, 8), keyWord(key, 16), int32(i), keyLen(key)}
			}
			for _, depth := range []int{2 * 64, 0} {
				want := slices.Clone(sk)
				slices.SortFunc(want, compareSortKeys(ps, 24))
				got := slices.Clone(sk)
				quickSortKeys(got, ps, 24, depth)
				if !slices.Equal(got, want) {
					t.Fatalf("n=%d %s depth %d: order differs from slices.SortFunc", n, shape, depth)
				}
			}
		}
	}
}
