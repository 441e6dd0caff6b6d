package delta

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/storage/storagetest"
)

// TestObjectStoreWritersRaceForAVersion has two queries commit their
// batch to one table on an object store at the same moment, both aiming
// at the same version: the store's conditional write lets exactly one
// win; with a single attempt the other fails with ErrConcurrentWriter and
// leaves no data file behind, with retries it commits the next version.
func TestObjectStoreWritersRaceForAVersion(t *testing.T) {
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		for _, attempts := range []int{1, maxCommitAttempts} {
			path := e.URI("race/" + map[bool]string{true: "once", false: "retry"}[attempts == 1])
			opts := map[string]string{"path": path}
			a, err := New(opts, "q-a", file.WithResolver(r))
			if err != nil {
				t.Fatal(err)
			}
			b, err := New(opts, "q-b", file.WithResolver(r))
			if err != nil {
				t.Fatal(err)
			}
			a.maxAttempts, b.maxAttempts = attempts, attempts
			a.SetLogger(slog.New(slog.DiscardHandler))
			b.SetLogger(slog.New(slog.DiscardHandler))
			ma := writeTasks(t, a, 0, []*batch.Batch{genRows(0, 5)})
			mb := writeTasks(t, b, 0, []*batch.Batch{genRows(100, 5)})
			// Both reach the put of version 0 before either makes it.
			var ready sync.WaitGroup
			ready.Add(2)
			gate := func(v int64) {
				if v == 0 {
					ready.Done()
					ready.Wait()
				}
			}
			a.beforePut, b.beforePut = gate, gate
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, c := range []struct {
				s    *Sink
				msgs []sink.Message
			}{{a, ma}, {b, mb}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = c.s.Commit(context.Background(), 0, c.msgs)
				}()
			}
			wg.Wait()
			files, txn, version, err := Snapshot(path, file.WithResolver(r))
			if err != nil {
				t.Fatal(err)
			}
			onStore := dataFilesOn(t, r, path)
			if attempts == 1 {
				won := 0
				for _, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, ErrConcurrentWriter):
						t.Errorf("loser: %v, want ErrConcurrentWriter", err)
					}
				}
				if won != 1 || version != 0 || len(txn) != 1 || len(files) != 1 {
					t.Fatalf("%d winners (%v); table version %d, txn %v, files %v", won, errs, version, txn, files)
				}
				if !reflect.DeepEqual(onStore, files) {
					t.Errorf("data files on the store %v, in the table %v: the loser left files behind", onStore, files)
				}
				continue
			}
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("with retries: %v", errs)
			}
			if version != 1 || !reflect.DeepEqual(txn, map[string]int64{"q-a": 0, "q-b": 0}) || len(files) != 2 || !reflect.DeepEqual(onStore, files) {
				t.Errorf("with retries: version %d, txn %v, table files %v, on the store %v", version, txn, files, onStore)
			}
		}
	})
}

// dataFilesOn lists the Parquet files under a table on a store, relative
// to it, sorted.
func dataFilesOn(t *testing.T, r *storage.Resolver, path string) []string {
	t.Helper()
	st, err := r.Resolve(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = storage.Walk(context.Background(), st, "", func(n string) bool { return n == LogDir }, func(name string, _ storage.Entry) error {
		if strings.HasSuffix(name, ".parquet") {
			out = append(out, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
