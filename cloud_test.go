package sluice_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/storage/storagetest"
	"github.com/sluice-stream/sluice/internal/testutil"
)

// cloudRun runs the Kafka → Delta query once with an availableNow
// trigger: table and checkpoint on the emulator's store.
type cloudRun struct {
	e       *storagetest.Emulator
	addr    string
	counter *storagetest.RequestCounter
	logs    *testutil.SyncBuffer
	maxOffs int
}

func (c *cloudRun) run(t *testing.T) []*sluice.Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := []sluice.SessionOption{sluice.WithLogger(slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	for k, v := range c.e.Conf {
		opts = append(opts, sluice.WithConf(k, v))
	}
	session := sluice.NewSession(opts...)
	sluice.SetStorageOptions(session, storage.WithHTTPClient(c.counter), storage.WithEnv(func(string) string { return "" }))
	q, err := session.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", c.addr).
		Option("subscribe", "orders").
		Option("startingOffsets", "earliest").
		Option("maxOffsetsPerTrigger", c.maxOffs).
		Load().
		SelectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "partition", "offset").
		WriteStream().Format("delta").
		Option("path", c.e.URI("tables/orders")).
		Option("checkpointLocation", c.e.URI("checkpoints/orders")).
		Option("sluice.workers", 3).
		Trigger(sluice.AvailableNow()).
		Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	// The batches that ran: an idle trigger also reports progress (0 rows,
	// as Spark's first idle trigger does).
	var ran []*sluice.Progress
	for _, p := range q.RecentProgress() {
		if p.NumInputRows > 0 {
			ran = append(ran, p)
		}
	}
	return ran
}

func produceOrders(t *testing.T, addr string, from, n int) []string {
	t.Helper()
	var recs []*kgo.Record
	var values []string
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf(`{"order_id":%d,"amount":%d.25}`, i, i%1000)
		values = append(values, v)
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Key: []byte(fmt.Sprintf("c%d", i%13)), Value: []byte(v)})
	}
	brokertest.ProduceSync(t, addr, recs...)
	return values
}

