package report

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Table is a table of text cells.
type Table struct {
	Header []string
	Rows   [][]string
	// Right lists the columns to right-align (numbers).
	Right []int
}

// AddRow appends a row and returns the table.
func (t *Table) AddRow(cells ...string) *Table {
	t.Rows = append(t.Rows, cells)
	return t
}

func (t *Table) right(col int) bool {
	for _, c := range t.Right {
		if c == col {
			return true
		}
	}
	return false
}

// Markdown renders the table in GitHub-flavoured Markdown; '|' in cells is
// escaped.
func (t *Table) Markdown() string {
	var sb strings.Builder
	row := func(cells []string) {
		sb.WriteString("|")
		for i := range t.Header {
			c := ""
			if i < len(cells) {
				c = strings.ReplaceAll(cells[i], "|", `\|`)
			}
			sb.WriteString(" " + c + " |")
		}
		sb.WriteString("\n")
	}
	row(t.Header)
	sb.WriteString("|")
	for i := range t.Header {
		if t.right(i) {
			sb.WriteString("---:|")
		} else {
			sb.WriteString("---|")
		}
	}
	sb.WriteString("\n")
	for _, r := range t.Rows {
		row(r)
	}
	return sb.String()
}

// Text renders the table in aligned columns for a terminal.
func (t *Table) Text() string {
	widths := make([]int, len(t.Header))
	all := append([][]string{t.Header}, t.Rows...)
	for _, r := range all {
		for i := range widths {
			if i < len(r) {
				widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
			}
		}
	}
	var sb strings.Builder
	for n, r := range all {
		for i, w := range widths {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			pad := strings.Repeat(" ", w-utf8.RuneCountInString(c))
			if i > 0 {
				sb.WriteString("  ")
			}
			if t.right(i) {
				sb.WriteString(pad + c)
			} else if i < len(widths)-1 {
				sb.WriteString(c + pad)
			} else {
				sb.WriteString(c)
			}
		}
		sb.WriteString("\n")
		if n == 0 {
			for i, w := range widths {
				if i > 0 {
					sb.WriteString("  ")
				}
				sb.WriteString(strings.Repeat("-", w))
			}
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

// Doc accumulates a Markdown document.
type Doc struct {
	sb strings.Builder
}

// Heading adds a heading of level 1–6.
func (d *Doc) Heading(level int, format string, args ...any) {
	level = min(max(level, 1), 6)
	fmt.Fprintf(&d.sb, "%s %s\n\n", strings.Repeat("#", level), fmt.Sprintf(format, args...))
}

// Para adds a paragraph.
func (d *Doc) Para(format string, args ...any) {
	fmt.Fprintf(&d.sb, "%s\n\n", fmt.Sprintf(format, args...))
}

// Bullets adds a bullet list.
func (d *Doc) Bullets(items ...string) {
	for _, it := range items {
		fmt.Fprintf(&d.sb, "- %s\n", it)
	}
	d.sb.WriteString("\n")
}

// Table adds a table.
func (d *Doc) Table(t *Table) {
	d.sb.WriteString(t.Markdown())
	d.sb.WriteString("\n")
}

// Image adds an image with a link to its vector version, e.g.
// Image("rates", "charts/p1-rates.png", "charts/p1-rates.svg").
func (d *Doc) Image(alt, png, svg string) {
	fmt.Fprintf(&d.sb, "![%s](%s)  \n[SVG](%s)\n\n", alt, png, svg)
}

// Code adds a fenced code block.
func (d *Doc) Code(lang, text string) {
	fmt.Fprintf(&d.sb, "```%s\n%s\n```\n\n", lang, strings.TrimRight(text, "\n"))
}

// String returns the document.
func (d *Doc) String() string { return d.sb.String() }

// WriteFile writes the document to path.
func (d *Doc) WriteFile(path string) error {
	if err := os.WriteFile(path, []byte(d.sb.String()), 0o644); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}

// Number formats a count with thousands separators: 1234567 → "1,234,567".
func Number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// Float formats v with prec decimals, "n/a" when NaN, "∞" when infinite.
func Float(v float64, prec int) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// Seconds formats seconds for people: "0.42 s", "12.3 s", "3m20s".
func Seconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "n/a"
	case math.IsInf(s, 1):
		return "never"
	case s < 1:
		return strconv.FormatFloat(s, 'f', 2, 64) + " s"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	}
	return (time.Duration(math.Round(s)) * time.Second).String()
}

// Bytes formats a byte count in MiB (or KiB below 1 MiB), "n/a" when < 0.
func Bytes(b int64) string {
	switch {
	case b < 0:
		return "n/a"
	case b < 1<<20:
		return strconv.FormatFloat(float64(b)/1024, 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}
