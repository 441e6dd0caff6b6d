package checkpoint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/storage"
)

// helperEnv makes the test binary act as a second process that opens the
// checkpoint named by the variable's value (see TestMain).
const helperEnv = "SLUICE_CHECKPOINT_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperMain(dir))
	}
	os.Exit(m.Run())
}

// helperMain opens dir; on failure it prints the error and exits 3; on
// success it prints "locked" and holds the lock until stdin closes.
func helperMain(dir string) int {
	c, err := Open(dir)
	if err != nil {
		fmt.Println("error:", err)
		return 3
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	c.Close()
	return 0
}

func open(t *testing.T, dir string) *Checkpoint {
	t.Helper()
	c, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestOpenCreatesLayoutAndKeepsID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "chk")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"offsets", "commits"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s not created: %v", sub, err)
		}
	}
	id := c.ID()
	if !uuidV4.MatchString(id) {
		t.Errorf("id %q is not a UUID v4", id)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"` + id + `"}`; string(raw) != want {
		t.Errorf("metadata = %q, want %q", raw, want)
	}
	if !filepath.IsAbs(c.Dir()) || c.Dir() != filepath.Clean(dir) {
		t.Errorf("Dir() = %q, want %q", c.Dir(), dir)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.LatestOffsets(); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
	c2 := open(t, dir)
	if c2.ID() != id {
		t.Errorf("reopened id = %q, want %q", c2.ID(), id)
	}
	other := open(t, t.TempDir())
	if other.ID() == id {
		t.Error("two checkpoints got the same id")
	}
}

func TestOpenReadsSparkMetadata(t *testing.T) {
	dir := t.TempDir()
	const id = "0b8cd8e4-1f6a-4f8a-9d38-2fd6b1f6a3c1"
	if err := os.WriteFile(filepath.Join(dir, "metadata"), []byte(`{"id":"`+id+`"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := open(t, dir).ID(); got != id {
		t.Errorf("ID() = %q, want %q", got, id)
	}
}

func TestOpenBadMetadata(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{`{"id":`, "not valid JSON"},
		{`{"name":"x"}`, `missing or empty "id"`},
		{``, "not valid JSON"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "metadata"), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "metadata") {
			t.Errorf("metadata %q: err = %v, want mention of metadata and %q", tc.content, err, tc.want)
		}
		// A failed Open must release the lock.
		if c, err := Open(t.TempDir()); err == nil {
			c.Close()
		}
	}
}

func TestLockInProcess(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	_, err := Open(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "two queries cannot share") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not explain the conflict", err)
	}
	// Same directory named differently still conflicts.
	if _, err := Open(dir + "/./"); !errors.Is(err, ErrLocked) {
		t.Errorf("Open via other path: err = %v, want ErrLocked", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	c2.Close()
}

func helperCmd(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("cross-process lock needs flock")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	return cmd
}

func TestLockRefusedInOtherProcess(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	out, err := helperCmd(t, dir).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("helper: err = %v, output %q; want exit 3", err, out)
	}
	if want := fmt.Sprintf("held by pid %d", os.Getpid()); !strings.Contains(string(out), want) {
		t.Errorf("helper output %q lacks %q", out, want)
	}
	c.Close()
	if out, err := helperCmd(t, dir).Output(); err != nil || !strings.HasPrefix(string(out), "locked") {
		// stdin is empty, so the helper exits right after locking.
		t.Errorf("helper after Close: err = %v, output %q", err, out)
	}
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	dir := t.TempDir()
	cmd := helperCmd(t, dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	_, err = Open(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("Open while helper holds lock: err = %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	c, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after holder died: %v", err)
	}
	c.Close()
}

func TestOffsetsRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		meta    BatchMetadata
		sources []string
		file    string
		back    []string
	}{
		{
			name:    "kafka",
			meta:    BatchMetadata{WatermarkMs: 0, TimestampMs: 1715681700000, Conf: map[string]string{"spark.sql.shuffle.partitions": "200", "a.b": "x"}},
			sources: []string{`{"orders":{"0":1250000,"1":1240000}}`},
			file:    "v1\n" + `{"batchWatermarkMs":0,"batchTimestampMs":1715681700000,"conf":{"a.b":"x","spark.sql.shuffle.partitions":"200"}}` + "\n" + `{"orders":{"0":1250000,"1":1240000}}`,
			back:    []string{`{"orders":{"0":1250000,"1":1240000}}`},
		},
		{
			name:    "no offset and compaction",
			meta:    BatchMetadata{WatermarkMs: 42, TimestampMs: 7},
			sources: []string{"", "-", "{ \"t\" :\n {\"0\": 5} }"},
			file:    "v1\n" + `{"batchWatermarkMs":42,"batchTimestampMs":7,"conf":{}}` + "\n-\n-\n" + `{"t":{"0":5}}`,
			back:    []string{"", "", `{"t":{"0":5}}`},
		},
		{
			name: "no sources, html chars kept",
			meta: BatchMetadata{TimestampMs: 1, Conf: map[string]string{"k": "<a&b>"}},
			file: "v1\n" + `{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{"k":"<a&b>"}}`,
			back: []string{},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir())
			id := int64(i * 10)
			if err := c.WriteOffsets(id, tc.meta, tc.sources); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(c.Dir(), "offsets", strconv.FormatInt(id, 10)))
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tc.file {
				t.Errorf("file content\n got %q\nwant %q", raw, tc.file)
			}
			meta, src, err := c.ReadOffsets(id)
			if err != nil {
				t.Fatal(err)
			}
			wantMeta := tc.meta
			if wantMeta.Conf == nil {
				wantMeta.Conf = map[string]string{}
			}
			if !reflect.DeepEqual(meta, wantMeta) {
				t.Errorf("meta = %+v, want %+v", meta, wantMeta)
			}
			if !reflect.DeepEqual(src, tc.back) {
				t.Errorf("sources = %q, want %q", src, tc.back)
			}
			assertNoTemp(t, c.Dir())
		})
	}
}

