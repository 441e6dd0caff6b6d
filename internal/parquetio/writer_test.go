package parquetio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// allFields covers every storable kind.
var allFields = []batch.Field{
	{Name: "id", Type: batch.Long},
	{Name: "flag", Type: batch.Boolean},
	{Name: "i", Type: batch.Int},
	{Name: "d", Type: batch.Double},
	{Name: "s", Type: batch.String},
	{Name: "bin", Type: batch.Binary},
	{Name: "ts", Type: batch.Timestamp},
	{Name: "day", Type: batch.Date},
	{Name: "headers", Type: batch.Headers},
}

// makeBatch builds n rows of allFields; every column has nulls at rows
// where (row+col) % 7 == 3, except id.
func makeBatch(n int) *batch.Batch {
	cols := make([]*batch.Column, len(allFields))
	for c, f := range allFields {
		cols[c] = batch.NewColumn(f.Type, n)
	}
	for r := 0; r < n; r++ {
		for c, col := range cols {
			if c > 0 && (r+c)%7 == 3 {
				col.AppendNull()
				continue
			}
			switch allFields[c].Type {
			case batch.Long:
				col.AppendInt(int64(r))
			case batch.Boolean:
				col.AppendBool(r%2 == 0)
			case batch.Int:
				col.AppendInt(int64(r*3 - 100))
			case batch.Double:
				col.AppendFloat(float64(r) / 4)
			case batch.String:
				col.AppendBytes([]byte(fmt.Sprintf("s-%04d", r%50)))
			case batch.Binary:
				col.AppendBytes([]byte{byte(r), 0, byte(r >> 8)})
			case batch.Timestamp:
				col.AppendInt(1_700_000_000_000_000 + int64(r)*1_000_001)
			case batch.Date:
				col.AppendInt(19000 + int64(r%400))
			case batch.Headers:
				switch r % 3 {
				case 0:
					col.AppendHeaders([]batch.Header{})
				case 1:
					col.AppendHeaders([]batch.Header{{Key: "k", Value: []byte{byte(r)}}})
				default:
					col.AppendHeaders([]batch.Header{{Key: "a", Value: nil}, {Key: "b", Value: []byte("v")}})
				}
			}
		}
	}
	return batch.New(batch.Schema{Fields: allFields}, cols, n)
}

func writeAll(t *testing.T, b *batch.Batch, sel []int32, opts Options) ([]byte, *Writer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, b.Schema.Fields, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(b.Columns, sel, b.N); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w
}

