package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statefulRun is `sluice run` of a pipeline file in a child process.
type statefulRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
}

func startRun(t *testing.T, pipelinePath string) *statefulRun {
	t.Helper()
	r := &statefulRun{t: t}
	r.cmd = exec.Command(os.Args[0])
	r.cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN_ARGS="+strings.Join([]string{"run", pipelinePath}, "\x1f"))
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait() })
	return r
}

// waitFor waits until the console output has at least n batches whose
// rows hold every want row.
func (r *statefulRun) waitFor(want ...string) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows := consoleRows(r.stdout.String())
		missing := ""
		for _, w := range want {
			if !contains(rows, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("row %q never printed; stdout:\n%s\nstderr:\n%s", missing, r.stdout.String(), r.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (r *statefulRun) stop() string {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil {
		r.t.Fatalf("sluice run after SIGTERM: %v; stderr:\n%s", err, r.stderr.String())
	}
	return r.stdout.String()
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

var tableRow = regexp.MustCompile(`^\|(.*)\|$`)

// consoleRows returns the data rows of every table the console sink
// printed, as "a,b,c" with cells trimmed (header rows excluded).
func consoleRows(out string) []string {
	var rows []string
	header := false
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "+-") {
			header = !header && len(rows) >= 0
			continue
		}
		m := tableRow.FindStringSubmatch(l)
		if m == nil {
			header = false
			continue
		}
		cells := strings.Split(m[1], "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, strings.Join(cells, ","))
	}
	// Drop the header lines (the first row after each "Batch:" table top).
	var data []string
	for _, r := range rows {
		if strings.HasPrefix(r, "start,") || strings.HasPrefix(r, "device,") {
			continue
		}
		data = append(data, r)
	}
	return data
}

func writeJSON(t *testing.T, dir, name string, lines ...string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func reading(device string, seconds int) string {
	return fmt.Sprintf(`{"device":%q,"seconds":%d}`, device, seconds)
}

// An append-mode count per 10-second window with a watermark, from a
// pipeline file through the console sink: each window is printed once,
// only after the watermark passes its end, and state and watermark survive
// a SIGTERM restart.
func TestConsoleAppendWindowCountAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`name: buckets
options:
  spark.sql.shuffle.partitions: 3
source:
  format: json
  options:
    path: %s
    pathGlobFilter: "*.json"
    schema: device STRING, seconds BIGINT
    maxFilesPerTrigger: 1
transform:
  - withColumn: {name: ts, expr: "timestamp_seconds(seconds)"}
  - withWatermark: {eventTime: ts, delay: 10 seconds}
  - groupBy: ["window(ts, '10 seconds')", device]
    agg: ["count(*) AS n"]
  - selectExpr: ["window.start AS start", "window.end AS end", device, n]
sink:
  format: console
  outputMode: append
checkpointLocation: %s
trigger:
  processingTime: 100 milliseconds
`, in, filepath.Join(dir, "chk"))), 0o644)

	a := startRun(t, p)
	writeJSON(t, in, "1.json", reading("a", 10), reading("a", 12), reading("b", 15))
	// The window [10, 20) is complete only once the watermark passes its
	// end: a row at 31 moves it to 31 − 10 = 21.
	time.Sleep(500 * time.Millisecond)
	if rows := consoleRows(a.stdout.String()); len(rows) != 0 {
		t.Fatalf("rows printed before the watermark passed them: %v", rows)
	}
	w10 := "1970-01-01 00:00:10,1970-01-01 00:00:20,"
	w30 := "1970-01-01 00:00:30,1970-01-01 00:00:40,"
	writeJSON(t, in, "2.json", reading("a", 31))
	a.waitFor(w10+"a,2", w10+"b,1")
	outA := a.stop()

	b := startRun(t, p)
	// 15 is late (its window ends at 20 ≤ watermark 21): dropped. 50 moves
	// the watermark to 40, completing the window [30, 40).
	writeJSON(t, in, "3.json", reading("a", 35), reading("a", 15), reading("c", 50))
	b.waitFor(w30 + "a,2")
	outB := b.stop()

	rowsA, rowsB := consoleRows(outA), consoleRows(outB)
	sort.Strings(rowsA)
	sort.Strings(rowsB)
	if want := []string{w10 + "a,2", w10 + "b,1"}; strings.Join(rowsA, ";") != strings.Join(want, ";") {
		t.Errorf("first run printed %v, want %v", rowsA, want)
	}
	if want := []string{w30 + "a,2"}; strings.Join(rowsB, ";") != strings.Join(want, ";") {
		t.Errorf("second run printed %v, want %v (each window once; the late row dropped)", rowsB, want)
	}
}

// An update-mode count per key survives a restart and prints only the keys
// a batch changed.
func TestConsoleUpdateCountAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`name: counts
source:
  format: json
  options:
    path: %s
    pathGlobFilter: "*.json"
    schema: device STRING, seconds BIGINT
    maxFilesPerTrigger: 1
transform:
  - groupBy: [device]
    agg: ["count(*) AS n"]
sink:
  format: console
  outputMode: update
checkpointLocation: %s
trigger:
  processingTime: 100 milliseconds
`, in, filepath.Join(dir, "chk"))), 0o644)
	a := startRun(t, p)
	writeJSON(t, in, "1.json", reading("a", 1), reading("b", 2), reading("a", 3))
	a.waitFor("a,2", "b,1")
	writeJSON(t, in, "2.json", reading("b", 4))
	a.waitFor("b,2")
	outA := a.stop()
	b := startRun(t, p)
	writeJSON(t, in, "3.json", reading("a", 5))
	b.waitFor("a,3")
	outB := b.stop()
	if got := consoleRows(outA); strings.Join(got, ";") != "a,2;b,1;b,2" && strings.Join(got, ";") != "b,1;a,2;b,2" {
		t.Errorf("first run printed %v, want a,2 and b,1, then only b,2", got)
	}
	if got := consoleRows(outB); strings.Join(got, ";") != "a,3" {
		t.Errorf("after the restart printed %v, want only a,3 (the count kept, only the changed key)", got)
	}
}