func TestWriteOffsetsRejectsBadInput(t *testing.T) {
	c := open(t, t.TempDir())
	if err := c.WriteOffsets(0, BatchMetadata{}, []string{`{"a":`}); err == nil || !strings.Contains(err.Error(), "source 0 is not valid JSON") {
		t.Errorf("bad JSON: err = %v", err)
	}
	if err := c.WriteOffsets(-1, BatchMetadata{}, nil); err == nil || !strings.Contains(err.Error(), "negative batch id") {
		t.Errorf("negative id: err = %v", err)
	}
	if _, ok, _ := c.LatestOffsets(); ok {
		t.Error("a rejected write left a file")
	}
	assertNoTemp(t, c.Dir())
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", p)
		}
		return nil
	})
}

func TestCommitsAndLatest(t *testing.T) {
	c := open(t, t.TempDir())
	if _, ok, err := c.LatestCommit(); ok || err != nil {
		t.Fatalf("empty log: ok=%v err=%v", ok, err)
	}
	for _, id := range []int64{0, 1, 2, 9, 10} {
		if err := c.WriteCommit(id, id*1000); err != nil {
			t.Fatal(err)
		}
	}
	// Noise that listing must ignore.
	for _, n := range []string{"11.tmp", ".12.tmp-abc", "007", "-3", "+4", "x", "99999999999999999999"} {
		os.WriteFile(filepath.Join(c.Dir(), "commits", n), []byte("junk"), 0o644)
	}
	os.Mkdir(filepath.Join(c.Dir(), "commits", "50"), 0o755)
	id, ok, err := c.LatestCommit()
	if err != nil || !ok || id != 10 {
		t.Errorf("LatestCommit = %d, %v, %v; want 10", id, ok, err)
	}
	raw, _ := os.ReadFile(filepath.Join(c.Dir(), "commits", "9"))
	if string(raw) != "v1\n{\"nextBatchWatermarkMs\":9000}" {
		t.Errorf("commits/9 = %q", raw)
	}
	if wm, err := c.ReadCommit(9); err != nil || wm != 9000 {
		t.Errorf("ReadCommit(9) = %d, %v", wm, err)
	}
	if _, err := c.ReadCommit(5); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadCommit(5) err = %v, want ErrNotExist", err)
	}
	for id, want := range map[int64]bool{0: true, 2: true, 3: false, 10: true, 11: false, -1: false} {
		if got := c.HasCommit(id); got != want {
			t.Errorf("HasCommit(%d) = %v, want %v", id, got, want)
		}
	}
}

func TestRewriteIdempotentAndConflict(t *testing.T) {
	c := open(t, t.TempDir())
	meta := BatchMetadata{TimestampMs: 100, Conf: map[string]string{"x": "1"}}
	src := []string{`{"t":{"0":10}}`}
	if err := c.WriteOffsets(3, meta, src); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteOffsets(3, meta, src); err != nil {
		t.Errorf("identical re-write: %v", err)
	}
	err := c.WriteOffsets(3, meta, []string{`{"t":{"0":11}}`})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), filepath.Join("offsets", "3")) {
		t.Errorf("conflicting re-write: err = %v, want ErrConflict naming offsets/3", err)
	}
	_, got, _ := c.ReadOffsets(3)
	if got[0] != `{"t":{"0":10}}` {
		t.Errorf("conflicting write changed the file: %q", got)
	}
	if err := c.WriteCommit(3, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteCommit(3, 0); err != nil {
		t.Errorf("identical commit re-write: %v", err)
	}
	if err := c.WriteCommit(3, 5); !errors.Is(err, ErrConflict) {
		t.Errorf("conflicting commit: err = %v", err)
	}
	assertNoTemp(t, c.Dir())
}

