package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Limit is the memory this process may use: the tightest of its control
// group's limit (cgroup v2 memory.max, or v1 memory.limit_in_bytes, the
// group's own and its ancestors') and the machine's memory.
type Limit struct {
	// Bytes is the limit.
	Bytes int64
	// Source says where it comes from: "cgroup v2 memory.max",
	// "cgroup v1 memory.limit_in_bytes" or "machine memory (MemTotal)".
	Source string
}

// Limit sources.
const (
	SourceCgroupV2 = "cgroup v2 memory.max"
	SourceCgroupV1 = "cgroup v1 memory.limit_in_bytes"
	SourceMachine  = "machine memory (MemTotal)"
)

// MemoryLimit returns the memory limit of this process (see Limit), read
// from /proc and /sys/fs/cgroup.
func MemoryLimit() (Limit, error) { return MemoryLimitAt("/") }

// MemoryLimitAt is MemoryLimit on a file system rooted at root (tests
// build /proc/self/cgroup, /proc/meminfo and /sys/fs/cgroup under a
// temporary directory).
func MemoryLimitAt(root string) (Limit, error) {
	total, err := memTotal(filepath.Join(root, "proc", "meminfo"))
	if err != nil {
		return Limit{}, err
	}
	lim := Limit{Bytes: total, Source: SourceMachine}
	if b, src, ok := cgroupLimit(root); ok && b < lim.Bytes {
		lim = Limit{Bytes: b, Source: src}
	}
	return lim, nil
}

// memTotal reads MemTotal from a meminfo file, in bytes.
func memTotal(file string) (int64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("procstat: machine memory: %w", err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			f := strings.Fields(string(v))
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || kb <= 0 {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("procstat: no MemTotal in %s", file)
}

// unlimitedV1 is the smallest value cgroup v1 reports for "no limit"
// (the page-rounded maximum is 9223372036854771712).
const unlimitedV1 = 1 << 62

// cgroupLimit finds this process's memory cgroup in /proc/self/cgroup and
// returns the tightest limit on the way from it to the hierarchy's root.
// The v2 (unified) hierarchy is tried first. ok is false when no limit is
// set or the files cannot be read.
func cgroupLimit(root string) (int64, string, bool) {
	f, err := os.Open(filepath.Join(root, "proc", "self", "cgroup"))
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	var v2, v1 string
	haveV2, haveV1 := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2, haveV2 = parts[2], true
		case containsController(parts[1], "memory"):
			v1, haveV1 = parts[2], true
		}
	}
	best, src, ok := int64(0), "", false
	consider := func(b int64, s string) {
		if b > 0 && (!ok || b < best) {
			best, src, ok = b, s, true
		}
	}
	if haveV2 {
		// Unified hierarchy mounted at /sys/fs/cgroup (or, next to v1
		// controllers, at /sys/fs/cgroup/unified).
		for _, mount := range []string{"sys/fs/cgroup", "sys/fs/cgroup/unified"} {
			if b, found := walkLimit(filepath.Join(root, mount), v2, "memory.max"); found {
				consider(b, SourceCgroupV2)
				break
			}
		}
	}
	if haveV1 {
		if b, found := walkLimit(filepath.Join(root, "sys/fs/cgroup/memory"), v1, "memory.limit_in_bytes"); found && b < unlimitedV1 {
			consider(b, SourceCgroupV1)
		}
	}
	return best, src, ok
}

func containsController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// walkLimit reads file in the cgroup directory of group under mount and in
// each of its ancestors, and returns the smallest limit found; found is
// false when the file exists nowhere on the way. "max" is no limit. Inside
// a container the group path of /proc/self/cgroup may not exist under the
// mount (the namespace's root is mounted): the walk then starts at the
// deepest directory that exists.
func walkLimit(mount, group, file string) (int64, bool) {
	if _, err := os.Stat(mount); err != nil {
		return 0, false
	}
	var best int64
	found := false
	for g := path.Clean("/" + group); ; g = path.Dir(g) {
		data, err := os.ReadFile(filepath.Join(mount, filepath.FromSlash(g), file))
		if err == nil {
			found = true
			s := strings.TrimSpace(string(data))
			if b, err := strconv.ParseInt(s, 10, 64); err == nil && b > 0 && (best == 0 || b < best) {
				best = b
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return 0, false
		}
		if g == "/" {
			break
		}
	}
	if best == 0 {
		return unlimitedOr(found)
	}
	return best, true
}

// unlimitedOr reports "no limit" (v2's "max" everywhere) as the largest
// value, so that callers compare it away.
func unlimitedOr(found bool) (int64, bool) {
	if !found {
		return 0, false
	}
	return 1<<63 - 1, true
}
