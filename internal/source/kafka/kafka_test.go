package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/memory"
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
	infos []*engine.BatchInfo
}

func (r *recorder) QueryStarted(*engine.Query)                          {}
func (r *recorder) BatchCompleted(_ *engine.Query, i *engine.BatchInfo) { r.infos = append(r.infos, i) }
func (r *recorder) Idle(*engine.Query, time.Time)                       {}
func (r *recorder) QueryTerminated(*engine.Query, error)                {}

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
	all := memory.New()
	for _, s := range []*memory.Sink{sink1, sink2} {
		for _, id := range s.BatchIDs() {
			_ = all.Commit(context.Background(), id, []sink.Message{s.Batch(id)})
		}
	}
	total := 0
	seen := map[string]bool{}
	for _, row := range all.Rows() {
		k := fmt.Sprintf("%d/%d", row[3], row[4])
		if seen[k] {
			t.Fatalf("record %s delivered twice", k)
		}
		seen[k] = true
		total++
	}
	if total != 440 {
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
