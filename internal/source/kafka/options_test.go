package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

func tp(topic string, p int32) partition.ID {
	return partition.ID{Topic: topic, Partition: p}
}

func TestMinPartitionsAndMaxRecordsSplitTasks(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "big", Partitions: 2})
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &kgo.Record{Topic: "big", Partition: 0, Value: []byte(fmt.Sprintf("p0-%d", i))})
	}
	for i := 0; i < 30; i++ {
		recs = append(recs, &kgo.Record{Topic: "big", Partition: 1, Value: []byte(fmt.Sprintf("p1-%d", i))})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	cases := []struct {
		name  string
		opts  map[string]string
		tasks []string // the first batch's task names, sorted
	}{
		{"minPartitions", map[string]string{"minPartitions": "6"},
			[]string{"big-0[0,60)", "big-0[120,180)", "big-0[180,240)", "big-0[240,300)", "big-0[60,120)", "big-1[0,30)"}},
		{"maxRecordsPerPartition", map[string]string{"maxRecordsPerPartition": "100"},
			[]string{"big-0[0,100)", "big-0[100,200)", "big-0[200,300)", "big-1[0,30)"}},
		{"both, with a batch limit", map[string]string{"maxRecordsPerPartition": "50", "minPartitions": "8", "maxOffsetsPerTrigger": "220"},
			// 220 split 200:20 by backlog, then 200 → 4 × 50, then
			// 5 < 8 ranges: 50s → 2 pieces each (round(50/220·8)=2),
			// 20 → round(0.73)=1, kept whole.
			[]string{"big-0[0,25)", "big-0[100,125)", "big-0[125,150)", "big-0[150,175)", "big-0[175,200)", "big-0[25,50)", "big-0[50,75)", "big-0[75,100)", "big-1[0,20)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "big", "startingOffsets": "earliest"}
			for k, v := range c.opts {
				opts[k] = v
			}
			sink := memory.New()
			rec, err := runQuery(t, opts, trigger.Trigger{Kind: trigger.AvailableNow}, t.TempDir(), sink, func(cfg *engine.Config) { cfg.Workers = 3 })
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, ti := range rec.infos[0].Tasks {
				names = append(names, ti.Task)
			}
			sortStrings(names)
			if fmt.Sprint(names) != fmt.Sprint(c.tasks) {
				t.Errorf("first batch tasks\n got %v\nwant %v", names, c.tasks)
			}
			// Every offset exactly once; in order within each task.
			seen := map[string]bool{}
			for _, id := range sink.BatchIDs() {
				for _, part := range sink.Batch(id) {
					var last = map[int64]int64{}
					for i := 0; i < part.N; i++ {
						row := part.Row(i)
						p, off := row[3].(int64), row[4].(int64)
						if prev, ok := last[p]; ok && off != prev+1 {
							t.Fatalf("batch %d: partition %d offset %d follows %d inside one task", id, p, off, prev)
						}
						last[p] = off
						k := fmt.Sprintf("%d/%d", p, off)
						if seen[k] {
							t.Fatalf("offset %s read twice", k)
						}
						seen[k] = true
						if want := fmt.Sprintf("p%d-%d", p, off); string(row[1].([]byte)) != want {
							t.Fatalf("offset %s: value %q, want %q", k, row[1], want)
						}
					}
				}
			}
			if len(seen) != 330 {
				t.Fatalf("read %d distinct offsets, want 330", len(seen))
			}
		})
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestStartingOffsetsByTimestamp(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "ts", Partitions: 2})
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		// Partition 0: one record per second; partition 1: every 2 s.
		recs = append(recs,
			&kgo.Record{Topic: "ts", Partition: 0, Timestamp: base.Add(time.Duration(i) * time.Second), Value: []byte(fmt.Sprintf("p0-%d", i))},
			&kgo.Record{Topic: "ts", Partition: 1, Timestamp: base.Add(time.Duration(2*i) * time.Second), Value: []byte(fmt.Sprintf("p1-%d", i))})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	ms := func(d time.Duration) string { return fmt.Sprint(base.Add(d).UnixMilli()) }
	cases := []struct {
		name string
		opts map[string]string
		want map[partition.ID]int64
		err  []string
	}{
		{"startingTimestamp", map[string]string{"startingTimestamp": ms(5500 * time.Millisecond)},
			map[partition.ID]int64{tp("ts", 0): 6, tp("ts", 1): 3}, nil},
		{"exact timestamp is inclusive", map[string]string{"startingTimestamp": ms(4 * time.Second)},
			map[partition.ID]int64{tp("ts", 0): 4, tp("ts", 1): 2}, nil},
		{"by partition", map[string]string{"startingOffsetsByTimestamp": fmt.Sprintf(`{"ts":{"0":%s,"1":%s}}`, ms(2*time.Second), ms(15*time.Second))},
			map[partition.ID]int64{tp("ts", 0): 2, tp("ts", 1): 8}, nil},
		{"global timestamp wins over per partition and offsets", map[string]string{"startingTimestamp": ms(0), "startingOffsets": "latest",
			"startingOffsetsByTimestamp": fmt.Sprintf(`{"ts":{"0":%s,"1":%s}}`, ms(2*time.Second), ms(2*time.Second))},
			map[partition.ID]int64{tp("ts", 0): 0, tp("ts", 1): 0}, nil},
		{"per partition wins over offsets", map[string]string{"startingOffsets": "earliest",
			"startingOffsetsByTimestamp": fmt.Sprintf(`{"ts":{"0":%s,"1":%s}}`, ms(9*time.Second), ms(9*time.Second))},
			map[partition.ID]int64{tp("ts", 0): 9, tp("ts", 1): 5}, nil},
		{"no match: error by default", map[string]string{"startingTimestamp": ms(10 * time.Second)},
			nil, []string{"no record at or after timestamp", "2025-01-01T00:00:10Z", "partition ts-0", "startingOffsetsByTimestampStrategy=latest"}},
		{"no match: latest strategy", map[string]string{"startingTimestamp": ms(10 * time.Second), "startingOffsetsByTimestampStrategy": "latest"},
			map[partition.ID]int64{tp("ts", 0): 10, tp("ts", 1): 5}, nil},
		{"by partition must name every partition", map[string]string{"startingOffsetsByTimestamp": fmt.Sprintf(`{"ts":{"0":%s}}`, ms(0))},
			nil, []string{"does not specify partition ts-1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "ts"}
			for k, v := range c.opts {
				opts[k] = v
			}
			src, err := kafka.New(opts, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			off, err := src.InitialOffset(context.Background())
			if c.err != nil {
				if err == nil {
					t.Fatalf("no error; offsets %v", off.JSON())
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := off.JSON(), kafka.Offsets(c.want).JSON(); got != want {
				t.Fatalf("initial offsets %s, want %s", got, want)
			}
		})
	}
	// And a query started from a timestamp reads exactly from there.
	sink := memory.New()
	if _, err := runQuery(t, map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "ts", "startingTimestamp": ms(5500 * time.Millisecond)},
		trigger.Trigger{Kind: trigger.AvailableNow}, t.TempDir(), sink, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range sink.Rows() {
		got = append(got, string(row[1].([]byte)))
	}
	sortStrings(got)
	want := []string{"p0-6", "p0-7", "p0-8", "p0-9", "p1-3", "p1-4", "p1-5", "p1-6", "p1-7", "p1-8", "p1-9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", got, want)
	}
}

// TestMinOffsetsPerTriggerAndMaxTriggerDelay plans batches from what the
// source reports on a real broker: the source's options reach the planner
// through DefaultReadLimit, and the planner (on a simulated clock) delays
// and caps batches as Spark's delayBatch and rateLimit do.
func TestMinOffsetsPerTriggerAndMaxTriggerDelay(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "m", Partitions: 2})
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "m", "startingOffsets": "earliest",
		"minOffsetsPerTrigger": "100", "maxOffsetsPerTrigger": "150", "maxTriggerDelay": "400ms"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	lim := src.DefaultReadLimit()
	if lim.MinRows != 100 || lim.MaxRows != 150 || lim.MaxTriggerDelay != 400*time.Millisecond {
		t.Fatalf("default read limit %+v", lim)
	}
	limits := admission.Limits{}.WithSourceDefaults(lim)
	start, err := src.InitialOffset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := func(from, to source.Offset) int64 {
		return partition.Total(partition.Offsets(from.(kafka.Offsets)), partition.Offsets(to.(kafka.Offsets)))
	}
	next := 0
	produceMore := func(perPartition int) {
		var recs []*kgo.Record
		for i := 0; i < perPartition; i++ {
			for p := int32(0); p < 2; p++ {
				recs = append(recs, &kgo.Record{Topic: "m", Partition: p, Value: []byte(fmt.Sprint(next + i))})
			}
		}
		next += perPartition
		brokertest.ProduceSync(t, b.Addr(), recs...)
	}
	now := time.Unix(1_700_000_000, 0)
	var hist admission.History
	batch := int64(0)
	step := func(what string, wantRows int64) {
		t.Helper()
		from, latest, err := src.Available(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		d := admission.Plan(admission.Input{BatchID: batch, Now: now, Limits: limits, Start: from, Latest: latest, History: hist})
		if d.Released {
			hist.LastRelease = now
		}
		end := src.PartitionOffset(d.End)
		got := total(start, end)
		if got != wantRows {
			t.Fatalf("%s: batch of %d rows, want %d (%s)", what, got, wantRows, d.Reason)
		}
		if got > 0 {
			batch++
		}
		start = end
	}
	produceMore(10) // 20 available
	step("the first check never delays (as Spark's lastTriggerMillis starts at 0)", 20)
	produceMore(25) // 50 available < 100
	step("below minOffsetsPerTrigger within maxTriggerDelay: delayed", 0)
	produceMore(30) // 110 available ≥ 100
	step("minOffsetsPerTrigger reached: released", 110)
	produceMore(100) // 200 available
	step("released batches are capped by maxOffsetsPerTrigger", 150)
	step("the remaining 50 wait for more data", 0)
	now = now.Add(450 * time.Millisecond)
	step("maxTriggerDelay passed: released below the minimum", 50)
	step("nothing new", 0)
}

func deleteTopic(t *testing.T, addr, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(brokertest.Client(t, addr)).DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
}

func TestTopicDeletedAndRecreated(t *testing.T) {
	for _, failOnDataLoss := range []bool{true, false} {
		for _, recreate := range []bool{false, true} {
			t.Run(fmt.Sprintf("failOnDataLoss=%v/recreated=%v", failOnDataLoss, recreate), func(t *testing.T) {
				b := brokertest.Start(t, broker.TopicSpec{Name: "keep", Partitions: 1}, broker.TopicSpec{Name: "gone", Partitions: 2})
				produce(t, b.Addr(), "keep", 1, 10)
				produce(t, b.Addr(), "gone", 2, 10)
				sink := memory.New()
				chk := t.TempDir()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				start := func() *engine.Query {
					src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "keep,gone",
						"startingOffsets": "earliest", "failOnDataLoss": fmt.Sprint(failOnDataLoss)}, quiet)
					if err != nil {
						t.Fatal(err)
					}
					q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: chk, Logger: quiet, Workers: 2,
						Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: 50 * time.Millisecond}})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { q.Stop() })
					return q
				}
				q := start()
				waitFor(t, func() bool { return sink.NumRows() == 30 })
				wantMsg := "is gone (topic deleted?)"
				if recreate {
					// Deleted and recreated with fewer records while the
					// query is down: the offsets went back.
					if err := q.Stop(); err != nil {
						t.Fatal(err)
					}
					deleteTopic(t, b.Addr(), "gone")
					waitFor(t, func() bool { return b.CreateTopic(ctx, broker.TopicSpec{Name: "gone", Partitions: 2}) == nil })
					produce(t, b.Addr(), "gone", 2, 3)
					wantMsg = "offset was changed from 10 to 3"
					q = start()
				} else {
					deleteTopic(t, b.Addr(), "gone") // while the query runs
				}
				if failOnDataLoss {
					select {
					case <-q.Done():
					case <-ctx.Done():
						t.Fatal("query did not fail")
					}
					err := q.Exception()
					if err == nil || !strings.Contains(err.Error(), wantMsg) || !strings.Contains(err.Error(), "failOnDataLoss=false") {
						t.Fatalf("query error %v, want one saying %q and naming failOnDataLoss=false", err, wantMsg)
					}
					return
				}
				// The query carries on with the other topic and, when
				// recreated, reads the new topic from its start (Spark
				// would skip the 3 records per partition there before
				// the check).
				produceFrom := func(topic string, from, to int) {
					var recs []*kgo.Record
					for i := from; i < to; i++ {
						recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("p0-%d", i))})
					}
					brokertest.ProduceSync(t, b.Addr(), recs...)
				}
				produceFrom("keep", 10, 15)
				want := 35
				if recreate {
					want += 2 * 3
					waitFor(t, func() bool { return sink.NumRows() >= want })
					produceFrom("gone", 3, 7)
					want += 4
				}
				waitFor(t, func() bool { return sink.NumRows() >= want })
				time.Sleep(200 * time.Millisecond)
				if q.Exception() != nil || sink.NumRows() != want {
					t.Fatalf("rows %d (want %d), error %v", sink.NumRows(), want, q.Exception())
				}
			})
		}
	}
}

