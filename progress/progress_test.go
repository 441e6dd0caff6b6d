package progress

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// keyPaths lists every object key of a JSON document as a path, in document
// order, with the scalar it holds (raw text), so that two documents can be
// compared for field names, order and values.
func keyPaths(t *testing.T, doc []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out []string
	var walk func(path string) // reads one value
	walk = func(path string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						t.Fatalf("key at %s: %v", path, err)
					}
					walk(path + "." + k.(string))
				}
			case '[':
				for i := 0; dec.More(); i++ {
					walk(path + "[" + strconv.Itoa(i) + "]")
				}
			}
			if _, err := dec.Token(); err != nil { // closing delimiter
				t.Fatalf("close %s: %v", path, err)
			}
		default:
			out = append(out, path+"="+formatToken(v))
		}
	}
	walk("")
	return out
}

func formatToken(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func TestSparkFixturesRoundTrip(t *testing.T) {
	for _, name := range []string{"spark_kafka_agg.json", "spark_first_batch.json"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			var p Progress
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			got, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			want, gotPaths := keyPaths(t, raw), keyPaths(t, got)
			if strings.Join(want, "\n") != strings.Join(gotPaths, "\n") {
				t.Errorf("field names/order/values differ\nwant:\n%s\ngot:\n%s", strings.Join(want, "\n"), strings.Join(gotPaths, "\n"))
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, raw); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact.Bytes(), got) {
				t.Errorf("compact JSON differs\nwant %s\ngot  %s", compact.Bytes(), got)
			}
			// The pretty form carries the same document.
			if pretty := keyPaths(t, []byte(p.PrettyJSON())); strings.Join(pretty, "\n") != strings.Join(want, "\n") {
				t.Errorf("PrettyJSON differs from fixture")
			}
		})
	}
}

func TestSparkFixtureValues(t *testing.T) {
	raw, err := os.ReadFile("testdata/spark_kafka_agg.json")
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	ts, err := ParseTime(p.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", *p.Name, "orders_agg"},
		{"timestamp", ts, time.Date(2024, 5, 14, 10, 15, 0, 0, time.UTC)},
		{"batchId", p.BatchID, int64(42)},
		{"processedRowsPerSecond", float64(p.ProcessedRowsPerSecond), 13676.1},
		{"durationMs.addBatch", p.DurationMs[DurAddBatch], int64(6900)},
		{"eventTime.watermark", p.EventTime[EventTimeWatermark], "2024-05-14T10:04:59.000Z"},
		{"stateOperators[0].customMetrics", p.StateOperators[0].CustomMetrics["stateOnCurrentVersionSizeBytes"], int64(1302528)},
		{"sources[0].startOffset", OffsetString(p.Sources[0].StartOffset), `{"orders":{"0":1200000,"1":1190000}}`},
		{"sources[0].metrics", p.Sources[0].Metrics["maxOffsetsBehindLatest"], "650000"},
		{"sink.numOutputRows", p.Sink.NumOutputRows, int64(-1)},
		{"sluice", p.Sluice == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var first Progress
	raw, err = os.ReadFile("testdata/spark_first_batch.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &first); err != nil {
		t.Fatal(err)
	}
	if first.Name != nil || first.Sources[0].StartOffset != nil {
		t.Errorf("null name/startOffset not read as nil: %v %q", first.Name, first.Sources[0].StartOffset)
	}
	if got := OffsetString(first.Sources[1].EndOffset); got != "not json: socket-7" {
		t.Errorf("string offset = %q", got)
	}
}

func TestFormatHalfUp(t *testing.T) {
	tests := []struct {
		in   float64
		dec  int
		want string
	}{
		{0, 1, "0.0"},
		{10000, 1, "10000.0"},
		{13676.06, 1, "13676.1"},
		{13676.149, 1, "13676.1"},
		{0.25, 1, "0.3"},   // half goes up
		{0.15, 1, "0.2"},   // decimal form 0.15, not binary 0.1499…
		{0.05, 1, "0.1"},   // idem
		{-2.25, 1, "-2.3"}, // away from zero
		{-0.04, 1, "0.0"},  // no negative zero
		{9.95, 1, "10.0"},
		{99.95, 1, "100.0"},
		{1e-7, 1, "0.0"},
		{1e21, 1, "1000000000000000000000.0"},
		{0.8765, 3, "0.877"},
		{1.0005, 3, "1.001"},
		{2, 3, "2.000"},
		{math.NaN(), 1, "NaN"},
	}
	for _, tt := range tests {
		if got := FormatHalfUp(tt.in, tt.dec); got != tt.want {
			t.Errorf("FormatHalfUp(%v, %d) = %q, want %q", tt.in, tt.dec, got, tt.want)
		}
	}
}

// halfUpRef is an independent HALF_UP implementation on exact rationals of
// the shortest decimal form.
func halfUpRef(f float64, dec int) string {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	if !ok {
		panic("bad float")
	}
	neg := r.Sign() < 0
	r.Abs(r)
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(dec)), nil)
	r.Mul(r, new(big.Rat).SetInt(scale))
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom()) // floor for positives
	s := q.String()
	for len(s) <= dec {
		s = "0" + s
	}
	out := s[:len(s)-dec] + "." + s[len(s)-dec:]
	if neg && q.Sign() != 0 {
		out = "-" + out
	}
	return out
}

