package checkpoint

import (
	"path/filepath"
	"testing"

	"github.com/sluice-stream/sluice/internal/testutil"
)

// TestNewCheckpointSpreadsLogDirectories: a new local checkpoint's
// directory is marked FS_TOPDIR_FL before offsets/ and commits/ are made,
// so ext4 places the logs' per-batch files in block groups of their own;
// the log directories themselves are not marked. Skipped where the test
// directory's file system has no such flags.
func TestNewCheckpointSpreadsLogDirectories(t *testing.T) {
	dir := t.TempDir()
	testutil.InodeFlags(t, dir)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.RequireTopDir(t, dir)
	for _, d := range []string{offsetsDir, commitsDir} {
		if f := testutil.InodeFlags(t, filepath.Join(dir, d)); f&testutil.FSTopDirFlag != 0 {
			t.Fatalf("%s flags %#x: only the checkpoint directory is marked", d, f)
		}
	}
}
