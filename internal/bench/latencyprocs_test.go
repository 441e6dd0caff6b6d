package bench

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/progress"
)

// shCommand runs script under sh for any sluice arguments, which it
// receives as "$@" and writes to args.
func shCommand(script string, args *[]string) func(...string) *exec.Cmd {
	return func(a ...string) *exec.Cmd {
		*args = a
		return exec.Command("sh", append([]string{"-c", script, "sh"}, a...)...)
	}
}

// TestBrokerChild: the address comes from the child's "bootstrap servers:"
// line, the topic and its partitions are passed as `sluice broker` flags,
// and stop ends a child that waits for a signal.
func TestBrokerChild(t *testing.T) {
	var args []string
	cfg := &Config{Command: shCommand(`echo "sluice broker listening on 127.0.0.1:4567"; echo "bootstrap servers: 127.0.0.1:4567"; trap 'exit 0' INT; while :; do sleep 0.05; done`, &args)}
	b, err := startBrokerChild(context.Background(), cfg, "lat", 8)
	if err != nil {
		t.Fatal(err)
	}
	if b.addr != "127.0.0.1:4567" {
		t.Errorf("address %q, want 127.0.0.1:4567", b.addr)
	}
	if got := strings.Join(args, " "); !strings.HasPrefix(got, "broker ") || !strings.Contains(got, "--topic lat:8") || !strings.Contains(got, "--listen 127.0.0.1:0") {
		t.Errorf("arguments %q", got)
	}
	stopped := make(chan struct{})
	go func() { b.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("stop did not end the broker child")
	}

	// A child that exits without listening is an error, not a hang.
	cfg.Command = shCommand(`echo "no such flag" >&2; exit 2`, &args)
	if _, err := startBrokerChild(context.Background(), cfg, "lat", 8); err == nil || !strings.Contains(err.Error(), "before it listened") {
		t.Errorf("err %v, want the child's early exit", err)
	}
}

// TestLoadgenChild: `sluice loadgen --json`'s result is read back, and the
// load is the in-process one's (shape, seed, keys, buffer, rate, length).
func TestLoadgenChild(t *testing.T) {
	var args []string
	// The script spins a little first: the child's CPU time is reported.
	cfg := &Config{Partitions: 8, Command: shCommand(`i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo '{"duration_sec":10,"asked":100000,"acked":99990,"failed":0,"skipped":0,"asked_per_sec":10000,"achieved_per_sec":9999,"throttled":true,"partition_counts":[1]}'`, &args)}
	r, err := loadgenChild(context.Background(), cfg, "127.0.0.1:4567", "lat", 10000, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Duration != 10*time.Second || r.Acked != 99990 || r.Achieved != 9999 || !r.Throttled || r.CPU <= 0 {
		t.Errorf("result %+v", r)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{"loadgen ", "--bootstrap 127.0.0.1:4567", "--topic lat", "--partitions 8", "--rate 10000", "--duration 10s", "--shape orders", "--seed 1", "--keys 1000", "--max-buffered 100000", "--json"} {
		if !strings.Contains(got, want) {
			t.Errorf("arguments %q lack %q", got, want)
		}
	}
	cfg.Command = shCommand(`echo "produce failed" >&2; exit 1`, &args)
	if _, err := loadgenChild(context.Background(), cfg, "a:1", "lat", 1, time.Second); err == nil || !strings.Contains(err.Error(), "produce failed") {
		t.Errorf("err %v, want the child's stderr", err)
	}
}

// TestTailAndPhases: the tail is the records at or above the p99, with
// their wait before their batch, their batch's length and its log writes
// averaged; the phases sum each part over every batch.
func TestTailAndPhases(t *testing.T) {
	ps := []*progress.Progress{
		{BatchDuration: 4, DurationMs: map[string]int64{"latestOffset": 1, "walCommit": 1, "addBatch": 1, "commitOffsets": 1}},
		{BatchDuration: 100, DurationMs: map[string]int64{"walCommit": 60, "addBatch": 2, "commitOffsets": 30}},
		{BatchDuration: 10, DurationMs: map[string]int64{"latestOffset": 2, "addBatch": 8}},
	}
	lat := []recordLatency{
		{total: 5, before: 1, batch: 0},
		{total: 104, before: 4, batch: 1},
		{total: 110, before: 10, batch: 1},
		{total: 120, before: 110, batch: 2}, // waited behind batch 1
	}
	tl := tailOf(lat, 104, ps)
	want := LatencyTail{Records: 3, Batches: 2, BeforeBatchMs: (4 + 10 + 110) / 3.0, BatchMs: (100 + 100 + 10) / 3.0, LogWritesMs: (90 + 90 + 0) / 3.0}
	if tl == nil || *tl != want {
		t.Errorf("tail %+v, want %+v", tl, want)
	}
	if got, want := phasesOf(ps), (Phases{BatchMs: 114, LatestOffsetMs: 3, WalCommitMs: 61, AddBatchMs: 11, CommitOffsetsMs: 31}); got != want {
		t.Errorf("phases %+v, want %+v", got, want)
	}
	if tailOf(lat, 1000, ps) != nil {
		t.Error("a tail above every record should be nil")
	}
}

// TestChildrenCPU: the query's and the broker's CPU time are read from
// /proc by process id, and not at all for an in-process run (pid 0).
func TestChildrenCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	for x, start := 0, time.Now(); time.Since(start) < 50*time.Millisecond; x++ { // spin: at least a clock tick
	}
	c := childrenCPU(os.Getpid(), os.Getpid())
	if !c.ok || c.query <= 0 || c.broker != c.query {
		t.Errorf("own process read as %+v, want both its CPU time", c)
	}
	if c := childrenCPU(0, os.Getpid()); c.ok {
		t.Errorf("in-process query read as %+v, want not ok", c)
	}
}

func TestLatencyProfilePath(t *testing.T) {
	for _, c := range []struct {
		label string
		async bool
		want  string
	}{
		{"light load", false, "/p/q-light-load.pprof"},
		{"light load", true, "/p/q-light-load-async.pprof"},
		{"at 50 % of capacity", false, "/p/q-at-50-of-capacity.pprof"},
		{"capacity probe", false, "/p/q-capacity-probe.pprof"},
	} {
		if got := LatencyProfilePath("/p/q", c.label, c.async); got != c.want {
			t.Errorf("LatencyProfilePath(%q, %v) = %q, want %q", c.label, c.async, got, c.want)
		}
	}
}
