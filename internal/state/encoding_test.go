package state

import (
	"bufio"
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// sparkCompare orders two cells as Spark sorts ascending with nulls first:
// NaN above everything, -0.0 equal to 0.0, strings and binary bytewise.
func sparkCompare(k batch.Kind, a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch k {
	case batch.Boolean:
		x, y := a.(bool), b.(bool)
		if x == y {
			return 0
		}
		if !x {
			return -1
		}
		return 1
	case batch.Int, batch.Date, batch.Long, batch.Timestamp:
		return cmp.Compare(a.(int64), b.(int64))
	case batch.Double:
		x, y := a.(float64), b.(float64)
		switch {
		case math.IsNaN(x) && math.IsNaN(y):
			return 0
		case math.IsNaN(x):
			return 1
		case math.IsNaN(y):
			return -1
		}
		return cmp.Compare(x, y)
	case batch.String:
		return cmp.Compare(a.(string), b.(string))
	case batch.Binary:
		return bytes.Compare(a.([]byte), b.([]byte))
	}
	panic(k)
}

var keyKinds = []batch.Kind{batch.Boolean, batch.Int, batch.Long, batch.Double, batch.String, batch.Binary, batch.Timestamp, batch.Date}

func randomCell(r *rand.Rand, k batch.Kind) any {
	if r.IntN(8) == 0 {
		return nil
	}
	switch k {
	case batch.Boolean:
		return r.IntN(2) == 1
	case batch.Int, batch.Date:
		return []int64{math.MinInt32, -1, 0, 1, math.MaxInt32, int64(int32(r.Uint32()))}[r.IntN(6)]
	case batch.Long, batch.Timestamp:
		return []int64{math.MinInt64, -1, 0, 1, math.MaxInt64, int64(r.Uint64())}[r.IntN(6)]
	case batch.Double:
		return []float64{math.Inf(-1), -1.5, math.Copysign(0, -1), 0, 2.25, math.Inf(1), math.NaN(), r.NormFloat64() * 1e10, -math.MaxFloat64, math.SmallestNonzeroFloat64}[r.IntN(10)]
	case batch.String, batch.Binary:
		n := r.IntN(5)
		b := make([]byte, n)
		for i := range b {
			b[i] = []byte{0, 1, 'a', 'b', 0xFF}[r.IntN(5)]
		}
		if k == batch.String {
			return string(b)
		}
		return b
	}
	panic(k)
}

// TestKeyEncodingOrder: for random two-column keys of every type pair,
// bytes.Compare of the encodings agrees with Spark's ordering, and the keys
// decode back.
func TestKeyEncodingOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k1 := range keyKinds {
		for _, k2 := range keyKinds {
			kinds := []batch.Kind{k1, k2}
			type row struct {
				vals []any
				enc  []byte
			}
			var rows []row
			for range 200 {
				vals := []any{randomCell(r, k1), randomCell(r, k2)}
				var enc []byte
				for i, v := range vals {
					var err error
					if enc, err = AppendKeyValue(enc, kinds[i], v); err != nil {
						t.Fatal(err)
					}
				}
				rows = append(rows, row{vals, enc})
			}
			for i := range rows {
				for j := range rows {
					want := sparkCompare(k1, rows[i].vals[0], rows[j].vals[0])
					if want == 0 {
						want = sparkCompare(k2, rows[i].vals[1], rows[j].vals[1])
					}
					if got := bytes.Compare(rows[i].enc, rows[j].enc); got != want {
						t.Fatalf("%v/%v: %#v vs %#v: encoded compare %d, Spark %d", k1, k2, rows[i].vals, rows[j].vals, got, want)
					}
				}
				dec, err := DecodeKey(rows[i].enc, kinds)
				if err != nil {
					t.Fatal(err)
				}
				for c, v := range dec {
					if sparkCompare(kinds[c], v, rows[i].vals[c]) != 0 {
						t.Fatalf("%v: decoded %#v from %#v", kinds[c], v, rows[i].vals[c])
					}
				}
			}
		}
	}
}

