package console

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
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
			return FormatDouble(f)
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
			return time.Unix(n*86400, 0).UTC().Format(time.DateOnly)
		}
	case batch.Headers:
		if hs, ok := v.([]batch.Header); ok {
			return formatHeaders(hs)
		}
	case batch.Null:
		return "NULL"
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
		return FormatDouble(x)
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
		return FormatDouble(c.Floats[i])
	case batch.String:
		return string(c.Bytes[i])
	case batch.Binary:
		return formatBinary(c.Bytes[i])
	case batch.Timestamp:
		return formatTimestamp(c.Ints[i], loc)
	case batch.Date:
		return time.Unix(c.Ints[i]*86400, 0).UTC().Format(time.DateOnly)
	case batch.Headers:
		return formatHeaders(c.Headers[i])
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

// formatTimestamp renders micros since the epoch as
// "yyyy-MM-dd HH:mm:ss[.ffffff]" with trailing fraction zeros removed.
func formatTimestamp(micros int64, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	t := time.UnixMicro(micros).In(loc)
	s := t.Format(time.DateTime)
	if us := t.Nanosecond() / 1000; us != 0 {
		frac := strings.TrimRight(strconv.Itoa(1000000 + us)[1:], "0")
		s += "." + frac
	}
	return s
}

// formatHeaders renders Kafka headers as Spark shows an
// array<struct<key,value>>: "[{k1, [76 31]}, {k2, NULL}]".
func formatHeaders(hs []batch.Header) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, h := range hs {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('{')
		sb.WriteString(h.Key)
		sb.WriteString(", ")
		if h.Value == nil {
			sb.WriteString("NULL")
		} else {
			sb.WriteString(formatBinary(h.Value))
		}
		sb.WriteByte('}')
	}
	sb.WriteByte(']')
	return sb.String()
}

// FormatDouble renders f like Java's Double.toString: plain notation with at
// least one fractional digit for 1e-3 <= |f| < 1e7 ("1.0", "0.001",
// "1234567.5"), computerized scientific notation otherwise ("1.0E10",
// "1.0E-4"), and "NaN", "Infinity", "-Infinity". Digits are the shortest
// (but at least two) that read back as f, as in Java 19+; older JVMs
// occasionally print a longer form.
func FormatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign = "-"
		f = -f
	}
	// Shortest digits d1.d2d3...e±X.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if len(digits) == 1 {
		// Java prints at least two significant digits, picking the
		// two-digit decimal nearest to f that still reads back as f
		// (Double.MIN_VALUE is "4.9E-324", not "5.0E-324").
		two := strconv.FormatFloat(f, 'e', 1, 64)
		if back, err := strconv.ParseFloat(two, 64); err == nil && back == f {
			mant, expStr, _ = strings.Cut(two, "e")
			exp, _ = strconv.Atoi(expStr)
			digits = strings.TrimRight(strings.Replace(mant, ".", "", 1), "0")
		}
	}
	if f >= 1e-3 && f < 1e7 {
		if exp >= 0 {
			intLen := exp + 1
			for len(digits) < intLen {
				digits += "0"
			}
			frac := digits[intLen:]
			if frac == "" {
				frac = "0"
			}
			return sign + digits[:intLen] + "." + frac
		}
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	frac := digits[1:]
	if frac == "" {
		frac = "0"
	}
	return sign + digits[:1] + "." + frac + "E" + strconv.Itoa(exp)
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
