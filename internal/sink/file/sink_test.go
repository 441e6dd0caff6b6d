package file

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink"
)

// readBack reads every logged Parquet file of a sink at dir and returns
// the rows in testSchema order (partition columns restored from the
// directory names), sorted by id.
func readBack(t *testing.T, dir string, partitionBy []string) [][]any {
	t.Helper()
	files, err := ReadLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for _, f := range files {
		tab, err := parquetio.ReadFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// partition values from the path
		pv := map[string]any{}
		rel, _ := filepath.Rel(dir, f)
		for _, seg := range strings.Split(filepath.ToSlash(filepath.Dir(rel)), "/") {
			k, v, ok := strings.Cut(seg, "=")
			if !ok {
				continue
			}
			pv[UnescapePathName(k)] = parsePartition(t, testSchema.Fields[testSchema.Index(UnescapePathName(k))].Type, v)
		}
		for _, r := range tab.Rows {
			row := make([]any, len(testFields))
			for c, name := range tab.Names {
				row[testSchema.Index(name)] = r[c]
			}
			for _, p := range partitionBy {
				v, ok := pv[p]
				if !ok {
					t.Fatalf("%s: no directory for partition column %s", rel, p)
				}
				if slices.Contains(tab.Names, p) {
					t.Fatalf("%s: partition column %s stored in the file", rel, p)
				}
				row[testSchema.Index(p)] = v
			}
			rows = append(rows, row)
		}
	}
	slices.SortFunc(rows, func(a, b []any) int { return int(a[0].(int64) - b[0].(int64)) })
	return rows
}

// expectRows is what readBack should return for ids [0, n).
func expectRows(n int, partitioned bool) [][]any {
	b := genRows(0, n)
	out := make([][]any, n)
	for i := range out {
		out[i] = b.Row(i)
		if partitioned && out[i][2] == "" {
			out[i][2] = nil // Spark stores "" as the default partition
		}
	}
	return out
}

func TestParquetRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name        string
		partitionBy []string
	}{
		{"unpartitioned", nil},
		{"by grp", []string{"grp"}},
		{"by grp and flag", []string{"grp", "flag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustNew(t, "parquet", map[string]string{"path": dir, "partitionBy": strings.Join(tc.partitionBy, ",")})
			id := 0
			for b := int64(0); b < 3; b++ {
				var tasks []*batch.Batch
				for task := 0; task < 3; task++ {
					n := 40 + task*7
					tasks = append(tasks, genRows(id, n))
					id += n
				}
				if err := runBatch(t, s, b, tasks); err != nil {
					t.Fatal(err)
				}
			}
			got := readBack(t, dir, tc.partitionBy)
			want := expectRows(id, tc.partitionBy != nil)
			if len(got) != len(want) {
				t.Fatalf("read %d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("row %d:\n got %#v\nwant %#v", i, got[i], want[i])
				}
			}
			if df, lg := dataFiles(t, dir), logged(t, dir); !reflect.DeepEqual(df, lg) {
				t.Errorf("files on disk %v differ from logged %v", df, lg)
			}
		})
	}
}

func TestPartitionLayout(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, "parquet", map[string]string{"path": dir, "partitionBy": "grp"})
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 8)}); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, f := range logged(t, dir) {
		dirs = append(dirs, filepath.Dir(filepath.FromSlash(f)))
	}
	slices.Sort(dirs)
	// "" and null share the default partition: one file there.
	want := []string{"grp=__HIVE_DEFAULT_PARTITION__", "grp=a", "grp=b%3Ac"}
	if !reflect.DeepEqual(dirs, want) {
		t.Errorf("partition dirs %v, want %v", dirs, want)
	}
	for _, f := range logged(t, dir) {
		name := filepath.Base(f)
		if !strings.HasPrefix(name, "part-00000-") || !strings.HasSuffix(name, ".c000.snappy.parquet") {
			t.Errorf("file name %s does not follow part-<task>-<uuid>.c000.snappy.parquet", name)
		}
	}
}

