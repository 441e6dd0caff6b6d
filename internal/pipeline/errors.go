package pipeline

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is one problem found in a pipeline file, tied to the file and line it
// came from. Its text is "file:line: message" (or "line N: message" when the
// file has no name).
type Error struct {
	// File is the name the pipeline was parsed under; empty if unknown.
	File string
	// Line is the 1-based line the problem is on; 0 if it has no line.
	Line int
	// Column is the 1-based column of the key or value at fault; 0 if
	// unknown. Error does not show it (see Pos).
	Column int
	// Err is the problem itself.
	Err error
}

// Error returns the message prefixed with the file and line.
func (e *Error) Error() string {
	prefix := position(e.File, e.Line)
	if prefix == "" {
		return e.Err.Error()
	}
	return prefix + ": " + e.Err.Error()
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem Parse found, ordered by line. Parse reports all
// of them at once so a user can fix a file in one pass.
type ErrorList []*Error

// Error returns one problem per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual errors, so errors.As finds an *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// position formats "file:line", "file", "line N" or "".
func position(file string, line int) string {
	switch {
	case file != "" && line > 0:
		return file + ":" + strconv.Itoa(line)
	case file != "":
		return file
	case line > 0:
		return "line " + strconv.Itoa(line)
	}
	return ""
}

// Position returns "file:line" for a line of this pipeline file (or
// "line N" when the file has no name), for callers that report problems
// found after parsing, e.g. an option a source rejects.
func (f *File) Position(line int) string {
	return position(f.Path, line)
}

// Errorf returns an *Error at line of this file; format and args are as for
// fmt.Errorf, so %w wraps.
func (f *File) Errorf(line int, format string, args ...any) error {
	return &Error{File: f.Path, Line: line, Err: fmt.Errorf(format, args...)}
}

// ErrorAt returns an *Error at line and column of this file.
func (f *File) ErrorAt(line, col int, err error) *Error {
	return &Error{File: f.Path, Line: line, Column: col, Err: err}
}

// Pos returns "file:line:col" (or as much of it as is known), the prefix
// of an editor-friendly message such as `sluice lint` prints.
func (e *Error) Pos() string {
	p := position(e.File, e.Line)
	if e.Line > 0 && e.Column > 0 {
		p += ":" + strconv.Itoa(e.Column)
	}
	return p
}
