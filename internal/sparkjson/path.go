package sparkjson

import (
	"math/big"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/sparktext"
)

// # JSON paths
//
// Path is get_json_object's path, Spark's (Hive's) JSONPath subset:
// $ followed by .name, ['name'], [n] (0-based) and [*], and the child
// wildcards .* and ['*']. Eval follows Spark's evaluation exactly: a
// string found at the end of a path without array wildcards is returned
// unquoted, anything else as compact JSON (numbers re-printed as Jackson
// copies them: 1.50 becomes 1.5); [*] collects the matches into a JSON
// array, or returns the single match as is; a null value or a path that
// does not match gives no result (NULL), and so does invalid JSON.
// Single quotes and unescaped control characters are accepted, as Spark
// enables them for Hive compatibility; NaN and Infinity are not.

type pathOp uint8

const (
	opKey pathOp = iota
	opNamed
	opSubscript
	opWildcard
	opIndex
)

type pathStep struct {
	op    pathOp
	name  string
	index int64
}

// Path is a parsed JSON path.
type Path struct{ steps []pathStep }

// ParsePath parses a JSON path; ok is false for a path Spark does not
// accept (get_json_object then returns NULL).
func ParsePath(s string) (Path, bool) {
	if !strings.HasPrefix(s, "$") {
		return Path{}, false
	}
	var steps []pathStep
	for i := 1; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], ".*"):
			steps = append(steps, pathStep{op: opWildcard})
			i += 2
		case strings.HasPrefix(s[i:], "['*']"):
			steps = append(steps, pathStep{op: opWildcard})
			i += 5
		case s[i] == '.':
			j := i + 1
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			if j == i+1 {
				return Path{}, false
			}
			steps = append(steps, pathStep{op: opKey}, pathStep{op: opNamed, name: s[i+1 : j]})
			i = j
		case strings.HasPrefix(s[i:], "['"):
			end := strings.IndexByte(s[i+2:], '\'')
			if end <= 0 || !strings.HasPrefix(s[i+2+end:], "']") {
				return Path{}, false
			}
			steps = append(steps, pathStep{op: opKey}, pathStep{op: opNamed, name: s[i+2 : i+2+end]})
			i += 2 + end + 2
		case strings.HasPrefix(s[i:], "[*]"):
			steps = append(steps, pathStep{op: opSubscript}, pathStep{op: opWildcard})
			i += 3
		case s[i] == '[':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j == i+1 || j >= len(s) || s[j] != ']' {
				return Path{}, false
			}
			n, err := strconv.ParseInt(s[i+1:j], 10, 64)
			if err != nil {
				return Path{}, false
			}
			steps = append(steps, pathStep{op: opSubscript}, pathStep{op: opIndex, index: n})
			i = j + 1
		default:
			return Path{}, false
		}
	}
	return Path{steps: steps}, true
}

// jnode is a parsed JSON value.
type jnode struct {
	kind  byte // 'o' object, 'a' array, 's' string, 'n' number, 't', 'f', 'z' (null)
	str   []byte
	keys  [][]byte
	vals  []*jnode
	isInt bool
}

// Eval evaluates the path on a JSON document and appends the result to
// dst; ok is false when there is none (NULL).
func (p Path) Eval(dst, doc []byte) (out []byte, ok bool) {
	d := &domParser{lx: lexer{b: doc}}
	d.lx.skipWS()
	root := d.value(0)
	if d.lx.err != "" || root == nil {
		return dst, false
	}
	w := &jwriter{buf: dst}
	if !w.eval(root, styleRaw, p.steps) {
		return dst, false
	}
	return w.buf, true
}

type style uint8

const (
	styleRaw style = iota
	styleQuoted
	styleFlatten
)

// jwriter writes JSON the way Jackson's generator does, placing commas
// between the values of an array.
type jwriter struct {
	buf   []byte
	stack []bool // per open array: a value was written
}

