package file

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// appendJSONString appends s as a JSON string. Invalid UTF-8 is replaced
// by U+FFFD (as a JVM decoding the bytes would); '/', '<', '>' and '&' are
// kept as they are, as Jackson keeps them.
func appendJSONString(dst, s []byte) []byte {
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

// appendJSONRow appends row r of cols as one JSON object and a newline, the
// way Spark's JSON writer does: fields in order, nulls omitted, timestamps
// in the writer's default timestampFormat (UTC, milliseconds:
// 2024-05-01T12:00:03.000Z), dates as yyyy-MM-dd, binary as base64,
// headers as [{"key":...,"value":base64}], doubles like Java with NaN and
// infinities as strings.
func appendJSONRow(dst []byte, names [][]byte, cols []*batch.Column, r int) []byte {
	dst = append(dst, '{')
	first := true
	for i, c := range cols {
		if c.IsNull(r) {
			continue
		}
		switch c.Type {
		case batch.String, batch.Binary:
			if c.Bytes[r] == nil {
				continue
			}
		case batch.Headers:
			if c.Headers[r] == nil {
				continue
			}
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, names[i]...)
		dst = append(dst, ':')
		switch c.Type {
		case batch.Boolean:
			dst = strconv.AppendBool(dst, c.Bools[r])
		case batch.Int, batch.Long:
			dst = strconv.AppendInt(dst, c.Ints[r], 10)
		case batch.Double:
			f := c.Floats[r]
			if math.IsNaN(f) || math.IsInf(f, 0) {
				dst = append(dst, '"')
				dst = sparktext.AppendDouble(dst, f)
				dst = append(dst, '"')
			} else {
				dst = sparktext.AppendDouble(dst, f)
			}
		case batch.String:
			dst = appendJSONString(dst, c.Bytes[r])
		case batch.Binary:
			dst = appendBase64(dst, c.Bytes[r])
		case batch.Date:
			dst = append(dst, '"')
			dst = sparktext.AppendDate(dst, c.Ints[r])
			dst = append(dst, '"')
		case batch.Timestamp:
			dst = append(dst, '"')
			dst = sparktext.AppendWriterTimestamp(dst, c.Ints[r], time.UTC)
			dst = append(dst, '"')
		case batch.Headers:
			dst = append(dst, '[')
			for k, h := range c.Headers[r] {
				if k > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"key":`...)
				dst = appendJSONString(dst, bytesOf(h.Key))
				if h.Value != nil {
					dst = append(dst, `,"value":`...)
					dst = appendBase64(dst, h.Value)
				}
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
	}
	return append(dst, '}', '\n')
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// csvNeedsQuote reports whether a CSV value must be quoted: it contains the
// separator, a quote, a backslash or a line break, or it is empty (an
// empty string is written as "" to tell it from null, as Spark does).
func csvNeedsQuote(s []byte, sep string) bool {
	if len(s) == 0 {
		return true
	}
	for i, c := range s {
		switch c {
		case '"', '\\', '\n', '\r':
			return true
		}
		if c == sep[0] && (len(sep) == 1 || string(s[i:min(i+len(sep), len(s))]) == sep) {
			return true
		}
	}
	return false
}

// appendCSVField appends s, quoted when needed; quotes inside are escaped
// with a backslash (Spark's default escape character).
func appendCSVField(dst, s []byte, sep string) []byte {
	if !csvNeedsQuote(s, sep) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// appendCSVRow appends row r of cols as one CSV line: nulls as empty
// fields, values as in appendJSONRow but unquoted unless needed. Binary and
// Headers columns are refused before writing starts (Spark's CSV source
// does not support them either).
func appendCSVRow(dst, scratch []byte, cols []*batch.Column, r int, sep string) ([]byte, []byte) {
	for i, c := range cols {
		if i > 0 {
			dst = append(dst, sep...)
		}
		if c.IsNull(r) {
			continue
		}
		switch c.Type {
		case batch.Boolean:
			dst = strconv.AppendBool(dst, c.Bools[r])
		case batch.Int, batch.Long:
			dst = strconv.AppendInt(dst, c.Ints[r], 10)
		case batch.Double:
			scratch = sparktext.AppendDouble(scratch[:0], c.Floats[r])
			dst = appendCSVField(dst, scratch, sep)
		case batch.String:
			if c.Bytes[r] == nil {
				continue
			}
			dst = appendCSVField(dst, c.Bytes[r], sep)
		case batch.Date:
			dst = sparktext.AppendDate(dst, c.Ints[r])
		case batch.Timestamp:
			scratch = sparktext.AppendWriterTimestamp(scratch[:0], c.Ints[r], time.UTC)
			dst = appendCSVField(dst, scratch, sep)
		}
	}
	return append(dst, '\n'), scratch
}
