// Package orders generates the sample data of the demo and the benchmarks:
// deterministic order events as JSON, keyed by customer, and a bulk loader
// for them (Preload). Producing them at a rate profile is internal/loadgen's
// job (its "orders" shape).
package orders

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Shape of the generated data.
const (
	// NumCustomers is how many distinct customers (and so record keys)
	// the generator uses: c-0000 … c-0999.
	NumCustomers = 1000
	// NumSKUs is how many distinct products there are: SKU-1 … SKU-50.
	// Their popularity follows a Zipf law, SKU-1 being the most ordered.
	NumSKUs = 50
	// MaxQuantity is the largest quantity of one order line (from 1).
	MaxQuantity = 5
)

// Currencies lists the currencies orders are priced in, most common first.
var Currencies = []string{"EUR", "USD", "GBP"}

// currencyWeights are the relative frequencies of Currencies (out of 10).
var currencyWeights = []int{6, 3, 1}

// TimeLayout is the layout of the "ts" field: UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Order is one order event.
type Order struct {
	OrderID    string    `json:"order_id"`    // "o-000123", sequential per generator from 1
	CustomerID string    `json:"customer_id"` // "c-0042", also the record key
	SKU        string    `json:"sku"`         // "SKU-17"
	Quantity   int       `json:"quantity"`    // 1 … MaxQuantity
	Price      float64   `json:"price"`       // unit price with two decimals, fixed per SKU
	Currency   string    `json:"currency"`    // one of Currencies
	TS         time.Time `json:"ts"`          // event time, UTC, millisecond precision
}

// AppendJSON appends the order as one JSON object with the fields in a fixed
// order, e.g.
//
//	{"order_id":"o-000123","customer_id":"c-0042","sku":"SKU-17","quantity":3,"price":19.99,"currency":"EUR","ts":"2026-11-25T13:00:00.123Z"}
//
// The string fields must not need JSON escaping (generated orders never do).
func (o Order) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"order_id":"`...)
	dst = append(dst, o.OrderID...)
	dst = append(dst, `","customer_id":"`...)
	dst = append(dst, o.CustomerID...)
	dst = append(dst, `","sku":"`...)
	dst = append(dst, o.SKU...)
	dst = append(dst, `","quantity":`...)
	dst = strconv.AppendInt(dst, int64(o.Quantity), 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendFloat(dst, o.Price, 'f', 2, 64)
	dst = append(dst, `,"currency":"`...)
	dst = append(dst, o.Currency...)
	dst = append(dst, `","ts":"`...)
	dst = o.TS.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, `"}`...)
	return dst
}

// Generator produces a deterministic sequence of orders from a seed: two
// generators with the same seed, called with the same times, produce the same
// records. A Generator is not safe for concurrent use.
type Generator struct {
	rng    *rand.Rand
	sku    *rand.Zipf
	prices [NumSKUs]int64 // cents
	seq    int64

	// For AppendNextJSON: each SKU's price as AppendJSON writes it (made
	// on first use), and the last timestamp it formatted.
	priceText [NumSKUs][]byte
	tsAt      time.Time
	tsText    []byte
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed int64) *Generator {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6f72646572730a)) // second word: "orders"
	g := &Generator{rng: rng, sku: rand.NewZipf(rng, 1.2, 1, NumSKUs-1)}
	for i := range g.prices {
		g.prices[i] = 199 + rng.Int64N(9800) // 1.99 … 99.98
	}
	return g
}

// NextOrder returns the next order, stamped with now (truncated to
// milliseconds, in UTC).
func (g *Generator) NextOrder(now time.Time) Order {
	d := g.draw()
	return Order{
		OrderID:    "o-" + zeroPad(g.seq, 6),
		CustomerID: "c-" + zeroPad(d.customer, 4),
		SKU:        "SKU-" + strconv.Itoa(d.sku+1),
		Quantity:   d.quantity,
		Price:      float64(g.prices[d.sku]) / 100,
		Currency:   d.currency,
		TS:         now.UTC().Truncate(time.Millisecond),
	}
}

// drawn is what one order draws from the generator's sources.
type drawn struct {
	sku      int
	customer int64
	quantity int
	currency string
}

