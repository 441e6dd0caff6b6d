package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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
	// AppendRecord appends the key and then the value of the record Record
	// would return to dst and returns the extended buffer and the key's
	// length. It allocates only to grow dst, so a producer can carve many
	// records out of one buffer.
	AppendRecord(dst []byte, now time.Time, key int) (buf []byte, keyLen int)
}

// record makes Record of an AppendRecord: fresh key and value slices of
// one new buffer of about size bytes.
func record(s Shape, now time.Time, key, size int) ([]byte, []byte) {
	buf, kl := s.AppendRecord(make([]byte, 0, size), now, key)
	return buf[:kl:kl], buf[kl:]
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
	return record(s, now, key, max(s.size, 160)+8)
}

func (s *orderShape) AppendRecord(dst []byte, now time.Time, key int) ([]byte, int) {
	start := len(dst)
	dst = append(dst, "c-"...)
	dst = orders.AppendZeroPad(dst, int64(key), 4)
	kl := len(dst) - start
	return padJSONAt(s.gen.AppendNextJSON(dst, now, key), start+kl, s.size), kl
}

// iotShape is a sensor reading:
//
//	{"device_id":"dev-0042","ts":"2026-11-25T13:00:00.123Z","seq":7,"temperature":21.37,"humidity":40.2,"battery":0.87}
type iotShape struct {
	rng  *rand.Rand
	size int
	seq  int64
	// The last timestamp formatted, for the records of the same instant.
	tsAt   time.Time
	tsText []byte
}

func (s *iotShape) Name() string { return ShapeIoT }

func (s *iotShape) Record(now time.Time, key int) ([]byte, []byte) {
	return record(s, now, key, max(s.size, 128)+8)
}

func (s *iotShape) AppendRecord(dst []byte, now time.Time, key int) ([]byte, int) {
	s.seq++
	start := len(dst)
	dst = append(dst, "dev-"...)
	dst = orders.AppendZeroPad(dst, int64(key), 4)
	kl := len(dst) - start
	if s.tsText == nil || !now.Equal(s.tsAt) {
		s.tsAt, s.tsText = now, now.UTC().AppendFormat(s.tsText[:0], orders.TimeLayout)
	}
	v := append(dst, `{"device_id":"`...)
	v = append(v, dst[start:start+kl]...)
	v = append(v, `","ts":"`...)
	v = append(v, s.tsText...)
	v = append(v, `","seq":`...)
	v = strconv.AppendInt(v, s.seq, 10)
	v = append(v, `,"temperature":`...)
	v = strconv.AppendFloat(v, 15+float64(key%10)+s.rng.NormFloat64(), 'f', 2, 64)
	v = append(v, `,"humidity":`...)
	v = strconv.AppendFloat(v, 30+40*s.rng.Float64(), 'f', 1, 64)
	v = append(v, `,"battery":`...)
	v = strconv.AppendFloat(v, 0.2+0.8*s.rng.Float64(), 'f', 2, 64)
	v = append(v, '}')
	return padJSONAt(v, start+kl, s.size), kl
}

// randomShape is size random characters from a 64-character alphabet, so
// CAST(value AS STRING) works on it.
type randomShape struct {
	rng  *rand.Rand
	size int
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func (s *randomShape) Name() string { return ShapeRandom }

func (s *randomShape) Record(now time.Time, key int) ([]byte, []byte) {
	return record(s, now, key, s.size+8)
}

func (s *randomShape) AppendRecord(dst []byte, _ time.Time, key int) ([]byte, int) {
	start := len(dst)
	dst = append(dst, "k-"...)
	dst = strconv.AppendInt(dst, int64(key), 10)
	kl := len(dst) - start
	vs := len(dst)
	dst = slices.Grow(dst, s.size)[:vs+s.size]
	v := dst[vs:]
	for i := 0; i < len(v); i += 10 {
		r := s.rng.Uint64() // 10 characters of 6 bits each
		for j := i; j < min(i+10, len(v)); j++ {
			v[j] = alphabet[r&63]
			r >>= 6
		}
	}
	return dst, kl
}

// padJSONAt grows the JSON object that starts at buf[start:] and ends buf
// to size bytes with a "pad" string field before its closing brace; an
// object already too large for the field is left unchanged.
func padJSONAt(buf []byte, start, size int) []byte {
	const open, closing = `,"pad":"`, `"}`
	v := buf[start:]
	n := size - len(v) - len(open) - len(closing) + 1 // the '}' is replaced
	if n < 0 || len(v) == 0 || v[len(v)-1] != '}' {
		return buf
	}
	buf = append(buf[:len(buf)-1], open...)
	for range n {
		buf = append(buf, 'x')
	}
	return append(buf, closing...)
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
