package checkpoint

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fsTopDirFlag is FS_TOPDIR_FL (chattr +T).
const fsTopDirFlag = 0x00020000

// TestNewCheckpointSpreadsLogDirectories: a new local checkpoint's
// directory is marked FS_TOPDIR_FL before offsets/ and commits/ are made,
// so ext4 places the logs' per-batch files in block groups of their own;
// the log directories themselves are not marked. Skipped where the test
// directory's file system has no such flags.
func TestNewCheckpointSpreadsLogDirectories(t *testing.T) {
	dir := t.TempDir()
	flags := func(dir string) (int, error) {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		return unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	}
	if _, err := flags(dir); err != nil {
		t.Skipf("no inode flags on the test directory's file system: %v", err)
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := flags(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f&fsTopDirFlag == 0 {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err == nil && st.Type == 0xEF53 {
			t.Fatalf("checkpoint directory flags %#x on ext4, want FS_TOPDIR_FL", f)
		}
		t.Skipf("the file system dropped FS_TOPDIR_FL (flags %#x)", f)
	}
	for _, d := range []string{offsetsDir, commitsDir} {
		if f, _ := flags(filepath.Join(dir, d)); f&fsTopDirFlag != 0 {
			t.Fatalf("%s flags %#x: only the checkpoint directory is marked", d, f)
		}
	}
}
