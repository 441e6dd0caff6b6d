package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/source/kafka"
)

// produceTxn writes values to partition 0 of topic in one committed
// transaction: the broker appends a commit marker (a control record)
// after them, which takes an offset of its own.
func produceTxn(t *testing.T, addr, topic string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("control-test"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// TestTransactionMarkersAreNotRows: a transactional topic's commit markers
// take offsets but are no rows. A batch whose range ends on a marker
// completes, the markers inside a range are skipped whether the batch's
// records come from a fetch or from the carry (the prefetch of an earlier
// batch), and every data record is read once, in order.
func TestTransactionMarkersAreNotRows(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "tx", Partitions: 1})
	// Offsets: a0 a1 a2 (3: marker) b0 b1 (6: marker) c0 c1 c2 c3 (11: marker).
	produceTxn(t, b.Addr(), "tx", "a0", "a1", "a2")
	produceTxn(t, b.Addr(), "tx", "b0", "b1")
	produceTxn(t, b.Addr(), "tx", "c0", "c1", "c2", "c3")
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "tx"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	read := func(start, end int64) {
		t.Helper()
		_, rows := readBatch(t, src, offsets("tx", start), offsets("tx", end))
		for _, task := range rows {
			for _, r := range task {
				got = append(got, fmt.Sprintf("%d:%s", r.offset, r.value))
			}
		}
	}
	read(0, 4) // ends on the first marker: fetched
	waitFor(t, func() bool { return src.CarryOf("tx", 0) == 8 })
	read(4, 8)  // from the carry, the second marker inside
	read(8, 12) // the rest of the carry, ending on the third marker
	want := "[0:a0 1:a1 2:a2 4:b0 5:b1 7:c0 8:c1 9:c2 10:c3]"
	if fmt.Sprint(got) != want {
		t.Fatalf("rows %v, want %s", got, want)
	}
	if n := src.CarryRecords(); n != 0 {
		t.Fatalf("carry holds %d records after the last batch", n)
	}
}

// TestCarryBytesAcrossFetches: the carry's byte count (keys and values,
// what bounds the prefetch) stays exact when the carry was filled by
// several fetches and batches take parts of it that end inside one.
func TestCarryBytesAcrossFetches(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "cb", Partitions: 1})
	size := func(i int) int { return 1 + i*37%90 } // value sizes vary
	rec := func(i int) *kgo.Record {
		return &kgo.Record{Topic: "cb", Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)), Value: make([]byte, size(i))}
	}
	bytesFrom := func(from, to int) int64 {
		var n int64
		for i := from; i < to; i++ {
			n += int64(len(fmt.Sprintf("k%d", i)) + size(i))
		}
		return n
	}
	produceRange := func(from, to int) {
		for i := from; i < to; i++ {
			brokertest.ProduceSync(t, b.Addr(), rec(i))
		}
	}
	produceRange(0, 10)
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "cb"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	check := func(what string, from, to int) {
		t.Helper()
		waitFor(t, func() bool { return src.CarryRecords() == int64(to-from) })
		if got, want := src.CarryBytes(), bytesFrom(from, to); got != want {
			t.Fatalf("%s: carry counts %d bytes, want %d (records %d..%d)", what, got, want, from, to-1)
		}
	}
	read := func(start, end int) {
		t.Helper()
		_, rows := readBatch(t, src, offsets("cb", int64(start)), offsets("cb", int64(end)))
		if n := len(rows[0]); n != end-start {
			t.Fatalf("batch [%d,%d) read %d rows", start, end, n)
		}
	}
	read(0, 3)
	check("after [0,3)", 3, 10)
	// Two more fetches append to the carry while no batch is open.
	produceRange(10, 20)
	check("second fetch", 3, 20)
	produceRange(20, 30)
	check("third fetch", 3, 30)
	read(3, 15) // ends inside the second fetch's records
	check("after [3,15)", 15, 30)
	// Fetches append to a carry whose head a batch took.
	produceRange(30, 40)
	check("fetch after a take", 15, 40)
	read(15, 16)
	check("after [15,16)", 16, 40)
	read(16, 33)
	check("after [16,33)", 33, 40)
	read(33, 40)
	check("after [33,40)", 40, 40)
}
