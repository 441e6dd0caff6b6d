package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
)

// logLines reads commit v as a list of (action name, body) pairs.
func logLines(t *testing.T, dir string, v int64) ([]string, []map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, LogDir, commitName(v)))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var bodies []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if len(m) != 1 {
			t.Fatalf("line %q holds %d actions", line, len(m))
		}
		for k, body := range m {
			kinds = append(kinds, k)
			bodies = append(bodies, body)
		}
	}
	return kinds, bodies
}

func TestCommitLog(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, map[string]string{"path": dir, "partitionBy": "grp"}, "query-1")
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 6), genRows(6, 6)}); err != nil {
		t.Fatal(err)
	}
	if err := runBatch(t, s, 1, []*batch.Batch{genRows(12, 3)}); err != nil {
		t.Fatal(err)
	}

	kinds, bodies := logLines(t, dir, 0)
	// grp values x, y/z and null, written by two tasks: six files.
	want := []string{"commitInfo", "protocol", "metaData", "txn", "add", "add", "add", "add", "add", "add"}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("version 0 actions %v, want %v", kinds, want)
	}
	ci := bodies[0]
	if ci["operation"] != "STREAMING UPDATE" || ci["timestamp"].(float64) != 1_714_564_800_000 ||
		!reflect.DeepEqual(ci["operationParameters"], map[string]any{"outputMode": "Append", "queryId": "query-1", "epochId": "0"}) {
		t.Errorf("commitInfo %v", ci)
	}
	if !reflect.DeepEqual(bodies[1], map[string]any{"minReaderVersion": 1.0, "minWriterVersion": 2.0}) {
		t.Errorf("protocol %v", bodies[1])
	}
	md := bodies[2]
	wantSchema := `{"type":"struct","fields":[` +
		`{"name":"id","type":"long","nullable":true,"metadata":{}},` +
		`{"name":"grp","type":"string","nullable":true,"metadata":{}},` +
		`{"name":"v","type":"double","nullable":true,"metadata":{}},` +
		`{"name":"ts","type":"timestamp","nullable":true,"metadata":{}},` +
		`{"name":"day","type":"date","nullable":true,"metadata":{}},` +
		`{"name":"ok","type":"boolean","nullable":true,"metadata":{}},` +
		`{"name":"n","type":"integer","nullable":true,"metadata":{}},` +
		`{"name":"bin","type":"binary","nullable":true,"metadata":{}},` +
		`{"name":"h","type":{"type":"array","elementType":{"type":"struct","fields":[` +
		`{"name":"key","type":"string","nullable":true,"metadata":{}},{"name":"value","type":"binary","nullable":true,"metadata":{}}]},` +
		`"containsNull":true},"nullable":true,"metadata":{}}]}`
	if md["schemaString"] != wantSchema {
		t.Errorf("schemaString\n got %v\nwant %v", md["schemaString"], wantSchema)
	}
	if !reflect.DeepEqual(md["partitionColumns"], []any{"grp"}) || !reflect.DeepEqual(md["configuration"], map[string]any{}) ||
		!reflect.DeepEqual(md["format"], map[string]any{"provider": "parquet", "options": map[string]any{}}) ||
		len(md["id"].(string)) != 36 || md["createdTime"].(float64) != 1_714_564_800_000 {
		t.Errorf("metaData %v", md)
	}
	if !reflect.DeepEqual(bodies[3], map[string]any{"appId": "query-1", "version": 0.0, "lastUpdated": 1_714_564_800_000.0}) {
		t.Errorf("txn %v", bodies[3])
	}
	seenParts := map[string]int{}
	for _, add := range bodies[4:] {
		checkAdd(t, dir, add)
		pv := add["partitionValues"].(map[string]any)
		key := "null"
		if v, ok := pv["grp"].(string); ok {
			key = v
		}
		seenParts[key]++
	}
	if !reflect.DeepEqual(seenParts, map[string]int{"x": 2, "y/z": 2, "null": 2}) {
		t.Errorf("partition values per file %v", seenParts)
	}

	kinds, bodies = logLines(t, dir, 1)
	if want := []string{"commitInfo", "txn", "add", "add", "add"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("version 1 actions %v, want %v", kinds, want)
	}
	if bodies[1]["version"] != 1.0 || bodies[0]["operationParameters"].(map[string]any)["epochId"] != "1" {
		t.Errorf("version 1: txn %v, commitInfo %v", bodies[1], bodies[0])
	}
	files, txn, v := mustSnapshot(t, dir)
	if v != 1 || !reflect.DeepEqual(txn, map[string]int64{"query-1": 1}) || len(files) != 9 {
		t.Errorf("snapshot: version %d, txn %v, %d files", v, txn, len(files))
	}
	if !reflect.DeepEqual(files, dataFiles(t, dir)) {
		t.Errorf("snapshot files %v differ from files on disk %v", files, dataFiles(t, dir))
	}
}

