package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/orders"
)

// endOffsets returns partition → end offset of topic.
func endOffsets(t *testing.T, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	out := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

func TestProducerRate(t *testing.T) {
	tests := []struct {
		name string
		prof orders.Profile
		run  time.Duration
	}{
		{"steady 2000/s", orders.Profile{Base: 2000}, 1500 * time.Millisecond},
		{"spike x3", orders.Profile{Base: 1000, Spike: 3, SpikeAt: 500 * time.Millisecond, SpikeFor: 500 * time.Millisecond}, 1500 * time.Millisecond},
		{"outage", orders.Profile{Base: 2000, Spike: 0, SpikeAt: 500 * time.Millisecond, SpikeFor: 500 * time.Millisecond}, 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const partitions = 4
			b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: partitions})
			cl := brokertest.Client(t, b.Addr(), orders.ClientOpts()...)
			p := orders.NewProducer(cl, "orders", orders.NewGenerator(1), tc.prof, nil)
			ctx, cancel := context.WithTimeout(context.Background(), tc.run)
			defer cancel()
			start := time.Now()
			if err := p.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if took := time.Since(start); took > tc.run+2*time.Second {
				t.Errorf("Run took %v after a %v context", took, tc.run)
			}
			want := tc.prof.Expected(tc.run)
			got := p.Produced()
			if math.Abs(float64(got)-want) > 0.1*want {
				t.Fatalf("produced %d records in %v, want %.0f ±10%%", got, tc.run, want)
			}
			if p.Failed() != 0 || p.Skipped() != 0 {
				t.Errorf("failed %d, skipped %d; want 0, 0", p.Failed(), p.Skipped())
			}
			// The broker holds exactly what was acknowledged, spread by key.
			var total int64
			for part, end := range endOffsets(t, cl, "orders") {
				if end == 0 {
					t.Errorf("partition %d got no records: keys should spread", part)
				}
				total += end
			}
			if total != got {
				t.Fatalf("broker holds %d records, producer counted %d", total, got)
			}
		})
	}
}

func TestProducerRecordsAreOrders(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "o", Partitions: 2})
	cl := brokertest.Client(t, b.Addr(), orders.ClientOpts()...)
	p := orders.NewProducer(cl, "o", orders.NewGenerator(3), orders.Profile{Base: 500}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	recs := brokertest.ConsumeAll(t, b.Addr(), "o", int(p.Produced()))
	seen := make(map[string]bool)
	for _, r := range recs {
		var o orders.Order
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatalf("value %q: %v", r.Value, err)
		}
		if string(r.Key) != o.CustomerID {
			t.Errorf("key %q, customer_id %q", r.Key, o.CustomerID)
		}
		if !o.TS.Equal(r.Timestamp.Truncate(time.Millisecond)) {
			t.Errorf("ts %v, record timestamp %v", o.TS, r.Timestamp)
		}
		if seen[o.OrderID] {
			t.Errorf("order %s produced twice", o.OrderID)
		}
		seen[o.OrderID] = true
	}
	// Order ids are 1..n without gaps.
	for i := 1; i <= len(recs); i++ {
		if id := fmt.Sprintf("o-%06d", i); !seen[id] {
			t.Fatalf("order %s missing among %d records", id, len(recs))
		}
	}
}

func TestProducerBoundedBuffer(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "fast", Partitions: 2})
	const maxBuf = 100
	cl := brokertest.Client(t, b.Addr(), kgo.MaxBufferedRecords(maxBuf), kgo.RecordDeliveryTimeout(10*time.Second))
	// Far more than a 100-record buffer lets through: the producer falls
	// behind, keeps the buffer bounded and drops the backlog beyond 10ms.
	p := orders.NewProducer(cl, "fast", orders.NewGenerator(1), orders.Profile{Base: 5_000_000}, nil)
	p.MaxCatchUp = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()

	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if n := cl.BufferedProduceRecords(); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if peak.Load() > maxBuf {
		t.Errorf("client buffered %d records, limit %d", peak.Load(), maxBuf)
	}
	if p.Produced() == 0 || p.Skipped() == 0 || p.Failed() != 0 {
		t.Errorf("produced %d, skipped %d, failed %d; want >0, >0, 0", p.Produced(), p.Skipped(), p.Failed())
	}
	var total int64
	for _, end := range endOffsets(t, cl, "fast") {
		total += end
	}
	if total != p.Produced() {
		t.Fatalf("broker holds %d records, producer counted %d", total, p.Produced())
	}
}

func TestProducerFailsOnMissingTopic(t *testing.T) {
	b := brokertest.Start(t)
	cl := brokertest.Client(t, b.Addr(), kgo.MaxBufferedRecords(1000))
	p := orders.NewProducer(cl, "missing", orders.NewGenerator(1), orders.Profile{Base: 100}, nil)
	p.DeliveryTimeout = 300 * time.Millisecond
	p.FlushTimeout = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("Run = %v, want an error naming the topic", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Run took %v to give up, want about the delivery timeout", took)
	}
	if p.Produced() != 0 || p.Failed() == 0 {
		t.Fatalf("produced %d failed %d, want 0 and >0", p.Produced(), p.Failed())
	}
}

