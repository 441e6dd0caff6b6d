package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/testutil"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// TestMain lets a test re-run this binary as the sluice command.
func TestMain(m *testing.M) {
	if args := os.Getenv("SLUICE_TEST_MAIN_ARGS"); args != "" {
		os.Exit(realMain(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// selfCommand runs this test binary as `sluice ARGS…` (TestMain passes the
// arguments to realMain); ctx kills it.
func selfCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN_ARGS="+strings.Join(args, "\x1f"))
	return cmd
}

func writePipeline(t *testing.T, addr, trigger, extra string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "p.yaml")
	yaml := fmt.Sprintf(`name: cli
source:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: orders
    startingOffsets: earliest
    maxOffsetsPerTrigger: 7
%s
transform:
  - selectExpr: ["CAST(value AS STRING) AS json"]
  - withColumn: {name: processed_ts, expr: "current_timestamp()"}
sink:
  format: console
  options:
    checkpointLocation: %s
trigger:
  %s
`, addr, extra, filepath.Join(dir, "chk"), trigger)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func startOrders(t *testing.T, n int) *broker.Broker {
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 2})
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	return b
}

func TestRunAvailableNowExitsZeroWithSparkConsoleOutput(t *testing.T) {
	b := startOrders(t, 20)
	p := writePipeline(t, b.Addr(), "availableNow: true", "")
	progressFile := filepath.Join(t.TempDir(), "progress.jsonl")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"run", p, "--progress-file", progressFile, "--log-level", "error"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	// 20 records at 7 per batch: batches 0..2.
	for _, want := range []string{"Batch: 0\n", "Batch: 1\n", "Batch: 2\n", "json|", "|        processed_ts|", `{"n":0}`} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Batch: 3") {
		t.Errorf("ran more than 3 batches:\n%s", out)
	}
	if n := strings.Count("\n"+stderr.String(), "\nbatch "); n != 3 {
		t.Errorf("stderr has %d batch lines, want 3:\n%s", n, stderr.String())
	}
	data, err := os.ReadFile(progressFile)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 3 {
		t.Errorf("progress file has %d lines, want 3", lines)
	}
}

func TestRunFailuresExitNonZero(t *testing.T) {
	b := startOrders(t, 1)
	cases := []struct {
		name, trigger, extra, want string
	}{
		{"bad expression", "once: true", "", ""},
		{"bad option", "once: true", "    failOnDataLoss: maybe", `"failOnDataLoss"`},
		{"unknown key", "once: true", "  extra: 1", `unknown key "extra"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writePipeline(t, b.Addr(), c.trigger, c.extra)
			if c.name == "bad expression" {
				data, _ := os.ReadFile(p)
				os.WriteFile(p, bytes.Replace(data, []byte("CAST(value AS STRING)"), []byte("CAST(value AS)"), 1), 0o644)
				c.want = "p.yaml:"
			}
			var stdout, stderr bytes.Buffer
			code := realMain([]string{"run", p}, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit 0, want failure; stderr:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("stderr lacks %q:\n%s", c.want, stderr.String())
			}
		})
	}
}

func TestRunStopsOnSIGTERMWithExitZero(t *testing.T) {
	b := startOrders(t, 5)
	p := writePipeline(t, b.Addr(), "processingTime: 100 milliseconds", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN_ARGS="+strings.Join([]string{"run", p}, "\x1f"))
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.String(), "Batch: 0") {
		if time.Now().After(deadline) {
			t.Fatalf("no batch printed; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sluice run after SIGTERM: %v (want exit 0); stderr:\n%s", err, stderr.String())
	}
}

// syncBuffer is testutil.SyncBuffer.
type syncBuffer = testutil.SyncBuffer

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		var stdout, stderr bytes.Buffer
		if code := realMain([]string{arg}, &stdout, &stderr); code != 0 {
			t.Fatalf("sluice %s: exit %d, stderr %s", arg, code, stderr.String())
		}
		out := strings.TrimSpace(stdout.String())
		if !strings.HasPrefix(out, "sluice ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 0 {
			t.Errorf("sluice %s printed %q, want one line naming the version and %s", arg, out, runtime.Version())
		}
	}
	if v := version(); !strings.Contains(v, "(devel)") && !strings.Contains(v, " v") {
		t.Errorf("version() = %q: neither a module version nor (devel)", v)
	}
}

// TestHelpShowsRealDefaults: every command's --help lists its flags with
// the defaults they really have — no sentinel such as -1 standing for
// "computed" — and leaves out the flags sluice passes to itself.
func TestHelpShowsRealDefaults(t *testing.T) {
	for _, c := range commands {
		var stderr bytes.Buffer
		code := realMain([]string{c.name, "--help"}, io.Discard, &stderr)
		help := stderr.String()
		if code != 0 || !strings.HasPrefix(help, "usage: sluice "+c.name) {
			t.Errorf("sluice %s --help: exit %d, output %q", c.name, code, help)
			continue
		}
		for _, bad := range []string{"internal:", "(default -1", "(default \"\")", "-child-raw-consume"} {
			if strings.Contains(help, bad) {
				t.Errorf("sluice %s --help shows %q:\n%s", c.name, bad, help)
			}
		}
		for _, f := range flagsOf(c) {
			if !strings.Contains(help, "  -"+f.Name) {
				t.Errorf("sluice %s --help does not list -%s", c.name, f.Name)
			}
			if strings.HasPrefix(f.DefValue, "-") && !strings.Contains(f.Usage, "(default") {
				t.Errorf("sluice %s -%s: default %s looks like a sentinel and the text does not say the real one", c.name, f.Name, f.DefValue)
			}
		}
	}
	var stderr bytes.Buffer
	realMain([]string{"demo", "--help"}, io.Discard, &stderr)
	if !strings.Contains(stderr.String(), "(default 10000)") {
		t.Errorf("demo --help does not show maxOffsetsPerTrigger's default:\n%s", stderr.String())
	}
}
