// Package sparkjson is the one home of JSON as Spark reads and writes it
// for rows: the generator behind the JSON file sink and to_json (Spark's
// JacksonGenerator), and the parser behind from_json (Spark's JacksonParser
// with its PERMISSIVE semantics).
//
// # Writing
//
// AppendRow writes a row as one JSON object and AppendValue one cell, the
// way Spark's generator does with its default options:
//
//   - struct fields in order, null fields omitted (ignoreNullFields) at
//     every level; array elements and map values that are null written as
//     null;
//   - numbers as Java prints them (sparktext.AppendDouble), NaN and the
//     infinities as the strings "NaN", "Infinity", "-Infinity";
//   - timestamps as strings in the writer's default timestampFormat
//     (yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX], UTC in sluice), dates as
//     yyyy-MM-dd, binary as base64;
//   - map keys as the key's text (Java's toString: a string as is, numbers
//     as numbers; Spark writes a date or timestamp key as its internal
//     day or microsecond count and sluice does the same; a binary key, which
//     Spark writes as a JVM object address, is written as base64);
//   - strings escaped as Jackson escapes them: ", \ and control characters,
//     with invalid UTF-8 replaced by U+FFFD; '/' and non-ASCII kept.
//
// The encoders append to a byte slice and allocate nothing else.
package sparkjson

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// AppendString appends s as a JSON string. Invalid UTF-8 is replaced by
// U+FFFD (as a JVM decoding the bytes would); '/', '<', '>' and '&' are kept
// as they are, as Jackson keeps them.
func AppendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				const hex = "0123456789ABCDEF"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// FieldNames returns each name as a JSON string followed by nothing, ready
// for AppendRow.
func FieldNames(names []string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = AppendString(nil, []byte(n))
	}
	return out
}

// present reports whether cell r of c is written: not null (a nil String
// or Binary slice counts as null).
func present(c *batch.Column, r int) bool {
	if c.IsNull(r) {
		return false
	}
	if c.Bytes != nil && c.Bytes[r] == nil {
		return false
	}
	return true
}

// AppendRow appends row r of cols as one JSON object (no newline): fields
// in order, null fields omitted. names are the field names as FieldNames
// renders them.
func AppendRow(dst []byte, names [][]byte, cols []*batch.Column, r int) []byte {
	dst = append(dst, '{')
	first := true
	for i, c := range cols {
		if !present(c, r) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, names[i]...)
		dst = append(dst, ':')
		dst = AppendValue(dst, c, r)
	}
	return append(dst, '}')
}

// AppendValue appends cell r of c as a JSON value; a null cell is null.
func AppendValue(dst []byte, c *batch.Column, r int) []byte {
	if !present(c, r) {
		return append(dst, "null"...)
	}
	switch c.Type.Class() {
	case batch.Boolean:
		return strconv.AppendBool(dst, c.Bools[r])
	case batch.Int, batch.Long:
		return strconv.AppendInt(dst, c.Ints[r], 10)
	case batch.Double:
		f := c.Floats[r]
		if math.IsNaN(f) || math.IsInf(f, 0) {
			dst = append(dst, '"')
			dst = sparktext.AppendDouble(dst, f)
			return append(dst, '"')
		}
		return sparktext.AppendDouble(dst, f)
	case batch.String:
		return AppendString(dst, c.Bytes[r])
	case batch.Binary:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, c.Bytes[r])
		return append(dst, '"')
	case batch.Date:
		dst = append(dst, '"')
		dst = sparktext.AppendDate(dst, c.Ints[r])
		return append(dst, '"')
	case batch.Timestamp:
		dst = append(dst, '"')
		dst = sparktext.AppendWriterTimestamp(dst, c.Ints[r], time.UTC)
		return append(dst, '"')
	case batch.Struct:
		dst = append(dst, '{')
		first := true
		for j, f := range c.Type.Fields() {
			ch := c.Children[j]
			if !present(ch, r) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = AppendString(dst, stringBytes(f.Name))
			dst = append(dst, ':')
			dst = AppendValue(dst, ch, r)
		}
		return append(dst, '}')
	case batch.Array:
		from, to := c.Range(r)
		dst = append(dst, '[')
		for e := from; e < to; e++ {
			if e > from {
				dst = append(dst, ',')
			}
			dst = AppendValue(dst, c.Children[0], e)
		}
		return append(dst, ']')
	case batch.Map:
		from, to := c.Range(r)
		dst = append(dst, '{')
		for e := from; e < to; e++ {
			if e > from {
				dst = append(dst, ',')
			}
			dst = appendMapKey(dst, c.Children[0], e)
			dst = append(dst, ':')
			dst = AppendValue(dst, c.Children[1], e)
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

// appendMapKey writes a map key as the JSON field name Spark writes: the
// key's Java toString.
func appendMapKey(dst []byte, c *batch.Column, r int) []byte {
	switch c.Type.Class() {
	case batch.String:
		return AppendString(dst, c.Bytes[r])
	case batch.Boolean:
		return AppendString(dst, strconv.AppendBool(nil, c.Bools[r]))
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		return AppendString(dst, strconv.AppendInt(nil, c.Ints[r], 10))
	case batch.Double:
		return AppendString(dst, sparktext.AppendDouble(nil, c.Floats[r]))
	case batch.Binary:
		return AppendString(dst, base64.StdEncoding.AppendEncode(nil, c.Bytes[r]))
	}
	// A struct key is named as Spark's InternalRow.toString prints it,
	// "[1,a]"; other nested keys by their JSON text.
	if c.Type.Class() == batch.Struct {
		name := []byte{'['}
		for j, ch := range c.Children {
			if j > 0 {
				name = append(name, ',')
			}
			if ch.IsNull(r) {
				name = append(name, "null"...)
				continue
			}
			var v []byte
			if ch.Type == batch.String || ch.Type == batch.Binary {
				v = ch.Bytes[r]
			} else {
				v = appendMapKey(nil, ch, r)
				v = v[1 : len(v)-1] // unquote: keys of flat kinds hold no escapes
			}
			name = append(name, v...)
		}
		return AppendString(dst, append(name, ']'))
	}
	return AppendString(dst, AppendValue(nil, c, r))
}

// stringBytes views s as bytes without copying, for read-only use.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
