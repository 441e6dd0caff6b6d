package procstat

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestReadMachineCPU(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		busy, total   int64
		wantErr       bool
	}{
		{"full", "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3 4 5 6 7 8\n", 170, 990, false},
		{"no steal", "cpu 100 5 50 800 20 3 2\n", 160, 980, false},
		{"not cpu", "intr 1 2 3 4 5 6 7 8\n", 0, 0, true},
		{"bad number", "cpu 1 2 x 4 5 6 7 8\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name)
			if err := os.WriteFile(f, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := readMachineCPU(f)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && (m.Busy != tc.busy || m.Total != tc.total) {
				t.Fatalf("got %+v, want busy %d total %d", m, tc.busy, tc.total)
			}
		})
	}
	a, b := MachineCPU{Busy: 100, Total: 400}, MachineCPU{Busy: 250, Total: 600}
	if got := a.BusyFraction(b); got != 0.75 {
		t.Fatalf("busy fraction %v, want 0.75", got)
	}
	if got := a.BusyFraction(a); got != 0 {
		t.Fatalf("no time passed: %v, want 0", got)
	}
	if runtime.GOOS == "linux" {
		m0, err := ReadMachineCPU()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 30_000_000; i++ {
			_ = i * i
		}
		m1, err := ReadMachineCPU()
		if err != nil || m1.Busy < m0.Busy || m1.Total < m0.Total {
			t.Fatalf("counters went from %+v to %+v (%v)", m0, m1, err)
		}
	}
}
