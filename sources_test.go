package sluice

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFileSourceThroughEngine: each file format honours maxFilesPerTrigger
// through the engine (asserted from progress), and a restart reads only the
// files added since — every file exactly once.
func TestFileSourceThroughEngine(t *testing.T) {
	formats := []struct {
		format string
		opts   map[string]string
		line   func(id int, name string) string
	}{
		{"json", map[string]string{"schema": "id BIGINT, name STRING"}, func(id int, name string) string {
			return fmt.Sprintf(`{"id":%d,"name":%q}`, id, name)
		}},
		{"csv", map[string]string{"schema": "id BIGINT, name STRING"}, func(id int, name string) string {
			return fmt.Sprintf("%d,%s", id, name)
		}},
		{"text", nil, func(id int, name string) string { return fmt.Sprintf("%d %s", id, name) }},
	}
	for _, f := range formats {
		t.Run(f.format, func(t *testing.T) {
			dir := t.TempDir()
			chk := t.TempDir()
			write := func(name string, age time.Duration, lines ...string) {
				t.Helper()
				data := ""
				for _, l := range lines {
					data += l + "\n"
				}
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
				ts := time.Now().Add(-age)
				os.Chtimes(p, ts, ts)
			}
			for i := 0; i < 3; i++ {
				write(fmt.Sprintf("part-%d.%s", i, f.format), time.Duration(10-i)*time.Second, f.line(2*i, fmt.Sprint("a", i)), f.line(2*i+1, fmt.Sprint("b", i)))
			}
			run := func(name string) (*Session, []*Progress) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				s := NewSession(WithLogger(quietLog))
				q, err := s.ReadStream().Format(f.format).
					Option("path", dir).Options(f.opts).Option("maxFilesPerTrigger", 1).
					Load().
					WriteStream().Format("memory").QueryName(name).Option("checkpointLocation", chk).
					Trigger(AvailableNow()).Start(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := q.AwaitTermination(ctx); err != nil {
					t.Fatal(err)
				}
				return s, q.RecentProgress()
			}
			s, ps := run("first")
			if len(ps) != 3 {
				t.Fatalf("%d batches, want 3 (one file per trigger)", len(ps))
			}
			for _, p := range ps {
				if p.NumInputRows != 2 {
					t.Fatalf("batch %d read %d rows, want 2 (one file)", p.BatchID, p.NumInputRows)
				}
			}
			_, rows, _ := s.Table("first")
			if len(rows) != 6 {
				t.Fatalf("first run: %d rows, want 6", len(rows))
			}
			// Spark's layout: the seen-files log starts at sources/0/0 with
			// batch 0's file; batch 0 has no start offset.
			for i, p := range ps {
				start, end := string(p.Sources[0].StartOffset), string(p.Sources[0].EndOffset)
				wantStart := fmt.Sprintf(`{"logOffset":%d}`, i-1)
				if i == 0 {
					wantStart = ""
				}
				if start != wantStart || end != fmt.Sprintf(`{"logOffset":%d}`, i) {
					t.Errorf("batch %d: startOffset %q endOffset %q, want %q and logOffset %d", i, start, end, wantStart, i)
				}
			}
			for i := 0; i < 3; i++ {
				log, err := os.ReadFile(filepath.Join(chk, "sources", "0", fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf(`{"path":"file://%s","timestamp":`, filepath.Join(dir, fmt.Sprintf("part-%d.%s", i, f.format)))
				if lines := strings.Split(string(log), "\n"); len(lines) != 2 || lines[0] != "v1" ||
					!strings.HasPrefix(lines[1], want) || !strings.HasSuffix(lines[1], fmt.Sprintf(`,"batchId":%d}`, i)) {
					t.Errorf("sources/0/%d:\n%s\nwant v1 then %s…,\"batchId\":%d}", i, log, want, i)
				}
			}
			write("part-3."+f.format, 0, f.line(6, "c"))
			s2, ps2 := run("second")
			_, rows2, _ := s2.Table("second")
			if len(ps2) != 1 || len(rows2) != 1 || !strings.Contains(fmt.Sprint(rows2[0]), "6") {
				t.Fatalf("second run: %d batches, rows %v; want only the new file's row", len(ps2), rows2)
			}
		})
	}
}

// TestFilePartitionTypeInferenceConf: the session setting reaches the
// file source: partition columns are typed, or all STRING when it is off.
func TestFilePartitionTypeInferenceConf(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "n=1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "n=1", "a.json"), []byte(`{"v":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ conf, want string }{{"", "struct<v:int,n:int>"}, {"false", "struct<v:int,n:string>"}} {
		s := NewSession(WithLogger(quietLog))
		if tc.conf != "" {
			s.SetConf("spark.sql.sources.partitionColumnTypeInference.enabled", tc.conf)
		}
		sch, err := s.ReadStream().Format("json").Option("path", dir).Option("schema", "v INT").Load().Schema()
		if err != nil || sch.String() != tc.want {
			t.Errorf("partitionColumnTypeInference %q: schema %v, %v; want %s", tc.conf, sch, err, tc.want)
		}
	}
}