func (w *jwriter) sep() {
	if n := len(w.stack); n > 0 {
		if w.stack[n-1] {
			w.buf = append(w.buf, ',')
		}
		w.stack[n-1] = true
	}
}

func (w *jwriter) startArray() {
	w.sep()
	w.buf = append(w.buf, '[')
	w.stack = append(w.stack, false)
}

func (w *jwriter) endArray() {
	w.buf = append(w.buf, ']')
	w.stack = w.stack[:len(w.stack)-1]
}

// copyValue writes a value as compact JSON.
func (w *jwriter) copyValue(n *jnode) {
	w.sep()
	w.buf = appendNode(w.buf, n)
}

func appendNode(dst []byte, n *jnode) []byte {
	switch n.kind {
	case 'o':
		dst = append(dst, '{')
		for i, k := range n.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			dst = appendNode(dst, n.vals[i])
		}
		return append(dst, '}')
	case 'a':
		dst = append(dst, '[')
		for i, v := range n.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendNode(dst, v)
		}
		return append(dst, ']')
	case 's':
		return AppendString(dst, n.str)
	case 'n':
		return appendNumber(dst, n)
	case 't':
		return append(dst, "true"...)
	case 'f':
		return append(dst, "false"...)
	}
	return append(dst, "null"...)
}

// appendNumber re-prints a number as Jackson copies it: integers as their
// value, other numbers as a Java double.
func appendNumber(dst []byte, n *jnode) []byte {
	if n.isInt {
		if v, err := strconv.ParseInt(string(n.str), 10, 64); err == nil {
			return strconv.AppendInt(dst, v, 10)
		}
		var b big.Int
		if _, ok := b.SetString(string(n.str), 10); ok {
			return b.Append(dst, 10)
		}
		return append(dst, n.str...)
	}
	v, _ := strconv.ParseFloat(string(n.str), 64)
	return sparktext.AppendDouble(dst, v)
}

// eval is Spark's evaluatePath on a parsed value.
func (w *jwriter) eval(n *jnode, st style, path []pathStep) bool {
	if len(path) == 0 {
		switch {
		case n.kind == 's' && st == styleRaw:
			w.buf = append(w.buf, n.str...)
			return true
		case n.kind == 'a' && st == styleFlatten:
			dirty := false
			for _, e := range n.vals {
				dirty = w.eval(e, styleFlatten, nil) || dirty
			}
			return dirty
		}
		w.copyValue(n)
		return true
	}
	switch {
	case n.kind == 'o' && path[0].op == opKey:
		rest := path[1:]
		for i, k := range n.keys {
			if len(rest) == 0 {
				break
			}
			switch rest[0].op {
			case opNamed:
				if string(k) != rest[0].name {
					continue
				}
				if n.vals[i].kind == 'z' {
					continue
				}
				if w.eval(n.vals[i], st, rest[1:]) {
					return true
				}
			case opWildcard:
				if w.eval(n.vals[i], st, rest[1:]) {
					return true
				}
			}
		}
		return false
	case n.kind == 'a' && len(path) >= 4 && path[0].op == opSubscript && path[1].op == opWildcard &&
		path[2].op == opSubscript && path[3].op == opWildcard:
		// Hive's non-structure-preserving double wildcard.
		dirty := false
		w.startArray()
		for _, e := range n.vals {
			dirty = w.eval(e, styleFlatten, path[4:]) || dirty
		}
		w.endArray()
		return dirty
	case n.kind == 'a' && len(path) >= 2 && path[0].op == opSubscript && path[1].op == opWildcard && st != styleQuoted:
		next := styleQuoted
		if st == styleFlatten {
			next = styleFlatten
		}
		inner := &jwriter{buf: []byte{'['}, stack: []bool{false}}
		count := 0
		for _, e := range n.vals {
			if inner.eval(e, next, path[2:]) {
				count++
			}
		}
		inner.buf = append(inner.buf, ']')
		switch {
		case count > 1:
			w.sep()
			w.buf = append(w.buf, inner.buf...)
		case count == 1:
			w.sep()
			w.buf = append(w.buf, inner.buf[1:len(inner.buf)-1]...)
		}
		return count > 0
	case n.kind == 'a' && len(path) >= 2 && path[0].op == opSubscript && path[1].op == opWildcard:
		dirty := false
		w.startArray()
		for _, e := range n.vals {
			dirty = w.eval(e, styleQuoted, path[2:]) || dirty
		}
		w.endArray()
		return dirty
	case n.kind == 'a' && len(path) >= 2 && path[0].op == opSubscript && path[1].op == opIndex:
		i := path[1].index
		if i >= int64(len(n.vals)) {
			return false
		}
		rest := path[2:]
		if len(rest) >= 2 && rest[0].op == opSubscript && rest[1].op == opWildcard {
			return w.eval(n.vals[i], styleQuoted, rest)
		}
		return w.eval(n.vals[i], st, rest)
	}
	return false
}

