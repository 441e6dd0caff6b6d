//go:build !linux

package storage

// SpreadSubdirs is a placement hint for ext4 on Linux (see
// spread_linux.go); elsewhere it does nothing.
func SpreadSubdirs(string) {}
