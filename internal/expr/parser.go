package expr

import (
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/batch"
)

// Binding powers, lowest first, following Spark's grammar: OR < AND < NOT <
// comparisons and predicates (IS, IN, BETWEEN, LIKE) < + - || < * / % DIV <
// unary minus < postfix ::.
const (
	bpNone = iota
	bpOr
	bpAnd
	bpNot
	bpCmp
	bpAdd
	bpMul
	bpUnary
	bpPostfix
)

// MaxDepth is how deeply an expression may nest: parentheses, operators,
// function calls, CAST and CASE each add a level, and a chain of one
// operator such as a + b + c adds one level per operator. Chains of AND or
// OR are exempt: they are parsed into a balanced tree, as Spark's parser
// does, so even 300,000 terms are 19 levels deep. Deeper expressions are
// refused (Parse, Compile) instead of exhausting the stack, and the limit
// keeps every tree walk linear in the expression's size.
const MaxDepth = 1000

// reserved are words that cannot start an expression or serve as an
// implicit alias; they are part of the surrounding syntax.
var reserved = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "IS": true, "IN": true, "BETWEEN": true, "LIKE": true,
	"ILIKE": true, "RLIKE": true, "REGEXP": true, "AS": true, "FROM": true, "WHERE": true, "WHEN": true,
	"THEN": true, "ELSE": true, "END": true, "CASE": true, "DIV": true, "ESCAPE": true,
	"DISTINCT": true, "NULL": true, "TRUE": true, "FALSE": true, "INTERVAL": true, "EXISTS": true,
}

// noParenFuncs may be written without parentheses.
var noParenFuncs = map[string]bool{"CURRENT_TIMESTAMP": true, "CURRENT_DATE": true}

// isKeyword reports whether an identifier must be back-quoted to be read as
// a column name.
func isKeyword(name string) bool {
	u := strings.ToUpper(name)
	return reserved[u] || noParenFuncs[u] || u == "CAST" || u == "TRY_CAST"
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

// Parse parses one expression, optionally followed by an alias (`AS name`
// or just `name`), or a lone `*`.
//
// Supported syntax (keywords and function names are case-insensitive):
// column names, back-quoted names (`my col`); literals 42 (INT, or BIGINT
// when it does not fit), 42L (BIGINT), 1.5, 1e3 and 1.5D (DOUBLE), 'text'
// and "text" with backslash escapes and doubled quotes, TRUE, FALSE, NULL;
// CAST(x AS type), TRY_CAST(x AS type) and x::type; + - * / % DIV, unary -
// and +, || (concatenation); = == != <> < <= > >= <=>; AND, OR, NOT and !;
// IS [NOT] NULL|TRUE|FALSE, IS [NOT] DISTINCT FROM; [NOT] IN (list),
// [NOT] BETWEEN a AND b, [NOT] LIKE|ILIKE pattern [ESCAPE 'c']; CASE; function
// calls; parentheses; -- and /* */ comments. An expression nested deeper
// than MaxDepth is refused.
func Parse(src string) (Node, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	n, err := p.parseItem()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		if t.kind == tOp && t.text == "," {
			return nil, p.errAt(t, "expected end of input but found ','; give one expression per string")
		}
		return nil, p.errAt(t, "expected end of input but found %s", t.describe())
	}
	return n, nil
}

// ParseList parses a comma-separated select list such as
// "a, upper(b) AS B, *".
func ParseList(src string) ([]Node, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	var out []Node
	for {
		n, err := p.parseItem()
		if err != nil {
			return nil, err
		}
		out = append(out, n)
		t := p.peek()
		if t.kind == tEOF {
			return out, nil
		}
		if !p.isOp(t, ",") {
			return nil, p.errAt(t, "expected ',' or end of input but found %s", t.describe())
		}
		p.i++
	}
}