// TestObjectStoreKafkaToDelta runs Kafka → Delta on each object-store
// emulator with the checkpoint on the same store, twice (the second run
// resumes from the checkpoint it finds there), then reads the table back:
// the test replays the Delta log itself, compares it with the sink's own
// Snapshot, reads every data file, and has DuckDB read the downloaded
// table; every record is there exactly once. It also checks what must not
// happen: a local directory named after the URI, a lock file on the
// store, secrets in logs, progress or the checkpoint.
func TestObjectStoreKafkaToDelta(t *testing.T) {
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 3})
		c := &cloudRun{e: e, addr: b.Addr(), counter: storagetest.NewRequestCounter(), logs: &testutil.SyncBuffer{}, maxOffs: 300}
		want := produceOrders(t, b.Addr(), 0, 900)
		first := c.run(t)
		want = append(want, produceOrders(t, b.Addr(), 900, 600)...)
		second := c.run(t)
		if len(first) != 3 || len(second) != 2 {
			t.Fatalf("batches: %d then %d, want 3 then 2 (300 records each)", len(first), len(second))
		}
		if second[0].BatchID != 3 {
			t.Errorf("the second run started at batch %d, want 3 (resumed from the checkpoint on the store)", second[0].BatchID)
		}
		queryID := first[0].ID

		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		table, err := r.Resolve(ctx, e.URI("tables/orders"))
		if err != nil {
			t.Fatal(err)
		}
		// The test's own replay of the log.
		live, txn, version := replayDeltaLog(t, table)
		if version != 4 || txn[queryID] != 4 {
			t.Errorf("log: version %d, txn %v; want version 4 with txn %s=4", version, txn, queryID)
		}
		files, stxn, sversion, err := delta.SnapshotStore(table)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(files, live) || sversion != version || !reflect.DeepEqual(stxn, txn) {
			t.Errorf("Snapshot: files %v version %d txn %v; the test's replay: %v, %d, %v", files, sversion, stxn, live, version, txn)
		}
		// Every data file, read with our Parquet reader after download.
		dl := t.TempDir()
		var got []string
		for _, f := range live {
			data, err := table.Get(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := parquetio.Read(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			vcol := slices.Index(tab.Names, "value")
			for _, row := range tab.Rows {
				got = append(got, fmt.Sprint(row[vcol]))
			}
			writeLocal(t, filepath.Join(dl, filepath.FromSlash(f)), data)
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("the table holds %d values, %d produced (lost or duplicated records)", len(got), len(want))
		}
		// DuckDB replays the downloaded log and reads the files.
		t.Run("duckdb", func(t *testing.T) {
			duck := testutil.DuckDBDir(t)
			if err := storage.Walk(ctx, table, delta.LogDir, nil, func(name string, _ storage.Entry) error {
				data, err := table.Get(ctx, name)
				if err != nil {
					return err
				}
				writeLocal(t, filepath.Join(dl, filepath.FromSlash(name)), data)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			var v struct {
				Kind    string           `json:"kind"`
				Version int64            `json:"version"`
				Txn     map[string]int64 `json:"txn"`
				Files   []string         `json:"files"`
				Count   int              `json:"count"`
				Rows    []map[string]any `json:"rows"`
			}
			if err := json.Unmarshal(testutil.RunVerify(t, duck, "--rows", "--order", "value", dl), &v); err != nil {
				t.Fatal(err)
			}
			var dv []string
			for _, row := range v.Rows {
				dv = append(dv, fmt.Sprint(row["value"]))
			}
			if v.Kind != "delta" || v.Version != version || !reflect.DeepEqual(v.Txn, txn) || !reflect.DeepEqual(v.Files, live) || v.Count != len(want) || !slices.Equal(dv, want) {
				t.Errorf("DuckDB: kind %s version %d txn %v files %d count %d (values equal: %v)", v.Kind, v.Version, v.Txn, len(v.Files), v.Count, slices.Equal(dv, want))
			}
		})
		// The checkpoint is on the store: no lock file, one offsets and
		// commits file per batch, and no storage setting in the conf.
		chk, err := r.Resolve(ctx, e.URI("checkpoints/orders"))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{"offsets", "commits"} {
			ents, err := chk.List(ctx, dir)
			if err != nil || len(ents) != 5 {
				t.Errorf("%s/: %d files (%v), want 5", dir, len(ents), err)
			}
		}
		root, _ := chk.List(ctx, "")
		for _, e := range root {
			if strings.Contains(e.Name, "lock") {
				t.Errorf("a lock file on the store: %s", e.Name)
			}
		}
		off, err := chk.Get(ctx, "offsets/4")
		if err != nil {
			t.Fatal(err)
		}
		for k := range e.Conf {
			if bytes.Contains(off, []byte(k)) {
				t.Errorf("offsets/4 records the storage setting %s", k)
			}
		}
		// Nothing local was made from the URIs, and no secret leaked.
		for _, scheme := range []string{"abfss:", "s3a:"} {
			if _, err := os.Stat(scheme); err == nil {
				t.Errorf("a local directory %q was created", scheme)
			}
		}
		progress, _ := json.Marshal(append(first, second...))
		for k, v := range e.Conf {
			if strings.Contains(k, "key") || strings.Contains(k, "secret") {
				if strings.Contains(c.logs.String(), v) || bytes.Contains(progress, []byte(v)) || bytes.Contains(off, []byte(v)) {
					t.Errorf("the value of %s shows in logs, progress or the checkpoint", k)
				}
			}
		}
		if !strings.Contains(string(progress), e.URI("tables/orders")) {
			t.Errorf("progress does not name the table URI")
		}
	})
}

// replayDeltaLog reads a Delta table's JSON commits and applies their add,
// remove and txn actions, as PROTOCOL.md says: the live files (decoded,
// sorted), the latest txn version per app id, and the table version.
func replayDeltaLog(t *testing.T, table storage.Store) ([]string, map[string]int64, int64) {
	t.Helper()
	ctx := context.Background()
	ents, err := table.List(ctx, delta.LogDir)
	if err != nil {
		t.Fatal(err)
	}
	liveSet := map[string]bool{}
	txn := map[string]int64{}
	version := int64(-1)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name, ".json") {
			continue
		}
		var v int64
		if _, err := fmt.Sscanf(e.Name, "%020d.json", &v); err != nil {
			t.Fatalf("log file %s: %v", e.Name, err)
		}
		if v != version+1 {
			t.Fatalf("log jumps from version %d to %d", version, v)
		}
		version = v
		data, err := table.Get(ctx, delta.LogDir+"/"+e.Name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var a struct {
				Add    *struct{ Path string } `json:"add"`
				Remove *struct{ Path string } `json:"remove"`
				Txn    *struct {
					AppID   string `json:"appId"`
					Version int64  `json:"version"`
				} `json:"txn"`
			}
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("version %d: %v", v, err)
			}
			switch {
			case a.Add != nil:
				liveSet[a.Add.Path] = true
			case a.Remove != nil:
				delete(liveSet, a.Remove.Path)
			case a.Txn != nil:
				txn[a.Txn.AppID] = a.Txn.Version
			}
		}
	}
	var live []string
	for p := range liveSet {
		dec, err := url.PathUnescape(p)
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, dec)
	}
	sort.Strings(live)
	return live, txn, version
}

