package file

import (
	"strconv"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparkjson"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// appendJSONRow appends row r of cols as one JSON object and a newline, the
// way Spark's JSON writer does (see package sparkjson: fields in order,
// nulls omitted, timestamps in the writer's default timestampFormat, binary
// as base64, structs, arrays and maps as JSON objects and arrays).
func appendJSONRow(dst []byte, names [][]byte, cols []*batch.Column, r int) []byte {
	return append(sparkjson.AppendRow(dst, names, cols, r), '\n')
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
// nested columns are refused before writing starts (Spark's CSV source does
// not support them either).
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