func newParser(src string) (*parser, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	return &parser{src: src, toks: toks}, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(t token, op string) bool { return t.kind == tOp && t.text == op }

func (p *parser) isKw(t token, kw string) bool {
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return syntaxErr(p.src, t.pos, format, args...)
}

func (p *parser) expectOp(op string) (token, error) {
	t := p.peek()
	if !p.isOp(t, op) {
		return t, p.errAt(t, "expected '%s' but found %s", op, t.describe())
	}
	return p.next(), nil
}

func (p *parser) expectKw(kw string) error {
	t := p.peek()
	if !p.isKw(t, kw) {
		return p.errAt(t, "expected %s but found %s", kw, t.describe())
	}
	p.next()
	return nil
}

// parseItem parses a select item: `*`, or an expression with an optional
// alias.
func (p *parser) parseItem() (Node, error) {
	if t := p.peek(); p.isOp(t, "*") {
		p.next()
		if nt := p.peek(); nt.kind != tEOF && !p.isOp(nt, ",") {
			return nil, p.errAt(nt, "expected ',' or end of input after '*' but found %s", nt.describe())
		}
		return &Star{At: t.pos}, nil
	}
	x, err := p.parseExpr(bpNone)
	if err != nil {
		return nil, err
	}
	if at := tooDeepAt(x); at >= 0 {
		return nil, syntaxErr(p.src, at, "%s", tooDeep)
	}
	t := p.peek()
	switch {
	case p.isKw(t, "AS"):
		p.next()
		nt := p.next()
		if nt.kind != tIdent && nt.kind != tQIdent {
			return nil, p.errAt(nt, "expected an alias name after AS but found %s", nt.describe())
		}
		return &Alias{X: x, Name: nt.val, At: nt.pos}, nil
	case t.kind == tQIdent || (t.kind == tIdent && !reserved[strings.ToUpper(t.text)]):
		p.next()
		if p.isOp(p.peek(), "(") {
			return nil, p.errAt(t, "unexpected %s before '('; a function call cannot follow an expression", t.describe())
		}
		return &Alias{X: x, Name: t.val, At: t.pos}, nil
	}
	return x, nil
}

// parseExpr is the Pratt loop: a prefix expression followed by infix and
// postfix operators that bind tighter than minBP.
func (p *parser) parseExpr(minBP int) (Node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > MaxDepth {
		return nil, p.errAt(p.peek(), "%s", tooDeep)
	}
	left, err := p.prefix()
	if err != nil {
		return nil, err
	}
	for {
		bp := p.infixBP()
		if bp <= minBP {
			return left, nil
		}
		if bp == bpAnd || bp == bpOr {
			left, err = p.logicChain(left, bp)
		} else {
			left, err = p.infix(left, bp)
		}
		if err != nil {
			return nil, err
		}
	}
}

// logicChain parses the rest of `x AND y AND z …` (or OR) after its first
// term and builds the balanced tree Spark's parser builds for a chain of one
// logical operator: ((x AND y) AND (z AND w)). AND and OR are associative
// (also with NULLs), so the result is the same as the left-deep tree, but a
// chain of any length is only log2(n) levels deep.
func (p *parser) logicChain(first Node, bp int) (Node, error) {
	op := strings.ToUpper(p.peek().text)
	terms := []Node{first}
	var opAt []int // opAt[i] is the operator between terms[i] and terms[i+1]
	for p.infixBP() == bp {
		t := p.next()
		right, err := p.parseExpr(bp)
		if err != nil {
			return nil, err
		}
		terms = append(terms, right)
		opAt = append(opAt, t.pos)
	}
	var build func(lo, hi int) Node
	build = func(lo, hi int) Node {
		if lo == hi {
			return terms[lo]
		}
		mid := lo + (hi-lo)/2
		return &Binary{Op: op, L: build(lo, mid), R: build(mid+1, hi), OpAt: opAt[mid]}
	}
	return build(0, len(terms)-1), nil
}

// infixBP is the binding power of the operator at the current token, or -1
// when the token does not continue an expression.
func (p *parser) infixBP() int {
	t := p.peek()
	switch t.kind {
	case tOp:
		switch t.text {
		case "=", "==", "!=", "<>", "<", "<=", ">", ">=", "<=>":
			return bpCmp
		case "+", "-", "||":
			return bpAdd
		case "*", "/", "%":
			return bpMul
		case "::":
			return bpPostfix
		case "&", "|", "^":
			return bpCmp // rejected in infix with a clear message
		}
	case tIdent:
		switch strings.ToUpper(t.text) {
		case "OR":
			return bpOr
		case "AND":
			return bpAnd
		case "IS", "IN", "BETWEEN", "LIKE", "ILIKE", "RLIKE", "REGEXP":
			return bpCmp
		case "DIV":
			return bpMul
		case "NOT":
			switch strings.ToUpper(p.peekAt(1).text) {
			case "IN", "BETWEEN", "LIKE", "ILIKE", "RLIKE", "REGEXP":
				if p.peekAt(1).kind == tIdent {
					return bpCmp
				}
			}
		}
	}
	return -1
}

func (p *parser) infix(left Node, bp int) (Node, error) {
	t := p.next()
	if t.kind == tOp {
		switch t.text {
		case "::":
			to, err := p.parseType()
			if err != nil {
				return nil, err
			}
			return &Cast{X: left, To: to, At: left.Pos()}, nil
		case "&", "|", "^":
			return nil, p.errAt(t, "bitwise operator '%s' is not supported", t.text)
		}
		right, err := p.parseExpr(bp)
		if err != nil {
			return nil, err
		}
		return &Binary{Op: t.text, L: left, R: right, OpAt: t.pos}, nil
	}
	kw := strings.ToUpper(t.text)
	not := false
	if kw == "NOT" {
		not = true
		t = p.next()
		kw = strings.ToUpper(t.text)
	}
	switch kw {
	case "DIV":
		right, err := p.parseExpr(bp)
		if err != nil {
			return nil, err
		}
		return &Binary{Op: kw, L: left, R: right, OpAt: t.pos}, nil
	case "IS":
		return p.parseIs(left)
	case "IN":
		return p.parseIn(left, not, t)
	case "BETWEEN":
		lo, err := p.parseExpr(bpCmp)
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("AND"); err != nil {
			return nil, err
		}
		hi, err := p.parseExpr(bpCmp)
		if err != nil {
			return nil, err
		}
		return &Between{X: left, Lo: lo, Hi: hi, Not: not, OpAt: t.pos}, nil
	case "LIKE", "ILIKE":
		if nt := p.peek(); p.isKw(nt, "ANY") || p.isKw(nt, "ALL") || p.isKw(nt, "SOME") {
			return nil, p.errAt(nt, "%s %s is not supported", kw, strings.ToUpper(nt.text))
		}
		pat, err := p.parseExpr(bpCmp)
		if err != nil {
			return nil, err
		}
		lk := &Like{X: left, Pattern: pat, Not: not, Op: kw, OpAt: t.pos}
		if p.isKw(p.peek(), "ESCAPE") {
			p.next()
			et := p.next()
			if et.kind != tString || len([]rune(et.val)) != 1 {
				return nil, p.errAt(et, "ESCAPE needs a one-character string but found %s", et.describe())
			}
			lk.Escape = et.val
		}
		return lk, nil
	}
	return nil, p.errAt(t, "%s is not supported", kw)
}

func (p *parser) parseIs(left Node) (Node, error) {
	not := false
	if p.isKw(p.peek(), "NOT") {
		p.next()
		not = true
	}
	t := p.next()
	switch strings.ToUpper(t.text) {
	case "NULL", "UNKNOWN":
		if t.kind == tIdent {
			return &IsNull{X: left, Not: not}, nil
		}
	case "TRUE", "FALSE":
		if t.kind == tIdent {
			return &IsBool{X: left, Not: not, Value: strings.EqualFold(t.text, "TRUE")}, nil
		}
	case "DISTINCT":
		if t.kind == tIdent {
			if err := p.expectKw("FROM"); err != nil {
				return nil, err
			}
			right, err := p.parseExpr(bpCmp)
			if err != nil {
				return nil, err
			}
			return &IsDistinct{L: left, R: right, Not: not}, nil
		}
	}
	return nil, p.errAt(t, "expected NULL, TRUE, FALSE or DISTINCT FROM after IS but found %s", t.describe())
}

func (p *parser) parseIn(left Node, not bool, opTok token) (Node, error) {
	if _, err := p.expectOp("("); err != nil {
		return nil, err
	}
	if t := p.peek(); p.isKw(t, "SELECT") {
		return nil, p.errAt(t, "IN (subquery) is not supported")
	}
	list, err := p.parseArgs()
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, p.errAt(opTok, "IN needs at least one value")
	}
	return &In{X: left, List: list, Not: not, OpAt: opTok.pos}, nil
}

