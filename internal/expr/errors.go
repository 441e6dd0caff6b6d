package expr

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/internal/options"
)

// Error is a syntax or analysis error located in an expression's source
// text. Its message names the line and column (both 1-based, the column
// counted in characters) and, when the source is known, renders the
// offending line with a caret under the position:
//
//	syntax error at 1:15: expected a type name but found 'FROM'
//	CAST(value AS FROM)
//	              ^
type Error struct {
	// Kind is "syntax error" or "analysis error".
	Kind string
	// Msg describes the problem without position information.
	Msg string
	// Src is the expression text.
	Src string
	// Offset is the byte offset of the problem in Src, or -1 when the
	// position is unknown (for example when compiling a Node without its
	// source); the message then has no position or caret.
	Offset int
}

// Error renders the message, position and caret line.
func (e *Error) Error() string {
	if e.Offset < 0 || e.Offset > len(e.Src) {
		return e.Kind + ": " + e.Msg
	}
	line, col, text, pad := locate(e.Src, e.Offset)
	return fmt.Sprintf("%s at %d:%d: %s\n%s\n%s^", e.Kind, line, col, e.Msg, text, pad)
}

// Short renders the message and position on one line, without the source
// and caret (for tools that print one line per problem).
func (e *Error) Short() string {
	if e.Offset < 0 || e.Offset > len(e.Src) {
		return e.Kind + ": " + e.Msg
	}
	line, col, _, _ := locate(e.Src, e.Offset)
	return fmt.Sprintf("%s at %d:%d: %s", e.Kind, line, col, e.Msg)
}

// locate returns the 1-based line and column of byte offset off in src, the
// text of that line and the whitespace that puts a caret under the column.
func locate(src string, off int) (line, col int, text, pad string) {
	start := strings.LastIndexByte(src[:off], '\n') + 1
	end := strings.IndexByte(src[off:], '\n')
	if end < 0 {
		end = len(src)
	} else {
		end += off
	}
	line = strings.Count(src[:start], "\n") + 1
	col = utf8.RuneCountInString(src[start:off]) + 1
	before, after := src[start:off], strings.TrimRight(src[off:end], "\r")
	// A long line (a generated expression can be megabytes on one line) is
	// clipped to a window around the caret.
	const side = 60
	if n := utf8.RuneCountInString(before); n > side {
		before = "…" + string([]rune(before)[n-side:])
	}
	if utf8.RuneCountInString(after) > side {
		after = string([]rune(after)[:side]) + "…"
	}
	var b strings.Builder
	for _, r := range before {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	return line, col, before + after, b.String()
}

// posError is an analysis error produced while compiling a node; the public
// entry points attach the source text and turn it into an *Error.
type posError struct {
	pos int
	msg string
}

func (e *posError) Error() string { return e.msg }

func errAt(pos int, format string, args ...any) error {
	return &posError{pos: pos, msg: fmt.Sprintf(format, args...)}
}

// withSource converts an error from compile into an *Error that renders src
// with a caret. Errors that already carry a position are left as they are.
func withSource(err error, src string) error {
	if err == nil {
		return nil
	}
	if pe, ok := err.(*posError); ok {
		return &Error{Kind: "analysis error", Msg: pe.msg, Src: src, Offset: pe.pos}
	}
	return err
}

// closest returns the candidate nearest to name, or "" when none is close
// enough to be a plausible typo (options.Suggest, the one implementation of
// "did you mean").
func closest(name string, candidates []string) string {
	return options.Suggest(name, candidates)
}

// quoteList renders names as `a`, `b`, `c`.
func quoteList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = quoteIdent(n, true)
	}
	return strings.Join(out, ", ")
}
