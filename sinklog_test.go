package sluice

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/testutil"
)

// The Delta sink logged through Go's default logger, out of reach of the
// session's logger: its "Skipping already committed batch" line of a
// replayed batch went to stderr without the query id.
func TestSinkLogsThroughQueryLogger(t *testing.T) {
	for _, format := range []string{"delta", "parquet"} {
		t.Run(format, func(t *testing.T) {
			dir, chk := t.TempDir(), t.TempDir()
			run := func() (string, string) {
				var logs testutil.SyncBuffer
				s := NewSession(WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				q, err := s.ReadStream().Format("rate-micro-batch").Option("rowsPerBatch", 5).Load().
					WriteStream().Format(format).Option("path", dir).Option("checkpointLocation", chk).
					Trigger(Once()).Start(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := q.AwaitTermination(ctx); err != nil {
					t.Fatal(err)
				}
				return logs.String(), q.ID()
			}
			run()
			// Forget that batch 0 was committed: the next run replays it,
			// and the sink, which has it already, skips it and says so.
			if err := os.Remove(filepath.Join(chk, "commits", "0")); err != nil {
				t.Fatal(err)
			}
			logs, id := run()
			var line string
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, "Skipping already committed batch") {
					line = l
				}
			}
			if line == "" || !strings.Contains(line, "query="+id) {
				t.Fatalf("no skip line with query=%s in the session's log:\n%s", id, logs)
			}
		})
	}
}