// parseArgs parses "expr, expr, ...)" after an opening parenthesis,
// consuming the closing one; it returns an empty list for ")".
func (p *parser) parseArgs() ([]Node, error) {
	var list []Node
	if p.isOp(p.peek(), ")") {
		p.next()
		return list, nil
	}
	for {
		a, err := p.parseExpr(bpNone)
		if err != nil {
			return nil, err
		}
		list = append(list, a)
		t := p.next()
		if p.isOp(t, ")") {
			return list, nil
		}
		if !p.isOp(t, ",") {
			return nil, p.errAt(t, "expected ',' or ')' but found %s", t.describe())
		}
	}
}

// parseAliasedArgs is parseArgs where each argument may be named:
// struct(a AS x, b).
func (p *parser) parseAliasedArgs() ([]Node, error) {
	var list []Node
	if p.isOp(p.peek(), ")") {
		p.next()
		return list, nil
	}
	for {
		a, err := p.parseExpr(bpNone)
		if err != nil {
			return nil, err
		}
		if p.isKw(p.peek(), "AS") {
			p.next()
			nt := p.next()
			if nt.kind != tIdent && nt.kind != tQIdent {
				return nil, p.errAt(nt, "expected a field name after AS but found %s", nt.describe())
			}
			a = &Alias{X: a, Name: nt.val, At: nt.pos}
		}
		list = append(list, a)
		t := p.next()
		if p.isOp(t, ")") {
			return list, nil
		}
		if !p.isOp(t, ",") {
			return nil, p.errAt(t, "expected ',' or ')' but found %s", t.describe())
		}
	}
}

