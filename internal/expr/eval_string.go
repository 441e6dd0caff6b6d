package expr

import (
	"bytes"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
)

var emptyBytes = []byte{}

// buildCaseMap is upper/lower. ASCII strings are mapped byte-wise into one
// shared buffer; others go through Unicode case mapping.
func buildCaseMap(up bool) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x, err := stringArg(name, 0, args[0])
		if err != nil {
			return cexpr{}, err
		}
		return cexpr{ev: &fnEval{k: batch.String, args: []evaluator{x.ev}, null: x.ev.nullable(),
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				c := cols[0]
				out := &batch.Column{Type: batch.String, Len: n, Valid: c.Valid, Bytes: make([][]byte, n)}
				total := 0
				for _, s := range c.Bytes {
					total += len(s)
				}
				a := newArena(total)
				for i, s := range c.Bytes {
					if isNullAt(c, i) {
						continue
					}
					m := a.start(len(s))
					a.buf = appendCase(a.buf, s, up)
					out.Bytes[i] = a.end(m)
				}
				return out, nil
			}}}, nil
	}
}

// appendCase appends s in upper or lower case to dst. ASCII is mapped
// byte-wise; anything else goes through Unicode simple case mapping.
func appendCase(dst, s []byte, up bool) []byte {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			if up {
				return append(dst, bytes.ToUpper(s)...)
			}
			return append(dst, bytes.ToLower(s)...)
		}
	}
	for _, c := range s {
		switch {
		case up && c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case !up && c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// buildLength is length (characters of a string, bytes of a binary) and
// octet_length (bytes).
func buildLength(octets bool) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x, err := bytesArg(name, 0, args[0])
		if err != nil {
			return cexpr{}, err
		}
		chars := !octets && x.kind() == batch.String
		return cexpr{ev: &fnEval{k: batch.Int, args: []evaluator{x.ev}, null: x.ev.nullable(),
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				c := cols[0]
				out := &batch.Column{Type: batch.Int, Len: n, Ints: make([]int64, n)}
				if c.Valid != nil {
					out.Valid = c.Valid
				}
				for i, s := range c.Bytes {
					if chars {
						out.Ints[i] = int64(utf8.RuneCount(s))
					} else {
						out.Ints[i] = int64(len(s))
					}
				}
				return out, nil
			}}}, nil
	}
}

// buildSubstring is substring/substr(str, pos[, len]) with Spark's rules:
// pos is 1-based, 0 means the start, a negative pos counts from the end;
// len defaults to "to the end" (Spark shows it as 2147483647 in names). The
// result is a sub-slice of the input: no copy.
func buildSubstring(name string, args []cexpr, _ *Call) (cexpr, error) {
	x, err := bytesArg(name, 0, args[0])
	if err != nil {
		return cexpr{}, err
	}
	pos, err := intArg(name, 1, args[1])
	if err != nil {
		return cexpr{}, err
	}
	all := []cexpr{x, pos}
	lenSQL := fmt.Sprint(math.MaxInt32)
	if len(args) == 3 {
		l, err := intArg(name, 2, args[2])
		if err != nil {
			return cexpr{}, err
		}
		all = append(all, l)
		lenSQL = l.sql
	}
	k := x.kind()
	chars := k == batch.String
	sql := name + "(" + x.sql + ", " + pos.sql + ", " + lenSQL + ")"
	return cexpr{sql: sql, ev: &fnEval{k: k, args: evs(all), null: anyNullable(all),
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			s, p := cols[0], cols[1]
			return rowwise(k, n, cols, func(i int, out *batch.Column) bool {
				length := int64(math.MaxInt32)
				if len(cols) == 3 {
					length = cols[2].Ints[i]
				}
				out.Bytes[i] = substringSQL(s.Bytes[i], p.Ints[i], length, chars)
				return true
			}), nil
		}}}, nil
}

