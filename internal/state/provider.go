package state

import (
	"errors"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/storage"
)

// OpenProvider opens the provider for one store: it checks the schemas
// against the checkpoint's (when conf.SchemaCheck). Each provider must be
// closed. The disk provider needs the state directory on the local disk
// (its Pebble versions are local directories): with a checkpoint on an
// object store it fails with ErrDiskProviderNeedsLocal.
func OpenProvider(id ID, schemas Schemas, conf Config) (Provider, error) {
	if err := conf.validate(); err != nil {
		return nil, err
	}
	st, err := id.files()
	if err != nil {
		return nil, err
	}
	if conf.SchemaCheck {
		if _, err := CheckSchema(st, id.Operator, schemas); err != nil {
			return nil, err
		}
	}
	switch conf.Provider {
	case DiskProvider:
		return openDiskProvider(id, st, schemas, conf)
	default:
		return newMemoryProvider(id, st, schemas, conf), nil
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

// listVersions lists the version files in dir of the state directory st;
// snapshotExt is "snapshot" (memory) or "pebble" (disk, directories).
// Other names are ignored. Names in the result are relative to st.
func listVersions(st storage.Store, dir, snapshotExt string) (versionFiles, error) {
	vf := versionFiles{deltas: map[int64]string{}, snapshots: map[int64]string{}}
	es, err := listDir(st, dir)
	if err != nil {
		return vf, err
	}
	for _, e := range es {
		base, ext, ok := strings.Cut(e.Name, ".")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(base, 10, 64)
		if err != nil || v <= 0 {
			continue
		}
		name := path.Join(dir, e.Name)
		switch ext {
		case "delta":
			vf.deltas[v] = name
		case snapshotExt:
			vf.snapshots[v] = name
		default:
			continue
		}
		if !e.IsDir {
			vf.bytes += e.Size // directories (disk checkpoints) share files: not summed
		}
	}
	return vf, nil
}

var errStoreDone = errors.New("state store already committed or aborted")
var errStoreOpen = errors.New("a state store of this provider is still open (commit or abort it first)")