// prefix parses a primary expression or a prefix operator application.
func (p *parser) prefix() (Node, error) {
	t := p.next()
	var n Node
	var err error
	switch t.kind {
	case tEOF:
		return nil, p.errAt(t, "expected an expression but found end of input")
	case tNumber:
		n, err = p.number(t, false)
	case tString:
		// Adjacent string literals concatenate, as in Spark: 'a' 'b' = 'ab'.
		var s strings.Builder
		s.WriteString(t.val)
		for p.peek().kind == tString {
			s.WriteString(p.next().val)
		}
		n = &Literal{Type: batch.String, Value: s.String(), At: t.pos}
	case tQIdent:
		if p.isOp(p.peek(), "(") {
			// A back-quoted function name, as Spark allows: `upper`(x).
			n, err = p.parseCall(t)
			if err != nil {
				return nil, err
			}
			break
		}
		n = &Ident{Name: t.val, At: t.pos}
	case tOp:
		switch t.text {
		case "(":
			n, err = p.parseExpr(bpNone)
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return p.postfixCheck(n)
		case "-":
			if nt := p.peek(); nt.kind == tNumber {
				p.next()
				n, err = p.number(nt, true)
				if err != nil {
					return nil, err
				}
				n.(*Literal).At = t.pos
				return p.postfixCheck(n)
			}
			x, err := p.parseExpr(bpUnary)
			if err != nil {
				return nil, err
			}
			return &Unary{Op: "-", X: x, At: t.pos}, nil
		case "+":
			x, err := p.parseExpr(bpUnary)
			if err != nil {
				return nil, err
			}
			return &Unary{Op: "+", X: x, At: t.pos}, nil
		case "!":
			x, err := p.parseExpr(bpNot)
			if err != nil {
				return nil, err
			}
			return &Unary{Op: "NOT", X: x, At: t.pos}, nil
		case "*":
			return nil, p.errAt(t, "'*' is only allowed as a whole select item")
		case "~":
			return nil, p.errAt(t, "bitwise operator '~' is not supported")
		}
		return nil, p.errAt(t, "expected an expression but found %s", t.describe())
	case tIdent:
		n, err = p.identOrKeyword(t)
		if n == nil || err != nil {
			return n, err
		}
	}
	if err != nil {
		return nil, err
	}
	return p.postfixCheck(n)
}

