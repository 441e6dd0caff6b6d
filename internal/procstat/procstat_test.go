package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestOwnProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	keep := make([]byte, 32<<20)
	for i := range keep {
		keep[i] = byte(i)
	}
	rss, hwm, err := Memory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 32<<20 || hwm < rss {
		t.Fatalf("rss %d, hwm %d: want rss ≥ 32 MiB (a buffer was just touched) and hwm ≥ rss", rss, hwm)
	}
	c0, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
	}
	c1, err := CPU(os.Getpid())
	if err != nil || c1 <= c0 {
		t.Fatalf("CPU went from %s to %s (%v) over 200 ms of spinning", c0, c1, err)
	}
	runtime.KeepAlive(keep)
	if _, _, err := Memory(-1); err == nil {
		t.Fatal("Memory(-1) succeeded")
	}
	// The test binary's own code is mapped from its file: some of it is
	// resident, and none of the 32 MiB anonymous buffer counts.
	file, err := FileResident(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if file <= 0 || file >= rss {
		t.Fatalf("file-backed resident %d of rss %d: want some, and less than the whole (32 MiB are anonymous)", file, rss)
	}
	if _, err := FileResident(-1); err == nil {
		t.Fatal("FileResident(-1) succeeded")
	}
}

func TestFDs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	n0, err := FDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n1, err := FDs(os.Getpid()); err != nil || n1 != n0+1 {
		t.Errorf("FDs %d → %d (%v) after opening a file", n0, n1, err)
	}
	if _, err := FDs(-1); err == nil {
		t.Error("FDs(-1) succeeded")
	}
}

// TestReadThreadCPU checks the scheduler's per-thread accounting: a spin
// of 50 ms shows as at least 40 ms more CPU (CPU's ticks could read 0 or
// 100 ms for it), the threads of the first reading are all in the second,
// and a thread that is gone is noticed by Covers.
func TestReadThreadCPU(t *testing.T) {
	c0, err := ReadThreadCPU(os.Getpid())
	if err != nil {
		t.Skipf("no schedstat here: %v", err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	c1, err := ReadThreadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := c1.Total - c0.Total; d < 40*time.Millisecond || d > time.Second {
		t.Fatalf("50 ms of spinning read as %s of CPU", d)
	}
	if !c1.Covers(c0) {
		t.Fatalf("threads %v of the first reading are not all in the second %v", c0.Threads, c1.Threads)
	}
	gone := ThreadCPU{Threads: map[int]time.Duration{-1: 0}}
	if c1.Covers(gone) {
		t.Fatal("Covers missed a thread that is not in the later reading")
	}
	if _, err := ReadThreadCPU(-1); err == nil {
		t.Fatal("ReadThreadCPU(-1) succeeded")
	}
}
