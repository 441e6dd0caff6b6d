package expr

import (
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// TestParseCanonical pins the AST of each input through its canonical
// rendering, and checks that the rendering parses back to itself.
func TestParseCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		// Literals.
		{"42", "42"},
		{"-42", "-42"},
		{"42L", "42L"},
		{"3000000000", "3000000000"},
		{"-2147483648", "-2147483648"},
		{"-9223372036854775808", "-9223372036854775808"},
		{"9223372036854775808", "9.223372036854776e+18"},
		{"1.5", "1.5"},
		{"1.", "1.0"},
		{".5", "0.5"},
		{"1e3", "1000.0"},
		{"1.5E-3", "0.0015"},
		{"2D", "2.0"},
		{"'it''s'", `'it\'s'`},
		{`"dq"`, "'dq'"},
		{`'a\tb\n\\'`, `'a\tb\n\\'`},
		{`'\u00e9\101'`, "'éA'"},
		{`'a%\_'`, `'a%\_'`},
		{"'a' 'b'", "'ab'"},
		{"TRUE", "TRUE"},
		{"false", "FALSE"},
		{"null", "NULL"},
		// Identifiers.
		{"value", "value"},
		{"`my col`", "`my col`"},
		{"`a``b`", "`a``b`"},
		{"`from`", "`from`"},
		{"`order` + order", "(order + order)"},
		{"`current_timestamp`", "`current_timestamp`"},
		{"1a", "`1a`"},
		{"_x1", "_x1"},
		// Aliases and stars.
		{"CAST(value AS STRING) AS json", "CAST(value AS STRING) AS json"},
		{"value v", "value AS v"},
		{"value AS `my alias`", "value AS `my alias`"},
		{"*", "*"},
		// Operators and precedence.
		{"a + b * c", "(a + (b * c))"},
		{"(a + b) * c", "((a + b) * c)"},
		{"a - b - c", "((a - b) - c)"},
		{"a / b % c", "((a / b) % c)"},
		{"a DIV b", "(a DIV b)"},
		{"a || b + c", "((a || b) + c)"},
		{"-a * b", "((- a) * b)"},
		{"- (1)", "(- (1))"},
		{"-(-1)", "(- (-1))"},
		{"a - -1", "(a - -1)"},
		{"+a", "(+ a)"},
		{"a = b", "(a = b)"},
		{"a == b", "(a == b)"},
		{"a <=> b", "(a <=> b)"},
		{"a < b = c", "((a < b) = c)"},
		{"a + 1 > b * 2", "((a + 1) > (b * 2))"},
		{"NOT a = b", "(NOT (a = b))"},
		{"NOT a AND b", "((NOT a) AND b)"},
		{"! a OR b", "((NOT a) OR b)"},
		{"a OR b AND c", "(a OR (b AND c))"},
		{"a AND b OR c AND d", "((a AND b) OR (c AND d))"},
		{"NOT NOT a", "(NOT (NOT a))"},
		{"x::int + 1", "(CAST(x AS INT) + 1)"},
		{"-x::bigint", "(- CAST(x AS BIGINT))"},
		// Predicates.
		{"a IS NULL", "(a IS NULL)"},
		{"a IS NOT NULL AND b", "((a IS NOT NULL) AND b)"},
		{"a + 1 IS NULL", "((a + 1) IS NULL)"},
		{"a IS TRUE", "(a IS TRUE)"},
		{"a IS NOT FALSE", "(a IS NOT FALSE)"},
		{"a IS DISTINCT FROM b", "(a IS DISTINCT FROM b)"},
		{"a IS NOT DISTINCT FROM b + 1", "(a IS NOT DISTINCT FROM (b + 1))"},
		{"a IN (1, 2, 3)", "(a IN (1, 2, 3))"},
		{"a NOT IN ('x')", "(a NOT IN ('x'))"},
		{"a BETWEEN 1 AND 2", "(a BETWEEN 1 AND 2)"},
		{"a BETWEEN 1 AND 2 AND b", "((a BETWEEN 1 AND 2) AND b)"},
		{"a NOT BETWEEN b + 1 AND c * 2", "(a NOT BETWEEN (b + 1) AND (c * 2))"},
		{"a LIKE 'x%'", "(a LIKE 'x%')"},
		{"a NOT LIKE 'x%' OR b", "((a NOT LIKE 'x%') OR b)"},
		{"a ILIKE 'x'", "(a ILIKE 'x')"},
		{"a LIKE 'x!%' ESCAPE '!'", "(a LIKE 'x!%' ESCAPE '!')"},
		{"NOT a LIKE 'x'", "(NOT (a LIKE 'x'))"},
		// CASE, CAST, calls.
		{"CASE WHEN a THEN 1 ELSE 2 END", "CASE WHEN a THEN 1 ELSE 2 END"},
		{"case a when 1 then 'x' when 2 then 'y' end", "CASE a WHEN 1 THEN 'x' WHEN 2 THEN 'y' END"},
		{"CASE WHEN a > 1 THEN b + 1 END + 1", "(CASE WHEN (a > 1) THEN (b + 1) END + 1)"},
		{"cast(value as string)", "CAST(value AS STRING)"},
		{"CAST(x AS varchar(10))", "CAST(x AS STRING)"},
		{"CAST(x AS Integer)", "CAST(x AS INT)"},
		{"CAST(x AS long)", "CAST(x AS BIGINT)"},
		{"TRY_CAST(x AS DATE)", "TRY_CAST(x AS DATE)"},
		{"UPPER(x)", "upper(x)"},
		{"concat(a, 'b', 1)", "concat(a, 'b', 1)"},
		{"f()", "f()"},
		{"count(*)", "count(*)"},
		{"current_timestamp", "current_timestamp"},
		{"current_timestamp()", "current_timestamp()"},
		{"CURRENT_DATE", "current_date"},
		{"substring(s, 1 + 1, -2)", "substring(s, (1 + 1), -2)"},
		// Whitespace and comments.
		{" a\n+\tb ", "(a + b)"},
		{"a -- comment\n + b", "(a + b)"},
		{"a /* c */ + b", "(a + b)"},
	}
	for _, tt := range tests {
		n, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := n.String(); got != tt.want {
			t.Errorf("Parse(%q) = %s, want %s", tt.in, got, tt.want)
			continue
		}
		n2, err := Parse(tt.want)
		if err != nil {
			t.Errorf("re-parse %q: %v", tt.want, err)
			continue
		}
		if got := n2.String(); got != tt.want {
			t.Errorf("re-parse %q = %s", tt.want, got)
		}
	}
}

