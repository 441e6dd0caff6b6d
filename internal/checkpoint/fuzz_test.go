package checkpoint

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeOffsets checks that the offsets parser never panics and that
// whatever it accepts re-encodes to a file that parses back to the same
// value and is a fixed point of encode∘decode.
func FuzzDecodeOffsets(f *testing.F) {
	f.Add([]byte("v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1715681700000,\"conf\":{\"a\":\"b\"}}\n{\"orders\":{\"0\":1}}"))
	f.Add([]byte("v1\n\n-\n-"))
	f.Add([]byte("v1\n{}\n"))
	f.Add([]byte("v2\n{}"))
	f.Add([]byte("v1\n{\"conf\":null}\n[1, 2]"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		meta, src, err := decodeOffsets(data)
		if err != nil {
			return
		}
		enc, err := encodeOffsets(meta, src)
		if err != nil {
			t.Fatalf("accepted input does not re-encode: %v", err)
		}
		meta2, src2, err := decodeOffsets(enc)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v\n%q", err, enc)
		}
		if !reflect.DeepEqual(meta, meta2) || len(src) != len(src2) {
			t.Fatalf("round trip changed value: %+v %q -> %+v %q", meta, src, meta2, src2)
		}
		for i := range src {
			var a, b bytes.Buffer
			if (src[i] == "") != (src2[i] == "") {
				t.Fatalf("source %d: %q -> %q", i, src[i], src2[i])
			}
			if src[i] != "" {
				jsonCompact(&a, src[i])
				jsonCompact(&b, src2[i])
				if a.String() != b.String() {
					t.Fatalf("source %d: %q -> %q", i, src[i], src2[i])
				}
			}
		}
		enc2, err := encodeOffsets(meta2, src2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %q vs %q (%v)", enc, enc2, err)
		}
	})
}

func jsonCompact(b *bytes.Buffer, s string) { _ = json.Compact(b, []byte(s)) }

// FuzzDecodeSourceInitial checks that the initial-offsets parser never
// panics and only returns JSON taken from its input.
func FuzzDecodeSourceInitial(f *testing.F) {
	f.Add([]byte("\x00v1\n{\"t\":{\"0\":5}}"))
	f.Add([]byte("{\"t\":{\"0\":5}}"))
	f.Add([]byte("\x00v1"))
	f.Add([]byte("\x00v2\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		js, err := decodeSourceInitial(data)
		if err != nil {
			return
		}
		if !bytes.Contains(data, []byte(js)) || !json.Valid([]byte(js)) {
			t.Fatalf("initial offsets %q not valid JSON from the input", js)
		}
	})
}
