package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// produce writes n records per partition with value "p<partition>-<i>".
func produce(t *testing.T, addr, topic string, partitions, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		for p := 0; p < partitions; p++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p),
				Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	brokertest.ProduceSync(t, addr, recs...)
}

type recorder struct {
	engine.NopObserver
	infos []*engine.BatchInfo
}

// checkEndsWithinLatest fails the test when a batch ends past the latest
// offsets it was planned from.
func checkEndsWithinLatest(t *testing.T, infos []*engine.BatchInfo) {
	t.Helper()
	for _, info := range infos {
		end := info.End.(source.PartitionedOffset).Partitions()
		latest := info.Latest.(source.PartitionedOffset).Partitions()
		for tp, off := range end {
			if off > latest[tp] {
				t.Fatalf("batch %d: end %d of %v past its latest offset %d", info.BatchID, off, tp, latest[tp])
			}
		}
	}
}

func (r *recorder) BatchCompleted(_ *engine.Query, i *engine.BatchInfo) { r.infos = append(r.infos, i) }

func runQuery(t *testing.T, opts map[string]string, trig trigger.Trigger, chk string, sink *memory.Sink, extra func(*engine.Config)) (*recorder, error) {
	t.Helper()
	src, err := kafka.New(opts, quiet)
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	rec := &recorder{}
	cfg := engine.Config{Source: src, Sink: sink, Trigger: trig, CheckpointDir: chk, Logger: quiet, Observers: []engine.Observer{rec}, Workers: 2}
	if extra != nil {
		extra(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, cfg)
	if err != nil {
		return rec, err
	}
	return rec, q.AwaitTermination(ctx)
}

// checkExactlyOnce asserts every produced record appears once, in offset
// order per partition.
func checkExactlyOnce(t *testing.T, sink *memory.Sink, partitions, n int) {
	t.Helper()
	next := make([]int64, partitions)
	seen := 0
	for _, row := range sink.Rows() {
		p := row[3].(int64)
		off := row[4].(int64)
		if off != next[p] {
			t.Fatalf("partition %d: got offset %d, want %d (duplicate or gap)", p, off, next[p])
		}
		if want := fmt.Sprintf("p%d-%d", p, off); string(row[1].([]byte)) != want {
			t.Fatalf("partition %d offset %d: value %q, want %q", p, off, row[1], want)
		}
		next[p]++
		seen++
	}
	if seen != partitions*n {
		t.Fatalf("saw %d records, want %d", seen, partitions*n)
	}
}

func TestAvailableNowRespectsLimitAndDeliversExactlyOnce(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 4})
	produce(t, b.Addr(), "orders", 4, 250)
	sink := memory.New()
	rec, err := runQuery(t, map[string]string{
		"kafka.bootstrap.servers": b.Addr(), "subscribe": "orders",
		"startingOffsets": "earliest", "maxOffsetsPerTrigger": "300",
	}, trigger.Trigger{Kind: trigger.AvailableNow}, t.TempDir(), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, sink, 4, 250)
	if len(rec.infos) != 4 { // 1000 records / 300 per batch
		t.Fatalf("ran %d batches, want 4", len(rec.infos))
	}
	for _, info := range rec.infos {
		if info.NumInputRows > 300 {
			t.Errorf("batch %d admitted %d rows > maxOffsetsPerTrigger 300", info.BatchID, info.NumInputRows)
		}
	}
	if rec.infos[0].NumInputRows != 300 {
		t.Errorf("first batch admitted %d, want exactly the limit 300", rec.infos[0].NumInputRows)
	}
}

