package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// statusTable runs `sluice status` and returns its table rows by
// "topic/partition" (and "TOTAL") as [committed, latest, lag], plus the
// whole output.
func statusTable(t *testing.T, chk, addr string) (map[string][3]string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"status", "--checkpoint", chk, "--bootstrap", addr}, &stdout, &stderr); code != 0 {
		t.Fatalf("sluice status: exit %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	rows := map[string][3]string{}
	header := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "TOPIC" {
			if strings.Join(f, " ") != "TOPIC PARTITION COMMITTED-OFFSET LATEST-OFFSET LAG" {
				t.Fatalf("header %q", line)
			}
			header = true
			continue
		}
		if header && len(f) == 5 {
			key := f[0] + "/" + f[1]
			if f[0] == "TOTAL" {
				key = "TOTAL"
			}
			rows[key] = [3]string{f[2], f[3], f[4]}
		}
	}
	if !header {
		t.Fatalf("no table in output:\n%s", out)
	}
	return rows, out
}

// TestStatusRunningAndStopped makes a checkpoint with a real query on the
// embedded broker and reads it with `sluice status` while the query runs
// (holding the checkpoint lock, a batch in flight) and after it stopped.
func TestStatusRunningAndStopped(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 2}, broker.TopicSpec{Name: "audit", Partitions: 1})
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte("o")})
	}
	for range 7 {
		recs = append(recs, &kgo.Record{Topic: "audit", Partition: 0, Value: []byte("a")})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)

	chk := filepath.Join(t.TempDir(), "chk")
	src, err := kafka.New(map[string]string{
		"kafka.bootstrap.servers": b.Addr(), "subscribePattern": "orders|audit",
		"startingOffsets": "earliest", "maxOffsetsPerTrigger": "30",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	blocked, release := make(chan struct{}), make(chan struct{})
	errCut := errors.New("cut short")
	q, err := engine.Start(context.Background(), engine.Config{
		Source: src, Sink: memory.New(), Trigger: trigger.Trigger{}, CheckpointDir: chk,
		Logger: slog.New(slog.DiscardHandler), Workers: 2,
		BeforeCommit: func(id int64) error {
			if id == 2 {
				close(blocked)
				<-release
				return errCut
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
		q.Stop()
	}()
	<-blocked

	// Batches 0 and 1 committed 60 of 107 records; batch 2 is in flight
	// and the query holds the checkpoint lock.
	committed := map[string]int64{}
	ro, err := checkpoint.OpenReadOnly(chk)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1} {
		_, srcs, err := ro.ReadOffsets(id)
		if err != nil {
			t.Fatal(err)
		}
		offs, err := kafka.ParseOffsetsJSON(srcs[0])
		if err != nil {
			t.Fatal(err)
		}
		for tp, off := range offs {
			committed[fmt.Sprintf("%s/%d", tp.Topic, tp.Partition)] = off
		}
	}
	latest := map[string]int64{"audit/0": 7, "orders/0": 50, "orders/1": 50}
	check := func(phase string, rows map[string][3]string, out string) {
		t.Helper()
		var total int64
		for key, l := range latest {
			want := [3]string{fmt.Sprint(committed[key]), fmt.Sprint(l), fmt.Sprint(l - committed[key])}
			total += l - committed[key]
			if rows[key] != want {
				t.Errorf("%s: row %s = %v, want %v\n%s", phase, key, rows[key], want, out)
			}
		}
		if total != 107-60 {
			t.Errorf("%s: lag total from the checkpoint %d, want 47", phase, total)
		}
		if want := [3]string{"60", "107", fmt.Sprint(total)}; rows["TOTAL"] != want {
			t.Errorf("%s: TOTAL %v, want %v\n%s", phase, rows["TOTAL"], want, out)
		}
		if len(rows) != 4 {
			t.Errorf("%s: %d rows, want 3 partitions and a total\n%s", phase, len(rows), out)
		}
		for _, s := range []string{"Last committed batch 1 ", "Batch 2 is planned but not committed"} {
			if !strings.Contains(out, s) {
				t.Errorf("%s: output lacks %q:\n%s", phase, s, out)
			}
		}
	}
	rows, out := statusTable(t, chk, b.Addr())
	check("running", rows, out)

	close(release)
	if err := q.AwaitTermination(context.Background()); !errors.Is(err, errCut) {
		t.Fatalf("query ended with %v, want %v", err, errCut)
	}
	// New data after the query stopped shows up as lag.
	brokertest.ProduceSync(t, b.Addr(), &kgo.Record{Topic: "orders", Partition: 1, Value: []byte("late")})
	latest["orders/1"] = 51
	committedTotal := int64(60)
	rows, out = statusTable(t, chk, b.Addr())
	latestTotal := int64(108)
	var lagTotal int64
	for key, l := range latest {
		lagTotal += l - committed[key]
		if want := [3]string{fmt.Sprint(committed[key]), fmt.Sprint(l), fmt.Sprint(l - committed[key])}; rows[key] != want {
			t.Errorf("stopped: row %s = %v, want %v\n%s", key, rows[key], want, out)
		}
	}
	if want := [3]string{fmt.Sprint(committedTotal), fmt.Sprint(latestTotal), fmt.Sprint(lagTotal)}; rows["TOTAL"] != want {
		t.Errorf("stopped: TOTAL %v, want %v\n%s", rows["TOTAL"], want, out)
	}
	if !strings.Contains(out, "Query "+q.ID()+",") {
		t.Errorf("output does not name query %s:\n%s", q.ID(), out)
	}
}

// TestStatusBeforeFirstCommitAndNewPartition reads a checkpoint with only
// the starting offsets, where the broker has a partition the checkpoint
// does not know.
func TestStatusBeforeFirstCommitAndNewPartition(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "t", Partitions: 2})
	brokertest.ProduceSync(t, b.Addr(),
		&kgo.Record{Topic: "t", Partition: 0, Value: []byte("a")},
		&kgo.Record{Topic: "t", Partition: 0, Value: []byte("b")},
		&kgo.Record{Topic: "t", Partition: 1, Value: []byte("c")})
	chk := t.TempDir()
	if err := os.WriteFile(filepath.Join(chk, "metadata"), []byte(`{"id":"q-1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(chk, "sources", "0"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Partition 1 is not in the starting offsets (added later).
	if err := os.WriteFile(filepath.Join(chk, "sources", "0", "0"), []byte("\x00v1\n{\"t\":{\"0\":1}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, out := statusTable(t, chk, b.Addr())
	want := map[string][3]string{"t/0": {"1", "2", "1"}, "t/1": {"-", "1", "1"}, "TOTAL": {"1", "3", "2"}}
	for k, w := range want {
		if rows[k] != w {
			t.Errorf("row %s = %v, want %v\n%s", k, rows[k], w, out)
		}
	}
	if !strings.Contains(out, "No batch committed yet") || !strings.Contains(out, "Query q-1,") {
		t.Errorf("output:\n%s", out)
	}
}

func TestStatusErrors(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o644)
	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, "commits"), 0o755)
	os.MkdirAll(filepath.Join(bad, "offsets"), 0o755)
	os.WriteFile(filepath.Join(bad, "commits", "3"), []byte("v1\n{}"), 0o644)
	os.WriteFile(filepath.Join(bad, "offsets", "3"), []byte("v2\n{}\n{}"), 0o644)
	purged := t.TempDir()
	os.MkdirAll(filepath.Join(purged, "commits"), 0o755)
	os.WriteFile(filepath.Join(purged, "commits", "5"), []byte("v1\n{}"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no flags", []string{"status"}, 2, "--checkpoint and --bootstrap are required"},
		{"extra argument", []string{"status", "--checkpoint", empty, "--bootstrap", "x:1", "more"}, 2, "unexpected arguments"},
		{"missing dir", []string{"status", "--checkpoint", filepath.Join(empty, "nope"), "--bootstrap", "127.0.0.1:1"}, 1, "no such file"},
		{"not a dir", []string{"status", "--checkpoint", file, "--bootstrap", "127.0.0.1:1"}, 1, "not a directory"},
		{"never started", []string{"status", "--checkpoint", empty, "--bootstrap", "127.0.0.1:1"}, 1, "has not started"},
		{"newer log version", []string{"status", "--checkpoint", bad, "--bootstrap", "127.0.0.1:1"}, 1, "maximum supported log version is v1, but encountered v2"},
		{"offsets purged", []string{"status", "--checkpoint", purged, "--bootstrap", "127.0.0.1:1"}, 1, "batch 5 is committed but its offsets file is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain(tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}

func TestStatusBrokerUnreachable(t *testing.T) {
	chk := t.TempDir()
	os.MkdirAll(filepath.Join(chk, "sources", "0"), 0o755)
	os.WriteFile(filepath.Join(chk, "sources", "0", "0"), []byte(`{"t":{"0":1}}`), 0o644)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := realMain([]string{"status", "--checkpoint", chk, "--bootstrap", "127.0.0.1:1", "--timeout", "500ms"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "list latest offsets of t from 127.0.0.1:1") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with a 500ms timeout", d)
	}
}

// TestStatusReadsOffsetsFiles reads offsets files of a committed batch
// through `sluice status`'s checkpoint reader: Spark's and ours, and the
// damaged ones it must refuse.
func TestStatusReadsOffsetsFiles(t *testing.T) {
	tests := []struct {
		name, data string
		ts         int64
		offs, err  string
	}{
		{"spark file", "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1700000000123,\"conf\":{}}\n{\"t\":{\"0\":5}}", 1700000000123, `{"t":{"0":5}}`, ""},
		{"trailing newline and two sources", "v1\n{}\n{\"a\":{\"0\":1}}\n{\"b\":{\"0\":2}}\n", 0, `{"a":{"0":1}}`, ""},
		{"empty", "", 0, "", "file is empty"},
		{"no source", "v1\n{}", 0, "", "the source has no offset"},
		{"source without offset", "v1\n{}\n-", 0, "", "the source has no offset"},
		{"bad metadata", "v1\n{\n{}", 0, "", "batch metadata"},
		{"bad offset", "v1\n{}\n{\"t\":", 0, "", "not valid JSON"},
		{"bad version", "vx\n{}\n{}", 0, "", "Log file was malformed: failed to read correct log version"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		for _, f := range []struct{ path, data string }{{"offsets/7", tt.data}, {"commits/7", "v1\n{}"}} {
			p := filepath.Join(dir, filepath.FromSlash(f.path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		st, err := readCheckpointState(dir)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || st.CommittedAt.UnixMilli() != tt.ts || st.Offsets != tt.offs || st.Committed != 7 {
			t.Errorf("%s: (%+v, %v), want (%d, %q)", tt.name, st, err, tt.ts, tt.offs)
		}
	}
}