// substringSQL implements Spark's substring positions on characters
// (chars) or bytes. A positive or zero pos only walks the characters it
// needs, so taking a prefix of a long string is cheap.
func substringSQL(s []byte, pos, length int64, chars bool) []byte {
	if pos < 0 && chars && -pos <= int64(len(s)) && asciiTail(s, int(-pos)) {
		// The last -pos bytes are ASCII, so they are the last -pos
		// characters (no multi-byte sequence takes in an ASCII byte):
		// the start is found without counting the string's characters.
		if length <= 0 {
			return emptyBytes
		}
		from := len(s) + int(pos)
		to := from + runeOffset(s[from:], length)
		return s[from:to:to]
	}
	return substringGeneral(s, pos, length, chars)
}

// substringGeneral is substringSQL without its fast path.
func substringGeneral(s []byte, pos, length int64, chars bool) []byte {
	if pos < 0 {
		total := int64(len(s))
		if chars {
			total = int64(utf8.RuneCount(s))
		}
		pos += total + 1 // the same position counted from the start
		if pos < 1 {
			// Spark clamps the start to the first character but keeps the
			// end where it was: start+length counted from the original start.
			length += pos - 1
			pos = 1
		}
	}
	start := max(pos-1, 0)
	if length <= 0 {
		return emptyBytes
	}
	if !chars {
		if start >= int64(len(s)) {
			return emptyBytes
		}
		end := min(start+length, int64(len(s)))
		return s[start:end:end]
	}
	from := runeOffset(s, start)
	if from >= len(s) {
		return emptyBytes
	}
	to := from + runeOffset(s[from:], length)
	return s[from:to:to]
}

// asciiTail reports whether the last n bytes of s are ASCII.
func asciiTail(s []byte, n int) bool {
	for _, c := range s[len(s)-n:] {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// runeOffset returns the byte offset just past the first n characters of s
// (len(s) when s is shorter).
func runeOffset(s []byte, n int64) int {
	if n >= int64(len(s)) {
		return len(s) // a character is at least one byte
	}
	off := 0
	for ; n > 0 && off < len(s); n-- {
		if s[off] < utf8.RuneSelf {
			off++
			continue
		}
		_, w := utf8.DecodeRune(s[off:])
		off += w
	}
	return off
}

// concatExprs is concat(...) and ||: NULL if any argument is NULL; BINARY
// when every argument is BINARY, STRING otherwise.
func concatExprs(name string, args []cexpr, pos int) (cexpr, error) {
	k := batch.String
	if len(args) > 0 {
		k = batch.Binary
		for _, a := range args {
			if a.kind() != batch.Binary {
				k = batch.String
			}
		}
	}
	for i := range args {
		if k == batch.String {
			a, err := stringArg(name, i, args[i])
			if err != nil {
				return cexpr{}, err
			}
			args[i] = a
		}
	}
	return cexpr{sql: callSQL(name, args), ev: &fnEval{k: k, args: evs(args), null: anyNullable(args),
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			out := &batch.Column{Type: k, Len: n, Bytes: make([][]byte, n)}
			out.Valid = andValid(n, cols...)
			total := 0
			for _, c := range cols {
				for _, s := range c.Bytes {
					total += len(s)
				}
			}
			a := newArena(total)
			for i := 0; i < n; i++ {
				if out.Valid != nil && !out.Valid[i] {
					continue
				}
				size := 0
				for _, c := range cols {
					size += len(c.Bytes[i])
				}
				m := a.start(size)
				for _, c := range cols {
					a.buf = append(a.buf, c.Bytes[i]...)
				}
				out.Bytes[i] = a.end(m)
			}
			return out, nil
		}}}, nil
}

// buildConcatWS is concat_ws(sep, ...): joins the non-null arguments with
// sep; NULL only when sep is NULL.
func buildConcatWS(name string, args []cexpr, _ *Call) (cexpr, error) {
	for i := range args {
		a, err := stringArg(name, i, args[i])
		if err != nil {
			return cexpr{}, err
		}
		args[i] = a
	}
	return cexpr{ev: &fnEval{k: batch.String, args: evs(args), null: args[0].ev.nullable(),
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			sep := cols[0]
			return rowwise(batch.String, n, cols[:1], func(i int, out *batch.Column) bool {
				var buf []byte
				first := true
				for _, c := range cols[1:] {
					if isNullAt(c, i) {
						continue
					}
					if !first {
						buf = append(buf, sep.Bytes[i]...)
					}
					first = false
					buf = append(buf, c.Bytes[i]...)
				}
				if buf == nil {
					buf = emptyBytes
				}
				out.Bytes[i] = buf
				return true
			}), nil
		}}}, nil
}

