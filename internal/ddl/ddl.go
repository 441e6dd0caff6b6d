// Package ddl parses Spark SQL DDL schema strings such as
// "a INT, b STRING NOT NULL, ts TIMESTAMP" into batch schemas.
//
// Both Spark spellings are accepted: a column list ("name type, ...") and a
// struct type ("struct<name:type,...>"). Types map onto sluice's kinds,
// nested ones included: STRUCT<name[:] type [NOT NULL] [COMMENT '…'], ...>,
// ARRAY<type> and MAP<type, type> (elements, values and fields nullable
// unless NOT NULL, as in Spark). Types sluice cannot represent (DECIMAL,
// INTERVAL, VARIANT) are rejected with an error that names the column.
// ParseType reads a single type, as from_json's schema may be one.
package ddl

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
)

// typeNames maps Spark type names (lower case) to sluice kinds. Narrow
// integers widen to Int and FLOAT/REAL to Double.
var typeNames = map[string]batch.Kind{
	"boolean":       batch.Boolean,
	"bool":          batch.Boolean,
	"tinyint":       batch.Int,
	"byte":          batch.Int,
	"smallint":      batch.Int,
	"short":         batch.Int,
	"int":           batch.Int,
	"integer":       batch.Int,
	"bigint":        batch.Long,
	"long":          batch.Long,
	"float":         batch.Double,
	"real":          batch.Double,
	"double":        batch.Double,
	"string":        batch.String,
	"varchar":       batch.String,
	"char":          batch.String,
	"character":     batch.String,
	"binary":        batch.Binary,
	"timestamp":     batch.Timestamp,
	"timestamp_ltz": batch.Timestamp,
	"timestamp_ntz": batch.Timestamp,
	"date":          batch.Date,
}

// unsupported explains type names sluice knows but cannot represent.
var unsupported = map[string]string{
	"decimal":  "DECIMAL is not supported; use DOUBLE or STRING",
	"dec":      "DECIMAL is not supported; use DOUBLE or STRING",
	"numeric":  "DECIMAL is not supported; use DOUBLE or STRING",
	"array":    "ARRAY needs its element type, e.g. ARRAY<STRING>",
	"map":      "MAP needs its key and value types, e.g. MAP<STRING, INT>",
	"struct":   "STRUCT needs its fields, e.g. STRUCT<a: INT, b: STRING>",
	"interval": "INTERVAL columns are not supported",
	"void":     "VOID columns are not supported",
	"variant":  "VARIANT columns are not supported; read the column as STRING",
}

// Error is a DDL syntax or type error at a byte offset of the input.
type Error struct {
	Input string
	Pos   int
	Msg   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("schema %q: %s (at position %d)", e.Input, e.Msg, e.Pos)
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tQuoted // backtick-quoted identifier
	tString // 'text' or "text"
	tNumber
	tPunct
)

type token struct {
	kind tokKind
	text string
	pos  int
}

type parser struct {
	in   string
	toks []token
	i    int
}

// Parse parses a DDL schema string. Column names must be unique
// (case-insensitively, as Spark requires by default).
func Parse(s string) (batch.Schema, error) {
	p := &parser{in: s}
	if err := p.lex(); err != nil {
		return batch.Schema{}, err
	}
	if p.peek().kind == tEOF {
		return batch.Schema{}, p.errAt(0, "the schema is empty")
	}
	structForm := false
	if t := p.peek(); t.kind == tIdent && strings.EqualFold(t.text, "struct") && p.peekN(1).text == "<" && p.peekN(1).kind == tPunct {
		structForm = true
		p.i += 2
	}
	var sch batch.Schema
	seen := map[string]bool{}
	for {
		f, err := p.field(structForm)
		if err != nil {
			return batch.Schema{}, err
		}
		lk := strings.ToLower(f.Name)
		if seen[lk] {
			return batch.Schema{}, p.errAt(p.prev().pos, fmt.Sprintf("column %q is defined twice", f.Name))
		}
		seen[lk] = true
		sch.Fields = append(sch.Fields, f)
		t := p.next()
		if t.kind == tPunct && t.text == "," {
			continue
		}
		if structForm {
			if t.kind != tPunct || t.text != ">" {
				return batch.Schema{}, p.errAt(t.pos, "expected ',' or '>' after a field")
			}
			t = p.next()
		}
		if t.kind != tEOF {
			return batch.Schema{}, p.errAt(t.pos, fmt.Sprintf("unexpected %s; expected ',' between columns", describe(t)))
		}
		return sch, nil
	}
}