func TestStaleTempFilesCleanedOnOpen(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	if err := c.WriteOffsets(0, BatchMetadata{}, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	stale := []string{
		filepath.Join(dir, "offsets", ".1.tmp-123"),
		filepath.Join(dir, "commits", ".0.tmp-x"),
		filepath.Join(dir, ".metadata.tmp-9"),
	}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, "offsets", "notes.txt")
	os.WriteFile(keep, []byte("user file"), 0o644)
	c = open(t, dir)
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived Open", p)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("non-temp file removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFileName)); err != nil {
		t.Errorf("lock file removed: %v", err)
	}
	if id, ok, _ := c.LatestOffsets(); !ok || id != 0 {
		t.Errorf("LatestOffsets = %d, %v", id, ok)
	}
}

func TestCorruptedFiles(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"empty offsets", "offsets", "", "file is empty"},
		{"no version", "offsets", "{\"a\":1}\n{}", `Log file was malformed: failed to read correct log version from "{\"a\":1}" (want "v1"`},
		{"newer version", "offsets", "v2\n{}\n-", "maximum supported log version is v1, but encountered v2"},
		{"bad version", "offsets", "vX\n{}", `Log file was malformed: failed to read correct log version from "vX"`},
		{"missing metadata", "offsets", "v1", "missing batch metadata"},
		{"bad metadata JSON", "offsets", "v1\n{\"batchWatermarkMs\":", "line 2: batch metadata is not valid JSON"},
		{"metadata wrong type", "offsets", "v1\n{\"batchWatermarkMs\":\"x\"}", "line 2: batch metadata is not valid JSON"},
		{"bad offset JSON", "offsets", "v1\n{}\n-\n{\"t\":{\"0\":", "line 4: offset of source 1 is not valid JSON"},
		{"empty commit", "commits", "", "file is empty"},
		{"commit bad JSON", "commits", "v1\nnope", "line 2: commit metadata is not valid JSON"},
		{"commit extra lines", "commits", "v1\n{}\n{}", "want 2 lines"},
		{"commit newer version", "commits", "v7\n{}", "maximum supported log version is v1, but encountered v7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir())
			path := filepath.Join(c.Dir(), tc.file, "4")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.file == "offsets" {
				_, _, err = c.ReadOffsets(4)
			} else {
				_, err = c.ReadCommit(4)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to name %s and say %q", err, path, tc.want)
			}
		})
	}
}

func TestSparkOffsetsFileParses(t *testing.T) {
	// Spark omits nothing we need; unknown metadata fields are ignored and a
	// trailing newline is tolerated.
	c := open(t, t.TempDir())
	content := "v1\n" + `{"batchWatermarkMs":5,"batchTimestampMs":1715681700000,"conf":{"spark.sql.streaming.multipleWatermarkPolicy":"min"},"extra":1}` + "\n" + `{"orders":{"0":1}}` + "\n-\n"
	os.WriteFile(filepath.Join(c.Dir(), "offsets", "0"), []byte(content), 0o644)
	meta, src, err := c.ReadOffsets(0)
	if err != nil {
		t.Fatal(err)
	}
	if meta.WatermarkMs != 5 || meta.TimestampMs != 1715681700000 || meta.Conf["spark.sql.streaming.multipleWatermarkPolicy"] != "min" {
		t.Errorf("meta = %+v", meta)
	}
	if !slices.Equal(src, []string{`{"orders":{"0":1}}`, ""}) {
		t.Errorf("sources = %q", src)
	}
}

func TestPurge(t *testing.T) {
	tests := []struct {
		name        string
		offsets     int64 // batches 0..offsets-1 have offsets files
		commits     int64 // batches 0..commits-1 have commit files
		min         int
		wantOffsets []int64
		wantCommits []int64
	}{
		// As Spark: purge(latest − min) deletes the ids below it.
		{"keep 3 before the latest", 10, 10, 3, []int64{6, 7, 8, 9}, []int64{6, 7, 8, 9}},
		{"keep more than exist", 5, 5, 100, []int64{0, 1, 2, 3, 4}, []int64{0, 1, 2, 3, 4}},
		{"uncommitted latest", 10, 9, 3, []int64{6, 7, 8, 9}, []int64{6, 7, 8}},
		{"min 1 keeps replay start", 6, 5, 1, []int64{4, 5}, []int64{4}},
		{"single batch", 1, 0, 1, []int64{0}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir())
			for i := int64(0); i < tc.offsets; i++ {
				if err := c.WriteOffsets(i, BatchMetadata{TimestampMs: i}, []string{"{}"}); err != nil {
					t.Fatal(err)
				}
			}
			for i := int64(0); i < tc.commits; i++ {
				if err := c.WriteCommit(i, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.WriteSourceInitial(0, `{"t":{"0":0}}`); err != nil {
				t.Fatal(err)
			}
			if err := c.Purge(tc.min); err != nil {
				t.Fatal(err)
			}
			gotO, _ := c.batchIDs("offsets")
			gotC, _ := c.batchIDs("commits")
			if !slices.Equal(gotO, tc.wantOffsets) || !slices.Equal(gotC, tc.wantCommits) {
				t.Errorf("after Purge(%d): offsets %v commits %v; want %v %v", tc.min, gotO, gotC, tc.wantOffsets, tc.wantCommits)
			}
			if _, ok, err := c.ReadSourceInitial(0); !ok || err != nil {
				t.Errorf("source metadata purged: %v %v", ok, err)
			}
		})
	}
	c := open(t, t.TempDir())
	if err := c.Purge(0); err == nil {
		t.Error("Purge(0) accepted")
	}
	if err := c.Purge(DefaultMinBatchesToRetain); err != nil {
		t.Errorf("Purge on empty checkpoint: %v", err)
	}
}

