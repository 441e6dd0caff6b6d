package file

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/source"
)

func TestTextListingAndOrder(t *testing.T) {
	in := t.TempDir()
	put(t, in, "b.txt", "b1\nb2\r\n\nb4", 2)
	put(t, in, "a.txt", "a1\n", 1)
	put(t, in, "sub/c.txt", "c1\n", 3)
	put(t, in, ".hidden", "no\n", 0)
	put(t, in, "_SUCCESS", "no\n", 0)
	put(t, in, "d.txt._COPYING_", "no\n", 0)
	put(t, in, ".tmp/e.txt", "no\n", 0)
	put(t, in, "_temporary/f.txt", "no\n", 0)
	put(t, in, "year=2024/g.txt", "g1\n", 4) // partition directories are read

	// As Spark: the directory's own files and its partition directories;
	// sub/ only with recursiveFileLookup.
	s := newSource(t, "text", map[string]string{"path": in, "recursiveFileLookup": "true"}, t.TempDir())
	ctx := context.Background()
	start, _ := s.InitialOffset(ctx)
	// As Spark: before log batch 0 (the first batch has no start offset).
	if start.JSON() != `{"logOffset":-1}` {
		t.Fatalf("initial offset %s", start.JSON())
	}
	end, frs := step(t, s, start, s.DefaultReadLimit())
	if end.JSON() != `{"logOffset":0}` {
		t.Fatalf("end %s", end.JSON())
	}
	if got, want := names(frs), []string{"a.txt", "b.txt", "c.txt", "g.txt"}; !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v (modification-time order, hidden names skipped)", got, want)
	}
	wantRows := map[string][]string{"a.txt": {"a1"}, "b.txt": {"b1", "b2", "", "b4"}, "c.txt": {"c1"}, "g.txt": {"g1"}}
	for _, fr := range frs {
		var got []string
		for _, r := range fr.rows {
			got = append(got, r[0].(string))
		}
		if want := wantRows[filepath.Base(fr.path)]; !slices.Equal(got, want) {
			t.Errorf("%s: rows %q, want %q", fr.path, got, want)
		}
	}
	// Nothing new: no batch.
	if again, _, _ := s.Latest(ctx, end, source.ReadLimit{}); again.JSON() != end.JSON() {
		t.Errorf("Latest without new files = %s", again.JSON())
	}
	// Without recursiveFileLookup the subdirectory is not read, the
	// partition directory is (and year becomes a column).
	plain := newSource(t, "text", map[string]string{"path": in}, t.TempDir())
	_, frs = step(t, plain, start, plain.DefaultReadLimit())
	if got, want := names(frs), []string{"a.txt", "b.txt", "g.txt"}; !slices.Equal(got, want) {
		t.Fatalf("files without recursiveFileLookup %v, want %v", got, want)
	}
}

