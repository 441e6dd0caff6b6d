package expr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind classifies a token.
type tokKind uint8

const (
	tEOF    tokKind = iota
	tIdent          // bare identifier or keyword; keywords are recognised by the parser
	tQIdent         // `back-quoted` identifier; never a keyword
	tNumber         // numeric literal; text is the raw spelling including a suffix
	tString         // string literal; val is the decoded value
	tOp             // operator or punctuation; text is the symbol
)

// token is one lexeme of an expression.
type token struct {
	kind tokKind
	text string // raw source text
	val  string // decoded value for tString and tQIdent, text otherwise
	pos  int    // byte offset of the first character
}

// describe renders the token for "found ..." in error messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "string " + t.text
	}
	return "'" + t.text + "'"
}

// operators, longest first so that the lexer takes the longest match.
var operators = []string{
	"<=>", "<=", ">=", "<>", "!=", "==", "||", "::",
	"=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", ".", "!", "&", "|", "^", "~", "[", "]", ":",
}

// lex splits src into tokens, ending with a tEOF token. It skips whitespace
// and SQL comments (-- to end of line, /* ... */).
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for {
		// Skip whitespace and comments.
		for i < len(src) {
			r, w := utf8.DecodeRuneInString(src[i:])
			switch {
			case unicode.IsSpace(r):
				i += w
				continue
			case strings.HasPrefix(src[i:], "--"):
				nl := strings.IndexByte(src[i:], '\n')
				if nl < 0 {
					i = len(src)
				} else {
					i += nl + 1
				}
				continue
			case strings.HasPrefix(src[i:], "/*"):
				end := strings.Index(src[i+2:], "*/")
				if end < 0 {
					return nil, syntaxErr(src, i, "unterminated comment")
				}
				i += end + 4
				continue
			}
			break
		}
		if i >= len(src) {
			toks = append(toks, token{kind: tEOF, pos: len(src)})
			return toks, nil
		}
		start := i
		c := src[i]
		r, w := utf8.DecodeRuneInString(src[i:])
		switch {
		case c == '\'' || c == '"':
			val, n, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			i += n
			toks = append(toks, token{kind: tString, text: src[start:i], val: val, pos: start})
		case c == '`':
			val, n, err := lexQuotedIdent(src, i)
			if err != nil {
				return nil, err
			}
			i += n
			toks = append(toks, token{kind: tQIdent, text: src[start:i], val: val, pos: start})
		case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
			n, isNum := scanNumber(src[i:])
			if !isNum {
				// A run of word characters starting with a digit, such as
				// 1a, is an identifier in Spark.
				toks = append(toks, token{kind: tIdent, text: src[i : i+n], val: src[i : i+n], pos: start})
				i += n
				continue
			}
			if n < 0 {
				return nil, syntaxErr(src, start, "invalid number %q", wordAt(src, start))
			}
			i += n
			toks = append(toks, token{kind: tNumber, text: src[start:i], val: src[start:i], pos: start})
		case isIdentStart(r):
			i += w
			for i < len(src) {
				r, w := utf8.DecodeRuneInString(src[i:])
				if !isIdentPart(r) {
					break
				}
				i += w
			}
			toks = append(toks, token{kind: tIdent, text: src[start:i], val: src[start:i], pos: start})
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if r == utf8.RuneError && w <= 1 {
					return nil, syntaxErr(src, start, "invalid UTF-8 byte 0x%02x", c)
				}
				return nil, syntaxErr(src, start, "unexpected character %q", r)
			}
			i += len(op)
			toks = append(toks, token{kind: tOp, text: op, val: op, pos: start})
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIdentPart(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// wordAt returns the run of non-space characters at off, for messages.
func wordAt(src string, off int) string {
	end := off
	for end < len(src) && !unicode.IsSpace(rune(src[end])) && !strings.ContainsRune("(),", rune(src[end])) {
		end++
	}
	return src[off:end]
}

// scanNumber measures the numeric literal at the start of s:
// digits [. digits] [e [+-] digits] [suffix]. It returns isNum=false with
// the length of the word when s starts an identifier such as 1a or 12_x,
// and n=-1 when the text is malformed (1.5x, 1e+).
func scanNumber(s string) (n int, isNum bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intOnly := true
	if i < len(s) && s[i] == '.' {
		intOnly = false
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
			intOnly = false
		}
	}
	// Suffix letters: L (bigint), D (double), and Spark's S, Y, F, BD which
	// the parser reports as unsupported.
	j := i
	for j < len(s) {
		r, w := utf8.DecodeRuneInString(s[j:])
		if !isIdentPart(r) {
			break
		}
		j += w
	}
	suffix := strings.ToUpper(s[i:j])
	switch suffix {
	case "", "L", "D", "S", "Y", "F", "BD":
		return j, true
	}
	if intOnly {
		return j, false
	}
	return -1, true
}

// lexString decodes the quoted string starting at src[i] and returns its
// value and length in bytes. Escapes follow Spark: \n \t \r \b \0 \Z \\ \'
// \" \uXXXX, octal \ooo, \% and \_ keep their backslash (for LIKE), any
// other \c is c. A doubled quote stands for one quote.
func lexString(src string, i int) (string, int, error) {
	q := src[i]
	var b strings.Builder
	j := i + 1
	for j < len(src) {
		c := src[j]
		switch {
		case c == q:
			if j+1 < len(src) && src[j+1] == q {
				b.WriteByte(q)
				j += 2
				continue
			}
			return b.String(), j + 1 - i, nil
		case c == '\\':
			if j+1 >= len(src) {
				return "", 0, syntaxErr(src, i, "unterminated string literal")
			}
			e := src[j+1]
			j += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(0x1a)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			case 'u':
				if j+4 <= len(src) {
					if v, err := strconv.ParseUint(src[j:j+4], 16, 32); err == nil {
						b.WriteRune(rune(v))
						j += 4
						continue
					}
				}
				b.WriteByte('u')
			default:
				if e >= '0' && e <= '3' && j+2 <= len(src) && isOctal(src[j]) && isOctal(src[j+1]) {
					b.WriteByte((e-'0')<<6 | (src[j]-'0')<<3 | (src[j+1] - '0'))
					j += 2
					continue
				}
				if e == '0' {
					b.WriteByte(0)
					continue
				}
				// A multi-byte character after the backslash is kept whole.
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, syntaxErr(src, i, "unterminated string literal")
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// lexQuotedIdent decodes a `back-quoted` identifier; “ stands for `.
func lexQuotedIdent(src string, i int) (string, int, error) {
	var b strings.Builder
	j := i + 1
	for j < len(src) {
		if src[j] == '`' {
			if j+1 < len(src) && src[j+1] == '`' {
				b.WriteByte('`')
				j += 2
				continue
			}
			if b.Len() == 0 {
				return "", 0, syntaxErr(src, i, "empty quoted identifier")
			}
			return b.String(), j + 1 - i, nil
		}
		b.WriteByte(src[j])
		j++
	}
	return "", 0, syntaxErr(src, i, "unterminated quoted identifier")
}

func syntaxErr(src string, off int, format string, args ...any) *Error {
	return &Error{Kind: "syntax error", Msg: fmt.Sprintf(format, args...), Src: src, Offset: off}
}