// postfixCheck parses the postfix operators that may follow a primary
// expression: field access `.name` and subscripts `[key]`, in any number
// and order (o.items[0].sku).
func (p *parser) postfixCheck(n Node) (Node, error) {
	for {
		t := p.peek()
		switch {
		case p.isOp(t, "."):
			nt := p.peekAt(1)
			if nt.kind != tIdent && nt.kind != tQIdent {
				return nil, p.errAt(nt, "expected a field name after '.' but found %s", nt.describe())
			}
			p.next()
			p.next()
			n = &Field{X: n, Name: nt.val, At: nt.pos}
		case p.isOp(t, "["):
			p.next()
			p.depth++
			key, err := p.parseExpr(bpNone)
			p.depth--
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp("]"); err != nil {
				return nil, err
			}
			n = &Subscript{X: n, Key: key, At: t.pos}
		default:
			return n, nil
		}
	}
}

func (p *parser) identOrKeyword(t token) (Node, error) {
	u := strings.ToUpper(t.text)
	switch u {
	case "NOT":
		x, err := p.parseExpr(bpNot)
		if err != nil {
			return nil, err
		}
		return &Unary{Op: "NOT", X: x, At: t.pos}, nil
	case "TRUE", "FALSE":
		return &Literal{Type: batch.Boolean, Value: u == "TRUE", At: t.pos}, nil
	case "NULL":
		return &Literal{Type: batch.Null, At: t.pos}, nil
	case "CASE":
		return p.parseCase(t)
	case "CAST", "TRY_CAST":
		if p.isOp(p.peek(), "(") {
			return p.parseCast(t, u == "TRY_CAST")
		}
	case "INTERVAL":
		return nil, p.errAt(t, "INTERVAL literals are not supported yet")
	case "EXISTS":
		return nil, p.errAt(t, "EXISTS (subquery) is not supported")
	}
	if p.isOp(p.peek(), "(") {
		return p.parseCall(t)
	}
	if reserved[u] {
		return nil, p.errAt(t, "expected an expression but found %s", t.describe())
	}
	if noParenFuncs[u] {
		return &Call{Name: t.text, NoParens: true, At: t.pos}, nil
	}
	return &Ident{Name: t.val, At: t.pos}, nil
}

// parseCall parses the argument list of a call to the function named by t,
// whose "(" is the next token.
func (p *parser) parseCall(t token) (Node, error) {
	p.next()
	if st := p.peek(); p.isOp(st, "*") && p.isOp(p.peekAt(1), ")") {
		// count(*): the aggregate of every row.
		p.next()
		p.next()
		return &Call{Name: t.val, Args: []Node{&Star{At: st.pos}}, At: t.pos}, nil
	}
	distinct := false
	if nt := p.peek(); p.isKw(nt, "DISTINCT") || p.isKw(nt, "ALL") {
		// count(DISTINCT x) parses so that the analyser can answer with
		// Spark's streaming error; ALL is the default.
		distinct = p.isKw(nt, "DISTINCT")
		p.next()
	}
	var args []Node
	var err error
	if strings.EqualFold(t.val, "struct") {
		args, err = p.parseAliasedArgs()
	} else {
		args, err = p.parseArgs()
	}
	if err != nil {
		return nil, err
	}
	return &Call{Name: t.val, Args: args, Distinct: distinct, At: t.pos}, nil
}