func TestLimitsPerTrigger(t *testing.T) {
	tests := []struct {
		name  string
		opts  map[string]string
		sizes []int // file i has size sizes[i] and minute i
		want  [][]string
	}{
		{"all by default", nil, []int{1, 1, 1}, [][]string{{"f0", "f1", "f2"}}},
		{"maxFilesPerTrigger 2", map[string]string{"maxFilesPerTrigger": "2"}, []int{1, 1, 1, 1, 1}, [][]string{{"f0", "f1"}, {"f2", "f3"}, {"f4"}}},
		{"latestFirst", map[string]string{"maxFilesPerTrigger": "2", "latestFirst": "true"}, []int{1, 1, 1}, [][]string{{"f2", "f1"}, {"f0"}}},
		{"maxBytesPerTrigger", map[string]string{"maxBytesPerTrigger": "10"}, []int{4, 4, 4, 9, 2}, [][]string{{"f0", "f1"}, {"f2"}, {"f3"}, {"f4"}}},
		{"maxBytes below one file still reads it", map[string]string{"maxBytesPerTrigger": "3"}, []int{8, 8}, [][]string{{"f0"}, {"f1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := t.TempDir()
			for i, n := range tc.sizes {
				put(t, in, fmt.Sprintf("f%d", i), strings.Repeat("x", n-1)+"\n", i)
			}
			opts := map[string]string{"path": in}
			for k, v := range tc.opts {
				opts[k] = v
			}
			s := newSource(t, "text", opts, t.TempDir())
			start, _ := s.InitialOffset(context.Background())
			var got [][]string
			for i := 0; i < 10; i++ {
				end, frs := step(t, s, start, s.DefaultReadLimit())
				if frs == nil {
					break
				}
				got = append(got, names(frs))
				start = end
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("batches %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOutstandingMetrics(t *testing.T) {
	in := t.TempDir()
	for i := 0; i < 5; i++ {
		put(t, in, fmt.Sprintf("f%d", i), "abc\n", i)
	}
	s := newSource(t, "text", map[string]string{"path": in, "maxFilesPerTrigger": "2"}, t.TempDir())
	end, _ := step(t, s, initial, s.DefaultReadLimit())
	m := s.Metrics(end, end)
	if m["numFilesOutstanding"] != "3" || m["numBytesOutstanding"] != "12" {
		t.Errorf("metrics %v, want 3 files / 12 bytes outstanding", m)
	}
}

// TestRestartExactlyOnce runs the source across simulated restarts (new
// Source on the same metadata directory, offsets as the engine logged
// them) and checks that every file is read exactly once.
func TestRestartExactlyOnce(t *testing.T) {
	in, meta := t.TempDir(), t.TempDir()
	opts := map[string]string{"path": in, "maxFilesPerTrigger": "2"}
	counts := map[string]int{}
	count := func(frs []fileRows) {
		for _, fr := range frs {
			counts[filepath.Base(fr.path)]++
		}
	}
	ctx := context.Background()

	// Run 1: three files, batches of two; commit log batch 0 only.
	put(t, in, "f1", "1\n", 1)
	put(t, in, "f2", "2\n", 2)
	put(t, in, "f3", "3\n", 3)
	s1 := newSource(t, "text", opts, meta)
	init, _ := s1.InitialOffset(ctx)
	committed, frs := step(t, s1, init, s1.DefaultReadLimit())
	count(frs)
	// Batch 1 is planned (log batch 1 written) but the process dies
	// before the engine logs offsets/1.
	orphan, _, err := s1.Latest(ctx, committed, s1.DefaultReadLimit())
	if err != nil || orphan.JSON() != `{"logOffset":1}` {
		t.Fatalf("Latest = %v, %v", orphan, err)
	}

	// Files arrive while the query is down.
	put(t, in, "f4", "4\n", 4)
	put(t, in, "f0-late", "0\n", 0) // older than everything seen, but within maxFileAge

	// Run 2 resumes from the last logged offset.
	s2 := newSource(t, "text", opts, meta)
	start, err := s2.ParseOffset(committed.JSON())
	if err != nil {
		t.Fatal(err)
	}
	end, frs := step(t, s2, start, s2.DefaultReadLimit())
	if end.JSON() != `{"logOffset":1}` || !slices.Equal(names(frs), []string{"f3"}) {
		t.Fatalf("first batch after restart: %s %v; want the orphaned log batch 1 = [f3]", end.JSON(), names(frs))
	}
	count(frs)
	// Batch 2 is logged (offsets written) but the process dies before
	// the commit: run 3 re-runs it with exactly the logged range.
	end3, _, err := s2.Latest(ctx, end, s2.DefaultReadLimit())
	if err != nil {
		t.Fatal(err)
	}
	loggedStart, loggedEnd := end.JSON(), end3.JSON()

	s3 := newSource(t, "text", opts, meta)
	st, _ := s3.ParseOffset(loggedStart)
	en, _ := s3.ParseOffset(loggedEnd)
	frs = read(t, s3, st, en)
	if !slices.Equal(sorted(names(frs)), []string{"f0-late", "f4"}) {
		t.Fatalf("replayed batch read %v, want [f0-late f4]", names(frs))
	}
	count(frs)
	if err := s3.Commit(ctx, en); err != nil {
		t.Fatal(err)
	}
	put(t, in, "f5", "5\n", 5)
	start = en
	for {
		end, frs := step(t, s3, start, s3.DefaultReadLimit())
		if frs == nil {
			break
		}
		count(frs)
		start = end
	}
	want := map[string]int{"f0-late": 1, "f1": 1, "f2": 1, "f3": 1, "f4": 1, "f5": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("files read %v, want each exactly once: %v", counts, want)
	}
}

func TestSeenFilesLogFormat(t *testing.T) {
	in, meta := t.TempDir(), t.TempDir()
	p := put(t, in, "a b.json", `{"a":1}`+"\n", 0)
	// The engine's initial-offset record lives in the same directory.
	os.WriteFile(filepath.Join(meta, "0"), []byte("\x00v1\n{\"logOffset\":0}"), 0o644)
	s := newSource(t, "json", map[string]string{"path": in, "schema": "a INT"}, meta)
	if _, _, err := s.Latest(context.Background(), Offset{0}, source.ReadLimit{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(meta, "1"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("v1\n{\"path\":%q,\"timestamp\":%d,\"batchId\":1}", "file://"+strings.ReplaceAll(p, " ", "%20"), base.UnixMilli())
	if string(got) != want {
		t.Errorf("log batch 1:\n%s\nwant\n%s", got, want)
	}
	// A different second writer of the same batch is a conflict.
	fl, err := newFileLog(localStore(t, meta)), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.write(1, []logEntry{{Path: "file:///x", BatchID: 1}}); err == nil || !errors.Is(err, ErrConflict) {
		t.Errorf("conflicting log write: %v, want ErrConflict", err)
	}
	// A gap in the log is detected at start.
	os.WriteFile(filepath.Join(meta, "3"), []byte("v1\n"), 0o644)
	if _, err := New("json", map[string]string{"path": in, "schema": "a INT"}, localStore(t, meta), quiet); err == nil || !strings.Contains(err.Error(), "missing batch 2") {
		t.Errorf("log with a gap: %v", err)
	}
}

// TestCleanSource: cleanSource acts one batch late, as Spark's (which
// cleans a batch's files when the source is committed the batch's end,
// while the next batch is planned): a commit cleans the batch committed
// before it; after a restart the first commit cleans the last batch of the
// previous run.
func TestCleanSource(t *testing.T) {
	tests := []struct {
		mode string
	}{{CleanOff}, {CleanDelete}, {CleanArchive}}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			root := t.TempDir()
			in := filepath.Join(root, "in")
			archive := filepath.Join(root, "archive")
			meta := t.TempDir()
			a := put(t, in, "a.txt", "a\n", 0)
			b := put(t, in, "sub/b.txt", "b\n", 1)
			c := put(t, in, "c.txt", "c\n", 2)
			opts := map[string]string{"path": in, "cleanSource": strings.ToUpper(tc.mode), "sourceArchiveDir": archive,
				"maxFilesPerTrigger": "2", "recursiveFileLookup": "true"}
			s := newSource(t, "text", opts, meta)
			ctx := context.Background()
			exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
			cleaned := func(p string) {
				t.Helper()
				archived := filepath.Join(archive, p)
				switch tc.mode {
				case CleanOff:
					if !exists(p) || exists(archived) {
						t.Errorf("%s: cleaned with cleanSource=off", p)
					}
				case CleanDelete:
					if exists(p) || exists(archived) {
						t.Errorf("%s: still there after delete", p)
					}
				case CleanArchive:
					if exists(p) || !exists(archived) {
						t.Errorf("%s: not moved to %s", p, archived)
					}
				}
			}
			kept := func(when string, ps ...string) {
				t.Helper()
				for _, p := range ps {
					if !exists(p) {
						t.Errorf("%s: %s cleaned", when, p)
					}
				}
			}
			end0, frs := step(t, s, initial, s.DefaultReadLimit())
			if !slices.Equal(names(frs), []string{"a.txt", "b.txt"}) {
				t.Fatalf("batch 0 read %v", names(frs))
			}
			kept("before batch 0 commits", a, b, c)
			if err := s.Commit(ctx, end0); err != nil {
				t.Fatal(err)
			}
			kept("after batch 0 commits (Spark cleans it one batch later)", a, b, c)
			end1, frs := step(t, s, end0, s.DefaultReadLimit())
			if !slices.Equal(names(frs), []string{"c.txt"}) {
				t.Errorf("batch 1 read %v, want [c.txt]", names(frs))
			}
			if err := s.Commit(ctx, end1); err != nil {
				t.Fatal(err)
			}
			cleaned(a)
			cleaned(b)
			kept("after batch 1 commits", c)
			// Cleaned files are not read again.
			if _, frs := step(t, s, end1, s.DefaultReadLimit()); frs != nil {
				t.Errorf("batch 2 read %v", names(frs))
			}
			// A restart: the first commit cleans the previous run's last
			// batch.
			d := put(t, in, "d.txt", "d\n", 3)
			s2 := newSource(t, "text", opts, meta)
			end2, frs := step(t, s2, end1, s2.DefaultReadLimit())
			if !slices.Equal(names(frs), []string{"d.txt"}) {
				t.Errorf("batch 2 after restart read %v, want [d.txt]", names(frs))
			}
			if err := s2.Commit(ctx, end2); err != nil {
				t.Fatal(err)
			}
			cleaned(c)
			kept("after batch 2 commits", d)
		})
	}
}

func TestCleanSourceOptions(t *testing.T) {
	in := t.TempDir()
	for _, tc := range []struct {
		opts    map[string]string
		wantErr string
	}{
		{map[string]string{"cleanSource": "archive"}, `option "sourceArchiveDir": required`},
		{map[string]string{"cleanSource": "archive", "sourceArchiveDir": filepath.Join(in, "old")}, "must not be inside the source path"},
		{map[string]string{"cleanSource": "move"}, `option "cleanSource": invalid value "move"; allowed: off, archive, delete`},
	} {
		opts := map[string]string{"path": in}
		for k, v := range tc.opts {
			opts[k] = v
		}
		if _, err := ParseConfig("text", opts); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseConfig(%v) = %v, want %q", tc.opts, err, tc.wantErr)
		}
	}
	if _, err := ParseConfig("text", map[string]string{"path": filepath.Join(in, "*"), "cleanSource": "archive", "sourceArchiveDir": filepath.Join(in, "arch")}); err == nil {
		t.Error("archive dir matched by the glob accepted")
	}
	if _, err := ParseConfig("text", map[string]string{"path": filepath.Join(in, "in"), "cleanSource": "archive", "sourceArchiveDir": in}); err != nil {
		t.Errorf("archive dir above the source: %v", err)
	}
	// An archive directory is refused when a file archived there (at
	// dir + its path) could be listed again, with Spark's text and both
	// paths.
	for _, tc := range []struct {
		path, archive string
		refused       bool
	}{
		{"in/*", "in", true}, // in/<x>/… lands in in/in/<x>/…: the glob matches in/in
		{"in", "in/old", true},
		{"*", "arch", true},
		{"in", "out", false},
		{"*/x", "a", false}, // in/a/<tmp…>/…: not under a matched …/*/x
		{"{in,arch}", "arch", true},
	} {
		path, archive := filepath.Join(in, tc.path), filepath.Join(in, tc.archive)
		_, err := ParseConfig("text", map[string]string{"path": path, "cleanSource": "archive", "sourceArchiveDir": archive})
		switch {
		case !tc.refused && err != nil:
			t.Errorf("path %s, archive %s: %v", tc.path, tc.archive, err)
		case tc.refused && (err == nil || !strings.Contains(err.Error(), "Base archive path cannot be set to the path where archived path can possibly match with source pattern") ||
			!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), archive)):
			t.Errorf("path %s, archive %s: %v, want it refused naming both", tc.path, tc.archive, err)
		}
	}
}

func TestMaxFileAge(t *testing.T) {
	in := t.TempDir()
	put(t, in, "old", "o\n", -60*24*30) // 30 days before the rest
	put(t, in, "new", "n\n", 0)
	s := newSource(t, "text", map[string]string{"path": in, "maxFileAge": "1d"}, t.TempDir())
	// The first batch treats every file as valid.
	end, frs := step(t, s, initial, source.ReadLimit{})
	if !slices.Equal(names(frs), []string{"old", "new"}) {
		t.Fatalf("first batch %v", names(frs))
	}
	// Afterwards files older than newest − 1 day are ignored.
	put(t, in, "late-old", "x\n", -60*48)
	put(t, in, "late-recent", "y\n", -60)
	_, frs = step(t, s, end, source.ReadLimit{})
	if !slices.Equal(names(frs), []string{"late-recent"}) {
		t.Errorf("second batch %v, want [late-recent]", names(frs))
	}
}

func TestFileNameOnly(t *testing.T) {
	in := t.TempDir()
	put(t, in, "x/data.txt", "1\n", 0)
	put(t, in, "y/data.txt", "2\n", 1)
	put(t, in, "y/other.txt", "3\n", 2)
	for _, tc := range []struct {
		opt  string
		want int
	}{{"false", 3}, {"true", 2}} {
		// x/ and y/ are not partition directories: a glob reaches into them
		// (Spark reads only a matched directory's own files).
		s := newSource(t, "text", map[string]string{"path": filepath.Join(in, "*"), "fileNameOnly": tc.opt}, t.TempDir())
		_, frs := step(t, s, initial, source.ReadLimit{})
		if len(frs) != tc.want {
			t.Errorf("fileNameOnly=%s: read %v, want %d files", tc.opt, names(frs), tc.want)
		}
	}
}

func TestAvailableNowSnapshot(t *testing.T) {
	in := t.TempDir()
	put(t, in, "a", "a\n", 0)
	put(t, in, "b", "b\n", 1)
	put(t, in, "c", "c\n", 2)
	s := newSource(t, "text", map[string]string{"path": in, "maxFilesPerTrigger": "2"}, t.TempDir())
	if err := s.PrepareAvailableNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	put(t, in, "d", "d\n", 3) // arrives after the trigger started
	var got [][]string
	start := source.Offset(initial)
	for {
		end, frs := step(t, s, start, s.DefaultReadLimit())
		if frs == nil {
			break
		}
		got = append(got, names(frs))
		start = end
	}
	if fmt.Sprint(got) != "[[a b] [c]]" {
		t.Errorf("AvailableNow batches %v, want [[a b] [c]] (limits kept, later files excluded)", got)
	}
}

func TestGlobsAndFilters(t *testing.T) {
	in := t.TempDir()
	put(t, in, "2024/a.json", `{"v":1}`, 0)
	put(t, in, "2025/b.json", `{"v":2}`, 1)
	put(t, in, "2025/c.txt", `{"v":3}`, 2)
	put(t, in, "2026/d.json", `{"v":4}`, 3)
	tests := []struct {
		path, filter string
		want         []string
	}{
		{"{2024,2025}/*.json", "", []string{"a.json", "b.json"}},
		{"202?", "*.json", []string{"a.json", "b.json", "d.json"}},
		{"*/*", "", []string{"a.json", "b.json", "c.txt", "d.json"}},
		{"2025", "", []string{"b.json", "c.txt"}},
	}
	for _, tc := range tests {
		opts := map[string]string{"path": filepath.Join(in, tc.path), "schema": "v INT"}
		if tc.filter != "" {
			opts["pathGlobFilter"] = tc.filter
		}
		s := newSource(t, "json", opts, t.TempDir())
		_, frs := step(t, s, initial, source.ReadLimit{})
		if got := names(frs); !slices.Equal(got, tc.want) {
			t.Errorf("path %s filter %q: files %v, want %v", tc.path, tc.filter, got, tc.want)
		}
	}
	if _, err := New("text", map[string]string{"path": filepath.Join(in, "missing")}, localStore(t, t.TempDir()), quiet); err == nil {
		t.Error("a missing path without glob accepted")
	}
}

func TestCompressedInput(t *testing.T) {
	in := t.TempDir()
	f, _ := os.Create(filepath.Join(in, "a.csv.gz"))
	zw := gzip.NewWriter(f)
	zw.Write([]byte("1,x\n2,y\n"))
	zw.Close()
	f.Close()
	s := newSource(t, "csv", map[string]string{"path": in, "schema": "n INT, s STRING"}, t.TempDir())
	_, frs := step(t, s, initial, source.ReadLimit{})
	if len(frs) != 1 || fmt.Sprint(frs[0].rows) != "[[1 x] [2 y]]" {
		t.Errorf("rows %v", frs)
	}
}

func TestMissingFileFailsTask(t *testing.T) {
	in := t.TempDir()
	p := put(t, in, "a", "a\n", 0)
	s := newSource(t, "text", map[string]string{"path": in}, t.TempDir())
	end, _, _ := s.Latest(context.Background(), initial, source.ReadLimit{})
	os.Remove(p)
	if _, err := tryRead(s, initial, end); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("reading a vanished file: %v", err)
	}
}

func TestOffsets(t *testing.T) {
	s := &Source{}
	for _, tc := range []struct{ in, want string }{{`{"logOffset":3}`, `{"logOffset":3}`}, {"7", `{"logOffset":7}`}} {
		o, err := s.ParseOffset(tc.in)
		if err != nil || o.JSON() != tc.want {
			t.Errorf("ParseOffset(%s) = %v, %v", tc.in, o, err)
		}
	}
	for _, bad := range []string{"", "-1", `{"logOffset":-2}`, `{"x":1}`, `{"logOffset":1}x`} {
		if _, err := s.ParseOffset(bad); err == nil {
			t.Errorf("ParseOffset(%q) accepted", bad)
		}
	}
	// The checkpoint cannot be ahead of the log.
	in := t.TempDir()
	s2 := newSource(t, "text", map[string]string{"path": in}, t.TempDir())
	if _, _, err := s2.Latest(context.Background(), Offset{5}, source.ReadLimit{}); err == nil {
		t.Error("an offset past the log accepted")
	}
	_ = time.Second
}
