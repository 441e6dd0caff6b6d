//go:build !linux

package procstat

// PrepareHeapHugePages does nothing outside Linux (see hugepages_linux.go).
func PrepareHeapHugePages(size int64) (int64, error) { return 0, nil }
