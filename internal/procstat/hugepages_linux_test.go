//go:build linux

package procstat

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// hugePageAdvised sums the sizes of this process's mappings whose VmFlags
// carry "hg" (MADV_HUGEPAGE).
func hugePageAdvised(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	var total, size int64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if r := strings.SplitN(f[0], "-", 2); len(r) == 2 && !strings.HasSuffix(f[0], ":") {
			a, err1 := strconv.ParseUint(r[0], 16, 64)
			b, err2 := strconv.ParseUint(r[1], 16, 64)
			if err1 == nil && err2 == nil {
				size = int64(b - a)
			}
			continue
		}
		if f[0] == "VmFlags:" {
			for _, fl := range f[1:] {
				if fl == "hg" {
					total += size
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
	before := hugePageAdvised(t)
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
	if after := hugePageAdvised(t); after < before+n {
		t.Fatalf("mappings advised MADV_HUGEPAGE: %d bytes before, %d after advising %d", before, after, n)
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
