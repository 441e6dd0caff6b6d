package file

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/testutil"
)

// duckDBDir is testutil.DuckDBDir: SLUICE_DUCKDB_DIR, or a skip (a
// failure under SLUICE_REQUIRE_INTEROP=1).
func duckDBDir(t *testing.T) string { return testutil.DuckDBDir(t) }

// verifyResult is verify.mjs's output.
type verifyResult struct {
	Kind        string           `json:"kind"`
	LatestBatch int64            `json:"latestBatch"`
	Files       []string         `json:"files"`
	Count       int              `json:"count"`
	Rows        []map[string]any `json:"rows"`
}

func runVerify(t *testing.T, duckDir, table string, args ...string) []byte {
	t.Helper()
	return testutil.RunVerify(t, duckDir, append(args, table)...)
}

// normalRows renders genRows(0, n) the way verify.mjs --rows does, after
// a JSON round trip, with grp "" read back as null (the default
// partition). JSON files hold timestamps in milliseconds, as Spark's
// writer's default timestampFormat does.
func normalRows(t *testing.T, n int, format string) []map[string]any {
	t.Helper()
	b := genRows(0, n)
	if format == JSON {
		ts := b.Columns[4].Ints
		for i := range ts {
			ts[i] -= ((ts[i] % 1000) + 1000) % 1000 // down to the millisecond
		}
	}
	var rows []map[string]any
	for r := 0; r < n; r++ {
		row := map[string]any{}
		for c, f := range testFields {
			v := b.Columns[c].Value(r)
			switch x := v.(type) {
			case nil:
			case int64:
				v = strconv.FormatInt(x, 10)
			case []byte:
				v = base64.StdEncoding.EncodeToString(x)
			case string:
				if f.Name == "grp" && x == "" {
					v = nil
				}
			case []any: // headers
				hs := []map[string]any{}
				for _, h := range batch.HeadersOf(x) {
					hs = append(hs, map[string]any{"key": h.Key, "value": base64.StdEncoding.EncodeToString(h.Value)})
				}
				v = hs
			}
			row[f.Name] = v
		}
		rows = append(rows, row)
	}
	data, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDuckDBReadsFileSink writes partitioned Parquet and JSON outputs with
// replays, an aborted task and an orphan file, then checks that DuckDB,
// reading the metadata log on its own, sees exactly the committed rows.
func TestDuckDBReadsFileSink(t *testing.T) {
	duck := duckDBDir(t)
	for _, format := range []string{"parquet", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			opts := map[string]string{"path": dir, "partitionBy": "grp"}
			s := mustNew(t, format, opts)
			stale := mustNew(t, format, opts)
			id := 0
			for b := int64(0); b < 12; b++ { // past a compaction
				if err := runBatch(t, s, b, []*batch.Batch{genRows(id, 4), genRows(id+4, 3)}); err != nil {
					t.Fatal(err)
				}
				id += 7
			}
			// A replay from a stale sink and an aborted task add nothing.
			if err := runBatch(t, stale, 3, []*batch.Batch{genRows(1000, 5)}); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			w, err := s.NewWriter(ctx, 12, 0, testSchema)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(ctx, genRows(2000, 5)); err != nil {
				t.Fatal(err)
			}
			w.Abort(ctx)
			// An orphan from a crashed attempt is on disk but not in the log.
			orphan := filepath.Join(dir, "grp=a", "part-00009-crashed.c000."+format)
			if err := os.WriteFile(orphan, []byte("not data"), 0o644); err != nil {
				t.Fatal(err)
			}

			var got verifyResult
			if err := json.Unmarshal(runVerify(t, duck, dir, "--rows", "--order", "id"), &got); err != nil {
				t.Fatal(err)
			}
			if got.Kind != "file" || got.LatestBatch != 11 || got.Count != id {
				t.Errorf("DuckDB: kind %s, latest batch %d, %d rows; want file, 11, %d", got.Kind, got.LatestBatch, got.Count, id)
			}
			if want := logged(t, dir); !reflect.DeepEqual(got.Files, want) {
				t.Errorf("DuckDB files %v\nReadLog      %v", got.Files, want)
			}
			want := normalRows(t, id, format)
			if len(got.Rows) != len(want) {
				t.Fatalf("DuckDB returned %d rows, want %d", len(got.Rows), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got.Rows[i], want[i]) {
					t.Fatalf("row %d:\nDuckDB %v\n  want %v", i, got.Rows[i], want[i])
				}
			}
		})
	}
}
