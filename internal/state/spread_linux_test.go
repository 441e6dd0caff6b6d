package state

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSpreadSubdirs: with batch durability, a store's first delta marks
// its operator's directory FS_TOPDIR_FL (chattr +T) before its partition
// directory is made, so ext4 spreads the partitions over block groups.
// Skipped where the test directory's file system has no such flags.
func TestSpreadSubdirs(t *testing.T) {
	root := t.TempDir()
	flags := func(dir string) (int, error) {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		return unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	}
	if _, err := flags(root); err != nil {
		t.Skipf("no inode flags on the test directory's file system: %v", err)
	}
	installPowerLoss(t, root)
	p := openP(t, root, 3, DefaultConfig())
	s := mustOpen(t, p, 0)
	s.Put([]byte("k"), []byte("v"))
	mustCommit(t, s)
	f, err := flags(filepath.Join(root, "0"))
	if err != nil {
		t.Fatal(err)
	}
	if f&fsTopDirFlag == 0 {
		// Some file systems accept the call and drop the flag: only ext4's
		// own must keep it.
		var st unix.Statfs_t
		if err := unix.Statfs(root, &st); err == nil && st.Type == 0xEF53 {
			t.Fatalf("operator directory flags %#x on ext4, want FS_TOPDIR_FL", f)
		}
		t.Skipf("the file system dropped FS_TOPDIR_FL (flags %#x)", f)
	}
	if f, _ := flags(filepath.Join(root, "0", "3")); f&fsTopDirFlag != 0 {
		t.Fatalf("partition directory flags %#x: only the operator's is marked", f)
	}
}

// fsTopDirFlag is FS_TOPDIR_FL (chattr +T), which storage.SpreadSubdirs sets.
const fsTopDirFlag = 0x00020000