// TestTopicDeletedWhileReading deletes a topic while a batch waits for its
// records: the client would wait forever; the reader notices.
func TestTopicDeletedWhileReading(t *testing.T) {
	for _, failOnDataLoss := range []bool{true, false} {
		t.Run(fmt.Sprintf("failOnDataLoss=%v", failOnDataLoss), func(t *testing.T) {
			t.Parallel()
			b := brokertest.Start(t, broker.TopicSpec{Name: "g", Partitions: 1})
			produce(t, b.Addr(), "g", 1, 10)
			src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "g",
				"failOnDataLoss": fmt.Sprint(failOnDataLoss), "maxRecordsPerPartition": "40"}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			// Plan [0, 100) though only 10 records exist, as a batch
			// planned just before the topic's deletion would be.
			p := tp("g", 0)
			r, err := src.Open(context.Background(), kafka.Offsets{p: 0}, kafka.Offsets{p: 100})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			time.AfterFunc(300*time.Millisecond, func() { deleteTopic(t, b.Addr(), "g") })
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			rows := 0
			var errs []error
			for _, task := range r.Tasks() { // [0,34) [34,67) [67,100)
				errs = append(errs, r.Read(ctx, task, func(_ context.Context, bt *batch.Batch) error { rows += bt.N; return nil }))
			}
			if rows != 10 {
				t.Errorf("read %d rows, want the 10 that existed", rows)
			}
			for i, err := range errs {
				switch {
				case errors.Is(err, context.DeadlineExceeded):
					t.Fatalf("task %d still waiting after 15 s", i)
				case failOnDataLoss && (err == nil || !strings.Contains(err.Error(), "partition g-0 is gone (topic deleted?) while offsets [10, 100) were still to be read")):
					t.Errorf("task %d: error %v, want the partition reported gone", i, err)
				case !failOnDataLoss && err != nil:
					t.Errorf("task %d: %v", i, err)
				}
			}
			if !failOnDataLoss {
				if n := src.SkippedOffsets(); n != 90 {
					t.Errorf("skipped %d offsets, want 90", n)
				}
			}
		})
	}
}