// checkAdd verifies an add action against the file it names: path
// encoding, size, and stats recomputed from the file's rows.
func checkAdd(t *testing.T, dir string, add map[string]any) {
	t.Helper()
	raw := add["path"].(string)
	rel, err := url.PathUnescape(raw)
	if err != nil {
		t.Fatal(err)
	}
	if (&url.URL{Path: rel}).EscapedPath() != raw || strings.HasPrefix(raw, "/") {
		t.Errorf("path %q is not a relative URI-encoded path", raw)
	}
	if pv, _ := add["partitionValues"].(map[string]any); pv["grp"] == "y/z" && !strings.HasPrefix(raw, "grp=y%252Fz/") {
		t.Errorf("path %q: want directory grp=y%%2Fz URI-encoded as grp=y%%252Fz", raw)
	}
	name := filepath.Base(rel)
	if !strings.HasPrefix(name, "part-0000") || !strings.HasSuffix(name, "-c000.snappy.parquet") {
		t.Errorf("file name %s", name)
	}
	full := filepath.Join(dir, filepath.FromSlash(rel))
	st, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	if add["size"].(float64) != float64(st.Size()) || add["dataChange"] != true || add["modificationTime"].(float64) != float64(st.ModTime().UnixMilli()) {
		t.Errorf("add %v does not describe %s", add, rel)
	}
	tab, err := parquetio.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tab.Names, "grp") {
		t.Errorf("%s stores partition column grp", rel)
	}
	var stats struct {
		NumRecords int64                      `json:"numRecords"`
		MinValues  map[string]json.RawMessage `json:"minValues"`
		MaxValues  map[string]json.RawMessage `json:"maxValues"`
		NullCount  map[string]int64           `json:"nullCount"`
	}
	if err := json.Unmarshal([]byte(add["stats"].(string)), &stats); err != nil {
		t.Fatalf("stats %v: %v", add["stats"], err)
	}
	if stats.NumRecords != int64(len(tab.Rows)) {
		t.Errorf("%s: numRecords %d, file has %d rows", rel, stats.NumRecords, len(tab.Rows))
	}
	for c, name := range tab.Names {
		var nulls int64
		var lo, hi any
		for _, r := range tab.Rows {
			v := r[c]
			if v == nil {
				nulls++
				continue
			}
			if lo == nil || less(v, lo) {
				lo = v
			}
			if hi == nil || less(hi, v) {
				hi = v
			}
		}
		if name == "h" {
			// An array column: Delta counts its nulls and keeps no
			// min/max (StatisticsCollection's nullCount covers every
			// non-struct field, min/max only skipping-eligible types).
			if stats.NullCount[name] != nulls {
				t.Errorf("%s: nullCount[h] = %d, want %d", rel, stats.NullCount[name], nulls)
			}
			if _, ok := stats.MinValues[name]; ok {
				t.Errorf("%s: min for the array column h", rel)
			}
			continue
		}
		if stats.NullCount[name] != nulls {
			t.Errorf("%s: nullCount[%s] = %d, want %d", rel, name, stats.NullCount[name], nulls)
		}
		min, max := stats.MinValues[name], stats.MaxValues[name]
		switch name {
		case "ok", "bin":
			if min != nil || max != nil {
				t.Errorf("%s: min/max for %s", rel, name)
			}
			continue
		}
		if lo == nil {
			if min != nil {
				t.Errorf("%s: min for all-null %s", rel, name)
			}
			continue
		}
		if name == "v" { // doubles: compare numbers (Java form "0.0" vs Go "0")
			var gotMin, gotMax float64
			json.Unmarshal(min, &gotMin)
			json.Unmarshal(max, &gotMax)
			if gotMin != lo || gotMax != hi {
				t.Errorf("%s: v min/max %s/%s, want %v/%v", rel, min, max, lo, hi)
			}
			continue
		}
		if got, want := string(min), statLiteral(name, lo, false); got != want {
			t.Errorf("%s: minValues[%s] = %s, want %s", rel, name, got, want)
		}
		if got, want := string(max), statLiteral(name, hi, true); got != want {
			t.Errorf("%s: maxValues[%s] = %s, want %s", rel, name, got, want)
		}
	}
}