// buildTrim is trim/ltrim/rtrim, which remove space characters (U+0020)
// only, as Spark does. The result is a sub-slice: no copy.
func buildTrim(left, right bool) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		x, err := stringArg(name, 0, args[0])
		if err != nil {
			return cexpr{}, err
		}
		return cexpr{ev: &fnEval{k: batch.String, args: []evaluator{x.ev}, null: x.ev.nullable(),
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				c := cols[0]
				out := &batch.Column{Type: batch.String, Len: n, Valid: c.Valid, Bytes: make([][]byte, n)}
				for i, s := range c.Bytes {
					if isNullAt(c, i) {
						continue
					}
					if left {
						s = bytes.TrimLeft(s, " ")
					}
					if right {
						s = bytes.TrimRight(s, " ")
					}
					if s == nil {
						s = emptyBytes
					}
					out.Bytes[i] = s
				}
				return out, nil
			}}}, nil
	}
}

// buildReplace is replace(str, search[, replacement]); an empty search
// string leaves str unchanged.
func buildReplace(name string, args []cexpr, _ *Call) (cexpr, error) {
	for i := range args {
		a, err := stringArg(name, i, args[i])
		if err != nil {
			return cexpr{}, err
		}
		args[i] = a
	}
	return cexpr{ev: &fnEval{k: batch.String, args: evs(args), null: anyNullable(args),
		run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
			return rowwise(batch.String, n, cols, func(i int, out *batch.Column) bool {
				s, old := cols[0].Bytes[i], cols[1].Bytes[i]
				var repl []byte
				if len(cols) == 3 {
					repl = cols[2].Bytes[i]
				}
				if len(old) == 0 {
					out.Bytes[i] = s
				} else {
					out.Bytes[i] = bytes.ReplaceAll(s, old, repl)
				}
				return true
			}), nil
		}}}, nil
}

type matchKind uint8

const (
	matchContains matchKind = iota
	matchPrefix
	matchSuffix
)

// buildMatch is contains/startswith/endswith on strings or binaries.
func buildMatch(m matchKind) func(string, []cexpr, *Call) (cexpr, error) {
	return func(name string, args []cexpr, _ *Call) (cexpr, error) {
		for i := range args {
			a, err := bytesArg(name, i, args[i])
			if err != nil {
				return cexpr{}, err
			}
			args[i] = a
		}
		if args[0].kind() != args[1].kind() {
			args[0], args[1] = coerce(args[0], batch.String), coerce(args[1], batch.String)
		}
		return cexpr{ev: &fnEval{k: batch.Boolean, args: evs(args), null: anyNullable(args),
			run: func(n int, cols []*batch.Column, _ *EvalContext) (*batch.Column, error) {
				return rowwise(batch.Boolean, n, cols, func(i int, out *batch.Column) bool {
					s, t := cols[0].Bytes[i], cols[1].Bytes[i]
					switch m {
					case matchContains:
						out.Bools[i] = bytes.Contains(s, t)
					case matchPrefix:
						out.Bools[i] = bytes.HasPrefix(s, t)
					default:
						out.Bools[i] = bytes.HasSuffix(s, t)
					}
					return true
				}), nil
			}}}, nil
	}
}

// likeEval is [I]LIKE. A literal pattern is compiled once; a computed one
// is compiled per row.
type likeEval struct {
	x, pat evaluator
	escape rune
	fold   bool
	fixed  *likeMatcher
}

