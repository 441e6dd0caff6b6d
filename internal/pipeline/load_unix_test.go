//go:build unix

package pipeline

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Opening a FIFO for reading blocks until a writer appears; Load must refuse
// it without opening it.
func TestLoadRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "p.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Load(fifo)
	if want := "is not a regular file (it is a named pipe)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Load(fifo): %v, want %q", err, want)
	}
}
