package streamtest

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// parseRows parses "1, 2, 3" (one value per row) or "(a, 1), (b, 2)". With
// a schema the values are converted to its column types; without one they
// are kept as canonical text.
func parseRows(s string, schema batch.Schema) ([][]any, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var rows [][]string
	if strings.HasPrefix(s, "(") {
		for s != "" {
			if !strings.HasPrefix(s, "(") {
				return nil, fmt.Errorf("expected ( at %q", s)
			}
			end := closing(s)
			if end < 0 {
				return nil, fmt.Errorf("unclosed ( in %q", s)
			}
			rows = append(rows, splitTop(s[1:end]))
			s = strings.TrimSpace(s[end+1:])
			s = strings.TrimSpace(strings.TrimPrefix(s, ","))
		}
	} else {
		for _, v := range splitTop(s) {
			rows = append(rows, []string{v})
		}
	}
	out := make([][]any, len(rows))
	for i, r := range rows {
		if len(schema.Fields) > 0 && len(r) != len(schema.Fields) {
			return nil, fmt.Errorf("row %d has %d values for %d columns", i, len(r), len(schema.Fields))
		}
		row := make([]any, len(r))
		for j, tok := range r {
			if len(schema.Fields) == 0 {
				row[j] = canonical(tok)
				continue
			}
			v, err := typed(tok, schema.Fields[j].Type)
			if err != nil {
				return nil, fmt.Errorf("row %d column %s: %w", i, schema.Fields[j].Name, err)
			}
			row[j] = v
		}
		out[i] = row
	}
	return out, nil
}

// closing returns the index of the parenthesis closing s[0], or -1.
func closing(s string) int {
	depth, quote := 0, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTop splits at commas outside quotes and parentheses.
func splitTop(s string) []string {
	var out []string
	depth, quote, start := 0, byte(0), 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func unquote(tok string) (string, bool) {
	if len(tok) >= 2 && (tok[0] == '\'' || tok[0] == '"') && tok[len(tok)-1] == tok[0] {
		return tok[1 : len(tok)-1], true
	}
	return tok, false
}

// typed converts a token to a value of kind k for memstream.
func typed(tok string, k batch.Kind) (any, error) {
	if tok == "null" {
		return nil, nil
	}
	s, quoted := unquote(tok)
	switch k {
	case batch.String:
		return s, nil
	case batch.Binary:
		return []byte(s), nil
	case batch.Boolean:
		return strconv.ParseBool(s)
	case batch.Int, batch.Long, batch.Date:
		return strconv.ParseInt(s, 10, 64)
	case batch.Double:
		return strconv.ParseFloat(s, 64)
	case batch.Timestamp:
		if !quoted {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n * 1_000_000, nil
			}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, err
		}
		return t.UnixMicro(), nil
	}
	return nil, fmt.Errorf("cannot write a %s value", k)
}

// canonical renders a token or a value so that expected and actual rows
// compare as text: numbers in their shortest form, strings unquoted.
func canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if s, quoted := unquote(x); quoted {
			return s
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil && !strings.ContainsAny(x, "xX") {
			return canonicalFloat(f)
		}
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return canonicalFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

func canonicalFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// canonicalRows renders rows as sorted "(a, b)" strings.
func canonicalRows(rows [][]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		parts := make([]string, len(r))
		for j, v := range r {
			parts[j] = canonical(v)
		}
		out[i] = "(" + strings.Join(parts, ", ") + ")"
	}
	slices.Sort(out)
	return out
}
