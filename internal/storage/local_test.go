package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a writer process that dies
// mid-write (see TestMain and TestCrashMidWriteLeavesNothingVisible).
const helperEnv = "SLUICE_STORAGE_HELPER_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(helperEnv); root != "" {
		os.Exit(helperMain(root))
	}
	os.Exit(m.Run())
}

// helperMain starts writing "log/7", writes half of it, says so and waits
// to be killed.
func helperMain(root string) int {
	l, err := NewLocal(root)
	if err != nil {
		fmt.Println("error:", err)
		return 3
	}
	w, err := l.Create(context.Background(), "log/7", IfAbsent)
	if err != nil {
		fmt.Println("error:", err)
		return 3
	}
	if _, err := w.Write(bytes.Repeat([]byte("half"), 1<<12)); err != nil {
		fmt.Println("error:", err)
		return 3
	}
	fmt.Println("writing")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

func newLocal(t *testing.T) *Local {
	t.Helper()
	l, err := NewLocal(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var ctx = context.Background()

// tempFiles lists the temporary files left under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && IsTemp(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestPutIfAbsentRaceExactlyOneWins(t *testing.T) {
	l := newLocal(t)
	const writers = 64
	for round := range 5 {
		name := fmt.Sprintf("offsets/%d", round)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = l.PutIfAbsent(ctx, name, []byte(fmt.Sprintf("writer %d", i)))
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both won", round, winner, i)
				}
				winner = i
			case !errors.Is(err, ErrExist) || !errors.Is(err, fs.ErrExist):
				t.Fatalf("round %d: loser %d got %v, want an error wrapping ErrExist", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won", round)
		}
		got, err := l.Get(ctx, name)
		if err != nil || string(got) != fmt.Sprintf("writer %d", winner) {
			t.Fatalf("round %d: content %q (%v), want the winner's (%d)", round, got, err, winner)
		}
	}
	if tmp := tempFiles(t, l.Root()); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestWriteOnceIdempotentAndConflict(t *testing.T) {
	l := newLocal(t)
	if err := WriteOnce(ctx, l, "commits/3", []byte("v1\n{}")); err != nil {
		t.Fatal(err)
	}
	if err := WriteOnce(ctx, l, "commits/3", []byte("v1\n{}")); err != nil {
		t.Errorf("identical re-write: %v", err)
	}
	err := WriteOnce(ctx, l, "commits/3", []byte("v1\n{\"x\":1}"))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "commits/3") {
		t.Errorf("conflicting re-write: %v, want ErrConflict naming commits/3", err)
	}
	if got, _ := l.Get(ctx, "commits/3"); string(got) != "v1\n{}" {
		t.Errorf("conflicting write changed the file: %q", got)
	}
}

// TestPutReplacesAtomically has readers racing a writer that keeps
// replacing a file with one of two large contents: every read sees one of
// them whole.
func TestPutReplacesAtomically(t *testing.T) {
	l := newLocal(t)
	a, b := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1<<20+7)
	if err := l.Put(ctx, "_last_checkpoint", a); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad sync.Once
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := l.Get(ctx, "_last_checkpoint")
				if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
					bad.Do(func() { t.Errorf("read %d bytes (%v): a torn or missing file", len(got), err) })
				}
			}
		}()
	}
	for i := range 50 {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := l.Put(ctx, "_last_checkpoint", data); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestCrashMidWriteLeavesNothingVisible kills a writer process half-way
// through a file: the name never appears, only a temporary file that
// List hides and RemoveTemp clears; a later writer takes the name.
func TestCrashMidWriteLeavesNothingVisible(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+root)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "writing" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	l, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, "log/7"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Get after the crash: %v, want ErrNotExist", err)
	}
	ents, err := l.List(ctx, "log")
	if err != nil || len(ents) != 0 {
		t.Fatalf("List after the crash: %v, %v; want nothing", ents, err)
	}
	tmp := tempFiles(t, root)
	if len(tmp) != 1 {
		t.Fatalf("temporary files %v, want the dead writer's one", tmp)
	}
	if err := l.RemoveTemp(); err != nil {
		t.Fatal(err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("RemoveTemp left %v", tmp)
	}
	if err := l.PutIfAbsent(ctx, "log/7", []byte("whole")); err != nil {
		t.Fatalf("the name is still free after the crash: %v", err)
	}
}

