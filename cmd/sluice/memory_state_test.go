package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMemoryBudgetStateDedup5M is issue 12's memory acceptance: 5 million
// distinct keys through dropDuplicates (no watermark, so state only grows)
// with sluice.memory.budget 64MiB, in a child process running the real
// binary. The memory provider must stop the query with the state-memory
// error (operator, bytes, remedies) before the process runs out of memory;
// the disk provider must keep every key and finish with a peak RSS within
// the budget + 96 MiB. Heavy (≈ 1 minute): SLUICE_SERIAL_TESTS=1.
func TestMemoryBudgetStateDedup5M(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy test: set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	const (
		files, perFile = 20, 250_000
		keys           = files * perFile
		budget         = 64 << 20
		slack          = 96 << 20
	)
	in := filepath.Join(t.TempDir(), "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	for f := 0; f < files; f++ {
		fh, err := os.Create(filepath.Join(in, fmt.Sprintf("keys-%02d.txt", f)))
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriterSize(fh, 1<<20)
		for i := 0; i < perFile; i++ {
			fmt.Fprintf(w, "order-%09d\n", f*perFile+i)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}

	t.Run("memory provider fails cleanly", func(t *testing.T) {
		out, peak, progress, err := runDedup(t, in, "memory")
		if err == nil {
			t.Fatalf("the query kept %d distinct keys in a 64 MiB budget without failing:\n%s", keys, out)
		}
		t.Logf("peak RSS %d MiB; error: %s", peak>>20, lastLines(out, 3))
		for _, want := range []string{
			"stateful operator 0 (dedupe) stopped the query",
			"over its share of the memory budget (32.0 MiB)",
			"add a watermark so old state is evicted",
			"raise sluice.memory.budget",
			"use the disk state store (spark.sql.streaming.stateStore.providerClass=disk)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the error lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "out of memory") || strings.Contains(out, "signal: killed") {
			t.Errorf("the process ran out of memory:\n%s", out)
		}
		if peak > budget+slack {
			t.Errorf("peak RSS %d MiB > budget + 96 MiB", peak>>20)
		}
		if rows := sumInputRows(progress); rows >= keys {
			t.Errorf("the failed query reports all %d rows committed", rows)
		}
	})

	t.Run("disk provider completes", func(t *testing.T) {
		out, peak, progress, err := runDedup(t, in, "disk")
		if err != nil {
			t.Fatalf("sluice run: %v\n%s", err, out)
		}
		rows := sumInputRows(progress)
		last := progress[len(progress)-1]
		var total int64
		for _, op := range last.StateOperators {
			total += op.NumRowsTotal
		}
		var emitted int64
		for _, p := range progress {
			emitted += p.Sink.NumOutputRows
		}
		t.Logf("disk provider: %d rows in %d batches, %d emitted, %d keys in state, peak RSS %d MiB (limit %d MiB)",
			rows, len(progress), emitted, total, peak>>20, (budget+slack)>>20)
		if rows != keys || total != keys || emitted != keys {
			t.Errorf("read %d rows, emitted %d, state holds %d keys; want %d each", rows, emitted, total, keys)
		}
		if peak > budget+slack {
			t.Errorf("peak RSS %d MiB > budget + 96 MiB (%d MiB)", peak>>20, (budget+slack)>>20)
		}
	})
}

// dedupProgress is what the test reads of a progress line.
type dedupProgress struct {
	NumInputRows   int64 `json:"numInputRows"`
	StateOperators []struct {
		NumRowsTotal int64 `json:"numRowsTotal"`
	} `json:"stateOperators"`
	Sink struct {
		NumOutputRows int64 `json:"numOutputRows"`
	} `json:"sink"`
}

// runDedup runs `sluice run --stats` on a dropDuplicates pipeline over the
// text files in dir with the given state provider and a 64 MiB budget, and
// returns its output, peak RSS, progress lines and exit error.
func runDedup(t *testing.T, dir, provider string) (string, int64, []dedupProgress, error) {
	t.Helper()
	work := t.TempDir()
	p := filepath.Join(work, "dedup.yaml")
	yaml := fmt.Sprintf(`name: dedup-5m
options:
  sluice.memory.budget: 64MiB
  spark.sql.shuffle.partitions: 4
  spark.sql.streaming.stateStore.providerClass: %s
source:
  format: text
  options:
    path: %s
    maxFilesPerTrigger: 1
transform:
  - dropDuplicates: [value]
sink:
  format: noop
  options:
    checkpointLocation: %s
trigger:
  availableNow: true
`, provider, dir, filepath.Join(work, "chk"))
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	progressFile := filepath.Join(work, "progress.jsonl")
	cmd := exec.Command(sluiceBinary(t), "run", p, "--stats", "--quiet", "--log-level", "warn", "--progress-file", progressFile, "--ui-addr", "off")
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	m := peakRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no peak RSS in the output (exit: %v):\n%s", err, out)
	}
	peak, _ := strconv.ParseInt(m[1], 10, 64)
	data, _ := os.ReadFile(progressFile)
	var progress []dedupProgress
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var pr dedupProgress
		if jerr := json.Unmarshal([]byte(line), &pr); jerr != nil {
			t.Fatalf("progress line: %v\n%s", jerr, line)
		}
		progress = append(progress, pr)
	}
	if err == nil && len(progress) == 0 {
		t.Fatalf("no progress:\n%s", out)
	}
	return out, peak, progress, err
}

func sumInputRows(progress []dedupProgress) int64 {
	var n int64
	for _, p := range progress {
		n += p.NumInputRows
	}
	return n
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