// draw advances the sequence number and makes the next order's draws, in
// the order the sequence depends on (NextOrder and AppendNextJSON share it).
func (g *Generator) draw() drawn {
	g.seq++
	d := drawn{sku: int(g.sku.Uint64())}
	d.customer = g.rng.Int64N(NumCustomers)
	d.quantity = 1 + g.rng.IntN(MaxQuantity)
	w := g.rng.IntN(10)
	for i, cw := range currencyWeights {
		if w < cw {
			d.currency = Currencies[i]
			break
		}
		w -= cw
	}
	return d
}

// AppendNextJSON appends the next order's JSON to dst, byte for byte as
// NextOrder(now) followed by AppendJSON would, except that a customer ≥ 0
// replaces the customer id with "c-" and customer in at least 4 digits (the
// drawn id is still drawn, so the sequence does not depend on it). It makes
// the same draws as NextOrder and allocates nothing when dst has room: it
// writes digits directly, keeps each SKU's price text and formats a
// timestamp once for all the orders of the same millisecond — what a load
// generator producing a tick's orders at one time wants.
func (g *Generator) AppendNextJSON(dst []byte, now time.Time, customer int) []byte {
	d := g.draw()
	if customer >= 0 {
		d.customer = int64(customer)
	}
	sku := d.sku
	ts := now.Truncate(time.Millisecond)
	if g.tsText == nil || !ts.Equal(g.tsAt) {
		g.tsAt, g.tsText = ts, ts.UTC().AppendFormat(g.tsText[:0], TimeLayout)
	}
	if g.priceText[sku] == nil {
		g.priceText[sku] = strconv.AppendFloat(nil, float64(g.prices[sku])/100, 'f', 2, 64)
	}
	dst = append(dst, `{"order_id":"o-`...)
	dst = AppendZeroPad(dst, g.seq, 6)
	dst = append(dst, `","customer_id":"c-`...)
	dst = AppendZeroPad(dst, d.customer, 4)
	dst = append(dst, `","sku":"SKU-`...)
	dst = strconv.AppendInt(dst, int64(sku+1), 10)
	dst = append(dst, `","quantity":`...)
	dst = strconv.AppendInt(dst, int64(d.quantity), 10)
	dst = append(dst, `,"price":`...)
	dst = append(dst, g.priceText[sku]...)
	dst = append(dst, `,"currency":"`...)
	dst = append(dst, d.currency...)
	dst = append(dst, `","ts":"`...)
	dst = append(dst, g.tsText...)
	return append(dst, `"}`...)
}

// Next returns the next order as a record key (the customer id) and value
// (JSON, see Order.AppendJSON). Both slices are freshly allocated.
func (g *Generator) Next(now time.Time) (key, value []byte) {
	o := g.NextOrder(now)
	return []byte(o.CustomerID), o.AppendJSON(make([]byte, 0, 160))
}

// AppendZeroPad appends n (≥ 0) in decimal with at least width digits,
// zeros in front.
func AppendZeroPad(dst []byte, n int64, width int) []byte {
	for d, p := 1, int64(10); d < width; d, p = d+1, p*10 {
		if n < p {
			for range width - d {
				dst = append(dst, '0')
			}
			break
		}
	}
	return strconv.AppendInt(dst, n, 10)
}

// zeroPad formats n in decimal with at least width digits.
func zeroPad(n int64, width int) string {
	var buf [24]byte
	return string(AppendZeroPad(buf[:0], n, width))
}

// padField is what appendPadded inserts, around the padding characters.
const (
	padOpen     = `,"pad":"`
	padClose    = `"`
	padOverhead = len(padOpen) + len(padClose)
)

// padding is a run of pad characters that padJSON copies from.
var padding = strings.Repeat("x", 1024)

// padJSON grows a JSON object to exactly size bytes by adding a "pad" string
// field before its closing brace. If the object is already too large to hold
// the field, it is returned unchanged. v must end with '}' and is reused if
// it has the capacity.
func padJSON(v []byte, size int) []byte {
	n := size - len(v) - padOverhead
	if n < 0 || len(v) == 0 || v[len(v)-1] != '}' {
		return v
	}
	v = v[:len(v)-1]
	v = append(v, padOpen...)
	for n > 0 {
		k := min(n, len(padding))
		v = append(v, padding[:k]...)
		n -= k
	}
	v = append(v, padClose...)
	return append(v, '}')
}
