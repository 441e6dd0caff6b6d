// Package procstat reads a process's memory and CPU figures from Linux's
// /proc: what `sluice run --stats`, the rehearsal and the benchmarks report.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Memory returns a process's current and peak resident set size in bytes
// (VmRSS and VmHWM of /proc/PID/status).
func Memory(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			return 0, 0, fmt.Errorf("procstat: malformed line %q in /proc/%d/status", line, pid)
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("procstat: %q in /proc/%d/status: %w", line, pid, err)
		}
		*dst = kb << 10
	}
	if rss == 0 && hwm == 0 {
		return 0, 0, fmt.Errorf("procstat: no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// FileResident returns the bytes of a process's resident set that are
// file-backed or shared memory (RssFile + RssShmem of /proc/PID/status):
// chiefly its executable's and libraries' mapped pages, which the Go
// runtime does not count in its own memory (runtime/metrics,
// debug.SetMemoryLimit) but which count in the resident set. Recent
// kernels map a freshly written executable in large folios, so a large
// binary is almost wholly resident once its packages have initialised.
func FileResident(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	var total int64
	found := false
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("RssFile:")) && !bytes.HasPrefix(line, []byte("RssShmem:")) {
			continue
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			return 0, fmt.Errorf("procstat: malformed line %q in /proc/%d/status", line, pid)
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: %q in /proc/%d/status: %w", line, pid, err)
		}
		total += kb << 10
		found = true
	}
	if !found {
		return 0, fmt.Errorf("procstat: no RssFile/RssShmem in /proc/%d/status", pid)
	}
	return total, nil
}

// CPU returns a process's user + system CPU time from /proc/PID/stat (clock
// ticks of 1/100 s, Linux's USER_HZ).
func CPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("procstat: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("procstat: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14 of the file
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: bad CPU fields in /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// ThreadCPU is a process's CPU time as the scheduler accounts it, to the
// nanosecond: the sum over its threads of the first field of
// /proc/PID/task/TID/schedstat. CPU's clock ticks are 10 ms apart and
// charged to whichever thread runs when the tick lands, so a process that
// wakes briefly a few times a second (an idle query) reads as 0, 10, 20 or
// 30 ms over half a minute by chance; this does not.
//
// A thread that exits takes its time with it: compare two readings only
// when Threads shows every thread of the first still present (Covers).
type ThreadCPU struct {
	Total   time.Duration
	Threads map[int]time.Duration // per thread id
}

// Covers reports whether every thread of earlier is still in t, so that
// t.Total − earlier.Total is all the CPU the process used in between.
func (t ThreadCPU) Covers(earlier ThreadCPU) bool {
	for tid := range earlier.Threads {
		if _, ok := t.Threads[tid]; !ok {
			return false
		}
	}
	return true
}

// ReadThreadCPU reads a process's ThreadCPU. It fails where the kernel
// keeps no schedstat (CONFIG_SCHED_INFO off) or /proc is missing.
func ReadThreadCPU(pid int) (ThreadCPU, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ThreadCPU{}, err
	}
	t := ThreadCPU{Threads: make(map[int]time.Duration, len(ents))}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if os.IsNotExist(err) {
			continue // the thread exited while the directory was read
		}
		if err != nil {
			return ThreadCPU{}, err
		}
		f := strings.Fields(string(data))
		if len(f) < 1 {
			return ThreadCPU{}, fmt.Errorf("procstat: malformed %s/%d/schedstat: %q", dir, tid, data)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return ThreadCPU{}, fmt.Errorf("procstat: %s/%d/schedstat: %w", dir, tid, err)
		}
		t.Threads[tid] = time.Duration(ns)
		t.Total += time.Duration(ns)
	}
	if len(t.Threads) == 0 {
		return ThreadCPU{}, fmt.Errorf("procstat: no thread of process %d has a schedstat", pid)
	}
	return t, nil
}

// FDs returns the number of open file descriptors of a process (the
// entries of /proc/PID/fd).
func FDs(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}
