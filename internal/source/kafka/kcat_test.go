package kafka_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// TestQueryReadsKcatProducedRecords produces with librdkafka (kcat) — keys,
// NULL keys, headers, every compression codec — and reads them with a sluice
// query, checking key, value, headers and partition exactly.
func TestQueryReadsKcatProducedRecords(t *testing.T) {
	brokertest.KcatPath(t)
	b := brokertest.Start(t, broker.TopicSpec{Name: "interop", Partitions: 4})
	type want struct {
		key     *string
		value   string
		headers string
	}
	var expected []want
	for p, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		var keyed, nullKeyed []string
		for i := 0; i < 25; i++ {
			k, v := fmt.Sprintf("%s-k%d", codec, i), fmt.Sprintf(`{"codec":%q,"i":%d,"pad":%q}`, codec, i, strings.Repeat("x", i*7))
			keyed = append(keyed, k+"\t"+v)
			expected = append(expected, want{key: &k, value: v, headers: fmt.Sprintf("[codec=%s src=kcat]", codec)})
		}
		for i := 0; i < 5; i++ {
			v := fmt.Sprintf("nullkey-%s-%d", codec, i)
			nullKeyed = append(nullKeyed, "\t"+v)
			expected = append(expected, want{value: v, headers: fmt.Sprintf("[codec=%s src=kcat]", codec)})
		}
		args := []string{"-K\t", "-z", codec, "-p", fmt.Sprint(p), "-H", "codec=" + codec, "-H", "src=kcat"}
		brokertest.ProduceWithKcat(t, b.Addr(), "interop", keyed, args...)
		brokertest.ProduceWithKcat(t, b.Addr(), "interop", nullKeyed, append(args, "-Z")...)
	}
	sink := memory.New()
	_, err := runQuery(t, map[string]string{
		"kafka.bootstrap.servers": b.Addr(), "subscribe": "interop",
		"startingOffsets": "earliest", "includeHeaders": "true",
	}, trigger.Trigger{Kind: trigger.AvailableNow}, t.TempDir(), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]want{}
	partOf := map[string]int64{}
	for _, row := range sink.Rows() {
		w := want{value: string(row[1].([]byte))}
		if row[0] != nil {
			k := string(row[0].([]byte))
			w.key = &k
		}
		var hs []string
		if row[7] != nil {
			for _, h := range batch.HeadersOf(row[7]) {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
		}
		w.headers = fmt.Sprint(hs)
		got[w.value] = w
		partOf[w.value] = row[3].(int64)
	}
	if len(got) != len(expected) || sink.NumRows() != len(expected) {
		t.Fatalf("read %d rows (%d distinct), want %d", sink.NumRows(), len(got), len(expected))
	}
	for i, e := range expected {
		g, ok := got[e.value]
		if !ok {
			t.Fatalf("record %q missing", e.value)
		}
		if (g.key == nil) != (e.key == nil) || (g.key != nil && *g.key != *e.key) {
			t.Errorf("record %q: key %v, want %v", e.value, deref(g.key), deref(e.key))
		}
		if g.headers != e.headers {
			t.Errorf("record %q: headers %s, want %s", e.value, g.headers, e.headers)
		}
		if wantP := int64(i / 30); partOf[e.value] != wantP {
			t.Errorf("record %q in partition %d, want %d", e.value, partOf[e.value], wantP)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}
