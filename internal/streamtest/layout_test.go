package streamtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/storage"
)

// The checkpoint of a stateful query is laid out as Spark lays it out
// (spark-stateful-semantics.md §2.1), checked file by file: one aggregation,
// spark.sql.shuffle.partitions = 2, three batches.
func TestStateLayout(t *testing.T) {
	s, err := Parse("layout", []byte(`
input value INT
conf spark.sql.shuffle.partitions 2
mode update
step {groupBy: [value], agg: ["count(*)"]}
add 1, 2, 3
run
batch 0
  output (1, 1), (2, 1), (3, 1)
add 1
run
batch 1
  output (1, 2)
add 4
run
batch 2
  output (4, 1)
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	Run(t, s, dir)

	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files)
	want := []string{
		".sluice.lock",
		"commits/0", "commits/1", "commits/2",
		"metadata",
		"offsets/0", "offsets/1", "offsets/2",
		"sources/0/0",
		"state/0/0/1.delta", "state/0/0/2.delta", "state/0/0/3.delta",
		"state/0/0/_metadata/schema",
		"state/0/1/1.delta", "state/0/1/2.delta", "state/0/1/3.delta",
		"state/0/_metadata/metadata",
	}
	if strings.Join(files, "\n") != strings.Join(want, "\n") {
		t.Fatalf("checkpoint files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("state/0/_metadata/metadata"); got != `v1
{"operatorInfo":{"operatorId":0,"operatorName":"stateStoreSave"},"stateStoreInfo":[{"storeName":"default","numColsPrefixKey":0,"numPartitions":2}]}` {
		t.Errorf("operator metadata:\n%s", got)
	}
	if got := read("commits/2"); got != "v1\n{\"nextBatchWatermarkMs\":0}" {
		t.Errorf("commits/2: %q", got)
	}
	off := read("offsets/2")
	lines := strings.Split(off, "\n")
	if len(lines) != 3 || lines[0] != "v1" || lines[2] != "3" || !strings.HasPrefix(lines[1], `{"batchWatermarkMs":0,"batchTimestampMs":`) {
		t.Errorf("offsets/2:\n%s", off)
	}
	for _, kv := range []string{
		`"spark.sql.shuffle.partitions":"2"`,
		`"spark.sql.streaming.stateStore.providerClass":"` + state.SparkHDFSProviderClass + `"`,
		`"spark.sql.streaming.multipleWatermarkPolicy":"min"`,
		`"spark.sql.streaming.aggregation.stateFormatVersion":"2"`,
		`"spark.sql.streaming.stateStore.compression.codec":"lz4"`,
	} {
		if !strings.Contains(lines[1], kv) {
			t.Errorf("offsets/2 conf lacks %s: %s", kv, lines[1])
		}
	}
	// The recorded schema is the one the operator checks on restart.
	stateFiles, err := storage.NewLocal(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.CheckSchema(stateFiles, 0, state.Schemas{}); err == nil {
		t.Error("an empty schema passes the recorded one")
	}
	q, err := s.Query()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := state.CheckSchema(stateFiles, 0, q.Stateful.Operators()[0].Schemas); !ok || err != nil {
		t.Errorf("schema check: recorded=%v err=%v", ok, err)
	}
}

// The checkpoint's shuffle partitions win over the session's on restart:
// state stays in the partitions it was written to.
func TestPinnedShufflePartitions(t *testing.T) {
	s, err := Parse("pinned", []byte(`
input value INT
conf spark.sql.shuffle.partitions 3
mode update
step {groupBy: [value], agg: ["count(*)"]}
add 1, 2, 3, 4, 5, 6
run
batch 0
  output (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)
  state partitions=3 instances=3
restart
conf spark.sql.shuffle.partitions 7
add 1, 2, 3, 4, 5, 6
run
batch 1
  output (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2)
  state partitions=3 instances=3 total=6
  pinned spark.sql.shuffle.partitions=3
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	Run(t, s, dir)
	es, _ := os.ReadDir(filepath.Join(dir, "state", "0"))
	var parts []string
	for _, e := range es {
		parts = append(parts, e.Name())
	}
	if strings.Join(parts, ",") != "0,1,2,_metadata" {
		t.Fatalf("state/0 holds %v", parts)
	}
}

// A session window aggregation records Spark's operator name and the
// number of key columns it scans by (the grouping keys without the
// session), and keeps one state row per session.
func TestSessionStateLayout(t *testing.T) {
	s, err := Parse("session-layout", []byte(`
input user STRING, region STRING, eventTime TIMESTAMP
conf spark.sql.shuffle.partitions 1
mode complete
step {groupBy: [user, "session_window(eventTime, '10 seconds') AS s", region], agg: ["count(*) AS n"]}
step {selectExpr: [user, "CAST(s.start AS LONG)", "CAST(s.end AS LONG)", region, n]}
add (u, eu, 10), (u, eu, 15), (u, us, 10), (u, eu, 40)
run
batch 0
  output (u, 10, 25, eu, 2), (u, 40, 50, eu, 1), (u, 10, 20, us, 1)
  state total=3 updated=3
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	Run(t, s, dir)
	b, err := os.ReadFile(filepath.Join(dir, "state/0/_metadata/metadata"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `v1
{"operatorInfo":{"operatorId":0,"operatorName":"sessionWindowStateStoreSaveExec"},"stateStoreInfo":[{"storeName":"default","numColsPrefixKey":2,"numPartitions":1}]}` {
		t.Errorf("operator metadata:\n%s", got)
	}
	q, err := s.Query()
	if err != nil {
		t.Fatal(err)
	}
	schemas := q.Stateful.Operators()[0].Schemas
	if got := strings.Join(schemas.Key.Names(), ","); got != "user,region,s.start" {
		t.Errorf("key schema %s", got)
	}
	if got := strings.Join(schemas.Value.Names(), ","); got != "s.end,count(1)" {
		t.Errorf("value schema %s", got)
	}
}