func TestAvailableNowStopsAtSnapshot(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "t", Partitions: 2})
	produce(t, b.Addr(), "t", 2, 100)
	sink := memory.New()
	var cl *kgo.Client
	_, err := runQuery(t, map[string]string{
		"kafka.bootstrap.servers": b.Addr(), "subscribe": "t",
		"startingOffsets": "earliest", "maxOffsetsPerTrigger": "50",
	}, trigger.Trigger{Kind: trigger.AvailableNow}, t.TempDir(), sink, func(c *engine.Config) {
		// Records produced after the query started are not part of the snapshot.
		c.BeforeCommit = func(id int64) error {
			if id == 0 {
				cl = brokertest.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
				return cl.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Partition: 0, Value: []byte("late")}).FirstErr()
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := sink.NumRows(); got != 200 {
		t.Fatalf("read %d rows, want the 200 present at start", got)
	}
}

func TestSplitFollowsBacklog(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "skew", Partitions: 2})
	var recs []*kgo.Record
	for i := 0; i < 900; i++ {
		recs = append(recs, &kgo.Record{Topic: "skew", Partition: 0, Value: []byte("a")})
	}
	for i := 0; i < 100; i++ {
		recs = append(recs, &kgo.Record{Topic: "skew", Partition: 1, Value: []byte("b")})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	sink := memory.New()
	rec, err := runQuery(t, map[string]string{
		"kafka.bootstrap.servers": b.Addr(), "subscribe": "skew",
		"startingOffsets": "earliest", "maxOffsetsPerTrigger": "100",
	}, trigger.Trigger{Kind: trigger.AvailableNow}, t.TempDir(), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := rec.infos[0]
	end := first.End.(kafka.Offsets)
	start := first.Start.(kafka.Offsets)
	var d [2]int64
	for tp, e := range end {
		d[tp.Partition] = e - start[tp]
	}
	if d != [2]int64{90, 10} {
		t.Fatalf("first batch split %v, want [90 10] (proportional to backlog 900:100)", d)
	}
}

func TestCrashBetweenOffsetsAndCommitReplaysSameRanges(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "c", Partitions: 4})
	produce(t, b.Addr(), "c", 4, 100)
	chk := t.TempDir()
	opts := map[string]string{
		"kafka.bootstrap.servers": b.Addr(), "subscribe": "c",
		"startingOffsets": "earliest", "maxOffsetsPerTrigger": "150",
	}
	crash := errors.New("simulated crash")
	sink1 := memory.New()
	rec1, err := runQuery(t, opts, trigger.Trigger{Kind: trigger.AvailableNow}, chk, sink1, func(c *engine.Config) {
		c.BeforeCommit = func(id int64) error {
			if id == 1 {
				return crash
			}
			return nil
		}
	})
	if !errors.Is(err, crash) {
		t.Fatalf("first run: err %v, want the simulated crash", err)
	}
	if len(rec1.infos) != 1 {
		t.Fatalf("first run completed %d batches, want 1", len(rec1.infos))
	}
	// More data arrives while "down": the replay must not include it.
	produce(t, b.Addr(), "c", 4, 10)
	sink2 := memory.New()
	rec2, err := runQuery(t, opts, trigger.Trigger{Kind: trigger.AvailableNow}, chk, sink2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec2.infos[0].BatchID != 1 || !rec2.infos[0].Replayed {
		t.Fatalf("restart's first batch = %d (replayed %v), want a replay of batch 1", rec2.infos[0].BatchID, rec2.infos[0].Replayed)
	}
	// Batch 1's rows in the first run (written to the sink before the crash)
	// and in the replay must be identical: same ranges.
	if got, want := rows(sink2.Batch(1)), rows(sink1.Batch(1)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed batch 1 differs:\n got %v\nwant %v", got, want)
	}
	// Together the committed batches hold every record exactly once.
	if total := recordsOnce(t, committedTogether(sink1, sink2)); total != 440 {
		t.Fatalf("delivered %d records, want 440", total)
	}
}

func rows(parts []*batch.Batch) []string {
	var out []string
	for _, b := range parts {
		for i := 0; i < b.N; i++ {
			r := b.Row(i)
			out = append(out, fmt.Sprintf("%d/%d", r[3], r[4]))
		}
	}
	return out
}