func TestRecover(t *testing.T) {
	tests := []struct {
		name       string
		offsets    []int64
		commits    []int64
		wantNext   int64
		wantReplay bool
		wantLag    bool
		wantErr    string
	}{
		{name: "new query"},
		{name: "all committed", offsets: []int64{0, 1, 2}, commits: []int64{0, 1, 2}, wantNext: 3},
		{name: "last uncommitted", offsets: []int64{0, 1, 2}, commits: []int64{0, 1}, wantNext: 2, wantReplay: true},
		{name: "first batch uncommitted", offsets: []int64{0}, wantNext: 0, wantReplay: true},
		{name: "commit lags by two", offsets: []int64{0, 1, 2, 3}, commits: []int64{0, 1}, wantNext: 3, wantReplay: true, wantLag: true},
		{name: "no commits", offsets: []int64{0, 1}, wantNext: 1, wantReplay: true, wantLag: true},
		{name: "purged history", offsets: []int64{7, 8}, commits: []int64{7, 8}, wantNext: 9},
		{name: "replay start missing", offsets: []int64{5}, commits: []int64{4}, wantErr: "offsets of batch 4"},
		{name: "commit ahead", offsets: []int64{0, 1}, commits: []int64{0, 1, 2}, wantErr: "ahead of offsets log"},
		{name: "commits without offsets", commits: []int64{0}, wantErr: "offsets log is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir())
			for _, id := range tc.offsets {
				if err := c.WriteOffsets(id, BatchMetadata{}, []string{"{}"}); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range tc.commits {
				if err := c.WriteCommit(id, 0); err != nil {
					t.Fatal(err)
				}
			}
			next, replay, err := c.Recover()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrCommitLag) {
					t.Fatalf("err = %v, want fatal error containing %q", err, tc.wantErr)
				}
				return
			}
			if tc.wantLag {
				var lw *LagWarning
				if !errors.Is(err, ErrCommitLag) || !errors.As(err, &lw) || lw.LatestOffsets != tc.wantNext {
					t.Errorf("err = %v, want LagWarning for batch %d", err, tc.wantNext)
				}
			} else if err != nil {
				t.Errorf("err = %v", err)
			}
			if next != tc.wantNext || replay != tc.wantReplay {
				t.Errorf("Recover() = %d, %v; want %d, %v", next, replay, tc.wantNext, tc.wantReplay)
			}
		})
	}
}

func TestSourceInitial(t *testing.T) {
	c := open(t, t.TempDir())
	if _, ok, err := c.ReadSourceInitial(0); ok || err != nil {
		t.Fatalf("absent: ok=%v err=%v", ok, err)
	}
	if err := c.WriteSourceInitial(1, `{"orders": {"0": 0, "1": 5}}`); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(c.Dir(), "sources", "1", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\x00v1\n" + `{"orders":{"0":0,"1":5}}`; string(raw) != want {
		t.Errorf("file = %q, want %q", raw, want)
	}
	js, ok, err := c.ReadSourceInitial(1)
	if err != nil || !ok || js != `{"orders":{"0":0,"1":5}}` {
		t.Errorf("ReadSourceInitial = %q, %v, %v", js, ok, err)
	}
	if err := c.WriteSourceInitial(1, `{"orders":{"0":0,"1":5}}`); err != nil {
		t.Errorf("identical re-write: %v", err)
	}
	if err := c.WriteSourceInitial(1, `{"orders":{"0":1}}`); !errors.Is(err, ErrConflict) {
		t.Errorf("second different write: err = %v, want ErrConflict", err)
	}
	if err := c.WriteSourceInitial(2, `not json`); err == nil {
		t.Error("invalid JSON accepted")
	}
	assertNoTemp(t, c.Dir())

	for _, tc := range []struct{ content, want, wantErr string }{
		{`{"t":{"0":3}}`, `{"t":{"0":3}}`, ""}, // Spark 2.1 format
		{"\x00v1\n{\"t\":{}}", `{"t":{}}`, ""},
		{"\x00v2\n{}", "", "maximum supported log version is v1, but encountered v2"},
		{"\x00v1", "", "no version line"},
		{"\x00v1\n{", "", "not valid JSON"},
		{"", "", "file is empty"},
	} {
		dir := filepath.Join(c.Dir(), "sources", "7")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "0"), []byte(tc.content), 0o644)
		js, ok, err := c.ReadSourceInitial(7)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), filepath.Join(dir, "0")) {
				t.Errorf("%q: err = %v, want %q naming the file", tc.content, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !ok || js != tc.want {
			t.Errorf("%q: got %q, %v, %v; want %q", tc.content, js, ok, err, tc.want)
		}
	}
}

