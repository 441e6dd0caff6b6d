package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
