package state

import (
	"path/filepath"
	"testing"

	"github.com/sluice-stream/sluice/internal/testutil"
)

// TestSpreadSubdirs: with batch durability, a store's first delta marks
// its operator's directory FS_TOPDIR_FL (chattr +T) before its partition
// directory is made, so ext4 spreads the partitions over block groups.
// Skipped where the test directory's file system has no such flags.
func TestSpreadSubdirs(t *testing.T) {
	root := t.TempDir()
	testutil.InodeFlags(t, root)
	installPowerLoss(t, root)
	p := openP(t, root, 3, DefaultConfig())
	s := mustOpen(t, p, 0)
	s.Put([]byte("k"), []byte("v"))
	mustCommit(t, s)
	testutil.RequireTopDir(t, filepath.Join(root, "0"))
	if f := testutil.InodeFlags(t, filepath.Join(root, "0", "3")); f&testutil.FSTopDirFlag != 0 {
		t.Fatalf("partition directory flags %#x: only the operator's is marked", f)
	}
}