func TestRoundTrip(t *testing.T) {
	b := makeBatch(10_000) // more than two value chunks
	evens := make([]int32, 0, b.N/2)
	for r := b.N - 2; r >= 0; r -= 2 { // descending: order must follow sel
		evens = append(evens, int32(r))
	}
	for _, tc := range []struct {
		name string
		sel  []int32
	}{{"all rows", nil}, {"selection", evens}} {
		t.Run(tc.name, func(t *testing.T) {
			data, w := writeAll(t, b, tc.sel, Options{})
			tab, err := Read(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			want := b.N
			if tc.sel != nil {
				want = len(tc.sel)
			}
			if len(tab.Rows) != want || w.Rows() != int64(want) {
				t.Fatalf("read %d rows, writer says %d, want %d", len(tab.Rows), w.Rows(), want)
			}
			if got, exp := strings.Join(tab.Names, ","), "id,flag,i,d,s,bin,ts,day,headers"; got != exp {
				t.Errorf("column order %s, want %s", got, exp)
			}
			for j, row := range tab.Rows {
				r := j
				if tc.sel != nil {
					r = int(tc.sel[j])
				}
				exp := b.Row(r)
				for c := range exp {
					if hs, ok := exp[c].([]batch.Header); ok {
						exp[c] = normHeaders(hs)
					}
					if !reflect.DeepEqual(row[c], exp[c]) {
						t.Fatalf("row %d col %s: got %#v, want %#v", r, allFields[c].Name, row[c], exp[c])
					}
				}
			}
		})
	}
}

// normHeaders makes nil header values explicit nils (the reader's form).
func normHeaders(hs []batch.Header) []batch.Header {
	out := make([]batch.Header, len(hs))
	for i, h := range hs {
		out[i] = batch.Header{Key: h.Key, Value: h.Value}
		if h.Value == nil {
			out[i].Value = nil
		}
	}
	return out
}

func TestSchemaTypes(t *testing.T) {
	data, _ := writeAll(t, makeBatch(3), nil, Options{})
	tab, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got := LeafTypes(tab.Schema)
	want := map[string]string{
		"id":                         "INT64 INT(64,true)",
		"flag":                       "BOOLEAN",
		"i":                          "INT32 INT(32,true)",
		"d":                          "DOUBLE",
		"s":                          "BYTE_ARRAY STRING",
		"bin":                        "BYTE_ARRAY",
		"ts":                         "INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"day":                        "INT32 DATE",
		"headers.list.element.key":   "BYTE_ARRAY STRING",
		"headers.list.element.value": "BYTE_ARRAY",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("leaf types:\n got %v\nwant %v", got, want)
	}
	for _, f := range tab.Schema.Fields() {
		if !f.Optional() {
			t.Errorf("column %s is not optional", f.Name())
		}
	}
}

func TestNullKindRefused(t *testing.T) {
	_, err := NewWriter(&bytes.Buffer{}, []batch.Field{{Name: "x", Type: batch.Null}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("err = %v, want an error naming column x", err)
	}
}

func TestRowGroupBound(t *testing.T) {
	b := makeBatch(20_000)
	for _, tc := range []struct {
		bound   int64
		minRG   int
		maxRG   int
		comment string
	}{
		{0, 1, 1, "default 64 MiB holds everything"},
		{64 << 10, 4, 1000, "64 KiB splits into several"},
	} {
		data, _ := writeAll(t, b, nil, Options{RowGroupBytes: tc.bound})
		tab, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if tab.RowGroups < tc.minRG || tab.RowGroups > tc.maxRG || len(tab.Rows) != b.N {
			t.Errorf("%s: %d row groups, %d rows; want %d..%d groups, %d rows", tc.comment, tab.RowGroups, len(tab.Rows), tc.minRG, tc.maxRG, b.N)
		}
	}
}

func TestStats(t *testing.T) {
	fields := []batch.Field{{Name: "l", Type: batch.Long}, {Name: "d", Type: batch.Double}, {Name: "s", Type: batch.String}, {Name: "b", Type: batch.Boolean}}
	l := batch.NewColumn(batch.Long, 4)
	d := batch.NewColumn(batch.Double, 4)
	s := batch.NewColumn(batch.String, 4)
	bo := batch.NewColumn(batch.Boolean, 4)
	for _, v := range []int64{5, -3, 9} {
		l.AppendInt(v)
	}
	l.AppendNull()
	for _, v := range []float64{1.5, math.NaN(), -2} {
		d.AppendFloat(v)
	}
	d.AppendNull()
	s.AppendNull()
	for _, v := range []string{"m", "a", "z"} {
		s.AppendBytes([]byte(v))
	}
	for range 2 {
		bo.AppendNull()
		bo.AppendBool(true)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, fields, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]*batch.Column{l, d, s, bo}, nil, 4); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st[0].NullCount != 1 || !st[0].HasMinMax || st[0].MinInt != -3 || st[0].MaxInt != 9 {
		t.Errorf("long stats %+v", st[0])
	}
	if st[1].NullCount != 1 || !st[1].NaN || st[1].MinFloat != -2 || st[1].MaxFloat != 1.5 {
		t.Errorf("double stats %+v", st[1])
	}
	if st[2].NullCount != 1 || string(st[2].MinBytes) != "a" || string(st[2].MaxBytes) != "z" {
		t.Errorf("string stats %+v", st[2])
	}
	if st[3].NullCount != 2 || st[3].HasMinMax {
		t.Errorf("boolean stats %+v", st[3])
	}
}

func TestSparkSchemaJSON(t *testing.T) {
	got, err := SparkSchemaJSON([]batch.Field{{Name: "a", Type: batch.Int}, {Name: "h", Type: batch.Headers, Nullable: true}}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"struct","fields":[{"name":"a","type":"integer","nullable":false,"metadata":{}},` +
		`{"name":"h","type":{"type":"array","elementType":{"type":"struct","fields":[` +
		`{"name":"key","type":"string","nullable":true,"metadata":{}},{"name":"value","type":"binary","nullable":true,"metadata":{}}]},` +
		`"containsNull":true},"nullable":true,"metadata":{}}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("invalid JSON")
	}
}

func TestCodec(t *testing.T) {
	for _, tc := range []struct{ name, infix string }{
		{"snappy", ".snappy"}, {"ZSTD", ".zstd"}, {"gzip", ".gz"}, {"none", ""}, {"uncompressed", ""},
	} {
		c, infix, err := Codec(tc.name)
		if err != nil || infix != tc.infix || c == nil {
			t.Errorf("Codec(%q) = %v, %q, %v", tc.name, c, infix, err)
			continue
		}
		b := makeBatch(100)
		data, _ := writeAll(t, b, nil, Options{Codec: c})
		tab, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil || len(tab.Rows) != 100 {
			t.Errorf("%s: read back %v rows, err %v", tc.name, len(tab.Rows), err)
		}
	}
	if _, _, err := Codec("lzo"); err == nil || !strings.Contains(err.Error(), "snappy") {
		t.Errorf("Codec(lzo) err = %v, want the allowed list", err)
	}
}

// TestWriteAllocs checks that writing allocates per chunk, not per row.
func TestWriteAllocs(t *testing.T) {
	fields := allFields[:8] // flat columns
	small, big := makeBatch(1000), makeBatch(4000)
	measure := func(b *batch.Batch) float64 {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, fields, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cols := b.Columns[:8]
		if err := w.Write(cols, nil, b.N); err != nil { // warm up buffers
			t.Fatal(err)
		}
		return testing.AllocsPerRun(5, func() {
			if err := w.Write(cols, nil, b.N); err != nil {
				t.Fatal(err)
			}
		})
	}
	a1, a4 := measure(small), measure(big)
	// Pages and chunks allocate a little; rows must not.
	if a4 > float64(big.N)/20 || a1 > float64(small.N)/20 {
		t.Errorf("too many allocations: %.0f for 1000 rows, %.0f for 4000", a1, a4)
	}
	t.Logf("allocs per Write: %.0f (1000 rows), %.0f (4000 rows)", a1, a4)
}
