package state

// SortedMerger is implemented by stores that merge a sorted run of keys
// into their state more cheaply than a Get and a Put per key (the memory
// provider's: one ordered pass over the run and its state when the run is
// many beside the state). Use MergeSorted, which falls back to GetSorted
// and Put.
type SortedMerger interface {
	// MergeSorted calls fn(i, old, had) for each keys[i] in order, with
	// the value stored for it as Get would answer (old is valid until
	// Commit or Abort), and puts the value fn returns under keys[i] (the
	// store copies it: fn may reuse its buffer). keys must be in ascending
	// byte order without repeats; fn must not use the store.
	//
	// The puts are charged to the memory limit at once, before any is
	// made: on *MemoryExceededError (or an error of fn) the store is
	// unchanged. The delta records them in key order, as Puts in that
	// order would.
	MergeSorted(keys [][]byte, fn func(i int, old []byte, had bool) ([]byte, error)) error
}

// MergeSorted merges keys (ascending, without repeats) into st: for each,
// fn gets the stored value and returns the one to put (see SortedMerger).
// Where st has no SortedMerger it is GetSorted then a Put per key; an error
// can then leave some of the puts made (the caller aborts the store).
func MergeSorted(st Store, keys [][]byte, fn func(i int, old []byte, had bool) ([]byte, error)) error {
	if m, ok := st.(SortedMerger); ok {
		return m.MergeSorted(keys, fn)
	}
	olds := make([][]byte, len(keys))
	found := make([]bool, len(keys))
	if err := GetSorted(st, keys, func(i int, v []byte, ok bool) { olds[i], found[i] = v, ok }); err != nil {
		return err
	}
	for i, k := range keys {
		v, err := fn(i, olds[i], found[i])
		if err != nil {
			return err
		}
		if err := st.Put(k, v); err != nil {
			return err
		}
	}
	return nil
}
