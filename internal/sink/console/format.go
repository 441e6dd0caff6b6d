package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// DefaultNumRows is how many rows a batch shows by default (Spark's 20).
const DefaultNumRows = 20

// DefaultTruncate is the cell width used when truncate is "true".
const DefaultTruncate = 20

// minColWidth is the narrowest column Spark's show draws.
const minColWidth = 3

// FormatCell renders one cell the way Spark 4's Dataset.show does. v follows
// batch.Column.Value's convention (nil for null; Timestamp as micros since
// the epoch, Date as days since the epoch, both int64); loc is the time
// zone for timestamps (nil means UTC).
func FormatCell(k batch.Kind, v any, loc *time.Location) string {
	if v == nil {
		return "NULL"
	}
	switch k {
	case batch.Boolean:
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b)
		}
	case batch.Int, batch.Long:
		if n, ok := v.(int64); ok {
			return strconv.FormatInt(n, 10)
		}
	case batch.Double:
		if f, ok := v.(float64); ok {
			return sparktext.FormatDouble(f)
		}
	case batch.String:
		switch s := v.(type) {
		case string:
			return s
		case []byte:
			return string(s)
		}
	case batch.Binary:
		switch b := v.(type) {
		case []byte:
			return formatBinary(b)
		case string:
			return formatBinary([]byte(b))
		}
	case batch.Timestamp:
		if n, ok := v.(int64); ok {
			return formatTimestamp(n, loc)
		}
	case batch.Date:
		if n, ok := v.(int64); ok {
			return string(sparktext.AppendDate(nil, n))
		}
	case batch.Null:
		return "NULL"
	}
	if k.IsNested() {
		return string(appendNested(nil, k, v, loc))
	}
	// A value that does not match its kind: show it rather than fail.
	return toString(v)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return sparktext.FormatDouble(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// cellAt renders cell i of column c without boxing it into an interface.
func cellAt(c *batch.Column, i int, loc *time.Location) string {
	if c.IsNull(i) {
		return "NULL"
	}
	switch c.Type {
	case batch.Boolean:
		return strconv.FormatBool(c.Bools[i])
	case batch.Int, batch.Long:
		return strconv.FormatInt(c.Ints[i], 10)
	case batch.Double:
		return sparktext.FormatDouble(c.Floats[i])
	case batch.String:
		return string(c.Bytes[i])
	case batch.Binary:
		return formatBinary(c.Bytes[i])
	case batch.Timestamp:
		return formatTimestamp(c.Ints[i], loc)
	case batch.Date:
		return string(sparktext.AppendDate(nil, c.Ints[i]))
	}
	if c.Type.IsNested() {
		return string(appendNested(nil, c.Type, c.Value(i), loc))
	}
	return "NULL"
}

const hexDigits = "0123456789ABCDEF"

// formatBinary renders bytes as Spark 4 shows binary: "[48 65 6C]".
func formatBinary(b []byte) string {
	var sb strings.Builder
	sb.Grow(3*len(b) + 2)
	sb.WriteByte('[')
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&0xf])
	}
	sb.WriteByte(']')
	return sb.String()
}

// formatTimestamp renders micros since the epoch as a cast to string
// does: "yyyy-MM-dd HH:mm:ss[.ffffff]" in loc (nil: UTC), trailing
// fraction zeros removed.
func formatTimestamp(micros int64, loc *time.Location) string {
	return string(sparktext.AppendTimestamp(nil, micros, loc))
}

// appendNested renders a struct, array or map value (as batch.Column.Value
// returns it) as Spark 4's show does (its ToPrettyString): structs as
// "{1, a}", arrays as "[1, 2]", maps as "{a -> 1, b -> 2}", nested nulls as
// NULL, every element in its own kind's pretty form.
func appendNested(dst []byte, k batch.Kind, v any, loc *time.Location) []byte {
	elem := func(dst []byte, k batch.Kind, v any) []byte {
		if v == nil {
			return append(dst, "NULL"...)
		}
		if k.IsNested() {
			return appendNested(dst, k, v, loc)
		}
		return append(dst, FormatCell(k, v, loc)...)
	}
	switch k.Class() {
	case batch.Struct:
		sv, ok := v.(batch.StructValue)
		if !ok {
			break
		}
		dst = append(dst, '{')
		for i, f := range k.Fields() {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			var x any
			if i < len(sv.Values) {
				x = sv.Values[i]
			}
			dst = elem(dst, f.Type, x)
		}
		return append(dst, '}')
	case batch.Array:
		xs, ok := v.([]any)
		if !ok {
			break
		}
		dst = append(dst, '[')
		for i, x := range xs {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = elem(dst, k.Elem(), x)
		}
		return append(dst, ']')
	case batch.Map:
		m, ok := v.(batch.MapValue)
		if !ok {
			break
		}
		dst = append(dst, '{')
		for i := range m.Keys {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = elem(dst, k.KeyType(), m.Keys[i])
			dst = append(dst, " -> "...)
			var x any
			if i < len(m.Values) {
				x = m.Values[i]
			}
			dst = elem(dst, k.ValueType(), x)
		}
		return append(dst, '}')
	}
	return append(dst, toString(v)...)
}

