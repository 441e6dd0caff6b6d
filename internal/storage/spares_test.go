package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func statOf(t *testing.T, l *Local, name string) os.FileInfo {
	t.Helper()
	p, err := l.Path(name)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func names(t *testing.T, l *Local, dir string) []string {
	t.Helper()
	ents, err := l.List(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	return out
}

// TestRetiredFileIsWrittenAgain: a retired file leaves its name at once,
// is invisible to listings, and is written again by a later write in its
// directory — only by one that starts after a directory fsync made its
// retirement durable, with exactly the new content (shorter than the old).
func TestRetiredFileIsWrittenAgain(t *testing.T) {
	l := newLocal(t)
	old := bytes.Repeat([]byte("old content "), 100)
	for _, n := range []string{"log/1", "log/2"} {
		if err := l.PutIfAbsent(ctx, n, old); err != nil {
			t.Fatal(err)
		}
	}
	first := statOf(t, l, "log/1")
	if err := Retire(ctx, l, "log/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, "log/1"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log/1 after Retire: %v, want not found", err)
	}
	if got := names(t, l, "log"); len(got) != 1 || got[0] != "2" {
		t.Fatalf("listing after Retire: %v, want [2]", got)
	}
	dir := filepath.Join(l.Root(), "log")
	if n := len(tempFiles(t, dir)); n != 1 {
		t.Fatalf("%d retired files kept, want 1", n)
	}
	// The retirement's rename is not durable yet: this write must not
	// reuse the file; its directory fsync makes the rename durable.
	if err := l.PutIfAbsent(ctx, "log/3", []byte("three")); err != nil {
		t.Fatal(err)
	}
	if os.SameFile(first, statOf(t, l, "log/3")) {
		t.Fatal("log/3 was written into the retired file before its directory was fsynced")
	}
	if err := l.PutIfAbsent(ctx, "log/4", []byte("four")); err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(first, statOf(t, l, "log/4")) {
		t.Error("log/4 is a new file, want the retired log/1 written again")
	}
	if got, err := l.Get(ctx, "log/4"); err != nil || string(got) != "four" {
		t.Errorf("log/4 = %q, %v; want four", got, err)
	}
	if n := len(tempFiles(t, dir)); n != 0 {
		t.Errorf("%d temporary files left, want 0", n)
	}
	if got := names(t, l, "log"); len(got) != 3 {
		t.Errorf("listing: %v, want [2 3 4]", got)
	}
}

// TestRetireKeepsFewAndDropSpares: a directory keeps at most MaxSpares
// retired files, the rest are removed; DropSpares removes the kept ones.
func TestRetireKeepsFewAndDropSpares(t *testing.T) {
	l := newLocal(t)
	var all []string
	for i := range 10 {
		n := "log/" + strconv.Itoa(i)
		all = append(all, n)
		if err := l.PutIfAbsent(ctx, n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Retire(ctx, l, all...); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(l.Root(), "log")
	if ents, _ := os.ReadDir(dir); len(ents) != MaxSpares {
		t.Fatalf("%d files in the directory after retiring 10, want %d kept", len(ents), MaxSpares)
	}
	if err := Retire(ctx, l, "log/0", "log/99"); err != nil {
		t.Errorf("retiring missing files: %v", err)
	}
	if err := DropSpares(l); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left after DropSpares, want 0", len(ents))
	}
	if err := l.PutIfAbsent(ctx, "log/10", []byte("ten")); err != nil {
		t.Fatalf("write after DropSpares: %v", err)
	}
}

// TestSpareWriteNeverReplaces: a write into a retired file keeps
// put-if-absent's rule (an existing name wins, the file is cleaned up), and
// a retired file that vanished is replaced by a new one.
func TestSpareWriteNeverReplaces(t *testing.T) {
	l := newLocal(t)
	for _, n := range []string{"log/1", "log/2", "log/3"} {
		if err := l.PutIfAbsent(ctx, n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Retire(ctx, l, "log/1", "log/2"); err != nil {
		t.Fatal(err)
	}
	if err := l.PutIfAbsent(ctx, "log/4", []byte("4")); err != nil { // fsyncs the directory
		t.Fatal(err)
	}
	dir := filepath.Join(l.Root(), "log")
	if n := len(tempFiles(t, dir)); n != 2 {
		t.Fatalf("%d retired files, want 2", n)
	}
	if err := l.PutIfAbsent(ctx, "log/3", []byte("other")); !errors.Is(err, ErrExist) {
		t.Fatalf("PutIfAbsent over log/3 into a retired file: %v, want ErrExist", err)
	}
	if got, _ := l.Get(ctx, "log/3"); string(got) != "log/3" {
		t.Errorf("log/3 = %q after a refused write", got)
	}
	left := tempFiles(t, dir)
	if len(left) != 1 {
		t.Fatalf("%d retired files after the refused write, want 1", len(left))
	}
	if err := os.Remove(left[0]); err != nil { // gone behind the store's back
		t.Fatal(err)
	}
	if err := l.PutIfAbsent(ctx, "log/5", []byte("five")); err != nil {
		t.Fatalf("write after its retired file vanished: %v", err)
	}
	if got, _ := l.Get(ctx, "log/5"); string(got) != "five" {
		t.Errorf("log/5 = %q", got)
	}
}

// TestRetireOnOtherStoresDeletes: stores that cannot keep files delete.
func TestRetireOnOtherStoresDeletes(t *testing.T) {
	l := newLocal(t)
	sub, err := Sub(l, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.PutIfAbsent(ctx, "1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := Retire(ctx, sub, "1"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(l.Root(), "a")); len(ents) != 0 {
		t.Errorf("%d files left, want 0", len(ents))
	}
	if err := DropSpares(sub); err != nil {
		t.Error(err)
	}
}

// TestFillSparesPreparesFiles: FillSpares creates empty files a write
// uses at once (they never held anything), up to n and MaxSpares.
func TestFillSparesPreparesFiles(t *testing.T) {
	l := newLocal(t)
	if err := l.PutIfAbsent(ctx, "log/0", []byte("zero")); err != nil {
		t.Fatal(err)
	}
	if err := FillSpares(ctx, l, "log", 2); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(l.Root(), "log")
	kept := tempFiles(t, dir)
	if len(kept) != 2 {
		t.Fatalf("%d files prepared, want 2", len(kept))
	}
	var before []os.FileInfo
	for _, p := range kept {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, fi)
	}
	if err := l.PutIfAbsent(ctx, "log/1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	after := statOf(t, l, "log/1")
	if !os.SameFile(before[0], after) && !os.SameFile(before[1], after) {
		t.Error("log/1 is a new file, want a prepared one")
	}
	if got, _ := l.Get(ctx, "log/1"); string(got) != "one" {
		t.Errorf("log/1 = %q", got)
	}
	if err := FillSpares(ctx, l, "log", 99); err != nil {
		t.Fatal(err)
	}
	if n := len(tempFiles(t, dir)); n != MaxSpares {
		t.Errorf("%d files prepared, want at most %d", n, MaxSpares)
	}
	if got := names(t, l, "log"); len(got) != 2 {
		t.Errorf("listing %v, want [0 1]", got)
	}
	if err := DropSpares(l); err != nil {
		t.Fatal(err)
	}
	if n := len(tempFiles(t, dir)); n != 0 {
		t.Errorf("%d files left after DropSpares", n)
	}
}
