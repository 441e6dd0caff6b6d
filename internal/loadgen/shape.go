package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/orders"
)

// Shape makes record values. Implementations are deterministic for a seed
// and not safe for concurrent use.
type Shape interface {
	// Name is the shape's name as the CLI spells it.
	Name() string
	// Record returns the key and value of a record with key index key
	// (0 ≤ key < the key count), stamped now. Both slices are fresh.
	Record(now time.Time, key int) (k, v []byte)
}

// Shape names.
const (
	ShapeOrders = "orders" // the seed's order events, JSON (package orders)
	ShapeIoT    = "iot"    // sensor readings, JSON
	ShapeRandom = "random" // fixed-size random printable values
)

// Shapes lists the shape names.
var Shapes = []string{ShapeOrders, ShapeIoT, ShapeRandom}

// NewShape returns the named shape. size is the value size of the random
// shape (bytes, ≥ 1) and the minimum value size of the JSON shapes, which
// are padded with a "pad" field up to it (0 = no padding).
func NewShape(name string, size int, seed int64) (Shape, error) {
	if size < 0 || size > 1<<20 {
		return nil, fmt.Errorf("loadgen: record size %d out of range [0, 1 MiB]", size)
	}
	switch name {
	case ShapeOrders:
		return &orderShape{gen: orders.NewGenerator(seed), size: size}, nil
	case ShapeIoT:
		return &iotShape{rng: rand.New(rand.NewPCG(uint64(seed), 0x696f74)), size: size}, nil
	case ShapeRandom:
		if size < 1 {
			return nil, fmt.Errorf("loadgen: the random shape needs a record size ≥ 1 (got %d)", size)
		}
		return &randomShape{rng: rand.New(rand.NewPCG(uint64(seed), 0x72616e64)), size: size}, nil
	}
	return nil, fmt.Errorf("loadgen: unknown record shape %q (allowed: %s)", name, strings.Join(Shapes, ", "))
}

// orderShape is package orders' Order JSON; the customer id is the key.
type orderShape struct {
	gen  *orders.Generator
	size int
}

func (s *orderShape) Name() string { return ShapeOrders }

func (s *orderShape) Record(now time.Time, key int) ([]byte, []byte) {
	o := s.gen.NextOrder(now)
	o.CustomerID = "c-" + pad4(key)
	return []byte(o.CustomerID), padJSON(o.AppendJSON(make([]byte, 0, max(s.size, 160))), s.size)
}

// iotShape is a sensor reading:
//
//	{"device_id":"dev-0042","ts":"2026-11-25T13:00:00.123Z","seq":7,"temperature":21.37,"humidity":40.2,"battery":0.87}
type iotShape struct {
	rng  *rand.Rand
	size int
	seq  int64
}

func (s *iotShape) Name() string { return ShapeIoT }

func (s *iotShape) Record(now time.Time, key int) ([]byte, []byte) {
	s.seq++
	id := "dev-" + pad4(key)
	v := make([]byte, 0, max(s.size, 128))
	v = append(v, `{"device_id":"`...)
	v = append(v, id...)
	v = append(v, `","ts":"`...)
	v = now.UTC().AppendFormat(v, orders.TimeLayout)
	v = append(v, `","seq":`...)
	v = strconv.AppendInt(v, s.seq, 10)
	v = append(v, `,"temperature":`...)
	v = strconv.AppendFloat(v, 15+float64(key%10)+s.rng.NormFloat64(), 'f', 2, 64)
	v = append(v, `,"humidity":`...)
	v = strconv.AppendFloat(v, 30+40*s.rng.Float64(), 'f', 1, 64)
	v = append(v, `,"battery":`...)
	v = strconv.AppendFloat(v, 0.2+0.8*s.rng.Float64(), 'f', 2, 64)
	v = append(v, '}')
	return []byte(id), padJSON(v, s.size)
}

// randomShape is size random characters from a 64-character alphabet, so
// CAST(value AS STRING) works on it.
type randomShape struct {
	rng  *rand.Rand
	size int
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func (s *randomShape) Name() string { return ShapeRandom }

func (s *randomShape) Record(_ time.Time, key int) ([]byte, []byte) {
	v := make([]byte, s.size)
	for i := 0; i < len(v); i += 10 {
		r := s.rng.Uint64() // 10 characters of 6 bits each
		for j := i; j < min(i+10, len(v)); j++ {
			v[j] = alphabet[r&63]
			r >>= 6
		}
	}
	return []byte("k-" + strconv.Itoa(key)), v
}

func pad4(n int) string {
	s := strconv.Itoa(n)
	if len(s) >= 4 {
		return s
	}
	return strings.Repeat("0", 4-len(s)) + s
}

// padJSON grows a JSON object to size bytes with a "pad" string field
// before its closing brace; an object already too large for the field is
// returned unchanged.
func padJSON(v []byte, size int) []byte {
	const open, closing = `,"pad":"`, `"}`
	n := size - len(v) - len(open) - len(closing) + 1 // the '}' is replaced
	if n < 0 || len(v) == 0 || v[len(v)-1] != '}' {
		return v
	}
	v = append(v[:len(v)-1], open...)
	for range n {
		v = append(v, 'x')
	}
	return append(v, closing...)
}

// Keys is the distribution of record keys: Count distinct keys, drawn
// uniformly, or with a Zipf law of exponent Zipf (> 1) when Zipf is set,
// key 0 being the most frequent.
type Keys struct {
	Count int
	Zipf  float64
}

// Validate reports a key distribution that cannot be drawn from.
func (k Keys) Validate() error {
	switch {
	case k.Count < 1:
		return fmt.Errorf("loadgen: key count %d must be ≥ 1", k.Count)
	case k.Zipf != 0 && (math.IsNaN(k.Zipf) || k.Zipf <= 1 || k.Zipf > 100):
		return fmt.Errorf("loadgen: zipf exponent %v must be in (1, 100] (or 0 for uniform keys)", k.Zipf)
	}
	return nil
}

func (k Keys) String() string {
	if k.Zipf > 0 {
		return fmt.Sprintf("%d keys, zipf s=%g", k.Count, k.Zipf)
	}
	return fmt.Sprintf("%d keys, uniform", k.Count)
}

// keyDrawer draws key indexes.
type keyDrawer struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	count int
}

func newKeyDrawer(k Keys, seed int64) *keyDrawer {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b657973))
	d := &keyDrawer{rng: rng, count: k.Count}
	if k.Zipf > 0 && k.Count > 1 {
		d.zipf = rand.NewZipf(rng, k.Zipf, 1, uint64(k.Count-1))
	}
	return d
}

func (d *keyDrawer) next() int {
	if d.zipf != nil {
		return int(d.zipf.Uint64())
	}
	return d.rng.IntN(d.count)
}
