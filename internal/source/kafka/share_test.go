package kafka

import (
	"log/slog"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestToBatchReferencesRecordBytes: the key, value and header value cells of a
// batch are the fetched records' own slices — no copy (franz-go makes header
// keys strings) — so a batch holds
// the fetch buffer, not a second copy of it (see "Ownership and lifetime
// of record memory" in reader.go).
func TestToBatchReferencesRecordBytes(t *testing.T) {
	s, err := New(map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1", "subscribe": "t", "includeHeaders": "true"},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// One buffer, as franz-go decodes a fetch response: every key, value
	// and header is a sub-slice of it.
	buf := []byte("k0v0-hk0hv0k1v1-hk1hv1")
	recs := []*kgo.Record{
		{Topic: "t", Key: buf[0:2], Value: buf[2:5], Headers: []kgo.RecordHeader{{Key: "hk0", Value: buf[8:11]}}, Timestamp: time.UnixMilli(1), Offset: 7},
		{Topic: "t", Key: buf[11:13], Value: buf[13:16], Headers: []kgo.RecordHeader{{Key: "hk1", Value: buf[19:22]}}, Timestamp: time.UnixMilli(2), Offset: 8},
		{Topic: "t", Value: nil, Timestamp: time.UnixMilli(3), Offset: 9}, // a tombstone without key
	}
	r := &reader{s: s}
	b := r.toBatch([]byte("t"), 0, recs, nil)
	same := func(what string, got, want []byte) {
		t.Helper()
		if len(got) != len(want) || (len(want) > 0 && unsafe.SliceData(got) != unsafe.SliceData(want)) {
			t.Errorf("%s: %q at %p, want the record's own %q at %p", what, got, unsafe.SliceData(got), want, unsafe.SliceData(want))
		}
	}
	for i, rec := range recs[:2] {
		same("key", b.Columns[0].Bytes[i], rec.Key)
		same("value", b.Columns[1].Bytes[i], rec.Value)
		hs := b.Columns[7]
		child := hs.Children[0] // the headers array's struct elements
		lo := hs.Offsets[i]
		if got := string(child.Children[0].Bytes[lo]); got != rec.Headers[0].Key {
			t.Errorf("header key %q, want %q", got, rec.Headers[0].Key)
		}
		same("header value", child.Children[1].Bytes[lo], rec.Headers[0].Value)
	}
	if !b.Columns[0].IsNull(2) || !b.Columns[1].IsNull(2) || b.Columns[4].Ints[2] != 9 {
		t.Errorf("tombstone row: key null %v, value null %v, offset %d", b.Columns[0].IsNull(2), b.Columns[1].IsNull(2), b.Columns[4].Ints[2])
	}
}
