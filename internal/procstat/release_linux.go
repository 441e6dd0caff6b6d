//go:build linux

package procstat

import (
	"fmt"
	"os"
	"syscall"
)

// ReleaseStartupPages unmaps the resident pages of this process's
// executable that are read-only and unmodified — its code and read-only
// data (see releasable) — and returns how many bytes were resident in
// them. The pages stay in the page cache; the ones the process uses again
// are mapped back on first access, at the cost of a minor page fault, so
// afterwards the resident set holds the code that actually runs rather
// than everything package initialisation touched. `sluice run` calls it
// once, before the query starts. Elsewhere than on Linux it does nothing.
func ReleaseStartupPages() (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return 0, fmt.Errorf("procstat: the executable: %w", err)
	}
	exePath, _ := os.Readlink("/proc/self/exe")
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	ms, err := parseSmaps(data)
	if err != nil {
		return 0, err
	}
	var released int64
	for _, m := range releasable(ms, st.Ino, exePath) {
		// MADV_DONTNEED on a private file mapping drops the page table
		// entries; a clean page is read back from the file on the next
		// access.
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), syscall.MADV_DONTNEED); e != 0 {
			return released, fmt.Errorf("procstat: madvise %x-%x: %w", m.start, m.end, e)
		}
		released += m.rss
	}
	return released, nil
}