func TestRetentionDeletedOffsets(t *testing.T) {
	for _, failOnDataLoss := range []bool{true, false} {
		t.Run(fmt.Sprintf("failOnDataLoss=%v", failOnDataLoss), func(t *testing.T) {
			b := brokertest.Start(t, broker.TopicSpec{Name: "r", Partitions: 2})
			produce(t, b.Addr(), "r", 2, 100)
			chk := t.TempDir()
			opts := map[string]string{
				"kafka.bootstrap.servers": b.Addr(), "subscribe": "r",
				"startingOffsets": "earliest", "maxOffsetsPerTrigger": "40",
				"failOnDataLoss": fmt.Sprint(failOnDataLoss),
			}
			// First run: one batch (20 per partition), then "crash" before
			// committing batch 1 so the restart replays it.
			crash := errors.New("stop here")
			_, err := runQuery(t, opts, trigger.Trigger{Kind: trigger.AvailableNow}, chk, memory.New(), func(c *engine.Config) {
				c.BeforeCommit = func(id int64) error {
					if id == 0 {
						return crash
					}
					return nil
				}
			})
			if !errors.Is(err, crash) {
				t.Fatalf("first run: %v", err)
			}
			// Retention deletes partition 0 below offset 60 while the query is down.
			if err := b.DeleteRecords(context.Background(), "r", 0, 60); err != nil {
				t.Fatal(err)
			}
			sink := memory.New()
			src, err := kafka.New(opts, quiet)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, Trigger: trigger.Trigger{Kind: trigger.AvailableNow},
				CheckpointDir: chk, Logger: quiet, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			err = q.AwaitTermination(ctx)
			if failOnDataLoss {
				var dl *kafka.DataLossError
				if !errors.As(err, &dl) {
					t.Fatalf("err = %v, want a DataLossError", err)
				}
				if dl.Topic != "r" || dl.Partition != 0 || dl.Expected != 0 || dl.Earliest != 60 {
					t.Fatalf("DataLossError = %+v, want topic r partition 0 expected 0 earliest 60", dl)
				}
				for _, want := range []string{"topic r partition 0", "offset 0", "earliest available offset is 60", "failOnDataLoss=false"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Partition 0: offsets 60..99 (the deleted 0..59 skipped and
			// counted); partition 1: all 100.
			got := map[int64]int{}
			for _, row := range sink.Rows() {
				got[row[3].(int64)]++
				if row[3].(int64) == 0 && row[4].(int64) < 60 {
					t.Fatalf("read deleted offset %d", row[4])
				}
			}
			if got[0] != 40 || got[1] != 100 {
				t.Fatalf("rows per partition %v, want 0:40 1:100", got)
			}
			if n := src.SkippedOffsets(); n != 60 {
				t.Fatalf("skipped offsets %d, want 60", n)
			}
		})
	}
}

func TestNewPartitionsPickedUpFromEarliest(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grow", Partitions: 1})
	produce(t, b.Addr(), "grow", 1, 10)
	sink := memory.New()
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "grow", "startingOffsets": "earliest"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	waitFor(t, func() bool { return sink.NumRows() == 10 })
	if err := b.AddPartitions(ctx, "grow", 2); err != nil {
		t.Fatal(err)
	}
	produce(t, b.Addr(), "grow", 3, 5) // 5 more per partition, incl. the 2 new ones
	waitFor(t, func() bool { return sink.NumRows() == 25 })
	perPart := map[int64]int{}
	for _, row := range sink.Rows() {
		perPart[row[3].(int64)]++
	}
	if perPart[0] != 15 || perPart[1] != 5 || perPart[2] != 5 {
		t.Fatalf("rows per partition %v, want 0:15 1:5 2:5", perPart)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOptionErrors(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1", "subscribe": "t"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string
		opts map[string]string
		want []string // substrings of the error
	}{
		{"no bootstrap", base("kafka.bootstrap.servers", "<unset>"), []string{`"kafka.bootstrap.servers"`, "required"}},
		{"no subscription", base("subscribe", "<unset>"), []string{`"subscribe"`, `"subscribePattern"`, `"assign"`, "none"}},
		{"two subscriptions", base("assign", `{"t":[0]}`), []string{`"subscribe"`, `"subscribePattern"`, `"assign"`, "subscribe and assign"}},
		{"bad startingOffsets", base("startingOffsets", "newest"), []string{`"startingOffsets"`, `"newest"`, `"earliest", "latest"`}},
		{"bad maxOffsetsPerTrigger", base("maxOffsetsPerTrigger", "lots"), []string{`"maxOffsetsPerTrigger"`, `"lots"`, "integer ≥ 1"}},
		{"zero maxOffsetsPerTrigger", base("maxOffsetsPerTrigger", "0"), []string{`"maxOffsetsPerTrigger"`, "integer ≥ 1"}},
		{"min above max", base("maxOffsetsPerTrigger", "10", "minOffsetsPerTrigger", "20"), []string{`"minOffsetsPerTrigger"`, "maxOffsetsPerTrigger (10)"}},
		{"bad failOnDataLoss", base("failOnDataLoss", "maybe"), []string{`"failOnDataLoss"`, "true, false"}},
		{"bad includeHeaders", base("includeHeaders", "yes"), []string{`"includeHeaders"`, "true, false"}},
		{"bad maxTriggerDelay", base("maxTriggerDelay", "soon"), []string{`"maxTriggerDelay"`, "duration"}},
		{"bad isolation", base("kafka.isolation.level", "serializable"), []string{`"kafka.isolation.level"`, "read_uncommitted, read_committed"}},
		{"typo suggests", base("maxOffsetPerTrigger", "5"), []string{`"maxOffsetPerTrigger"`, `did you mean "maxOffsetsPerTrigger"`}},
		{"forbidden auto.offset.reset", base("kafka.auto.offset.reset", "earliest"), []string{`"kafka.auto.offset.reset"`, "startingOffsets"}},
		{"endingOffsets in streaming", base("endingOffsets", "latest"), []string{"endingOffsets", "not valid in streaming"}},
		{"bad assign JSON", base("subscribe", "<unset>", "assign", "t:0"), []string{`"assign"`, `{"topicA":[0,1]`}},
		{"bad pattern", base("subscribe", "<unset>", "subscribePattern", "("), []string{`"subscribePattern"`, "regular expression"}},
		{"bad startingTimestamp", base("startingTimestamp", "yesterday"), []string{`"startingTimestamp"`, "milliseconds since the epoch"}},
		{"negative startingTimestamp", base("startingTimestamp", "-5"), []string{`"startingTimestamp"`}},
		{"bad startingOffsetsByTimestamp", base("startingOffsetsByTimestamp", `{"t":{"0":-1}}`), []string{`"startingOffsetsByTimestamp"`, "every assigned partition"}},
		{"bad strategy", base("startingOffsetsByTimestampStrategy", "earliest"), []string{`"startingOffsetsByTimestampStrategy"`, "error, latest"}},
		{"zero minPartitions", base("minPartitions", "0"), []string{`"minPartitions"`, "integer ≥ 1"}},
		{"zero maxRecordsPerPartition", base("maxRecordsPerPartition", "0"), []string{`"maxRecordsPerPartition"`, "integer ≥ 1"}},
		{"bad reconnect timeout", base("sluice.reconnect.timeout", "forever"), []string{`"sluice.reconnect.timeout"`, "duration"}},
		{"bad security protocol", base("kafka.security.protocol", "KERBEROS"), []string{`"kafka.security.protocol"`, "SASL_SSL"}},
		{"SASL without credentials", base("kafka.security.protocol", "SASL_SSL"), []string{"needs credentials"}},
		{"malformed JAAS hides the password", base("kafka.security.protocol", "SASL_SSL",
			"kafka.sasl.jaas.config", `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="Sup3rS3cret`), []string{`"kafka.sasl.jaas.config"`, "not closed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kafka.ParseConfig(c.opts)
			if err == nil {
				t.Fatalf("no error for %v", c.opts)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "Sup3rS3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// committedTogether is every batch the sinks committed, in one sink (a
// batch committed by more than one keeps the last sink's rows).
func committedTogether(sinks ...*memory.Sink) *memory.Sink {
	all := memory.New()
	for _, s := range sinks {
		for _, id := range s.BatchIDs() {
			_ = all.Commit(context.Background(), id, []sink.Message{s.Batch(id)})
		}
	}
	return all
}

// recordsOnce fails t when a record (its partition and offset, the source
// rows' columns 3 and 4) is in all twice, and returns how many it holds.
func recordsOnce(t *testing.T, all *memory.Sink) int {
	t.Helper()
	seen := map[string]bool{}
	for _, row := range all.Rows() {
		k := fmt.Sprintf("%d/%d", row[3], row[4])
		if seen[k] {
			t.Fatalf("record %s delivered twice", k)
		}
		seen[k] = true
	}
	return len(seen)
}