func less(a, b any) bool {
	switch a := a.(type) {
	case int64:
		return a < b.(int64)
	case float64:
		return a < b.(float64)
	case string:
		return a < b.(string)
	}
	return false
}

// statLiteral is the JSON a stats value of column name should have.
func statLiteral(name string, v any, isMax bool) string {
	switch name {
	case "ts":
		us := v.(int64)
		ms := us / 1000
		if isMax && us%1000 != 0 {
			ms++
		}
		return `"` + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") + `"`
	case "day":
		return `"` + time.Unix(v.(int64)*86400, 0).UTC().Format("2006-01-02") + `"`
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestReadBackValues(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, map[string]string{"path": dir, "partitionBy": "grp", "compression": "zstd"}, "q")
	in := genRows(0, 40)
	if err := runBatch(t, s, 0, []*batch.Batch{in}); err != nil {
		t.Fatal(err)
	}
	st, err := loadState(filepath.Join(dir, LogDir), true)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for _, add := range st.files {
		rel, _ := url.PathUnescape(add.Path)
		if !strings.HasSuffix(rel, ".zstd.parquet") {
			t.Errorf("file %s: want .zstd.parquet", rel)
		}
		tab, err := parquetio.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if ts := parquetio.LeafTypes(tab.Schema)["ts"]; ts != "INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)" {
			t.Errorf("ts column type %s", ts)
		}
		for _, r := range tab.Rows {
			row := make([]any, len(testFields))
			for c, name := range tab.Names {
				row[testSchema.Index(name)] = r[c]
			}
			if g := add.PartitionValues["grp"]; g != nil {
				row[1] = *g
			}
			rows = append(rows, row)
		}
	}
	slices.SortFunc(rows, func(a, b []any) int { return int(a[0].(int64) - b[0].(int64)) })
	if len(rows) != in.N {
		t.Fatalf("read %d rows, want %d", len(rows), in.N)
	}
	for i := range rows {
		want := in.Row(i)
		if !reflect.DeepEqual(rows[i], want) {
			t.Fatalf("row %d:\n got %#v\nwant %#v", i, rows[i], want)
		}
	}
}

func TestReplayIsSkipped(t *testing.T) {
	dir := t.TempDir()
	opts := map[string]string{"path": dir}
	s := mustNew(t, opts, "q")
	stale := mustNew(t, opts, "q") // read the log before anything was committed
	for id := int64(0); id < 2; id++ {
		if err := runBatch(t, s, id, []*batch.Batch{genRows(int(id)*10, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	files, _, version := mustSnapshot(t, dir)
	logBefore := logFiles(t, dir)
	var logBuf bytes.Buffer
	stale.SetLogger(slog.New(slog.NewTextHandler(&logBuf, nil)))
	for _, tc := range []struct {
		name string
		s    *Sink
		id   int64
	}{
		{"same sink, batch 1", s, 1},
		{"stale sink, batch 0", stale, 0},
		{"stale sink, batch 1", stale, 1},
		{"new sink, batch 0", mustNew(t, opts, "q"), 0},
	} {
		if err := runBatch(t, tc.s, tc.id, []*batch.Batch{genRows(100, 10)}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := logFiles(t, dir); !reflect.DeepEqual(got, logBefore) {
			t.Errorf("%s: log changed to %v", tc.name, got)
		}
		if got := dataFiles(t, dir); !reflect.DeepEqual(got, files) {
			t.Errorf("%s: data files %v, want %v", tc.name, got, files)
		}
	}
	if !strings.Contains(logBuf.String(), "Skipping already committed batch") {
		t.Errorf("stale sink logged %q", logBuf.String())
	}
	if _, _, v := mustSnapshot(t, dir); v != version {
		t.Errorf("version %d, want %d", v, version)
	}
	// Another query id is a different application: it is refused unless
	// it opts in, and then its batch 0 commits.
	if _, err := New(opts, "other"); err == nil || !strings.Contains(err.Error(), "was written by streaming query q") {
		t.Errorf("another query id: err = %v, want a refusal naming query q", err)
	}
	allow := map[string]string{"path": dir, "sluice.sink.allowNewQuery": "true"}
	if err := runBatch(t, mustNew(t, allow, "other"), 0, []*batch.Batch{genRows(200, 5)}); err != nil {
		t.Fatal(err)
	}
	if _, txn, v := mustSnapshot(t, dir); v != version+1 || !reflect.DeepEqual(txn, map[string]int64{"q": 1, "other": 0}) {
		t.Errorf("after other query: version %d, txn %v", v, txn)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, map[string]string{"path": dir, "partitionBy": "grp"}, "q")
	ctx := context.Background()
	w, err := s.NewWriter(ctx, 0, 0, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, genRows(0, 30)); err != nil {
		t.Fatal(err)
	}
	w.Abort(ctx)
	if got := dataFiles(t, dir); len(got) != 0 {
		t.Errorf("files after Abort: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, LogDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log created without a commit (err %v)", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Run("other query wins the version", func(t *testing.T) {
		dir := t.TempDir()
		opts := map[string]string{"path": dir}
		a, b := mustNew(t, opts, "qa"), mustNew(t, opts, "qb")
		msgs := writeTasks(t, a, 0, []*batch.Batch{genRows(0, 5)})
		var raced []int64
		a.beforePut = func(v int64) {
			raced = append(raced, v)
			if len(raced) == 1 { // b commits version 0 (creating the table) first
				if err := runBatch(t, b, 0, []*batch.Batch{genRows(100, 5)}); err != nil {
					t.Error(err)
				}
			}
		}
		if err := a.Commit(context.Background(), 0, msgs); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(raced, []int64{0, 1}) {
			t.Errorf("a tried versions %v, want [0 1]", raced)
		}
		kinds, _ := logLines(t, dir, 1)
		if want := []string{"commitInfo", "txn", "add"}; !reflect.DeepEqual(kinds, want) {
			t.Errorf("a's retry commit %v, want %v (no second protocol/metaData)", kinds, want)
		}
		files, txn, v := mustSnapshot(t, dir)
		if v != 1 || !reflect.DeepEqual(txn, map[string]int64{"qa": 0, "qb": 0}) || !reflect.DeepEqual(files, dataFiles(t, dir)) || len(files) != 2 {
			t.Errorf("version %d, txn %v, files %v", v, txn, files)
		}
	})
	t.Run("zombie of the same query", func(t *testing.T) {
		dir := t.TempDir()
		opts := map[string]string{"path": dir}
		a, b := mustNew(t, opts, "q"), mustNew(t, opts, "q")
		msgs := writeTasks(t, a, 0, []*batch.Batch{genRows(0, 5)})
		a.beforePut = func(int64) {
			a.beforePut = nil
			if err := runBatch(t, b, 0, []*batch.Batch{genRows(0, 5)}); err != nil {
				t.Error(err)
			}
		}
		if err := a.Commit(context.Background(), 0, msgs); err != nil {
			t.Fatal(err)
		}
		files, txn, v := mustSnapshot(t, dir)
		if v != 0 || txn["q"] != 0 || len(files) != 1 || !reflect.DeepEqual(files, dataFiles(t, dir)) {
			t.Errorf("version %d, txn %v, snapshot %v, on disk %v", v, txn, files, dataFiles(t, dir))
		}
	})
	t.Run("always losing", func(t *testing.T) {
		dir := t.TempDir()
		a := mustNew(t, map[string]string{"path": dir}, "q")
		msgs := writeTasks(t, a, 0, []*batch.Batch{genRows(0, 5)})
		a.beforePut = func(v int64) { // someone else takes every version
			if v == 0 {
				runBatch(t, mustNew(t, map[string]string{"path": dir}, "other"), 0, []*batch.Batch{genRows(9, 1)})
				return
			}
			os.WriteFile(filepath.Join(dir, LogDir, commitName(v)), []byte(`{"commitInfo":{}}`+"\n"), 0o644)
		}
		err := a.Commit(context.Background(), 0, msgs)
		if !errors.Is(err, ErrConcurrentWriter) || !strings.Contains(err.Error(), fmt.Sprintf("%d attempts", maxCommitAttempts)) {
			t.Fatalf("err = %v, want ErrConcurrentWriter after %d attempts", err, maxCommitAttempts)
		}
		files, txn, _ := mustSnapshot(t, dir)
		if _, ok := txn["q"]; ok || !reflect.DeepEqual(files, dataFiles(t, dir)) {
			t.Errorf("failed commit left txn %v or stray files %v (table %v)", txn, dataFiles(t, dir), files)
		}
	})
	t.Run("goroutines racing", func(t *testing.T) {
		dir := t.TempDir()
		const writers, batches = 4, 3
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := 0; w < writers; w++ {
			s := mustNew(t, map[string]string{"path": dir}, "q"+string(rune('a'+w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := int64(0); id < batches; id++ {
					if err := runBatch(t, s, id, []*batch.Batch{genRows(w*100+int(id)*10, 10)}); err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		files, txn, v := mustSnapshot(t, dir)
		if v != writers*batches-1 || len(files) != writers*batches || len(txn) != writers {
			t.Errorf("version %d, %d files, txn %v", v, len(files), txn)
		}
		for id, tv := range txn {
			if tv != batches-1 {
				t.Errorf("txn[%s] = %d", id, tv)
			}
		}
		meta := 0
		for ver := int64(0); ver <= v; ver++ {
			kinds, _ := logLines(t, dir, ver)
			if slices.Contains(kinds, "metaData") {
				meta++
			}
		}
		if meta != 1 {
			t.Errorf("%d versions carry metaData, want 1", meta)
		}
	})
}

func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	opts := map[string]string{"path": dir, "partitionBy": "grp"}
	s := mustNew(t, opts, "q")
	for id := int64(0); id < 12; id++ {
		if err := runBatch(t, s, id, []*batch.Batch{genRows(int(id)*5, 5)}); err != nil {
			t.Fatal(err)
		}
	}
	logDir := filepath.Join(dir, LogDir)
	var lc map[string]any
	if err := json.Unmarshal([]byte(readString(t, filepath.Join(logDir, lastCheckpointFile))), &lc); err != nil {
		t.Fatal(err)
	}
	st10, err := readCheckpoint(filepath.Join(logDir, checkpointName(10)))
	if err != nil {
		t.Fatal(err)
	}
	// protocol + metaData + 1 txn + live files at version 10
	wantRows := 3 + len(st10.files)
	if lc["version"] != 10.0 || lc["size"] != float64(wantRows) || lc["numOfAddFiles"] != float64(len(st10.files)) {
		t.Errorf("_last_checkpoint %v, want version 10, size %d", lc, wantRows)
	}
	if st10.txns["q"].Version != 10 || st10.meta.PartitionColumns[0] != "grp" || st10.protocol.MinWriterVersion != 2 {
		t.Errorf("checkpoint state: txn %v, meta %v, protocol %v", st10.txns, st10.meta, st10.protocol)
	}
	replayed := newState()
	l, _ := listDeltaLog(logDir)
	if err := replayed.applyCommits(mustOpenLog(t, logDir), l, 10); err != nil {
		t.Fatal(err)
	}
	for p, a := range replayed.files {
		a.DataChange = false // checkpoints record adds with dataChange false
		replayed.files[p] = a
	}
	if !reflect.DeepEqual(st10.files, replayed.files) || !reflect.DeepEqual(st10.meta, replayed.meta) || !reflect.DeepEqual(st10.protocol, replayed.protocol) {
		t.Error("checkpoint 10 differs from replaying versions 0..10")
	}

	same := func(label string) {
		t.Helper()
		f1, t1, v1, err1 := snapshot(localStore(t, dir), true)
		f2, t2, v2, err2 := snapshot(localStore(t, dir), false)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v / %v", label, err1, err2)
		}
		if !reflect.DeepEqual(f1, f2) || !reflect.DeepEqual(t1, t2) || v1 != v2 || v1 != 11 || len(f1) != 36 {
			t.Errorf("%s: with checkpoint %d files v%d %v; without %d files v%d %v", label, len(f1), v1, t1, len(f2), v2, t2)
		}
	}
	same("both ways")

	// A corrupt checkpoint is skipped in favour of the JSON log.
	good := readString(t, filepath.Join(logDir, checkpointName(10)))
	os.WriteFile(filepath.Join(logDir, checkpointName(10)), []byte("PAR1 junk"), 0o644)
	same("corrupt checkpoint")
	os.WriteFile(filepath.Join(logDir, checkpointName(10)), []byte(good), 0o644)

	// With commits 0..9 cleaned up, only the checkpoint can rebuild the
	// state; a new sink still knows batch 5 is done and appends after 11.
	for v := int64(0); v < 10; v++ {
		os.Remove(filepath.Join(logDir, commitName(v)))
	}
	if _, _, _, err := snapshot(localStore(t, dir), false); err == nil {
		t.Error("replay without checkpoint succeeded with commits 0..9 gone")
	}
	files, txn, v := mustSnapshot(t, dir)
	if v != 11 || txn["q"] != 11 || len(files) != 36 {
		t.Errorf("from checkpoint: version %d, txn %v, %d files", v, txn, len(files))
	}
	s2 := mustNew(t, opts, "q")
	if err := runBatch(t, s2, 5, []*batch.Batch{genRows(500, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := runBatch(t, s2, 12, []*batch.Batch{genRows(600, 3)}); err != nil {
		t.Fatal(err)
	}
	if files, txn, v := mustSnapshot(t, dir); v != 12 || txn["q"] != 12 || len(files) != 39 || !reflect.DeepEqual(files, dataFiles(t, dir)) {
		t.Errorf("after batch 12: version %d, txn %v, %d files", v, txn, len(files))
	}
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSchemaChecks(t *testing.T) {
	dir := t.TempDir()
	opts := map[string]string{"path": dir}
	if err := runBatch(t, mustNew(t, opts, "q"), 0, []*batch.Batch{genRows(0, 3)}); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, map[string]string{"path": dir, "sluice.sink.allowNewQuery": "true"}, "q2")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		fields []batch.Field
		want   []string // substrings; none = must succeed
	}{
		{"subset, other order, other case", []batch.Field{{Name: "GRP", Type: batch.String}, {Name: "id", Type: batch.Long}}, nil},
		{"extra column", []batch.Field{{Name: "id", Type: batch.Long}, {Name: "extra", Type: batch.String}}, []string{`"extra" is not in the table`}},
		{"type change", []batch.Field{{Name: "id", Type: batch.Int}, {Name: "v", Type: batch.String}}, []string{`"id" is "integer" in the data but "long"`, `"v" is "string" in the data but "double"`}},
	} {
		_, err := s.NewWriter(ctx, 1, 0, batch.Schema{Fields: tc.fields})
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
	if _, err := New(map[string]string{"path": dir, "partitionBy": "grp"}, "q"); err == nil || !strings.Contains(err.Error(), "partition") {
		t.Errorf("partitionBy mismatch: err = %v", err)
	}
}

func TestUnsupportedTables(t *testing.T) {
	for _, tc := range []struct {
		name, log, want string
	}{
		{"writer v7", `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}`, "writer version 7"},
		{"invariants", `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}` + "\n" +
			`{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"long\",\"nullable\":true,\"metadata\":{\"delta.invariants\":\"{}\"}}]}","partitionColumns":[],"configuration":{}}}`, "delta.invariants"},
		{"broken json", `{"protocol":`, "line 1"},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, LogDir), 0o755)
		os.WriteFile(filepath.Join(dir, LogDir, commitName(0)), []byte(tc.log+"\n"), 0o644)
		_, err := New(map[string]string{"path": dir}, "q")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts    map[string]string
		queryID string
		want    string
	}{
		{map[string]string{}, "q", `"path"`},
		{map[string]string{"path": dir}, "", "query id"},
		{map[string]string{"path": dir, "partitionby": "a", "mergeSchema": "true"}, "q", `"mergeSchema"`},
		{map[string]string{"path": dir, "compression": "lz4"}, "q", "snappy"},
	} {
		if _, err := New(tc.opts, tc.queryID); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestEmptyBatches(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, map[string]string{"path": dir}, "q")
	ctx := context.Background()
	// No table and no task: nothing to record.
	if err := s.Commit(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, v := mustSnapshot(t, dir); v != -1 {
		t.Errorf("empty first batch created version %d", v)
	}
	if err := runBatch(t, s, 1, []*batch.Batch{genRows(0, 2)}); err != nil {
		t.Fatal(err)
	}
	// A task with no rows writes no file; the txn is still recorded.
	msgs := writeTasks(t, s, 2, []*batch.Batch{genRows(0, 0)})
	if err := s.Commit(ctx, 2, msgs); err != nil {
		t.Fatal(err)
	}
	kinds, _ := logLines(t, dir, 1)
	if want := []string{"commitInfo", "txn"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("empty batch commit %v, want %v", kinds, want)
	}
	if _, txn, _ := mustSnapshot(t, dir); txn["q"] != 2 {
		t.Errorf("txn %v", txn)
	}
}

func TestStatsJSON(t *testing.T) {
	fields := []batch.Field{
		{Name: "l", Type: batch.Long}, {Name: "d", Type: batch.Double}, {Name: "s", Type: batch.String},
		{Name: "ts", Type: batch.Timestamp}, {Name: "day", Type: batch.Date}, {Name: "b", Type: batch.Boolean},
		{Name: "h", Type: batch.Headers}, {Name: "nan", Type: batch.Double}, {Name: "long", Type: batch.String},
		{Name: "nul", Type: batch.Long},
	}
	long := []byte(strings.Repeat("é", 40))
	stats := []parquetio.ColumnStats{
		{NullCount: 1, HasMinMax: true, MinInt: -5, MaxInt: 7},
		{HasMinMax: true, MinFloat: 0.5, MaxFloat: 1e10},
		{NullCount: 2, HasMinMax: true, MinBytes: []byte(`a"b`), MaxBytes: []byte("zz")},
		{HasMinMax: true, MinInt: -1, MaxInt: 1_000_001},
		{HasMinMax: true, MinInt: 0, MaxInt: 19_844},
		{NullCount: 3},
		{NullCount: 4},
		{HasMinMax: true, NaN: true, MinFloat: 1, MaxFloat: 2},
		{HasMinMax: true, MinBytes: long, MaxBytes: long},
		{NullCount: 9},
	}
	got := statsJSON(fields, 9, stats)
	want := `{"numRecords":9,` +
		`"minValues":{"l":-5,"d":0.5,"s":"a\"b","ts":"1969-12-31T23:59:59.999Z","day":"1970-01-01","long":"` + strings.Repeat("é", 32) + `"},` +
		`"maxValues":{"l":7,"d":1.0E10,"s":"zz","ts":"1970-01-01T00:00:01.001Z","day":"2024-05-01"},` +
		`"nullCount":{"l":1,"d":0,"s":2,"ts":0,"day":0,"b":3,"h":4,"nan":0,"long":0,"nul":9}}`
	if got != want {
		t.Errorf("stats\n got %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("invalid JSON")
	}
}

