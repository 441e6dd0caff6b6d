package sluice

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink/delta"
)

// runExample runs a shipped pipeline file with its ${VAR}s pointing into
// a temporary directory, under Trigger.AvailableNow (it drains its input,
// runs the no-data batches the watermark calls for, and stops).
func runExample(t *testing.T, file string, env map[string]string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewSession(WithLogger(quietLog)).Pipeline(file, data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	q, err := w.Trigger(AvailableNow()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// examples/iot-window-delta.yaml end to end: 1-minute windows are written
// to the Delta table once, after the watermark passed their end; a late
// reading is dropped; state and watermark carry over to the next run.
func TestExampleIoTWindowDelta(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"IN_DIR": filepath.Join(dir, "in"), "OUT_DIR": filepath.Join(dir, "out"), "CHECKPOINT": filepath.Join(dir, "chk")}
	os.MkdirAll(env["IN_DIR"], 0o755)
	r := func(dev, ts string, temp float64) string {
		return fmt.Sprintf(`{"device":%q,"ts":"2024-05-01T%sZ","temperature":%g}`, dev, ts, temp)
	}
	writeFile(t, filepath.Join(env["IN_DIR"], "1.json"),
		r("d1", "10:00:05", 21), r("d1", "10:00:35", 23), r("d2", "10:00:10", 18.5), r("d1", "10:01:20", 25), r("d1", "10:05:00", 20))
	runExample(t, "examples/iot-window-delta.yaml", env) // watermark 10:03: minutes 10:00 and 10:01 are final
	writeFile(t, filepath.Join(env["IN_DIR"], "2.json"),
		r("d2", "10:00:50", 99), r("d1", "10:09:00", 22)) // 10:00 is late; 10:09 moves the watermark to 10:07
	runExample(t, "examples/iot-window-delta.yaml", env)

	files, _, _, err := delta.Snapshot(env["OUT_DIR"])
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, f := range files {
		tab, err := parquetio.ReadFile(filepath.Join(env["OUT_DIR"], f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(tab.Names, ",") != "minute,minute_end,device,readings,avg_temperature,max_temperature" {
			t.Fatalf("columns %v", tab.Names)
		}
		for _, row := range tab.Rows {
			start, end := time.UnixMicro(row[0].(int64)).UTC(), time.UnixMicro(row[1].(int64)).UTC()
			if end.Sub(start) != time.Minute {
				t.Errorf("window %v – %v", start, end)
			}
			rows = append(rows, fmt.Sprintf("%s %v %v %v %v", start.Format("15:04"), row[2], row[3], row[4], row[5]))
		}
	}
	sort.Strings(rows)
	want := []string{"10:00 d1 2 22 23", "10:00 d2 1 18.5 18.5", "10:01 d1 1 25 25", "10:05 d1 1 20 20"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Delta table:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// examples/cdc-dedup.yaml end to end: redelivered change events are written
// once, across runs, with the disk state store.
func TestExampleCDCDedup(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"IN_DIR": filepath.Join(dir, "in"), "OUT_DIR": filepath.Join(dir, "out"), "CHECKPOINT": filepath.Join(dir, "chk")}
	os.MkdirAll(env["IN_DIR"], 0o755)
	ev := func(op string, id, lsn, ms int64, name string) string {
		return fmt.Sprintf(`{"op":%q,"id":%d,"lsn":%d,"ts_ms":%d,"name":%q}`, op, id, lsn, ms, name)
	}
	const t0 = 1714557600000
	writeFile(t, filepath.Join(env["IN_DIR"], "1.json"),
		ev("c", 1, 100, t0, "ada"), ev("c", 2, 101, t0+1000, "bob"), ev("c", 1, 100, t0, "ada"))
	runExample(t, "examples/cdc-dedup.yaml", env)
	writeFile(t, filepath.Join(env["IN_DIR"], "2.json"),
		ev("c", 2, 101, t0+1000, "bob"), ev("u", 1, 102, t0+2000, "ada l."))
	runExample(t, "examples/cdc-dedup.yaml", env)

	var rows []string
	parts, _ := filepath.Glob(filepath.Join(env["OUT_DIR"], "*.parquet"))
	for _, f := range parts {
		tab, err := parquetio.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range tab.Rows {
			rows = append(rows, fmt.Sprintf("%v %v %v %v", row[0], row[1], row[2], row[4]))
		}
	}
	sort.Strings(rows)
	want := []string{"c 1 100 ada", "c 2 101 bob", "u 1 102 ada l."}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Parquet rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(env["CHECKPOINT"], "state", "0", "0")); err != nil {
		t.Fatalf("no state in Spark's layout: %v", err)
	}
}