func TestProducerRejects(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "x", Partitions: 1})
	cl := brokertest.Client(t, b.Addr())
	ctx := context.Background()
	if err := orders.NewProducer(cl, "x", orders.NewGenerator(1), orders.Profile{Base: -1}, nil).Run(ctx); err == nil {
		t.Error("Run with a negative rate succeeded")
	}
	if err := orders.NewProducer(cl, "", orders.NewGenerator(1), orders.Profile{Base: 1}, nil).Run(ctx); err == nil {
		t.Error("Run without a topic succeeded")
	}
	// A second concurrent Run is refused.
	p := orders.NewProducer(cl, "x", orders.NewGenerator(1), orders.Profile{Base: 10}, nil)
	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(runCtx) }()
	// Once a record is acknowledged the first Run is surely running.
	for deadline := time.Now().Add(10 * time.Second); p.Produced() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	err := p.Run(done)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want already running", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("first Run: %v", err)
	}
}

func TestPreload(t *testing.T) {
	const (
		n          = 1003
		size       = 200
		partitions = 4
	)
	// The topic has more partitions than Preload uses: the extra one stays
	// empty. The client has consumer options, which Preload must drop.
	b := brokertest.Start(t, broker.TopicSpec{Name: "bench", Partitions: partitions + 1})
	cl := brokertest.Client(t, b.Addr(), kgo.ConsumeTopics("bench"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := time.Now().Truncate(time.Millisecond)
	if err := orders.Preload(ctx, cl, "bench", n, size, partitions); err != nil {
		t.Fatal(err)
	}
	ends := endOffsets(t, brokertest.Client(t, b.Addr()), "bench")
	want := map[int32]int64{0: 251, 1: 251, 2: 251, 3: 250, 4: 0}
	for p, w := range want {
		if ends[p] != w {
			t.Errorf("partition %d holds %d records, want %d", p, ends[p], w)
		}
	}

	var prev time.Time
	recs := brokertest.ConsumeAll(t, b.Addr(), "bench", n)
	byIndex := make([]orders.Order, n)
	for _, r := range recs {
		if len(r.Value) != size {
			t.Fatalf("value is %d bytes, want %d: %s", len(r.Value), size, r.Value)
		}
		var o orders.Order
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		var i int
		if _, err := fmt.Sscanf(o.OrderID, "o-%d", &i); err != nil {
			t.Fatal(err)
		}
		i-- // order ids start at 1
		if wantP, wantO := int32(i%partitions), int64(i/partitions); r.Partition != wantP || r.Offset != wantO {
			t.Errorf("order %d at %d/%d, want %d/%d", i, r.Partition, r.Offset, wantP, wantO)
		}
		if string(r.Key) != o.CustomerID {
			t.Errorf("key %q, customer %q", r.Key, o.CustomerID)
		}
		byIndex[i] = o
	}
	for i, o := range byIndex {
		if i > 0 && o.TS.Sub(prev) != time.Millisecond {
			t.Fatalf("order %d at %v, previous at %v: want 1ms steps", i, o.TS, prev)
		}
		prev = o.TS
	}
	if last := byIndex[n-1].TS; last.Before(before) || last.After(time.Now()) {
		t.Errorf("last event time %v, want the time of the call (%v…now)", last, before)
	}
}

func TestPreloadErrors(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "two", Partitions: 2})
	cl := brokertest.Client(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		topic      string
		n, size    int
		partitions int32
		wantErr    string
	}{
		{"two", 10, 100, 3, "topic has 2 partitions, 3 asked for"},
		{"absent", 10, 100, 1, "describe topic"},
		{"two", -1, 100, 1, "negative"},
		{"two", 10, -1, 1, "negative"},
		{"two", 10, 100, 0, "must be ≥ 1"},
	} {
		err := orders.Preload(ctx, cl, tc.topic, tc.n, tc.size, tc.partitions)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Preload(%q, %d, %d, %d) = %v, want an error containing %q", tc.topic, tc.n, tc.size, tc.partitions, err, tc.wantErr)
		}
	}
	// Zero records is a no-op.
	if err := orders.Preload(ctx, cl, "two", 0, 100, 2); err != nil {
		t.Fatal(err)
	}
	if ends := endOffsets(t, cl, "two"); ends[0]+ends[1] != 0 {
		t.Fatalf("Preload of 0 records wrote %v", ends)
	}
}

// BenchmarkPreload measures bulk loading into the embedded broker: 100,000
// records of 200 bytes over 8 partitions per iteration.
func BenchmarkPreload(b *testing.B) {
	const n, size, partitions = 100_000, 200, 8
	br := brokertest.Start(b, broker.TopicSpec{Name: "bench", Partitions: partitions})
	cl := brokertest.Client(b, br.Addr(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := context.Background()
	b.SetBytes(n * size)
	for b.Loop() {
		if err := orders.Preload(ctx, cl, "bench", n, size, partitions); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
