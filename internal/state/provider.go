package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// OpenProvider opens the provider for one store: it checks the schemas
// against the checkpoint's (when conf.SchemaCheck), creates the store's
// directory and removes temp files a crash left there. Each provider must be
// closed.
func OpenProvider(id ID, schemas Schemas, conf Config) (Provider, error) {
	if err := conf.validate(); err != nil {
		return nil, err
	}
	if conf.SchemaCheck {
		if _, err := CheckSchema(id.Root, id.Operator, schemas); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(id.Dir(), 0o755); err != nil {
		return nil, fmt.Errorf("state %s: %w", id, err)
	}
	es, err := listDir(id.Dir())
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", id, err)
	}
	var stale []string
	for _, e := range es {
		if isTempFile(e.Name()) {
			stale = append(stale, filepath.Join(id.Dir(), e.Name()))
		}
	}
	if err := removeAll(id.Dir(), stale...); err != nil {
		return nil, fmt.Errorf("state %s: removing temp files: %w", id, err)
	}
	switch conf.Provider {
	case DiskProvider:
		return openDiskProvider(id, schemas, conf)
	default:
		return newMemoryProvider(id, schemas, conf), nil
	}
}

// versionFiles is what a store directory holds, by version.
type versionFiles struct {
	deltas    map[int64]string // version → path
	snapshots map[int64]string // .snapshot files or disk checkpoint dirs
	bytes     int64            // sum of the version files' sizes (not of directories)
}

func (vf versionFiles) latest() int64 {
	var v int64
	for n := range vf.deltas {
		v = max(v, n)
	}
	for n := range vf.snapshots {
		v = max(v, n)
	}
	return v
}

// snapshotAtOrBelow returns the newest snapshot version ≤ v, or 0.
func (vf versionFiles) snapshotAtOrBelow(v int64) int64 {
	var best int64
	for n := range vf.snapshots {
		if n <= v && n > best {
			best = n
		}
	}
	return best
}

func sortedVersions(m map[int64]string) []int64 {
	out := make([]int64, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// listVersions reads dir; snapshotExt is "snapshot" (memory) or "pebble"
// (disk, directories). Other names are ignored.
func listVersions(dir, snapshotExt string) (versionFiles, error) {
	vf := versionFiles{deltas: map[int64]string{}, snapshots: map[int64]string{}}
	es, err := listDir(dir)
	if err != nil {
		return vf, err
	}
	for _, e := range es {
		name := e.Name()
		base, ext, ok := strings.Cut(name, ".")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(base, 10, 64)
		if err != nil || v <= 0 {
			continue
		}
		path := filepath.Join(dir, name)
		switch ext {
		case "delta":
			vf.deltas[v] = path
		case snapshotExt:
			vf.snapshots[v] = path
		default:
			continue
		}
		if info, err := e.Info(); err == nil && !info.IsDir() {
			vf.bytes += info.Size() // directories (disk checkpoints) share files: not summed
		}
	}
	return vf, nil
}

var errStoreDone = errors.New("state store already committed or aborted")
var errStoreOpen = errors.New("a state store of this provider is still open (commit or abort it first)")
