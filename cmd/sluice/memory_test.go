package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// startBrokerProcess runs `sluice broker` in a child process, so that the
// broker's memory is not counted in the query's.
func startBrokerProcess(t *testing.T, topic string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN_ARGS="+strings.Join([]string{"broker", "--listen", "127.0.0.1:0", "--topic", topic}, "\x1f"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "sluice broker listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return addr
		}
	}
	t.Fatal("broker process did not print its address")
	return ""
}

// rssOverhead is the resident memory sluice needs above its memory budget:
// the binary's mapped code, the Go runtime and goroutine stacks, the Kafka
// client, the metrics registry and bookkeeping. Measured at 50–70 MiB on
// this workload (docs/backpressure.md); the soft Go memory limit is budget +
// sluice.BudgetOverhead (64 MiB), which covers the heap but not the binary.
const rssOverhead = 80 << 20

var peakRE = regexp.MustCompile(`peak RSS: (\d+) bytes`)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// sluiceBinary builds cmd/sluice once per test run, as a release is built.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "sluice")
		// The release build (README, Dockerfile): pure Go, linked by Go's
		// own linker — its executable is about 15 MiB less resident than
		// an externally linked one (docs/benchmarks.md).
		cmd := exec.Command("go", "build", "-o", builtBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// runForPeakRSS drains the topic with `sluice run --stats` in a child
// process and returns its peak RSS.
func runForPeakRSS(t *testing.T, addr, budget string, want int) int64 {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "mem.yaml")
	opts := ""
	if budget != "" {
		opts = "options:\n  sluice.memory.budget: " + budget + "\n"
	}
	yaml := fmt.Sprintf(`name: mem
%ssource:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: mem
    startingOffsets: earliest
transform:
  - selectExpr: ["CAST(value AS STRING) AS json"]
sink:
  format: noop
  options:
    checkpointLocation: %s
    sluice.sink.delayPerRow: 2us
trigger:
  availableNow: true
`, opts, addr, filepath.Join(dir, "chk"))
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	progress := filepath.Join(dir, "progress.jsonl")
	// The real binary, not this test binary (whose test code and test-only
	// dependencies would count in the resident set).
	cmd := exec.Command(sluiceBinary(t), "run", p, "--stats", "--quiet", "--log-level", "warn", "--progress-file", progress, "--ui-addr", "off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sluice run: %v\n%s", err, out)
	}
	m := peakRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no peak RSS in output:\n%s", out)
	}
	data, _ := os.ReadFile(progress)
	rows := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var n int
		if i := strings.Index(line, `"numInputRows":`); i >= 0 {
			fmt.Sscanf(line[i+len(`"numInputRows":`):], "%d", &n)
		}
		rows += n
	}
	if rows != want {
		t.Fatalf("query read %d rows, want %d", rows, want)
	}
	peak, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return peak
}

// TestMemoryBudgetBoundsPeakRSS drains a backlog more than ten times what
// the budget holds, in a separate process, with the budget and with
// sluice.memory.budget: unlimited (no budget: Spark's behaviour).
func TestMemoryBudgetBoundsPeakRSS(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy test: set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	addr := startBrokerProcess(t, "mem:4")
	const n, size = 300_000, 1000 // ≈ 300 MB of values
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxBufferedRecords(50_000), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	val := []byte(strings.Repeat("x", size))
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: "mem", Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	cl.Close()

	const budget = 32 << 20
	with := runForPeakRSS(t, addr, "32MiB", n)
	without := runForPeakRSS(t, addr, "unlimited", n)
	t.Logf("peak RSS draining %d × %d B: with a 32 MiB budget %d MiB, unlimited %d MiB", n, size, with>>20, without>>20)
	if limit := int64(budget + rssOverhead); with > limit {
		t.Errorf("with budget: peak RSS %d MiB > budget + overhead %d MiB", with>>20, limit>>20)
	}
	if without <= with {
		t.Errorf("without budget the peak (%d MiB) should exceed the budgeted run's (%d MiB)", without>>20, with>>20)
	}
}
