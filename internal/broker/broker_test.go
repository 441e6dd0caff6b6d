package broker_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluice-stream/sluice/internal/testutil"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// partitionCounts returns topic → partition count as the broker reports it
// through the Kafka protocol.
func partitionCounts(t *testing.T, addr string) map[string]int {
	t.Helper()
	adm := kadm.NewClient(brokertest.Client(t, addr))
	tds, err := adm.ListTopics(testCtx(t))
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	out := make(map[string]int)
	for _, td := range tds {
		out[td.Topic] = len(td.Partitions)
	}
	return out
}

func TestStartCreatesTopicsAndRoundTrips(t *testing.T) {
	b := brokertest.StartConfig(t, broker.Config{
		Topics:            []broker.TopicSpec{{Name: "orders", Partitions: 4}, {Name: "defaulted"}},
		DefaultPartitions: 3,
	})
	if host, _, err := net.SplitHostPort(b.Addr()); err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q, want a 127.0.0.1 host:port (err %v)", b.Addr(), err)
	}
	got := partitionCounts(t, b.Addr())
	want := map[string]int{"orders": 4, "defaulted": 3}
	for topic, n := range want {
		if got[topic] != n {
			t.Errorf("topic %q has %d partitions, want %d (all: %v)", topic, got[topic], n, got)
		}
	}

	// Produce to explicit partitions, read back everything exactly.
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{
			Topic:     "orders",
			Partition: int32(i % 4),
			Key:       []byte("k" + strconv.Itoa(i)),
			Value:     []byte("v" + strconv.Itoa(i)),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}},
		})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	read := brokertest.ConsumeAll(t, b.Addr(), "orders", 20)
	seen := make(map[string]bool)
	for _, r := range read {
		i, err := strconv.Atoi(string(r.Value[1:]))
		if err != nil {
			t.Fatalf("unexpected value %q", r.Value)
		}
		if r.Partition != int32(i%4) || int(r.Offset) != i/4 || string(r.Key) != "k"+strconv.Itoa(i) ||
			len(r.Headers) != 1 || string(r.Headers[0].Value) != strconv.Itoa(i) {
			t.Errorf("record %d: partition %d offset %d key %q headers %v; want partition %d offset %d key k%d",
				i, r.Partition, r.Offset, r.Key, r.Headers, i%4, i/4, i)
		}
		seen[string(r.Value)] = true
	}
	if len(seen) != 20 {
		t.Fatalf("read %d distinct values, want 20", len(seen))
	}
}

func TestCreateTopicAndAddPartitions(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "t1", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	err := b.CreateTopic(ctx, broker.TopicSpec{Name: "t1", Partitions: 2})
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("second CreateTopic error = %v, want TopicAlreadyExists", err)
	}
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "bad/name", Partitions: 1}); err == nil {
		t.Fatal("CreateTopic accepted an invalid name")
	}
	if err := b.AddPartitions(ctx, "t1", 3); err != nil {
		t.Fatal(err)
	}
	if got := partitionCounts(t, b.Addr())["t1"]; got != 5 {
		t.Fatalf("t1 has %d partitions after adding 3 to 2, want 5", got)
	}
	if got := len(b.Cluster().PartitionInfos("t1")); got != 5 {
		t.Fatalf("kfake reports %d partitions, want 5", got)
	}
	// The new partitions are usable.
	brokertest.ProduceSync(t, b.Addr(), &kgo.Record{Topic: "t1", Partition: 4, Value: []byte("x")})
	if r := brokertest.ConsumeAll(t, b.Addr(), "t1", 1); r[0].Partition != 4 {
		t.Fatalf("record landed in partition %d, want 4", r[0].Partition)
	}

	for _, tc := range []struct {
		topic string
		n     int
	}{{"t1", 0}, {"t1", -1}, {"missing", 1}} {
		if err := b.AddPartitions(ctx, tc.topic, tc.n); err == nil {
			t.Errorf("AddPartitions(%q, %d) succeeded, want an error", tc.topic, tc.n)
		}
	}
}

