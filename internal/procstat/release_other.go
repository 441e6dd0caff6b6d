//go:build !linux

package procstat

// ReleaseStartupPages does nothing outside Linux (see release_linux.go).
func ReleaseStartupPages() (int64, error) { return 0, nil }
