package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/sluice-stream/sluice/batch"
)

// Key encoding: each column of the key is appended in order, so that
// bytes.Compare of two encoded keys orders them as Spark orders the rows
// (ascending, nulls first, column by column):
//
//	null                 0x00
//	non-null             0x01, then
//	  Boolean            0x00 false, 0x01 true
//	  Int, Date          4 bytes big-endian, sign bit flipped
//	  Long, Timestamp    8 bytes big-endian, sign bit flipped
//	  Double             8 bytes: IEEE bits, sign bit flipped for ≥ 0, all
//	                     bits flipped for < 0; -0.0 is encoded as 0.0 and
//	                     every NaN as the one canonical NaN, which sorts above
//	                     +Inf (Spark's NaN semantics for grouping and ordering)
//	  String, Binary     the bytes with 0x00 escaped as 0x00 0xFF, then the
//	                     terminator 0x00 0x01 (so "a" < "a\x00" < "ab")
//
// A key prefix (the first n columns) is itself a byte prefix of the key, so
// prefix scans and ranges by leading columns (a window end first) work.

const (
	keyNull    byte = 0x00
	keyPresent byte = 0x01
)

// canonicalNaN is the one NaN bit pattern keys and hashes use.
const canonicalNaN = 0x7ff8000000000000

// AppendKeyCell appends cell row of col to dst in the key encoding.
func AppendKeyCell(dst []byte, col *batch.Column, row int) []byte {
	if col.IsNull(row) {
		return append(dst, keyNull)
	}
	switch col.Type {
	case batch.Boolean:
		return AppendKeyBool(dst, col.Bools[row])
	case batch.Int, batch.Date:
		return AppendKeyInt32(dst, int32(col.Ints[row]))
	case batch.Long, batch.Timestamp:
		return AppendKeyInt64(dst, col.Ints[row])
	case batch.Double:
		return AppendKeyDouble(dst, col.Floats[row])
	case batch.String, batch.Binary:
		return AppendKeyBytes(dst, col.Bytes[row])
	}
	panic(fmt.Sprintf("state: key encoding does not support %s", col.Type))
}

// EncodeKey appends row of cols to dst as one key.
func EncodeKey(dst []byte, cols []*batch.Column, row int) []byte {
	for _, c := range cols {
		dst = AppendKeyCell(dst, c, row)
	}
	return dst
}

// AppendKeyNull appends a null cell.
func AppendKeyNull(dst []byte) []byte { return append(dst, keyNull) }

// AppendKeyBool appends a non-null Boolean.
func AppendKeyBool(dst []byte, v bool) []byte {
	b := byte(0)
	if v {
		b = 1
	}
	return append(dst, keyPresent, b)
}

// AppendKeyInt32 appends a non-null Int or Date.
func AppendKeyInt32(dst []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, keyPresent), uint32(v)^(1<<31))
}

// AppendKeyInt64 appends a non-null Long or Timestamp.
func AppendKeyInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, keyPresent), uint64(v)^(1<<63))
}

// AppendKeyDouble appends a non-null Double.
func AppendKeyDouble(dst []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, keyPresent), orderedDoubleBits(v))
}

func orderedDoubleBits(v float64) uint64 {
	var bits uint64
	switch {
	case math.IsNaN(v):
		bits = canonicalNaN
	case v == 0:
		bits = 0 // -0.0 == 0.0
	default:
		bits = math.Float64bits(v)
	}
	if bits&(1<<63) != 0 {
		return ^bits
	}
	return bits | 1<<63
}

// AppendKeyBytes appends a non-null String or Binary.
func AppendKeyBytes(dst, v []byte) []byte {
	dst = append(dst, keyPresent)
	for _, c := range v {
		if c == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, 0, 1)
}

// AppendKeyValue appends a Go value as returned by batch.Column.Value (nil,
// bool, int64, float64, string, []byte) for a column of kind k.
func AppendKeyValue(dst []byte, k batch.Kind, v any) ([]byte, error) {
	if v == nil {
		return append(dst, keyNull), nil
	}
	switch k {
	case batch.Boolean:
		if b, ok := v.(bool); ok {
			return AppendKeyBool(dst, b), nil
		}
	case batch.Int, batch.Date:
		if i, ok := v.(int64); ok {
			return AppendKeyInt32(dst, int32(i)), nil
		}
	case batch.Long, batch.Timestamp:
		if i, ok := v.(int64); ok {
			return AppendKeyInt64(dst, i), nil
		}
	case batch.Double:
		if f, ok := v.(float64); ok {
			return AppendKeyDouble(dst, f), nil
		}
	case batch.String:
		if s, ok := v.(string); ok {
			return AppendKeyBytes(dst, []byte(s)), nil
		}
	case batch.Binary:
		if b, ok := v.([]byte); ok {
			return AppendKeyBytes(dst, b), nil
		}
	}
	return dst, fmt.Errorf("state: cannot encode %T as a %s key", v, k)
}

var errShortKey = errors.New("state: truncated key")

// DecodeKey decodes a key of the given column kinds into Go values (see
// AppendKeyValue). Strings are returned as string, Binary as a copy.
func DecodeKey(b []byte, kinds []batch.Kind) ([]any, error) {
	out := make([]any, len(kinds))
	for i, k := range kinds {
		v, rest, err := decodeKeyCell(b, k)
		if err != nil {
			return nil, fmt.Errorf("key column %d (%s): %w", i, k, err)
		}
		out[i], b = v, rest
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("state: %d bytes after the last key column", len(b))
	}
	return out, nil
}

