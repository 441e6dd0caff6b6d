package delta

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/testutil"
)

// duckDBDir is testutil.DuckDBDir: SLUICE_DUCKDB_DIR, or a skip (a
// failure under SLUICE_REQUIRE_INTEROP=1).
func duckDBDir(t *testing.T) string { return testutil.DuckDBDir(t) }

type deltaVerify struct {
	Kind             string           `json:"kind"`
	Version          int64            `json:"version"`
	Txn              map[string]int64 `json:"txn"`
	PartitionColumns []string         `json:"partitionColumns"`
	Files            []string         `json:"files"`
	Count            int              `json:"count"`
	Checkpoint       *struct {
		Version int64 `json:"version"`
		Size    int64 `json:"size"`
		Rows    int64 `json:"rows"`
		Agrees  bool  `json:"agrees"`
	} `json:"checkpoint"`
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows []map[string]any `json:"rows"`
}

// TestDuckDBReadsDeltaTable writes a partitioned table past a checkpoint,
// with a second query and replays, and checks DuckDB's own log replay
// (and its reading of our checkpoint) against Snapshot and the input rows.
func TestDuckDBReadsDeltaTable(t *testing.T) {
	duck := duckDBDir(t)
	dir := t.TempDir()
	opts := map[string]string{"path": dir, "partitionBy": "grp"}
	s, other := mustNew(t, opts, "q-main"), mustNew(t, opts, "q-other")
	stale := mustNew(t, opts, "q-main")
	id := 0
	for b := int64(0); b < 11; b++ {
		if err := runBatch(t, s, b, []*batch.Batch{genRows(id, 4), genRows(id+4, 4)}); err != nil {
			t.Fatal(err)
		}
		id += 8
	}
	if err := runBatch(t, stale, 4, []*batch.Batch{genRows(5000, 3)}); err != nil { // skipped
		t.Fatal(err)
	}
	if err := runBatch(t, other, 0, []*batch.Batch{genRows(id, 6)}); err != nil {
		t.Fatal(err)
	}
	id += 6

	out := testutil.RunVerify(t, duck, "--rows", "--order", "id", dir)
	var got deltaVerify
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	files, txn, version := mustSnapshot(t, dir)
	if got.Kind != "delta" || got.Version != version || version != 11 || !reflect.DeepEqual(got.Txn, txn) ||
		!reflect.DeepEqual(got.Txn, map[string]int64{"q-main": 10, "q-other": 0}) || !reflect.DeepEqual(got.PartitionColumns, []string{"grp"}) {
		t.Errorf("DuckDB: kind %s version %d txn %v parts %v; Snapshot: version %d txn %v", got.Kind, got.Version, got.Txn, got.PartitionColumns, version, txn)
	}
	if !reflect.DeepEqual(got.Files, files) {
		t.Errorf("DuckDB live files %v\nSnapshot       %v", got.Files, files)
	}
	if cp := got.Checkpoint; cp == nil || cp.Version != 10 || cp.Rows != cp.Size || !cp.Agrees {
		t.Errorf("checkpoint as DuckDB reads it: %+v", got.Checkpoint)
	}
	types := map[string]string{}
	for _, c := range got.Columns {
		types[c.Name] = c.Type
	}
	if types["ts"] != "TIMESTAMP WITH TIME ZONE" || types["day"] != "DATE" || types["n"] != "INTEGER" || types["id"] != "BIGINT" {
		t.Errorf("column types as DuckDB sees them: %v", types)
	}
	if got.Count != id {
		t.Errorf("DuckDB counted %d rows, want %d", got.Count, id)
	}
	want := expectedRows(t, id)
	if len(got.Rows) != len(want) {
		t.Fatalf("DuckDB returned %d rows, want %d", len(got.Rows), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got.Rows[i], want[i]) {
			t.Fatalf("row %d:\nDuckDB %v\n  want %v", i, got.Rows[i], want[i])
		}
	}
}

// expectedRows renders genRows(0, n) as verify.mjs --rows does, through a
// JSON round trip.
func expectedRows(t *testing.T, n int) []map[string]any {
	t.Helper()
	b := genRows(0, n)
	var rows []map[string]any
	for r := 0; r < n; r++ {
		row := map[string]any{}
		for c, f := range testFields {
			v := b.Columns[c].Value(r)
			switch x := v.(type) {
			case int64:
				v = strconv.FormatInt(x, 10)
			case []byte:
				v = base64.StdEncoding.EncodeToString(x)
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
