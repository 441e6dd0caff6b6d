package state

import (
	"bytes"
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
//	  struct             the fields' encodings, concatenated in field order
//	  array              each element as 0x02 followed by its encoding, then
//	                     the terminator 0x01 (so [] < [1] < [1, 2] < [2])
//
// Maps cannot be keys (Spark refuses to group by them). A window,
// struct<start:timestamp,end:timestamp>, is therefore 0x01, start (9
// bytes), end (9 bytes): windows order by start, then end.
//
// A key prefix (the first n columns) is itself a byte prefix of the key, so
// prefix scans and ranges by leading columns (a window end first) work.

const (
	keyNull    byte = 0x00
	keyPresent byte = 0x01
	// Inside an array: the end marker sorts before an element's marker, so
	// a prefix sorts first.
	keyArrayEnd byte = 0x01
	keyElement  byte = 0x02
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
	switch col.Type.Class() {
	case batch.Struct:
		dst = append(dst, keyPresent)
		for _, ch := range col.Children {
			dst = AppendKeyCell(dst, ch, row)
		}
		return dst
	case batch.Array:
		dst = append(dst, keyPresent)
		from, to := col.Range(row)
		for e := from; e < to; e++ {
			dst = append(dst, keyElement)
			dst = AppendKeyCell(dst, col.Children[0], e)
		}
		return append(dst, keyArrayEnd)
	}
	panic(fmt.Sprintf("state: key encoding does not support %s", col.Type))
}

// KeyEncodable reports whether columns of kind k can be keys: every kind
// except void and maps (and what contains them).
func KeyEncodable(k batch.Kind) bool { return k.Valid() && !k.Contains(batch.Map) && k != batch.Null }

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
// bool, int64, float64, string, []byte, batch.StructValue or []any for a
// struct, []any for an array) for a column of kind k.
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
	switch k.Class() {
	case batch.Struct:
		var vals []any
		switch x := v.(type) {
		case batch.StructValue:
			vals = x.Values
		case []any:
			vals = x
		}
		fs := k.Fields()
		if vals == nil || len(vals) != len(fs) {
			break
		}
		dst = append(dst, keyPresent)
		for i, f := range fs {
			var err error
			if dst, err = AppendKeyValue(dst, f.Type, vals[i]); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case batch.Array:
		xs, ok := v.([]any)
		if !ok {
			break
		}
		dst = append(dst, keyPresent)
		for _, x := range xs {
			var err error
			if dst, err = AppendKeyValue(append(dst, keyElement), k.Elem(), x); err != nil {
				return dst, err
			}
		}
		return append(dst, keyArrayEnd), nil
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
	return DecodeKeyIntoArena(b, cols, nil)
}

// keyArenaBlock is the largest block DecodeKeyIntoArena copies String and
// Binary cells into.
const keyArenaBlock = 16 << 10

// DecodeKeyIntoArena is DecodeKeyInto with the bytes of String and Binary
// cells without escapes copied into *arena (when arena is not nil) rather
// than each into an allocation of its own: an operator that emits many
// rows decodes their keys into a few blocks. The cells alias the arena;
// the caller never writes to the arena's contents (it only appends), so
// a block lives as long as a cell points into it. When the room left is
// too small a fresh block replaces *arena.
func DecodeKeyIntoArena(b []byte, cols []*batch.Column, arena *[]byte) error {
	for i, c := range cols {
		rest, err := decodeKeyCellInto(b, c, arena)
		if err != nil {
			return fmt.Errorf("key column %d (%s): %w", i, c.Type, err)
		}
		b = rest
	}
	if len(b) != 0 {
		return fmt.Errorf("state: %d bytes after the last key column", len(b))
	}
	return nil
}

// decodeKeyCellInto appends one encoded cell to c. Numbers, strings
// without escapes and structs of them go straight into the column (no
// boxed value per cell, as eviction decodes every emitted key); other
// kinds go through decodeKeyCell.
func decodeKeyCellInto(b []byte, c *batch.Column, arena *[]byte) ([]byte, error) {
	if len(b) == 0 || b[0] != keyPresent {
		return decodeKeyCellValue(b, c)
	}
	switch c.Type.Class() {
	case batch.Int, batch.Date:
		if len(b) < 5 {
			return nil, errShortKey
		}
		c.AppendInt(int64(int32(binary.BigEndian.Uint32(b[1:]) ^ (1 << 31))))
		return b[5:], nil
	case batch.Long, batch.Timestamp:
		if len(b) < 9 {
			return nil, errShortKey
		}
		c.AppendInt(int64(binary.BigEndian.Uint64(b[1:]) ^ (1 << 63)))
		return b[9:], nil
	case batch.String, batch.Binary:
		// The common case: no zero byte inside, so the first 0x00 is the
		// terminator 0x00 0x01.
		i := bytes.IndexByte(b[1:], 0)
		if i < 0 || i+2 >= len(b) || b[i+2] != 1 {
			return decodeKeyCellValue(b, c)
		}
		if arena == nil {
			c.AppendBytes(append(make([]byte, 0, i), b[1:1+i]...))
			return b[i+3:], nil
		}
		a := *arena
		if a == nil || cap(a)-len(a) < i {
			// Never nil: a nil cell is a null. Blocks double from 1 KiB:
			// an operator emitting a few hundred short keys a partition
			// does not make (and zero) a whole block for them.
			a = make([]byte, 0, max(min(2*cap(a), keyArenaBlock), 1<<10, i))
		}
		start := len(a)
		a = append(a, b[1:1+i]...)
		c.AppendBytes(a[start:len(a):len(a)])
		*arena = a
		return b[i+3:], nil
	case batch.Struct:
		if len(c.Children) != len(c.Type.Fields()) {
			return decodeKeyCellValue(b, c)
		}
		rest := b[1:]
		for j, ch := range c.Children {
			var err error
			if rest, err = decodeKeyCellInto(rest, ch, arena); err != nil {
				// Children before j took a cell: a half-appended struct
				// leaves the batch unusable, and the caller fails.
				return nil, fmt.Errorf("field %q: %w", c.Type.Fields()[j].Name, err)
			}
		}
		c.AppendStruct()
		return rest, nil
	}
	return decodeKeyCellValue(b, c)
}

// decodeKeyCellValue appends one cell to c through its boxed value.
func decodeKeyCellValue(b []byte, c *batch.Column) ([]byte, error) {
	v, rest, err := decodeKeyCell(b, c.Type)
	if err != nil {
		return nil, err
	}
	if err := c.AppendValue(v); err != nil {
		return nil, err
	}
	return rest, nil
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
	switch k.Class() {
	case batch.Struct:
		fs := k.Fields()
		vals := make([]any, len(fs))
		for i, f := range fs {
			v, rest, err := decodeKeyCell(b, f.Type)
			if err != nil {
				return nil, nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			vals[i], b = v, rest
		}
		return batch.StructValue{Names: k.FieldNames(), Values: vals}, b, nil
	case batch.Array:
		out := []any{}
		for {
			if len(b) == 0 {
				return nil, nil, errShortKey
			}
			switch b[0] {
			case keyArrayEnd:
				return out, b[1:], nil
			case keyElement:
				v, rest, err := decodeKeyCell(b[1:], k.Elem())
				if err != nil {
					return nil, nil, err
				}
				out, b = append(out, v), rest
			default:
				return nil, nil, fmt.Errorf("state: bad array element marker %#x", b[0])
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
// 8 bytes little-endian IEEE; String, Binary uvarint length + bytes; a
// struct as a row of its fields; an array as uvarint count + a row of its
// elements; a map as uvarint count, then the keys and the values each as a
// row.

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
		dst = appendValueCell(dst, c, row)
	}
	return dst
}

// encodeRange appends cells [from, to) of c as a row (bitmap + cells).
func encodeRange(dst []byte, c *batch.Column, from, to int) []byte {
	start := len(dst)
	for range (to - from + 7) / 8 {
		dst = append(dst, 0)
	}
	for e := from; e < to; e++ {
		if c.IsNull(e) {
			i := e - from
			dst[start+i/8] |= 1 << (i % 8)
			continue
		}
		dst = appendValueCell(dst, c, e)
	}
	return dst
}

func appendValueCell(dst []byte, c *batch.Column, row int) []byte {
	switch c.Type.Class() {
	case batch.Boolean:
		if c.Bools[row] {
			return append(dst, 1)
		}
		return append(dst, 0)
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		return binary.AppendVarint(dst, c.Ints[row])
	case batch.Double:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Floats[row]))
	case batch.String, batch.Binary:
		dst = binary.AppendUvarint(dst, uint64(len(c.Bytes[row])))
		return append(dst, c.Bytes[row]...)
	case batch.Struct:
		return EncodeValue(dst, c.Children, row)
	case batch.Array, batch.Map:
		from, to := c.Range(row)
		dst = binary.AppendUvarint(dst, uint64(to-from))
		for _, ch := range c.Children {
			dst = encodeRange(dst, ch, from, to)
		}
		return dst
	}
	panic(fmt.Sprintf("state: value encoding does not support %s", c.Type))
}

// DecodeValueInto appends the encoded row's cells to cols (one per value
// column). String and Binary cells alias b.
func DecodeValueInto(b []byte, cols []*batch.Column) error {
	rest, err := decodeRow(b, cols)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("state: %d bytes after the last value column", len(rest))
	}
	return nil
}

// decodeRow appends one encoded row to cols and returns the bytes after it.
func decodeRow(b []byte, cols []*batch.Column) ([]byte, error) {
	nb := (len(cols) + 7) / 8
	if len(b) < nb {
		return nil, fmt.Errorf("state: value shorter than its null bitmap")
	}
	bitmap, b := b[:nb], b[nb:]
	for i, c := range cols {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			c.AppendNull()
			continue
		}
		var err error
		if b, err = decodeValueCell(b, c, i); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeRange appends n encoded cells (a bitmap and the non-null cells) to c.
func decodeRange(b []byte, c *batch.Column, n int) ([]byte, error) {
	nb := (n + 7) / 8
	if len(b) < nb {
		return nil, fmt.Errorf("state: value shorter than its null bitmap")
	}
	bitmap, b := b[:nb], b[nb:]
	for i := 0; i < n; i++ {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			c.AppendNull()
			continue
		}
		var err error
		if b, err = decodeValueCell(b, c, i); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func decodeValueCell(b []byte, c *batch.Column, i int) ([]byte, error) {
	switch c.Type.Class() {
	case batch.Boolean:
		if len(b) < 1 {
			return nil, errShortValue(i)
		}
		c.AppendBool(b[0] == 1)
		return b[1:], nil
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, errShortValue(i)
		}
		c.AppendInt(v)
		return b[n:], nil
	case batch.Double:
		if len(b) < 8 {
			return nil, errShortValue(i)
		}
		c.AppendFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		return b[8:], nil
	case batch.String, batch.Binary:
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, errShortValue(i)
		}
		c.AppendBytes(b[n : n+int(l) : n+int(l)])
		return b[n+int(l):], nil
	case batch.Struct:
		rest, err := decodeRow(b, c.Children)
		if err != nil {
			return nil, err
		}
		c.AppendStruct()
		return rest, nil
	case batch.Array, batch.Map:
		cnt, n := binary.Uvarint(b)
		// Every element takes at least one bitmap bit: a count above the
		// remaining bits is damage, not a reason to allocate.
		if n <= 0 || cnt > 8*uint64(len(b)-n) {
			return nil, errShortValue(i)
		}
		b = b[n:]
		for j, ch := range c.Children {
			var err error
			if b, err = decodeRange(b, ch, int(cnt)); err != nil {
				return nil, err
			}
			if j == 0 && c.Type.Class() == batch.Map {
				for e := ch.Len - int(cnt); e < ch.Len; e++ {
					if ch.IsNull(e) {
						return nil, fmt.Errorf("state: a map key is null")
					}
				}
			}
		}
		c.AppendArray()
		return b, nil
	}
	return nil, fmt.Errorf("state: value encoding does not support %s", c.Type)
}

func errShortValue(i int) error { return fmt.Errorf("state: value truncated at column %d", i) }
