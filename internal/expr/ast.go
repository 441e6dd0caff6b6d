package expr

import (
	"math"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/batch"
)

// Node is a parsed, unresolved expression. String renders it as canonical,
// fully parenthesised SQL that parses back to an identical tree, which makes
// it the AST dump used by tests.
type Node interface {
	// Pos is the byte offset in the source where the node starts.
	Pos() int
	String() string
	node()
}

// Ident is a column reference.
type Ident struct {
	Name string
	At   int
}

// Literal is a constant. Value is nil (NULL), bool, int64 (Int, Long) or
// float64 (Double) or string (String).
type Literal struct {
	Type  batch.Kind
	Value any
	At    int
}

// Star is `*` in a select list: every input column.
type Star struct{ At int }

// Alias names a select item: `expr AS name` or `expr name`.
type Alias struct {
	X    Node
	Name string
	At   int // position of the alias name
}

// Unary is a prefix operator: "-", "+" or "NOT".
type Unary struct {
	Op string
	X  Node
	At int
}

// Binary is an infix operator. Op is the canonical spelling: arithmetic
// "+ - * / % DIV", "||", comparisons "= == != <> < <= > >= <=>", "AND", "OR".
type Binary struct {
	Op   string
	L, R Node
	OpAt int // position of the operator
}

// IsNull is `X IS [NOT] NULL`.
type IsNull struct {
	X   Node
	Not bool
}

// IsBool is `X IS [NOT] TRUE|FALSE`.
type IsBool struct {
	X     Node
	Not   bool
	Value bool
}

// IsDistinct is `L IS [NOT] DISTINCT FROM R`.
type IsDistinct struct {
	L, R Node
	Not  bool
}

// In is `X [NOT] IN (List...)`.
type In struct {
	X    Node
	List []Node
	Not  bool
	OpAt int
}

// Between is `X [NOT] BETWEEN Lo AND Hi`.
type Between struct {
	X, Lo, Hi Node
	Not       bool
	OpAt      int
}

// Like is `X [NOT] LIKE|ILIKE Pattern [ESCAPE 'c']`.
type Like struct {
	X, Pattern Node
	Not        bool
	Op         string // "LIKE" or "ILIKE"
	Escape     string // "" when no ESCAPE clause was given
	OpAt       int
}

// When is one WHEN ... THEN ... branch of a Case.
type When struct {
	Cond, Then Node
}

// Case is `CASE [Operand] WHEN ... THEN ... [ELSE ...] END`.
type Case struct {
	Operand Node // nil for a searched CASE
	Whens   []When
	Else    Node // nil when absent
	At      int
}

// Cast is `CAST(X AS type)`, `TRY_CAST(X AS type)` or `X::type`.
type Cast struct {
	X   Node
	To  batch.Kind
	Try bool
	At  int
}

// Field is field access `X.Name`: a struct's field, the field of every
// struct of an array, or a map's value for the key Name.
type Field struct {
	X    Node
	Name string
	At   int // position of the field name
}

// Subscript is `X[Key]`: an array element (0-based), a map value, or a
// struct field named by a string literal.
type Subscript struct {
	X   Node
	Key Node
	At  int // position of '['
}

// Call is a function call. NoParens marks current_timestamp and friends
// written without parentheses, which resolve to a column of that name first.
type Call struct {
	Name     string // as written
	Args     []Node
	NoParens bool
	// Distinct marks an aggregate's DISTINCT: count(DISTINCT x).
	Distinct bool
	At       int
}

func (n *Ident) Pos() int      { return n.At }
func (n *Literal) Pos() int    { return n.At }
func (n *Star) Pos() int       { return n.At }
func (n *Alias) Pos() int      { return startPos(n) }
func (n *Unary) Pos() int      { return n.At }
func (n *Binary) Pos() int     { return startPos(n) }
func (n *IsNull) Pos() int     { return startPos(n) }
func (n *IsBool) Pos() int     { return startPos(n) }
func (n *IsDistinct) Pos() int { return startPos(n) }
func (n *In) Pos() int         { return startPos(n) }
func (n *Between) Pos() int    { return startPos(n) }
func (n *Like) Pos() int       { return startPos(n) }
func (n *Case) Pos() int       { return n.At }
func (n *Cast) Pos() int       { return n.At }
func (n *Call) Pos() int       { return n.At }
func (n *Field) Pos() int      { return startPos(n) }
func (n *Subscript) Pos() int  { return startPos(n) }

func (*Ident) node()      {}
func (*Literal) node()    {}
func (*Star) node()       {}
func (*Alias) node()      {}
func (*Unary) node()      {}
func (*Binary) node()     {}
func (*IsNull) node()     {}
func (*IsBool) node()     {}
func (*IsDistinct) node() {}
func (*In) node()         {}
func (*Between) node()    {}
func (*Like) node()       {}
func (*Case) node()       {}
func (*Cast) node()       {}
func (*Call) node()       {}
func (*Field) node()      {}
func (*Subscript) node()  {}

func (n *Ident) String() string { return quoteIdent(n.Name, false) }

