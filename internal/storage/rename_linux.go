package storage

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace is renameat2(RENAME_NOREPLACE): an atomic rename that
// fails with EEXIST instead of replacing, for file systems without hard
// links.
func renameNoReplace(oldname, newname string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldname, unix.AT_FDCWD, newname, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("rename %s to %s without replacing: %w (%v)", oldname, newname, errUnsupported, err)
	}
	return &os.LinkError{Op: "renameat2", Old: oldname, New: newname, Err: err}
}

// isNotEmpty reports a failed removal of a directory that has entries.
func isNotEmpty(err error) bool { return errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) }
