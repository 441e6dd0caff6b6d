package procstat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRoot builds a file system with the given files (path → content)
// under a temporary directory.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const meminfo24G = "MemTotal:       24676440 kB\nMemFree:        16000000 kB\n"

func TestMemoryLimitAt(t *testing.T) {
	machine := int64(24676440) << 10
	for name, tc := range map[string]struct {
		files      map[string]string
		wantBytes  int64
		wantSource string
	}{
		"no cgroup file: the machine": {
			files:     map[string]string{"proc/meminfo": meminfo24G},
			wantBytes: machine, wantSource: SourceMachine,
		},
		"v2 limit on the group": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "0::/app/worker\n",
				"sys/fs/cgroup/app/worker/memory.max": "2147483648\n", "sys/fs/cgroup/app/memory.max": "max\n"},
			wantBytes: 2 << 30, wantSource: SourceCgroupV2,
		},
		"v2 tighter limit on a parent": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "0::/app/worker\n",
				"sys/fs/cgroup/app/worker/memory.max": "max\n", "sys/fs/cgroup/app/memory.max": "536870912\n"},
			wantBytes: 512 << 20, wantSource: SourceCgroupV2,
		},
		"v2 max everywhere: the machine": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "0::/app\n",
				"sys/fs/cgroup/app/memory.max": "max\n"},
			wantBytes: machine, wantSource: SourceMachine,
		},
		"v2 in a container: the namespace's root is mounted": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
				"sys/fs/cgroup/memory.max": "1073741824\n"},
			wantBytes: 1 << 30, wantSource: SourceCgroupV2,
		},
		"v1 limit": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n",
				"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "805306368\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n"},
			wantBytes: 768 << 20, wantSource: SourceCgroupV1,
		},
		"v1 unlimited: the machine": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "4:memory:/process_api/x\n",
				"sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n"},
			wantBytes: machine, wantSource: SourceMachine,
		},
		"hybrid: v2 entry without a memory controller, v1 memory limit": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "0::/\n4:memory:/lim\n",
				"sys/fs/cgroup/memory/lim/memory.limit_in_bytes": "268435456\n"},
			wantBytes: 256 << 20, wantSource: SourceCgroupV1,
		},
		"a limit above the machine's memory: the machine": {
			files: map[string]string{"proc/meminfo": meminfo24G, "proc/self/cgroup": "0::/big\n",
				"sys/fs/cgroup/big/memory.max": "107374182400\n"},
			wantBytes: machine, wantSource: SourceMachine,
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := MemoryLimitAt(fakeRoot(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if got.Bytes != tc.wantBytes || got.Source != tc.wantSource {
				t.Errorf("got %d from %q, want %d from %q", got.Bytes, got.Source, tc.wantBytes, tc.wantSource)
			}
		})
	}
}

func TestMemoryLimitErrors(t *testing.T) {
	if _, err := MemoryLimitAt(fakeRoot(t, map[string]string{"proc/self/cgroup": "0::/\n"})); err == nil || !strings.Contains(err.Error(), "machine memory") {
		t.Errorf("no meminfo: %v", err)
	}
	if _, err := MemoryLimitAt(fakeRoot(t, map[string]string{"proc/meminfo": "MemFree: 1 kB\n"})); err == nil || !strings.Contains(err.Error(), "no MemTotal") {
		t.Errorf("no MemTotal: %v", err)
	}
}

// TestMemoryLimitHere reads this machine's real limit: positive, and not
// above the machine's memory.
func TestMemoryLimitHere(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo")
	}
	l, err := MemoryLimit()
	if err != nil {
		t.Fatal(err)
	}
	total, _ := memTotal("/proc/meminfo")
	if l.Bytes <= 0 || l.Bytes > total || l.Source == "" {
		t.Errorf("limit %+v, machine %d", l, total)
	}
}
