package state

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFSSyncCoalesces: concurrent waits share syncs, and a wait is only
// satisfied by a sync that started after its ticket (a file written while
// a sync runs may have missed it).
func TestFSSyncCoalesces(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	s := newFSSync("/x", func() error {
		calls.Add(1)
		entered <- struct{}{}
		<-release
		return nil
	}, func() {})

	// First waiter starts sync 1 and blocks in it.
	t0 := s.ticket()
	done0 := make(chan error, 1)
	go func() { done0 <- s.wait(t0) }()
	<-entered
	// Ten files written while sync 1 runs: sync 1 does not cover them.
	t1 := s.ticket()
	var wg sync.WaitGroup
	var returned atomic.Int64
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.wait(t1); err != nil {
				t.Error(err)
			}
			returned.Add(1)
		}()
	}
	time.Sleep(20 * time.Millisecond)
	release <- struct{}{} // sync 1 ends
	if err := <-done0; err != nil {
		t.Fatal(err)
	}
	<-entered // one of the ten starts sync 2 for all of them
	if n := returned.Load(); n != 0 {
		t.Fatalf("%d waits returned after a sync that started before their ticket", n)
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d syncs for two rounds of waits, want 2", n)
	}
	// Nothing written since: a ticket taken now needs a new sync.
	if err := s.wait(s.ticket()); err != nil || calls.Load() != 3 {
		t.Fatalf("wait = %v after %d syncs, want a third sync", err, calls.Load())
	}
}

// TestFSSyncErrorSticks: after a failed syncfs every later wait fails (the
// file system lost a write, which files it hit is unknown).
func TestFSSyncErrorSticks(t *testing.T) {
	fail := errors.New("EIO")
	n := 0
	s := newFSSync("/x", func() error {
		n++
		if n == 1 {
			return fail
		}
		return nil
	}, func() {})
	if err := s.wait(s.ticket()); !errors.Is(err, fail) {
		t.Fatalf("first wait = %v, want EIO", err)
	}
	if err := s.wait(s.ticket()); !errors.Is(err, fail) || !strings.Contains(err.Error(), "syncfs") {
		t.Fatalf("later wait = %v, want the first error again", err)
	}
}

// powerLoss simulates syncfs durability: what a sync saw is durable;
// anything written or removed after the last sync may be lost or torn.
type powerLoss struct {
	root    string
	mu      sync.Mutex
	durable map[string][]byte // relative path → content at the last sync
	syncs   int
}

// install makes root's stores sync through the simulator.
func installPowerLoss(t *testing.T, root string) *powerLoss {
	if runtime.GOOS != "linux" {
		t.Skip("batch durability is Linux only")
	}
	pl := &powerLoss{root: root, durable: map[string][]byte{}}
	old := openFSSync
	openFSSync = func(string) (func() error, func(), error) { return pl.sync, func() {}, nil }
	t.Cleanup(func() { openFSSync = old })
	return pl
}

func (pl *powerLoss) files() map[string][]byte {
	out := map[string][]byte{}
	filepath.WalkDir(pl.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(pl.root, p)
			out[rel] = b
		}
		return nil
	})
	return out
}

func (pl *powerLoss) sync() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.durable = pl.files()
	pl.syncs++
	return nil
}

// markDurable records files made durable on their own (per-file fsync:
// snapshots, schema) as they are now.
func (pl *powerLoss) markDurable(suffix string) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for name, b := range pl.files() {
		if strings.HasSuffix(name, suffix) {
			pl.durable[name] = b
		}
	}
}

