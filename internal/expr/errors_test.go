package expr

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

var kafkaSchema = batch.Schema{Fields: []batch.Field{
	{Name: "key", Type: batch.Binary, Nullable: true},
	{Name: "value", Type: batch.Binary, Nullable: true},
	{Name: "topic", Type: batch.String, Nullable: true},
	{Name: "partition", Type: batch.Int, Nullable: true},
	{Name: "offset", Type: batch.Long, Nullable: true},
	{Name: "timestamp", Type: batch.Timestamp, Nullable: true},
	{Name: "timestampType", Type: batch.Int, Nullable: true},
}}

// TestAnalysisErrors pins compile-time errors: they name the problem, point
// at it and, for names, suggest the closest match.
func TestAnalysisErrors(t *testing.T) {
	cols := "(input columns: `key`, `value`, `topic`, `partition`, `offset`, `timestamp`, `timestampType`)"
	tests := []struct{ in, want string }{
		{"CAST(valu AS STRING)", "analysis error at 1:6: cannot resolve column `valu`; did you mean `value`? " + cols +
			"\nCAST(valu AS STRING)\n     ^"},
		{"upper(nothing_like_it)", "analysis error at 1:7: cannot resolve column `nothing_like_it` " + cols +
			"\nupper(nothing_like_it)\n      ^"},
		{"uper(topic)", "analysis error at 1:1: undefined function uper(); did you mean upper()?\nuper(topic)\n^"},
		{"frobnicate(topic)", "analysis error at 1:1: undefined function frobnicate()\nfrobnicate(topic)\n^"},
		{"substrin(topic, 1)", "analysis error at 1:1: undefined function substrin(); did you mean substring() or substr()?\nsubstrin(topic, 1)\n^"},
		{"count(*)", "analysis error at 1:1: [MISSING_GROUP_BY] The query does not include a GROUP BY clause. Add GROUP BY or turn it into the window functions using OVER clauses. (count() is an aggregate function: use groupBy(...).agg(...), or agg: in a pipeline file)\ncount(*)\n^"},
		{"sum(offset)", "analysis error at 1:1: [MISSING_GROUP_BY] The query does not include a GROUP BY clause. Add GROUP BY or turn it into the window functions using OVER clauses. (sum() is an aggregate function: use groupBy(...).agg(...), or agg: in a pipeline file)\nsum(offset)\n^"},
		{"count(DISTINCT offset)", "analysis error at 1:1: Distinct aggregations are not supported on streaming DataFrames/Datasets. Consider using approx_count_distinct() instead.\ncount(DISTINCT offset)\n^"},
		{"stddev(offset)", "analysis error at 1:1: aggregate function stddev() is not supported (supported: count, sum, avg, min, max, first, last, approx_count_distinct, collect_list, collect_set)\nstddev(offset)\n^"},
		{"upper(*)", "analysis error at 1:7: '*' can only be used as a select item\nupper(*)\n      ^"},
		{"upper(topic, topic)", "analysis error at 1:1: upper() takes 1 argument(s), got 2\nupper(topic, topic)\n^"},
		{"substring(topic)", "analysis error at 1:1: substring() takes 2 to 3 arguments, got 1\nsubstring(topic)\n^"},
		{"offset + key", "analysis error at 1:8: cannot apply '+' to key (binary): a numeric operand is required\noffset + key\n       ^"},
		{"key = 1", "analysis error at 1:5: cannot compare key (binary) with 1 (int)\nkey = 1\n    ^"},
		{"partition AND true", "analysis error at 1:11: AND needs boolean operands but partition is int\npartition AND true\n          ^"},
		{"NOT topic", "analysis error at 1:1: NOT needs a boolean operand but topic is string\nNOT topic\n^"},
		{"CAST(key AS INT)", "analysis error at 1:1: cannot cast binary to INT\nCAST(key AS INT)\n^"},
		{"CASE WHEN partition THEN 1 END", "analysis error at 1:11: WHEN condition partition must be boolean but is int\n" +
			"CASE WHEN partition THEN 1 END\n          ^"},
		{"CASE WHEN true THEN key ELSE 1 END", "analysis error at 1:30: CASE branches have incompatible types: binary and int (1)\n" +
			"CASE WHEN true THEN key ELSE 1 END\n                             ^"},
		{"round(offset, partition)", "analysis error at 1:15: round() scale must be an integer literal, got partition\n" +
			"round(offset, partition)\n              ^"},
		{`topic LIKE 'a\\'`, "analysis error at 1:12: invalid LIKE pattern: the escape character is not allowed to end the pattern\n" +
			`topic LIKE 'a\\'` + "\n           ^"},
	}
	for _, tt := range tests {
		_, err := compileSource(tt.in, kafkaSchema)
		if err == nil {
			t.Errorf("compile %q succeeded, want error", tt.in)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("compile %q error:\n%s\nwant:\n%s", tt.in, err, tt.want)
		}
	}
}

func TestCompileNodeWithoutSource(t *testing.T) {
	n, err := Parse("valu")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(n, kafkaSchema)
	if err == nil || !strings.HasPrefix(err.Error(), "cannot resolve column `valu`; did you mean `value`?") {
		t.Errorf("Compile error = %v", err)
	}
}

func TestClosest(t *testing.T) {
	names := []string{"key", "value", "topic", "partition", "offset", "timestamp", "timestampType"}
	tests := []struct{ in, want string }{
		{"valeu", "value"},
		{"VALUE", "value"},
		{"timestamptype", "timestampType"},
		{"partitoin", "partition"},
		{"x", ""},
		{"completely_different", ""},
	}
	for _, tt := range tests {
		if got := closest(tt.in, names); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestFunctionsDocumented: every function of the compiler's table and
// every aggregate the analyser recognises has a signature naming it and a
// description, so `sluice functions` and the reference list them all.
func TestFunctionsDocumented(t *testing.T) {
	docs := Functions()
	if len(docs) != len(functions)+len(aggregateNames) || len(docs) == 0 {
		t.Fatalf("%d docs for %d functions and %d aggregates", len(docs), len(functions), len(aggregateNames))
	}
	for n := range aggregateNames {
		if _, ok := aggregateDocs[n]; !ok {
			t.Errorf("aggregate %s is not documented", n)
		}
	}
	for i, d := range docs {
		if !strings.HasPrefix(d.Signature, d.Name+"(") || d.Description == "" {
			t.Errorf("function %q: signature %q, description %q", d.Name, d.Signature, d.Description)
		}
		if i > 0 && docs[i-1].Name >= d.Name {
			t.Errorf("not sorted at %q", d.Name)
		}
	}
}