func TestDeleteRecordsMovesStartOffset(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "r", Partitions: 2})
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: "r", Partition: 0, Value: []byte{byte('a' + i)}})
	}
	recs = append(recs, &kgo.Record{Topic: "r", Partition: 1, Value: []byte("p1")})
	brokertest.ProduceSync(t, b.Addr(), recs...)

	ctx := testCtx(t)
	if err := b.DeleteRecords(ctx, "r", 0, 7); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(brokertest.Client(t, b.Addr()))
	starts, err := adm.ListStartOffsets(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	wantStart := map[int32]int64{0: 7, 1: 0}
	for p, want := range wantStart {
		o, ok := starts.Lookup("r", p)
		if !ok || o.Err != nil || o.Offset != want {
			t.Errorf("start offset of r/%d = %+v (found %v), want %d", p, o, ok, want)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("r", 0); o.Offset != 10 {
		t.Errorf("end offset of r/0 = %d, want 10 (deleting must not move the end)", o.Offset)
	}

	// A consumer from the start sees only the retained records.
	var got []string
	for _, r := range brokertest.ConsumeAll(t, b.Addr(), "r", 4) {
		if r.Partition == 0 {
			got = append(got, fmt.Sprintf("%d=%s", r.Offset, r.Value))
		}
	}
	if strings.Join(got, ",") != "7=h,8=i,9=j" {
		t.Fatalf("retained partition 0 = %v, want [7=h 8=i 9=j]", got)
	}

	// Beyond the high watermark, and unknown partitions, are errors.
	for _, tc := range []struct {
		topic     string
		partition int32
		before    int64
	}{{"r", 0, 11}, {"r", 5, 0}, {"nope", 0, 0}} {
		if err := b.DeleteRecords(ctx, tc.topic, tc.partition, tc.before); err == nil {
			t.Errorf("DeleteRecords(%q, %d, %d) succeeded, want an error", tc.topic, tc.partition, tc.before)
		}
	}
	// -1 deletes everything.
	if err := b.DeleteRecords(ctx, "r", 1, -1); err != nil {
		t.Fatal(err)
	}
	if pi := b.Cluster().PartitionInfo("r", 1); pi.LogStartOffset != 1 {
		t.Fatalf("log start of r/1 after DeleteRecords(-1) = %d, want 1", pi.LogStartOffset)
	}
}

func TestListenFixedPort(t *testing.T) {
	// Find a free port, release it, then ask the broker for it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := brokertest.StartConfig(t, broker.Config{Listen: addr})
	if b.Addr() != addr {
		t.Fatalf("Addr() = %q, want %q", b.Addr(), addr)
	}
	// The port is taken now: a second broker on it fails with a clear error.
	_, err = broker.Start(testCtx(t), broker.Config{Listen: addr})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("second Start on %s: error = %v, want one naming the address", addr, err)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, cfg := range []broker.Config{
		{Listen: "0.0.0.0:0"},
		{Listen: "nonsense"},
		{DefaultPartitions: -1},
		{Topics: []broker.TopicSpec{{Name: ""}}},
	} {
		b, err := broker.Start(testCtx(t), cfg)
		if err == nil {
			b.Close()
			t.Errorf("Start(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestAutoCreateTopics(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(strconv.FormatBool(auto), func(t *testing.T) {
			b := brokertest.StartConfig(t, broker.Config{AutoCreateTopics: auto, DefaultPartitions: 2})
			cl := brokertest.Client(t, b.Addr(), kgo.AllowAutoTopicCreation())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr()
			n := partitionCounts(t, b.Addr())["auto"]
			if auto && (err != nil || n != 2) {
				t.Fatalf("auto-create on: produce err %v, partitions %d; want nil, 2", err, n)
			}
			if !auto && (err == nil || n != 0) {
				t.Fatalf("auto-create off: produce err %v, partitions %d; want an error, 0", err, n)
			}
		})
	}
}

func TestDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := broker.Config{Topics: []broker.TopicSpec{{Name: "keep", Partitions: 2}}, DataDir: dir}
	ctx := testCtx(t)
	b1, err := broker.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.ProduceSync(t, b1.Addr(),
		&kgo.Record{Topic: "keep", Partition: 1, Key: []byte("k"), Value: []byte("v")})
	b1.Close()

	// Restart with the same topics (already there) plus one more partition.
	cfg.Topics = []broker.TopicSpec{{Name: "keep", Partitions: 3}}
	b2 := brokertest.StartConfig(t, cfg)
	if n := partitionCounts(t, b2.Addr())["keep"]; n != 3 {
		t.Fatalf("after restart keep has %d partitions, want 3", n)
	}
	r := brokertest.ConsumeAll(t, b2.Addr(), "keep", 1)[0]
	if r.Partition != 1 || r.Offset != 0 || string(r.Key) != "k" || string(r.Value) != "v" {
		t.Fatalf("after restart read %d/%d %q=%q, want 1/0 k=v", r.Partition, r.Offset, r.Key, r.Value)
	}
}

func TestClosedBroker(t *testing.T) {
	b, err := broker.Start(testCtx(t), broker.Config{Topics: []broker.TopicSpec{{Name: "c", Partitions: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	b.Close()
	b.Close() // idempotent
	ctx := testCtx(t)
	for name, err := range map[string]error{
		"CreateTopic":   b.CreateTopic(ctx, broker.TopicSpec{Name: "d"}),
		"AddPartitions": b.AddPartitions(ctx, "c", 1),
		"DeleteRecords": b.DeleteRecords(ctx, "c", 0, 0),
	} {
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after Close", addr)
	}
}

func TestCanceledContext(t *testing.T) {
	b := brokertest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateTopic with a canceled context: %v, want context.Canceled", err)
	}
}

// syncBuffer is testutil.SyncBuffer.
type syncBuffer = testutil.SyncBuffer

func TestLogger(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := brokertest.StartConfig(t, broker.Config{Logger: logger, Topics: []broker.TopicSpec{{Name: "l", Partitions: 1}}})
	b.Close()
	out := buf.String()
	for _, want := range []string{
		`msg="embedded kafka broker started" addr=` + b.Addr(),
		`msg="created topic" topic=l partitions=1`,
		`msg="embedded kafka broker stopped"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q; log:\n%s", want, out)
		}
	}
}

func TestLibrdkafkaCompatApiVersions(t *testing.T) {
	plain := brokertest.StartConfig(t, broker.Config{})
	compat := brokertest.StartConfig(t, broker.Config{LibrdkafkaCompat: true, Topics: []broker.TopicSpec{{Name: "x", Partitions: 1}}})
	ctx := testCtx(t)
	for v := int16(0); v <= 5; v++ {
		t.Run(strconv.Itoa(int(v)), func(t *testing.T) {
			ask := func(addr string) *kmsg.ApiVersionsResponse {
				req := kmsg.NewPtrApiVersionsRequest()
				req.Version = v
				req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
				// kgo sends the highest version both sides allow: cap it.
				vs := kversion.Stable()
				vs.SetMaxKeyVersion(kmsg.ApiVersions.Int16(), v)
				cl := brokertest.Client(t, addr, kgo.MaxVersions(vs))
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					t.Fatalf("ApiVersions v%d to %s: %v", v, addr, err)
				}
				return resp
			}
			p, c := ask(plain.Addr()), ask(compat.Addr())
			if p.ErrorCode != 0 || c.ErrorCode != 0 || p.Version != c.Version {
				t.Fatalf("error codes %d/%d, versions %d/%d", p.ErrorCode, c.ErrorCode, p.Version, c.Version)
			}
			if len(p.ApiKeys) != len(c.ApiKeys) {
				t.Fatalf("compat lists %d keys, kfake %d", len(c.ApiKeys), len(p.ApiKeys))
			}
			for i, pk := range p.ApiKeys {
				ck := c.ApiKeys[i]
				wantMin := pk.MinVersion
				if pk.ApiKey == 0 || pk.ApiKey == 1 {
					wantMin = 0
				}
				if ck.ApiKey != pk.ApiKey || ck.MaxVersion != pk.MaxVersion || ck.MinVersion != wantMin {
					t.Errorf("key %d: compat %d..%d, kfake %d..%d, want min %d", pk.ApiKey, ck.MinVersion, ck.MaxVersion, pk.MinVersion, pk.MaxVersion, wantMin)
				}
			}
		})
	}
	// Normal clients keep working against the compat broker.
	brokertest.ProduceSync(t, compat.Addr(), &kgo.Record{Topic: "x", Partition: 0, Value: []byte("v")})
	if r := brokertest.ConsumeAll(t, compat.Addr(), "x", 1)[0]; string(r.Value) != "v" {
		t.Fatalf("read %q back from the compat broker, want v", r.Value)
	}
}

// segmentBytes returns the log.segment.bytes the broker reports in its
// broker configs (the value set, not kfake's default, if both are listed).
func segmentBytes(t *testing.T, addr string) string {
	t.Helper()
	adm := kadm.NewClient(brokertest.Client(t, addr))
	rcs, err := adm.DescribeBrokerConfigs(testCtx(t))
	if err != nil {
		t.Fatalf("describe broker configs: %v", err)
	}
	var got string
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "log.segment.bytes" && (got == "" || c.Source != kmsg.ConfigSourceDefaultConfig) {
				got = c.MaybeValue()
			}
		}
	}
	return got
}

// An in-memory broker rolls 1 MiB segments (MemorySegmentBytes), not
// kfake's 100 MiB: kfake grows an in-memory segment by doubling and
// copying it in the request loop, which stalled every client for up to
// half a second. Records spread over several segments read back whole and
// in order, and ExtraOpts can still choose the size.
func TestInMemoryBrokerSmallSegments(t *testing.T) {
	b := brokertest.StartConfig(t, broker.Config{Topics: []broker.TopicSpec{{Name: "seg", Partitions: 1}}})
	if got, want := segmentBytes(t, b.Addr()), strconv.Itoa(broker.MemorySegmentBytes); got != want {
		t.Fatalf("log.segment.bytes = %q, want %q", got, want)
	}
	const n, size = 48, 64 << 10 // 3 MiB: three segments and more
	var recs []*kgo.Record
	for i := range n {
		v := make([]byte, size)
		copy(v, strconv.Itoa(i))
		recs = append(recs, &kgo.Record{Topic: "seg", Partition: 0, Value: v})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	read := brokertest.ConsumeAll(t, b.Addr(), "seg", n)
	if len(read) != n {
		t.Fatalf("read %d records, want %d", len(read), n)
	}
	for i, r := range read {
		if r.Offset != int64(i) || len(r.Value) != size || !strings.HasPrefix(string(r.Value), strconv.Itoa(i)+"\x00") {
			t.Fatalf("record %d: offset %d, %d bytes, starts %q", i, r.Offset, len(r.Value), r.Value[:4])
		}
	}

	custom := brokertest.StartConfig(t, broker.Config{ExtraOpts: []kfake.Opt{kfake.BrokerConfigs(map[string]string{"log.segment.bytes": "2097152"})}})
	if got := segmentBytes(t, custom.Addr()); got != "2097152" {
		t.Fatalf("with ExtraOpts: log.segment.bytes = %q, want 2097152", got)
	}
}