func (n *Literal) String() string {
	switch v := n.Value.(type) {
	case nil:
		return "NULL"
	case bool:
		if v {
			return "TRUE"
		}
		return "FALSE"
	case int64:
		s := strconv.FormatInt(v, 10)
		if n.Type == batch.Long && v >= math.MinInt32 && v <= math.MaxInt32 {
			s += "L"
		}
		return s
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEIN") {
			s += ".0"
		}
		return s
	case string:
		return quoteString(v)
	}
	return "?"
}

func (n *Star) String() string  { return "*" }
func (n *Alias) String() string { return n.X.String() + " AS " + quoteIdent(n.Name, false) }

func (n *Unary) String() string {
	x := n.X.String()
	if l, ok := n.X.(*Literal); ok && l.Type.IsNumeric() {
		// Parenthesise so that "- 1" does not re-parse as the literal -1.
		x = "(" + x + ")"
	}
	if n.Op == "NOT" {
		return "(NOT " + x + ")"
	}
	return "(" + n.Op + " " + x + ")"
}

func (n *Binary) String() string {
	return "(" + n.L.String() + " " + n.Op + " " + n.R.String() + ")"
}

func (n *IsNull) String() string {
	if n.Not {
		return "(" + n.X.String() + " IS NOT NULL)"
	}
	return "(" + n.X.String() + " IS NULL)"
}

func (n *IsBool) String() string {
	v := "FALSE"
	if n.Value {
		v = "TRUE"
	}
	if n.Not {
		return "(" + n.X.String() + " IS NOT " + v + ")"
	}
	return "(" + n.X.String() + " IS " + v + ")"
}

func (n *IsDistinct) String() string {
	if n.Not {
		return "(" + n.L.String() + " IS NOT DISTINCT FROM " + n.R.String() + ")"
	}
	return "(" + n.L.String() + " IS DISTINCT FROM " + n.R.String() + ")"
}

func (n *In) String() string {
	var b strings.Builder
	b.WriteString("(")
	b.WriteString(n.X.String())
	if n.Not {
		b.WriteString(" NOT")
	}
	b.WriteString(" IN (")
	writeList(&b, n.List)
	b.WriteString("))")
	return b.String()
}

func (n *Between) String() string {
	not := ""
	if n.Not {
		not = " NOT"
	}
	return "(" + n.X.String() + not + " BETWEEN " + n.Lo.String() + " AND " + n.Hi.String() + ")"
}

func (n *Like) String() string {
	not := ""
	if n.Not {
		not = " NOT"
	}
	s := "(" + n.X.String() + not + " " + n.Op + " " + n.Pattern.String()
	if n.Escape != "" {
		s += " ESCAPE " + quoteString(n.Escape)
	}
	return s + ")"
}

func (n *Case) String() string {
	var b strings.Builder
	b.WriteString("CASE")
	if n.Operand != nil {
		b.WriteString(" ")
		b.WriteString(n.Operand.String())
	}
	for _, w := range n.Whens {
		b.WriteString(" WHEN ")
		b.WriteString(w.Cond.String())
		b.WriteString(" THEN ")
		b.WriteString(w.Then.String())
	}
	if n.Else != nil {
		b.WriteString(" ELSE ")
		b.WriteString(n.Else.String())
	}
	b.WriteString(" END")
	return b.String()
}

func (n *Cast) String() string {
	fn := "CAST"
	if n.Try {
		fn = "TRY_CAST"
	}
	return fn + "(" + n.X.String() + " AS " + typeSQL(n.To) + ")"
}

func (n *Call) String() string {
	if n.NoParens {
		return strings.ToLower(n.Name)
	}
	var b strings.Builder
	b.WriteString(quoteFuncName(n.Name))
	b.WriteString("(")
	if n.Distinct {
		b.WriteString("DISTINCT ")
	}
	writeList(&b, n.Args)
	b.WriteString(")")
	return b.String()
}

func (n *Field) String() string { return n.X.String() + "." + quoteIdent(n.Name, false) }

func (n *Subscript) String() string { return n.X.String() + "[" + n.Key.String() + "]" }

func writeList(b *strings.Builder, list []Node) {
	for i, a := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
}

// quoteIdent renders an identifier, back-quoting it when it is not a plain
// word or could be read as a keyword. always forces the quotes.
func quoteIdent(name string, always bool) string {
	if !always && isPlainIdent(name) && !isKeyword(name) {
		return name
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func quoteFuncName(name string) string {
	if isPlainIdent(name) {
		return strings.ToLower(name)
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func isPlainIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if i == 0 && !isIdentStart(r) {
			return false
		}
		if !isIdentPart(r) {
			return false
		}
	}
	return true
}

// quoteString renders s as a single-quoted SQL literal that lexString
// decodes back to s.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			// \% and \_ are kept verbatim by the lexer, so a backslash before
			// them must stay single; every other backslash is doubled.
			if i+1 < len(s) && (s[i+1] == '%' || s[i+1] == '_') {
				b.WriteByte('\\')
			} else {
				b.WriteString(`\\`)
			}
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\u0000`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
