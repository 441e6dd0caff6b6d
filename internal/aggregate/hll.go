package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-stream/sluice/batch"
)

// HyperLogLog++ with Spark's parameters (HyperLogLogPlusPlusHelper):
//
//   - precision p = ceil(2·log2(1.106 / rsd)), at least 4 (rsd 0.05 → p = 9,
//     m = 2^p = 512 registers, true rsd 1.04/√m ≈ 0.046);
//   - 6-bit registers packed ten to a 64-bit word, m/10+1 words;
//   - the value's 64-bit hash is Spark's XxHash64 with seed 42 (see hashCell);
//     the register index is its top p bits, the register value the number of
//     leading zeros of (hash << p | 1 << (p−1)) plus one;
//   - estimate E = α·m² / Σ 2^−M[j] (α = 0.673, 0.697, 0.709 for p = 4, 5, 6,
//     else 0.7213/(1 + 1.079/m)); if E < 5m it is bias-corrected by the mean
//     bias of the 6 nearest raw estimates of the HLL++ paper's table for p;
//     with V > 0 empty registers, linear counting H = m·ln(m/V) is used when
//     H ≤ the paper's threshold for p or E ≤ 2.5m; the result is rounded.
//
// Merging is the register-wise maximum, so it is associative, commutative
// and idempotent.

const (
	hllRegisterBits = 6
	hllPerWord      = 64 / hllRegisterBits
	hllMask         = 1<<hllRegisterBits - 1
	hllK            = 6 // neighbours in the bias interpolation
	hllSeed         = 42
)

var hllThresholds = [15]float64{10, 20, 40, 80, 220, 400, 900, 1800, 3100, 6500, 15500, 20000, 50000, 120000, 350000}

type hllParams struct {
	p        uint
	m        int
	words    int
	alphaMM  float64
	wPadding uint64
}

func newHLLParams(rsd float64) (*hllParams, error) {
	if !(rsd > 0) || math.IsInf(rsd, 0) {
		return nil, fmt.Errorf("approx_count_distinct: relative standard deviation must be positive, got %v", rsd)
	}
	p := int(math.Ceil(2 * math.Log(1.106/rsd) / math.Log(2)))
	if p < 4 {
		return nil, fmt.Errorf("approx_count_distinct: HLL++ requires at least 4 bits for addressing; use a relative standard deviation of at most 0.39 (got %v)", rsd)
	}
	if p > 25 {
		return nil, fmt.Errorf("approx_count_distinct: relative standard deviation %v needs %d bits of precision; at most 25 are supported", rsd, p)
	}
	m := 1 << p
	var alpha float64
	switch p {
	case 4:
		alpha = 0.673
	case 5:
		alpha = 0.697
	case 6:
		alpha = 0.709
	default:
		alpha = 0.7213 / (1 + 1.079/float64(m))
	}
	return &hllParams{p: uint(p), m: m, words: m/hllPerWord + 1, alphaMM: alpha * float64(m) * float64(m), wPadding: 1 << (p - 1)}, nil
}

// Precision is the number of index bits p.
func (a *Aggregate) Precision() int {
	if a.hll == nil {
		return 0
	}
	return int(a.hll.p)
}

type hllAcc struct {
	h      *hllParams
	kind   batch.Kind
	words  []uint64
	digest *xxhash.Digest
}

func newHLLAcc(h *hllParams, kind batch.Kind) *hllAcc {
	return &hllAcc{h: h, kind: kind, words: make([]uint64, h.words)}
}

func (c *hllAcc) add(hash uint64) {
	h := c.h
	idx := int(hash >> (64 - h.p))
	pw := uint64(bits.LeadingZeros64(hash<<h.p|h.wPadding) + 1)
	w := idx / hllPerWord
	shift := hllRegisterBits * uint(idx-w*hllPerWord)
	if cur := (c.words[w] >> shift) & hllMask; pw > cur {
		c.words[w] = c.words[w]&^(hllMask<<shift) | pw<<shift
	}
}

func (c *hllAcc) Update(col *batch.Column, sel []int32) error {
	valid := col.Valid
	switch col.Type {
	case batch.Null:
	case batch.Long, batch.Timestamp:
		vals := col.Ints
		rows(col, sel, func(i int) {
			if valid == nil || valid[i] {
				c.add(xxh64Long(uint64(vals[i]), hllSeed))
			}
		})
	case batch.Int, batch.Date:
		vals := col.Ints
		rows(col, sel, func(i int) {
			if valid == nil || valid[i] {
				c.add(xxh64Int(uint32(vals[i]), hllSeed))
			}
		})
	default:
		rows(col, sel, func(i int) {
			if !col.IsNull(i) {
				c.add(c.hashCell(cellAt(col, i)))
			}
		})
	}
	return nil
}