func TestDescription(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, map[string]string{"path": dir}, "q")
	if got := s.Description(); got != "DeltaSink["+dir+"]" {
		t.Errorf("Description() = %q", got)
	}
	var _ sink.Sink = s
}

func TestPartitionString(t *testing.T) {
	for _, tc := range []struct {
		p    file.PartitionValue
		want string
		ok   bool
	}{
		{file.PartitionValue{Kind: batch.Timestamp, Int: 1_714_564_800_500_000}, "2024-05-01 12:00:00.500000", true},
		{file.PartitionValue{Kind: batch.Timestamp, Int: 0}, "1970-01-01 00:00:00", true},
		{file.PartitionValue{Kind: batch.Timestamp, Null: true}, "", false},
		{file.PartitionValue{Kind: batch.String, Str: ""}, "", false},
		{file.PartitionValue{Kind: batch.Date, Int: -1}, "1969-12-31", true},
	} {
		if got, ok := partitionString(tc.p); got != tc.want || ok != tc.ok {
			t.Errorf("%+v: got %q, %v; want %q, %v", tc.p, got, ok, tc.want, tc.ok)
		}
	}
}

// localStore is the Store of the local directory dir.
func localStore(t *testing.T, dir string) storage.Store {
	t.Helper()
	st, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// landedButFailed is a store whose put-if-absent lands the file and then
// reports an error, as a local disk does when the directory fsync fails
// after the link, or an object store whose response is lost.
type landedButFailed struct{ storage.Store }

func (s landedButFailed) PutIfAbsent(ctx context.Context, name string, data []byte) error {
	if err := s.Store.PutIfAbsent(ctx, name, data); err != nil {
		return err
	}
	return errors.New("simulated: the commit landed but its durability is unknown")
}

// TestCommitWithUnknownOutcomeKeepsFiles fails a commit whose file did
// land: the data files it lists must stay, and the query's retry of the
// batch finds it committed.
func TestCommitWithUnknownOutcomeKeepsFiles(t *testing.T) {
	dir := t.TempDir()
	opts := map[string]string{"path": dir}
	s := mustNew(t, opts, "q")
	s.dlog.st = landedButFailed{s.dlog.st}
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 5)}); err == nil || !strings.Contains(err.Error(), "landed") {
		t.Fatalf("commit: %v, want the store's error", err)
	}
	files, txn, v := mustSnapshot(t, dir)
	if v != 0 || txn["q"] != 0 || len(files) != 1 || !reflect.DeepEqual(files, dataFiles(t, dir)) {
		t.Fatalf("after the failed commit: version %d, txn %v, log lists %v, on disk %v", v, txn, files, dataFiles(t, dir))
	}
	// The restarted query replays batch 0: skipped, nothing added.
	if err := runBatch(t, mustNew(t, opts, "q"), 0, []*batch.Batch{genRows(0, 5)}); err != nil {
		t.Fatal(err)
	}
	if files2, _, v2 := mustSnapshot(t, dir); v2 != 0 || !reflect.DeepEqual(files2, files) || !reflect.DeepEqual(dataFiles(t, dir), files) {
		t.Errorf("after the replay: version %d, log %v, on disk %v", v2, files2, dataFiles(t, dir))
	}
}
