package state

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/sluice-stream/sluice/internal/storage"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

var testSchemas = Schemas{
	Key:   batch.Schema{Fields: []batch.Field{{Name: "k", Type: batch.String, Nullable: true}}},
	Value: batch.Schema{Fields: []batch.Field{{Name: "count", Type: batch.Long, Nullable: false}}},
}

// providerCases is the table every behavioural test runs against: the
// same promises hold for both providers.
var providerCases = []struct {
	name string
	conf func() Config
}{
	{"memory", func() Config { return DefaultConfig() }},
	{"disk", func() Config {
		c := DefaultConfig()
		c.Provider = DiskProvider
		c.DiskMemory = 4 << 20
		return c
	}},
}

func forEachProvider(t *testing.T, fn func(t *testing.T, conf Config)) {
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) { fn(t, pc.conf()) })
	}
}

func openP(t *testing.T, root string, part int, conf Config) Provider {
	t.Helper()
	p, err := OpenProvider(ID{Root: root, Operator: 0, Partition: part}, testSchemas, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func mustOpen(t *testing.T, p Provider, v int64) Store {
	t.Helper()
	s, err := p.Open(v)
	if err != nil {
		t.Fatalf("Open(%d): %v", v, err)
	}
	return s
}

func mustCommit(t *testing.T, s Store) int64 {
	t.Helper()
	v, err := s.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return v
}

func contents(t *testing.T, s Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	var last []byte
	err := s.Iterate(nil, nil, func(k, v []byte) bool {
		if last != nil && bytes.Compare(last, k) >= 0 {
			t.Errorf("iteration out of order: %q then %q", last, k)
		}
		last = append(last[:0], k...)
		out[string(k)] = string(v)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// model applies the deterministic writes of batch b (opening version b).
func applyBatch(t *testing.T, s Store, b int64, m map[string]string) {
	t.Helper()
	put := func(k, v string) {
		if err := s.Put([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		if m != nil {
			m[k] = v
		}
	}
	put(fmt.Sprintf("k%03d", b), fmt.Sprintf("v%d", b))
	put("counter", fmt.Sprint(b))
	if b >= 3 {
		k := fmt.Sprintf("k%03d", b-3)
		if err := s.Remove([]byte(k)); err != nil {
			t.Fatal(err)
		}
		delete(m, k)
	}
}

func TestStoreOperations(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		p := openP(t, t.TempDir(), 0, conf)
		s := mustOpen(t, p, 0)
		for _, k := range []string{"b", "d", "a", "c", "e"} {
			if err := s.Put([]byte(k), []byte("v-"+k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Put([]byte("c"), []byte("v-c2")); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := s.Get([]byte("c")); err != nil || !ok || string(v) != "v-c2" {
			t.Fatalf("Get(c) = %q %v %v", v, ok, err)
		}
		if _, ok, _ := s.Get([]byte("zz")); ok {
			t.Fatal("Get of a missing key found something")
		}
		var keys []string
		s.Iterate([]byte("b"), []byte("d"), func(k, _ []byte) bool { keys = append(keys, string(k)); return true })
		if !slices.Equal(keys, []string{"b", "c"}) {
			t.Fatalf("Iterate[b,d) = %v", keys)
		}
		keys = nil
		s.Iterate(nil, nil, func(k, _ []byte) bool { keys = append(keys, string(k)); return len(keys) < 2 })
		if !slices.Equal(keys, []string{"a", "b"}) {
			t.Fatalf("Iterate stopping early = %v", keys)
		}
		var evicted []string
		n, err := s.RemoveRange(nil, []byte("c"), func(k, v []byte) error {
			evicted = append(evicted, string(k)+"="+string(v))
			return nil
		})
		if err != nil || n != 2 || !slices.Equal(evicted, []string{"a=v-a", "b=v-b"}) {
			t.Fatalf("RemoveRange = %d %v %v", n, evicted, err)
		}
		if err := s.Remove([]byte("nope")); err != nil {
			t.Fatal(err)
		}
		m := s.Metrics()
		if m.NumKeys != 3 || m.NumRowsUpdated != 6 || m.NumRowsRemoved != 2 {
			t.Fatalf("metrics %+v", m)
		}
		if v := mustCommit(t, s); v != 1 {
			t.Fatalf("committed version %d, want 1", v)
		}
		if _, err := s.Commit(); err == nil {
			t.Fatal("second Commit succeeded")
		}
		s2 := mustOpen(t, p, 1)
		if got, want := contents(t, s2), map[string]string{"c": "v-c2", "d": "v-d", "e": "v-e"}; !maps.Equal(got, want) {
			t.Fatalf("version 1 = %v, want %v", got, want)
		}
		if m := s2.Metrics(); m.NumKeys != 3 || m.NumRowsUpdated != 0 || m.MemoryUsedBytes <= 0 {
			t.Fatalf("fresh store metrics %+v", m)
		}
		// Abort discards writes; the version stays as it was.
		s2.Put([]byte("x"), []byte("y"))
		s2.Remove([]byte("c"))
		s2.Abort()
		s3 := mustOpen(t, p, 1)
		if got := contents(t, s3); len(got) != 3 || got["c"] != "v-c2" {
			t.Fatalf("after abort = %v", got)
		}
		if _, err := p.Open(1); err == nil {
			t.Fatal("second Open while a store is open succeeded")
		}
		s3.Abort()
	})
}

// TestRestartRecoveryAtEachVersion commits 25 batches (snapshots along the
// way), then opens every version from a fresh provider, as a restarted
// query would, and compares with a model.
func TestRestartRecoveryAtEachVersion(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		conf.MinDeltasForSnapshot = 3
		root := t.TempDir()
		p := openP(t, root, 0, conf)
		models := []map[string]string{{}}
		model := map[string]string{}
		for b := int64(0); b < 25; b++ {
			s := mustOpen(t, p, b)
			applyBatch(t, s, b, model)
			if v := mustCommit(t, s); v != b+1 {
				t.Fatalf("batch %d committed version %d", b, v)
			}
			if err := p.Maintenance(); err != nil {
				t.Fatal(err)
			}
			models = append(models, maps.Clone(model))
		}
		p.Close()
		for v := int64(0); v <= 25; v++ {
			p2 := openP(t, root, 0, conf)
			s := mustOpen(t, p2, v)
			if got := contents(t, s); !maps.Equal(got, models[v]) {
				t.Fatalf("version %d after restart = %v, want %v", v, got, models[v])
			}
			if n := s.Metrics().NumKeys; n != int64(len(models[v])) {
				t.Fatalf("version %d: NumKeys %d, want %d", v, n, len(models[v]))
			}
			s.Abort()
			p2.Close()
		}
	})
}

// TestCrashBeforeCommitLog: the engine's commits/N is the truth. A run
// committed state versions 6 and 7 (and snapshotted) but crashed before its
// commit log entry for batch 5 was written; the re-run opens version 5
// again, writes different data and commits 6. Version 7 is gone and 6 is
// the re-run's.
func TestCrashBeforeCommitLog(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		conf.MinDeltasForSnapshot = 1
		root := t.TempDir()
		p := openP(t, root, 0, conf)
		model := map[string]string{}
		for b := int64(0); b < 5; b++ {
			s := mustOpen(t, p, b)
			applyBatch(t, s, b, model)
			mustCommit(t, s)
		}
		// The failed run: batches 5 and 6 reach the store, then a crash.
		for b := int64(5); b < 7; b++ {
			s := mustOpen(t, p, b)
			s.Put([]byte("failed-run"), []byte(fmt.Sprint(b)))
			mustCommit(t, s)
			p.Maintenance()
		}
		p.Close()

		p2 := openP(t, root, 0, conf)
		if v, _ := p2.LatestVersion(); v != 7 {
			t.Fatalf("LatestVersion before the re-run = %d, want 7", v)
		}
		s := mustOpen(t, p2, 5)
		if got := contents(t, s); !maps.Equal(got, model) {
			t.Fatalf("re-run sees %v, want %v", got, model)
		}
		applyBatch(t, s, 5, model)
		mustCommit(t, s)
		if v, _ := p2.LatestVersion(); v != 6 {
			t.Fatalf("LatestVersion after the re-run = %d, want 6", v)
		}
		p2.Close()
		p3 := openP(t, root, 0, conf)
		s = mustOpen(t, p3, 6)
		if got := contents(t, s); !maps.Equal(got, model) {
			t.Fatalf("version 6 = %v, want the re-run's %v", got, model)
		}
		s.Abort()
		if _, err := p3.Open(7); !errors.Is(err, ErrVersionNotFound) {
			t.Fatalf("Open(7) = %v, want ErrVersionNotFound", err)
		}
	})
}

// TestRerunInSameProcess: a task retry re-opens the version before the one
// it committed, in the same provider (cached versions included).
func TestRerunInSameProcess(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		p := openP(t, t.TempDir(), 0, conf)
		s := mustOpen(t, p, 0)
		s.Put([]byte("a"), []byte("1"))
		mustCommit(t, s)
		s = mustOpen(t, p, 1)
		s.Put([]byte("b"), []byte("first"))
		mustCommit(t, s)
		s = mustOpen(t, p, 1) // retry of batch 1
		if got := contents(t, s); !maps.Equal(got, map[string]string{"a": "1"}) {
			t.Fatalf("retry sees %v", got)
		}
		s.Put([]byte("b"), []byte("second"))
		mustCommit(t, s)
		s = mustOpen(t, p, 2)
		if got := contents(t, s); got["b"] != "second" {
			t.Fatalf("version 2 = %v", got)
		}
		s.Abort()
	})
}

func TestCorruptDeltaDetected(t *testing.T) {
	conf := DefaultConfig()
	root := t.TempDir()
	p := openP(t, root, 0, conf)
	for b := int64(0); b < 4; b++ {
		s := mustOpen(t, p, b)
		applyBatch(t, s, b, nil)
		mustCommit(t, s)
	}
	p.Close()
	dir := ID{Root: root}.Dir()
	orig, err := os.ReadFile(filepath.Join(dir, "3.delta"))
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string][]byte{
		"truncated":      orig[:len(orig)-7],
		"torn to header": orig[:16],
		"empty":          {},
		"bit flip":       flip(orig, len(orig)/2),
		"header flip":    flip(orig, 9),
		"footer flip":    flip(orig, len(orig)-10),
	}
	for name, b := range damage {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "3.delta"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			p := openP(t, root, 0, conf)
			_, err := p.Open(3)
			if !errors.Is(err, ErrCorruptStateFile) {
				t.Fatalf("Open(3) = %v, want ErrCorruptStateFile", err)
			}
			if !strings.Contains(err.Error(), "3.delta") {
				t.Fatalf("error does not name the file: %v", err)
			}
			// Earlier versions are unaffected.
			s := mustOpen(t, p, 2)
			s.Abort()
		})
	}
	os.Remove(filepath.Join(dir, "2.delta"))
	p = openP(t, root, 0, conf)
	if _, err := p.Open(2); !errors.Is(err, ErrVersionNotFound) || !strings.Contains(err.Error(), "2.delta is missing") {
		t.Fatalf("Open with a missing delta = %v", err)
	}
}