func TestParseLiteralTypes(t *testing.T) {
	tests := []struct {
		in   string
		want batch.Kind
	}{
		{"1", batch.Int},
		{"2147483647", batch.Int},
		{"2147483648", batch.Long},
		{"-2147483648", batch.Int},
		{"-2147483649", batch.Long},
		{"1L", batch.Long},
		{"1.0", batch.Double},
		{"1e2", batch.Double},
		{"1D", batch.Double},
		{"99999999999999999999", batch.Double},
		{"'s'", batch.String},
		{"true", batch.Boolean},
		{"NULL", batch.Null},
	}
	for _, tt := range tests {
		n, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		l, ok := n.(*Literal)
		if !ok {
			t.Fatalf("Parse(%q) = %T, want a literal", tt.in, n)
		}
		if l.Type != tt.want {
			t.Errorf("Parse(%q) type = %s, want %s", tt.in, l.Type, tt.want)
		}
	}
}

func TestParseList(t *testing.T) {
	nodes, err := ParseList("*, CAST(value AS STRING) json, upper(`a,b`) AS `x, y`, 1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, n.String())
	}
	want := "* | CAST(value AS STRING) AS json | upper(`a,b`) AS `x, y` | 1"
	if strings.Join(got, " | ") != want {
		t.Errorf("ParseList = %s, want %s", strings.Join(got, " | "), want)
	}
}

