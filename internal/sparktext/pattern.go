package sparktext

import (
	"errors"
	"fmt"
	"strings"
)

// JavaLayout translates the common subset of Java DateTimeFormatter
// patterns — Spark's datetime patterns, as in timestampFormat, dateFormat,
// to_timestamp(s, fmt) and unix_timestamp(s, fmt) — to a Go time layout
// for time.Parse: yyyy yy MM M MMM MMMM dd d HH H hh h mm m ss s S… a XXX
// XX X xxx xx Z z EEE EEEE and 'quoted literals'. Fractions of a second
// (S…) are accepted wherever Go accepts them, right after the seconds.
// Optional sections [...] are not supported.
func JavaLayout(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); {
		c := p[i]
		j := i
		for j < len(p) && p[j] == c {
			j++
		}
		n := j - i
		switch {
		case c == '\'':
			// 'literal'; '' is a quote.
			if n >= 2 && n%2 == 0 {
				b.WriteString(strings.Repeat("'", n/2))
				i = j
				continue
			}
			end := strings.IndexByte(p[i+1:], '\'')
			if end < 0 {
				return "", errors.New("unterminated quoted literal in the pattern")
			}
			b.WriteString(p[i+1 : i+1+end])
			i += end + 2
			continue
		case c == '[' || c == ']':
			return "", errors.New("optional sections [...] are not supported; omit the option for lenient default parsing")
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			tok, ok := javaTokens[string(p[i:j])]
			if !ok {
				if c == 'S' {
					// Fractions: Go accepts them after the seconds field anyway.
					if s := b.String(); strings.HasSuffix(s, ".") || strings.HasSuffix(s, ",") {
						trimmed := s[:len(s)-1]
						b.Reset()
						b.WriteString(trimmed)
					}
					i = j
					continue
				}
				return "", fmt.Errorf("pattern letter %q is not supported (supported: yyyy yy MM M dd d HH H hh h mm m ss s SSS a XXX XX X Z z 'literal')", p[i:j])
			}
			b.WriteString(tok)
		default:
			b.WriteString(p[i:j])
		}
		i = j
	}
	return b.String(), nil
}

var javaTokens = map[string]string{
	"yyyy": "2006", "uuuu": "2006", "yy": "06", "uu": "06",
	"MM": "01", "M": "1", "MMM": "Jan", "MMMM": "January",
	"dd": "02", "d": "2",
	"HH": "15", "H": "15",
	"hh": "03", "h": "3",
	"mm": "04", "m": "4",
	"ss": "05", "s": "5",
	"a":   "PM",
	"XXX": "Z07:00", "XX": "Z0700", "X": "Z07",
	"xxx": "-07:00", "xx": "-0700", "Z": "-0700",
	"z": "MST", "EEE": "Mon", "EEEE": "Monday",
}