// TestStartingOffsetsPerTopic: startingOffsets names whole topics,
// {"t1":"earliest","t2":"latest"} (Spark 4.x), alone or mixed with
// per-partition offsets; a topic it names must be subscribed, and an
// unlisted topic is an error as an unlisted partition is.
func TestStartingOffsetsPerTopic(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "t1", Partitions: 2}, broker.TopicSpec{Name: "t2", Partitions: 2})
	var recs []*kgo.Record
	for i := 0; i < 5; i++ {
		for _, topic := range []string{"t1", "t2"} {
			for p := int32(0); p < 2; p++ {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("x")})
			}
		}
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	cases := []struct {
		name, starting string
		want           map[partition.ID]int64
		err            string
	}{
		{"per topic", `{"t1":"earliest","t2":"latest"}`, map[partition.ID]int64{tp("t1", 0): 0, tp("t1", 1): 0, tp("t2", 0): 5, tp("t2", 1): 5}, ""},
		{"case-insensitive words", `{"t1":"LATEST","t2":"Earliest"}`, map[partition.ID]int64{tp("t1", 0): 5, tp("t1", 1): 5, tp("t2", 0): 0, tp("t2", 1): 0}, ""},
		{"mixed with partitions", `{"t1":"latest","t2":{"0":3,"1":-2}}`, map[partition.ID]int64{tp("t1", 0): 5, tp("t1", 1): 5, tp("t2", 0): 3, tp("t2", 1): 0}, ""},
		{"a topic left out", `{"t1":"earliest"}`, nil, "does not specify partition t2-0"},
		{"a topic not subscribed", `{"t1":"earliest","t2":"latest","t3":"latest"}`, nil, `names topic "t3", which does not exist or is not subscribed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "t1,t2", "startingOffsets": c.starting}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			off, err := src.InitialOffset(context.Background())
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("InitialOffset = %v, want an error containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := off.JSON(), kafka.Offsets(c.want).JSON(); got != want {
				t.Fatalf("initial offsets %s, want %s", got, want)
			}
		})
	}
	if _, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "t1", "startingOffsets": `{"t1":"soon"}`}, quiet); err == nil ||
		!strings.Contains(err.Error(), `{"topicA":"earliest","topicB":"latest"}`) {
		t.Fatalf("a word that is neither earliest nor latest: %v", err)
	}
}