// faultFS is the real OS with injectable failures.
type faultFS struct {
	realFS
	syncDir    func(dir string) error
	link       func(oldname, newname string) error
	renameNR   func(oldname, newname string) error
	createTemp func(dir, pattern string) (tempFile, error)
}

func (f *faultFS) SyncDir(dir string) error {
	if f.syncDir != nil {
		return f.syncDir(dir)
	}
	return f.realFS.SyncDir(dir)
}

func (f *faultFS) Link(o, n string) error {
	if f.link != nil {
		return f.link(o, n)
	}
	return f.realFS.Link(o, n)
}

func (f *faultFS) RenameNoReplace(o, n string) error {
	if f.renameNR != nil {
		return f.renameNR(o, n)
	}
	return f.realFS.RenameNoReplace(o, n)
}

func (f *faultFS) CreateTemp(dir, pattern string) (tempFile, error) {
	if f.createTemp != nil {
		return f.createTemp(dir, pattern)
	}
	return f.realFS.CreateTemp(dir, pattern)
}

// badFile fails its writes after n bytes, or its fsync.
type badFile struct {
	tempFile
	left     int
	failSync bool
}

func (b *badFile) Write(p []byte) (int, error) {
	if len(p) > b.left {
		n, _ := b.tempFile.Write(p[:b.left])
		b.left = 0
		return n, syscall.ENOSPC
	}
	b.left -= len(p)
	return b.tempFile.Write(p)
}

func (b *badFile) Sync() error {
	if b.failSync {
		return syscall.EIO
	}
	return b.tempFile.Sync()
}

func faulty(t *testing.T, f *faultFS) *Local {
	t.Helper()
	l := newLocal(t)
	l.fs = f
	return l
}

func TestDirectoryFsyncErrorsPropagate(t *testing.T) {
	eio := fmt.Errorf("fsync: %w", syscall.EIO)
	failing := func(string) error { return eio }
	for _, tc := range []struct {
		name string
		op   func(l *Local) error
	}{
		{"put-if-absent", func(l *Local) error { return l.PutIfAbsent(ctx, "a/b", []byte("x")) }},
		{"put", func(l *Local) error { return l.Put(ctx, "a/b", []byte("x")) }},
		{"write-once", func(l *Local) error { return WriteOnce(ctx, l, "a/b", []byte("x")) }},
		{"delete", func(l *Local) error {
			if err := l.fs.(*faultFS).realFS.Mkdir(filepath.Join(l.Root()), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(l.Root(), "f"), nil, 0o644); err != nil {
				return err
			}
			return l.Delete(ctx, "f")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := faulty(t, &faultFS{syncDir: failing})
			if err := tc.op(l); !errors.Is(err, syscall.EIO) {
				t.Errorf("err = %v, want the directory fsync's EIO", err)
			}
		})
	}
	// Only the final directory fsync fails: the file is in place but the
	// caller hears that it may not be durable (an unknown outcome).
	l := faulty(t, &faultFS{})
	if err := l.Put(ctx, "a/warm", nil); err != nil { // directories exist now
		t.Fatal(err)
	}
	l.fs.(*faultFS).syncDir = failing
	err := l.PutIfAbsent(ctx, "a/b", []byte("x"))
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrExist) || !strings.Contains(err.Error(), "may not survive a crash") {
		t.Errorf("err = %v", err)
	}
}