func TestSize(t *testing.T) {
	c := open(t, t.TempDir())
	b0, n0, err := c.Size()
	if err != nil {
		t.Fatal(err)
	}
	// metadata + lock file.
	if n0 != 2 {
		t.Errorf("fresh checkpoint has %d files, want 2", n0)
	}
	if err := c.WriteCommit(0, 0); err != nil {
		t.Fatal(err)
	}
	b1, n1, err := c.Size()
	if err != nil {
		t.Fatal(err)
	}
	if n1 != n0+1 || b1 != b0+int64(len(encodeCommit(0))) {
		t.Errorf("after one commit: %d bytes %d files; want %d bytes %d files", b1, n1, b0+int64(len(encodeCommit(0))), n0+1)
	}
}

// TestOpenReadOnlyWhileLocked reads a checkpoint that a query holds:
// everything the owner wrote is visible, nothing can be written, and the
// lock is untouched.
func TestOpenReadOnlyWhileLocked(t *testing.T) {
	dir := t.TempDir()
	owner := open(t, dir)
	if err := owner.WriteSourceInitial(0, `{"t":{"0":0}}`); err != nil {
		t.Fatal(err)
	}
	for id := int64(0); id < 3; id++ {
		if err := owner.WriteOffsets(id, BatchMetadata{TimestampMs: 1000 + id}, []string{fmt.Sprintf(`{"t":{"0":%d}}`, 10*(id+1))}); err != nil {
			t.Fatal(err)
		}
		if id < 2 {
			if err := owner.WriteCommit(id, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.ID() != owner.ID() {
		t.Errorf("read-only id %q, owner's %q", ro.ID(), owner.ID())
	}
	if id, ok, err := ro.LatestCommit(); err != nil || !ok || id != 1 {
		t.Errorf("LatestCommit = %d, %v, %v; want 1", id, ok, err)
	}
	if id, ok, err := ro.LatestOffsets(); err != nil || !ok || id != 2 {
		t.Errorf("LatestOffsets = %d, %v, %v; want 2", id, ok, err)
	}
	meta, src, err := ro.ReadOffsets(1)
	if err != nil || meta.TimestampMs != 1001 || len(src) != 1 || src[0] != `{"t":{"0":20}}` {
		t.Errorf("ReadOffsets(1) = %+v, %q, %v", meta, src, err)
	}
	if js, ok, err := ro.ReadSourceInitial(0); err != nil || !ok || js != `{"t":{"0":0}}` {
		t.Errorf("ReadSourceInitial = %q, %v, %v", js, ok, err)
	}
	for name, err := range map[string]error{
		"offsets": ro.WriteOffsets(3, BatchMetadata{}, nil),
		"commit":  ro.WriteCommit(2, 0),
		"source":  ro.WriteSourceInitial(1, `{}`),
		"purge":   ro.Purge(1),
		"state":   ro.StateStore().PutIfAbsent(context.Background(), "0/0/1.delta", []byte("x")),
	} {
		if !errors.Is(err, ErrReadOnly) && !errors.Is(err, storage.ErrReadOnly) {
			t.Errorf("read-only %s write: %v", name, err)
		}
	}
	if _, ok, _ := owner.LatestCommit(); !ok || owner.HasCommit(2) {
		t.Error("a refused write reached the checkpoint")
	}
	// The owner still holds the lock: a second writer is refused.
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("Open after OpenReadOnly: %v, want ErrLocked", err)
	}
}

func TestOpenReadOnlyCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".offsets.tmp-1"), []byte("partial"), 0o644)
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ro.ID() != "" {
		t.Errorf("id %q of a checkpoint without metadata, want empty", ro.ID())
	}
	if _, ok, err := ro.LatestOffsets(); ok || err != nil {
		t.Errorf("LatestOffsets of an empty directory: %v, %v", ok, err)
	}
	if next, replay, err := ro.Recover(); next != 0 || replay || err != nil {
		t.Errorf("Recover = %d, %v, %v", next, replay, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != ".offsets.tmp-1" {
		t.Errorf("OpenReadOnly changed the directory: %v", ents)
	}
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for path, want := range map[string]string{filepath.Join(dir, "nope"): "no such file", file: "not a directory"} {
		if _, err := OpenReadOnly(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenReadOnly(%s) = %v, want %q", path, err, want)
		}
	}
	os.WriteFile(filepath.Join(dir, "metadata"), []byte("{"), 0o644)
	if _, err := OpenReadOnly(dir); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad metadata: %v", err)
	}
}

