package kafka_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/kafka"
)

// countListOffsets counts the ListOffsets requests the broker answers.
func countListOffsets(b *broker.Broker) *atomic.Int64 {
	var n atomic.Int64
	c := b.Cluster()
	c.ControlKey(kmsg.ListOffsets.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n.Add(1)
		return nil, nil, false // answered as usual
	})
	return &n
}

// Capped batches that follow each other are planned from the high
// watermarks the source's fetch responses carry, not from a ListOffsets
// round trip per batch (nor one sent ahead per batch): a drain of 60
// capped batches lists a few times, and still delivers every record once,
// each batch within its plan's latest offsets.
func TestCappedPlansUseTheFetchedMarks(t *testing.T) {
	const parts, n, capped = 4, 300, 20
	b := brokertest.Start(t, broker.TopicSpec{Name: "marks", Partitions: parts})
	produce(t, b.Addr(), "marks", parts, n)
	lists := countListOffsets(b)
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "marks", "startingOffsets": "earliest",
		"maxOffsetsPerTrigger": "20"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sink := memory.New()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Observers: []engine.Observer{rec}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return sink.NumRows() >= parts*n })
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, sink, parts, n)
	batches := len(rec.infos)
	if batches < parts*n/capped {
		t.Fatalf("%d batches, want at least %d", batches, parts*n/capped)
	}
	checkEndsWithinLatest(t, rec.infos)
	// One listing at the start, one every half second at most, and the
	// engine's latest-offset samples (about one a second): far fewer
	// than one a batch.
	if got := lists.Load(); got*3 > int64(batches) {
		t.Fatalf("%d ListOffsets requests for %d capped batches, want fewer than a third as many", got, batches)
	}
}

// A partition added while capped batches run is found and read from its
// first record, each record once: plans from the fetched marks go on
// checking the partitions (a listing every half second). The records
// wait for the client's metadata refresh (about 5 s) more than for the
// plan.
func TestCappedPlansFromMarksSeeAddedPartitions(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grow", Partitions: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "grow", "startingOffsets": "earliest",
		"maxOffsetsPerTrigger": "10"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sink := memory.New()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	// A steady trickle keeps capped batches coming (each plan finds the
	// cap's worth in the fetched marks) while the partition is added.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	var sent atomic.Int64
	var parts atomic.Int32
	parts.Store(2)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			for p := int32(0); p < parts.Load(); p++ {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "grow", Partition: p, Value: []byte("x")}).FirstErr(); err == nil {
					sent.Add(1)
				}
			}
		}
	}()
	waitFor(t, func() bool { return sink.NumRows() >= 200 })
	adm := kadm.NewClient(cl)
	if _, err := adm.CreatePartitions(ctx, 1, "grow"); err != nil {
		t.Fatal(err)
	}
	cl.ForceMetadataRefresh() // the producer writes to it at once
	added := time.Now()
	parts.Store(3)
	waitFor(t, func() bool {
		for _, row := range sink.Rows() {
			if row[3].(int64) == 2 {
				return true
			}
		}
		return false
	})
	if d := time.Since(added); d > 15*time.Second {
		t.Fatalf("the added partition's records reached the sink %v after it was added", d)
	}
	close(stop)
	<-done
	waitFor(t, func() bool { return int64(sink.NumRows()) >= sent.Load() })
	if got := recordsOnce(t, sink); int64(got) != sent.Load() {
		t.Fatalf("delivered %d records, want %d", got, sent.Load())
	}
	for _, row := range sink.Rows() {
		if row[3].(int64) == 2 && row[4].(int64) == 0 {
			return
		}
	}
	t.Fatal("the added partition was not read from its first record")
}

// Uncapped batches of the default trigger that drain a backlog (each
// bounded by the memory budget) are planned from the high watermarks the
// fetch responses carry too, not from a ListOffsets round trip per batch:
// a drain of many such batches lists a few times, and still delivers
// every record once, each batch within its plan's latest offsets.
func TestUncappedPlansUseTheFetchedMarks(t *testing.T) {
	const parts, n = 4, 2000
	b := brokertest.Start(t, broker.TopicSpec{Name: "umarks", Partitions: parts})
	var recs []*kgo.Record
	value := make([]byte, 1000)
	for i := 0; i < n; i++ {
		for p := 0; p < parts; p++ {
			recs = append(recs, &kgo.Record{Topic: "umarks", Partition: int32(p), Value: value})
		}
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	lists := countListOffsets(b)
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "umarks", "startingOffsets": "earliest"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sink := memory.New()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Observers: []engine.Observer{rec}, Workers: 2,
		Limits: admission.Limits{MemoryBudget: 512 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return sink.NumRows() >= parts*n })
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := recordsOnce(t, sink); got != parts*n {
		t.Fatalf("delivered %d records, want %d", got, parts*n)
	}
	batches := len(rec.infos)
	if batches < 20 {
		t.Fatalf("%d batches, want at least 20 (each bounded by the memory budget)", batches)
	}
	checkEndsWithinLatest(t, rec.infos)
	if got := lists.Load(); got*3 > int64(batches) {
		t.Fatalf("%d ListOffsets requests for %d uncapped batches, want fewer than a third as many", got, batches)
	}
}

// A query that keeps up with a trickle runs a small batch for nearly every
// record, caught up after each: its plans read the fetched marks, and each
// batch is reported by the next plan with that plan's look as the lag it
// left, so the batches send no ListOffsets request of their own (neither
// to plan nor to sample the latest offsets at their end) and still report
// a lag reference at or past their end.
func TestCaughtUpBatchesListNoOffsets(t *testing.T) {
	const parts, n = 4, 120
	b := brokertest.Start(t, broker.TopicSpec{Name: "trickle", Partitions: parts})
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "trickle", "startingOffsets": "earliest"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sink := memory.New()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Observers: []engine.Observer{rec}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The first records: the query's first plans list (no check yet).
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "trickle", Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return sink.NumRows() >= 1 })
	lists := countListOffsets(b)
	for i := 1; i < n; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "trickle", Partition: int32(i % parts), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, func() bool { return sink.NumRows() >= n })
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := recordsOnce(t, sink); got != n {
		t.Fatalf("delivered %d records, want %d", got, n)
	}
	batches := len(rec.infos)
	if batches < n/4 {
		t.Fatalf("%d batches for %d records produced one by one, want at least %d", batches, n, n/4)
	}
	// The last batch may be reported by Stop (a hard stop: no sample).
	for _, info := range rec.infos[:batches-1] {
		if info.LatestAfter == nil {
			t.Fatalf("batch %d of %d: no lag reference (LatestAfter)", info.BatchID, batches)
		}
		after := info.LatestAfter.(source.PartitionedOffset).Partitions()
		for tp, off := range info.End.(source.PartitionedOffset).Partitions() {
			if after[tp] < off {
				t.Fatalf("batch %d: lag reference %d of %v before its end %d", info.BatchID, after[tp], tp, off)
			}
		}
	}
	// A listing every half second at most (the check), the sampler's
	// ticks (one a second) and the last batch's sample at the stop: far
	// fewer than one a batch.
	if got := lists.Load(); got*3 > int64(batches) {
		t.Fatalf("%d ListOffsets requests for %d caught-up batches, want fewer than a third as many", got, batches)
	}
}