// hashCell is Spark's XxHash64Function.hash(value, type, 42): booleans as
// the int 1/0, int and date as 4 bytes, bigint and timestamp as 8, doubles
// normalized (one NaN, -0.0 → 0.0) then as their IEEE bits, strings and
// binary over their bytes.
func (c *hllAcc) hashCell(v cell) uint64 {
	switch c.kind {
	case batch.Boolean:
		if v.b {
			return xxh64Int(1, hllSeed)
		}
		return xxh64Int(0, hllSeed)
	case batch.Int, batch.Date:
		return xxh64Int(uint32(v.i), hllSeed)
	case batch.Long, batch.Timestamp:
		return xxh64Long(uint64(v.i), hllSeed)
	case batch.Double:
		return xxh64Long(math.Float64bits(normalizeDouble(v.f)), hllSeed)
	}
	return c.hashBytes(v.bs, hllSeed)
}

func (c *hllAcc) hashBytes(b []byte, seed uint64) uint64 {
	if c.digest == nil {
		c.digest = xxhash.NewWithSeed(seed)
	} else {
		c.digest.ResetWithSeed(seed)
	}
	c.digest.Write(b)
	return c.digest.Sum64()
}

func (c *hllAcc) Merge(o Accumulator) error {
	x, ok := o.(*hllAcc)
	if !ok || x.h.p != c.h.p {
		return mismatch(c, o)
	}
	for w := range c.words {
		a, b := c.words[w], x.words[w]
		var out uint64
		for shift := uint(0); shift < 64-hllRegisterBits+1; shift += hllRegisterBits {
			out |= max(a&(hllMask<<shift), b&(hllMask<<shift))
		}
		c.words[w] = out
	}
	return nil
}

// estimate is Spark's query().
func (c *hllAcc) estimate() int64 {
	h := c.h
	var zInverse, v float64
	idx := 0
	for _, word := range c.words {
		for i := 0; i < hllPerWord && idx < h.m; i++ {
			r := (word >> (hllRegisterBits * uint(i))) & hllMask
			zInverse += 1 / float64(uint64(1)<<r)
			if r == 0 {
				v++
			}
			idx++
		}
	}
	m := float64(h.m)
	e := h.alphaMM / zInverse
	corrected := func() float64 {
		if h.p < 19 && e < 5*m {
			return e - estimateBias(int(h.p), e)
		}
		return e
	}
	var est float64
	if v > 0 {
		lc := m * math.Log(m/v)
		if (h.p < 19 && lc <= hllThresholds[h.p-4]) || e <= 2.5*m {
			est = lc
		} else {
			est = corrected()
		}
	} else {
		est = corrected()
	}
	return int64(math.Floor(est + 0.5)) // Java's Math.round
}

// estimateBias averages the biases of the hllK raw estimates nearest to e.
func estimateBias(p int, e float64) float64 {
	est := hllRawEstimates[p-4]
	bias := hllBias[p-4]
	n := len(est)
	nearest := sort.SearchFloat64s(est, e)
	dist := func(i int) float64 { d := e - est[i]; return d * d }
	low := max(nearest-hllK+1, 0)
	high := min(low+hllK, n)
	for high < n && dist(high) < dist(low) {
		low++
		high++
	}
	var sum float64
	for i := low; i < high; i++ {
		sum += bias[i]
	}
	return sum / float64(high-low)
}

func (c *hllAcc) Result() any                          { return c.estimate() }
func (c *hllAcc) AppendResult(col *batch.Column) error { col.AppendInt(c.estimate()); return nil }
func (c *hllAcc) Size() int64                          { return 48 + 8*int64(len(c.words)) }

// AppendState writes p then the register words (little-endian).
func (c *hllAcc) AppendState(dst []byte) []byte {
	dst = append(dst, byte(c.h.p))
	for _, w := range c.words {
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	return dst
}

func (c *hllAcc) LoadState(b []byte) error {
	if len(b) != 1+8*len(c.words) || uint(b[0]) != c.h.p {
		return errState("approx_count_distinct")
	}
	for i := range c.words {
		c.words[i] = binary.LittleEndian.Uint64(b[1+8*i:])
	}
	return nil
}

// XXH64 of a 4- and an 8-byte little-endian input (what Spark's
// XXH64.hashInt and hashLong compute).
const (
	prime64_1 = 11400714785074694791
	prime64_2 = 14029467366897019727
	prime64_3 = 1609587929392839161
	prime64_4 = 9650029242287828579
	prime64_5 = 2870177450012600261
)

func xxh64Int(v uint32, seed uint64) uint64 {
	h := seed + prime64_5 + 4
	h ^= uint64(v) * prime64_1
	h = bits.RotateLeft64(h, 23)*prime64_2 + prime64_3
	return xxhAvalanche(h)
}

func xxh64Long(v uint64, seed uint64) uint64 {
	h := seed + prime64_5 + 8
	h ^= bits.RotateLeft64(v*prime64_2, 31) * prime64_1
	h = bits.RotateLeft64(h, 27)*prime64_1 + prime64_4
	return xxhAvalanche(h)
}

func xxhAvalanche(h uint64) uint64 {
	h ^= h >> 33
	h *= prime64_2
	h ^= h >> 29
	h *= prime64_3
	h ^= h >> 32
	return h
}