// domParser builds jnodes with the lexer, in get_json_object's dialect:
// single quotes and raw control characters in strings allowed, NaN and
// Infinity not.
type domParser struct {
	lx lexer
}

func (d *domParser) value(depth int) *jnode {
	lx := &d.lx
	lx.skipWS()
	if lx.i >= len(lx.b) {
		lx.syntax("unexpected end of input")
		return nil
	}
	if depth >= maxDepth {
		lx.syntax("nested too deeply")
		return nil
	}
	switch c := lx.b[lx.i]; c {
	case '{':
		lx.i++
		n := &jnode{kind: 'o'}
		lx.skipWS()
		if lx.peek() == '}' {
			lx.i++
			return n
		}
		for {
			lx.skipWS()
			if q := lx.peek(); q != '"' && q != '\'' {
				lx.syntax("expected a field name")
				return nil
			}
			k, ok := d.str()
			if !ok || !lx.expect(':') {
				return nil
			}
			v := d.value(depth + 1)
			if v == nil {
				return nil
			}
			n.keys, n.vals = append(n.keys, k), append(n.vals, v)
			more, ok := lx.next('}')
			if !ok {
				return nil
			}
			if !more {
				return n
			}
		}
	case '[':
		lx.i++
		n := &jnode{kind: 'a'}
		lx.skipWS()
		if lx.peek() == ']' {
			lx.i++
			return n
		}
		for {
			v := d.value(depth + 1)
			if v == nil {
				return nil
			}
			n.vals = append(n.vals, v)
			more, ok := lx.next(']')
			if !ok {
				return nil
			}
			if !more {
				return n
			}
		}
	case '"', '\'':
		s, ok := d.str()
		if !ok {
			return nil
		}
		return &jnode{kind: 's', str: s}
	case 't':
		if lx.literal("true") {
			return &jnode{kind: 't'}
		}
		return nil
	case 'f':
		if lx.literal("false") {
			return &jnode{kind: 'f'}
		}
		return nil
	case 'n':
		if lx.literal("null") {
			return &jnode{kind: 'z'}
		}
		return nil
	}
	num, isInt, special, ok := lx.number()
	if !ok {
		return nil
	}
	if special != 0 {
		lx.syntax("NaN and Infinity are not JSON numbers")
		return nil
	}
	return &jnode{kind: 'n', str: num, isInt: isInt}
}

// str reads a string, allowing raw control characters.
func (d *domParser) str() ([]byte, bool) {
	lx := &d.lx
	q := lx.b[lx.i]
	start := lx.i + 1
	esc := false
	for j := start; j < len(lx.b); j++ {
		switch c := lx.b[j]; {
		case c == q:
			lx.i = j + 1
			raw := lx.b[start:j]
			if !esc {
				return raw, true
			}
			out, ok := unescape(nil, raw)
			if !ok {
				lx.syntax("bad escape in a string")
			}
			return out, ok
		case c == '\\':
			esc = true
			j++
		}
	}
	lx.i = len(lx.b)
	lx.syntax("unterminated string")
	return nil, false
}