func TestFailedWriteNeverBecomesVisible(t *testing.T) {
	for _, tc := range []struct {
		name string
		file func(tempFile) tempFile
		want error
	}{
		{"disk full mid-write", func(f tempFile) tempFile { return &badFile{tempFile: f, left: 10} }, syscall.ENOSPC},
		{"fsync fails", func(f tempFile) tempFile { return &badFile{tempFile: f, left: 1 << 30, failSync: true} }, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultFS{}
			f.createTemp = func(dir, pattern string) (tempFile, error) {
				tf, err := f.realFS.CreateTemp(dir, pattern)
				if err != nil {
					return nil, err
				}
				return tc.file(tf), nil
			}
			l := faulty(t, f)
			for _, mode := range []Mode{IfAbsent, Replace} {
				w, err := l.Create(ctx, "x/y", mode)
				if err != nil {
					t.Fatal(err)
				}
				_, werr := w.Write([]byte("0123456789abcdef"))
				err = w.Commit()
				if !errors.Is(werr, tc.want) && !errors.Is(err, tc.want) {
					t.Errorf("%v: write %v, commit %v; want %v", mode, werr, err, tc.want)
				}
				if err == nil {
					t.Errorf("%v: commit succeeded after a failed write", mode)
				}
				if _, err := l.Get(ctx, "x/y"); !errors.Is(err, ErrNotExist) {
					t.Errorf("%v: the file is visible after a failed write: %v", mode, err)
				}
			}
			if tmp := tempFiles(t, l.Root()); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

func TestNoHardLinksFallsBackToRenameNoReplace(t *testing.T) {
	noLinks := func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
	l := faulty(t, &faultFS{link: noLinks})
	if err := l.PutIfAbsent(ctx, "v/1", []byte("first")); err != nil {
		t.Skipf("renameat2(RENAME_NOREPLACE) unavailable here: %v", err)
	}
	if err := l.PutIfAbsent(ctx, "v/1", []byte("second")); !errors.Is(err, ErrExist) {
		t.Errorf("second put: %v, want ErrExist", err)
	}
	if got, _ := l.Get(ctx, "v/1"); string(got) != "first" {
		t.Errorf("content %q", got)
	}
	if tmp := tempFiles(t, l.Root()); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	// Neither hard links nor an exclusive rename: a clear error, no file.
	l = faulty(t, &faultFS{link: noLinks, renameNR: func(o, n string) error { return fmt.Errorf("nope: %w", errors.ErrUnsupported) }})
	err := l.PutIfAbsent(ctx, "v/1", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "neither hard links") {
		t.Errorf("err = %v", err)
	}
	if _, err := l.Get(ctx, "v/1"); !errors.Is(err, ErrNotExist) {
		t.Errorf("file exists after the failure: %v", err)
	}
}

func TestNewDirectoriesAreSynced(t *testing.T) {
	var synced []string
	var mu sync.Mutex
	f := &faultFS{}
	f.syncDir = func(dir string) error {
		mu.Lock()
		synced = append(synced, dir)
		mu.Unlock()
		return f.realFS.SyncDir(dir)
	}
	l := faulty(t, f)
	if err := l.PutIfAbsent(ctx, "state/0/1/5.delta", []byte("x")); err != nil {
		t.Fatal(err)
	}
	r := l.Root()
	for _, want := range []string{filepath.Dir(r), r, filepath.Join(r, "state"), filepath.Join(r, "state", "0"), filepath.Join(r, "state", "0", "1")} {
		found := false
		for _, s := range synced {
			found = found || s == want
		}
		if !found {
			t.Errorf("%s was not fsynced (synced: %v)", want, synced)
		}
	}
}

func TestListGetDelete(t *testing.T) {
	l := newLocal(t)
	if ents, err := l.List(ctx, "offsets"); err != nil || ents != nil {
		t.Fatalf("missing dir: %v, %v", ents, err)
	}
	for _, n := range []string{"offsets/10", "offsets/9", "offsets/sub/x", "metadata"} {
		if err := l.PutIfAbsent(ctx, n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	// A writer in progress is not listed.
	w, err := l.Create(ctx, "offsets/11", IfAbsent)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	ents, err := l.List(ctx, "offsets")
	want := []Entry{{Name: "10", Size: 10}, {Name: "9", Size: 9}, {Name: "sub", IsDir: true}}
	for i := range ents { // modification times are checked in the conformance test
		ents[i].ModTime = time.Time{}
	}
	if err != nil || !reflect.DeepEqual(ents, want) {
		t.Errorf("List = %+v, %v; want %+v", ents, err, want)
	}
	root, err := l.List(ctx, "")
	if err != nil || len(root) != 2 || root[0].Name != "metadata" || root[1].Name != "offsets" {
		t.Errorf("List(root) = %+v, %v", root, err)
	}
	if got, err := l.Get(ctx, "offsets/9"); err != nil || string(got) != "offsets/9" {
		t.Errorf("Get = %q, %v", got, err)
	}
	if err := l.Delete(ctx, "offsets/9", "offsets/404", "metadata"); err != nil {
		t.Errorf("Delete: %v", err)
	}
	if _, err := l.Get(ctx, "offsets/9"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("deleted file: %v", err)
	}
	w.Abort()
	if err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if tmp := tempFiles(t, l.Root()); len(tmp) > 0 {
		t.Errorf("Abort left %v", tmp)
	}
}

func TestInvalidNames(t *testing.T) {
	l := newLocal(t)
	for _, n := range []string{"", ".", "..", "../x", "/abs", "a//b", "a/./b", "a/../b", "a/"} {
		if err := l.PutIfAbsent(ctx, n, nil); err == nil || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("PutIfAbsent(%q) = %v, want an invalid-name error", n, err)
		}
		if _, err := l.Get(ctx, n); err == nil {
			t.Errorf("Get(%q) succeeded", n)
		}
	}
	if _, err := l.List(ctx, "../x"); err == nil {
		t.Error("List(../x) succeeded")
	}
}

func TestSubAndReadOnly(t *testing.T) {
	l := newLocal(t)
	st, err := Sub(l, "state")
	if err != nil {
		t.Fatal(err)
	}
	op, err := Sub(st, "0/3")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.PutIfAbsent(ctx, "1.delta", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Get(ctx, "state/0/3/1.delta"); err != nil || string(got) != "v" {
		t.Errorf("through the root: %q, %v", got, err)
	}
	if ents, err := st.List(ctx, "0"); err != nil || len(ents) != 1 || ents[0] != (Entry{Name: "3", IsDir: true}) {
		t.Errorf("Sub List = %+v, %v", ents, err)
	}
	if ents, err := op.List(ctx, ""); err != nil || len(ents) != 1 || ents[0].Name != "1.delta" {
		t.Errorf("Sub List(root) = %+v, %v", ents, err)
	}
	if _, err := Sub(l, "../x"); err == nil {
		t.Error("Sub(../x) succeeded")
	}
	if err := op.PutIfAbsent(ctx, "../../../escape", nil); err == nil {
		t.Error("a sub-store name escaped its directory")
	}

	ro := ReadOnly(op)
	if got, err := ro.Get(ctx, "1.delta"); err != nil || string(got) != "v" {
		t.Errorf("read-only Get = %q, %v", got, err)
	}
	for name, err := range map[string]error{
		"put-if-absent": ro.PutIfAbsent(ctx, "2.delta", nil),
		"put":           ro.Put(ctx, "1.delta", nil),
		"delete":        ro.Delete(ctx, "1.delta"),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s: %v", name, err)
		}
	}
	if _, err := ro.Create(ctx, "x", Replace); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only create: %v", err)
	}
	if _, err := l.Get(ctx, "state/0/3/1.delta"); err != nil {
		t.Errorf("a refused delete removed the file: %v", err)
	}
}

func TestNewUUID(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		u := NewUUID()
		if !v4.MatchString(u) || seen[u] {
			t.Fatalf("NewUUID() = %q (repeat: %v)", u, seen[u])
		}
		seen[u] = true
	}
}

// TestDeleteUnsyncedSkipsDirectoryFsync checks Delete fsyncs each
// directory that lost an entry and DeleteUnsynced (directly and through a
// Sub) removes the same way without any fsync.
func TestDeleteUnsyncedSkipsDirectoryFsync(t *testing.T) {
	var synced atomic.Int32
	f := &faultFS{}
	f.syncDir = func(dir string) error {
		synced.Add(1)
		return f.realFS.SyncDir(dir)
	}
	l := faulty(t, f)
	for _, n := range []string{"a/1", "a/2", "b/1", "c/1", "c/2"} {
		if err := l.PutIfAbsent(ctx, n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	synced.Store(0)
	if err := l.Delete(ctx, "a/1", "a/2", "b/1"); err != nil {
		t.Fatal(err)
	}
	if n := synced.Load(); n != 2 {
		t.Errorf("Delete of 3 files in 2 directories fsynced %d times, want 2", n)
	}
	synced.Store(0)
	sub, err := Sub(l, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := DeleteUnsynced(ctx, sub, "1", "2", "3"); err != nil {
		t.Fatal(err)
	}
	if n := synced.Load(); n != 0 {
		t.Errorf("DeleteUnsynced fsynced %d times, want 0", n)
	}
	for _, n := range []string{"a/1", "a/2", "b/1", "c/1", "c/2"} {
		if _, err := l.Get(ctx, n); !errors.Is(err, ErrNotExist) {
			t.Errorf("%s still readable after its deletion: %v", n, err)
		}
	}
}