func (p *parser) parseCase(t token) (Node, error) {
	c := &Case{At: t.pos}
	if !p.isKw(p.peek(), "WHEN") {
		op, err := p.parseExpr(bpNone)
		if err != nil {
			return nil, err
		}
		c.Operand = op
	}
	for p.isKw(p.peek(), "WHEN") {
		p.next()
		cond, err := p.parseExpr(bpNone)
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("THEN"); err != nil {
			return nil, err
		}
		then, err := p.parseExpr(bpNone)
		if err != nil {
			return nil, err
		}
		c.Whens = append(c.Whens, When{Cond: cond, Then: then})
	}
	if len(c.Whens) == 0 {
		return nil, p.errAt(p.peek(), "expected WHEN but found %s", p.peek().describe())
	}
	if p.isKw(p.peek(), "ELSE") {
		p.next()
		e, err := p.parseExpr(bpNone)
		if err != nil {
			return nil, err
		}
		c.Else = e
	}
	if err := p.expectKw("END"); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *parser) parseCast(t token, try bool) (Node, error) {
	p.next() // (
	x, err := p.parseExpr(bpNone)
	if err != nil {
		return nil, err
	}
	if err := p.expectKw("AS"); err != nil {
		return nil, err
	}
	to, err := p.parseType()
	if err != nil {
		return nil, err
	}
	if _, err := p.expectOp(")"); err != nil {
		return nil, err
	}
	return &Cast{X: x, To: to, Try: try, At: t.pos}, nil
}

// parseType parses a type name for CAST or ::.
func (p *parser) parseType() (batch.Kind, error) {
	t := p.next()
	if t.kind != tIdent {
		return 0, p.errAt(t, "expected a type name but found %s", t.describe())
	}
	u := strings.ToUpper(t.text)
	if (u == "ARRAY" || u == "MAP" || u == "STRUCT") && (p.isOp(p.peek(), "<") || p.isOp(p.peek(), "<>")) {
		return p.parseNestedType(t, u)
	}
	k, ok := typeNames[u]
	switch {
	case ok:
	case unsupportedTypes[u]:
		return 0, p.errAt(t, "type %s is not supported; supported types: %s", u, supportedTypeList)
	case reserved[u]:
		return 0, p.errAt(t, "expected a type name but found %s", t.describe())
	default:
		names := make([]string, 0, len(typeNames))
		for n := range typeNames {
			names = append(names, n)
		}
		sort.Strings(names)
		msg := "unknown type " + u
		if s := closest(u, names); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return 0, p.errAt(t, "%s (supported types: %s)", msg, supportedTypeList)
	}
	if u == "VARCHAR" || u == "CHAR" {
		if _, err := p.expectOp("("); err != nil {
			return 0, err
		}
		if nt := p.next(); nt.kind != tNumber {
			return 0, p.errAt(nt, "expected a length but found %s", nt.describe())
		}
		if _, err := p.expectOp(")"); err != nil {
			return 0, err
		}
	}
	return k, nil
}

