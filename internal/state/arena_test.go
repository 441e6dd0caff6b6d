package state

import (
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// TestDecodeKeyIntoArena decodes keys with strings — empty, short, longer
// than an arena block, with a zero byte (the boxed path), null — through
// an arena: the cells must equal DecodeKeyInto's (an empty string stays
// an empty string, not a null), later appends must not change cells
// already decoded, and the short strings must share blocks rather than
// take an allocation each.
func TestDecodeKeyIntoArena(t *testing.T) {
	strs := []string{"", "k-0001", strings.Repeat("x", keyArenaBlock+5), "a\x00b", "", "tail"}
	in := []*batch.Column{batch.NewColumn(batch.Long, 8), batch.NewColumn(batch.String, 8)}
	for i, s := range strs {
		in[0].AppendInt(int64(i) - 2)
		in[1].AppendBytes([]byte(s))
	}
	in[0].AppendInt(7)
	in[1].AppendNull()
	n := len(strs) + 1
	var keys [][]byte
	for row := range n {
		keys = append(keys, EncodeKey(nil, in, row))
	}
	decode := func(arena *[]byte) []*batch.Column {
		out := []*batch.Column{batch.NewColumn(batch.Long, n), batch.NewColumn(batch.String, n)}
		for _, k := range keys {
			if err := DecodeKeyIntoArena(k, out, arena); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	want := decode(nil)
	var arena []byte
	got := decode(&arena)
	// Appends after the decode leave the cells as they were.
	for range 3 {
		arena = append(arena, 0xff)
	}
	for row := range n {
		for c := range in {
			if w, g := want[c].Value(row), got[c].Value(row); w != g {
				t.Fatalf("row %d column %d: got %#v, want %#v", row, c, g, w)
			}
			if w, g := in[c].IsNull(row), got[c].IsNull(row); w != g {
				t.Fatalf("row %d column %d: null %v, want %v", row, c, g, w)
			}
		}
	}
	// Many short strings: a few blocks, not an allocation per key.
	short := []*batch.Column{batch.NewColumn(batch.String, 1)}
	short[0].AppendBytes([]byte("key-0042"))
	key := EncodeKey(nil, short, 0)
	out := []*batch.Column{batch.NewColumn(batch.String, 1000)}
	arena = nil
	allocs := testing.AllocsPerRun(1, func() {
		out[0].Bytes, out[0].Len = out[0].Bytes[:0], 0
		for range 1000 {
			if err := DecodeKeyIntoArena(key, out, &arena); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 10 {
		t.Fatalf("%v allocations decoding 1,000 keys into an arena", allocs)
	}
}