func writeLocal(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestObjectStoreRequestsPerBatch counts the requests a Kafka → Delta
// query with its checkpoint on the store sends per batch (3 tasks, one
// small data file each), for the cost table in docs/storage.md: the
// requests of a run with 10 batches minus those of a run with none
// (start-up and shut-down), divided by 10.
func TestObjectStoreRequestsPerBatch(t *testing.T) {
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 3})
		c := &cloudRun{e: e, addr: b.Addr(), counter: storagetest.NewRequestCounter(), logs: &testutil.SyncBuffer{}, maxOffs: 300}
		produceOrders(t, b.Addr(), 0, 300)
		c.run(t) // creates the table and the checkpoint
		c.counter.Reset()
		if ps := c.run(t); len(ps) != 0 {
			t.Fatalf("the idle run ran %d batches", len(ps))
		}
		idle := c.counter.Counts()
		produceOrders(t, b.Addr(), 300, 3000)
		c.counter.Reset()
		if ps := c.run(t); len(ps) != 10 {
			t.Fatalf("%d batches, want 10", len(ps))
		}
		busy := c.counter.Counts()
		ops := map[string]bool{}
		for k := range busy {
			ops[k] = true
		}
		for k := range idle {
			ops[k] = true
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range ops {
				if !yield(k) {
					return
				}
			}
		})
		var lines []string
		total := 0.0
		for _, k := range keys {
			per := float64(busy[k]-idle[k]) / 10
			total += per
			lines = append(lines, fmt.Sprintf("%-22s %5.1f per batch (start-up and shut-down: %d)", k, per, idle[k]))
		}
		t.Logf("%s requests, Kafka → Delta, 3 tasks, checkpoint on the store:\n%s\n%-22s %5.1f per batch", e.Kind, strings.Join(lines, "\n"), "total", total)
		// Per batch: offsets/N, commits/N, the Delta commit and three data
		// files are one PUT each; the checkpoint's purge and the Delta
		// log's refresh list their directories.
		puts := float64(busy["PUT object"]-idle["PUT object"]) / 10
		if puts < 6 || puts > 6.3 { // a Delta checkpoint adds two every 10 versions
			t.Errorf("%.1f PUTs per batch, want 6 (offsets, commit, Delta commit, 3 data files)", puts)
		}
		if total > 12 {
			t.Errorf("%.1f requests per batch; the doc promises at most 12", total)
		}
	})
}