// parseNestedType parses the rest of ARRAY<type>, MAP<type, type> or
// STRUCT<name[:] type [NOT NULL] [COMMENT 'text'], ...> after its keyword t.
// Struct fields are nullable unless NOT NULL, arrays may contain nulls and
// maps null values, as in Spark's type syntax.
func (p *parser) parseNestedType(t token, u string) (batch.Kind, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > MaxDepth {
		return 0, p.errAt(t, "%s", tooDeep)
	}
	if p.isOp(p.peek(), "<>") {
		p.next()
		if u != "STRUCT" {
			return 0, p.errAt(t, "%s<> needs a type between the brackets", u)
		}
		return batch.StructOf(), nil
	}
	p.next() // <
	closeAngle := func() error {
		_, err := p.expectOp(">")
		return err
	}
	switch u {
	case "ARRAY":
		e, err := p.parseType()
		if err != nil {
			return 0, err
		}
		return batch.ArrayOf(e, true), closeAngle()
	case "MAP":
		k, err := p.parseType()
		if err != nil {
			return 0, err
		}
		if _, err := p.expectOp(","); err != nil {
			return 0, err
		}
		v, err := p.parseType()
		if err != nil {
			return 0, err
		}
		if k.Contains(batch.Map) {
			return 0, p.errAt(t, "a map key cannot be a map (%s)", k.SQL())
		}
		return batch.MapOf(k, v, true), closeAngle()
	}
	var fields []batch.Field
	for {
		nt := p.next()
		if nt.kind != tIdent && nt.kind != tQIdent {
			return 0, p.errAt(nt, "expected a field name but found %s", nt.describe())
		}
		if p.isOp(p.peek(), ":") {
			p.next()
		}
		ft, err := p.parseType()
		if err != nil {
			return 0, err
		}
		f := batch.Field{Name: nt.val, Type: ft, Nullable: true}
		if p.isKw(p.peek(), "NOT") {
			p.next()
			if err := p.expectKw("NULL"); err != nil {
				return 0, err
			}
			f.Nullable = false
		}
		if p.isKw(p.peek(), "COMMENT") {
			p.next()
			if ct := p.next(); ct.kind != tString {
				return 0, p.errAt(ct, "expected a string after COMMENT but found %s", ct.describe())
			}
		}
		fields = append(fields, f)
		if p.isOp(p.peek(), ",") {
			p.next()
			continue
		}
		if err := closeAngle(); err != nil {
			return 0, err
		}
		return batch.StructOf(fields...), nil
	}
}

// number converts a numeric token into a literal; neg applies a leading
// minus sign, which Spark treats as part of the literal (so -2147483648 is
// an INT).
func (p *parser) number(t token, neg bool) (Node, error) {
	text := t.text
	// The lexer only admits letter suffixes (L, D, S, Y, F, BD); an exponent
	// always ends in a digit, so trailing letters are the suffix.
	i := len(text)
	for i > 0 && (text[i-1] >= 'A' && text[i-1] <= 'Z' || text[i-1] >= 'a' && text[i-1] <= 'z') {
		i--
	}
	body, suffix := text[:i], strings.ToUpper(text[i:])
	if neg {
		body = "-" + body
	}
	isInt := !strings.ContainsAny(body, ".eE")
	switch suffix {
	case "L":
		if !isInt {
			return nil, p.errAt(t, "invalid BIGINT literal %s", text)
		}
		v, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, p.errAt(t, "BIGINT literal %s is out of range", body)
		}
		return &Literal{Type: batch.Long, Value: v, At: t.pos}, nil
	case "D":
		return p.double(t, body)
	case "":
		if isInt {
			v, err := strconv.ParseInt(body, 10, 64)
			if err == nil {
				if v >= math.MinInt32 && v <= math.MaxInt32 {
					return &Literal{Type: batch.Int, Value: v, At: t.pos}, nil
				}
				return &Literal{Type: batch.Long, Value: v, At: t.pos}, nil
			}
			// Spark would make a DECIMAL; sluice has none, so DOUBLE.
		}
		return p.double(t, body)
	}
	names := map[string]string{"S": "SMALLINT", "Y": "TINYINT", "F": "FLOAT", "BD": "DECIMAL"}
	return nil, p.errAt(t, "%s literals (suffix %s) are not supported", names[suffix], suffix)
}

func (p *parser) double(t token, body string) (Node, error) {
	v, err := strconv.ParseFloat(body, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return nil, p.errAt(t, "numeric literal %s is out of range for DOUBLE", body)
		}
		return nil, p.errAt(t, "invalid numeric literal %s", t.text)
	}
	return &Literal{Type: batch.Double, Value: v, At: t.pos}, nil
}