// TestStateStore writes operator state under state/ and checks that
// purging the logs keeps it and that Open clears a dead writer's temp file
// there.
func TestStateStore(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	ctx := context.Background()
	st := c.StateStore()
	if err := st.PutIfAbsent(ctx, "0/3/1.delta", []byte("state v1")); err != nil {
		t.Fatal(err)
	}
	if err := st.PutIfAbsent(ctx, "0/3/1.delta", []byte("again")); !errors.Is(err, storage.ErrExist) {
		t.Errorf("second write of a state version: %v, want ErrExist", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "state", "0", "3", "1.delta")); err != nil || string(got) != "state v1" {
		t.Errorf("state file %q, %v", got, err)
	}
	for id := int64(0); id < 5; id++ {
		if err := c.WriteOffsets(id, BatchMetadata{}, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteCommit(id, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Purge(1); err != nil {
		t.Fatal(err)
	}
	if ents, err := st.List(ctx, "0/3"); err != nil || len(ents) != 1 || ents[0].Name != "1.delta" {
		t.Errorf("state after purge: %+v, %v", ents, err)
	}
	c.Close()
	stale := filepath.Join(dir, "state", "0", "3", ".2.delta.tmp-77")
	os.WriteFile(stale, []byte("half"), 0o644)
	open(t, dir)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale state temp file survived Open: %v", err)
	}
}

// BenchmarkWriteBatch measures the checkpoint's per-batch writes: an
// offsets file and a commit, each atomic and durable.
func BenchmarkWriteBatch(b *testing.B) {
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	src := []string{`{"orders":{"0":1000,"1":2000,"2":3000,"3":4000}}`}
	b.ResetTimer()
	for i := range b.N {
		if err := c.WriteOffsets(int64(i), BatchMetadata{TimestampMs: int64(i)}, src); err != nil {
			b.Fatal(err)
		}
		if err := c.WriteCommit(int64(i), 0); err != nil {
			b.Fatal(err)
		}
	}
}

// A damaged commits/N used to count as committed because Recover looked at
// file names only: the batch was never replayed. The latest commit file is
// read and validated like offsets files, with Spark's texts.
func TestRecoverRefusesDamagedCommit(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "file is empty"},
		{"binary", "\x00\x01\x02\xff\xfe", "Log file was malformed: failed to read correct log version"},
		{"future version", "v99999\n{}", "maximum supported log version is v1, but encountered v99999"},
		{"no version", "{\"nextBatchWatermarkMs\":0}", "Log file was malformed"},
		{"bad JSON", "v1\n\x00garbage", "commit metadata is not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, t.TempDir())
			for id := int64(0); id <= 2; id++ {
				if err := c.WriteOffsets(id, BatchMetadata{}, []string{"{}"}); err != nil {
					t.Fatal(err)
				}
			}
			for id := int64(0); id <= 1; id++ {
				if err := c.WriteCommit(id, 0); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(c.Dir(), "commits", "2")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			next, replay, err := c.Recover()
			if err == nil || errors.Is(err, ErrCommitLag) {
				t.Fatalf("Recover() = %d, %v, %v; want an error for the damaged %s", next, replay, err, path)
			}
			for _, want := range []string{path, tc.want, "batch 2"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}
			}
			if _, _, err := c.LatestCommit(); err == nil {
				t.Error("LatestCommit accepted the damaged commit file")
			}
		})
	}
}

// Spark's texts for a log version this build cannot read, in offsets and
// commit files alike (HDFSMetadataLog's validateVersion).
func TestLogVersionTexts(t *testing.T) {
	c := open(t, t.TempDir())
	os.WriteFile(filepath.Join(c.Dir(), "offsets", "0"), []byte("v99999\n{}\n-"), 0o644)
	os.WriteFile(filepath.Join(c.Dir(), "commits", "0"), []byte("v99999\n{}"), 0o644)
	const want = "maximum supported log version is v1, but encountered v99999"
	if _, _, err := c.ReadOffsets(0); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("offsets: err = %v, want %q", err, want)
	}
	if _, err := c.ReadCommit(0); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("commits: err = %v, want %q", err, want)
	}
	if _, _, err := c.Recover(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Recover: err = %v, want %q", err, want)
	}
}

