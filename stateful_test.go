package sluice

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func quietSession(conf ...string) *Session {
	opts := []SessionOption{WithLogger(slog.New(slog.DiscardHandler))}
	for i := 0; i+1 < len(conf); i += 2 {
		opts = append(opts, WithConf(conf[i], conf[i+1]))
	}
	return NewSession(opts...)
}

// rateMicro is rate-micro-batch: batch k holds rows with timestamp k+1
// seconds (not 0: as in Spark, the first batch's watermark is 0 and a row
// at the epoch would be late).
func rateMicro(s *Session, rows int) *DataFrame {
	return s.ReadStream().Format("rate-micro-batch").Option("rowsPerBatch", rows).Option("numPartitions", 2).
		Option("startTimestamp", 1000).Option("advanceMillisPerBatch", 1000).Load()
}

// waitTable waits until the memory table has at least n rows.
func waitTable(t *testing.T, s *Session, q *StreamingQuery, name string, n int) [][]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, rows, err := s.Table(name)
		if err == nil && len(rows) >= n {
			return rows
		}
		if err := q.Exception(); err != nil {
			t.Fatalf("query failed: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("table %s has %d rows, want %d", name, len(rows), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGoAPIWindowlessAggregationAppend(t *testing.T) {
	s := quietSession("spark.sql.shuffle.partitions", "3")
	q, err := rateMicro(s, 10).
		WithWatermark("timestamp", "0 seconds").
		GroupBy("timestamp").Agg("count(*) AS n", "sum(value) AS total").
		SelectExpr("CAST(timestamp AS BIGINT) AS second", "n", "total").
		WriteStream().Format("memory").QueryName("per_second").OutputMode("append").
		Option("checkpointLocation", t.TempDir()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := waitTable(t, s, q, "per_second", 4)
	q.Stop()
	// Second k+1 holds values 10k…10k+9; a second is emitted once, after
	// the watermark (the latest second seen) passed it.
	seen := map[int64]bool{}
	for _, r := range rows {
		sec, n, total := r[0].(int64), r[1].(int64), r[2].(int64)
		if seen[sec] {
			t.Fatalf("second %d emitted twice: %v", sec, rows)
		}
		seen[sec] = true
		if n != 10 || total != 100*(sec-1)+45 {
			t.Errorf("second %d: n=%d total=%d, want 10 and %d", sec, n, total, 100*(sec-1)+45)
		}
	}
	for sec := int64(1); sec <= 4; sec++ {
		if !seen[sec] {
			t.Errorf("second %d never emitted: %v", sec, rows)
		}
	}
	p := q.LastProgress()
	if p == nil || len(p.StateOperators) != 1 || p.StateOperators[0].OperatorName != "stateStoreSave" ||
		p.StateOperators[0].NumShufflePartitions != 3 || p.EventTime["watermark"] == "" {
		t.Fatalf("progress: %s", p.JSON())
	}
	// The diagnosis accounts for stage 2 and the state commits.
	if p.Sluice == nil || p.Sluice.Diagnosis == nil {
		t.Fatalf("no diagnosis: %s", p.JSON())
	}
	if _, ok := p.Sluice.Diagnosis.Shares["state"]; !ok {
		t.Fatalf("diagnosis has no state share: %s", p.JSON())
	}
}

func TestGoAPIDropDuplicates(t *testing.T) {
	s := quietSession("spark.sql.shuffle.partitions", "4")
	q, err := rateMicro(s, 20).SelectExpr("value % 5 AS k", "value").DropDuplicates("k").
		WriteStream().Format("memory").QueryName("firsts").
		Option("checkpointLocation", t.TempDir()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitTable(t, s, q, "firsts", 5)
	// Let a few more batches run: no key may come back.
	deadline := time.Now().Add(10 * time.Second)
	for q.LastProgress() == nil || q.LastProgress().BatchID < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no 4th batch")
		}
		time.Sleep(20 * time.Millisecond)
	}
	q.Stop()
	_, rows, _ := s.Table("firsts")
	var keys []string
	for _, r := range rows {
		keys = append(keys, fmt.Sprint(r[0]))
		if r[1].(int64) >= 20 {
			t.Errorf("row %v is not the first of its key (batch 0 has values 0…19)", r)
		}
	}
	sort.Strings(keys)
	if strings.Join(keys, "") != "01234" {
		t.Fatalf("kept keys %v, want each of 0…4 once", keys)
	}
	if p := q.LastProgress(); p.StateOperators[0].OperatorName != "dedupe" || p.StateOperators[0].NumRowsTotal != 5 {
		t.Fatalf("progress: %s", p.JSON())
	}
}

// Spark's start-time errors come from Start, before offsets/0 exists.
func TestStatefulStartErrorsBeforeOffsets(t *testing.T) {
	cases := []struct {
		name string
		df   func(*Session) *DataFrame
		mode string
		want string
	}{
		{"append without watermark", func(s *Session) *DataFrame { return rateMicro(s, 1).GroupBy("value").Count() }, "append",
			"Invalid streaming output mode: append"},
		{"within watermark, no watermark", func(s *Session) *DataFrame { return rateMicro(s, 1).DropDuplicatesWithinWatermark("value") }, "append",
			"dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark"},
		{"complete without aggregation", func(s *Session) *DataFrame { return rateMicro(s, 1).DropDuplicates() }, "complete",
			"Complete output mode not supported when there are no streaming aggregations"},
		{"bad watermark column", func(s *Session) *DataFrame { return rateMicro(s, 1).WithWatermark("badColumn", "1 minute") }, "append",
			"badColumn"},
		{"negative delay", func(s *Session) *DataFrame { return rateMicro(s, 1).WithWatermark("timestamp", "-10 seconds") }, "append",
			"should not be negative."},
		{"distinct aggregation", func(s *Session) *DataFrame { return rateMicro(s, 1).GroupBy("value").Agg("count(DISTINCT value)") }, "update",
			"Distinct aggregations are not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chk := t.TempDir()
			s := quietSession()
			_, err := c.df(s).WriteStream().Format("console").OutputMode(c.mode).Stdout(discard{}).
				Option("checkpointLocation", chk).Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start: %v, want an error containing %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(chk, "offsets", "0")); err == nil {
				t.Fatal("offsets/0 written before the start-time error")
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestExplainStateful(t *testing.T) {
	s := quietSession("spark.sql.shuffle.partitions", "7")
	out, err := rateMicro(s, 1).WithWatermark("timestamp", "10 seconds").GroupBy("timestamp").Count().Explain()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== Logical Plan ==", "Aggregate [timestamp]", "== Physical Plan ==",
		"Exchange hashpartitioning([timestamp], 7)", "PartialAggregate [timestamp], [count(1)]", "Project [timestamp, count]", "StateStoreSave"} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
	// The schema of an aggregation, whatever the output mode.
	sch, err := rateMicro(s, 1).GroupBy("value % 2 AS parity").Agg("count(*)", "max(timestamp) AS last").Schema()
	if err != nil || strings.Join(sch.Names(), ",") != "parity,count(1),last" {
		t.Fatalf("schema %v %v", sch, err)
	}
}

// State that would pass its share of the memory budget stops the query
// with an error naming the operator, the bytes and the remedies — never
// an out-of-memory crash.
func TestStateMemoryBudgetExceeded(t *testing.T) {
	s := quietSession("spark.sql.shuffle.partitions", "2")
	q, err := rateMicro(s, 2000).DropDuplicates("value").
		WriteStream().Format("noop").Option("sluice.memory.budget", "1MiB").
		Option("checkpointLocation", t.TempDir()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = q.AwaitTermination(ctx)
	if err == nil {
		t.Fatal("query did not fail")
	}
	for _, want := range []string{"stateful operator 0 (dedupe)", "over its share of the memory budget (512.0 KiB)",
		"add a watermark", "raise sluice.memory.budget", "spark.sql.streaming.stateStore.providerClass=disk"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// Rows stage 1 cannot process (an ANSI cast) go to the dead-letter sink in
// a stateful query too; the aggregation counts only the good ones.
func TestStatefulDeadLetters(t *testing.T) {
	s := quietSession("spark.sql.shuffle.partitions", "3", "spark.sql.ansi.enabled", "true")
	q, err := rateMicro(s, 20).
		SelectExpr("CAST(CASE WHEN value % 5 = 0 THEN 'bad' ELSE CAST(value % 2 AS STRING) END AS INT) AS parity").
		GroupBy("parity").Count().
		WriteStream().Format("memory").QueryName("parities").OutputMode("complete").
		DeadLetter("memory", nil).
		Option("checkpointLocation", t.TempDir()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitTable(t, s, q, "parities", 2)
	deadline := time.Now().Add(10 * time.Second)
	for q.LastProgress() == nil || q.LastProgress().BatchID < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no 3rd batch")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A graceful stop lets the running batch commit: a hard one could
	// abandon it after its dead letters were committed (they precede the
	// main sink's commit), and the counts would differ by that batch.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.StopGracefully(ctx); err != nil {
		t.Fatal(err)
	}
	batches := q.LastProgress().BatchID + 1
	_, dead, _ := s.Table("parities.deadLetter")
	if int64(len(dead)) != 4*batches { // values ≡ 0 mod 5: 4 of every 20
		t.Fatalf("%d dead letters after %d batches, want %d", len(dead), batches, 4*batches)
	}
	_, rows, _ := s.Table("parities")
	// Complete mode: every batch prints both groups; the last two rows are
	// the final counts (8 of each parity per batch).
	last := map[any]int64{}
	for _, r := range rows[len(rows)-2:] {
		last[r[0]] = r[1].(int64)
	}
	if last[int64(0)] != 8*batches || last[int64(1)] != 8*batches {
		t.Fatalf("final counts %v after %d batches, want 8 per batch each", last, batches)
	}
}

// The disk state store takes a fixed allowance per shuffle partition: a
// budget too small for the partitions is an error at start, naming the
// remedies.
func TestDiskStateBudgetTooSmall(t *testing.T) {
	s := quietSession("spark.sql.shuffle.partitions", "200", "spark.sql.streaming.stateStore.providerClass", "disk")
	_, err := rateMicro(s, 10).DropDuplicates("value").WriteStream().Format("noop").
		Option("sluice.memory.budget", "64MiB").Option("checkpointLocation", t.TempDir()).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "200 partitions need 400.0 MiB, over the state share (half) of sluice.memory.budget, 32.0 MiB") ||
		!strings.Contains(err.Error(), "lower spark.sql.shuffle.partitions") {
		t.Fatalf("Start: %v", err)
	}
	// With 16 partitions the same budget fits (2 MiB each).
	s = quietSession("spark.sql.shuffle.partitions", "16", "spark.sql.streaming.stateStore.providerClass", "disk")
	q, err := rateMicro(s, 10).DropDuplicates("value").WriteStream().Format("noop").
		Option("sluice.memory.budget", "64MiB").Option("checkpointLocation", t.TempDir()).Trigger(Once()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	if p := q.LastProgress(); p == nil || p.StateOperators[0].NumRowsTotal != 10 || p.StateOperators[0].NumStateStoreInstances != 16 {
		t.Fatalf("progress %v", p)
	}
}

func TestGoAPIWindowedCount(t *testing.T) {
	s := quietSession("spark.sql.shuffle.partitions", "3")
	q, err := rateMicro(s, 10).WithWatermark("timestamp", "0 seconds").
		GroupBy("window(timestamp, '2 seconds')").Count().
		SelectExpr("CAST(window.start AS BIGINT) AS start", "count").
		WriteStream().Format("memory").QueryName("windows").OutputMode("append").
		Option("checkpointLocation", t.TempDir()).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := waitTable(t, s, q, "windows", 3)
	q.Stop()
	// Second k holds 10 rows: the window [0, 2) has second 1, the next
	// ones two seconds each.
	got := map[int64]int64{}
	for _, r := range rows {
		if _, dup := got[r[0].(int64)]; dup {
			t.Fatalf("window %v emitted twice: %v", r[0], rows)
		}
		got[r[0].(int64)] = r[1].(int64)
	}
	if got[0] != 10 || got[2] != 20 || got[4] != 20 {
		t.Fatalf("windows %v", got)
	}
}