// TestObjectStoreFilesToFiles reads JSON files from an object store with a
// glob (one file per batch), writes them as JSON files with their
// _spark_metadata log to the same store, deletes the processed inputs
// (cleanSource), and restarts: every input row is in the output once, the
// log lists object-store URIs, and the restart reads nothing twice.
func TestObjectStoreFilesToFiles(t *testing.T) {
	storagetest.Stores(t, func(t *testing.T, e *storagetest.Emulator) {
		ctx := context.Background()
		r, err := e.Resolver()
		if err != nil {
			t.Fatal(err)
		}
		in, err := r.Resolve(ctx, e.URI("in"))
		if err != nil {
			t.Fatal(err)
		}
		put := func(name string, ids ...int) {
			var b strings.Builder
			for _, id := range ids {
				fmt.Fprintf(&b, `{"id":%d,"name":"n%d"}`+"\n", id, id)
			}
			if err := in.PutIfAbsent(ctx, name, []byte(b.String())); err != nil {
				t.Fatal(err)
			}
		}
		put("2024-01/a.json", 1, 2)
		put("2024-01/b.json", 3)
		put("2024-02/c.json", 4, 5)
		put("other/skip.json", 99)      // outside the glob
		put("2024-03/_hidden.json", 98) // hidden names are skipped, as in Spark
		run := func() []*sluice.Progress {
			c := &cloudRun{e: e, counter: storagetest.NewRequestCounter(), logs: &testutil.SyncBuffer{}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			opts := []sluice.SessionOption{sluice.WithLogger(slog.New(slog.NewTextHandler(c.logs, nil)))}
			for k, v := range e.Conf {
				opts = append(opts, sluice.WithConf(k, v))
			}
			session := sluice.NewSession(opts...)
			sluice.SetStorageOptions(session, storage.WithEnv(func(string) string { return "" }))
			q, err := session.ReadStream().Format("json").
				Option("path", e.URI("in/2024-*")).
				Option("schema", "id BIGINT, name STRING").
				Option("maxFilesPerTrigger", 1).
				Option("cleanSource", "delete").
				Load().
				WriteStream().Format("json").
				Option("path", e.URI("out")).
				Option("checkpointLocation", e.URI("chk")).
				Trigger(sluice.AvailableNow()).
				Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.AwaitTermination(ctx); err != nil {
				t.Fatalf("%v\n%s", err, c.logs.String())
			}
			return q.RecentProgress()
		}
		if ps := run(); len(ps) != 3 {
			t.Fatalf("%d batches, want 3 (one file each)", len(ps))
		}
		put("2024-02/d.json", 6)
		if ps := run(); len(ps) != 1 || ps[0].NumInputRows != 1 {
			t.Fatalf("the restart ran %d batches (want 1 with the new file only)", len(ps))
		}
		out, err := r.Resolve(ctx, e.URI("out"))
		if err != nil {
			t.Fatal(err)
		}
		uris, err := filesink.ReadLogURIs(out)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		outLoc, _ := storage.ParseLocation(e.URI("out"))
		for _, u := range uris {
			loc, err := storage.ParseLocation(u)
			if err != nil {
				t.Fatal(err)
			}
			rel, ok := outLoc.Rel(loc)
			if !ok || !strings.HasPrefix(u, e.Root+"/out/part-") {
				t.Fatalf("the log lists %s, not an object under %s", u, e.URI("out"))
			}
			data, err := out.Get(ctx, rel)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				var row struct{ ID int64 }
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, fmt.Sprint(row.ID))
			}
		}
		sort.Strings(ids)
		if want := []string{"1", "2", "3", "4", "5", "6"}; !slices.Equal(ids, want) {
			t.Errorf("output ids %v, want %v", ids, want)
		}
		left, err := in.List(ctx, "2024-01")
		if err != nil || len(left) != 0 {
			t.Errorf("cleanSource=delete left %v (%v)", left, err)
		}
		if _, err := in.Get(ctx, "other/skip.json"); err != nil {
			t.Errorf("a file outside the glob was touched: %v", err)
		}
	})
}

// TestUnknownSchemeIsAnError starts queries whose paths use an unknown or
// incomplete scheme: each fails at Start with an error naming the
// supported ones, and nothing is created locally (a path like az://bar
// used to become a local directory "az:").
func TestUnknownSchemeIsAnError(t *testing.T) {
	wd, _ := os.Getwd()
	for _, tc := range []struct{ path, chk, want string }{
		{"gs://bucket/delta", t.TempDir(), `unsupported storage scheme "gs"`},
		{t.TempDir(), "hdfs://nn/chk", `unsupported storage scheme "hdfs"`},
		{"az://bar/delta", t.TempDir(), "sluice.storage.azure.account"},
	} {
		session := sluice.NewSession(sluice.WithLogger(slog.New(slog.DiscardHandler)))
		sluice.SetStorageOptions(session, storage.WithEnv(func(string) string { return "" }))
		_, err := session.ReadStream().Format("rate").Load().
			WriteStream().Format("delta").Option("path", tc.path).Option("checkpointLocation", tc.chk).
			Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("path %s, checkpoint %s: %v, want an error containing %q", tc.path, tc.chk, err, tc.want)
		}
		if strings.Contains(tc.want, "unsupported") && (err == nil || !strings.Contains(err.Error(), "s3a://bucket/path")) {
			t.Errorf("the error does not list the supported schemes: %v", err)
		}
	}
	for _, d := range []string{"az:", "gs:", "hdfs:"} {
		if _, err := os.Stat(filepath.Join(wd, d)); err == nil {
			t.Errorf("a local directory %q was created", d)
		}
	}
}
