package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVacuumCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	os.MkdirAll(filepath.Join(out, "_spark_metadata"), 0o755)
	os.WriteFile(filepath.Join(out, "_spark_metadata", "0"), []byte("v1\n"+`{"path":"file://`+filepath.ToSlash(out)+`/part-00000-a.c000.json","size":2,"isDir":false,"modificationTime":0,"blockReplication":1,"blockSize":1,"action":"add"}`), 0o644)
	old := time.Now().Add(-200 * time.Hour)
	for _, f := range []string{"part-00000-a.c000.json", "part-00001-orphan.c000.json", "part-00002-young.c000.json"} {
		p := filepath.Join(out, f)
		os.WriteFile(p, []byte("{}\n"), 0o644)
		if !strings.Contains(f, "young") {
			os.Chtimes(p, old, old)
		}
	}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := realMain(append([]string{"vacuum"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, _, stderr := run(dir); code != 1 || !strings.Contains(stderr, "neither _delta_log nor _spark_metadata") {
		t.Errorf("not an output: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run("--retention", "1h", out); code != 1 || !strings.Contains(stderr, "safe minimum") {
		t.Errorf("short retention: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := run("--dry-run", out)
	if code != 0 || stdout != "part-00001-orphan.c000.json\n" || !strings.Contains(stderr, "would delete 1 files") {
		t.Errorf("dry run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := run(out); code != 0 || !strings.Contains(stderr, "deleted 1 files") {
		t.Errorf("vacuum: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "part-00001-orphan.c000.json")); err == nil {
		t.Error("orphan survived")
	}
	if code, _, stderr := run("--retention", "0", "--force", out); code != 0 || !strings.Contains(stderr, "deleted 1 files") {
		t.Errorf("forced: exit %d, %q", code, stderr)
	}
	for _, f := range []string{"part-00000-a.c000.json", "_spark_metadata/0"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