// field parses "name [:] type [NOT NULL] [COMMENT 'text']".
func (p *parser) field(structForm bool) (batch.Field, error) {
	t := p.next()
	if t.kind != tIdent && t.kind != tQuoted {
		return batch.Field{}, p.errAt(t.pos, fmt.Sprintf("expected a column name, got %s", describe(t)))
	}
	name := t.text
	if name == "" {
		return batch.Field{}, p.errAt(t.pos, "a column name is empty")
	}
	if c := p.peek(); c.kind == tPunct && c.text == ":" {
		p.i++
	} else if structForm {
		return batch.Field{}, p.errAt(c.pos, fmt.Sprintf("expected ':' after field name %q", name))
	}
	kind, err := p.typ(name, 0)
	if err != nil {
		return batch.Field{}, err
	}
	f := batch.Field{Name: name, Type: kind, Nullable: true}
	for {
		c := p.peek()
		if c.kind != tIdent {
			return f, nil
		}
		switch strings.ToLower(c.text) {
		case "not":
			p.i++
			if n := p.next(); n.kind != tIdent || !strings.EqualFold(n.text, "null") {
				return batch.Field{}, p.errAt(n.pos, fmt.Sprintf("column %q: expected NULL after NOT", name))
			}
			f.Nullable = false
		case "comment":
			p.i++
			if s := p.next(); s.kind != tString {
				return batch.Field{}, p.errAt(s.pos, fmt.Sprintf("column %q: expected a quoted string after COMMENT", name))
			}
		default:
			return batch.Field{}, p.errAt(c.pos, fmt.Sprintf("column %q: unexpected %s after the type; expected ',' between columns", name, describe(c)))
		}
	}
}

// maxTypeDepth bounds how deeply types may nest (ARRAY<ARRAY<…>>).
const maxTypeDepth = 100

// typ parses a data type for column (or field) name.
func (p *parser) typ(name string, depth int) (batch.Kind, error) {
	tt := p.next()
	if tt.kind != tIdent {
		return 0, p.errAt(tt.pos, fmt.Sprintf("expected a type for column %q, got %s", name, describe(tt)))
	}
	if depth > maxTypeDepth {
		return 0, p.errAt(tt.pos, fmt.Sprintf("column %q: types nest more than %d levels deep", name, maxTypeDepth))
	}
	tn := strings.ToLower(tt.text)
	if c := p.peek(); c.kind == tPunct && c.text == "<" {
		switch tn {
		case "array":
			p.i++
			e, err := p.typ(name, depth+1)
			if err != nil {
				return 0, err
			}
			return batch.ArrayOf(e, true), p.expect(name, ">")
		case "map":
			p.i++
			k, err := p.typ(name, depth+1)
			if err != nil {
				return 0, err
			}
			if err := p.expect(name, ","); err != nil {
				return 0, err
			}
			v, err := p.typ(name, depth+1)
			if err != nil {
				return 0, err
			}
			if k.Contains(batch.Map) {
				return 0, p.errAt(tt.pos, fmt.Sprintf("column %q: a map key cannot be a map", name))
			}
			return batch.MapOf(k, v, true), p.expect(name, ">")
		case "struct":
			p.i++
			return p.structType(name, depth+1)
		}
	}
	if why, bad := unsupported[tn]; bad {
		return 0, p.errAt(tt.pos, fmt.Sprintf("column %q: %s", name, why))
	}
	kind, ok := typeNames[tn]
	if !ok {
		return 0, p.errAt(tt.pos, fmt.Sprintf("column %q: unknown type %q (allowed: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, STRING, VARCHAR(n), CHAR(n), BINARY, DATE, TIMESTAMP, ARRAY<…>, MAP<…>, STRUCT<…>)", name, tt.text))
	}
	if c := p.peek(); c.kind == tPunct && c.text == "(" {
		if kind != batch.String {
			return 0, p.errAt(c.pos, fmt.Sprintf("column %q: type %s takes no parameters", name, strings.ToUpper(tn)))
		}
		p.i++
		n := p.next()
		if n.kind != tNumber {
			return 0, p.errAt(n.pos, fmt.Sprintf("column %q: expected a length in %s(n)", name, strings.ToUpper(tn)))
		}
		if c := p.next(); c.kind != tPunct || c.text != ")" {
			return 0, p.errAt(c.pos, fmt.Sprintf("column %q: expected ')'", name))
		}
	} else if tn == "varchar" {
		return 0, p.errAt(c.pos, fmt.Sprintf("column %q: VARCHAR needs a length, e.g. VARCHAR(20)", name))
	}
	return kind, nil
}