// escapeMeta replaces control characters that would break the table's
// layout with their backslash escapes, as Spark's show does.
func escapeMeta(s string) string {
	if !strings.ContainsAny(s, "\n\r\t\f\b\v\a") {
		return s
	}
	var sb strings.Builder
	for _, r := range s {
		switch r {
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case '\f':
			sb.WriteString(`\f`)
		case '\b':
			sb.WriteString(`\b`)
		case '\v':
			sb.WriteString(`\v`)
		case '\a':
			sb.WriteString(`\a`)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// truncateCell applies show's truncation to an escaped cell: with width > 0,
// a cell longer than width runes keeps its first width-3 runes plus "..."
// (just the first width runes when width < 4).
func truncateCell(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	keep := width - 3
	suffix := "..."
	if width < 4 {
		keep, suffix = width, ""
	}
	n := 0
	for i := range s {
		if n == keep {
			return s[:i] + suffix
		}
		n++
	}
	return s + suffix
}

// prepareCell is what show does to each data cell before layout.
func prepareCell(s string, truncate int) string {
	return truncateCell(escapeMeta(s), truncate)
}

// renderTable appends a show-style table to sb: header, separators, rows
// (already escaped and truncated) and, when hasMore, the footer
// "only showing top numRows rows". truncate > 0 right-aligns cells.
func renderTable(sb *strings.Builder, header []string, rows [][]string, hasMore bool, numRows, truncate int) {
	widths := make([]int, len(header))
	hdr := make([]string, len(header))
	for i, h := range header {
		hdr[i] = escapeMeta(h)
		widths[i] = max(minColWidth, utf8.RuneCountInString(hdr[i]))
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	sep := func() {
		sb.WriteByte('+')
		for _, w := range widths {
			sb.WriteString(strings.Repeat("-", w))
			sb.WriteByte('+')
		}
		sb.WriteByte('\n')
	}
	line := func(cells []string) {
		sb.WriteByte('|')
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if truncate > 0 {
				sb.WriteString(pad)
				sb.WriteString(c)
			} else {
				sb.WriteString(c)
				sb.WriteString(pad)
			}
			sb.WriteByte('|')
		}
		sb.WriteByte('\n')
	}
	sep()
	line(hdr)
	sep()
	for _, r := range rows {
		line(r)
	}
	sep()
	if hasMore {
		unit := "rows"
		if numRows == 1 {
			unit = "row"
		}
		sb.WriteString("only showing top " + strconv.Itoa(numRows) + " " + unit + "\n")
	}
}

// FormatTable renders rows as Spark's Dataset.show(numRows, truncate) does
// and returns the text (each line ends in "\n"; Spark's show adds one more
// empty line when printing). rows hold Go values as batch.Batch.Row returns
// them; only the first numRows are shown and the footer appears when there
// are more. truncate is the cell width (0 = no truncation, cells
// left-aligned); loc is the time zone for timestamps (nil = UTC).
func FormatTable(schema batch.Schema, rows [][]any, numRows, truncate int, loc *time.Location) string {
	numRows = max(numRows, 0)
	shown := rows[:min(len(rows), numRows)]
	cells := make([][]string, len(shown))
	for r, row := range shown {
		cells[r] = make([]string, len(schema.Fields))
		for i, f := range schema.Fields {
			var v any
			if i < len(row) {
				v = row[i]
			}
			cells[r][i] = prepareCell(FormatCell(f.Type, v, loc), truncate)
		}
	}
	var sb strings.Builder
	renderTable(&sb, schema.Names(), cells, len(rows) > numRows, numRows, truncate)
	return sb.String()
}

// FormatBatch is FormatTable over the rows of a batch.
func FormatBatch(b *batch.Batch, numRows, truncate int, loc *time.Location) string {
	numRows = max(numRows, 0)
	n := min(b.N, numRows)
	cells := make([][]string, n)
	for r := 0; r < n; r++ {
		cells[r] = make([]string, len(b.Columns))
		for i, c := range b.Columns {
			cells[r][i] = prepareCell(cellAt(c, r, loc), truncate)
		}
	}
	var sb strings.Builder
	renderTable(&sb, b.Schema.Names(), cells, b.N > numRows, numRows, truncate)
	return sb.String()
}
