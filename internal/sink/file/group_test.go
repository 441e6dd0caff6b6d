package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/storage/storagetest"
)

// batcher stands in for the group-mode Kafka source: the offsets of the
// batch being committed.
type batcher struct {
	mu         sync.Mutex
	start, end map[partition.ID]int64
}

func (b *batcher) GroupBatch() (start, end map[partition.ID]int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.start), maps.Clone(b.end)
}

func (b *batcher) set(start, end map[partition.ID]int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.start, b.end = start, end
}

func tp(p int32) partition.ID { return partition.ID{Topic: "in", Partition: p} }

// member opens the sink of one group member on dir.
func member(t *testing.T, dir, name string) (*Sink, *batcher) {
	t.Helper()
	cfg, err := ParseOptions(JSON, map[string]string{"path": dir})
	if err != nil {
		t.Fatal(err)
	}
	// A query's owner, as Formats' Open passes it: group mode must not
	// use it (every member has a query id of its own).
	s, err := open(cfg, owner{queryID: "query-of-" + name}, WithGroup("g", name))
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(slog.New(slog.DiscardHandler))
	b := &batcher{}
	s.UseGroup(b)
	return s, b
}

// commitRange writes one batch of member s covering [start, end) of the
// given partitions, with rows unless rows is 0, and returns the files it
// wrote (relative to dir) and Commit's error.
func commitRange(t *testing.T, s *Sink, b *batcher, id int64, start, end map[partition.ID]int64, rows int) ([]string, error) {
	t.Helper()
	b.set(start, end)
	before := map[string]bool{}
	for _, f := range dataFiles(t, s.cfg.Path) {
		before[f] = true
	}
	var tasks []*batch.Batch
	if rows > 0 {
		tasks = []*batch.Batch{genRows(int(id)*1000, rows)}
	}
	err := runBatch(t, s, id, tasks)
	var mine []string
	for _, f := range dataFiles(t, s.cfg.Path) {
		if !before[f] {
			mine = append(mine, f)
		}
	}
	return mine, err
}

func TestGroupLogOneWriterPerPartitionRange(t *testing.T) {
	dir := t.TempDir()
	a, ab := member(t, dir, "a")
	b, bb := member(t, dir, "b")

	aFiles, err := commitRange(t, a, ab, 0, map[partition.ID]int64{tp(0): 0, tp(1): 0}, map[partition.ID]int64{tp(0): 10, tp(1): 5}, 3)
	if err != nil || len(aFiles) == 0 {
		t.Fatalf("a's first batch: files %v, err %v", aFiles, err)
	}
	got, err := b.GroupOffsets([]partition.ID{tp(0), tp(1), tp(2)})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[partition.ID]int64{tp(0): 10, tp(1): 5}; !maps.Equal(got, want) {
		t.Fatalf("GroupOffsets = %v, want %v", got, want)
	}

	// b planned partition 0 from offset 0 before a's commit (the member
	// that lost it, or the new owner with a stale start): refused, its
	// files deleted.
	bFiles, err := commitRange(t, b, bb, 0, map[partition.ID]int64{tp(0): 0}, map[partition.ID]int64{tp(0): 8}, 2)
	if !errors.Is(err, source.ErrRevoked) {
		t.Fatalf("stale batch: err = %v, want ErrRevoked", err)
	}
	for _, f := range bFiles {
		t.Errorf("refused batch left %s", f)
	}

	// A partition no record names yet starts where its first committer
	// says; a second member with another start for it is refused.
	b2, err := commitRange(t, b, bb, 1, map[partition.ID]int64{tp(2): 3}, map[partition.ID]int64{tp(2): 9}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := commitRange(t, a, ab, 1, map[partition.ID]int64{tp(2): 0, tp(0): 10}, map[partition.ID]int64{tp(2): 4, tp(0): 12}, 2); !errors.Is(err, source.ErrRevoked) {
		t.Fatalf("second start of a fresh partition: err = %v, want ErrRevoked", err)
	}

	// A batch that advanced a partition without output is recorded.
	if _, err := commitRange(t, b, bb, 2, map[partition.ID]int64{tp(0): 10}, map[partition.ID]int64{tp(0): 20}, 0); err != nil {
		t.Fatal(err)
	}
	got, _ = a.GroupOffsets([]partition.ID{tp(0), tp(1), tp(2)})
	if want := map[partition.ID]int64{tp(0): 20, tp(1): 5, tp(2): 9}; !maps.Equal(got, want) {
		t.Fatalf("GroupOffsets = %v, want %v", got, want)
	}
	// Nothing moved, nothing written: no version.
	if _, err := commitRange(t, a, ab, 3, map[partition.ID]int64{tp(1): 5}, map[partition.ID]int64{tp(1): 5}, 0); err != nil {
		t.Fatal(err)
	}
	gl, _ := a.meta.groupLog()
	if l, _ := gl.latest(); l != 2 {
		t.Errorf("group log latest version %d, want 2", l)
	}

	want := append(aFiles, b2...)
	slices.Sort(want)
	if got := logged(t, dir); !slices.Equal(got, want) {
		t.Errorf("ReadLog = %v, want %v", got, want)
	}
	if got := dataFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("data files %v, want only the committed %v", got, want)
	}
	// The query log is untouched: its batch ids are one query's.
	if l, _ := a.meta.latest(); l != -1 {
		t.Errorf("query log latest batch %d, want none", l)
	}
	// Vacuum keeps the group's files.
	names, err := LoggedNames(a.Root())
	if err != nil || len(names) != len(want) {
		t.Errorf("LoggedNames = %v, %v; want %v", names, err, want)
	}
}