func FuzzFormatHalfUp(f *testing.F) {
	for _, v := range []float64{0, 0.05, 0.15, 0.25, -2.25, 9.95, 13676.149, 1e-7, 1e21, 123.456} {
		f.Add(v, uint8(1))
	}
	f.Fuzz(func(t *testing.T, v float64, d uint8) {
		if !finite(v) {
			return
		}
		dec := int(d%4) + 1
		if got, want := FormatHalfUp(v, dec), halfUpRef(v, dec); got != want {
			t.Fatalf("FormatHalfUp(%v, %d) = %q, reference %q", v, dec, got, want)
		}
	})
}

func TestMarshalRules(t *testing.T) {
	name := "q"
	p := Progress{
		ID: "id", RunID: "run", Timestamp: FormatTime(time.Date(2024, 1, 2, 3, 4, 5, 6_789_000, time.FixedZone("x", 3600))),
		InputRowsPerSecond:     Double(math.NaN()),
		ProcessedRowsPerSecond: Double(math.Inf(1)),
		DurationMs:             map[string]int64{},
		EventTime:              map[string]string{},
		Sources: []SourceProgress{{
			Description: "s", StartOffset: OffsetJSON(""), EndOffset: OffsetJSON(`{"t":{"1":5,"0":4}}`),
			LatestOffset: OffsetJSON("plain-7"), InputRowsPerSecond: 1.25, ProcessedRowsPerSecond: Double(math.Inf(-1)),
			Metrics: map[string]string{"z": "1", "a": "2"},
		}},
		Sink: SinkProgress{Description: "k", NumOutputRows: -1, Metrics: map[string]string{}},
	}
	got := p.JSON()
	want := `{"id":"id","runId":"run","name":null,"timestamp":"2024-01-02T02:04:05.006Z","batchId":0,"batchDuration":0,` +
		`"numInputRows":0,"stateOperators":[],"sources":[{"description":"s","startOffset":null,` +
		`"endOffset":{"t":{"1":5,"0":4}},"latestOffset":"plain-7","numInputRows":0,"inputRowsPerSecond":1.3,` +
		`"metrics":{"a":"2","z":"1"}}],"sink":{"description":"k","numOutputRows":-1}}`
	if got != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
	// Absent doubles come back as NaN, so the report round-trips exactly.
	var back Progress
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(back.InputRowsPerSecond)) || !math.IsNaN(float64(back.Sources[0].ProcessedRowsPerSecond)) {
		t.Errorf("absent rates read as %v, %v; want NaN", back.InputRowsPerSecond, back.Sources[0].ProcessedRowsPerSecond)
	}
	if again := back.JSON(); again != got {
		t.Errorf("second round differs:\n%s\n%s", again, got)
	}
	p.Name = &name
	if !strings.Contains(p.JSON(), `"name":"q"`) {
		t.Errorf("name not written: %s", p.JSON())
	}
	p.Sources[0].EndOffset = json.RawMessage("{bad")
	if _, err := json.Marshal(p); err == nil {
		t.Error("invalid raw offset marshalled without error")
	}
}

func TestOffsetJSON(t *testing.T) {
	tests := []struct{ in, raw string }{
		{"", ""},
		{`{"orders":{"0":1}}`, `{"orders":{"0":1}}`},
		{"42", "42"},
		{"file-3", `"file-3"`},
		{`"quoted"`, `"quoted"`},
	}
	for _, tt := range tests {
		raw := OffsetJSON(tt.in)
		if string(raw) != tt.raw {
			t.Errorf("OffsetJSON(%q) = %s, want %s", tt.in, raw, tt.raw)
		}
		back := OffsetString(raw)
		wantBack := tt.in
		if tt.in == `"quoted"` {
			wantBack = "quoted"
		}
		if back != wantBack {
			t.Errorf("OffsetString(%s) = %q, want %q", raw, back, wantBack)
		}
	}
}

