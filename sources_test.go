package sluice

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileSourceThroughEngine: a json file source honours maxFilesPerTrigger
// through the engine, and a restart reads only files added since.
func TestFileSourceThroughEngine(t *testing.T) {
	dir := t.TempDir()
	chk := t.TempDir()
	write := func(name string, lines ...string) {
		t.Helper()
		data := ""
		for _, l := range lines {
			data += l + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		write(fmt.Sprintf("part-%d.json", i), fmt.Sprintf(`{"id":%d,"name":"a%d"}`, 2*i, i), fmt.Sprintf(`{"id":%d,"name":"b%d"}`, 2*i+1, i))
		ts := time.Now().Add(time.Duration(i-10) * time.Second)
		os.Chtimes(filepath.Join(dir, fmt.Sprintf("part-%d.json", i)), ts, ts)
	}
	run := func(name string) (*Session, []*Progress) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := NewSession(WithLogger(quietLog))
		q, err := s.ReadStream().Format("json").
			Option("path", dir).Option("schema", "id BIGINT, name STRING").Option("maxFilesPerTrigger", 1).
			Load().Filter("id >= 0").
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
	write("part-3.json", `{"id":6,"name":"c"}`)
	s2, ps2 := run("second")
	_, rows2, _ := s2.Table("second")
	if len(ps2) != 1 || len(rows2) != 1 || rows2[0][0] != int64(6) {
		t.Fatalf("second run: %d batches, rows %v; want only the new file's row", len(ps2), rows2)
	}
}