// DecodeKeyInto appends the key's cells to cols (one per key column, of
// the matching kinds).
func DecodeKeyInto(b []byte, cols []*batch.Column) error {
	for i, c := range cols {
		v, rest, err := decodeKeyCell(b, c.Type)
		if err != nil {
			return fmt.Errorf("key column %d (%s): %w", i, c.Type, err)
		}
		appendValue(c, v)
		b = rest
	}
	if len(b) != 0 {
		return fmt.Errorf("state: %d bytes after the last key column", len(b))
	}
	return nil
}

func decodeKeyCell(b []byte, k batch.Kind) (any, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errShortKey
	}
	if b[0] == keyNull {
		return nil, b[1:], nil
	}
	if b[0] != keyPresent {
		return nil, nil, fmt.Errorf("state: bad key cell marker %#x", b[0])
	}
	b = b[1:]
	switch k {
	case batch.Boolean:
		if len(b) < 1 {
			return nil, nil, errShortKey
		}
		return b[0] == 1, b[1:], nil
	case batch.Int, batch.Date:
		if len(b) < 4 {
			return nil, nil, errShortKey
		}
		return int64(int32(binary.BigEndian.Uint32(b) ^ (1 << 31))), b[4:], nil
	case batch.Long, batch.Timestamp:
		if len(b) < 8 {
			return nil, nil, errShortKey
		}
		return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8:], nil
	case batch.Double:
		if len(b) < 8 {
			return nil, nil, errShortKey
		}
		bits := binary.BigEndian.Uint64(b)
		if bits&(1<<63) != 0 {
			bits &^= 1 << 63
		} else {
			bits = ^bits
		}
		return math.Float64frombits(bits), b[8:], nil
	case batch.String, batch.Binary:
		var out []byte
		for i := 0; ; i++ {
			if i+1 >= len(b) {
				return nil, nil, errShortKey
			}
			if b[i] != 0 {
				out = append(out, b[i])
				continue
			}
			switch b[i+1] {
			case 0xFF:
				out = append(out, 0)
				i++
			case 1:
				rest := b[i+2:]
				if k == batch.String {
					return string(out), rest, nil
				}
				if out == nil {
					out = []byte{}
				}
				return out, rest, nil
			default:
				return nil, nil, fmt.Errorf("state: bad escape in key bytes")
			}
		}
	}
	return nil, nil, fmt.Errorf("state: key encoding does not support %s", k)
}

// PrefixEnd returns the smallest key greater than every key that starts
// with prefix (nil if there is none), the upper bound of a prefix scan.
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Value encoding: compact, not ordered. A row of n columns is a null bitmap
// of ceil(n/8) bytes (bit i set = column i null) followed by the non-null
// cells: Boolean 1 byte; Int, Long, Date, Timestamp zig-zag varint; Double
// 8 bytes little-endian IEEE; String, Binary uvarint length + bytes.

// EncodeValue appends row of cols to dst in the value encoding.
func EncodeValue(dst []byte, cols []*batch.Column, row int) []byte {
	start := len(dst)
	for range (len(cols) + 7) / 8 {
		dst = append(dst, 0)
	}
	for i, c := range cols {
		if c.IsNull(row) {
			dst[start+i/8] |= 1 << (i % 8)
			continue
		}
		switch c.Type {
		case batch.Boolean:
			if c.Bools[row] {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		case batch.Int, batch.Long, batch.Date, batch.Timestamp:
			dst = binary.AppendVarint(dst, c.Ints[row])
		case batch.Double:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Floats[row]))
		case batch.String, batch.Binary:
			dst = binary.AppendUvarint(dst, uint64(len(c.Bytes[row])))
			dst = append(dst, c.Bytes[row]...)
		default:
			panic(fmt.Sprintf("state: value encoding does not support %s", c.Type))
		}
	}
	return dst
}

// DecodeValueInto appends the encoded row's cells to cols (one per value
// column). String and Binary cells alias b.
func DecodeValueInto(b []byte, cols []*batch.Column) error {
	nb := (len(cols) + 7) / 8
	if len(b) < nb {
		return fmt.Errorf("state: value shorter than its null bitmap")
	}
	bitmap, b := b[:nb], b[nb:]
	for i, c := range cols {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			c.AppendNull()
			continue
		}
		switch c.Type {
		case batch.Boolean:
			if len(b) < 1 {
				return errShortValue(i)
			}
			c.AppendBool(b[0] == 1)
			b = b[1:]
		case batch.Int, batch.Long, batch.Date, batch.Timestamp:
			v, n := binary.Varint(b)
			if n <= 0 {
				return errShortValue(i)
			}
			c.AppendInt(v)
			b = b[n:]
		case batch.Double:
			if len(b) < 8 {
				return errShortValue(i)
			}
			c.AppendFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)))
			b = b[8:]
		case batch.String, batch.Binary:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errShortValue(i)
			}
			c.AppendBytes(b[n : n+int(l) : n+int(l)])
			b = b[n+int(l):]
		default:
			return fmt.Errorf("state: value encoding does not support %s", c.Type)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("state: %d bytes after the last value column", len(b))
	}
	return nil
}

func errShortValue(i int) error { return fmt.Errorf("state: value truncated at column %d", i) }

func appendValue(c *batch.Column, v any) {
	switch x := v.(type) {
	case nil:
		c.AppendNull()
	case bool:
		c.AppendBool(x)
	case int64:
		c.AppendInt(x)
	case float64:
		c.AppendFloat(x)
	case string:
		c.AppendBytes([]byte(x))
	case []byte:
		c.AppendBytes(x)
	}
}
