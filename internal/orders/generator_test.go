package orders

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var t0 = time.Date(2026, 11, 25, 13, 0, 0, 123_456_789, time.UTC)

func TestAppendJSONExample(t *testing.T) {
	o := Order{
		OrderID: "o-000123", CustomerID: "c-0042", SKU: "SKU-17", Quantity: 3,
		Price: 19.99, Currency: "EUR", TS: time.Date(2026, 11, 25, 14, 0, 0, 123_000_000, time.FixedZone("CET", 3600)),
	}
	want := `{"order_id":"o-000123","customer_id":"c-0042","sku":"SKU-17","quantity":3,"price":19.99,"currency":"EUR","ts":"2026-11-25T13:00:00.123Z"}`
	if got := string(o.AppendJSON([]byte("prefix:"))); got != "prefix:"+want {
		t.Fatalf("AppendJSON =\n%s\nwant\n%s", got, "prefix:"+want)
	}
	// encoding/json reads it back to the same order (in UTC).
	var back Order
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatal(err)
	}
	if !back.TS.Equal(o.TS) || back.OrderID != o.OrderID || back.Price != o.Price || back.Quantity != o.Quantity {
		t.Fatalf("round trip = %+v, want %+v", back, o)
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	a, b, c := NewGenerator(7), NewGenerator(7), NewGenerator(8)
	differ := 0
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		ka, va := a.Next(now)
		kb, vb := b.Next(now)
		_, vc := c.Next(now)
		if !bytes.Equal(ka, kb) || !bytes.Equal(va, vb) {
			t.Fatalf("record %d differs for the same seed:\n%s %s\n%s %s", i, ka, va, kb, vb)
		}
		if !bytes.Equal(va, vc) {
			differ++
		}
	}
	if differ < 900 {
		t.Fatalf("seeds 7 and 8 gave %d different records out of 1000, want nearly all", differ)
	}
}

var (
	orderIDRe  = regexp.MustCompile(`^o-\d{6,}$`)
	customerRe = regexp.MustCompile(`^c-\d{4}$`)
	skuRe      = regexp.MustCompile(`^SKU-([1-9]|[1-4]\d|50)$`)
)

func TestGeneratorValidJSON(t *testing.T) {
	const n = 10000
	g := NewGenerator(42)
	prices := make(map[string]float64)
	skuCount := make(map[string]int)
	customers := make(map[string]bool)
	currencies := make(map[string]int)
	for i := range n {
		now := t0.Add(time.Duration(i) * time.Second)
		key, value := g.Next(now)
		dec := json.NewDecoder(bytes.NewReader(value))
		dec.DisallowUnknownFields()
		var o Order
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("record %d is not a valid order: %v\n%s", i, err, value)
		}
		var fields map[string]any
		if err := json.Unmarshal(value, &fields); err != nil || len(fields) != 7 {
			t.Fatalf("record %d: %d fields (%v), want 7", i, len(fields), err)
		}
		if want := fmt.Sprintf("o-%06d", i+1); o.OrderID != want {
			t.Fatalf("record %d: order_id %q, want %q", i, o.OrderID, want)
		}
		if string(key) != o.CustomerID || !customerRe.MatchString(o.CustomerID) {
			t.Fatalf("record %d: key %q, customer_id %q", i, key, o.CustomerID)
		}
		if !skuRe.MatchString(o.SKU) || o.Quantity < 1 || o.Quantity > MaxQuantity || o.Price < 1.99 || o.Price > 99.98 {
			t.Fatalf("record %d out of range: %s", i, value)
		}
		if p, ok := prices[o.SKU]; ok && p != o.Price {
			t.Fatalf("%s priced %v and %v", o.SKU, p, o.Price)
		}
		if !o.TS.Equal(now.Truncate(time.Millisecond)) {
			t.Fatalf("record %d: ts %v, want %v", i, o.TS, now.Truncate(time.Millisecond))
		}
		if !strings.HasSuffix(string(value), `"ts":"`+now.Format(TimeLayout)+`"}`) {
			t.Fatalf("record %d: ts not formatted as %s: %s", i, TimeLayout, value)
		}
		prices[o.SKU] = o.Price
		skuCount[o.SKU]++
		customers[o.CustomerID] = true
		currencies[o.Currency]++
	}
	if len(customers) < NumCustomers*9/10 {
		t.Errorf("%d distinct customers in %d orders, want keys spread over most of %d", len(customers), n, NumCustomers)
	}
	if len(skuCount) < NumSKUs/2 {
		t.Errorf("%d distinct SKUs, want at least %d", len(skuCount), NumSKUs/2)
	}
	for sku, c := range skuCount {
		if c > skuCount["SKU-1"] {
			t.Errorf("%s ordered %d times, more than SKU-1 (%d): SKU popularity should fall with the number", sku, c, skuCount["SKU-1"])
		}
	}
	for i, cur := range Currencies {
		share := float64(currencies[cur]) / n
		want := float64(currencyWeights[i]) / 10
		if share < want-0.03 || share > want+0.03 {
			t.Errorf("currency %s share %.3f, want %.2f±0.03", cur, share, want)
		}
	}
	if len(currencies) != len(Currencies) {
		t.Errorf("currencies %v, want only %v", currencies, Currencies)
	}
}