func TestLogFormat(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, "json", map[string]string{"path": dir})
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 3), genRows(3, 3)}); err != nil {
		t.Fatal(err)
	}
	text := readFileString(t, filepath.Join(dir, MetadataDir, "0"))
	lines := strings.Split(text, "\n")
	if lines[0] != "v1" || len(lines) != 3 {
		t.Fatalf("log file:\n%s\nwant v1 and two entries", text)
	}
	for _, line := range lines[1:] {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		if want := []string{"action", "blockReplication", "blockSize", "isDir", "modificationTime", "path", "size"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("entry keys %v, want %v", keys, want)
		}
		p := m["path"].(string)
		if !strings.HasPrefix(p, "file:///") || !strings.HasSuffix(p, ".c000.json") {
			t.Errorf("path %q", p)
		}
		local, _ := pathOfURI(p)
		st, err := os.Stat(local)
		if err != nil {
			t.Fatal(err)
		}
		if m["size"].(float64) != float64(st.Size()) || m["modificationTime"].(float64) != float64(st.ModTime().UnixMilli()) ||
			m["action"] != "add" || m["isDir"] != false || m["blockReplication"].(float64) != 1 {
			t.Errorf("entry %s does not describe %s (size %d)", line, local, st.Size())
		}
	}
}

func TestReplaySkipsCommittedBatch(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, "parquet", map[string]string{"path": dir})
	// A second sink on the same path created before the commit: its cached
	// view is stale, so its tasks write files that Commit must delete.
	stale := mustNew(t, "parquet", map[string]string{"path": dir})
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 10), genRows(10, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := runBatch(t, s, 1, []*batch.Batch{genRows(20, 10)}); err != nil {
		t.Fatal(err)
	}
	before := logged(t, dir)
	var logBuf bytes.Buffer
	s.SetLogger(slog.New(slog.NewTextHandler(&logBuf, nil)))
	for _, tc := range []struct {
		name string
		s    *Sink
		id   int64
	}{
		{"same sink replays batch 1", s, 1},
		{"stale sink replays batch 1", stale, 1},
		{"stale sink replays older batch 0", stale, 0},
		{"new sink replays batch 0", mustNew(t, "parquet", map[string]string{"path": dir}), 0},
	} {
		if err := runBatch(t, tc.s, tc.id, []*batch.Batch{genRows(100, 10)}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := logged(t, dir); !reflect.DeepEqual(got, before) {
			t.Errorf("%s: log changed:\n got %v\nwant %v", tc.name, got, before)
		}
		if got := dataFiles(t, dir); !reflect.DeepEqual(got, before) {
			t.Errorf("%s: files left on disk: %v, want only %v", tc.name, got, before)
		}
	}
	if !strings.Contains(logBuf.String(), "Skipping already committed batch") || !strings.Contains(logBuf.String(), "batchId=1") {
		t.Errorf("no skip message logged: %q", logBuf.String())
	}
	if n := len(readBack(t, dir, nil)); n != 30 {
		t.Errorf("read %d rows, want 30", n)
	}
	if latest, _ := s.LatestBatchID(); latest != 1 {
		t.Errorf("latest batch %d, want 1", latest)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	for _, format := range []string{"parquet", "json", "csv"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			opts := map[string]string{"path": dir, "partitionBy": "grp", "maxRecordsPerFile": "2"}
			s := mustNew(t, format, opts)
			schema := testSchema
			b := genRows(0, 20)
			if format == "csv" { // CSV cannot hold binary or headers
				schema = batch.Schema{Fields: testFields[:8]}
				b = batch.New(schema, b.Columns[:8], b.N)
			}
			ctx := context.Background()
			w, err := s.NewWriter(ctx, 0, 0, schema)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
			if len(dataFiles(t, dir)) == 0 {
				t.Fatal("nothing written before Abort")
			}
			w.Abort(ctx)
			if got := dataFiles(t, dir); len(got) != 0 {
				t.Errorf("files left after Abort: %v", got)
			}
		})
	}
}

