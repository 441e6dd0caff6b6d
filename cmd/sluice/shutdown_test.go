package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowPipeline writes a pipeline reading orders from addr in batches of
// 100 into a noop sink that takes delay per row, checkpointing under dir.
func slowPipeline(t *testing.T, addr, delay string) (file, chk string) {
	t.Helper()
	dir := t.TempDir()
	chk = filepath.Join(dir, "chk")
	file = filepath.Join(dir, "slow.yaml")
	yaml := fmt.Sprintf(`name: slow
source:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: orders
    startingOffsets: earliest
    maxOffsetsPerTrigger: 100
    kafka.request.timeout.ms: 20000
sink:
  format: noop
  options:
    checkpointLocation: %s
    sluice.sink.delayPerRow: %s
    sluice.workers: 1
`, addr, chk, delay)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, chk
}

// sluiceChild starts this test binary as `sluice ARGS…`.
func sluiceChild(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := selfCommand(ctx, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitInFlight waits until some batch ≥ from is logged (offsets/N) but not
// committed: it is running.
func waitInFlight(t *testing.T, chk string, from int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for n := from; n < from+100; n++ {
			_, errO := os.Stat(filepath.Join(chk, "offsets", fmt.Sprint(n)))
			_, errC := os.Stat(filepath.Join(chk, "commits", fmt.Sprint(n)))
			if errO != nil {
				break
			}
			if errC != nil {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no batch from %d on was ever in flight", from)
}

// lastLogged returns the highest N of <chk>/<dir>/N.
func lastLogged(t *testing.T, chk, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(chk, dir))
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for _, e := range ents {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "%d", &n); err == nil && fmt.Sprint(n) == e.Name() && n > last {
			last = n
		}
	}
	return last
}

// TestRunShutdownCommitsTheRunningBatch: SIGTERM while a slow sink holds a
// batch: sluice run admits nothing more, lets the batch finish and commit,
// says so, and exits 0; the next run re-runs nothing.
func TestRunShutdownCommitsTheRunningBatch(t *testing.T) {
	b := startOrders(t, 1000)
	p, chk := slowPipeline(t, b.Addr(), "5ms") // 100 rows: 0.5 s per batch
	cmd, out := sluiceChild(t, "run", p, "--ui-addr", "off", "--log-level", "info")
	waitOutput(t, out, "batch 1:")
	waitInFlight(t, chk, 2) // logged, not committed: it runs for 0.5 s
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, out.String())
	}
	log := out.String()
	for _, want := range []string{"signal received: no new batches; the running batch finishes and commits", "shutdownTimeout=30s",
		"stop requested: no new batches; finishing the running batch", "msg=stopped ", "lastCommittedBatch="} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
	offsets, commits := lastLogged(t, chk, "offsets"), lastLogged(t, chk, "commits")
	if offsets != commits || offsets < 2 {
		t.Fatalf("after the graceful stop offsets/%d and commits/%d: the running batch was not committed", offsets, commits)
	}
	if !strings.Contains(log, fmt.Sprintf("lastCommittedBatch=%d", commits)) || !strings.Contains(log, fmt.Sprintf("batch=%d", commits)) {
		t.Errorf("the log does not name batch %d as the last committed:\n%s", commits, log)
	}
	// The next run starts after it: nothing re-runs.
	again, out2 := sluiceChild(t, "run", p, "--ui-addr", "off", "--log-level", "info")
	waitOutput(t, out2, fmt.Sprintf("batch %d:", commits+1))
	again.Process.Signal(syscall.SIGTERM)
	if err := again.Wait(); err != nil {
		t.Fatalf("second run: %v\n%s", err, out2.String())
	}
	if s := out2.String(); strings.Contains(s, "re-running the last batch") || strings.Contains(s, fmt.Sprintf("batch %d:", commits)) {
		t.Fatalf("the second run re-ran a batch:\n%s", s)
	}
}

