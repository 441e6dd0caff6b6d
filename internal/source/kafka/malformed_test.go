package kafka_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// TestMalformedRecordTimestamp: records whose timestamp a producer wrote
// in nano- or microseconds are out of the timestamp range (years 1..9999). Without a
// dead-letter sink the batch fails with Spark's
// KAFKA_MALFORMED_RECORD_TIMESTAMP naming topic, partition, offset and
// value; with one, the record goes there and the others are written.
func TestMalformedRecordTimestamp(t *testing.T) {
	const (
		nanos  = int64(1_715_681_700_000_000_000)
		micros = int64(1_715_681_700_000_000)
	)
	b := brokertest.Start(t, broker.TopicSpec{Name: "ts", Partitions: 1})
	base := time.UnixMilli(1_715_681_700_000)
	for i := 0; i < 6; i++ {
		switch i {
		case 3:
			produceRawTimestamp(t, b.Addr(), "ts", nanos, []byte("v3"))
			continue
		case 4:
			produceRawTimestamp(t, b.Addr(), "ts", micros, []byte("v4"))
			continue
		}
		brokertest.ProduceSync(t, b.Addr(), &kgo.Record{Topic: "ts", Partition: 0, Timestamp: base.Add(time.Duration(i) * time.Second), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	opts := map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "ts", "startingOffsets": "earliest"}
	an := trigger.Trigger{Kind: trigger.AvailableNow}

	sink := memory.New()
	_, err := runQuery(t, opts, an, t.TempDir(), sink, nil)
	for _, want := range []string{"[KAFKA_MALFORMED_RECORD_TIMESTAMP]", "topic ts, partition 0, offset 3 has timestamp ", "years 1 to 9999"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("query error %v, want it to contain %q", err, want)
		}
	}
	if sink.NumRows() != 0 {
		t.Fatalf("%d rows committed by the failed batch", sink.NumRows())
	}

	sink, dl := memory.New(), memory.New()
	rec, err := runQuery(t, opts, an, t.TempDir(), sink, func(c *engine.Config) { c.DeadLetter = dl })
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, row := range sink.Rows() {
		offs = append(offs, row[4].(int64))
	}
	if fmt.Sprint(offs) != "[0 1 2 5]" {
		t.Fatalf("main sink offsets %v, want [0 1 2 5]", offs)
	}
	dls := dl.Rows()
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	for i, want := range []struct {
		offset int64
		value  string
		reason string
	}{{3, "v3", "has timestamp "}, {4, "v4", fmt.Sprintf("has timestamp %d,", micros)}} {
		reason, offset := dls[i][0].(string), dls[i][4]
		if !strings.HasPrefix(reason, "[KAFKA_MALFORMED_RECORD_TIMESTAMP]") || !strings.Contains(reason, want.reason) ||
			offset != want.offset || string(dls[i][6].([]byte)) != want.value {
			t.Fatalf("dead letter %d: %q at offset %v, value %q", i, reason, offset, dls[i][6])
		}
	}
	var counted int64
	for _, info := range rec.infos {
		counted += info.NumDeadLetters
	}
	if counted != 2 {
		t.Fatalf("batches counted %d dead letters, want 2", counted)
	}
}

// produceRawTimestamp writes one record with timestamp ts (ms) to
// partition 0 of topic as a hand-built record batch: franz-go's producer
// takes the timestamp from a time.Time through UnixNano, which cannot hold
// what a producer writing nanoseconds sends.
func produceRawTimestamp(t *testing.T, addr, topic string, ts int64, value []byte) {
	t.Helper()
	rec := kmsg.NewRecord()
	rec.Value = value
	body := rec.AppendTo(nil)
	rec.Length = int32(len(body) - 1) // Length 0 took one byte
	records := rec.AppendTo(nil)

	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.FirstTimestamp, rb.MaxTimestamp = ts, ts
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.NumRecords = 1
	rb.Records = records
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))

	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	cl := brokertest.Client(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, td[topic].Err)
	}
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.TopicID = td[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce raw batch: %v", kerr.ErrorForCode(code))
	}
}
