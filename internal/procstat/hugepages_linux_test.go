//go:build linux

package procstat

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// hugePageAdvised is how many bytes of [beg, end) lie in mappings of this
// process whose VmFlags carry "hg" (MADV_HUGEPAGE).
func hugePageAdvised(t *testing.T, beg, end uint64) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	var total int64
	var lo, hi uint64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if r := strings.SplitN(f[0], "-", 2); len(r) == 2 && !strings.HasSuffix(f[0], ":") {
			a, err1 := strconv.ParseUint(r[0], 16, 64)
			b, err2 := strconv.ParseUint(r[1], 16, 64)
			if err1 == nil && err2 == nil {
				lo, hi = max(a, beg), min(b, end)
			}
			continue
		}
		if f[0] == "VmFlags:" && hi > lo {
			for _, fl := range f[1:] {
				if fl == "hg" {
					total += int64(hi - lo)
				}
			}
		}
	}
	return total
}

func TestPrepareHeapHugePages(t *testing.T) {
	mode, err := os.ReadFile(thpEnabled)
	if err != nil || !strings.Contains(string(mode), "[madvise]") {
		t.Skipf("transparent huge pages are not in madvise mode here (%q)", strings.TrimSpace(string(mode)))
	}
	heapPrepared.Store(false)
	n, err := PrepareHeapHugePages(16 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if n < 16<<20 {
		t.Fatalf("advised %d bytes, want at least 16 MiB", n)
	}
	// The advice outlives the allocation it was made on: the heap keeps
	// the range (the runtime never unmaps heap memory) and returning its
	// pages to the kernel keeps the mapping's flag.
	beg, end := uint64(advisedRange[0]), uint64(advisedRange[1])
	if int64(end-beg) != n {
		t.Fatalf("advised range %x-%x, want %d bytes", beg, end, n)
	}
	if got := hugePageAdvised(t, beg, end); got != n {
		t.Fatalf("%d of the %d bytes advised at %x-%x lie in mappings flagged MADV_HUGEPAGE", got, n, beg, end)
	}
	// Once per process: a second query's start does not grow the heap again.
	if n, err := PrepareHeapHugePages(16 << 20); n != 0 || err != nil {
		t.Fatalf("second call advised %d bytes (err %v), want nothing", n, err)
	}
}

func TestPrepareHeapHugePagesOnlyInMadviseMode(t *testing.T) {
	old := thpEnabled
	t.Cleanup(func() { thpEnabled = old; heapPrepared.Store(false) })
	heapPrepared.Store(false)
	dir := t.TempDir()
	for _, mode := range []string{"[always] madvise never", "always madvise [never]", ""} {
		p := filepath.Join(dir, "enabled")
		if err := os.WriteFile(p, []byte(mode+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		thpEnabled = p
		if n, err := PrepareHeapHugePages(16 << 20); n != 0 || err != nil {
			t.Errorf("mode %q: advised %d bytes (err %v), want nothing", mode, n, err)
		}
	}
	thpEnabled = filepath.Join(dir, "missing")
	if n, err := PrepareHeapHugePages(16 << 20); n != 0 || err != nil {
		t.Errorf("no THP file: advised %d bytes (err %v), want nothing", n, err)
	}
}