func TestMaxRecordsPerFile(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, "parquet", map[string]string{"path": dir, "maxRecordsPerFile": "3"})
	if err := runBatch(t, s, 0, []*batch.Batch{genRows(0, 10)}); err != nil {
		t.Fatal(err)
	}
	files := logged(t, dir)
	var suffixes []string
	var rows []int
	for _, f := range files {
		name := filepath.Base(f)
		suffixes = append(suffixes, name[strings.Index(name, ".c"):])
		tab, err := parquetio.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, len(tab.Rows))
	}
	slices.Sort(suffixes)
	if want := []string{".c000.snappy.parquet", ".c001.snappy.parquet", ".c002.snappy.parquet", ".c003.snappy.parquet"}; !reflect.DeepEqual(suffixes, want) {
		t.Errorf("files %v, want suffixes %v", files, want)
	}
	slices.Sort(rows)
	if want := []int{1, 3, 3, 3}; !reflect.DeepEqual(rows, want) {
		t.Errorf("rows per file %v, want %v", rows, want)
	}
}

func TestCompactionAndReadLog(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, "csv", map[string]string{"path": dir})
	small := batch.Schema{Fields: testFields[:2]}
	total := 0
	for id := int64(0); id < 25; id++ {
		b := genRows(total, 2)
		total += 2
		if err := runBatch(t, s, id, []*batch.Batch{batch.New(small, b.Columns[:2], 2)}); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, MetadataDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// batches 0..8 were folded into 9.compact and deleted after 19.compact.
	want := []string{"10", "11", "12", "13", "14", "15", "16", "17", "18", "19.compact", "20", "21", "22", "23", "24", "9.compact"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("log files %v, want %v", names, want)
	}
	c19, err := readLogFile(filepath.Join(dir, MetadataDir, "19.compact"))
	if err != nil || len(c19) != 20 {
		t.Errorf("19.compact has %d entries (err %v), want 20", len(c19), err)
	}
	files := logged(t, dir)
	if len(files) != 25 || !reflect.DeepEqual(files, dataFiles(t, dir)) {
		t.Errorf("ReadLog gave %d files, want the 25 on disk", len(files))
	}
	// Re-committing batch 9 (now only in 9.compact) is skipped.
	if err := runBatch(t, mustNew(t, "csv", map[string]string{"path": dir}), 9, []*batch.Batch{batch.New(small, genRows(0, 2).Columns[:2], 2)}); err != nil {
		t.Fatal(err)
	}
	if got := logged(t, dir); !reflect.DeepEqual(got, files) {
		t.Error("replaying batch 9 changed the log")
	}
}

func TestReadLogSparkSpellings(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, MetadataDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(logDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(path, action string) string {
		return `{"path":"` + path + `","size":1,"isDir":false,"modificationTime":1,"blockReplication":1,"blockSize":33554432,"action":"` + action + `"}`
	}
	write("0", "v1\n"+entry("file:/data/a.parquet", "add")+"\n"+entry("file:///data/b%20c.parquet", "add"))
	write("1", "v1\n"+entry("file:/data/a.parquet", "delete")+"\n"+entry("/data/d.parquet", "add")+"\n")
	write(".2.tmp", "v1\n"+entry("file:/data/x.parquet", "add"))
	got, err := ReadLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/data/b c.parquet", "/data/d.parquet"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadLog = %v, want %v", got, want)
	}
	write("2", "v2\n")
	if _, err := ReadLog(dir); err == nil || !strings.Contains(err.Error(), "v2") {
		t.Errorf("unknown version: err = %v", err)
	}
}

func TestJSONOutput(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, "json", map[string]string{"path": dir, "compression": "gzip"})
	b := genRows(3, 2) // ids 3 and 4 (4 has nulls)
	if err := runBatch(t, s, 0, []*batch.Batch{b}); err != nil {
		t.Fatal(err)
	}
	files := logged(t, dir)
	if len(files) != 1 || !strings.HasSuffix(files[0], ".c000.json.gz") {
		t.Fatalf("files %v, want one .json.gz", files)
	}
	f, err := os.Open(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	want := []string{
		`{"id":3,"name":"name-3","n":21,"ts":"2024-05-01T12:00:03.000Z","d":3.25,"flag":false,"day":"2024-05-04","bin":"A/8=","headers":[{"key":"h","value":"Mw=="}]}`,
		`{"id":4,"grp":"a"}`,
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("JSON lines:\n got %q\nwant %q", lines, want)
	}
}