// TestGeneratorGolden pins the sequence of a seed, so that benchmark data does
// not change silently. Run with -update to rewrite it after a deliberate
// change.
func TestGeneratorGolden(t *testing.T) {
	g := NewGenerator(42)
	var buf bytes.Buffer
	for i := range 8 {
		key, value := g.Next(t0.Add(time.Duration(i) * 250 * time.Millisecond))
		fmt.Fprintf(&buf, "%s\t%s\n", key, value)
	}
	path := filepath.Join("testdata", "seed42.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("seed 42 sequence changed:\n%s\nwant:\n%s", buf.Bytes(), want)
	}
}

func TestZeroPad(t *testing.T) {
	for _, tc := range []struct {
		n     int64
		width int
		want  string
	}{
		{0, 4, "0000"}, {42, 4, "0042"}, {9999, 4, "9999"}, {12345, 4, "12345"}, {123, 6, "000123"}, {7, 1, "7"},
	} {
		if got := zeroPad(tc.n, tc.width); got != tc.want {
			t.Errorf("zeroPad(%d, %d) = %q, want %q", tc.n, tc.width, got, tc.want)
		}
	}
}

func TestPadJSON(t *testing.T) {
	obj := `{"a":1}`
	for _, tc := range []struct {
		in   string
		size int
		want string
	}{
		{obj, 16, `{"a":1,"pad":""}`},
		{obj, 20, `{"a":1,"pad":"xxxx"}`},
		{obj, 15, obj}, // no room for the field
		{obj, 0, obj},
		{`[1]`, 40, `[1]`}, // not an object
		{``, 40, ``},
	} {
		got := string(padJSON([]byte(tc.in), tc.size))
		if got != tc.want {
			t.Errorf("padJSON(%q, %d) = %q, want %q", tc.in, tc.size, got, tc.want)
		}
	}
	long := padJSON([]byte(obj), 5000)
	if len(long) != 5000 || !json.Valid(long) {
		t.Fatalf("padJSON to 5000: len %d, valid %v", len(long), json.Valid(long))
	}
}

func FuzzPadJSON(f *testing.F) {
	f.Add(int64(1), 200)
	f.Add(int64(99), 0)
	f.Add(int64(-5), 3000)
	f.Fuzz(func(t *testing.T, seed int64, size int) {
		size %= 1 << 16
		v := NewGenerator(seed).NextOrder(t0).AppendJSON(nil)
		orig := len(v)
		out := padJSON(v, size)
		if !json.Valid(out) {
			t.Fatalf("padJSON(%d) gave invalid JSON: %s", size, out)
		}
		switch {
		case size >= orig+padOverhead && len(out) != size:
			t.Fatalf("padJSON to %d from %d gave %d bytes", size, orig, len(out))
		case size < orig+padOverhead && len(out) != orig:
			t.Fatalf("padJSON to %d changed a %d-byte object without room", size, orig)
		}
	})
}

// TestAppendNextJSON: the appending form writes what NextOrder and
// AppendJSON write, with the drawn or the given customer, and leaves the
// generator where NextOrder would.
func TestAppendNextJSON(t *testing.T) {
	a, b := NewGenerator(3), NewGenerator(3)
	var buf []byte
	for i := range 5000 {
		now := t0.Add(time.Duration(i/5) * 300 * time.Microsecond) // five orders per instant
		customer := -1
		if i%3 == 0 {
			customer = i % 1200 // the given id, 3 or 4 digits
		}
		o := a.NextOrder(now)
		if customer >= 0 {
			o.CustomerID = "c-" + zeroPad(int64(customer), 4)
		}
		want := o.AppendJSON(nil)
		start := len(buf)
		buf = b.AppendNextJSON(buf, now, customer)
		if got := buf[start:]; !bytes.Equal(got, want) {
			t.Fatalf("order %d: AppendNextJSON\n%s\nNextOrder + AppendJSON\n%s", i, got, want)
		}
	}
}
