//go:build !linux

package storage

import (
	"errors"
	"fmt"
	"syscall"
)

// renameNoReplace is not available outside Linux: put-if-absent then
// needs hard links.
func renameNoReplace(oldname, newname string) error {
	return fmt.Errorf("rename %s to %s without replacing: %w", oldname, newname, errUnsupported)
}

// isNotEmpty reports a failed removal of a directory that has entries.
func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
