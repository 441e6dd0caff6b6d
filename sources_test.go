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
			write("part-3."+f.format, 0, f.line(6, "c"))
			s2, ps2 := run("second")
			_, rows2, _ := s2.Table("second")
			if len(ps2) != 1 || len(rows2) != 1 || !strings.Contains(fmt.Sprint(rows2[0]), "6") {
				t.Fatalf("second run: %d batches, rows %v; want only the new file's row", len(ps2), rows2)
			}
		})
	}
}