// TestParseErrors pins error messages, positions and caret rendering.
func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"CAST(value AS FROM)", "syntax error at 1:15: expected a type name but found 'FROM'\nCAST(value AS FROM)\n              ^"},
		{"CAST(value AS STRING", "syntax error at 1:21: expected ')' but found end of input\nCAST(value AS STRING\n                    ^"},
		{"CAST(value STRING)", "syntax error at 1:12: expected AS but found 'STRING'\nCAST(value STRING)\n           ^"},
		{"CAST(x AS STRNG)", "syntax error at 1:11: unknown type STRNG; did you mean STRING? (supported types: " +
			supportedTypeList + ")\nCAST(x AS STRNG)\n          ^"},
		{"CAST(x AS FLOAT)", "syntax error at 1:11: type FLOAT is not supported; supported types: " +
			supportedTypeList + "\nCAST(x AS FLOAT)\n          ^"},
		{"a +", "syntax error at 1:4: expected an expression but found end of input\na +\n   ^"},
		{"a + * b", "syntax error at 1:5: '*' is only allowed as a whole select item\na + * b\n    ^"},
		{"upper(a b)", "syntax error at 1:9: expected ',' or ')' but found 'b'\nupper(a b)\n        ^"},
		{"a AND", "syntax error at 1:6: expected an expression but found end of input\na AND\n     ^"},
		{"a b c", "syntax error at 1:5: expected end of input but found 'c'\na b c\n    ^"},
		{"a, b", "syntax error at 1:2: expected end of input but found ','; give one expression per string\na, b\n ^"},
		{"'abc", "syntax error at 1:1: unterminated string literal\n'abc\n^"},
		{"`abc", "syntax error at 1:1: unterminated quoted identifier\n`abc\n^"},
		{"a /* x", "syntax error at 1:3: unterminated comment\na /* x\n  ^"},
		{"a # b", "syntax error at 1:3: unexpected character '#'\na # b\n  ^"},
		{"1.5x", "syntax error at 1:1: invalid number \"1.5x\"\n1.5x\n^"},
		{"1S", "syntax error at 1:1: SMALLINT literals (suffix S) are not supported\n1S\n^"},
		{"1e999", "syntax error at 1:1: numeric literal 1e999 is out of range for DOUBLE\n1e999\n^"},
		{"99999999999999999999L", "syntax error at 1:1: BIGINT literal 99999999999999999999 is out of range\n99999999999999999999L\n^"},
		{"t.", "syntax error at 1:3: expected a field name after '.' but found end of input\nt.\n  ^"},
		{"a[0", "syntax error at 1:4: expected ']' but found end of input\na[0\n   ^"},
		{"a.1", "syntax error at 1:2: expected end of input but found '.1'\na.1\n ^"},
		{"a IS 5", "syntax error at 1:6: expected NULL, TRUE, FALSE or DISTINCT FROM after IS but found '5'\na IS 5\n     ^"},
		{"a BETWEEN 1 OR 2", "syntax error at 1:13: expected AND but found 'OR'\na BETWEEN 1 OR 2\n            ^"},
		{"a IN ()", "syntax error at 1:3: IN needs at least one value\na IN ()\n  ^"},
		{"CASE END", "syntax error at 1:6: expected an expression but found 'END'\nCASE END\n     ^"},
		{"CASE WHEN a THEN 1", "syntax error at 1:19: expected END but found end of input\nCASE WHEN a THEN 1\n                  ^"},
		{"a & b", "syntax error at 1:3: bitwise operator '&' is not supported\na & b\n  ^"},
		{"a RLIKE 'x'", "syntax error at 1:3: RLIKE is not supported\na RLIKE 'x'\n  ^"},
		{"INTERVAL '1' DAY", "syntax error at 1:1: INTERVAL literals are not supported yet\nINTERVAL '1' DAY\n^"},
		{"* AS x", "syntax error at 1:3: expected ',' or end of input after '*' but found 'AS'\n* AS x\n  ^"},
		{"", "syntax error at 1:1: expected an expression but found end of input\n\n^"},
		{"a +\n  (b", "syntax error at 2:5: expected ')' but found end of input\n  (b\n    ^"},
		{"\tx +", "syntax error at 1:5: expected an expression but found end of input\n\tx +\n\t   ^"},
		{"'é' +", "syntax error at 1:6: expected an expression but found end of input\n'é' +\n     ^"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error", tt.in)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q) error:\n%s\nwant:\n%s", tt.in, err, tt.want)
		}
		var pe *Error
		if !errorsAs(err, &pe) || pe.Kind != "syntax error" {
			t.Errorf("Parse(%q) error is %T, want *Error of kind syntax error", tt.in, err)
		}
	}
}

func TestParseDepthLimit(t *testing.T) {
	deep := strings.Repeat("(", 10000) + "1" + strings.Repeat(")", 10000)
	if _, err := Parse(deep); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("deep nesting: err = %v, want a nesting error", err)
	}
	ok := strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100)
	if _, err := Parse(ok); err != nil {
		t.Errorf("100 levels: %v", err)
	}
}