// crash loses what the last sync did not see: a file changed or created
// since is torn to half its bytes (a crash mid-writeback), a removed one
// comes back.
func (pl *powerLoss) crash(t *testing.T) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	now := pl.files()
	for name, b := range now {
		if d, ok := pl.durable[name]; ok && string(d) == string(b) {
			continue
		}
		if err := os.WriteFile(filepath.Join(pl.root, name), b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range pl.durable {
		if _, ok := now[name]; !ok {
			os.MkdirAll(filepath.Dir(filepath.Join(pl.root, name)), 0o755)
			if err := os.WriteFile(filepath.Join(pl.root, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type steppedStore interface {
	Store
	WriteOut() error
	Sync() error
}

// TestBatchSyncOneSyncfsPerBatch: the stores of a batch write their deltas
// in place with no sync; their concurrent Syncs share one or two syncfs
// calls; Commit adds none; a Commit without the steps syncs on its own.
func TestBatchSyncOneSyncfsPerBatch(t *testing.T) {
	root := t.TempDir()
	pl := installPowerLoss(t, root)
	const stores = 20
	ps := make([]Provider, stores)
	ss := make([]steppedStore, stores)
	for i := range ps {
		ps[i] = openP(t, root, i, DefaultConfig())
		if ps[i].(*memoryProvider).fsync == nil {
			t.Fatal("memory provider does not use batch durability")
		}
		ss[i] = mustOpen(t, ps[i], 0).(steppedStore)
		ss[i].Put([]byte("k"), []byte(fmt.Sprint(i)))
	}
	for _, s := range ss {
		if err := s.WriteOut(); err != nil {
			t.Fatal(err)
		}
	}
	if pl.syncs != 0 {
		t.Fatalf("%d syncs during WriteOut", pl.syncs)
	}
	for i := range ss {
		if got := listNames(t, filepath.Join(root, "0", fmt.Sprint(i))); !slices.Equal(got, []string{"1.delta"}) && i > 0 {
			t.Fatalf("store %d after WriteOut: %v, want 1.delta in place", i, got)
		}
	}
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Sync(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if pl.syncs < 1 || pl.syncs > 2 {
		t.Fatalf("%d syncs for %d stores, want 1 or 2", pl.syncs, stores)
	}
	before := pl.syncs
	for _, s := range ss {
		mustCommit(t, s)
	}
	if pl.syncs != before {
		t.Fatalf("Commit after Sync synced again (%d → %d)", before, pl.syncs)
	}
	s := mustOpen(t, ps[1], 1)
	s.Put([]byte("k"), []byte("again"))
	mustCommit(t, s)
	if pl.syncs != before+1 {
		t.Fatalf("a Commit alone made %d syncs, want 1", pl.syncs-before)
	}
}

// TestBatchSyncPowerLoss replays the engine's order under simulated power
// loss: batches commit through WriteOut, Sync (the batch's syncfs), Commit
// and Maintenance, and commits/N is "written" once every Commit returned.
// A power loss at any step of batch K loses or tears whatever the last sync
// did not see (snapshots too: they are synced by the next batch's
// syncfs). After it, every version up to the committed one loads
// exactly; the uncommitted version K+1 is never read as valid (torn: the
// store says so); the re-run of batch K truncates and rewrites K+1.delta,
// and after its commit and snapshot a second power loss, which tears the
// snapshot, loses nothing: the load falls back to the snapshot before and
// the deltas, and removes the torn one.
func TestBatchSyncPowerLoss(t *testing.T) {
	steps := []string{"after Put (large delta partly written)", "after WriteOut", "after Sync", "after Commit", "after Maintenance"}
	for _, crashAt := range steps {
		t.Run(crashAt, func(t *testing.T) {
			root := t.TempDir()
			pl := installPowerLoss(t, root)
			conf := DefaultConfig()
			conf.MinDeltasForSnapshot = 2
			p := openP(t, root, 0, conf)
			models := []map[string]string{{}}
			model := map[string]string{}
			// The batch the power loss hits; it writes version 9, which is
			// snapshotted (versions 3, 6, 9: more than 2 deltas since the last).
			const k = 8
			for b := int64(0); b < k; b++ {
				s := mustOpen(t, p, b).(steppedStore)
				applyBatch(t, s, b, model)
				if err := s.WriteOut(); err != nil {
					t.Fatal(err)
				}
				if err := s.Sync(); err != nil {
					t.Fatal(err)
				}
				mustCommit(t, s)
				if err := p.Maintenance(); err != nil {
					t.Fatal(err)
				}
				pl.markDurable("schema") // fsynced on its own
				models = append(models, maps.Clone(model))
			}
			// Batch k: large values, so the delta reaches the disk before
			// the commit begins.
			s := mustOpen(t, p, k).(steppedStore)
			failed := maps.Clone(model)
			big := strings.Repeat("x", 2000)
			for i := range 200 {
				key, val := fmt.Sprintf("big%03d", i), fmt.Sprintf("%d%s", i*7919, big)
				if err := s.Put([]byte(key), []byte(val)); err != nil {
					t.Fatal(err)
				}
				failed[key] = val
			}
			step := 0
			next := func(f func() error) bool {
				step++
				if steps[step-1] == crashAt {
					return false
				}
				if err := f(); err != nil {
					t.Fatal(err)
				}
				return true
			}
			_ = next(func() error { return nil }) &&
				next(s.WriteOut) &&
				next(s.Sync) &&
				next(func() error { _, err := s.Commit(); return err }) &&
				next(p.Maintenance)
			// The process dies with the power: no commits/k.
			pl.crash(t)

			p2 := openP(t, root, 0, conf)
			for v := int64(0); v <= k; v++ {
				s := mustOpen(t, p2, v)
				if got := contents(t, s); !maps.Equal(got, models[v]) {
					t.Fatalf("version %d after the power loss = %d keys, want %d", v, len(got), len(models[v]))
				}
				s.Abort()
			}
			// The uncommitted version: torn (detected) or, once synced,
			// exactly the failed run's — never anything else.
			if s, err := p2.Open(k + 1); err == nil {
				if got := contents(t, s); !maps.Equal(got, failed) {
					t.Fatalf("uncommitted version %d loaded with %d keys, want the failed run's %d or an error", k+1, len(got), len(failed))
				}
				s.Abort()
			} else if !errors.Is(err, ErrCorruptStateFile) && !errors.Is(err, ErrVersionNotFound) {
				t.Fatalf("Open(%d) of the torn version = %v", k+1, err)
			}
			// The re-run of batch k writes less than the failed run did.
			rs := mustOpen(t, p2, k)
			applyBatch(t, rs, k, model)
			mustCommit(t, rs)
			if err := p2.Maintenance(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(root, "0", "0", fmt.Sprintf("%d.snapshot", k+1))); err != nil {
				t.Fatalf("no snapshot of version %d: %v", k+1, err)
			}
			// Power lost right after commits/k, before the next batch's
			// syncfs: the snapshot of version k+1 is torn.
			pl.crash(t)
			p3 := openP(t, root, 0, conf)
			rs = mustOpen(t, p3, k+1)
			if got := contents(t, rs); !maps.Equal(got, model) {
				t.Fatalf("re-run's version %d after a second power loss = %v, want %v", k+1, got, model)
			}
			rs.Abort()
			if _, err := os.Stat(filepath.Join(root, "0", "0", fmt.Sprintf("%d.snapshot", k+1))); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the torn snapshot is still there (%v): retention could take it as its base", err)
			}
		})
	}
}

// TestBatchSyncErrorFailsCommit: a failed syncfs fails the commit (the
// engine writes no commits/N) and removes the delta; the provider keeps
// failing until it is reopened.
func TestBatchSyncErrorFailsCommit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batch durability is Linux only")
	}
	root := t.TempDir()
	fail := errors.New("EIO")
	old := openFSSync
	openFSSync = func(string) (func() error, func(), error) { return func() error { return fail }, func() {}, nil }
	defer func() { openFSSync = old }()
	p := openP(t, root, 1, DefaultConfig())
	s := mustOpen(t, p, 0)
	s.Put([]byte("a"), []byte("1"))
	if _, err := s.Commit(); !errors.Is(err, fail) {
		t.Fatalf("Commit = %v, want the syncfs error", err)
	}
	if got := listNames(t, filepath.Join(root, "0", "1")); len(got) != 0 {
		t.Fatalf("files after the failed commit: %v", got)
	}
	if v, _ := p.LatestVersion(); v != 0 {
		t.Fatalf("LatestVersion = %d", v)
	}
	s = mustOpen(t, p, 0)
	if _, err := s.Commit(); !errors.Is(err, fail) {
		t.Fatalf("second Commit = %v, want the error again", err)
	}
}

// TestPrepareDelta: PrepareDelta creates the next version's delta file
// empty; listings do not count it as a version (LatestVersion, Maintenance)
// until its store commits; Open of that version writes into the prepared
// file, which then loads as the version; a prepared file whose store never
// opens is removed by Close, and by an Open of another version; with a
// store open it is a no-op.
func TestPrepareDelta(t *testing.T) {
	root := t.TempDir()
	installPowerLoss(t, root)
	dir := filepath.Join(root, "0", "0")
	p := openP(t, root, 0, DefaultConfig())
	mp := p.(*memoryProvider)
	dp, ok := p.(DeltaPreparer)
	if !ok || mp.fsync == nil {
		t.Fatal("memory provider with batch durability is not a DeltaPreparer")
	}
	s := mustOpen(t, p, 0)
	s.Put([]byte("k"), []byte("v1"))
	mustCommit(t, s)

	if err := dp.PrepareDelta(1); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "2.delta")); err != nil || fi.Size() != 0 {
		t.Fatalf("after PrepareDelta(1): 2.delta %v, %v; want an empty file", fi, err)
	}
	mp.mu.Lock()
	mp.filesValid = false // list the directory again
	mp.mu.Unlock()
	if v, err := p.LatestVersion(); err != nil || v != 1 {
		t.Fatalf("LatestVersion with 2.delta prepared = %d, %v; want 1", v, err)
	}
	if err := p.Maintenance(); err != nil {
		t.Fatalf("Maintenance with 2.delta prepared: %v", err)
	}

	s = mustOpen(t, p, 1)
	if d, ok := s.(*memStore).deltaFile.(*directFile); !ok || !d.created || d.f == nil || !d.held {
		t.Fatal("the store opened at version 1 did not take the prepared 2.delta and its descriptor")
	}
	if err := dp.PrepareDelta(1); err != nil { // a store is open: no-op
		t.Fatal(err)
	}
	s.Put([]byte("k"), []byte("v2"))
	mustCommit(t, s)
	fresh := openP(t, root, 0, DefaultConfig())
	if v, ok, err := mustOpen(t, fresh, 2).Get([]byte("k")); err != nil || !ok || string(v) != "v2" {
		t.Fatalf("version 2 from files: %q %v %v, want v2", v, ok, err)
	}
	fresh.Close()

	// Prepared files hold their descriptors up to maxHeldPrepared in the
	// process, and none once their stores wrote them or they were
	// discarded.
	fds := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		return len(es)
	}
	defer func(m int64) { maxHeldPrepared = m }(maxHeldPrepared)
	maxHeldPrepared = heldPrepared.Load() + 4
	before := fds()
	var ps []Provider
	for i := 1; i <= 20; i++ {
		pi := openP(t, root, i, DefaultConfig())
		if err := pi.(DeltaPreparer).PrepareDelta(0); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, pi)
	}
	if n := fds() - before; n != 4 {
		t.Fatalf("20 prepared deltas hold %d more descriptors, want 4 (the cap)", n)
	}
	for i, pi := range ps {
		if i%2 == 0 {
			s := mustOpen(t, pi, 0)
			s.Put([]byte("k"), []byte("v"))
			mustCommit(t, s)
			if fi, err := os.Stat(filepath.Join(root, "0", strconv.Itoa(i+1), "1.delta")); err != nil || fi.Size() == 0 {
				t.Fatalf("partition %d: 1.delta %v, %v; want the written version", i+1, fi, err)
			}
		} else {
			pi.Close()
		}
	}
	if n := fds() - before; n != 0 {
		t.Fatalf("after the stores committed or the providers closed: %d more descriptors, want none", n)
	}

	// Prepared for a version that is not opened: removed by the Open.
	if err := dp.PrepareDelta(7); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "8.delta")); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, p, 2)
	if _, err := os.Stat(filepath.Join(dir, "8.delta")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("8.delta after Open(2): %v, want removed", err)
	}
	s.Abort()
	// Prepared, never opened: removed by Close.
	if err := dp.PrepareDelta(2); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, dir); !slices.Equal(got, []string{"1.delta", "2.delta", "_metadata/"}) {
		t.Fatalf("files after Close: %v, want 1.delta 2.delta _metadata/", got)
	}
}
