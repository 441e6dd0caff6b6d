package broker_test

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// Interop tests: kcat (librdkafka) against the embedded broker. They skip
// when kcat is missing unless SLUICE_REQUIRE_INTEROP=1.

func TestKcatListsTopics(t *testing.T) {
	brokertest.KcatPath(t)
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 4}, broker.TopicSpec{Name: "payments", Partitions: 1})
	out := brokertest.RunKcat(t, "", "-L", "-J", "-b", b.Addr(), "-m", "10")
	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string            `json:"topic"`
			Partitions []json.RawMessage `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("parse kcat -L -J output: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != b.Addr() {
		t.Errorf("kcat sees brokers %+v, want exactly one at %s", md.Brokers, b.Addr())
	}
	got := make(map[string]int)
	for _, tp := range md.Topics {
		got[tp.Topic] = len(tp.Partitions)
	}
	want := map[string]int{"orders": 4, "payments": 1}
	if len(got) != len(want) || got["orders"] != 4 || got["payments"] != 1 {
		t.Fatalf("kcat lists topics %v, want %v", got, want)
	}
}

// wantRecord is what a kgo consumer must see for one kcat-produced record.
type wantRecord struct {
	partition int32
	key       *string // nil = NULL key
	value     *string // nil = NULL value (tombstone)
	headers   []kgo.RecordHeader
}

func ptr(s string) *string { return &s }

func TestKcatProducesKgoConsumes(t *testing.T) {
	brokertest.KcatPath(t)
	const partitions = 3
	codecs := []struct {
		name  string
		codec uint8 // kgo Attrs.CompressionType
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}
	var specs []broker.TopicSpec
	for _, c := range codecs {
		specs = append(specs, broker.TopicSpec{Name: "kcat-" + c.name, Partitions: partitions})
	}
	b := brokertest.Start(t, specs...)

	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "kcat-" + c.name
			var want []wantRecord
			// Values repeat text so that every codec actually shrinks the
			// batch (librdkafka sends a batch uncompressed when compressing
			// does not help).
			long := func(i int) string { return strings.Repeat(fmt.Sprintf("value-%d-", i), 20) }

			// 1. Keyed records with librdkafka's default partitioner
			// (consistent_random: CRC32 of the key modulo partitions).
			var keyed []string
			for i := range 12 {
				k, v := fmt.Sprintf("cust-%d", i), long(i)
				keyed = append(keyed, k+":"+v)
				want = append(want, wantRecord{
					partition: int32(crc32.ChecksumIEEE([]byte(k)) % partitions),
					key:       ptr(k), value: ptr(v),
				})
			}
			// A long linger keeps each produce call's records of a
			// partition in one batch: on a loaded machine librdkafka's
			// default 5 ms can send a lone record (a tombstone does not
			// shrink, so it goes uncompressed).
			args := []string{"-K:", "-X", "linger.ms=1000"}
			if c.name != "none" {
				args = append(args, "-z", c.name)
			}
			brokertest.ProduceWithKcat(t, b.Addr(), topic, keyed, args...)

			// 2. NULL keys and NULL values (-Z), with headers, into
			// partition 1; an empty header value and a header without
			// a value (NULL) included.
			hdrs := []kgo.RecordHeader{
				{Key: "source", Value: []byte("kcat")},
				{Key: "codec", Value: []byte(c.name)},
				{Key: "empty", Value: []byte{}},
				{Key: "null"},
			}
			nulls := []string{":" + long(100), "tomb:", ":" + long(101)}
			want = append(want,
				wantRecord{partition: 1, key: nil, value: ptr(long(100)), headers: hdrs},
				wantRecord{partition: 1, key: ptr("tomb"), value: nil, headers: hdrs},
				wantRecord{partition: 1, key: nil, value: ptr(long(101)), headers: hdrs},
			)
			args = []string{"-K:", "-X", "linger.ms=1000", "-Z", "-p", "1", "-H", "source=kcat", "-H", "codec=" + c.name, "-H", "empty=", "-H", "null"}
			if c.name != "none" {
				args = append(args, "-z", c.name)
			}
			brokertest.ProduceWithKcat(t, b.Addr(), topic, nulls, args...)

			got := brokertest.ConsumeAll(t, b.Addr(), topic, len(want))
			// Match records by (partition, offset order): group wants
			// and gots per partition, in production order.
			wantBy := make(map[int32][]wantRecord)
			for _, w := range want {
				wantBy[w.partition] = append(wantBy[w.partition], w)
			}
			gotBy := make(map[int32][]*kgo.Record)
			for _, r := range got {
				gotBy[r.Partition] = append(gotBy[r.Partition], r)
			}
			for p := int32(0); p < partitions; p++ {
				ws, gs := wantBy[p], gotBy[p]
				if len(ws) != len(gs) {
					t.Errorf("partition %d: got %d records, want %d", p, len(gs), len(ws))
					continue
				}
				for i, w := range ws {
					checkRecord(t, gs[i], w, int64(i), c.codec)
				}
			}
		})
	}
}

func checkRecord(t *testing.T, r *kgo.Record, w wantRecord, offset int64, codec uint8) {
	t.Helper()
	where := fmt.Sprintf("partition %d offset %d", r.Partition, r.Offset)
	if r.Offset != offset {
		t.Errorf("%s: offset %d, want %d", where, r.Offset, offset)
	}
	if !bytesEqualNullable(r.Key, w.key) {
		t.Errorf("%s: key %s, want %s", where, showBytes(r.Key), showStr(w.key))
	}
	if !bytesEqualNullable(r.Value, w.value) {
		t.Errorf("%s: value %s, want %s", where, showBytes(r.Value), showStr(w.value))
	}
	if len(r.Headers) != len(w.headers) {
		t.Errorf("%s: headers %v, want %v", where, r.Headers, w.headers)
	} else {
		for i, h := range w.headers {
			g := r.Headers[i]
			if g.Key != h.Key || string(g.Value) != string(h.Value) || (g.Value == nil) != (h.Value == nil) {
				t.Errorf("%s: header %d = %q:%s, want %q:%s", where, i, g.Key, showBytes(g.Value), h.Key, showBytes(h.Value))
			}
		}
	}
	if got := r.Attrs.CompressionType(); got != codec {
		t.Errorf("%s: batch compression type %d, want %d", where, got, codec)
	}
}

func bytesEqualNullable(b []byte, s *string) bool {
	if s == nil {
		return b == nil
	}
	return b != nil && string(b) == *s
}

func showBytes(b []byte) string {
	if b == nil {
		return "NULL"
	}
	return strconv.Quote(string(b))
}

func showStr(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

func TestKgoProducesKcatConsumes(t *testing.T) {
	brokertest.KcatPath(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	var specs []broker.TopicSpec
	for _, c := range codecs {
		specs = append(specs, broker.TopicSpec{Name: "kgo-" + c.name, Partitions: 3})
	}
	b := brokertest.Start(t, specs...)

	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "kgo-" + c.name
			cl := brokertest.Client(t, b.Addr(),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(c.codec))
			// Expected kcat lines: partition|offset|keylen|key|valuelen|value|headers.
			var want []string
			var recs []*kgo.Record
			offsets := make(map[int32]int64)
			for i := range 15 {
				p := int32(i % 3)
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(strings.Repeat(fmt.Sprintf("v%d.", i), 10))}
				keyLen, key := "-1", ""
				if i%5 != 0 { // every fifth record has a NULL key
					r.Key = []byte(fmt.Sprintf("k%d", i))
					keyLen, key = strconv.Itoa(len(r.Key)), string(r.Key)
				}
				hdr := ""
				if i%2 == 0 {
					r.Headers = []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}}
					hdr = "n=" + strconv.Itoa(i)
				}
				recs = append(recs, r)
				want = append(want, fmt.Sprintf("%d|%d|%s|%s|%d|%s|%s", p, offsets[p], keyLen, key, len(r.Value), r.Value, hdr))
				offsets[p]++
			}
			if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			out := brokertest.ConsumeWithKcat(t, b.Addr(), topic, `%p|%o|%K|%k|%S|%s|%h\n`)
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			slices.Sort(got) // kcat interleaves partitions
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("kcat read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestKcatCompressionNeedsCompat pins why brokertest turns on
// LibrdkafkaCompat: without it librdkafka decides from kfake's ApiVersions
// that the broker lacks gzip and sends the batch uncompressed.
func TestKcatCompressionNeedsCompat(t *testing.T) {
	brokertest.KcatPath(t)
	for _, tc := range []struct {
		compat bool
		want   uint8
	}{{false, 0}, {true, 1}} {
		t.Run(strconv.FormatBool(tc.compat), func(t *testing.T) {
			b := brokertest.StartConfig(t, broker.Config{
				Topics:           []broker.TopicSpec{{Name: "z", Partitions: 1}},
				LibrdkafkaCompat: tc.compat,
			})
			brokertest.ProduceWithKcat(t, b.Addr(), "z", []string{strings.Repeat("compressible ", 50)}, "-z", "gzip")
			if got := brokertest.ConsumeAll(t, b.Addr(), "z", 1)[0].Attrs.CompressionType(); got != tc.want {
				t.Fatalf("compat %v: compression type %d, want %d", tc.compat, got, tc.want)
			}
		})
	}
}