// TestRunShutdownTimeoutAbandons: a batch that cannot finish within
// --shutdown-timeout is abandoned; sluice run still exits 0 and says the
// batch re-runs from the checkpoint.
func TestRunShutdownTimeoutAbandons(t *testing.T) {
	b := startOrders(t, 1000)
	p, chk := slowPipeline(t, b.Addr(), "200ms") // 100 rows: 20 s per batch
	cmd, out := sluiceChild(t, "run", p, "--ui-addr", "off", "--log-level", "info", "--shutdown-timeout", "300ms")
	waitInFlight(t, chk, 0) // batch 0 runs for 20 s
	began := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, out.String())
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("exit took %s with a 300 ms shutdown timeout", d)
	}
	log := out.String()
	for _, want := range []string{"finishing the running batch", "batch=0",
		"stop timed out while a batch was running: abandoned it; it re-runs from the checkpoint on the next start"} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
	if _, err := os.Stat(filepath.Join(chk, "commits", "0")); err == nil {
		t.Error("commits/0 exists: the abandoned batch was committed")
	}
}

// TestRunSIGINTDuringStartupExitsZero: interrupting sluice run while it
// still tries to reach its brokers is not a failure.
func TestRunSIGINTDuringStartupExitsZero(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody answers Kafka on
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, chk := slowPipeline(t, addr, "1ms")
	cmd, out := sluiceChild(t, "run", p, "--ui-addr", "off", "--log-level", "info")
	// Start logs the memory budget once sluice run's signal handler is in
	// place and before it reaches for the brokers (a fixed sleep could
	// signal a child still starting up, which then dies of SIGINT).
	waitOutput(t, out, `msg="memory budget"`)
	time.Sleep(200 * time.Millisecond) // inside the connection retries
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sluice run after SIGINT during start-up: %v (want exit 0)\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "signal received during start-up") {
		t.Errorf("output lacks the start-up interruption:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(chk, "offsets", "0")); err == nil {
		t.Error("a batch was logged")
	}
}

// TestRunShutdownSignalTwice: the same signal delivered twice at once (as
// timeout(1) does: to the process, then to its group) still lets the
// running batch commit; a second signal a while later abandons it.
func TestRunShutdownSignalTwice(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		b := startOrders(t, 1000)
		p, chk := slowPipeline(t, b.Addr(), "5ms") // 100 rows: 0.5 s per batch
		cmd, out := sluiceChild(t, "run", p, "--ui-addr", "off", "--log-level", "info")
		waitOutput(t, out, "batch 1:")
		waitInFlight(t, chk, 2)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, out.String())
		}
		if s := out.String(); strings.Contains(s, "second signal") {
			t.Errorf("a duplicate delivery was taken for a second signal:\n%s", s)
		}
		if offsets, commits := lastLogged(t, chk, "offsets"), lastLogged(t, chk, "commits"); offsets != commits {
			t.Errorf("offsets/%d but commits/%d: the running batch was abandoned", offsets, commits)
		}
	})
	t.Run("second", func(t *testing.T) {
		b := startOrders(t, 1000)
		p, chk := slowPipeline(t, b.Addr(), "200ms") // 100 rows: 20 s per batch
		cmd, out := sluiceChild(t, "run", p, "--ui-addr", "off", "--log-level", "info")
		waitInFlight(t, chk, 0)
		cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(time.Second)
		began := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("sluice run after two signals: %v (want exit 0)\n%s", err, out.String())
		}
		if d := time.Since(began); d > 10*time.Second {
			t.Errorf("exit took %s after the second signal", d)
		}
		if s := out.String(); !strings.Contains(s, "second signal: abandoning the running batch now") {
			t.Errorf("output lacks the second signal:\n%s", s)
		}
		if _, err := os.Stat(filepath.Join(chk, "commits", "0")); err == nil {
			t.Error("commits/0 exists: the abandoned batch was committed")
		}
	})
}
