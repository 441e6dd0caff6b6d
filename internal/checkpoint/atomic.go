package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeOnce atomically creates dir/name with data unless it already exists.
// The data goes to a hidden temp file in dir, is fsynced, then hard-linked
// to its final name (link fails if the name exists, so two writers cannot
// both win), and the directory is fsynced. If the link is not supported by
// the file system it falls back to an existence check plus rename, which is
// still atomic for readers and safe under the checkpoint lock.
//
// An existing file with identical content is success (an idempotent replay);
// with different content the error wraps ErrConflict.
func writeOnce(dir, name string, data []byte) error {
	final := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", final, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: write %s: %w", final, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: fsync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", final, err)
	}

	err = os.Link(tmpName, final)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return sameContent(final, data)
	default:
		// No hard links here (some network or FUSE file systems).
		if _, serr := os.Lstat(final); serr == nil {
			return sameContent(final, data)
		}
		if err := os.Rename(tmpName, final); err != nil {
			return fmt.Errorf("checkpoint: write %s: %w", final, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", final, err)
	}
	return nil
}

func sameContent(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("checkpoint: compare with existing %s: %w", path, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s (is another query writing to this checkpoint?)", ErrConflict, path)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename, link or removal in it is
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
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
