package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/storage/storagetest"
)

// TestMemoryProviderOnObjectStores keeps state in a checkpoint on each
// object-store emulator: deltas, a snapshot written by Maintenance
// (finish, then publish only if the version was not recommitted), the
// schema file; a new provider rebuilds every version from the store; a
// re-run of a version overwrites it. The disk provider refuses such a
// checkpoint with a clear error.
func TestMemoryProviderOnObjectStores(t *testing.T) {
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.Resolve(context.Background(), e.URI("chk/state"))
		if err != nil {
			t.Fatal(err)
		}
		conf := DefaultConfig()
		conf.MinDeltasForSnapshot = 2
		id := ID{Files: st, Operator: 0, Partition: 0}
		p, err := OpenProvider(id, testSchemas, conf)
		if err != nil {
			t.Fatal(err)
		}
		key := func(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }
		for v := int64(0); v < 5; v++ {
			s := mustOpen(t, p, v)
			for i := 0; i < 10; i++ {
				if err := s.Put(key(int(v)*10+i), []byte(fmt.Sprint(v))); err != nil {
					t.Fatal(err)
				}
			}
			if v > 0 {
				if err := s.Remove(key(int(v-1) * 10)); err != nil {
					t.Fatal(err)
				}
			}
			mustCommit(t, s)
			if err := p.Maintenance(); err != nil {
				t.Fatal(err)
			}
		}
		p.Close()
		vf, err := listVersions(st, id.dir(), "snapshot")
		if err != nil || len(vf.deltas) != 5 || len(vf.snapshots) == 0 {
			t.Fatalf("on the store: %d deltas, %d snapshots (%v)", len(vf.deltas), len(vf.snapshots), err)
		}
		if _, err := st.Get(context.Background(), schemaName(0)); err != nil {
			t.Errorf("schema file: %v", err)
		}
		// A fresh provider (a restart) reads everything back.
		p2, err := OpenProvider(id, testSchemas, conf)
		if err != nil {
			t.Fatal(err)
		}
		defer p2.Close()
		s := mustOpen(t, p2, 5)
		got := contents(t, s)
		if len(got) != 50-4 {
			t.Errorf("version 5 holds %d keys, want 46", len(got))
		}
		s.Abort()
		// Re-run batch 3: version 4 is rewritten with other content.
		s = mustOpen(t, p2, 3)
		if err := s.Put(key(999), []byte("rerun")); err != nil {
			t.Fatal(err)
		}
		mustCommit(t, s)
		s = mustOpen(t, p2, 4)
		if got := contents(t, s); got[string(key(999))] != "rerun" || len(got) != 29 { // versions 1-3: 30 puts, 2 removals, plus the re-run's key
			t.Errorf("after the re-run, version 4 holds %d keys, want 29 (rerun key: %q)", len(got), got[string(key(999))])
		}
		s.Abort()

		dconf := DefaultConfig()
		dconf.Provider = DiskProvider
		_, err = OpenProvider(ID{Files: st, Operator: 1}, testSchemas, dconf)
		if !errors.Is(err, ErrDiskProviderNeedsLocal) || !strings.Contains(err.Error(), "providerClass=memory") || !strings.Contains(err.Error(), e.Root) {
			t.Errorf("disk provider on an object store: %v", err)
		}
	})
}
