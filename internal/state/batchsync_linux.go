package state

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// File systems whose syncfs(2) writes back every dirty file and its
// directory entries and flushes the device: local, journalled or
// copy-on-write file systems (and tmpfs, which has nothing to write).
// Network and FUSE file systems are left to per-file fsyncs.
var fsSyncTypes = map[int64]string{
	0xEF53:     "ext4", // also ext2/ext3
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0xF2F52010: "f2fs",
	0x01021994: "tmpfs",
}

// platformFSSync opens root and returns a syncfs of its file system.
func platformFSSync(root string) (func() error, func(), error) {
	if !kernelAtLeast(5, 8) {
		// Before 5.8 syncfs returned 0 even when writing back failed.
		return nil, nil, fmt.Errorf("syncfs does not report write errors before Linux 5.8")
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", root, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("statfs %s: %w", root, err)
	}
	if _, ok := fsSyncTypes[int64(st.Type)]; !ok {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("file system type %#x of %s is not one whose syncfs is trusted", st.Type, root)
	}
	syncFn := func() error {
		for {
			err := unix.Syncfs(fd)
			if err != unix.EINTR {
				return err
			}
		}
	}
	return syncFn, func() { unix.Close(fd) }, nil
}

// kernelAtLeast reports whether the running kernel is at least major.minor.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	digits := func(s string) string {
		if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			return s[:i]
		}
		return s
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(digits(parts[1]))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
