package expr

import (
	"strings"
	"testing"
)

// FuzzParse checks that the parser never panics, that the canonical
// rendering of a parsed expression parses back to the same rendering, and
// that compiling and evaluating whatever parses never panics either.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"CAST(value AS STRING) AS json", "current_timestamp()", "a + b * c", "NOT a = b AND c OR d",
		"x NOT IN (1, 2, NULL)", "s LIKE 'a\\%_%' ESCAPE '\\\\'", "CASE i WHEN 1 THEN 'a' ELSE s END",
		"substring(s, -3, 2)", "-2147483648", "9223372036854775807L + 1", "1e308 * 10", "'it''s' || \"x\"",
		"`my col` <=> NULL", "coalesce(i, l, d)", "round(d, -1)", "i BETWEEN l AND d", "CAST(s AS TIMESTAMP)",
		"ts::date", "upper(`My Col`) u", "a -- c\n+ b", "/* x */ 1", "i % 0", "l div 0", "concat_ws(',', s, bin)",
		"s IS NOT DISTINCT FROM 'x'", "if(b, i, NULL)", "*", "f(*)", "(((1)))", "- (1)", "- -1",
	} {
		f.Add(s)
	}
	b := testBatch()
	f.Fuzz(func(t *testing.T, src string) {
		n, err := Parse(src)
		if err == nil {
			s1 := n.String()
			n2, err := Parse(s1)
			if err != nil && strings.Contains(err.Error(), "nested too deeply") {
				// The canonical form adds parentheses, so input just under
				// the nesting limit can exceed it when printed.
				return
			}
			if err != nil {
				t.Fatalf("canonical form %q of %q does not parse: %v", s1, src, err)
			}
			if s2 := n2.String(); s2 != s1 {
				t.Fatalf("canonical form unstable for %q: %q then %q", src, s1, s2)
			}
			if _, isStar := n.(*Star); !isStar {
				if c, err := Compile(n, testSchema); err == nil {
					col, err := c.Eval(b, testCtx)
					if err == nil && (col.Len != b.N || col.Type != c.Type()) {
						t.Fatalf("%q: %d cells of %s, want %d of %s", src, col.Len, col.Type, b.N, c.Type())
					}
				}
			}
		}
		if list, err := ParseList(src); err == nil {
			for _, n := range list {
				_ = n.String()
			}
		}
	})
}
