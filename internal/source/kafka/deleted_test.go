package kafka_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// offsetLines returns the source line of every offsets/N file.
func offsetLines(t *testing.T, chk string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(chk, "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(chk, "offsets", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		out[e.Name()] = lines[len(lines)-1]
	}
	return out
}

// TestDeletedTopicKeepsItsPosition: with failOnDataLoss=false, the only
// subscribed topic (by name or pattern) deleted under a running query
// never makes it log an offsets/N with an empty Kafka offset {} — no batch
// runs while it is gone — and once recreated it is read from its start.
func TestDeletedTopicKeepsItsPosition(t *testing.T) {
	for _, sub := range []map[string]string{{"subscribe": "only"}, {"subscribePattern": "on.*"}} {
		t.Run(fmt.Sprint(sub), func(t *testing.T) {
			b := brokertest.Start(t, broker.TopicSpec{Name: "only", Partitions: 2})
			produce(t, b.Addr(), "only", 2, 10)
			opts := map[string]string{"kafka.bootstrap.servers": b.Addr(), "startingOffsets": "earliest", "failOnDataLoss": "false"}
			for k, v := range sub {
				opts[k] = v
			}
			src, err := kafka.New(opts, quiet)
			if err != nil {
				t.Fatal(err)
			}
			sink := memory.New()
			chk := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: chk, Logger: quiet, Workers: 2,
				Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: 20 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Stop()
			waitFor(t, func() bool { return sink.NumRows() == 20 && q.Status().Message == "Waiting for data to arrive" })
			before := q.BatchesCompleted()
			deleteTopic(t, b.Addr(), "only")
			time.Sleep(400 * time.Millisecond) // about 20 triggers with the topic gone
			if n := q.BatchesCompleted(); n != before || q.Exception() != nil {
				t.Fatalf("%d batches ran while the topic was gone (error %v)", n-before, q.Exception())
			}
			for name, line := range offsetLines(t, chk) {
				if line == "{}" || !strings.Contains(line, `"only"`) {
					t.Fatalf("offsets/%s source offset %s: the position of topic only is lost", name, line)
				}
			}
			waitFor(t, func() bool { return b.CreateTopic(ctx, broker.TopicSpec{Name: "only", Partitions: 2}) == nil })
			produce(t, b.Addr(), "only", 2, 5)
			waitFor(t, func() bool { return sink.NumRows() == 30 })
			time.Sleep(100 * time.Millisecond)
			if sink.NumRows() != 30 || q.Exception() != nil {
				t.Fatalf("rows %d, want 30 (the recreated topic's 10 from its start); error %v", sink.NumRows(), q.Exception())
			}
			var offs []int64
			for _, row := range sink.Rows()[20:] {
				offs = append(offs, row[4].(int64))
			}
			for _, o := range offs {
				if o > 4 {
					t.Fatalf("recreated topic read at offsets %v, want 0..4 on each partition", offs)
				}
			}
			for name, line := range offsetLines(t, chk) {
				if line == "{}" {
					t.Fatalf("offsets/%s is {}", name)
				}
			}
		})
	}
}

// TestAvailableNowNoticesLostPartitionsAndOffsetsGoingBack: under
// Trigger.AvailableNow every batch checks the snapshot against the brokers
// and fails with Spark's conditions when partitions were lost or a latest
// offset went below the snapshot, whatever failOnDataLoss says.
func TestAvailableNowNoticesLostPartitionsAndOffsetsGoingBack(t *testing.T) {
	for _, c := range []struct {
		name     string
		recreate bool
		want     []string
	}{
		{"partitions lost", false, []string{
			"[LOST_TOPIC_PARTITIONS_IN_END_OFFSET_WITH_TRIGGER_AVAILABLENOW] Some of partitions in Kafka topic(s) have been lost during running query with Trigger.AvailableNow. " +
				"The error could be transient - restart your query, and report if you still see the same issue.",
			"topic-partitions for latest offset: Set(keep-0), topic-partitions for end offset: Set(gone-0, gone-1, keep-0)"}},
		{"offsets went back", true, []string{
			"[END_OFFSET_HAS_GREATER_OFFSET_FOR_TOPIC_PARTITION_THAN_LATEST_WITH_TRIGGER_AVAILABLENOW] Some of partitions in Kafka topic(s) report available offset which is less than end offset " +
				"during running query with Trigger.AvailableNow. The error could be transient - restart your query, and report if you still see the same issue.",
			"latest offset: Map(gone-0 -> 2, gone-1 -> 2, keep-0 -> 10), end offset: Map(gone-0 -> 10, gone-1 -> 10, keep-0 -> 10)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := brokertest.Start(t, broker.TopicSpec{Name: "keep", Partitions: 1}, broker.TopicSpec{Name: "gone", Partitions: 2})
			produce(t, b.Addr(), "keep", 1, 10)
			produce(t, b.Addr(), "gone", 2, 10)
			src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "keep,gone",
				"startingOffsets": "earliest", "maxOffsetsPerTrigger": "5", "failOnDataLoss": "false"}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			sink := memory.New()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			changed := false
			rec := &recorder{}
			q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Workers: 2,
				Trigger: trigger.Trigger{Kind: trigger.AvailableNow}, Observers: []engine.Observer{rec},
				BeforeCommit: func(id int64) error {
					if id == 1 && !changed { // the snapshot is taken; change the topic under the query
						changed = true
						deleteTopic(t, b.Addr(), "gone")
						if c.recreate {
							waitFor(t, func() bool { return b.CreateTopic(ctx, broker.TopicSpec{Name: "gone", Partitions: 2}) == nil })
							produce(t, b.Addr(), "gone", 2, 2)
						}
					}
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-q.Done():
			case <-ctx.Done():
				t.Fatal("the query did not stop")
			}
			err = q.Exception()
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("query error %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