func (e *likeEval) kind() batch.Kind { return batch.Boolean }
func (e *likeEval) nullable() bool   { return e.x.nullable() || e.pat.nullable() }
func (e *likeEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	if e.fixed != nil {
		if x.Type == batch.Null {
			return nullCol(batch.Boolean, b.N), nil
		}
		out := &batch.Column{Type: batch.Boolean, Len: b.N, Valid: x.Valid, Bools: make([]bool, b.N)}
		for i, s := range x.Bytes {
			if !isNullAt(x, i) {
				out.Bools[i] = e.fixed.match(s)
			}
		}
		return out, nil
	}
	p, err := e.pat.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	var last []byte
	var m *likeMatcher
	var perr error
	out := rowwise(batch.Boolean, b.N, []*batch.Column{x, p}, func(i int, out *batch.Column) bool {
		if m == nil || !bytes.Equal(last, p.Bytes[i]) {
			last = p.Bytes[i]
			var cerr error
			m, cerr = compileLike(string(last), e.escape, e.fold)
			if cerr != nil && perr == nil {
				perr = fmt.Errorf("invalid LIKE pattern %q: %w", last, cerr)
			}
		}
		if m == nil {
			return false
		}
		out.Bools[i] = m.match(x.Bytes[i])
		return true
	})
	if perr != nil {
		return nil, perr
	}
	return out, nil
}

// likeMatcher matches one compiled LIKE pattern.
type likeMatcher struct {
	// kind selects a fast path: exact, prefix, suffix, contains, or general.
	kind    int
	literal []byte
	toks    []likeTok
	fold    bool
}

const (
	likeGeneral = iota
	likeExact
	likePrefix
	likeSuffix
	likeContains
)

// likeTok is one pattern element: a literal rune, '_' (any one character)
// or '%' (any sequence).
type likeTok struct {
	r   rune
	any int // 0 literal, 1 '_', 2 '%'
}

// compileLike parses a LIKE pattern: % matches any sequence, _ any one
// character, and the escape character makes the next %, _ or escape
// character literal (Spark rejects escaping anything else).
func compileLike(p string, esc rune, fold bool) (*likeMatcher, error) {
	var toks []likeTok
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == esc:
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("the escape character is not allowed to end the pattern")
			}
			nx := rs[i+1]
			if nx != '%' && nx != '_' && nx != esc {
				return nil, fmt.Errorf("the escape character is not allowed to precede %q", nx)
			}
			toks = append(toks, likeTok{r: nx})
			i++
		case r == '%':
			if len(toks) == 0 || toks[len(toks)-1].any != 2 {
				toks = append(toks, likeTok{any: 2})
			}
		case r == '_':
			toks = append(toks, likeTok{any: 1})
		default:
			toks = append(toks, likeTok{r: r})
		}
	}
	m := &likeMatcher{toks: toks, fold: fold}
	if fold {
		for i := range m.toks {
			m.toks[i].r = unicode.ToLower(m.toks[i].r)
		}
		return m, nil
	}
	// Fast paths for literal text with % only at the ends.
	lo, hi := 0, len(toks)
	leading := lo < hi && toks[lo].any == 2
	if leading {
		lo++
	}
	trailing := hi > lo && toks[hi-1].any == 2
	if trailing {
		hi--
	}
	var lit []rune
	for _, t := range toks[lo:hi] {
		if t.any != 0 {
			return m, nil
		}
		lit = append(lit, t.r)
	}
	m.literal = []byte(string(lit))
	switch {
	case leading && trailing:
		m.kind = likeContains
	case leading:
		m.kind = likeSuffix
	case trailing:
		m.kind = likePrefix
	default:
		m.kind = likeExact
	}
	return m, nil
}

func (m *likeMatcher) match(s []byte) bool {
	switch m.kind {
	case likeExact:
		return bytes.Equal(s, m.literal)
	case likePrefix:
		return bytes.HasPrefix(s, m.literal)
	case likeSuffix:
		return bytes.HasSuffix(s, m.literal)
	case likeContains:
		return bytes.Contains(s, m.literal)
	}
	return m.general(s)
}

// general is wildcard matching with single-star backtracking, linear in
// practice and O(len(s)·len(pattern)) at worst.
func (m *likeMatcher) general(s []byte) bool {
	p := m.toks
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			t := p[pi]
			switch t.any {
			case 2:
				starP, starS = pi, si
				pi++
				continue
			case 1:
				_, w := utf8.DecodeRune(s[si:])
				si += w
				pi++
				continue
			default:
				r, w := utf8.DecodeRune(s[si:])
				if m.fold {
					r = unicode.ToLower(r)
				}
				if r == t.r {
					si += w
					pi++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, w := utf8.DecodeRune(s[starS:])
		starS += w
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi].any == 2 {
		pi++
	}
	return pi == len(p)
}
