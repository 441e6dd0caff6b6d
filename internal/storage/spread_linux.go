package storage

import "golang.org/x/sys/unix"

// fsTopDirFlag is FS_TOPDIR_FL (chattr +T): the directory's subdirectories
// are placed as top-level ones.
const fsTopDirFlag = 0x00020000

// SpreadSubdirs marks dir so that ext2/3/4 (the Orlov allocator) place its
// new subdirectories, and so the files later created in them, in block
// groups of their own instead of dir's group. Best effort: other file
// systems reject or ignore it, and nothing depends on it. Why: without a
// journal, ext4 skips every recently deleted inode of a group on each
// create, and a group where many files were deleted in the last minutes
// (earlier runs' checkpoints, another program's temporary files) makes
// each create cost several times more CPU. A checkpoint's offsets/ and
// commits/ get a file a batch each until the purge has old ones to reuse.
func SpreadSubdirs(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopDirFlag != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsTopDirFlag)
}
