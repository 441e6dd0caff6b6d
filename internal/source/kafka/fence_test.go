package kafka_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink"
	kafkasink "github.com/sluice-stream/sluice/internal/sink/kafka"
	"github.com/sluice-stream/sluice/internal/source/kafka"
)

// stallingSink stalls the Commit of the first stalls batches that have
// rows for stall — past the transaction timeout, so the broker aborts the
// batch's transaction and bumps the producer's epoch before the commit is
// tried, as under load.
type stallingSink struct {
	sink.Sink
	stall   time.Duration
	stalls  int32
	stalled atomic.Int32
}

func (s *stallingSink) Commit(ctx context.Context, id int64, msgs []sink.Message) error {
	if len(msgs) > 0 && s.stalled.Load() < s.stalls {
		s.stalled.Add(1)
		time.Sleep(s.stall)
	}
	return s.Sink.Commit(ctx, id, msgs)
}

// fencedMember starts a group member reading "in" into the Kafka sink
// (topic "out", kafka.transaction.timeout.ms 1 s) whose first stalls
// commits stall for 3.5 s (a margin for the broker's timeout timer on a
// loaded machine).
func fencedMember(t *testing.T, addr string, stalls int32) (*engine.Query, *stallingSink) {
	t.Helper()
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "in", "startingOffsets": "earliest",
		"sluice.group": "fenced", "sluice.group.member": "m1", "maxOffsetsPerTrigger": "60",
		"kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kafkasink.New(map[string]string{"kafka.bootstrap.servers": addr, "topic": "out", "kafka.transaction.timeout.ms": "1000", "kafka.linger.ms": "1"}, "q", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.UseGroupTransactions(ks.GroupProducerOpts(src.Member())); err != nil {
		t.Fatal(err)
	}
	ks.UseGroup(src)
	sk := &stallingSink{Sink: ks, stall: 3500 * time.Millisecond, stalls: stalls}
	q := startMember(t, src, sk)
	return q, sk
}

// A group member's transaction fenced after kafka.transaction.timeout.ms
// (its sink stalled past it, as under load) is recovered in process: the
// batch is abandoned, the member leaves the group and rejoins with a fresh
// transactional session, takes its partitions again from the group's
// committed offsets and goes on; every input record is in the output
// exactly once. (Before, the fence ended the member: restart-only
// recovery.)
func TestGroupTransactionFencedByTimeoutRecovers(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "in", Partitions: 2}, broker.TopicSpec{Name: "out", Partitions: 2})
	produce := func(from, n int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(i % 2), Value: []byte(strconv.Itoa(i))})
		}
		brokertest.ProduceSync(t, b.Addr(), recs...)
	}
	produce(0, 200)
	q, sk := fencedMember(t, b.Addr(), 2)
	waitUntil(t, 30*time.Second, "the first stalled commit", func() bool { return sk.stalled.Load() >= 1 })
	produce(200, 200)
	var got map[string]int
	waitUntil(t, 90*time.Second, "all 400 records in the output", func() bool {
		if err := q.Exception(); err != nil {
			t.Fatalf("the member stopped: %v", err)
		}
		got = readOut(t, b.Addr())
		return len(got) == 400
	})
	if n := sk.stalled.Load(); n != 2 {
		t.Errorf("%d commits stalled, want 2", n)
	}
	for i := 0; i < 400; i++ {
		if n := got[strconv.Itoa(i)]; n != 1 {
			t.Errorf("record %d in the output %d times", i, n)
		}
	}
	// The group's committed offsets reach the input's end.
	waitGroupAt(t, b.Addr(), "fenced", 200, 2, "the group's offsets at the end of the input")
	if err := q.Exception(); err != nil {
		t.Fatalf("the member stopped: %v", err)
	}
}

// A member fenced again and again (here: every batch stalls past the
// timeout; in production, two processes under one member name) stops
// after maxFences recoveries within the window, with an error that says
// why.
func TestGroupTransactionFencedTooOftenStops(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "in", Partitions: 2}, broker.TopicSpec{Name: "out", Partitions: 2})
	var recs []*kgo.Record
	for i := 0; i < 100; i++ {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(i % 2), Value: []byte(strconv.Itoa(i))})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	q, sk := fencedMember(t, b.Addr(), 100)
	waitUntil(t, 90*time.Second, "the member to stop", func() bool { return q.Exception() != nil })
	err := q.Exception()
	if !errors.Is(err, kafkasink.ErrFenced) || !strings.Contains(err.Error(), "fenced 4 times") {
		t.Fatalf("stopped with %v; want the sink's ErrFenced saying it was fenced 4 times", err)
	}
	// Every stalled commit was fenced (none got through: the output is
	// empty), three were recovered, the fourth stopped the member.
	if n := sk.stalled.Load(); n != 4 {
		t.Errorf("%d commits stalled, want 4 (3 recovered)", n)
	} else if got := readOut(t, b.Addr()); len(got) != 0 {
		t.Errorf("%d records in the output from fenced transactions", len(got))
	}
}

// readOut reads topic "out" with read_committed up to its stable end.
func readOut(t *testing.T, addr string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cl := brokertest.Client(t, addr, kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	seen := map[string]int{}
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	return seen
}
