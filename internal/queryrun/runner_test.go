package queryrun

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// shRunner is a ChildRunner whose "sluice" is a shell script; it records
// the arguments it was given.
func shRunner(script string, args *[]string) *ChildRunner {
	return &ChildRunner{Command: func(a ...string) *exec.Cmd {
		*args = a
		return exec.Command("sh", "-c", script)
	}, StopTimeout: 300 * time.Millisecond}
}

func TestChildRunnerReportsPeakRSSAndCPU(t *testing.T) {
	var args []string
	r := shRunner(`i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo "peak RSS: 12345 bytes" >&2`, &args)
	p, err := r.Start(context.Background(), "q.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() <= 0 {
		t.Errorf("PID %d", p.PID())
	}
	<-p.Done()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop after a clean exit: %v", err)
	}
	if p.PeakRSS() != 12345 {
		t.Errorf("PeakRSS %d, want the 12345 the child reported", p.PeakRSS())
	}
	if cpu := p.CPUTime(); cpu < 0 {
		t.Errorf("CPUTime %s after exit", cpu)
	}
	if want := []string{"run", "q.yaml", "--stats", "--quiet", "--log-level", "warn"}; !slices.Equal(args, want) {
		t.Errorf("args %q, want %q (no --progress-file without a file)", args, want)
	}
	if _, err := r.Start(context.Background(), "q.yaml", "p.jsonl"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--progress-file") || args[slices.Index(args, "--progress-file")+1] != "p.jsonl" {
		t.Errorf("args %q lack --progress-file p.jsonl", args)
	}
}

// TestChildRunnerCPUProfile: with CPUProfile the child is asked for a CPU
// profile of its run there.
func TestChildRunnerCPUProfile(t *testing.T) {
	var args []string
	r := shRunner(`exit 0`, &args)
	r.CPUProfile = "/tmp/q.pprof"
	p, err := r.Start(context.Background(), "q.yaml", "p.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if i := slices.Index(args, "--cpuprofile"); i < 0 || i+1 >= len(args) || args[i+1] != "/tmp/q.pprof" {
		t.Errorf("args %q lack --cpuprofile /tmp/q.pprof", args)
	}
}

func TestChildRunnerFailureAndStop(t *testing.T) {
	var args []string
	p, err := shRunner(`echo "query failed: boom" >&2; exit 3`, &args).Start(context.Background(), "q.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Stop of a failed query: %v", err)
	}
	if p.PeakRSS() != -1 {
		t.Errorf("PeakRSS %d without a report, want -1", p.PeakRSS())
	}

	// A child that ignores SIGTERM is killed after StopTimeout.
	p, err = shRunner(`trap "" TERM; exec sleep 30`, &args).Start(context.Background(), "q.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.CPUTime() != -1 {
		t.Errorf("CPUTime of a running process %s, want -1", p.CPUTime())
	}
	time.Sleep(100 * time.Millisecond) // let the shell install its trap
	start := time.Now()
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop of a child ignoring SIGTERM: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %s", d)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Stop")
	}
}
