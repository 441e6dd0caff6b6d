package testutil

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FSTopDirFlag is FS_TOPDIR_FL (chattr +T), the inode flag
// storage.SpreadSubdirs sets on a directory.
const FSTopDirFlag = 0x00020000

// InodeFlags returns dir's inode flags (FS_IOC_GETFLAGS). It skips t when
// dir's file system has no inode flags and fails it when dir cannot be
// opened.
func InodeFlags(t testing.TB, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	f, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Skipf("no inode flags on %s's file system: %v", dir, err)
	}
	return f
}

// RequireTopDir fails t unless dir is marked FS_TOPDIR_FL on ext4; on
// another file system that accepted the call and dropped the flag it
// skips t.
func RequireTopDir(t testing.TB, dir string) {
	t.Helper()
	f := InodeFlags(t, dir)
	if f&FSTopDirFlag != 0 {
		return
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.EXT4_SUPER_MAGIC {
		t.Fatalf("%s: flags %#x on ext4, want FS_TOPDIR_FL", dir, f)
	}
	t.Skipf("the file system dropped FS_TOPDIR_FL on %s (flags %#x)", dir, f)
}
