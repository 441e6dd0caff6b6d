package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// produceRange writes offsets [from, to) of every partition with values
// "p<partition>-<offset>".
func produceRange(t *testing.T, addr, topic string, partitions, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		for p := 0; p < partitions; p++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	brokertest.ProduceSync(t, addr, recs...)
}

// TestBrokerOutageMidStream stops the broker for 10 s while a query is
// reading, restarts it on the same port with its data, and checks that
// the query waited (saying so), resumed, and delivered every record once.
func TestBrokerOutageMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("takes more than 10 s")
	}
	addr := freeAddr(t)
	cfg := broker.Config{Listen: addr, DataDir: t.TempDir(), Topics: []broker.TopicSpec{{Name: "o", Partitions: 2}}}
	b := brokertest.StartConfig(t, cfg)
	produceRange(t, addr, "o", 2, 0, 100)

	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "o",
		"startingOffsets": "earliest", "maxOffsetsPerTrigger": "20"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sink := memory.New()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Workers: 2,
		Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	waitFor(t, func() bool { return sink.NumRows() >= 40 })

	b.Close()
	down := time.Now()
	// The source says it is waiting, and the query does not fail.
	var waiting string
	for time.Since(down) < 10*time.Second {
		if w := src.Waiting(); w != "" && waiting == "" {
			waiting = w
		}
		if err := q.Exception(); err != nil {
			t.Fatalf("query failed during the outage: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(waiting, "Waiting for Kafka brokers "+addr) || !strings.Contains(waiting, "connection refused") {
		t.Errorf("while down, Waiting() = %q; want it to name the broker and the cause", waiting)
	}
	rowsDuringOutage := sink.NumRows()
	if rowsDuringOutage >= 200 {
		t.Fatalf("read %d rows: the outage came too late to test anything", rowsDuringOutage)
	}

	b2 := brokertest.StartConfig(t, cfg)
	produceRange(t, b2.Addr(), "o", 2, 100, 150)
	waitFor(t, func() bool { return sink.NumRows() >= 300 })
	time.Sleep(300 * time.Millisecond) // nothing more may arrive
	if err := q.Exception(); err != nil {
		t.Fatalf("query failed: %v", err)
	}
	checkExactlyOnce(t, sink, 2, 150)
	if w := src.Waiting(); w != "" {
		t.Errorf("after recovery Waiting() = %q, want empty", w)
	}
}

// TestBrokerOutageLongerThanReconnectTimeout: past sluice.reconnect.timeout
// the query fails with ErrUnavailable instead of waiting forever.
func TestBrokerOutageLongerThanReconnectTimeout(t *testing.T) {
	addr := freeAddr(t)
	b := brokertest.StartConfig(t, broker.Config{Listen: addr, Topics: []broker.TopicSpec{{Name: "o", Partitions: 1}}})
	produceRange(t, addr, "o", 1, 0, 10)
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "o",
		"startingOffsets": "earliest", "sluice.reconnect.timeout": "1s"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sink := memory.New()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, CheckpointDir: t.TempDir(), Logger: quiet, Workers: 1,
		Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	waitFor(t, func() bool { return sink.NumRows() == 10 })
	// The clock starts before the close: the query may see the first
	// refused connection while Close is still returning.
	down := time.Now()
	b.Close()
	select {
	case <-q.Done():
	case <-ctx.Done():
		t.Fatal("query still running")
	}
	took := time.Since(down)
	err = q.Exception()
	var ue *kafka.UnavailableError
	if !errors.Is(err, kafka.ErrUnavailable) || !errors.As(err, &ue) {
		t.Fatalf("error %v, want an UnavailableError", err)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("failed after %v; want about the 1s reconnect timeout", took)
	}
	if !strings.Contains(err.Error(), "sluice.reconnect.timeout") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q should name the cause and the option", err)
	}
}