// Deleting metadata used to make Open mint a new query id over offsets and
// commits of the old one: sinks keyed on the id (Delta txn, Kafka
// transactional id) then wrote a pending replay twice. Open refuses.
func TestOpenRefusesLogsWithoutMetadata(t *testing.T) {
	for _, sub := range []string{"offsets", "commits", "sources"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, dir)
			id := c.ID()
			switch sub {
			case "offsets":
				c.WriteOffsets(0, BatchMetadata{}, []string{"{}"})
			case "commits":
				c.WriteOffsets(0, BatchMetadata{}, []string{"{}"})
				c.WriteCommit(0, 0)
				os.Remove(filepath.Join(dir, "offsets", "0"))
			case "sources":
				c.WriteSourceInitial(0, `{"t":{"0":0}}`)
			}
			c.Close()
			if err := os.Remove(filepath.Join(dir, "metadata")); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil {
				t.Fatal("Open accepted a checkpoint whose metadata is missing while its logs exist")
			}
			for _, want := range []string{filepath.Join(dir, "metadata"), sub + "/", "restore", "new checkpoint"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "metadata")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open wrote a new metadata file: %v", err)
			}
			if _, err := QueryID(dir); err == nil {
				t.Error("QueryID minted an id for the damaged checkpoint")
			}
			// Restoring the file makes it usable again, with the old id.
			os.WriteFile(filepath.Join(dir, "metadata"), []byte(`{"id":"`+id+`"}`), 0o644)
			if got := open(t, dir).ID(); got != id {
				t.Errorf("id after restore = %q, want %q", got, id)
			}
		})
	}
	// A checkpoint with empty log directories (a query that never planned
	// a batch) still gets a new id.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "offsets"), 0o755)
	os.MkdirAll(filepath.Join(dir, "commits"), 0o755)
	os.WriteFile(filepath.Join(dir, "offsets", ".0.tmp-x"), []byte("partial"), 0o644)
	if id := open(t, dir).ID(); !uuidV4.MatchString(id) {
		t.Errorf("id %q", id)
	}
}

// listCounter counts a store's List calls.
type listCounter struct {
	storage.Store
	lists atomic.Int32
}

func (s *listCounter) List(ctx context.Context, dir string) ([]storage.Entry, error) {
	s.lists.Add(1)
	return s.Store.List(ctx, dir)
}

