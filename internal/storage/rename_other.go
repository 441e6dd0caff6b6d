//go:build !linux

package storage

import "fmt"

// renameNoReplace is not available outside Linux: put-if-absent then
// needs hard links.
func renameNoReplace(oldname, newname string) error {
	return fmt.Errorf("rename %s to %s without replacing: %w", oldname, newname, errUnsupported)
}