func TestJSONValues(t *testing.T) {
	str := func(s string) *batch.Column {
		c := batch.NewColumn(batch.String, 1)
		c.AppendBytes([]byte(s))
		return c
	}
	dbl := func(f float64) *batch.Column { c := batch.NewColumn(batch.Double, 1); c.AppendFloat(f); return c }
	hdr := func(h []batch.Header) *batch.Column {
		c := batch.NewColumn(batch.Headers, 1)
		c.AppendHeaders(h)
		return c
	}
	for _, tc := range []struct {
		name string
		col  *batch.Column
		want string
	}{
		{"escapes", str("a\"b\\c\n\t\x01/<>é"), `{"x":"a\"b\\c\n\t\u0001/<>é"}`},
		{"invalid utf-8", str("a\xffb"), `{"x":"a` + "\uFFFD" + `b"}`},
		{"nan", dbl(nan()), `{"x":"NaN"}`},
		{"big double", dbl(1e10), `{"x":1.0E10}`},
		{"small double", dbl(0.0001), `{"x":1.0E-4}`},
		{"empty headers", hdr([]batch.Header{}), `{"x":[]}`},
		{"header without value", hdr([]batch.Header{{Key: "k"}}), `{"x":[{"key":"k"}]}`},
	} {
		got := string(appendJSONRow(nil, [][]byte{[]byte(`"x"`)}, []*batch.Column{tc.col}, 0))
		if got != tc.want+"\n" {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCSVOutput(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts map[string]string
		rows [][2]*string // name, grp
		want string
	}{
		{"defaults", nil, [][2]*string{{sp("x"), sp("a")}, {nil, sp("")}}, "x,a\n,\"\"\n"},
		{"header and sep", map[string]string{"header": "true", "sep": ";"}, [][2]*string{{sp("a;b"), sp("c,d")}}, "name;grp\n\"a;b\";c,d\n"},
		{"quotes", nil, [][2]*string{{sp(`say "hi"`), sp(`back\slash`)}, {sp("two\nlines"), sp(" pad ")}}, "\"say \\\"hi\\\"\",\"back\\\\slash\"\n\"two\nlines\", pad \n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := map[string]string{"path": dir}
			for k, v := range tc.opts {
				opts[k] = v
			}
			s := mustNew(t, "csv", opts)
			schema := batch.Schema{Fields: testFields[1:3]}
			c1, c2 := batch.NewColumn(batch.String, 2), batch.NewColumn(batch.String, 2)
			for _, r := range tc.rows {
				for i, c := range []*batch.Column{c1, c2} {
					if r[i] == nil {
						c.AppendNull()
					} else {
						c.AppendBytes([]byte(*r[i]))
					}
				}
			}
			b := batch.New(schema, []*batch.Column{c1, c2}, len(tc.rows))
			if err := runBatch(t, s, 0, []*batch.Batch{b}); err != nil {
				t.Fatal(err)
			}
			files := logged(t, dir)
			if len(files) != 1 {
				t.Fatalf("files %v", files)
			}
			if got := readFileString(t, filepath.Join(dir, files[0])); got != tc.want {
				t.Errorf("CSV:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCSVValues(t *testing.T) {
	b := genRows(3, 1)
	got, _ := appendCSVRow(nil, nil, b.Columns[:8], 0, ",")
	want := "3,name-3,,21,2024-05-01T12:00:03.000Z,3.25,false,2024-05-04\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCSVRefusesBinary(t *testing.T) {
	s := mustNew(t, "csv", map[string]string{"path": t.TempDir()})
	_, err := s.NewWriter(context.Background(), 0, 0, testSchema)
	if err == nil || !strings.Contains(err.Error(), `"bin"`) {
		t.Errorf("err = %v, want an error naming column bin", err)
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		format string
		opts   map[string]string
		want   []string // substrings of the error
	}{
		{"parquet", map[string]string{}, []string{`"path"`, "required"}},
		{"parquet", map[string]string{"path": dir, "compresion": "zstd"}, []string{`"compresion"`, `did you mean "compression"`}},
		{"parquet", map[string]string{"path": dir, "compression": "lzo"}, []string{`"compression"`, "snappy", "zstd"}},
		{"json", map[string]string{"path": dir, "compression": "zstd"}, []string{`"compression"`, "gzip"}},
		{"json", map[string]string{"path": dir, "header": "true"}, []string{`"header"`}},
		{"csv", map[string]string{"path": dir, "header": "yes"}, []string{`"header"`, "true, false"}},
		{"csv", map[string]string{"path": dir, "sep": ""}, []string{`"sep"`}},
		{"parquet", map[string]string{"path": dir, "maxRecordsPerFile": "-1"}, []string{`"maxRecordsPerFile"`}},
		{"parquet", map[string]string{"path": dir, "sluice.parquet.rowGroupBytes": "ten"}, []string{`"sluice.parquet.rowGroupBytes"`}},
		{"parquet", map[string]string{"path": dir, "partitionBy": "a,,b"}, []string{`"partitionBy"`}},
		{"orc", map[string]string{"path": dir}, []string{"orc", "parquet, json, csv"}},
	} {
		_, err := New(tc.format, tc.opts)
		if err == nil {
			t.Errorf("%s %v: no error", tc.format, tc.opts)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v: error %q lacks %q", tc.format, tc.opts, err, w)
			}
		}
	}
	// Engine options and any case are accepted.
	if _, err := New("PARQUET", map[string]string{"PATH": dir, "checkpointLocation": "/x", "Compression": "ZSTD"}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

func TestPartitionErrors(t *testing.T) {
	for _, tc := range []struct {
		partitionBy string
		want        string
	}{
		{"nope", `partition column "nope"`},
		{"bin", `"bin" has type binary`},
		{"name,GRP", "cannot use all columns"},
	} {
		s := mustNew(t, "parquet", map[string]string{"path": t.TempDir(), "partitionBy": tc.partitionBy})
		schema := testSchema
		if strings.Contains(tc.partitionBy, ",") {
			schema = batch.Schema{Fields: testFields[1:3]}
		}
		_, err := s.NewWriter(context.Background(), 0, 0, schema)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("partitionBy %s: err = %v, want %q", tc.partitionBy, err, tc.want)
		}
	}
}

func TestManyPartitionsBounded(t *testing.T) {
	// A tiny row-group bound shared by many open files: row groups are
	// flushed early (files get several), and past maxOpenFiles partitions
	// the least recently used file is finished and later rows of its
	// partition go to a new file. Every row still arrives.
	for _, tc := range []struct {
		name       string
		partitions int
		check      func(files, dirs, multiGroup int) bool
	}{
		{"40 partitions stay open", 40, func(files, dirs, multi int) bool { return files == dirs && multi > 0 }},
		{"100 partitions evict files", 100, func(files, dirs, multi int) bool { return files > dirs }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustNew(t, "parquet", map[string]string{"path": dir, "partitionBy": "n", "sluice.parquet.rowGroupBytes": "4096"})
			b := genRows(0, 10*tc.partitions)
			for i := 0; i < b.N; i++ {
				if !b.Columns[3].IsNull(i) {
					b.Columns[3].Ints[i] = int64(i % tc.partitions)
				}
			}
			if err := runBatch(t, s, 0, []*batch.Batch{b}); err != nil {
				t.Fatal(err)
			}
			n, multiGroup := 0, 0
			files := logged(t, dir)
			dirs := map[string]bool{}
			for _, f := range files {
				dirs[filepath.Dir(f)] = true
				tab, err := parquetio.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				n += len(tab.Rows)
				if tab.RowGroups > 1 {
					multiGroup++ // ~10 rows of a partition never fill 4 KiB alone
				}
			}
			if n != b.N {
				t.Errorf("read %d rows, want %d", n, b.N)
			}
			if !tc.check(len(files), len(dirs), multiGroup) {
				t.Errorf("%d files in %d partition dirs, %d with several row groups", len(files), len(dirs), multiGroup)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	s := mustNew(t, "parquet", map[string]string{"path": t.TempDir()})
	ctx := context.Background()
	w, err := s.NewWriter(ctx, 0, 0, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	bad := genRows(0, 3)
	bad.Columns[1] = batch.NewColumn(batch.Long, 3) // wrong type, wrong length
	if err := w.Write(ctx, bad); err == nil {
		t.Error("invalid batch accepted")
	}
	w.Abort(ctx)
	if err := s.Commit(ctx, 0, []sink.Message{"junk"}); err == nil {
		t.Error("foreign commit message accepted")
	}
}

func sp(s string) *string { return &s }

// parsePartition converts a directory value back to a cell.
func parsePartition(t *testing.T, k batch.Kind, v string) any {
	if v == DefaultPartitionName {
		return nil
	}
	v = UnescapePathName(v)
	switch k {
	case batch.String:
		return v
	case batch.Boolean:
		return v == "true"
	case batch.Long, batch.Int:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Fatalf("no parser for partition type %s", k)
	return nil
}

func nan() float64 { return math.NaN() }

func TestPartitionValueStrings(t *testing.T) {
	for _, tc := range []struct {
		p       PartitionValue
		str     string
		ok      bool
		dir     string
		comment string
	}{
		{PartitionValue{Name: "s", Kind: batch.String, Str: "a b/c:d=e%"}, "a b/c:d=e%", true, "s=a b%2Fc%3Ad%3De%25", "Spark's escapes, space kept"},
		{PartitionValue{Name: "s", Kind: batch.String, Str: ""}, "", false, "s=" + DefaultPartitionName, "empty string"},
		{PartitionValue{Name: "s", Kind: batch.String, Null: true}, "", false, "s=" + DefaultPartitionName, "null"},
		{PartitionValue{Name: "n", Kind: batch.Long, Int: -42}, "-42", true, "n=-42", ""},
		{PartitionValue{Name: "d", Kind: batch.Double, F: 1e10}, "1.0E10", true, "d=1.0E10", "Java double"},
		{PartitionValue{Name: "b", Kind: batch.Boolean, Bool: true}, "true", true, "b=true", ""},
		{PartitionValue{Name: "day", Kind: batch.Date, Int: 19844}, "2024-05-01", true, "day=2024-05-01", ""},
		{PartitionValue{Name: "ts", Kind: batch.Timestamp, Int: 1_714_564_800_500_000}, "2024-05-01 12:00:00.5", true, "ts=2024-05-01 12%3A00%3A00.5", "UTC, trailing zeros trimmed"},
		{PartitionValue{Name: "a=b", Kind: batch.Int, Int: 1}, "1", true, "a%3Db=1", "escaped name"},
	} {
		s, ok := tc.p.String()
		if s != tc.str || ok != tc.ok || tc.p.Dir() != tc.dir {
			t.Errorf("%s %+v: String() = %q, %v; Dir() = %q; want %q, %v, %q", tc.comment, tc.p, s, ok, tc.p.Dir(), tc.str, tc.ok, tc.dir)
		}
	}
}

// TestWriteAllocs checks that a task writer's allocations grow with
// batches and partitions, not with rows.
func TestWriteAllocs(t *testing.T) {
	for _, format := range []string{"parquet", "json", "csv"} {
		t.Run(format, func(t *testing.T) {
			schema := batch.Schema{Fields: testFields[:8]}
			b := genRows(0, 4000)
			b = batch.New(schema, b.Columns[:8], b.N)
			tw, err := NewTaskWriter(TaskConfig{
				Root: t.TempDir(), Format: format, Schema: schema, PartitionBy: []string{"grp"},
				FileName: func(seq int) string { return "part-" + strconv.Itoa(seq) },
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := tw.Write(ctx, b); err != nil { // open files, grow buffers
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(3, func() {
				if err := tw.Write(ctx, b); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > float64(b.N)/20 {
				t.Errorf("%.0f allocations for %d rows", allocs, b.N)
			}
			t.Logf("%s: %.0f allocations per Write of %d rows", format, allocs, b.N)
			tw.Abort()
		})
	}
}
