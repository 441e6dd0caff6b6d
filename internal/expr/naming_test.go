package expr

import (
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// TestOutputNames pins the generated column names, which follow Spark's
// (Column.named + toPrettySQL) for the common cases.
func TestOutputNames(t *testing.T) {
	tests := []struct {
		src, want string
		typ       batch.Kind
	}{
		{"CAST(value AS STRING)", "value", batch.String},
		{"CAST(value AS STRING) AS json", "json", batch.String},
		{"CAST(value AS STRING) json", "json", batch.String},
		{"value::string", "value", batch.String},
		{"CAST(VALUE AS STRING)", "value", batch.String},
		{"TRY_CAST(partition AS STRING)", "partition", batch.String},
		{"CAST(offset + 1 AS STRING)", "CAST((offset + 1) AS STRING)", batch.String},
		{"upper(CAST(value AS STRING))", "upper(CAST(value AS STRING))", batch.String},
		{"Topic", "topic", batch.String},
		{"`timestampType`", "timestampType", batch.Int},
		{"upper(topic)", "upper(topic)", batch.String},
		{"UPPER(TOPIC)", "upper(topic)", batch.String},
		{"partition + offset", "(partition + offset)", batch.Long},
		{"partition + offset * 2", "(partition + (offset * 2))", batch.Long},
		{"partition / 2", "(partition / 2)", batch.Double},
		{"partition div 2", "(partition div 2)", batch.Long},
		{"-partition", "(- partition)", batch.Int},
		{"current_timestamp()", "current_timestamp()", batch.Timestamp},
		{"current_timestamp", "current_timestamp()", batch.Timestamp},
		{"now()", "now()", batch.Timestamp},
		{"current_date", "current_date()", batch.Date},
		{"concat(topic, '-x')", "concat(topic, -x)", batch.String},
		{"topic || '-x'", "concat(topic, -x)", batch.String},
		{"1", "1", batch.Int},
		{"-1", "-1", batch.Int},
		{"5L", "5", batch.Long},
		{"1.5", "1.5", batch.Double},
		{"1e3", "1000.0", batch.Double},
		{"1e10", "1.0E10", batch.Double},
		{"'abc'", "abc", batch.String},
		{"NULL", "NULL", batch.Null},
		{"true", "true", batch.Boolean},
		{"partition = 1", "(partition = 1)", batch.Boolean},
		{"partition == 1", "(partition = 1)", batch.Boolean},
		{"partition != 1", "(NOT (partition = 1))", batch.Boolean},
		{"partition <=> 1", "(partition <=> 1)", batch.Boolean},
		{"NOT partition = 1", "(NOT (partition = 1))", batch.Boolean},
		{"partition = 1 AND offset > 2", "((partition = 1) AND (offset > 2))", batch.Boolean},
		{"topic IS NULL", "(topic IS NULL)", batch.Boolean},
		{"topic IS NOT NULL", "(topic IS NOT NULL)", batch.Boolean},
		{"isnull(topic)", "(topic IS NULL)", batch.Boolean},
		{"partition IN (1, 2)", "(partition IN (1, 2))", batch.Boolean},
		{"partition NOT IN (1)", "(NOT (partition IN (1)))", batch.Boolean},
		{"partition BETWEEN 1 AND 2", "((partition >= 1) AND (partition <= 2))", batch.Boolean},
		{"topic LIKE 'a%'", "topic LIKE a%", batch.Boolean},
		{"topic NOT LIKE 'a%'", "(NOT topic LIKE a%)", batch.Boolean},
		{"CASE WHEN partition > 0 THEN 'p' ELSE 'n' END", "CASE WHEN (partition > 0) THEN p ELSE n END", batch.String},
		{"CASE partition WHEN 1 THEN 'a' END", "CASE WHEN (partition = 1) THEN a END", batch.String},
		{"substring(topic, 2)", "substring(topic, 2, 2147483647)", batch.String},
		{"substr(topic, 1, 2)", "substr(topic, 1, 2)", batch.String},
		{"round(offset)", "round(offset, 0)", batch.Long},
		{"coalesce(partition, 0)", "coalesce(partition, 0)", batch.Int},
		{"if(partition > 0, 1, 2)", "(IF((partition > 0), 1, 2))", batch.Int},
		{"length(value)", "length(value)", batch.Int},
	}
	for _, tt := range tests {
		c, err := compileSource(tt.src, kafkaSchema)
		if err != nil {
			t.Errorf("compile %q: %v", tt.src, err)
			continue
		}
		if c.Name() != tt.want || c.Type() != tt.typ {
			t.Errorf("%q: name %q type %s, want %q %s", tt.src, c.Name(), c.Type(), tt.want, tt.typ)
		}
	}
}

// TestNoParenFunctionPrefersColumn checks Spark's rule that a column named
// current_date wins over the function when written without parentheses.
func TestNoParenFunctionPrefersColumn(t *testing.T) {
	s := batch.Schema{Fields: []batch.Field{{Name: "current_date", Type: batch.String}}}
	b := mkBatch(s, []any{"column value"})
	for src, want := range map[string]any{
		"current_date":   "column value",
		"current_date()": nil, // the function: a date, checked by type below
	} {
		c, err := compileSource(src, s)
		if err != nil {
			t.Fatal(err)
		}
		col, err := c.Eval(b, testCtx)
		if err != nil {
			t.Fatal(err)
		}
		if want != nil && col.Value(0) != want {
			t.Errorf("%s = %v, want %v", src, col.Value(0), want)
		}
		if want == nil && col.Type != batch.Date {
			t.Errorf("%s is %s, want the date function", src, col.Type)
		}
	}
}
