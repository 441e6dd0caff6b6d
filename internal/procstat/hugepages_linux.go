//go:build linux

package procstat

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// thpEnabled and thpPageSize are the kernel's transparent huge page
// settings (variables so tests can point them elsewhere).
var (
	thpEnabled  = "/sys/kernel/mm/transparent_hugepage/enabled"
	thpPageSize = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"
)

// PrepareHeapHugePages lets the Go heap's next size bytes be backed by
// transparent huge pages when the kernel gives them only to memory that asks
// (THP mode "madvise", the default of many distributions; with "always" the
// heap has them already, with "never" nothing can), and returns how many
// bytes it advised (0 when the mode is not "madvise").
//
// Why: a fresh process faults in every 4 KiB page of heap it touches, and
// a drain that grows the heap to its limit in its first second takes tens
// of thousands of faults — on a virtual machine each fault is an exit to
// the hypervisor (measured: 50,000 faults, about a third of a `sluice run`
// drain's CPU). With huge pages a fault maps 2 MiB.
//
// How: the Go runtime does not ask for huge pages for its heap (Go 1.21.1
// and later), and each piece of heap it maps is a new mapping, so advising
// the heap's current mappings would not reach the memory the query grows
// into. Instead the heap is grown first: one allocation of size bytes —
// fresh memory, which the runtime neither zeroes nor touches, so nothing
// becomes resident — is advised MADV_HUGEPAGE and freed, and the runtime
// returns it to the kernel (debug.FreeOSMemory; MADV_DONTNEED keeps the
// advice). The heap then reuses that address range first, and its pages come
// in 2 MiB at a time. The resident set does not grow: the pages are the
// ones the heap would have touched anyway, within the Go memory limit, which
// size should be. It does its work once per process: later calls (a second
// query in the same process) return 0.
func PrepareHeapHugePages(size int64) (int64, error) {
	mode, err := os.ReadFile(thpEnabled)
	if err != nil || !strings.Contains(string(mode), "[madvise]") {
		return 0, nil // no THP support, or nothing to ask for
	}
	hp := int64(2 << 20)
	if b, err := os.ReadFile(thpPageSize); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 {
			hp = v
		}
	}
	if size < hp || !heapPrepared.CompareAndSwap(false, true) {
		return 0, nil
	}
	buf := make([]byte, size+hp) // room to align both ends to huge pages
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	beg := (addr + uintptr(hp) - 1) &^ (uintptr(hp) - 1)
	end := (addr + uintptr(len(buf))) &^ (uintptr(hp) - 1)
	var advised int64
	if end > beg {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, beg, end-beg, madvHugePage); e != 0 {
			runtime.KeepAlive(buf)
			return 0, fmt.Errorf("procstat: madvise(MADV_HUGEPAGE) %x-%x: %w", beg, end, e)
		}
		advised = int64(end - beg)
		advisedRange = [2]uintptr{beg, end}
	}
	runtime.KeepAlive(buf)
	buf = nil
	debug.FreeOSMemory()
	return advised, nil
}

// heapPrepared is set by the first PrepareHeapHugePages that advises.
var heapPrepared atomic.Bool

// advisedRange is the address range the last PrepareHeapHugePages advised
// (for tests).
var advisedRange [2]uintptr

// madvHugePage is MADV_HUGEPAGE (not in package syscall).
const madvHugePage = 14
