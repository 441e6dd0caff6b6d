package loadgen

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// shapeCases are the shapes the byte tests cover, with the SHA-256 of
// their first records (recordsDigest) as the shapes made them before they
// could append: a change to a shape's bytes or draws shows here.
var shapeCases = []struct {
	shape  string
	size   int
	digest string
}{
	{ShapeOrders, 0, "43b20b868d5652ac5d21f08c28ded54494701aee19ce4ca53eb89b5ab4d11b49"},
	{ShapeOrders, 300, "a4955fe0b1e793876df952ecb9164eb87e8a066a47ed4bd42b04160cc73b3ac1"},
	{ShapeIoT, 0, "3303cf1e25c1d0e351ec5439d853ff79f4036598d5e2f5616c81e8401eb5a924"},
	{ShapeIoT, 200, "0e2e7721aa4d9cce69237d67eede1d8e2785c27aae8880c2a14fab8beb35b8bc"},
	{ShapeRandom, 77, "c06fe37b07f78802b943e2c8ca774b3c11a50336e75c8a23946fc06f835fe852"},
}

// shapeInputs calls fn with the time and key of record i of 3,000: times
// that repeat for a few records (as within a producer tick), step by
// sub-millisecond amounts, and keys of 1 to 5 digits.
func shapeInputs(fn func(now time.Time, key int)) {
	now := time.Date(2026, 11, 25, 13, 0, 0, 999_700_000, time.UTC)
	for i := range 3000 {
		if i%7 == 0 {
			now = now.Add(333 * time.Microsecond)
		}
		key := i * 37 % 1000
		if i%101 == 0 {
			key = 12345
		}
		fn(now, key)
	}
}

func recordsDigest(t *testing.T, shape string, size int) string {
	s, err := NewShape(shape, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	shapeInputs(func(now time.Time, key int) {
		k, v := s.Record(now, key)
		h.Write(k)
		h.Write([]byte{'\t'})
		h.Write(v)
		h.Write([]byte{'\n'})
	})
	return hex.EncodeToString(h.Sum(nil))
}

func TestShapeBytesUnchanged(t *testing.T) {
	for _, tc := range shapeCases {
		if got := recordsDigest(t, tc.shape, tc.size); got != tc.digest {
			t.Errorf("%s/%d: records digest %s, want %s", tc.shape, tc.size, got, tc.digest)
		}
	}
}

// TestAppendRecordIsRecord: records appended one after another to a
// shared buffer are the records Record returns, for the same seed.
func TestAppendRecordIsRecord(t *testing.T) {
	for _, tc := range shapeCases {
		a, _ := NewShape(tc.shape, tc.size, 1)
		b, _ := NewShape(tc.shape, tc.size, 1)
		var buf []byte
		i := 0
		shapeInputs(func(now time.Time, key int) {
			start := len(buf)
			var kl int
			buf, kl = b.AppendRecord(buf, now, key)
			k, v := a.Record(now, key)
			if got := buf[start:]; string(got[:kl]) != string(k) || string(got[kl:]) != string(v) {
				t.Fatalf("%s/%d record %d: appended %q|%q, Record %q|%q", tc.shape, tc.size, i, got[:kl], got[kl:], k, v)
			}
			i++
		})
	}
}

// TestAppendRecordAllocates: appending to a buffer with room allocates
// nothing, so a producer pays one allocation per tick, not several per
// record.
func TestAppendRecordAllocates(t *testing.T) {
	for _, tc := range shapeCases {
		s, _ := NewShape(tc.shape, tc.size, 1)
		buf := make([]byte, 0, 1<<20)
		now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
		s.AppendRecord(buf, now, 1) // first use: price and time texts
		if n := testing.AllocsPerRun(100, func() { s.AppendRecord(buf[:0], now, 42) }); n != 0 {
			t.Errorf("%s/%d: %.1f allocations per appended record, want 0", tc.shape, tc.size, n)
		}
	}
}