// Members racing for partitions: every batch either commits or is
// refused with ErrRevoked; the committed ranges of each partition follow
// each other without a gap or an overlap, whatever the interleaving, and
// readers see exactly the committed batches' files (across compactions).
func TestGroupLogConcurrentMembersExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	raceMembers(t, func(name string) (*Sink, *batcher) { return member(t, dir, name) })
}

// The same race on object stores (Azurite and an S3 emulator): the group
// log's versions are put-if-absent there too.
func TestGroupLogConcurrentMembersObjectStores(t *testing.T) {
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseOptions(JSON, map[string]string{"path": e.URI("group-race")})
		if err != nil {
			t.Fatal(err)
		}
		raceMembers(t, func(name string) (*Sink, *batcher) {
			s, err := open(cfg, owner{queryID: "query-of-" + name}, WithResolver(r), WithGroup("g", name))
			if err != nil {
				t.Fatal(err)
			}
			s.SetLogger(slog.New(slog.DiscardHandler))
			b := &batcher{}
			s.UseGroup(b)
			return s, b
		})
	})
}

// raceMembers runs 4 members of one output (opened by open) committing
// random ranges of 3 partitions concurrently, 30 batches each, and checks
// the output.
func raceMembers(t *testing.T, open func(name string) (*Sink, *batcher)) {
	const members, rounds, parts = 4, 30, 3
	type done struct {
		ranges map[partition.ID][2]int64
		files  []string
	}
	var (
		mu        sync.Mutex
		committed []done
		refused   int
		wg        sync.WaitGroup
	)
	sinks := make([]*Sink, members)
	batchers := make([]*batcher, members)
	for m := range members {
		sinks[m], batchers[m] = open(fmt.Sprint("m", m))
	}
	for m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(m), 7))
			s, b := sinks[m], batchers[m]
			for r := range rounds {
				var tps []partition.ID
				for p := range int32(parts) {
					if rng.IntN(2) == 0 {
						tps = append(tps, tp(p))
					}
				}
				if len(tps) == 0 {
					tps = []partition.ID{tp(int32(rng.IntN(parts)))}
				}
				starts, err := s.GroupOffsets(tps)
				if err != nil {
					t.Error(err)
					return
				}
				start, end := map[partition.ID]int64{}, map[partition.ID]int64{}
				for _, p := range tps {
					start[p] = starts[p] // 0 for a fresh partition
					end[p] = start[p] + 1 + rng.Int64N(5)
				}
				b.set(start, end)
				// Which files are this batch's comes from its commit
				// message.
				w, err := s.NewWriter(t.Context(), int64(r), 0, testSchema)
				if err != nil {
					t.Error(err)
					return
				}
				if err := w.Write(t.Context(), genRows(m*1000+r, 2)); err != nil {
					t.Error(err)
					return
				}
				msg, err := w.Close(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				err = s.Commit(t.Context(), int64(r), []sink.Message{msg})
				mu.Lock()
				switch {
				case err == nil:
					d := done{ranges: map[partition.ID][2]int64{}}
					for _, p := range tps {
						d.ranges[p] = [2]int64{start[p], end[p]}
					}
					for _, f := range msg.(Message) {
						d.files = append(d.files, path.Base(f.Rel))
					}
					committed = append(committed, d)
				case errors.Is(err, source.ErrRevoked):
					refused++
				default:
					t.Errorf("member %d batch %d: %v", m, r, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if refused == 0 {
		t.Fatalf("no batch was refused in %d: the members never raced", members*rounds)
	}
	var wantFiles []string
	byPart := map[partition.ID][][2]int64{}
	for _, d := range committed {
		wantFiles = append(wantFiles, d.files...)
		for p, r := range d.ranges {
			byPart[p] = append(byPart[p], r)
		}
	}
	ends, err := sinks[0].GroupOffsets([]partition.ID{tp(0), tp(1), tp(2)})
	if err != nil {
		t.Fatal(err)
	}
	for p, rs := range byPart {
		sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
		if rs[0][0] != 0 {
			t.Errorf("%s: first committed range %v, want it to start at 0", p, rs[0])
		}
		for i := 1; i < len(rs); i++ {
			if rs[i][0] != rs[i-1][1] {
				t.Errorf("%s: committed ranges %v then %v: a gap or an overlap", p, rs[i-1], rs[i])
			}
		}
		if last := rs[len(rs)-1][1]; ends[p] != last {
			t.Errorf("%s: GroupOffsets %d, want the last committed end %d", p, ends[p], last)
		}
	}
	slices.Sort(wantFiles)
	root := sinks[0].Root()
	uris, err := ReadLogURIs(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range uris {
		got = append(got, path.Base(u))
	}
	slices.Sort(got)
	if !slices.Equal(got, wantFiles) {
		t.Errorf("the logs list %d files, want the %d committed", len(got), len(wantFiles))
	}
	ents, err := root.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var onStore []string
	for _, e := range ents {
		if !e.IsDir && strings.HasPrefix(e.Name, "part-") {
			onStore = append(onStore, e.Name)
		}
	}
	if !slices.Equal(onStore, wantFiles) {
		t.Errorf("%d data files stored, want only the %d committed (refused batches delete theirs)", len(onStore), len(wantFiles))
	}
	files, err := sinks[0].glog.list()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(committed); n < 2*CompactInterval {
		t.Fatalf("only %d commits: compaction not exercised", n)
	}
	if files[0].id < int64(len(committed))-3*CompactInterval {
		t.Errorf("group log keeps version %d of %d: expired versions not deleted", files[0].id, len(committed))
	}
	// A member opened afresh reads the same ends (from the compaction on).
	fresh, _ := open("late")
	late, err := fresh.GroupOffsets([]partition.ID{tp(0), tp(1), tp(2)})
	if err != nil || !maps.Equal(late, ends) {
		t.Errorf("a new member's GroupOffsets = %v, %v; want %v", late, err, ends)
	}
	t.Logf("%d batches committed, %d refused", len(committed), refused)
}

// DuckDB (verify.mjs, which reads the group log by the documented layout)
// sees exactly the committed batches of a group's members, across a
// compaction of the group log, and the same partition ends.
func TestDuckDBReadsGroupLog(t *testing.T) {
	duckDir := duckDBDir(t)
	dir := t.TempDir()
	a, ab := member(t, dir, "a")
	b, bb := member(t, dir, "b")
	var want []string
	rows := 0
	for i := range int64(12) {
		s, sb := a, ab
		if i%2 == 1 {
			s, sb = b, bb
		}
		start := map[partition.ID]int64{tp(0): i * 10, tp(1): i * 5}
		end := map[partition.ID]int64{tp(0): i*10 + 10, tp(1): i*5 + 5}
		files, err := commitRange(t, s, sb, i, start, end, 3)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, files...)
		rows += 3
		// The other member's stale attempt at the same range.
		o, ob := b, bb
		if s == b {
			o, ob = a, ab
		}
		if _, err := commitRange(t, o, ob, 100+i, start, end, 2); !errors.Is(err, source.ErrRevoked) {
			t.Fatalf("stale attempt %d: err = %v, want ErrRevoked", i, err)
		}
	}
	var res struct {
		verifyResult
		GroupVersion int64            `json:"groupVersion"`
		GroupEnds    map[string]int64 `json:"groupEnds"`
	}
	if err := json.Unmarshal(runVerify(t, duckDir, dir), &res); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(res.Files, want) || res.Count != rows {
		t.Errorf("DuckDB read %d files, %d rows; want %d files, %d rows", len(res.Files), res.Count, len(want), rows)
	}
	if res.GroupVersion != 11 || res.LatestBatch != -1 {
		t.Errorf("DuckDB: group log version %d, query log batch %d; want 11 and -1", res.GroupVersion, res.LatestBatch)
	}
	if w := map[string]int64{"in-0": 120, "in-1": 60}; !maps.Equal(res.GroupEnds, w) {
		t.Errorf("DuckDB: group ends %v, want %v", res.GroupEnds, w)
	}
}

// An output written first by one process (the query log) and then by a
// group (the group log) is read whole; the group does not touch the
// query log.
func TestGroupLogAfterQueryLog(t *testing.T) {
	dir := t.TempDir()
	single := mustNew(t, JSON, map[string]string{"path": dir})
	if err := runBatch(t, single, 0, []*batch.Batch{genRows(0, 4)}); err != nil {
		t.Fatal(err)
	}
	before := logged(t, dir)
	a, ab := member(t, dir, "a")
	files, err := commitRange(t, a, ab, 0, map[partition.ID]int64{tp(0): 0}, map[partition.ID]int64{tp(0): 4}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{}, before...), files...)
	slices.Sort(want)
	if got := logged(t, dir); len(before) == 0 || !slices.Equal(got, want) {
		t.Errorf("ReadLog = %v, want the query log's %v and the group's %v", got, before, files)
	}
	if l, _ := a.meta.latest(); l != 0 {
		t.Errorf("query log latest batch %d, want 0", l)
	}
}