func TestKeyAndValueEncodingFromColumns(t *testing.T) {
	cols := []*batch.Column{
		batch.NewColumn(batch.Timestamp, 3), batch.NewColumn(batch.String, 3),
		batch.NewColumn(batch.Double, 3), batch.NewColumn(batch.Boolean, 3), batch.NewColumn(batch.Date, 3),
	}
	cols[0].AppendInt(3_000_000)
	cols[0].AppendInt(-5)
	cols[0].AppendNull()
	cols[1].AppendBytes([]byte("dev-1"))
	cols[1].AppendNull()
	cols[1].AppendBytes([]byte("a\x00b"))
	cols[2].AppendFloat(1.5)
	cols[2].AppendFloat(math.NaN())
	cols[2].AppendNull()
	cols[3].AppendBool(true)
	cols[3].AppendNull()
	cols[3].AppendBool(false)
	cols[4].AppendInt(19000)
	cols[4].AppendInt(-1)
	cols[4].AppendNull()
	kinds := []batch.Kind{batch.Timestamp, batch.String, batch.Double, batch.Boolean, batch.Date}
	for row := 0; row < 3; row++ {
		key := EncodeKey(nil, cols, row)
		out := make([]*batch.Column, len(kinds))
		for i, k := range kinds {
			out[i] = batch.NewColumn(k, 1)
		}
		if err := DecodeKeyInto(key, out); err != nil {
			t.Fatal(err)
		}
		val := EncodeValue(nil, cols, row)
		vout := make([]*batch.Column, len(kinds))
		for i, k := range kinds {
			vout[i] = batch.NewColumn(k, 1)
		}
		if err := DecodeValueInto(val, vout); err != nil {
			t.Fatal(err)
		}
		for i := range kinds {
			want := cols[i].Value(row)
			for _, got := range []any{out[i].Value(0), vout[i].Value(0)} {
				if f, ok := want.(float64); ok && math.IsNaN(f) {
					if g, ok := got.(float64); !ok || !math.IsNaN(g) {
						t.Fatalf("row %d col %d: %v want NaN", row, i, got)
					}
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("row %d col %d: got %#v want %#v", row, i, got, want)
				}
			}
		}
		if err := DecodeValueInto(val[:len(val)-1], vout); err == nil && row != 2 {
			t.Fatalf("row %d: truncated value decoded", row)
		}
	}
	// Window-end eviction: keys ordered by the leading timestamp.
	a := EncodeKey(nil, cols[:1], 1) // -5
	b := EncodeKey(nil, cols[:1], 0) // 3e6
	bound := AppendKeyInt64(nil, 0)
	if !(bytes.Compare(a, bound) < 0 && bytes.Compare(b, bound) > 0) {
		t.Fatal("range bound by leading timestamp does not split the keys")
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := map[string][]byte{"a": []byte("b"), "a\xff": []byte("b"), "\xff\xff": nil, "": nil}
	for in, want := range cases {
		if got := PrefixEnd([]byte(in)); !bytes.Equal(got, want) {
			t.Errorf("PrefixEnd(%q) = %q want %q", in, got, want)
		}
	}
}

func writeTestFile(t testing.TB, kind byte, version int64, recs [][2][]byte) []byte {
	var buf bytes.Buffer
	fw, err := newFileWriter(&buf, kind, version, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r[1] == nil {
			fw.remove(r[0])
		} else {
			fw.put(r[0], r[1])
		}
	}
	if err := fw.close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestStateFileRoundTrip(t *testing.T) {
	recs := [][2][]byte{{[]byte("a"), []byte("1")}, {[]byte("b"), nil}, {[]byte(""), []byte("")}, {bytes.Repeat([]byte("k"), 70000), bytes.Repeat([]byte("v"), 300000)}}
	b := writeTestFile(t, kindDelta, 7, recs)
	var got [][2][]byte
	info, err := decodeStateFile(bytes.NewReader(b), int64(len(b)), func(op byte, k, v []byte) error {
		got = append(got, [2][]byte{k, v})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.version != 7 || info.kind != kindDelta || info.records != 4 || len(got) != 4 {
		t.Fatalf("info %+v, %d records", info, len(got))
	}
	for i := range recs {
		if !bytes.Equal(got[i][0], recs[i][0]) || !bytes.Equal(got[i][1], recs[i][1]) || (recs[i][1] == nil) != (got[i][1] == nil) {
			t.Fatalf("record %d differs", i)
		}
	}
	// lz4 actually compresses: the 370 KB of repeated bytes shrink.
	if len(b) > 10000 {
		t.Fatalf("file is %d bytes; payload not compressed", len(b))
	}
	// Every truncation is detected.
	for n := 0; n < len(b); n += 1 + n/8 {
		if _, err := decodeStateFile(bytes.NewReader(b[:n]), int64(n), func(byte, []byte, []byte) error { return nil }); err == nil {
			t.Fatalf("truncated to %d bytes decoded", n)
		}
	}
}

func FuzzStateFile(f *testing.F) {
	f.Add(writeTestFile(f, kindDelta, 1, [][2][]byte{{[]byte("a"), []byte("1")}, {[]byte("b"), nil}}))
	f.Add(writeTestFile(f, kindSnapshot, 3, nil))
	f.Add([]byte("SLST"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var n int
		info, err := decodeStateFile(bytes.NewReader(b), int64(len(b)), func(op byte, k, v []byte) error {
			n++
			return nil
		})
		if err == nil && uint64(n) != info.records {
			t.Fatalf("accepted a file with %d records whose footer says %d", n, info.records)
		}
	})
}

// FuzzRecords exercises the record parser directly, past the checksum.
func FuzzRecords(f *testing.F) {
	f.Add([]byte{opPut, 1, 'a', 1, 'b', opRemove, 1, 'a'}, uint64(8))
	f.Add([]byte{opPut, 0xff, 0xff, 0xff, 0xff, 0x0f}, uint64(1<<40))
	f.Fuzz(func(t *testing.T, b []byte, limit uint64) {
		r := &countingReader{r: bufioReader(b)}
		var total int
		err := decodeRecords(r, limit, func(op byte, k, v []byte) error {
			total += len(k) + len(v)
			return nil
		})
		if err == nil && total > len(b) {
			t.Fatalf("records hold %d bytes from %d input bytes", total, len(b))
		}
	})
}

func TestSchemaFileRoundTrip(t *testing.T) {
	long := make([]batch.Field, 3000) // JSON past one 64 KiB writeUTF chunk
	for i := range long {
		long[i] = batch.Field{Name: "field_with_a_long_name_" + string(rune('a'+i%26)), Type: keyKinds[i%len(keyKinds)], Nullable: i%2 == 0}
	}
	s := Schemas{Key: batch.Schema{Fields: long}, Value: batch.Schema{}}
	key, value, err := decodeSchemaFile(encodeSchemaFile(s))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(key, fieldsOf(s.Key)) || len(value) != 0 {
		t.Fatal("schema file does not round-trip")
	}
	if _, _, err := decodeSchemaFile([]byte{0, 2, 'v', '9'}); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func TestParseConfig(t *testing.T) {
	for name, want := range map[string]ProviderKind{
		"memory": MemoryProvider, "HDFS": MemoryProvider, SparkHDFSProviderClass: MemoryProvider, "HDFSBackedStateStoreProvider": MemoryProvider,
		"disk": DiskProvider, "RocksDB": DiskProvider, "pebble": DiskProvider, SparkRocksDBProviderClass: DiskProvider, "RocksDBStateStoreProvider": DiskProvider,
	} {
		c, err := ParseConfig(map[string]string{OptProviderClass: name})
		if err != nil || c.Provider != want {
			t.Errorf("%s: %v %v", name, c.Provider, err)
		}
		if c.Provider.SparkClass() != map[ProviderKind]string{MemoryProvider: SparkHDFSProviderClass, DiskProvider: SparkRocksDBProviderClass}[want] {
			t.Errorf("%s: SparkClass %s", name, c.Provider.SparkClass())
		}
	}
	c, err := ParseConfig(nil)
	if err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("defaults %+v %v", c, err)
	}
	c, err = ParseConfig(map[string]string{OptMinDeltasForSnapshot: "3", OptMinBatchesToRetain: "7", OptMaxBatchesToRetainInMemory: "0", OptDiskMemory: "64MiB", OptStateSchemaCheck: "false"})
	if err != nil || c.MinDeltasForSnapshot != 3 || c.MinBatchesToRetain != 7 || c.MaxBatchesToRetainInMemory != 0 || c.DiskMemory != 64<<20 || c.SchemaCheck {
		t.Fatalf("%+v %v", c, err)
	}
	for opt, val := range map[string]string{OptProviderClass: "cassandra", OptMinDeltasForSnapshot: "0", OptCompressionCodec: "zstd", OptDiskMemory: "1k", OptStateSchemaCheck: "maybe"} {
		_, err := ParseConfig(map[string]string{opt: val})
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(opt)) || !bytes.Contains([]byte(err.Error()), []byte("allowed")) {
			t.Errorf("%s=%s: %v", opt, val, err)
		}
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
