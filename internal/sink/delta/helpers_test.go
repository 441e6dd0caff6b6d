package delta

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/storage"
)

var testFields = []batch.Field{
	{Name: "id", Type: batch.Long},
	{Name: "grp", Type: batch.String},
	{Name: "v", Type: batch.Double},
	{Name: "ts", Type: batch.Timestamp},
	{Name: "day", Type: batch.Date},
	{Name: "ok", Type: batch.Boolean},
	{Name: "n", Type: batch.Int},
	{Name: "bin", Type: batch.Binary},
	{Name: "h", Type: batch.Headers},
}

var testSchema = batch.Schema{Fields: testFields}

// genRows builds rows with ids [from, from+n); grp cycles "x", "y/z", null;
// every 4th row has null v, ts, day, ok, n, bin and h.
func genRows(from, n int) *batch.Batch {
	cols := make([]*batch.Column, len(testFields))
	for c, f := range testFields {
		cols[c] = batch.NewColumn(f.Type, n)
	}
	for k := 0; k < n; k++ {
		id := from + k
		cols[0].AppendInt(int64(id))
		switch id % 3 {
		case 0:
			cols[1].AppendBytes([]byte("x"))
		case 1:
			cols[1].AppendBytes([]byte("y/z"))
		default:
			cols[1].AppendNull()
		}
		if id%4 == 3 {
			for _, c := range cols[2:] {
				c.AppendNull()
			}
			continue
		}
		cols[2].AppendFloat(float64(id) * 1.5)
		cols[3].AppendInt(1_700_000_000_000_000 + int64(id)*1_234_567)
		cols[4].AppendInt(19_000 + int64(id))
		cols[5].AppendBool(id%2 == 0)
		cols[6].AppendInt(int64(-id))
		cols[7].AppendBytes([]byte{byte(id)})
		cols[8].AppendHeaders([]batch.Header{{Key: "k", Value: []byte(fmt.Sprint(id))}})
	}
	return batch.New(testSchema, cols, n)
}

// runBatch drives the sink protocol: a writer per task, concurrently,
// then Commit.
func runBatch(t *testing.T, s sink.Sink, id int64, tasks []*batch.Batch) error {
	t.Helper()
	ctx := context.Background()
	msgs := make([]sink.Message, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, b := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.NewWriter(ctx, id, i, b.Schema)
			if err != nil {
				errs[i] = err
				return
			}
			if err := w.Write(ctx, b); err != nil {
				w.Abort(ctx)
				errs[i] = err
				return
			}
			msgs[i], errs[i] = w.Close(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return s.Commit(ctx, id, msgs)
}

// writeTasks runs the writers of a batch and returns their messages
// without committing.
func writeTasks(t *testing.T, s sink.Sink, id int64, tasks []*batch.Batch) []sink.Message {
	t.Helper()
	ctx := context.Background()
	var msgs []sink.Message
	for i, b := range tasks {
		w, err := s.NewWriter(ctx, id, i, b.Schema)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		m, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func mustNew(t *testing.T, opts map[string]string, queryID string) *Sink {
	t.Helper()
	s, err := New(opts, queryID)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return time.UnixMilli(1_714_564_800_000) }
	return s
}

// dataFiles lists the regular files outside _delta_log, relative, sorted.
func dataFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == LogDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// logFiles lists _delta_log's entries, sorted.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, LogDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func mustSnapshot(t *testing.T, dir string) ([]string, map[string]int64, int64) {
	t.Helper()
	files, txn, v, err := Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return files, txn, v
}

// logIn opens the Delta log in the local directory dir.
func logIn(dir string) (deltaLog, error) {
	st, err := storage.NewLocal(dir)
	if err != nil {
		return deltaLog{}, err
	}
	return deltaLog{dir: st.Root(), st: st}, nil
}

// mustOpenLog opens the Delta log in dir.
func mustOpenLog(t *testing.T, dir string) deltaLog {
	t.Helper()
	lg, err := logIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	return lg
}

// loadState replays the Delta log in dir.
func loadState(dir string, useCheckpoints bool) (*state, error) {
	lg, err := logIn(dir)
	if err != nil {
		return nil, err
	}
	return lg.load(useCheckpoints)
}

// readCheckpoint loads the checkpoint file at path.
func readCheckpoint(path string) (*state, error) {
	lg, err := logIn(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return lg.readCheckpointFile(filepath.Base(path))
}

// listDeltaLog lists the Delta log in dir.
func listDeltaLog(dir string) (logListing, error) {
	lg, err := logIn(dir)
	if err != nil {
		return logListing{}, err
	}
	return lg.list()
}