// structType parses the fields of STRUCT<…> after its '<': Spark's
// complexColType list, "name[:] type [NOT NULL] [COMMENT 'text']".
func (p *parser) structType(name string, depth int) (batch.Kind, error) {
	var fields []batch.Field
	if c := p.peek(); c.kind == tPunct && c.text == ">" {
		p.i++
		return batch.StructOf(), nil
	}
	for {
		t := p.next()
		if t.kind != tIdent && t.kind != tQuoted {
			return 0, p.errAt(t.pos, fmt.Sprintf("column %q: expected a field name, got %s", name, describe(t)))
		}
		if c := p.peek(); c.kind == tPunct && c.text == ":" {
			p.i++
		}
		ft, err := p.typ(name+"."+t.text, depth)
		if err != nil {
			return 0, err
		}
		f := batch.Field{Name: t.text, Type: ft, Nullable: true}
		for done := false; !done; {
			c := p.peek()
			switch {
			case c.kind == tIdent && strings.EqualFold(c.text, "not"):
				p.i++
				if n := p.next(); n.kind != tIdent || !strings.EqualFold(n.text, "null") {
					return 0, p.errAt(n.pos, fmt.Sprintf("column %q: expected NULL after NOT", name))
				}
				f.Nullable = false
			case c.kind == tIdent && strings.EqualFold(c.text, "comment"):
				p.i++
				if s := p.next(); s.kind != tString {
					return 0, p.errAt(s.pos, fmt.Sprintf("column %q: expected a quoted string after COMMENT", name))
				}
			default:
				done = true
			}
		}
		fields = append(fields, f)
		c := p.next()
		if c.kind == tPunct && c.text == "," {
			continue
		}
		if c.kind == tPunct && c.text == ">" {
			return batch.StructOf(fields...), nil
		}
		return 0, p.errAt(c.pos, fmt.Sprintf("column %q: expected ',' or '>' in STRUCT<…>, got %s", name, describe(c)))
	}
}

// expect consumes the punctuation text or fails.
func (p *parser) expect(name, text string) error {
	if c := p.next(); c.kind != tPunct || c.text != text {
		return p.errAt(c.pos, fmt.Sprintf("column %q: expected '%s', got %s", name, text, describe(c)))
	}
	return nil
}

// ParseType parses one data type in Spark's DDL syntax, e.g. "int",
// "array<struct<a:int>>", "map<string,bigint>" or "struct<a:int,b:string>".
func ParseType(s string) (batch.Kind, error) {
	p := &parser{in: s}
	if err := p.lex(); err != nil {
		return 0, err
	}
	if p.peek().kind == tEOF {
		return 0, p.errAt(0, "the type is empty")
	}
	k, err := p.typ("type", 0)
	if err != nil {
		return 0, err
	}
	if t := p.next(); t.kind != tEOF {
		return 0, p.errAt(t.pos, fmt.Sprintf("unexpected %s after the type", describe(t)))
	}
	return k, nil
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

func (p *parser) peek() token { return p.peekN(0) }

func (p *parser) peekN(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return token{kind: tEOF, pos: len(p.in)}
}

func (p *parser) next() token {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

func (p *parser) prev() token {
	if p.i > 0 {
		return p.toks[p.i-1]
	}
	return token{pos: 0}
}

func (p *parser) errAt(pos int, msg string) error {
	return &Error{Input: p.in, Pos: pos, Msg: msg}
}

func isIdentRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func (p *parser) lex() error {
	s := p.in
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '`':
			// Backtick identifier; a doubled backtick is a literal one.
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return p.errAt(i, "unterminated `quoted` name")
				}
				if s[j] == '`' {
					if j+1 < len(s) && s[j+1] == '`' {
						b.WriteByte('`')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			p.toks = append(p.toks, token{kind: tQuoted, text: b.String(), pos: i})
			i = j + 1
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return p.errAt(i, "unterminated string")
				}
				if s[j] == '\\' && j+1 < len(s) {
					b.WriteByte(s[j+1])
					j += 2
					continue
				}
				if s[j] == c {
					break
				}
				b.WriteByte(s[j])
				j++
			}
			p.toks = append(p.toks, token{kind: tString, text: b.String(), pos: i})
			i = j + 1
		case strings.IndexByte(",()<>:", c) >= 0:
			p.toks = append(p.toks, token{kind: tPunct, text: string(c), pos: i})
			i++
		default:
			j := i
			for j < len(s) {
				r, size := decodeRune(s[j:])
				if !isIdentRune(r) {
					break
				}
				j += size
			}
			if j == i {
				r, _ := decodeRune(s[i:])
				return p.errAt(i, fmt.Sprintf("unexpected character %q", r))
			}
			word := s[i:j]
			kind := tIdent
			if allDigits(word) {
				kind = tNumber
			}
			p.toks = append(p.toks, token{kind: kind, text: word, pos: i})
			i = j
		}
	}
	return nil
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Format renders a schema as a DDL column list that Parse reads back,
// quoting names with backticks where needed.
func Format(s batch.Schema) string {
	var b strings.Builder
	for i, f := range s.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteName(f.Name))
		b.WriteByte(' ')
		b.WriteString(f.Type.SQL())
		if !f.Nullable {
			b.WriteString(" NOT NULL")
		}
	}
	return b.String()
}

func quoteName(n string) string {
	plain := n != "" && !allDigits(n)
	for _, r := range n {
		if !isIdentRune(r) {
			plain = false
			break
		}
	}
	if plain {
		if _, reserved := map[string]bool{"not": true, "comment": true, "struct": true}[strings.ToLower(n)]; !reserved {
			return n
		}
	}
	return "`" + strings.ReplaceAll(n, "`", "``") + "`"
}
