package state

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// mergeFn is the merge the tests run: a key's new value is its stored
// value (or "new") with its index appended.
func mergeFn(i int, old []byte, had bool) ([]byte, error) {
	if !had {
		old = []byte("new")
	}
	return fmt.Appendf(slices.Clip(old), "+%d", i), nil
}

// MergeSorted on the memory provider — by one merge into a rebuilt tree
// when the run is many beside the state, by a lookup and an insert per key
// when few — leaves the store, its metrics and its delta file as a
// GetSorted and a Put per key would (the fallback state.MergeSorted takes
// for other stores), for runs of new and stored keys against states of
// every size, including keys before, between and after the stored ones;
// so do range removals right after it and single writes after those.
func TestMergeSortedLikePuts(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, c := range []struct{ stored, run int }{{0, 1}, {0, 300}, {1, 1}, {5, 3}, {640, 550}, {3000, 40}, {3000, 2}, {2000, 2500}} {
		t.Run(fmt.Sprintf("stored=%d/run=%d", c.stored, c.run), func(t *testing.T) {
			key := func(i int) []byte { return fmt.Appendf(nil, "k%07d", i) }
			// Stored keys and the run's are drawn from one range, so
			// the run replaces some and falls around others.
			space := 2*(c.stored+c.run) + 10
			stored := rng.Perm(space)[:c.stored]
			run := rng.Perm(space)[:c.run]
			slices.Sort(run)
			keys := make([][]byte, len(run))
			for i, r := range run {
				keys[i] = key(r)
			}
			type side struct {
				root string
				p    Provider
				s    Store
			}
			var sides [2]side
			for j := range sides {
				root := t.TempDir()
				p := openP(t, root, 0, DefaultConfig())
				s := mustOpen(t, p, 0)
				for _, i := range stored {
					if err := s.Put(key(i), fmt.Appendf(nil, "v%d", i)); err != nil {
						t.Fatal(err)
					}
				}
				mustCommit(t, s)
				sides[j] = side{root, p, mustOpen(t, p, 1)}
			}
			// Side 0 merges; side 1 takes the fallback (a Store without
			// SortedMerger).
			if err := MergeSorted(sides[0].s, keys, mergeFn); err != nil {
				t.Fatal(err)
			}
			if err := MergeSorted(struct{ Store }{sides[1].s}, keys, mergeFn); err != nil {
				t.Fatal(err)
			}
			want := contents(t, sides[1].s)
			if got := contents(t, sides[0].s); !maps.Equal(got, want) {
				t.Fatalf("merged store has %d keys, puts made %d", len(got), len(want))
			}
			m0, m1 := sides[0].s.Metrics(), sides[1].s.Metrics()
			if m0.NumKeys != m1.NumKeys || m0.NumRowsUpdated != m1.NumRowsUpdated || m0.MemoryUsedBytes != m1.MemoryUsedBytes {
				t.Fatalf("metrics %+v, puts give %+v", m0, m1)
			}
			// Ranges removed right after the merge (stage 2's eviction)
			// go as they would from the puts' store: the front, one in
			// the middle, one fn fails in, one past everything and an
			// empty one.
			mid := key(space / 2)
			boom := errors.New("boom")
			for _, r := range []struct {
				lower, upper []byte
				failAt       int
			}{{nil, key(space / 4), -1}, {key(space/2 + 3), key(space/2 + 40), -1}, {mid, nil, 2}, {key(space + 5), nil, -1}, {key(space / 2), key(space / 3), -1}} {
				var seen [2][]string
				var n [2]int64
				var errs [2]error
				for j, sd := range sides {
					n[j], errs[j] = sd.s.RemoveRange(r.lower, r.upper, func(k, v []byte) error {
						if len(seen[j]) == r.failAt {
							return boom
						}
						seen[j] = append(seen[j], string(k)+"="+string(v))
						return nil
					})
				}
				if n[0] != n[1] || !slices.Equal(seen[0], seen[1]) || errs[0] != errs[1] {
					t.Fatalf("RemoveRange(%q, %q) after the merge: %d %v %v, puts' store: %d %v %v", r.lower, r.upper, n[0], seen[0], errs[0], n[1], seen[1], errs[1])
				}
				if got, want := contents(t, sides[0].s), contents(t, sides[1].s); !maps.Equal(got, want) {
					t.Fatalf("after RemoveRange(%q, %q) the store has %d keys, the puts' %d", r.lower, r.upper, len(got), len(want))
				}
				m0, m1 := sides[0].s.Metrics(), sides[1].s.Metrics()
				if m0.NumKeys != m1.NumKeys || m0.NumRowsRemoved != m1.NumRowsRemoved || m0.MemoryUsedBytes != m1.MemoryUsedBytes {
					t.Fatalf("metrics %+v, puts give %+v", m0, m1)
				}
			}
			// The store goes on with single writes.
			for _, s := range []Store{sides[0].s, sides[1].s} {
				if err := s.Put(key(space+1), []byte("x")); err != nil {
					t.Fatal(err)
				}
				if c.run > 0 {
					if err := s.Remove(keys[0]); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got, want := contents(t, sides[0].s), contents(t, sides[1].s); !maps.Equal(got, want) {
				t.Fatal("stores differ after further writes")
			}
			var deltas [2][]byte
			for j, sd := range sides {
				mustCommit(t, sd.s)
				b, err := os.ReadFile(filepath.Join(sd.root, "0", "0", "2.delta"))
				if err != nil {
					t.Fatal(err)
				}
				deltas[j] = b
			}
			if !bytes.Equal(deltas[0], deltas[1]) {
				t.Fatalf("2.delta differs from the puts' (%d bytes vs %d)", len(deltas[0]), len(deltas[1]))
			}
		})
	}
}

// A merge refused by the memory limit, an error of fn and an unsorted run
// leave the store as it was, and a merge the batch aborts leaves the
// version it started from intact.
func TestMergeSortedUnchangedOnError(t *testing.T) {
	for _, stored := range []int{0, 40, 3000} { // with 40 and 0, the rebuild; with 3000, a Put each
		t.Run(fmt.Sprintf("stored=%d", stored), func(t *testing.T) {
			key := func(i int) []byte { return fmt.Appendf(nil, "k%06d", i) }
			conf := DefaultConfig()
			conf.MemoryLimit = int64(stored)*entrySize(7, 8) + 60*entrySize(7, 8) // room for 60 more
			budget := NewBudget(1 << 30)
			conf.Budget = budget
			root := t.TempDir()
			p := openP(t, root, 0, conf)
			s := mustOpen(t, p, 0)
			for i := range stored {
				if err := s.Put(key(2*i), []byte("v0000000")); err != nil {
					t.Fatal(err)
				}
			}
			mustCommit(t, s)
			s = mustOpen(t, p, 1)
			before := contents(t, s)
			m0 := s.Metrics()
			used := budget.Used()
			run := func(from, n int) [][]byte {
				var keys [][]byte
				for i := range n {
					keys = append(keys, key(2*(from+i)+1))
				}
				return keys
			}
			val := []byte("v1111111")
			check := func(what string, err error, target error) {
				t.Helper()
				if target != nil && !errors.Is(err, target) || err == nil {
					t.Fatalf("%s: %v", what, err)
				}
				if got := contents(t, s); !maps.Equal(got, before) {
					t.Fatalf("%s changed the store (%d keys, was %d)", what, len(got), len(before))
				}
				if m := s.Metrics(); m.MemoryUsedBytes != m0.MemoryUsedBytes || m.NumRowsUpdated != 0 {
					t.Fatalf("%s: memory %d updated %d, was %d 0", what, m.MemoryUsedBytes, m.NumRowsUpdated, m0.MemoryUsedBytes)
				}
				if budget.Used() != used {
					t.Fatalf("%s: budget %d, was %d", what, budget.Used(), used)
				}
			}
			err := MergeSorted(s, run(0, 61), func(int, []byte, bool) ([]byte, error) { return val, nil })
			var me *MemoryExceededError
			if !errors.As(err, &me) || me.Partition != 0 || !bytes.Contains([]byte(err.Error()), []byte("state store limit")) {
				t.Fatalf("61 new keys over the limit: %v", err)
			}
			check("the refused merge", err, ErrStateMemoryExceeded)
			boom := errors.New("boom")
			err = MergeSorted(s, run(0, 30), func(i int, _ []byte, _ bool) ([]byte, error) {
				if i == 29 {
					return nil, boom
				}
				return val, nil
			})
			check("fn's error", err, boom)
			keys := run(0, 3)
			keys[1], keys[2] = keys[2], keys[1]
			err = MergeSorted(s, keys, func(int, []byte, bool) ([]byte, error) { return val, nil })
			check("an unsorted run", err, nil)

			// 60 fit; then the batch is aborted.
			if err := MergeSorted(s, run(0, 60), func(int, []byte, bool) ([]byte, error) { return val, nil }); err != nil {
				t.Fatal(err)
			}
			if stored > 0 {
				if _, err := s.RemoveRange(nil, key(stored), nil); err != nil {
					t.Fatal(err)
				}
			}
			s.Abort()
			if budget.Used() != used {
				t.Fatalf("budget %d after Abort, was %d", budget.Used(), used)
			}
			s = mustOpen(t, p, 1)
			if got := contents(t, s); !maps.Equal(got, before) {
				t.Fatalf("version 1 has %d keys after an aborted merge, want %d", len(got), len(before))
			}
			s.Abort()
		})
	}
}

// Versions a merge left flat are cached, snapshotted and rebuilt like any
// other: batches of merges and front evictions, with maintenance after
// each, give the model's state from the cache and from the files; and a
// batch that starts from a cached flat version and changes it (a single
// write, a removal in the middle, one at the front) then aborts leaves
// that version as it was.
func TestMergeSortedFlatVersions(t *testing.T) {
	key := func(i int) []byte { return fmt.Appendf(nil, "k%06d", i) }
	conf := DefaultConfig()
	conf.MinDeltasForSnapshot = 2
	root := t.TempDir()
	p := openP(t, root, 0, conf)
	model := map[string]string{}
	const perBatch = 300
	for b := range 8 {
		s := mustOpen(t, p, int64(b))
		// New keys of this batch, and every tenth key of the last
		// one again (a replacement).
		var keys [][]byte
		for i := (b - 1) * perBatch; i < (b+1)*perBatch; i++ {
			if i >= 0 && (i >= b*perBatch || i%10 == 0) {
				keys = append(keys, key(i))
			}
		}
		if err := MergeSorted(s, keys, mergeFn); err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			v, _ := mergeFn(i, []byte(model[string(k)]), model[string(k)] != "")
			model[string(k)] = string(v)
		}
		// Evict the batch before last.
		if b >= 2 {
			if _, err := s.RemoveRange(nil, key((b-1)*perBatch), nil); err != nil {
				t.Fatal(err)
			}
			for i := (b - 2) * perBatch; i < (b-1)*perBatch; i++ {
				delete(model, string(key(i)))
			}
		}
		if got := contents(t, s); !maps.Equal(got, model) {
			t.Fatalf("batch %d: %d keys, want %d", b, len(got), len(model))
		}
		if n := s.Metrics().NumKeys; n != int64(len(model)) {
			t.Fatalf("batch %d: NumKeys %d, want %d", b, n, len(model))
		}
		mustCommit(t, s)
		if err := p.Maintenance(); err != nil {
			t.Fatal(err)
		}
	}
	const v = 8
	for _, change := range []func(s Store) error{
		func(s Store) error { return s.Put(key(7*perBatch+1), []byte("x")) },
		func(s Store) error { _, err := s.RemoveRange(key(7*perBatch+5), key(7*perBatch+50), nil); return err },
		func(s Store) error { _, err := s.RemoveRange(nil, key(7*perBatch), nil); return err },
		func(s Store) error {
			return MergeSorted(s, [][]byte{key(7*perBatch + 3), key(9 * perBatch)}, mergeFn)
		},
	} {
		s := mustOpen(t, p, v)
		if err := change(s); err != nil {
			t.Fatal(err)
		}
		s.Abort()
		s = mustOpen(t, p, v)
		if got := contents(t, s); !maps.Equal(got, model) {
			t.Fatalf("version %d has %d keys after an aborted change, want %d", v, len(got), len(model))
		}
		s.Abort()
	}
	// A fresh provider rebuilds it from the files (snapshots written from
	// flat versions, then deltas).
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p2 := openP(t, root, 0, conf)
	s := mustOpen(t, p2, v)
	defer s.Abort()
	if got := contents(t, s); !maps.Equal(got, model) {
		t.Fatalf("rebuilt version %d has %d keys, want %d", v, len(got), len(model))
	}
	if snaps := s.Metrics().Custom[MetricSnapshotFiles]; snaps == 0 {
		t.Fatal("no snapshot was written")
	}
}