func TestSumSources(t *testing.T) {
	p := Progress{Sources: []SourceProgress{
		{NumInputRows: 10, InputRowsPerSecond: 5, ProcessedRowsPerSecond: 20},
		{NumInputRows: 32, InputRowsPerSecond: 1.5, ProcessedRowsPerSecond: NaN()},
	}}
	p.SumSources()
	if p.NumInputRows != 42 || p.InputRowsPerSecond != 6.5 || p.ProcessedRowsPerSecond != 20 {
		t.Errorf("sums = %d %v %v, want 42 6.5 20", p.NumInputRows, p.InputRowsPerSecond, p.ProcessedRowsPerSecond)
	}
}

func sluiceSample() *Progress {
	name := "orders"
	p := &Progress{
		ID: "ce011fdc-8762-4dcb-84eb-a77333e28109", RunID: "88e2ff94-ede0-45a8-b687-6316fbef529a", Name: &name,
		Timestamp: "2024-05-14T10:15:00.000Z", BatchID: 7, BatchDuration: 1500, NumInputRows: 3000,
		InputRowsPerSecond: 1500, ProcessedRowsPerSecond: 2000,
		DurationMs: map[string]int64{DurTriggerExecution: 1500, DurAddBatch: 1400, DurWALCommit: 20, DurLatestOffset: 5},
		Sources: []SourceProgress{{Description: "KafkaV2[Subscribe[orders]]", StartOffset: OffsetJSON(`{"orders":{"0":0}}`),
			EndOffset: OffsetJSON(`{"orders":{"0":3000}}`), LatestOffset: OffsetJSON(`{"orders":{"0":8000}}`),
			NumInputRows: 3000, InputRowsPerSecond: 1500, ProcessedRowsPerSecond: 2000}},
		Sink: SinkProgress{Description: "ConsoleSink", NumOutputRows: 3000},
		Sluice: &Sluice{
			Health: &HealthInfo{Status: "WARN", Reason: "lag grew from 1200 to 5000 records over the last 3 batches while offsets advanced"},
			Lag: &LagInfo{Records: 5000, Seconds: 3.25, DrainETASeconds: Never(), ArrivalRowsPerSecond: 2100, CapacityRowsPerSecond: 2142.857,
				Partitions: []PartitionLag{{Topic: "orders", Partition: 0, OffsetsBehind: 5000, LagSeconds: 3.25, LagMethod: "interpolated", Status: "WARN"}}},
			Timing:     &TimingInfo{TriggerIntervalMs: 1000, BatchDurationVsTrigger: 1.5, SchedulingDelayMs: 0, BusyRatio: 0.9375, WorkerUtilization: 0.8125, TaskSkew: Ratio(math.NaN())},
			Throughput: &ThroughputInfo{NumInputBytes: 300000, InputBytesPerSecond: 150000, ProcessedBytesPerSecond: NaN()},
			Checkpoint: &CheckpointInfo{Bytes: 40960, Files: 21},
			Memory:     &MemoryInfo{BufferedBytes: 1 << 20},
			Admission:  &AdmissionInfo{Limit: 3000, LimitBound: true, Reason: "maxOffsetsPerTrigger"},
		},
	}
	return p
}

func TestSluiceGolden(t *testing.T) {
	p := sluiceSample()
	got := p.PrettyJSON() + "\n"
	path := filepath.Join("testdata", "sluice_progress.golden.json")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("PrettyJSON differs from %s:\n%s", path, got)
	}
	// Round trip: NaN stays NaN (omitted), never stays never (null).
	var back Progress
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if !back.Sluice.Lag.DrainETASeconds.IsNever() || !math.IsNaN(float64(back.Sluice.Timing.TaskSkew)) {
		t.Errorf("never/NaN lost: eta=%v skew=%v", back.Sluice.Lag.DrainETASeconds, back.Sluice.Timing.TaskSkew)
	}
	if back.PrettyJSON()+"\n" != got {
		t.Errorf("sluice progress does not round-trip:\n%s", back.PrettyJSON())
	}
}

func TestSluiceValues(t *testing.T) {
	p := sluiceSample()
	p.Sluice.Lag.DrainETASeconds = 12.25
	var m map[string]any
	if err := json.Unmarshal([]byte(p.JSON()), &m); err != nil {
		t.Fatal(err)
	}
	s := m["sluice"].(map[string]any)
	lag := s["lag"].(map[string]any)
	timing := s["timing"].(map[string]any)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"drainEtaSeconds", lag["drainEtaSeconds"], 12.3},
		{"capacity rounded", lag["capacityRowsPerSecond"], 2142.9},
		{"busyRatio 3 decimals", timing["busyRatio"], 0.938},
		{"taskSkew NaN omitted", timing["taskSkew"], nil},
		{"schedulingDelayMs zero kept", timing["schedulingDelayMs"], 0.0},
		{"processedBytesPerSecond NaN omitted", s["throughput"].(map[string]any)["processedBytesPerSecond"], nil},
		{"budgetBytes zero omitted", s["memory"].(map[string]any)["budgetBytes"], nil},
		{"health", s["health"].(map[string]any)["status"], "WARN"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The sluice key comes last, after Spark's fields.
	js := p.JSON()
	if i, j := strings.Index(js, `"sink"`), strings.Index(js, `"sluice"`); i < 0 || j < i {
		t.Errorf("sluice key not after sink: %s", js)
	}
}