func TestDiskVersionIncompleteDetected(t *testing.T) {
	conf := providerCases[1].conf()
	root := t.TempDir()
	p := openP(t, root, 0, conf)
	for b := int64(0); b < 3; b++ {
		s := mustOpen(t, p, b)
		applyBatch(t, s, b, nil)
		mustCommit(t, s)
	}
	p.Close()
	os.Remove(filepath.Join(ID{Root: root}.Dir(), "2.pebble", diskMetaFile))
	p = openP(t, root, 0, conf)
	if _, err := p.Open(2); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("Open(2) = %v", err)
	}
	s := mustOpen(t, p, 3)
	s.Abort()
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TestLayoutFileByFile checks Spark's tree after 12 batches over two
// partitions with the default minDeltasForSnapshot (10): a delta per
// version, a snapshot at 11, the schema file under partition 0 only, and
// the operator metadata.
func TestLayoutFileByFile(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	conf := DefaultConfig()
	if err := WriteOperatorMetadata(localStore(t, root), OperatorMetadata{
		OperatorInfo:   OperatorInfo{OperatorID: 0, OperatorName: OperatorNameAggregate},
		StateStoreInfo: []StoreInfo{{StoreName: DefaultStoreName, NumPartitions: 2}},
	}); err != nil {
		t.Fatal(err)
	}
	ps := []Provider{openP(t, root, 0, conf), openP(t, root, 1, conf)}
	for b := int64(0); b < 12; b++ {
		for _, p := range ps {
			s := mustOpen(t, p, b)
			applyBatch(t, s, b, nil)
			mustCommit(t, s)
			if err := p.Maintenance(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var deltas []string
	for v := 1; v <= 12; v++ {
		deltas = append(deltas, fmt.Sprintf("%d.delta", v))
	}
	want0 := append(slices.Clone(deltas), "11.snapshot", "_metadata/")
	slices.Sort(want0)
	want1 := append(slices.Clone(deltas), "11.snapshot")
	slices.Sort(want1)
	if got := listNames(t, filepath.Join(root, "0")); !slices.Equal(got, []string{"0/", "1/", "_metadata/"}) {
		t.Fatalf("state/0 = %v", got)
	}
	if got := listNames(t, filepath.Join(root, "0", "0")); !slices.Equal(got, want0) {
		t.Fatalf("state/0/0 = %v\nwant %v", got, want0)
	}
	if got := listNames(t, filepath.Join(root, "0", "1")); !slices.Equal(got, want1) {
		t.Fatalf("state/0/1 = %v\nwant %v", got, want1)
	}
	if got := listNames(t, filepath.Join(root, "0", "0", "_metadata")); !slices.Equal(got, []string{"schema"}) {
		t.Fatalf("state/0/0/_metadata = %v", got)
	}
	meta, err := os.ReadFile(filepath.Join(root, "0", "_metadata", "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	wantMeta := `v1
{"operatorInfo":{"operatorId":0,"operatorName":"stateStoreSave"},"stateStoreInfo":[{"storeName":"default","numColsPrefixKey":0,"numPartitions":2}]}`
	if string(meta) != wantMeta {
		t.Fatalf("metadata = %q\nwant %q", meta, wantMeta)
	}
	schema, err := os.ReadFile(SchemaPath(root, 0))
	if err != nil {
		t.Fatal(err)
	}
	keyJSON := `{"type":"struct","fields":[{"name":"k","type":"string","nullable":true,"metadata":{}}]}`
	valueJSON := `{"type":"struct","fields":[{"name":"count","type":"long","nullable":false,"metadata":{}}]}`
	var want bytes.Buffer
	want.Write([]byte{0, 2, 'v', '2'})
	want.Write([]byte{0, 0, 0, 1, 0, byte(len(keyJSON))})
	want.WriteString(keyJSON)
	want.Write([]byte{0, 0, 0, 1, 0, byte(len(valueJSON))})
	want.WriteString(valueJSON)
	if !bytes.Equal(schema, want.Bytes()) {
		t.Fatalf("schema file = %q\nwant %q", schema, want.Bytes())
	}
	// Every delta and snapshot is a sluice state file of its own version.
	for _, name := range want1 {
		kind, v := kindDelta, int64(0)
		base, ext, _ := strings.Cut(name, ".")
		fmt.Sscan(base, &v)
		if ext == "snapshot" {
			kind = kindSnapshot
		}
		if _, err := readStateFile(localStore(t, root), "0/1/"+name, kind, v, func(byte, []byte, []byte) error { return nil }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	m, err := ReadOperatorMetadata(localStore(t, root), 0)
	if err != nil || m.StateStoreInfo[0].NumPartitions != 2 {
		t.Fatalf("ReadOperatorMetadata = %+v %v", m, err)
	}
}

func TestDiskLayout(t *testing.T) {
	root := t.TempDir()
	conf := providerCases[1].conf()
	conf.MinBatchesToRetain = 3
	p := openP(t, root, 0, conf)
	for b := int64(0); b < 6; b++ {
		s := mustOpen(t, p, b)
		applyBatch(t, s, b, nil)
		mustCommit(t, s)
		if err := p.Maintenance(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"3.pebble/", "4.pebble/", "5.pebble/", "6.pebble/", "_metadata/", "_working/"}
	if got := listNames(t, ID{Root: root}.Dir()); !slices.Equal(got, want) {
		t.Fatalf("disk layout = %v, want %v", got, want)
	}
	names := listNames(t, filepath.Join(ID{Root: root}.Dir(), "6.pebble"))
	if !slices.Contains(names, diskMetaFile) || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "MANIFEST-") }) {
		t.Fatalf("6.pebble = %v", names)
	}
}

// TestRetention: with minBatchesToRetain=5 and a snapshot every 3 deltas,
// after 20 batches every version from 15 on opens from a fresh provider and
// the files before the snapshot that version needs are gone.
func TestRetention(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		conf.MinBatchesToRetain = 5
		conf.MinDeltasForSnapshot = 2
		root := t.TempDir()
		p := openP(t, root, 0, conf)
		models := []map[string]string{{}}
		model := map[string]string{}
		for b := int64(0); b < 20; b++ {
			s := mustOpen(t, p, b)
			applyBatch(t, s, b, model)
			mustCommit(t, s)
			if err := p.Maintenance(); err != nil {
				t.Fatal(err)
			}
			models = append(models, maps.Clone(model))
		}
		p.Close()
		vf, err := listVersions(localStore(t, root), ID{}.dir(), map[ProviderKind]string{MemoryProvider: "snapshot", DiskProvider: diskSnapshotExt}[conf.Provider])
		if err != nil {
			t.Fatal(err)
		}
		oldest := slices.Min(append(sortedVersions(vf.deltas), sortedVersions(vf.snapshots)...))
		if oldest > 15 || oldest < 10 {
			t.Fatalf("oldest file version %d; retention should keep what rebuilds 15 and drop older (deltas %v snapshots %v)",
				oldest, sortedVersions(vf.deltas), sortedVersions(vf.snapshots))
		}
		for v := int64(15); v <= 20; v++ {
			p := openP(t, root, 0, conf)
			s := mustOpen(t, p, v)
			if got := contents(t, s); !maps.Equal(got, models[v]) {
				t.Fatalf("version %d = %v want %v", v, got, models[v])
			}
			s.Abort()
			p.Close()
		}
		p = openP(t, root, 0, conf)
		if _, err := p.Open(oldest - 1); err == nil {
			t.Fatalf("version %d opened after retention removed it", oldest-1)
		}
	})
}

func TestSchemaCompatibility(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		root := t.TempDir()
		p := openP(t, root, 0, conf)
		s := mustOpen(t, p, 0)
		s.Put([]byte("a"), []byte("1"))
		mustCommit(t, s)
		p.Close()
		field := func(name string, k batch.Kind, nullable bool) batch.Schema {
			return batch.Schema{Fields: []batch.Field{{Name: name, Type: k, Nullable: nullable}}}
		}
		cases := []struct {
			name    string
			schemas Schemas
			class   string
		}{
			{"same", testSchemas, ""},
			{"renamed fields", Schemas{Key: field("key", batch.String, true), Value: field("n", batch.Long, false)}, ""},
			{"value now non-null", testSchemas, ""},
			{"key type", Schemas{Key: field("k", batch.Long, true), Value: testSchemas.Value}, ErrClassKeySchema},
			{"extra key column", Schemas{Key: batch.Schema{Fields: []batch.Field{{Name: "k", Type: batch.String, Nullable: true}, {Name: "w", Type: batch.Long}}}, Value: testSchemas.Value}, ErrClassKeySchema},
			{"value type", Schemas{Key: testSchemas.Key, Value: field("count", batch.Double, false)}, ErrClassValueSchema},
			{"value nullable now", Schemas{Key: testSchemas.Key, Value: field("count", batch.Long, true)}, ErrClassValueSchema},
			{"value changed, allowed (dedup)", Schemas{Key: testSchemas.Key, Value: field("x", batch.String, true), AllowValueChange: true}, ""},
			{"key changed, value allowed", Schemas{Key: field("k", batch.Int, true), Value: testSchemas.Value, AllowValueChange: true}, ErrClassKeySchema},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for part := 0; part < 2; part++ { // every partition checks the one recorded schema
					p, err := OpenProvider(ID{Root: root, Partition: part}, c.schemas, conf)
					if c.class == "" {
						if err != nil {
							t.Fatal(err)
						}
						p.Close()
						continue
					}
					var se *SchemaError
					if !errors.As(err, &se) || se.Class != c.class {
						t.Fatalf("OpenProvider = %v, want %s", err, c.class)
					}
					msg := err.Error()
					if !strings.HasPrefix(msg, "["+c.class+"]") || !strings.Contains(msg, "Existing") || !strings.Contains(msg, OptStateSchemaCheck) {
						t.Fatalf("message %q", msg)
					}
				}
			})
		}
		noCheck := conf
		noCheck.SchemaCheck = false
		p, err := OpenProvider(ID{Root: root}, Schemas{Key: field("k", batch.Long, true), Value: testSchemas.Value}, noCheck)
		if err != nil {
			t.Fatalf("schema check off: %v", err)
		}
		p.Close()
	})
}

func TestMemoryBudgetExceeded(t *testing.T) {
	budget := NewBudget(64 << 10)
	conf := DefaultConfig()
	conf.Budget = budget
	root := t.TempDir()
	p0 := openP(t, root, 0, conf)
	p1 := openP(t, root, 1, conf)
	s0 := mustOpen(t, p0, 0)
	s1 := mustOpen(t, p1, 0)
	val := bytes.Repeat([]byte("x"), 100)
	var err error
	var n int
	for n = 0; n < 10000; n++ {
		s := s0
		if n%2 == 1 {
			s = s1
		}
		if err = s.Put(fmt.Appendf(nil, "key-%05d", n), val); err != nil {
			break
		}
	}
	var me *MemoryExceededError
	if !errors.As(err, &me) || !errors.Is(err, ErrStateMemoryExceeded) {
		t.Fatalf("put %d: %v, want a MemoryExceededError", n, err)
	}
	if !me.Budget || me.Limit != 64<<10 || me.Used <= me.Limit || me.Partition != n%2 || me.Operator != 0 {
		t.Fatalf("error fields %+v", me)
	}
	for _, want := range []string{"operator 0", "watermark", "disk", "sluice.memory.budget", "64.0 KiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("message %q lacks %q", err, want)
		}
	}
	if used := budget.Used(); used > budget.Limit() {
		t.Fatalf("budget used %d over limit %d", used, budget.Limit())
	}
	failed := fmt.Appendf(nil, "key-%05d", n)
	s := map[bool]Store{true: s1, false: s0}[n%2 == 1]
	if _, ok, _ := s.Get(failed); ok {
		t.Fatal("the refused put changed the store")
	}
	before := s.Metrics().NumKeys
	// Removing frees budget for the other store.
	s0.RemoveRange(nil, nil, nil)
	if err := s1.Put(failed, val); err != nil {
		t.Fatalf("put after freeing: %v", err)
	}
	_ = before
	s1.Abort()
	mustCommit(t, s0)
	p0.Close()
	p1.Close()
	if used := budget.Used(); used != 0 {
		t.Fatalf("budget still charged %d after closing", used)
	}

	// Per-store limit.
	conf = DefaultConfig()
	conf.MemoryLimit = 4 << 10
	p := openP(t, t.TempDir(), 3, conf)
	st := mustOpen(t, p, 0)
	for n = 0; n < 1000; n++ {
		if err = st.Put(fmt.Appendf(nil, "k%d", n), val); err != nil {
			break
		}
	}
	if !errors.As(err, &me) || me.Budget || me.Partition != 3 || !strings.Contains(err.Error(), "state store limit") {
		t.Fatalf("per-store limit: %v", err)
	}

	// The disk provider charges its memory allowance when it opens.
	dconf := providerCases[1].conf()
	dconf.Budget = NewBudget(dconf.DiskMemory + dconf.DiskMemory/2)
	dp := openP(t, t.TempDir(), 0, dconf)
	if dconf.Budget.Used() != dconf.DiskMemory {
		t.Fatalf("disk provider charged %d, want %d", dconf.Budget.Used(), dconf.DiskMemory)
	}
	if _, err := OpenProvider(ID{Root: t.TempDir(), Partition: 1}, testSchemas, dconf); !errors.Is(err, ErrStateMemoryExceeded) {
		t.Fatalf("second disk provider over budget: %v", err)
	}
	dp.Close()
	if dconf.Budget.Used() != 0 {
		t.Fatalf("disk provider still charged %d after close", dconf.Budget.Used())
	}
}

func TestMetricsCustom(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		conf.MinDeltasForSnapshot = 1
		p := openP(t, t.TempDir(), 0, conf)
		var s Store
		for b := int64(0); b < 3; b++ {
			s = mustOpen(t, p, b)
			applyBatch(t, s, b, nil)
			mustCommit(t, s)
			p.Maintenance()
		}
		m := s.Metrics()
		if m.Custom[MetricLoadedMapCacheHit] < 2 || m.Custom[MetricCommitBytes] <= 0 || m.Custom[MetricStateFilesBytes] <= 0 || m.Custom[MetricSnapshotFiles] == 0 {
			t.Fatalf("custom metrics %v", m.Custom)
		}
		if conf.Provider == MemoryProvider && m.Custom[MetricDeltaFiles] != 3 {
			t.Fatalf("delta files %v", m.Custom)
		}
		if m.NumKeys != 4 || m.NumRowsUpdated != 2 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// TestMaintenanceConcurrentWithBatches: the engine may run Maintenance from
// its own goroutine while the next batches commit (run with -race), re-runs
// included; every version stays correct.
func TestMaintenanceConcurrentWithBatches(t *testing.T) {
	forEachProvider(t, func(t *testing.T, conf Config) {
		conf.MinDeltasForSnapshot = 1
		conf.MinBatchesToRetain = 50
		root := t.TempDir()
		p := openP(t, root, 0, conf)
		stop := make(chan struct{})
		done := make(chan error)
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if err := p.Maintenance(); err != nil {
					done <- err
					return
				}
			}
		}()
		models := []map[string]string{{}}
		model := map[string]string{}
		for b := int64(0); b < 30; b++ {
			if b%7 == 6 { // a failed attempt of batch b, then its retry
				s := mustOpen(t, p, b)
				s.Put([]byte("failed"), []byte("x"))
				mustCommit(t, s)
			}
			s := mustOpen(t, p, b)
			applyBatch(t, s, b, model)
			s.Metrics()
			mustCommit(t, s)
			models = append(models, maps.Clone(model))
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		p.Close()
		for v := int64(1); v <= 30; v++ {
			p := openP(t, root, 0, conf)
			s := mustOpen(t, p, v)
			if got := contents(t, s); !maps.Equal(got, models[v]) {
				t.Fatalf("version %d = %v, want %v", v, got, models[v])
			}
			s.Abort()
			p.Close()
		}
	})
}

// TestNoVersionCache: with maxBatchesToRetainInMemory = 0 every batch
// rebuilds its version from files, and maintenance still snapshots (Spark
// only snapshots cached versions, so its delta chains grow without bound).
func TestNoVersionCache(t *testing.T) {
	conf := DefaultConfig()
	conf.MaxBatchesToRetainInMemory = 0
	conf.MinDeltasForSnapshot = 2
	root := t.TempDir()
	p := openP(t, root, 0, conf)
	model := map[string]string{}
	for b := int64(0); b < 8; b++ {
		s := mustOpen(t, p, b)
		if got := contents(t, s); !maps.Equal(got, model) {
			t.Fatalf("batch %d sees %v, want %v", b, got, model)
		}
		applyBatch(t, s, b, model)
		mustCommit(t, s)
		if err := p.Maintenance(); err != nil {
			t.Fatal(err)
		}
	}
	vf, _ := listVersions(localStore(t, root), ID{}.dir(), "snapshot")
	if got := sortedVersions(vf.snapshots); !slices.Equal(got, []int64{3, 6}) {
		t.Fatalf("snapshots at %v, want [3 6]", got)
	}
	s := mustOpen(t, p, 8)
	if m := s.Metrics(); m.Custom[MetricLoadedMapCacheHit] != 0 || m.Custom[MetricLoadedMapCacheMiss] < 8 {
		t.Fatalf("cache metrics %v", m.Custom)
	}
	s.Abort()
}

func TestDiskLocalDirAndStoreNames(t *testing.T) {
	conf := providerCases[1].conf()
	conf.DiskLocalDir = t.TempDir()
	root := t.TempDir()
	id := ID{Root: root, Operator: 1, Partition: 3, Store: "left-keyToNumValues"}
	if want := filepath.Join(root, "1", "3", "left-keyToNumValues"); id.Dir() != want {
		t.Fatalf("Dir = %s, want %s", id.Dir(), want)
	}
	if d := (ID{Root: root, Operator: 1, Partition: 3, Store: DefaultStoreName}).Dir(); d != filepath.Join(root, "1", "3") {
		t.Fatalf("default store dir %s", d)
	}
	p, err := OpenProvider(id, testSchemas, conf)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string]string{}
	for b := int64(0); b < 3; b++ {
		s := mustOpen(t, p, b)
		applyBatch(t, s, b, model)
		mustCommit(t, s)
	}
	p.Close()
	if got := listNames(t, id.Dir()); !slices.Equal(got, []string{"1.pebble/", "2.pebble/", "3.pebble/"}) {
		t.Fatalf("store dir %v", got)
	}
	if _, err := os.Stat(filepath.Join(conf.DiskLocalDir, "1", "3", "left-keyToNumValues")); err != nil {
		t.Fatalf("working db not under localDir: %v", err)
	}
	p, err = OpenProvider(id, testSchemas, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := mustOpen(t, p, 3)
	if got := contents(t, s); !maps.Equal(got, model) {
		t.Fatalf("after restart %v want %v", got, model)
	}
	s.Abort()
}

// localStore is the Store of the local directory dir.
func localStore(t testing.TB, dir string) storage.Store {
	t.Helper()
	st, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRemoveRangeLarge removes ranges longer than one chunk of the memory
// provider's walk, from the front of the store and from its middle, stops
// at an error from fn, and checks what remains, the metrics, the bytes and
// the state rebuilt from the delta files.
func TestRemoveRangeLarge(t *testing.T) {
	const n = 3*removeChunk + 17
	key := func(i int) []byte { return fmt.Appendf(nil, "k%06d", i) }
	cases := []struct {
		name         string
		lower, upper []byte
		failAt       int // fn fails on this key index (-1: never)
		want         []int
	}{
		{"front", nil, key(2*removeChunk + 5), -1, seq(0, 2*removeChunk+5)},
		{"middle", key(100), key(100 + removeChunk + 1), -1, seq(100, 100+removeChunk+1)},
		{"to end", key(n - removeChunk - 3), nil, -1, seq(n-removeChunk-3, n)},
		{"lower past everything", key(n), nil, -1, nil},
		{"fn fails", key(10), nil, 10 + removeChunk + 2, seq(10, 10+removeChunk+2)},
		// Within one chunk from the front, a large share of the store:
		// the memory provider rebuilds the tree of what stays.
		{"front within a chunk", nil, key(removeChunk - 24), -1, seq(0, removeChunk-24)},
		{"front within a chunk, fn fails", nil, key(900), 500, seq(0, 500)},
	}
	forEachProvider(t, func(t *testing.T, conf Config) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				root := t.TempDir()
				p := openP(t, root, 0, conf)
				s := mustOpen(t, p, 0)
				for i := range n {
					if err := s.Put(key(i), []byte("v")); err != nil {
						t.Fatal(err)
					}
				}
				mustCommit(t, s)
				s = mustOpen(t, p, 1)
				full := s.Metrics().MemoryUsedBytes
				var seen []int
				removed, err := s.RemoveRange(c.lower, c.upper, func(k, v []byte) error {
					var i int
					fmt.Sscanf(string(k), "k%06d", &i)
					if i == c.failAt {
						return errors.New("boom")
					}
					seen = append(seen, i)
					return nil
				})
				if (err != nil) != (c.failAt >= 0) {
					t.Fatalf("RemoveRange error %v", err)
				}
				if int(removed) != len(c.want) || !slices.Equal(seen, c.want) {
					t.Fatalf("removed %d, fn saw %d keys (%v…), want %d", removed, len(seen), seen[:min(3, len(seen))], len(c.want))
				}
				m := s.Metrics()
				if m.NumKeys != int64(n-len(c.want)) || m.NumRowsRemoved != removed {
					t.Fatalf("metrics keys %d removed %d, want %d %d", m.NumKeys, m.NumRowsRemoved, n-len(c.want), removed)
				}
				if conf.Provider == MemoryProvider && len(c.want) > 0 && m.MemoryUsedBytes >= full {
					t.Fatalf("memory %d after removing %d keys, was %d", m.MemoryUsedBytes, removed, full)
				}
				gone := map[int]bool{}
				for _, i := range c.want {
					gone[i] = true
				}
				want := map[string]string{}
				for i := range n {
					if !gone[i] {
						want[string(key(i))] = "v"
					}
				}
				if got := contents(t, s); !maps.Equal(got, want) {
					t.Fatalf("store has %d keys after RemoveRange, want %d", len(got), len(want))
				}
				// It goes on taking writes.
				if err := s.Put(key(0), []byte("w")); err != nil {
					t.Fatal(err)
				}
				if err := s.Remove(key(0)); err != nil {
					t.Fatal(err)
				}
				delete(want, string(key(0)))
				mustCommit(t, s)
				// A fresh provider rebuilds version 2 from the delta files.
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				p2 := openP(t, root, 0, conf)
				s2 := mustOpen(t, p2, 2)
				defer s2.Abort()
				if got := contents(t, s2); !maps.Equal(got, want) {
					t.Fatalf("rebuilt state has %d keys, want %d", len(got), len(want))
				}
			})
		}
	})
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestFileMetricsFollowCommits checks the memory provider's file figures
// against the directory after each commit: the provider updates its
// listing on commit instead of listing the directory again, including when
// a re-run rewrites a version and when maintenance writes a snapshot.
func TestFileMetricsFollowCommits(t *testing.T) {
	conf := DefaultConfig()
	conf.MinDeltasForSnapshot = 2
	root := t.TempDir()
	p := openP(t, root, 0, conf)
	dir := filepath.Join(root, "0", "0")
	check := func(when string, m Metrics) {
		t.Helper()
		var deltas, snaps, size int64
		for _, name := range listNames(t, dir) {
			info, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			switch filepath.Ext(name) {
			case ".delta":
				deltas++
			case ".snapshot":
				snaps++
			default:
				continue
			}
			size += info.Size()
		}
		if m.Custom[MetricDeltaFiles] != deltas || m.Custom[MetricSnapshotFiles] != snaps || m.Custom[MetricStateFilesBytes] != size {
			t.Fatalf("%s: metrics say %d deltas, %d snapshots, %d bytes; directory has %d, %d, %d", when,
				m.Custom[MetricDeltaFiles], m.Custom[MetricSnapshotFiles], m.Custom[MetricStateFilesBytes], deltas, snaps, size)
		}
	}
	for b := int64(0); b < 6; b++ {
		s := mustOpen(t, p, b)
		applyBatch(t, s, b, nil)
		mustCommit(t, s)
		check(fmt.Sprintf("batch %d", b), s.Metrics())
		if b == 3 {
			// A re-run of batch 3 with more writes rewrites 4.delta.
			s = mustOpen(t, p, b)
			applyBatch(t, s, b, nil)
			s.Put([]byte("extra"), bytes.Repeat([]byte("x"), 100))
			mustCommit(t, s)
			check("re-run of batch 3", s.Metrics())
		}
		if err := p.Maintenance(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeltaFileWrittenLazily checks when the memory provider's delta file
// reaches the disk: a small delta stays in its buffer until Commit (no file
// is created while the batch runs; the engine creates every store's file in
// its parallel commit phase), a large one streams to a temporary file
// before Commit (the buffer is bounded), and Abort leaves nothing behind.
// syncModes runs fn with per-file durability and with batch durability
// (which needs Linux's syncfs: elsewhere its stores fall back to file).
func syncModes(t *testing.T, fn func(t *testing.T, conf Config, inPlace bool)) {
	for _, mode := range []SyncMode{SyncFile, SyncBatch} {
		t.Run(string(mode), func(t *testing.T) {
			conf := DefaultConfig()
			conf.Sync = mode
			inPlace := false
			if mode == SyncBatch {
				p := openP(t, t.TempDir(), 0, conf).(*memoryProvider)
				inPlace = p.fsync != nil
				if !inPlace && runtime.GOOS == "linux" {
					t.Logf("batch durability is not available here: testing its fallback")
				}
			}
			fn(t, conf, inPlace)
		})
	}
}

func TestDeltaFileWrittenLazily(t *testing.T) {
	syncModes(t, func(t *testing.T, conf Config, inPlace bool) {
		root := t.TempDir()
		p := openP(t, root, 1, conf) // partition 0 also holds _metadata
		dir := filepath.Join(root, "0", "1")
		s := mustOpen(t, p, 0)
		s.Put([]byte("a"), []byte("1"))
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("store directory exists before the first commit: %v", err)
		}
		mustCommit(t, s)
		if got := listNames(t, dir); !slices.Equal(got, []string{"1.delta"}) {
			t.Fatalf("after commit: %v", got)
		}
		s = mustOpen(t, p, 1)
		s.Put([]byte("b"), []byte("2"))
		if got := listNames(t, dir); !slices.Equal(got, []string{"1.delta"}) {
			t.Fatalf("small delta before commit: %v", got)
		}
		// Incompressible values past the encoder's buffers (64 KiB of records,
		// 256 KiB lz4 blocks, 64 KiB of file buffer).
		rng := rand.New(rand.NewPCG(1, 2))
		big := make([]byte, 1000)
		for i := range 500 {
			for j := range big {
				big[j] = byte(rng.Uint32())
			}
			s.Put(fmt.Appendf(nil, "big%03d", i), big)
		}
		got := listNames(t, dir)
		if inPlace {
			// Written in place; not a version until committed.
			if !slices.Equal(got, []string{"1.delta", "2.delta"}) {
				t.Fatalf("large delta before commit: %v, want 1.delta and 2.delta being written", got)
			}
			if v, _ := p.LatestVersion(); v != 1 {
				t.Fatalf("LatestVersion while 2.delta is written = %d, want 1", v)
			}
		} else if len(got) != 2 || !storage.IsTemp(got[0]) {
			t.Fatalf("large delta before commit: %v, want 1.delta and a temporary file", got)
		}
		s.Abort()
		if got := listNames(t, dir); !slices.Equal(got, []string{"1.delta"}) {
			t.Fatalf("after abort: %v", got)
		}
		s = mustOpen(t, p, 1)
		mustCommit(t, s) // an empty delta is still written, as Spark does
		if got := listNames(t, dir); !slices.Equal(got, []string{"1.delta", "2.delta"}) {
			t.Fatalf("after an empty commit: %v", got)
		}
	})
}

// TestCommitInSteps takes memory stores through WriteOut, Sync and Commit
// (the engine's grouped commit): with per-file durability nothing is
// visible under a version name before Commit; in place (batch durability)
// the file is there but is no version before Commit; writes are refused
// once the commit began, an abort after Sync leaves no file, and the
// committed state reloads.
func TestCommitInSteps(t *testing.T) {
	type stepped interface {
		WriteOut() error
		Sync() error
	}
	syncModes(t, func(t *testing.T, conf Config, inPlace bool) {
		root := t.TempDir()
		p := openP(t, root, 1, conf)
		dir := filepath.Join(root, "0", "1")
		s := mustOpen(t, p, 0)
		s.Put([]byte("a"), []byte("1"))
		ss, ok := s.(stepped)
		if !ok {
			t.Fatal("memory store does not commit in steps")
		}
		if err := ss.WriteOut(); err != nil {
			t.Fatal(err)
		}
		if err := s.Put([]byte("b"), []byte("2")); err == nil {
			t.Fatal("Put after WriteOut succeeded")
		}
		if err := ss.Sync(); err != nil {
			t.Fatal(err)
		}
		got := listNames(t, dir)
		if inPlace {
			if !slices.Equal(got, []string{"1.delta"}) {
				t.Fatalf("before Commit: %v, want 1.delta written in place", got)
			}
			if v, _ := p.LatestVersion(); v != 0 {
				t.Fatalf("LatestVersion before Commit = %d, want 0", v)
			}
		} else if len(got) != 1 || !storage.IsTemp(got[0]) {
			t.Fatalf("before Commit: %v, want one temporary file", got)
		}
		mustCommit(t, s)
		if got := listNames(t, dir); !slices.Equal(got, []string{"1.delta"}) {
			t.Fatalf("after Commit: %v", got)
		}
		s = mustOpen(t, p, 1)
		s.Put([]byte("c"), []byte("3"))
		ss = s.(stepped)
		if err := ss.WriteOut(); err != nil {
			t.Fatal(err)
		}
		if err := ss.Sync(); err != nil {
			t.Fatal(err)
		}
		s.Abort()
		if got := listNames(t, dir); !slices.Equal(got, []string{"1.delta"}) {
			t.Fatalf("after an abort past Sync: %v", got)
		}
		p.Close()
		p2 := openP(t, root, 1, conf)
		s2 := mustOpen(t, p2, 1)
		defer s2.Abort()
		if got := contents(t, s2); !maps.Equal(got, map[string]string{"a": "1"}) {
			t.Fatalf("reloaded version 1: %v", got)
		}
	})
}

// TestUpdateTimeIsTheUpdateRun checks allUpdatesTimeMs and
// allRemovalsTimeMs of the memory provider: a run of calls is timed from
// its first call to the next call of another kind or Idle (Spark times the
// update loop), so time the task spends between calls of a run counts and
// time after Idle does not.
func TestUpdateTimeIsTheUpdateRun(t *testing.T) {
	p := openP(t, t.TempDir(), 0, DefaultConfig())
	s := mustOpen(t, p, 0)
	const gap, idle = 50 * time.Millisecond, 500 * time.Millisecond
	if err := s.Put([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(gap) // the operator's work between two updates
	if _, _, err := s.Get([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	s.(Idler).Idle()
	time.Sleep(idle) // other partitions' tasks run: not this store's time
	if err := s.Put([]byte("c"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveRange(nil, []byte("b"), nil); err != nil { // ends the update run
		t.Fatal(err)
	}
	time.Sleep(gap) // eviction's emission
	if err := s.Remove([]byte("b")); err != nil {
		t.Fatal(err)
	}
	s.(Idler).Idle()
	time.Sleep(idle)
	mustCommit(t, s)
	m := s.Metrics()
	if m.AllUpdatesTimeMs < gap.Milliseconds() || m.AllUpdatesTimeMs >= idle.Milliseconds() {
		t.Errorf("allUpdatesTimeMs = %d, want in [%d, %d)", m.AllUpdatesTimeMs, gap.Milliseconds(), idle.Milliseconds())
	}
	if m.AllRemovalsTimeMs < gap.Milliseconds() || m.AllRemovalsTimeMs >= idle.Milliseconds() {
		t.Errorf("allRemovalsTimeMs = %d, want in [%d, %d)", m.AllRemovalsTimeMs, gap.Milliseconds(), idle.Milliseconds())
	}
	if m.NumRowsUpdated != 3 || m.NumRowsRemoved != 2 {
		t.Errorf("updated %d removed %d, want 3 and 2", m.NumRowsUpdated, m.NumRowsRemoved)
	}
}

// TestRetire: Retire(v) keeps in memory only the newest
// MaxBatchesToRetainInMemory − 1 versions at or below v (at least one); a
// retired version still opens, loaded from its files.
func TestRetire(t *testing.T) {
	for _, tc := range []struct {
		retain int
		want   []int64
	}{{2, []int64{3}}, {3, []int64{2, 3}}, {1, []int64{3}}} {
		conf := DefaultConfig()
		conf.MaxBatchesToRetainInMemory = tc.retain
		p := openP(t, t.TempDir(), 0, conf)
		for v := int64(0); v < 3; v++ {
			s := mustOpen(t, p, v)
			s.Put([]byte("k"), []byte{byte('a' + v)})
			mustCommit(t, s)
		}
		mp := p.(*memoryProvider)
		p.(Retirer).Retire(3)
		mp.mu.Lock()
		got := slices.Sorted(maps.Keys(mp.cache))
		mp.mu.Unlock()
		if !slices.Equal(got, tc.want) {
			t.Errorf("retain %d: cached after Retire(3) %v, want %v", tc.retain, got, tc.want)
		}
		misses := mp.cacheMisses.Load()
		if v, ok, err := mustOpen(t, p, 1).Get([]byte("k")); err != nil || !ok || string(v) != "a" {
			t.Fatalf("retain %d: version 1 after Retire: %q %v %v, want a", tc.retain, v, ok, err)
		}
		if tc.retain <= 2 && mp.cacheMisses.Load() != misses+1 {
			t.Errorf("retain %d: version 1 was not loaded from files", tc.retain)
		}
		p.Close()
	}
}