// TestPurgeEveryBatchListsOnce runs the engine's order per batch (offsets,
// purge, commit) for 40 batches: each log is listed once, by the first
// Purge, and after every batch the logs on disk hold exactly the retained
// batches; a reopened checkpoint purges what is left from before.
func TestPurgeEveryBatchListsOnce(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	lc := &listCounter{Store: c.store}
	c.store = lc
	const min = 5
	for id := int64(0); id < 40; id++ {
		if err := c.WriteOffsets(id, BatchMetadata{TimestampMs: id}, []string{"{}"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Purge(min); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteCommit(id, 0); err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i := max(0, id-min); i <= id; i++ {
			want = append(want, i)
		}
		lists := lc.lists.Load()
		gotO, _ := c.batchIDs("offsets")
		gotC, _ := c.batchIDs("commits")
		lc.lists.Store(lists) // the checks' own listings do not count
		if !slices.Equal(gotO, want) || !slices.Equal(gotC, want) {
			t.Fatalf("after batch %d: offsets %v commits %v, want %v in both", id, gotO, gotC, want)
		}
	}
	if n := lc.lists.Load(); n != 2 {
		t.Errorf("40 batches listed the logs %d times, want 2 (each log once)", n)
	}
	// Files the purge does not know about (left by an earlier run, or
	// back after a crash because purges are not fsynced) go at the next
	// run's first purge.
	if err := os.WriteFile(filepath.Join(dir, "offsets", "3"), []byte("v1\n{}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir)
	if err := c.WriteOffsets(40, BatchMetadata{TimestampMs: 40}, []string{"{}"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Purge(min); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.batchIDs("offsets"); !slices.Equal(got, []int64{35, 36, 37, 38, 39, 40}) {
		t.Errorf("after reopening: offsets %v, want 35..40", got)
	}
}

// gatedStore holds the write of one file until another has been written.
type gatedStore struct {
	storage.Store
	hold, until string
	entered     chan struct{} // closed when the write of hold starts
	written     chan struct{} // closed when until is written
}

func (s *gatedStore) PutIfAbsent(ctx context.Context, name string, data []byte) error {
	if name == s.hold {
		close(s.entered)
		select {
		case <-s.written:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s was not written while %s was in flight", s.until, s.hold)
		}
	}
	err := s.Store.PutIfAbsent(ctx, name, data)
	if name == s.until {
		close(s.written)
	}
	return err
}

// TestLogWritesOverlap: the engine writes commits/N and offsets/N+1 at the
// same time (its pipelined commit); neither waits for the other's I/O, and
// Close waits for a write in flight.
func TestLogWritesOverlap(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	for id := int64(0); id <= 1; id++ {
		if err := c.WriteOffsets(id, BatchMetadata{TimestampMs: id}, []string{"{}"}); err != nil {
			t.Fatal(err)
		}
	}
	gs := &gatedStore{Store: c.store, hold: "commits/1", until: "offsets/2", entered: make(chan struct{}), written: make(chan struct{})}
	c.store = gs
	commitErr := make(chan error, 1)
	go func() { commitErr <- c.WriteCommit(1, 0) }()
	if err := c.WriteOffsets(2, BatchMetadata{TimestampMs: 2}, []string{"{}"}); err != nil {
		t.Fatal(err)
	}
	if err := <-commitErr; err != nil {
		t.Fatal(err)
	}
	// Close waits for a write in flight (held in the store until the test
	// lets it go); a write after Close fails with ErrClosed.
	gs.hold, gs.until, gs.entered, gs.written = "commits/2", "offsets/3", make(chan struct{}), make(chan struct{})
	started := make(chan error, 1)
	go func() { started <- c.WriteCommit(2, 0) }()
	<-gs.entered
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a log write was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(gs.written)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := c.WriteCommit(3, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
	for _, f := range []string{"offsets/2", "commits/1", "commits/2"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestRecoverGapsAndPurge: asynchronous progress tracking logs only some
// batches. RecoverGaps replays the newest logged batch from the end of
// the one logged before it (Spark's getPrevBatchFromStorage) where
// Recover refuses, naming the option; Purge never deletes that previous
// batch, however far back it is.
func TestRecoverGapsAndPurge(t *testing.T) {
	c := open(t, t.TempDir())
	for _, id := range []int64{0, 40, 300} {
		if err := c.WriteOffsets(id, BatchMetadata{TimestampMs: id}, []string{"{}"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{0, 40} {
		if err := c.WriteCommit(id, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Recover(); err == nil || !strings.Contains(err.Error(), "asyncProgressTrackingEnabled") {
		t.Fatalf("Recover over a gap: %v, want a refusal naming asyncProgressTrackingEnabled", err)
	}
	next, replay, prev, err := c.RecoverGaps()
	if err != nil || next != 300 || !replay || prev != 40 {
		t.Fatalf("RecoverGaps: next %d replay %v prev %d err %v; want 300, true, 40", next, replay, prev, err)
	}
	if err := c.Purge(100); err != nil {
		t.Fatal(err)
	}
	if ids, _ := c.batchIDs(offsetsDir); fmt.Sprint(ids) != "[40 300]" {
		t.Fatalf("offsets after purge %v, want [40 300] (batch 40 is where 300's replay starts)", ids)
	}
	if err := c.WriteCommit(300, 0); err != nil {
		t.Fatal(err)
	}
	if next, replay, prev, err := c.RecoverGaps(); err != nil || next != 301 || replay || prev != 300 {
		t.Fatalf("RecoverGaps after commits/300: next %d replay %v prev %d err %v; want 301, false, 300", next, replay, prev, err)
	}
}

// TestPurgedLogFilesAreWrittenAgain runs the engine's order per batch
// (offsets, purge, commit): on the local disk the purge keeps a few of the
// purged files (storage.Retire) for the next batches' logs to be written
// into, every retained batch reads back as written, and Close leaves no
// kept file behind. (Which file a batch was written into is not checked:
// ext4 hands a removed file's inode number to the next new file too.)
func TestPurgedLogFilesAreWrittenAgain(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	const min, batches = 3, 30
	kept := func(sub string) int {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if storage.IsTemp(e.Name()) {
				n++
			}
		}
		return n
	}
	for id := int64(0); id < batches; id++ {
		if err := c.WriteOffsets(id, BatchMetadata{TimestampMs: id}, []string{`{"t":{"0":` + strconv.FormatInt(id*1000, 10) + `}}`}); err != nil {
			t.Fatal(err)
		}
		if err := c.Purge(min); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteCommit(id, id); err != nil {
			t.Fatal(err)
		}
		if id > min {
			for _, sub := range []string{"offsets", "commits"} {
				if n := kept(sub); n < 1 || n > storage.MaxSpares {
					t.Fatalf("after batch %d: %d purged files kept in %s, want 1 to %d", id, n, sub, storage.MaxSpares)
				}
			}
		}
	}
	for id := int64(batches - 1 - min); id < batches; id++ {
		meta, offs, err := c.ReadOffsets(id)
		if err != nil || meta.TimestampMs != id || offs[0] != `{"t":{"0":`+strconv.FormatInt(id*1000, 10)+`}}` {
			t.Errorf("offsets/%d: %+v %q %v", id, meta, offs, err)
		}
		if wm, err := c.ReadCommit(id); err != nil || wm != id {
			t.Errorf("commits/%d: %d %v", id, wm, err)
		}
	}
	if got, _ := c.batchIDs("offsets"); len(got) != min+1 {
		t.Errorf("offsets %v, want the last %d", got, min+1)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoTemp(t, dir)
}