func FuzzProgressJSON(f *testing.F) {
	for _, name := range []string{"spark_kafka_agg.json", "spark_first_batch.json", "sluice_progress.golden.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"inputRowsPerSecond":null,"sources":[{"startOffset":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Progress
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		first, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal of parsed progress failed: %v", err)
		}
		var q Progress
		if err := json.Unmarshal(first, &q); err != nil {
			t.Fatalf("re-parse %s: %v", first, err)
		}
		second, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("not stable:\n%s\n%s", first, second)
		}
	})
}

func TestRates(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		rows          int64
		start, prev   time.Time
		dur           time.Duration
		wantIn, wantP float64
	}{
		{"first batch", 500, t0, time.Time{}, 250 * time.Millisecond, 0, 2000},
		{"steady", 1000, t0.Add(2 * time.Second), t0, 500 * time.Millisecond, 500, 2000},
		{"sub-ms batch clamps to 1ms", 3, t0.Add(time.Second), t0, 300 * time.Microsecond, 3, 3000},
		{"ms truncation", 100, t0.Add(1999 * time.Microsecond), t0, 1999 * time.Microsecond, 100000, 100000},
		{"same instant clamps to 1ms", 2, t0, t0, 0, 2000, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InputRowsPerSecond(tt.rows, tt.start, tt.prev); got != tt.wantIn {
				t.Errorf("InputRowsPerSecond = %v, want %v", got, tt.wantIn)
			}
			if got := ProcessedRowsPerSecond(tt.rows, tt.dur); got != tt.wantP {
				t.Errorf("ProcessedRowsPerSecond = %v, want %v", got, tt.wantP)
			}
		})
	}
	// The Spark quirk: measured from an idle poll 10 ms earlier instead of
	// the previous executed batch 30 s earlier, the rate is 3000x higher.
	batch := t0
	idlePoll := t0.Add(30*time.Second - 10*time.Millisecond)
	start := t0.Add(30 * time.Second)
	ours, spark := InputRowsPerSecond(3000, start, batch), InputRowsPerSecond(3000, start, idlePoll)
	if ours != 100 || spark != 300000 {
		t.Errorf("ours %v spark-style %v, want 100 and 300000", ours, spark)
	}
}

func TestStatusJSON(t *testing.T) {
	var h StatusHolder
	h.Set(Status{Message: MsgInitializingSources})
	h.Update(func(s *Status) { s.Message = MsgWaitingForData })
	b, err := json.Marshal(h.Get())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"message":"Waiting for data to arrive","isDataAvailable":false,"isTriggerActive":false}`; string(b) != want {
		t.Errorf("status JSON %s, want %s", b, want)
	}
	if got := GettingOffsetsMessage("KafkaV2[Subscribe[orders]]"); got != "Getting offsets from KafkaV2[Subscribe[orders]]" {
		t.Errorf("GettingOffsetsMessage = %q", got)
	}
	if got := TerminatedMessage("boom"); got != "Terminated with exception: boom" {
		t.Errorf("TerminatedMessage = %q", got)
	}
}

func TestEventJSON(t *testing.T) {
	msg := "boom"
	tests := []struct {
		ev   any
		want string
	}{
		{ProgressEvent{Progress: &Progress{ID: "a", RunID: "b", Timestamp: "t"}},
			`{"progress":{"id":"a","runId":"b","name":null,"timestamp":"t","batchId":0,"batchDuration":0,"numInputRows":0,"inputRowsPerSecond":0.0,"processedRowsPerSecond":0.0,"stateOperators":[],"sources":[],"sink":{"description":"","numOutputRows":0}}}`},
		{TerminatedEvent{ID: "a", RunID: "b"}, `{"id":"a","runId":"b","exception":null}`},
		{TerminatedEvent{ID: "a", RunID: "b", Exception: &msg}, `{"id":"a","runId":"b","exception":"boom"}`},
		{IdleEvent{ID: "a", RunID: "b", Timestamp: "t"}, `{"id":"a","runId":"b","timestamp":"t"}`},
		{StartedEvent{ID: "a", RunID: "b", Timestamp: "t"}, `{"id":"a","runId":"b","name":null,"timestamp":"t"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%T JSON\n got %s\nwant %s", tt.ev, b, tt.want)
		}
	}
}
