package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// osFS is the operating-system boundary of Local: every call that touches
// the disk goes through it, so tests can inject the failures a real disk
// produces (a failed fsync, a full disk, a file system without hard links).
type osFS interface {
	CreateTemp(dir, pattern string) (tempFile, error)
	// OpenSpare opens an existing file for writing it anew from its
	// start; the writer truncates it to what it wrote (tempFile.Truncate).
	OpenSpare(name string) (tempFile, error)
	Link(oldname, newname string) error
	// RenameNoReplace renames oldname to newname unless newname exists
	// (an error wrapping fs.ErrExist then); errors.ErrUnsupported when the
	// platform or file system cannot do it atomically.
	RenameNoReplace(oldname, newname string) error
	Rename(oldname, newname string) error
	Remove(name string) error
	Mkdir(name string, perm fs.FileMode) error
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// SyncDir fsyncs a directory, making the entries created, renamed or
	// removed in it durable.
	SyncDir(dir string) error
}

// tempFile is the part of *os.File a writer uses.
type tempFile interface {
	io.Writer
	Name() string
	Sync() error
	Close() error
	Truncate(size int64) error
}

// realFS is osFS on the real operating system.
type realFS struct{}

func (realFS) CreateTemp(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
func (realFS) OpenSpare(name string) (tempFile, error) {
	// Not O_TRUNC: the old content is overwritten and the rest cut off
	// at the end, so that a file no longer than its old block keeps it —
	// a freed block costs ext4 with the discard option a TRIM of the
	// device in the call (0.3–0.8 ms here).
	return os.OpenFile(name, os.O_WRONLY, 0)
}
func (realFS) Link(oldname, newname string) error { return os.Link(oldname, newname) }
func (realFS) RenameNoReplace(oldname, newname string) error {
	return renameNoReplace(oldname, newname)
}
func (realFS) Rename(oldname, newname string) error       { return os.Rename(oldname, newname) }
func (realFS) Remove(name string) error                   { return os.Remove(name) }
func (realFS) Mkdir(name string, perm fs.FileMode) error  { return os.Mkdir(name, perm) }
func (realFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (realFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (realFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (realFS) SyncDir(dir string) error                   { return SyncDir(dir) }

// SyncDir fsyncs the directory dir so that entries created, renamed or
// removed in it survive a crash. Every error is returned, the close's
// included.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// errUnsupported is what renameNoReplace returns where it cannot work.
var errUnsupported = errors.ErrUnsupported
